"""Digest triggers: events collected into windows in the database, one email per window;
closed windows pruned after their retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import checks
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tests.factories import make_template
from tests.triggers.helpers import BASE, emails, new_order
from transactional_mail import privacy, tasks
from transactional_mail.models import (
    DigestItem,
    DigestWindow,
    Email,
    EmailStatus,
    EmailTemplate,
)
from transactional_mail.schedule import CLOSE_DIGESTS_TASK, install_periodic_tasks
from transactional_mail.triggers import digests

pytestmark = pytest.mark.django_db

DIGEST = {**BASE, "on": "created", "template": "order_digest",
          "context": ["number", "customer.name"], "category": "orders"}


@pytest.fixture
def digest_template(customer):
    return make_template("order_digest", subject="{{ count }} new orders",
                         html="{% for item in items %}<p>{{ item.number }}</p>{% endfor %}")


def later(**delta):
    return timezone.now() + timedelta(**delta)


def test_events_wait_in_the_window_then_go_out_in_one_email(use_triggers, customer,
                                                            digest_template):
    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    for number in ("A-1", "A-2", "A-3"):
        new_order(customer, number)
    assert emails() == []
    [window] = DigestWindow.objects.all()
    assert window.items.count() == 3
    assert digests.close_due_windows() == 0  # not due yet: the window stays open
    assert window.closes_at - window.opened_at == timedelta(hours=1)

    assert digests.close_due_windows(now=later(hours=1, seconds=1)) == 1
    [email] = emails()
    assert email.to == ["ann@example.com"]
    assert email.trigger_key == "digest"
    assert email.category == "orders"
    assert email.status == EmailStatus.QUEUED
    assert email.context == {"count": 3, "items": [
        {"number": number, "customer": {"name": "Ann"}} for number in ("A-1", "A-2", "A-3")]}
    window.refresh_from_db()
    assert window.closed_at is not None and window.email == email
    assert set(DigestItem.objects.values_list("email", flat=True)) == {email.pk}


def reader_context(recipient, items, count):
    """A digest's ``context`` callable: what the reader's email says besides the items."""
    return {"reader": recipient.split("@")[0], "more_count": max(count - 2, 0),
            "items": "cannot replace the items", "count": -1}


def test_the_digest_context_callable_adds_the_readers_variables(use_triggers, customer,
                                                                 digest_template):
    """Called with (recipient, items, count) when the window closes, and for a first
    event sent at once; it adds to the context and cannot replace items or count."""
    use_triggers(digest={**DIGEST, "digest": {
        "window": "1h", "first_at_once": True,
        "context": "tests.triggers.test_digests.reader_context"}})
    for number in ("A-1", "A-2", "A-3", "A-4"):
        new_order(customer, number)
    [first] = emails()
    assert (first.context["reader"], first.context["count"], first.context["more_count"]) == (
        "ann", 1, 0)
    digests.close_due_windows(now=later(hours=2))
    digest = emails()[-1]
    assert (digest.context["reader"], digest.context["count"], digest.context["more_count"]
            ) == ("ann", 3, 1)
    assert [item["number"] for item in digest.context["items"]] == ["A-2", "A-3", "A-4"]


def failing_context(recipient, items, count):
    raise RuntimeError("the reader's profile is gone")


def test_a_failing_digest_context_is_a_failed_email_not_lost_events(use_triggers, customer,
                                                                    digest_template):
    """The window closes into a failed row saying why (the sweep does not retry it
    forever); its events stay attached to that row."""
    use_triggers(digest={**DIGEST, "digest": {
        "window": "1h", "context": "tests.triggers.test_digests.failing_context"}})
    new_order(customer, "A-1")
    assert digests.close_due_windows(now=later(hours=2)) == 1
    [email] = emails()
    assert email.status == EmailStatus.FAILED
    assert "the reader's profile is gone" in email.last_error
    assert DigestWindow.objects.get().closed_at is not None
    assert list(DigestItem.objects.values_list("email", flat=True)) == [email.pk]


def test_without_a_category_the_digest_has_its_templates(use_triggers, customer,
                                                        digest_template):
    use_triggers(digest={key: value for key, value in DIGEST.items() if key != "category"}
                 | {"digest": {"window": "1h"}})
    new_order(customer, "A-1")
    digests.close_due_windows(now=later(hours=2))
    assert emails()[0].category == digest_template.category == "orders"


def test_an_event_after_the_close_opens_a_new_window(use_triggers, customer,
                                                     digest_template):
    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    new_order(customer, "A-1")
    digests.close_due_windows(now=later(hours=2))
    new_order(customer, "A-2")
    assert DigestWindow.objects.filter(closed_at__isnull=True).count() == 1
    digests.close_due_windows(now=later(hours=2))
    assert [e.context["items"][0]["number"] for e in emails()] == ["A-1", "A-2"]


def test_one_window_per_recipient_and_per_key(use_triggers, customer, digest_template):
    from tests.testapp.models import Customer

    other = Customer.objects.create(name="Bob", email="bob@example.com")
    use_triggers(digest={**DIGEST, "digest": {"window": "1h", "key": "status"}})
    new_order(customer, "A-1", status="paid")
    new_order(customer, "A-2", status="paid")
    new_order(customer, "A-3", status="created")
    new_order(other, "B-1", status="paid")
    keys = sorted(DigestWindow.objects.values_list("digest_key", flat=True))
    assert keys == ["ann@example.com|created", "ann@example.com|paid", "bob@example.com|paid"]
    digests.close_due_windows(now=later(hours=2))
    assert sorted((e.to[0], e.context["count"]) for e in emails()) == [
        ("ann@example.com", 1), ("ann@example.com", 2), ("bob@example.com", 1)]


def test_first_at_once_sends_the_first_event_and_digests_the_rest(use_triggers, customer,
                                                                  digest_template):
    use_triggers(digest={**DIGEST, "digest": {"window": "1h", "first_at_once": True}})
    new_order(customer, "A-1")
    [first] = emails()
    assert first.context == {"count": 1, "items": [{"number": "A-1",
                                                    "customer": {"name": "Ann"}}]}
    assert first.source_object_id  # the event's object, like any trigger email
    new_order(customer, "A-2")
    new_order(customer, "A-3")
    assert len(emails()) == 1
    digests.close_due_windows(now=later(hours=2))
    digest = emails()[-1]
    assert [item["number"] for item in digest.context["items"]] == ["A-2", "A-3"]
    assert digest.context["count"] == 2


def test_a_window_whose_only_event_went_at_once_sends_nothing_more(use_triggers, customer,
                                                                   digest_template):
    use_triggers(digest={**DIGEST, "digest": {"window": "1h", "first_at_once": True}})
    new_order(customer, "A-1")
    assert digests.close_due_windows(now=later(hours=2)) == 0
    assert len(emails()) == 1
    assert DigestWindow.objects.get().closed_at is not None


def test_closing_twice_sends_once(use_triggers, customer, digest_template):
    """Two sweeps (beat restarted, a redelivered task) close a window once."""
    use_triggers(digest={**DIGEST, "digest": {"window": "1m"}})
    new_order(customer, "A-1")
    window = DigestWindow.objects.get()
    now = later(minutes=2)
    assert digests.close_window(window.pk, now) is not None
    assert digests.close_window(window.pk, now) is None
    assert digests.close_due_windows(now=now) == 0
    assert len(emails()) == 1
    assert emails()[0].idempotency_key == f"digest:{window.pk}"


def test_a_rolled_back_save_collects_nothing(use_triggers, customer, digest_template):
    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    with pytest.raises(RuntimeError), transaction.atomic():
        new_order(customer, "A-1")
        raise RuntimeError
    assert not DigestWindow.objects.exists() and not DigestItem.objects.exists()


def test_the_database_keeps_one_open_window_per_key(use_triggers, customer, digest_template):
    """Two events racing to open a window: the second INSERT fails and joins the first."""
    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    new_order(customer, "A-1")
    window = DigestWindow.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        DigestWindow.objects.create(
            trigger_key="digest", digest_key=window.digest_key, recipient="ann@example.com",
            template_key="order_digest", window_seconds=60, opened_at=timezone.now(),
            closes_at=timezone.now())
    joined, opened = DigestWindow.objects.join(
        trigger_key="digest", digest_key=window.digest_key, now=timezone.now(),
        window_seconds=60, recipient="ann@example.com", template_key="order_digest")
    assert (joined, opened) == (window, False)


def test_items_are_capped_and_the_count_is_not(use_triggers, customer, digest_template,
                                               settings):
    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "DIGEST_MAX_ITEMS": 2}
    for number in ("A-1", "A-2", "A-3"):
        new_order(customer, number)
    digests.close_due_windows(now=later(hours=2))
    [email] = emails()
    assert email.context["count"] == 3
    assert [item["number"] for item in email.context["items"]] == ["A-1", "A-2"]


def test_a_deleted_template_fails_the_digest_visibly(use_triggers, customer, digest_template):
    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    new_order(customer, "A-1")
    EmailTemplate.objects.filter(key="order_digest").delete()
    digests.close_due_windows(now=later(hours=2))
    [email] = emails()
    assert email.status == EmailStatus.FAILED
    assert "could not queue" in email.last_error
    assert DigestItem.objects.get().email == email  # the event points at why it was lost


def test_the_closing_task_is_installed_in_beat(settings):
    from django_celery_beat.models import PeriodicTask

    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SWEEP_INTERVAL": 30}
    install_periodic_tasks()
    task = PeriodicTask.objects.get(name=CLOSE_DIGESTS_TASK)
    assert task.task == CLOSE_DIGESTS_TASK
    assert task.interval.every == 30


def test_opening_a_window_publishes_its_closing_for_its_end(
        use_triggers, customer, digest_template, enqueued, django_capture_on_commit_callbacks):
    """A short window gets a task at its end; a long one is left to the beat sweep (a
    countdown over MAX_COUNTDOWN would be redelivered by Redis after its visibility
    timeout)."""
    use_triggers(short={**DIGEST, "digest": {"window": "2m"}},
                 long={**DIGEST, "digest": {"window": "1h"}})
    with django_capture_on_commit_callbacks(execute=True):
        new_order(customer, "A-1")
    [call] = enqueued.call_args_list
    assert call.args == (digests.close_digests, ())
    assert 119 < call.kwargs["countdown"] <= 121
    with django_capture_on_commit_callbacks(execute=True):
        new_order(customer, "A-2")  # joins both open windows: nothing more to publish
    assert enqueued.call_count == 1


def test_the_closing_task_closes_due_windows(use_triggers, customer, digest_template):
    use_triggers(digest={**DIGEST, "digest": {"window": "1m"}})
    new_order(customer, "A-1")
    DigestWindow.objects.update(closes_at=timezone.now())
    assert digests.close_digests.apply().get() == 1
    assert len(emails()) == 1


def test_the_dry_run_says_the_event_is_collected(use_triggers, customer, digest_template,
                                                capsys):
    from django.core.management import call_command

    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    order = new_order(customer)
    call_command("dry_run_triggers", "testapp.Order", str(order.pk))
    assert "digest:     collected into a 1:00:00 window per recipient" in (
        capsys.readouterr().out)


class TestChecks:
    def run(self, settings, digest, **extra):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                       "TRIGGERS": {"d": {**DIGEST, "digest": digest, **extra}}}
        from transactional_mail.checks import check_settings

        return [(m.id, m.msg) for m in check_settings()]

    def test_a_valid_digest_passes(self, settings):
        assert self.run(settings, {"window": "1h", "key": "recipient",
                                   "first_at_once": True}) == []
        assert self.run(settings, {"window": timedelta(minutes=5), "key": "customer.pk"}) == []
        assert self.run(settings, {"window": "1h",
                                   "context": "tests.triggers.test_digests.reader_context"}) == []

    @pytest.mark.parametrize(("digest", "extra", "message"), [
        ("1h", {}, "'digest' is '1h'; it must be a dict."),
        ({}, {}, "'digest' has no 'window'."),
        ({"window": "soon"}, {},
         "the digest 'window' 'soon' is not a duration of at least one second."),
        ({"window": 0}, {}, "the digest 'window' 0 is not a duration of at least one second."),
        ({"window": "1h", "windw": 1}, {}, "'digest' has an unknown key 'windw'."),
        ({"window": "1h", "first_at_once": "yes"}, {},
         "the digest 'first_at_once' is 'yes'; it must be True or False."),
        ({"window": "1h", "context": "tests.triggers.test_digests.nowhere"}, {},
         "the digest 'context' 'tests.triggers.test_digests.nowhere' is not a callable nor "
         "the dotted path of one."),
        ({"window": "1h", "key": 3}, {},
         "the digest 'key' 3 is neither 'recipient', a path nor a callable."),
        ({"window": "1h", "key": "custmer.pk"}, {},
         "'digest key' 'custmer.pk' is neither a dotted callable that imports nor an "
         "attribute path of testapp.Order."),
        ({"window": "1h"}, {"delay": "1h"},
         "'digest' does not go with 'delay': a digest already waits for its window and "
         "gathers many events."),
        ({"window": "1h"}, {"secret_keys": ["number"]},
         "'digest' does not go with 'secret_keys': the events wait in the database, and "
         "one email carries them all."),
    ])
    def test_a_malformed_digest_is_reported(self, settings, digest, extra, message):
        assert self.run(settings, digest, **extra) == [
            ("transactional_mail.E009", f"TRANSACTIONAL_MAIL['TRIGGERS']['d']: {message}")]

    def test_a_private_digest_key_is_e010(self, settings):
        [(check_id, _msg)] = self.run(settings, {"window": "1h", "key": "customer._state"})
        assert check_id == "transactional_mail.E010"

    def test_reported_by_manage_py_check(self, settings):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                       "TRIGGERS": {"d": {**DIGEST, "digest": {}}}}
        assert any(m.id == "transactional_mail.E009" for m in checks.run_checks())


# --- retention: closed windows are pruned ----------------------------------------------------

def closed_window(customer, number: str, *, days_ago: int, status=EmailStatus.SENT):
    """A window of one order, closed ``days_ago`` days ago into a digest now ``status``."""
    new_order(customer, number)
    window = DigestWindow.objects.get(closed_at__isnull=True)
    digest = digests.close_window(window.pk, now=later(hours=2))
    Email.objects.filter(pk=digest.pk).update(status=status)
    DigestWindow.objects.filter(pk=window.pk).update(closed_at=later(days=-days_ago))
    return window


def test_closed_windows_are_pruned_with_their_items_and_the_digest_stays(
        use_triggers, customer, digest_template):
    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    old = closed_window(customer, "A-1", days_ago=40)
    recent = closed_window(customer, "A-2", days_ago=10)
    new_order(customer, "A-3")
    DigestWindow.objects.filter(closed_at__isnull=True).update(
        opened_at=later(days=-100), closes_at=later(days=-99))  # open, though long due
    assert privacy.prune_digest_windows(30) == 1
    assert set(DigestWindow.objects.values_list("pk", flat=True)) == {
        recent.pk, DigestWindow.objects.get(closed_at__isnull=True).pk}
    assert DigestItem.objects.filter(window_id=old.pk).count() == 0
    assert DigestItem.objects.count() == 2
    first = emails()[0]  # the send log keeps the digest, under its own rules
    assert first.context["items"] == [{"number": "A-1", "customer": {"name": "Ann"}}]
    assert privacy.prune_digest_windows(30) == 0  # done once


@pytest.mark.parametrize("status", [EmailStatus.QUEUED, EmailStatus.SCHEDULED,
                                    EmailStatus.SENDING])
def test_a_window_whose_digest_is_still_to_go_is_kept(use_triggers, customer,
                                                      digest_template, status):
    """A frequency cap may still fold that digest's events into the next window, from
    the items."""
    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    window = closed_window(customer, "A-1", days_ago=40, status=status)
    assert privacy.prune_digest_windows(30) == 0
    Email.objects.update(status=EmailStatus.DELIVERED)
    assert privacy.prune_digest_windows(30) == 1
    assert not DigestWindow.objects.filter(pk=window.pk).exists()


def test_a_window_whose_first_event_is_still_to_go_is_kept(use_triggers, customer,
                                                           digest_template):
    """The window closed into no digest (its only event went at once), but that email
    is still queued: it carries the window's events."""
    use_triggers(digest={**DIGEST, "digest": {"window": "1h", "first_at_once": True}})
    new_order(customer, "A-1")
    digests.close_due_windows(now=later(hours=2))
    DigestWindow.objects.update(closed_at=later(days=-40))
    assert DigestWindow.objects.get().email is None
    assert privacy.prune_digest_windows(30) == 0
    Email.objects.update(status=EmailStatus.SUPPRESSED)
    assert privacy.prune_digest_windows(30) == 1


@pytest.mark.parametrize(("values", "kept_days"), [
    ({}, 30),  # the default
    ({"DIGEST_RETENTION_DAYS": 30, "RETENTION_DAYS": 7}, 7),  # no longer than the emails'
    ({"DIGEST_RETENTION_DAYS": None, "RETENTION_DAYS": 20}, 20),
    ({"DIGEST_RETENTION_DAYS": 0}, 0),
    ({"DIGEST_RETENTION_DAYS": None}, None),
])
def test_the_retention_follows_the_settings(use_triggers, customer, digest_template,
                                            settings, values, kept_days):
    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, **values}
    assert privacy.digest_retention_days() == kept_days
    windows = {days: closed_window(customer, f"A-{days}", days_ago=days).pk
               for days in (1, 6, 8, 19, 21, 29, 31)}
    kept = [pk for days, pk in windows.items() if kept_days is None or days < kept_days]
    assert privacy.prune_digest_windows() == len(windows) - len(kept)
    assert sorted(DigestWindow.objects.values_list("pk", flat=True)) == kept


def test_the_daily_retention_task_prunes_windows(use_triggers, customer, digest_template):
    """No new beat row: the retention task (RETENTION_DAYS off by default) prunes them."""
    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    closed_window(customer, "A-1", days_ago=31)
    assert tasks.redact_old_emails.apply().get() == 0  # no email redacted
    assert not DigestWindow.objects.exists()


def test_pruning_works_in_batches_and_carries_on(use_triggers, customer, digest_template):
    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    for number in range(5):
        closed_window(customer, f"A-{number}", days_ago=40 + number)
    assert privacy.prune_digest_windows(30, batch_size=2, max_batches=1) == 2
    assert privacy.prune_digest_windows(30, batch_size=2) == 3
    assert not DigestItem.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="concurrent sessions need PostgreSQL (TM_TEST_POSTGRES runs this)")
@pytest.mark.django_db(transaction=True)
def test_pruning_while_windows_close_or_are_held(use_triggers, customer, digest_template):
    """A window a sweep is closing right now is not pruned (it was open); an expired one
    another transaction holds is skipped without waiting, and taken by the next run."""
    import threading
    import time

    use_triggers(digest={**DIGEST, "digest": {"window": "1h"}})
    held = closed_window(customer, "A-1", days_ago=40)
    expired = closed_window(customer, "A-2", days_ago=40)
    new_order(customer, "A-3")
    closing_window = DigestWindow.objects.get(closed_at__isnull=True)
    DigestWindow.objects.filter(pk=closing_window.pk).update(closes_at=later(seconds=-1))
    busy, errors = threading.Event(), []

    def hold_and_close():
        try:
            with transaction.atomic():
                DigestWindow.objects.select_for_update().get(pk=held.pk)
                assert digests.close_window(closing_window.pk) is not None
                busy.set()
                time.sleep(1)
        except Exception as err:
            errors.append(err)
            busy.set()
        finally:
            connection.close()

    thread = threading.Thread(target=hold_and_close)
    thread.start()
    busy.wait(10)
    started = time.monotonic()
    assert privacy.prune_digest_windows(0) == 1  # only the expired one nobody holds
    assert time.monotonic() - started < 0.9  # did not wait for the held window
    thread.join()
    assert errors == []
    assert not DigestWindow.objects.filter(pk=expired.pk).exists()
    # Now closed, its digest queued: kept until that is sent.
    assert privacy.prune_digest_windows(0) == 1  # the held one
    assert DigestWindow.objects.get().pk == closing_window.pk
    Email.objects.update(status=EmailStatus.SENT)
    assert privacy.prune_digest_windows(0) == 1
    assert not DigestWindow.objects.exists()
