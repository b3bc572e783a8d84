"""Personal data: erasing one address (counts stay true, nothing left to find, suppressions
kept or hashed; its digest windows and cap counts deleted), exporting one address, and the
retention of bodies and contexts."""

from __future__ import annotations

import datetime
import io
import json
from collections import Counter

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_layout, make_template
from tests.testapp.models import Customer
from tests.triggers.helpers import BASE, new_order
from transactional_mail import delivery, privacy, resending, tasks
from transactional_mail.models import (
    AttemptOutcome,
    CapCount,
    DigestItem,
    DigestWindow,
    Email,
    EmailAttempt,
    EmailEvent,
    EmailStatus,
    Suppression,
    SuppressionHistory,
    SuppressionReason,
)
from transactional_mail.models.suppression import hash_address
from transactional_mail.signals import address_forgotten
from transactional_mail.triggers import digests

pytestmark = pytest.mark.django_db

ANN = "ann@example.com"


@pytest.fixture
def template():
    return make_template(layout=make_layout(), category="orders")


def queue(to=ANN, **options) -> Email:
    return transactional_mail.send("order_confirmation", to, ORDER_CONTEXT, **options)


def event(email: Email | None, recipient: str, event_type="delivered", **fields) -> EmailEvent:
    return EmailEvent.objects.create(
        email=email, esp_name="Postmark", event_id=f"ev-{EmailEvent.objects.count()}",
        event_type=event_type, recipient=recipient,
        description=f"Delivered to {recipient}", mta_response=f"250 OK <{recipient}>",
        raw={"Recipient": recipient, "Details": f"smtp; 250 {recipient}"}, **fields)


@pytest.fixture
def log(template, esp):
    """Ann's sent email with its events and a failed attempt, an email she shares with
    Bob, Bob's own, Joann's (a longer address holding Ann's), and an event for Ann that
    matched no email."""
    sent = queue(to="Ann Smith <Ann@Example.com>", reply_to=["ann@example.com"])
    assert delivery.deliver(sent.pk).status == EmailStatus.SENT
    sent.refresh_from_db()
    EmailAttempt.objects.create(email=sent, number=0, finished_at=timezone.now(),
                                outcome=AttemptOutcome.TRANSIENT,
                                error="HTTP 500 for ann@example.com")
    event(sent, ANN)
    event(sent, ANN, "clicked", click_url="https://shop.example.com/o/1?u=ann@example.com")
    shared = queue(to="bob@example.com", cc=[ANN])
    delivery.deliver(shared.pk)
    event(shared, "bob@example.com")
    bob = queue(to="bob@example.com")
    delivery.deliver(bob.pk)
    event(bob, "bob@example.com")
    joann = queue(to="joann@example.com")
    delivery.deliver(joann.pk)
    event(None, ANN, "bounced")
    return {"sent": sent, "shared": shared, "bob": bob, "joann": joann}


def counts() -> dict:
    """What the statistics read: emails per status, category and template; events per
    type; attempts per outcome."""
    return {
        "emails": Counter(Email.objects.values_list("status", "category", "template_key")),
        "events": dict(EmailEvent.objects.values_list("event_type").annotate(n=Count("pk"))),
        "attempts": dict(EmailAttempt.objects.values_list("outcome").annotate(n=Count("pk"))),
        "times": sorted(Email.objects.values_list("created_at", "sent_at")),
    }


def everything() -> str:
    """Every stored value of the log's tables, as one text (bodies decompressed)."""
    rows = [
        *[{**row} for row in Email.objects.values()],
        *[{"html": e.html_body, "text": e.text_body} for e in Email.objects.all()],
        *EmailEvent.objects.values(), *EmailAttempt.objects.values(),
        *Suppression.objects.values(), *SuppressionHistory.objects.values(),
        *LogEntry.objects.values(), *DigestWindow.objects.values(),
        *DigestItem.objects.values(), *CapCount.objects.values(),
    ]
    return json.dumps(rows, default=str).lower()


def test_erasure_leaves_counts_intact_and_nothing_of_the_address(log):
    before = counts()
    erasure = privacy.forget_address("  ANN@example.com ")
    assert counts() == before
    assert "ann@example" not in everything().replace("joann@example", "")
    assert (erasure.emails, erasure.events, erasure.attempts) == (2, 4, 1)


def test_erasure_keeps_what_happened_and_other_people(log):
    sent = log["sent"]
    privacy.forget_address(ANN)
    sent.refresh_from_db()
    assert (sent.status, sent.category, sent.template_key, sent.esp_message_id) == (
        EmailStatus.SENT, "orders", "order_confirmation", log["sent"].esp_message_id)
    assert sent.to == ["[erased]"] and sent.reply_to == ["[erased]"]
    assert (sent.subject, sent.html_body, sent.context, sent.redacted_at is not None) == (
        "", "", {}, True)
    shared = Email.objects.get(pk=log["shared"].pk)
    assert (shared.to, shared.cc) == (["bob@example.com"], ["[erased]"])
    assert EmailEvent.objects.get(email=shared).recipient == "bob@example.com"
    untouched = Email.objects.get(pk=log["bob"].pk)
    assert untouched.html_body and untouched.context == ORDER_CONTEXT
    assert Email.objects.get(pk=log["joann"].pk).to == ["joann@example.com"]


def test_a_late_event_does_not_store_the_forgotten_address_again(log, client):
    from tests.esp_server import click_event, open_event, post_webhook

    sent, shared = log["sent"], log["shared"]
    late = [click_event(sent, url="https://shop.example.com/o/1?u=ann@example.com",
                        recipient=ANN), open_event(shared, recipient=ANN)]
    privacy.forget_address(ANN)
    for payload in late:
        assert post_webhook(client, payload).status_code == 200
    click = EmailEvent.objects.filter(email=sent, event_type="clicked").latest("pk")
    assert (click.recipient, click.click_url, click.raw) == ("", "", None)
    assert click.recipient_key  # still stored once per recipient
    assert EmailEvent.objects.filter(email=shared, event_type="opened", recipient="").exists()
    assert "ann@example" not in everything().replace("joann@example", "")
    post_webhook(client, open_event(shared, recipient="bob@example.com"))
    assert EmailEvent.objects.filter(email=shared, recipient="bob@example.com",
                                     event_type="opened").exists()


def test_a_wildcard_address_erases_only_itself(log):
    """``_`` and ``%`` are LIKE wildcards: a_n@example.com must not match ann@..."""
    assert privacy.forget_address("a_n@example.com").emails == 0
    assert privacy.forget_address("%@example.com").emails == 0
    assert Email.objects.get(pk=log["sent"].pk).to == ["Ann Smith <Ann@Example.com>"]


def test_a_non_ascii_address_is_found_and_erased(template):
    email = queue(to="jürgen@example.com")
    assert privacy.forget_address("JÜRGEN@example.com").emails == 1
    email.refresh_from_db()
    assert email.to == ["[erased]"]


def test_an_email_not_yet_sent_is_cancelled_and_one_being_sent_blocks(template):
    queued = queue()
    erasure = privacy.forget_address(ANN)
    queued.refresh_from_db()
    assert (queued.status, erasure.cancelled, queued.context) == (EmailStatus.CANCELLED, 1, {})
    sending = queue()
    Email.objects.filter(pk=sending.pk).update(status=EmailStatus.SENDING)
    with pytest.raises(privacy.AddressBusy):
        privacy.forget_address(ANN)
    sending.refresh_from_db()
    assert sending.to == [ANN] and sending.context == ORDER_CONTEXT  # nothing erased


def test_hostile_input_is_refused():
    for bad in ["", "not-an-address", "ann@example.com\nbcc@evil.com", "a b@example.com"]:
        with pytest.raises(privacy.InvalidAddress):
            privacy.forget_address(bad)


def test_a_suppression_is_kept(log):
    Suppression.objects.create(address=ANN, reason=SuppressionReason.HARD_BOUNCE)
    assert privacy.forget_address(ANN).suppressions == 1
    assert Suppression.objects.get().address == ANN


def test_the_history_of_a_reactivated_suppression_keeps_only_the_hash(log):
    SuppressionHistory.objects.create(address=ANN, change="removed", suppression_reason="manual",
                                      note="ann@example.com asked for her mail back")
    privacy.forget_address(ANN)
    entry = SuppressionHistory.objects.get()
    assert (entry.address, entry.note) == (hash_address(ANN), "[erased] asked for her mail back")


def test_a_hashed_suppression_still_blocks_sends(log, template, esp):
    suppression = Suppression.objects.create(address=ANN, category="",
                                             reason=SuppressionReason.COMPLAINT)
    SuppressionHistory.objects.create(address=ANN, change="added", suppression_reason="complaint",
                                      note="ann@example.com phoned us")
    erasure = privacy.forget_address(ANN, hash_suppressions=True)
    assert erasure.hashed and erasure.suppressions == 1
    suppression.refresh_from_db()
    assert suppression.address == hash_address(ANN) and "@" not in suppression.address
    assert SuppressionHistory.objects.get().note == "[erased] phoned us"
    assert "ann@example" not in everything().replace("joann@example", "")
    again = queue(to="Ann <ANN@example.com>")
    esp.reset()
    assert delivery.deliver(again.pk).status == EmailStatus.SUPPRESSED
    assert esp.requests == []
    assert Suppression.objects.blocking([ANN]).get() == suppression


def test_a_hashed_suppression_blocks_under_a_fallback_key(settings, template, esp):
    Suppression.objects.create(address=hash_address(ANN), reason=SuppressionReason.HARD_BOUNCE)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50
    assert Suppression.objects.blocking([ANN]).exists()


def test_forgetting_twice_with_hash_keeps_one_row(template):
    Suppression.objects.create(address=ANN, reason=SuppressionReason.MANUAL)
    privacy.forget_address(ANN, hash_suppressions=True)
    Suppression.objects.create(address=ANN, reason=SuppressionReason.MANUAL)  # re-added
    privacy.forget_address(ANN, hash_suppressions=True)
    assert list(Suppression.objects.values_list("address", flat=True)) == [hash_address(ANN)]


def test_the_signal_is_sent_inside_the_transaction(log):
    received = []

    def receiver(sender, address, erasure, **kwargs):
        received.append((sender, address, erasure.emails))
        raise RuntimeError("the site's own erasure failed")

    address_forgotten.connect(receiver, weak=False)
    try:
        with pytest.raises(RuntimeError):
            privacy.forget_address(ANN)
    finally:
        address_forgotten.disconnect(receiver)
    assert received == [(Email, ANN, 2)]
    assert Email.objects.get(pk=log["sent"].pk).to == ["Ann Smith <Ann@Example.com>"]


def test_the_admin_log_entries_lose_the_address(log, admin_user):
    LogEntry.objects.create(user=admin_user, content_type=ContentType.objects.get_for_model(Email),
                            object_id=str(log["sent"].pk), object_repr=str(log["sent"]),
                            action_flag=CHANGE, change_message="Resent")
    privacy.forget_address(ANN)
    assert LogEntry.objects.get().object_repr == "[erased]"


def test_a_forgotten_address_is_not_findable_by_any_admin_search(log, admin_client):
    Suppression.objects.create(address=ANN, reason=SuppressionReason.HARD_BOUNCE)
    privacy.forget_address(ANN, hash_suppressions=True)
    for term in [ANN, "Ann@Example.com", "example.com"]:
        found = admin_client.get("/admin/transactional_mail/email/", {"q": term})
        assert not [e for e in found.context["cl"].result_list if e.pk in (
            log["sent"].pk, log["shared"].pk)], term
        found = admin_client.get("/admin/transactional_mail/suppression/", {"q": term})
        assert list(found.context["cl"].result_list) == [], term
    page = admin_client.get("/admin/transactional_mail/email/recipient/", {"address": ANN})
    assert (list(page.context["emails"]), list(page.context["events"])) == ([], [])
    for pk in (log["sent"].pk, log["shared"].pk):
        detail = admin_client.get(f"/admin/transactional_mail/email/{pk}/change/")
        assert "ann@example.com" not in detail.content.decode().lower()


# --- the admin action ----------------------------------------------------------------------

def test_the_forget_action_needs_its_permission(log, client, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_email"))
    client.force_login(user)
    page = client.get("/admin/transactional_mail/email/")
    assert "forget_addresses" not in page.content.decode()
    client.post("/admin/transactional_mail/email/", {
        "action": "forget_addresses", "_selected_action": [log["sent"].pk],
        "confirm": "yes", "addresses": [ANN]})
    assert Email.objects.get(pk=log["sent"].pk).to == ["Ann Smith <Ann@Example.com>"]
    user.user_permissions.add(Permission.objects.get(codename="forget_address"))
    assert "forget_addresses" in client.get("/admin/transactional_mail/email/").content.decode()


def test_the_forget_action_confirms_then_erases(log, admin_client):
    Suppression.objects.create(address=ANN, reason=SuppressionReason.HARD_BOUNCE)
    data = {"action": "forget_addresses", "_selected_action": [log["sent"].pk]}
    page = admin_client.post("/admin/transactional_mail/email/", data)
    assert page.status_code == 200 and ANN in page.content.decode()
    assert Email.objects.get(pk=log["sent"].pk).to != ["[erased]"]  # only asked
    admin_client.post("/admin/transactional_mail/email/", {
        **data, "confirm": "yes", "addresses": [ANN], "hash_suppressions": "on"})
    assert Email.objects.get(pk=log["sent"].pk).to == ["[erased]"]
    assert Suppression.objects.get().address == hash_address(ANN)
    entries = LogEntry.objects.filter(user__username="admin")
    assert sorted(int(e.object_id) for e in entries) == [log["sent"].pk, log["shared"].pk]
    assert "ann@example" not in everything().replace("joann@example", "")


# --- digests and frequency caps --------------------------------------------------------------

#: A digest trigger of the test app's orders, one window per customer for an hour.
DIGEST = {**BASE, "on": "created", "context": ["number"], "digest": {"window": "1h"}}


def later(**delta) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(**delta)


def count_against_cap(email: Email, to: str = ANN) -> CapCount:
    return CapCount.objects.create(recipient_key=to, category="reviews",
                                   counted_at=timezone.now(), email=email)


@pytest.fixture
def waiting(template, use_triggers):
    """Ann (her address in another case) with an open digest window of two orders and a
    closed one whose digest is queued, two cap counts; Bob and Joann with a window and a
    count each."""
    use_triggers(digest=DIGEST)
    ann = Customer.objects.create(name="Ann", email="Ann@Example.COM")
    new_order(ann, "A-1")
    digests.close_due_windows(now=later(hours=2))
    new_order(ann, "A-2")
    new_order(ann, "A-3")
    for name in ("bob", "joann"):
        new_order(Customer.objects.create(name=name, email=f"{name}@example.com"),
                  f"{name}-1")
    for to in ("ann@example.com", "ann@example.com", "bob@example.com", "joann@example.com"):
        count_against_cap(queue(to=to), to)
    return Email.objects.get(trigger_key="digest")


def test_forgetting_deletes_the_digest_windows_and_the_cap_counts(waiting):
    erasure = privacy.forget_address("ann@example.com")
    assert (erasure.digest_windows, erasure.digest_items, erasure.cap_counts) == (2, 3, 2)
    assert sorted(DigestWindow.objects.values_list("recipient", flat=True)) == [
        "bob@example.com", "joann@example.com"]
    assert DigestItem.objects.count() == 2
    assert sorted(CapCount.objects.values_list("recipient_key", flat=True)) == [
        "bob@example.com", "joann@example.com"]
    assert "ann@example" not in everything().replace("joann@example", "")


def test_an_open_window_of_a_forgotten_address_never_sends(waiting):
    """The sweep that would have closed Ann's open window finds nothing to send."""
    privacy.forget_address(ANN)
    last = Email.objects.order_by("pk").last().pk
    assert digests.close_due_windows(now=later(hours=5)) == 2  # Bob's and Joann's
    assert sorted(Email.objects.filter(pk__gt=last).values_list("to", flat=True)) == [
        ["bob@example.com"], ["joann@example.com"]]


def test_a_queued_digest_of_a_forgotten_address_is_cancelled(waiting):
    privacy.forget_address(ANN)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.to, waiting.context) == (
        EmailStatus.CANCELLED, ["[erased]"], {})


def test_a_window_merely_holding_the_address_in_its_key_is_not_forgotten(template,
                                                                         use_triggers):
    """Joann's window is not Ann's, though "ann@example.com" is inside her address."""
    use_triggers(digest=DIGEST)
    new_order(Customer.objects.create(name="Joann", email="joann@example.com"))
    assert privacy.forget_address(ANN).digest_windows == 0
    assert DigestWindow.objects.get().recipient == "joann@example.com"


def test_export_lists_the_digest_windows_and_cap_counts(waiting):
    data = privacy.export_address("ANN@example.com")
    open_window, closed = data["digest_windows"]
    assert (open_window["closed_at"], closed["closed_at"] is not None) == (None, True)
    assert [item["context"] for item in open_window["items"]] == [
        {"number": "A-2"}, {"number": "A-3"}]
    assert closed["email"] == waiting.pk and closed["items"][0]["email"] == waiting.pk
    assert open_window["recipient"] == "Ann@Example.COM"
    assert len(data["cap_counts"]) == 2 and data["cap_counts"][0]["category"] == "reviews"
    json.dumps(data, cls=DjangoJSONEncoder)  # JSON-ready, as the command writes it
    privacy.forget_address(ANN)
    data = privacy.export_address(ANN)
    assert (data["digest_windows"], data["cap_counts"]) == ([], [])


def test_forgetting_is_undone_with_the_rest_when_an_email_is_being_sent(waiting):
    Email.objects.filter(pk=waiting.pk).update(status=EmailStatus.SENDING)
    with pytest.raises(privacy.AddressBusy):
        privacy.forget_address(ANN)
    assert DigestWindow.objects.filter(recipient="Ann@Example.COM").count() == 2
    assert CapCount.objects.filter(recipient_key=ANN).count() == 2


def test_a_wildcard_address_deletes_no_one_elses_windows_or_counts(waiting):
    for address in ("a_n@example.com", "%@example.com", "%ann@example.com"):
        erasure = privacy.forget_address(address)
        assert (erasure.digest_windows, erasure.cap_counts) == (0, 0)
    assert DigestWindow.objects.count() == 4 and CapCount.objects.count() == 4


def test_a_non_ascii_address_in_another_case_is_found(template, use_triggers):
    """SQLite compares only ASCII letters without case: the normalised digest key and
    cap key still find "JÜRGEN" when "jürgen" is forgotten."""
    use_triggers(digest=DIGEST)
    new_order(Customer.objects.create(name="Jürgen", email="JÜRGEN@Example.com"))
    count_against_cap(queue(to="JÜRGEN@Example.com"), "jürgen@example.com")
    assert len(privacy.export_address("jürgen@example.com")["digest_windows"]) == 1
    erasure = privacy.forget_address("Jürgen@example.com")
    assert (erasure.digest_windows, erasure.digest_items, erasure.cap_counts) == (1, 1, 1)


def test_a_window_with_a_display_name_and_a_key_is_found(template, use_triggers):
    """A ``to`` giving "Ann <Ann@Example.com>", and a digest ``key``: the digest key is
    "ann@example.com|<key>"; both windows are Ann's."""
    use_triggers(digest={**DIGEST, "to": "tests.test_privacy.named_address",
                         "digest": {"window": "1h", "key": "number"}})
    ann = Customer.objects.create(name="Ann", email="Ann@Example.com")
    new_order(ann, "A-1")
    new_order(ann, "A-2")
    assert sorted(DigestWindow.objects.values_list("digest_key", flat=True)) == [
        "ann@example.com|A-1", "ann@example.com|A-2"]
    assert privacy.forget_address(ANN).digest_windows == 2


def named_address(order) -> str:
    return f"{order.customer.name} <{order.customer.email}>"


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="concurrent sessions need PostgreSQL (TM_TEST_POSTGRES runs this)")
@pytest.mark.django_db(transaction=True)
def test_forgetting_while_the_sweep_closes_the_window_cancels_its_digest(
        template, use_triggers):
    """The sweep holds Ann's window while it queues her digest; the erasure waits for it,
    then finds the digest email and cancels it: nothing goes to a forgotten address."""
    import threading
    import time

    use_triggers(digest=DIGEST)
    new_order(Customer.objects.create(name="Ann", email=ANN))
    window = DigestWindow.objects.get()
    closing, errors = threading.Event(), []

    def close_slowly():
        try:
            with transaction.atomic():
                assert digests.close_window(window.pk, now=later(hours=2)) is not None
                closing.set()
                time.sleep(1)  # the erasure starts meanwhile, and waits for this commit
        except Exception as err:
            errors.append(err)
            closing.set()
        finally:
            connection.close()

    thread = threading.Thread(target=close_slowly)
    thread.start()
    closing.wait(10)
    erasure = privacy.forget_address(ANN)
    thread.join()
    assert errors == []
    assert (erasure.digest_windows, erasure.cancelled) == (1, 1)
    digest = Email.objects.get(trigger_key="digest")
    assert (digest.status, digest.to) == (EmailStatus.CANCELLED, ["[erased]"])
    assert not DigestWindow.objects.exists()


# --- the commands --------------------------------------------------------------------------

def test_forget_address_command(log):
    out = io.StringIO()
    call_command("forget_address", ANN, "--hash", stdout=out)
    assert "Erased 2 email(s)" in out.getvalue()
    assert "0 digest window(s), 0 cap count(s) deleted" in out.getvalue()
    with pytest.raises(CommandError, match="not an email address"):
        call_command("forget_address", "nobody")


def test_export_contains_everything(log, tmp_path):
    Suppression.objects.create(address=ANN, reason=SuppressionReason.HARD_BOUNCE, source="x")
    path = tmp_path / "ann.json"
    call_command("export_address", "Ann@Example.com", "--output", str(path), stderr=io.StringIO())
    data = json.loads(path.read_text())
    assert data["address"] == ANN
    emails = {email["id"]: email for email in data["emails"]}
    assert set(emails) == {log["sent"].pk, log["shared"].pk}
    sent = emails[log["sent"].pk]
    assert sent["context"] == ORDER_CONTEXT and "Thanks for order" in sent["html_body"]
    assert sent["subject"] and sent["text_body"] and sent["to"] == ["Ann Smith <Ann@Example.com>"]
    assert [e["event_type"] for e in sent["events"]] == ["delivered", "clicked"]
    assert "HTTP 500 for ann@example.com" in [a["error"] for a in sent["attempts"]]
    assert [e["event_type"] for e in data["other_events"]] == ["bounced"]
    assert data["suppressions"][0]["reason"] == "hard_bounce"
    out = io.StringIO()
    call_command("export_address", ANN, stdout=out)
    assert json.loads(out.getvalue())["emails"][0]["id"] == log["sent"].pk


def test_export_of_a_forgotten_address_is_empty_but_its_hashed_suppression(log):
    Suppression.objects.create(address=ANN, reason=SuppressionReason.HARD_BOUNCE)
    privacy.forget_address(ANN, hash_suppressions=True)
    data = privacy.export_address(ANN)
    assert (data["emails"], data["other_events"]) == ([], [])
    assert data["suppressions"][0]["address"] == hash_address(ANN)


# --- retention -------------------------------------------------------------------------------

def age(email: Email, days: int) -> None:
    Email.objects.filter(pk=email.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=days))


def test_retention_redacts_only_old_finished_rows(template, esp, settings):
    old, recent, waiting = queue(), queue(), queue(to="bob@example.com")
    delivery.deliver(old.pk)
    delivery.deliver(recent.pk)
    age(old, 40)
    age(waiting, 40)  # queued: its context is what it will be rendered from
    age(recent, 10)
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "RETENTION_DAYS": 30}
    before = counts()
    assert tasks.redact_old_emails() == 1
    assert counts() == before
    old.refresh_from_db()
    assert (old.html_body, old.text_body, old.context, old.attachments) == ("", "", {}, [])
    assert old.subject and old.to == [ANN] and old.status == EmailStatus.SENT
    recent.refresh_from_db()
    waiting.refresh_from_db()
    assert recent.html_body and recent.redacted_at is None
    assert waiting.context == ORDER_CONTEXT and waiting.redacted_at is None
    assert tasks.redact_old_emails() == 0  # done once


def test_retention_is_off_by_default_and_resumable(template, esp):
    emails = [queue() for _ in range(5)]
    for email in emails:
        Email.objects.filter(pk=email.pk).update(status=EmailStatus.FAILED)
        age(email, 100)
    assert privacy.redact_expired() == 0  # RETENTION_DAYS is None
    assert privacy.redact_expired(30, batch_size=2, max_batches=1) == 2  # stopped early
    assert privacy.redact_expired(30, batch_size=2) == 3  # carries on where it was
    assert not Email.objects.filter(redacted_at__isnull=True).exists()


def test_a_redacted_email_is_not_resent(template, esp):
    email = queue()
    Email.objects.filter(pk=email.pk).update(status=EmailStatus.FAILED)
    age(email, 100)
    privacy.redact_expired(30)
    assert resending.resend(Email.objects.filter(pk=email.pk), force=True) == 0


def test_the_retention_task_is_installed_as_a_beat_row():
    from django_celery_beat.models import PeriodicTask

    from transactional_mail.schedule import install_periodic_tasks

    install_periodic_tasks()
    assert PeriodicTask.objects.get(name="transactional_mail.redact_old_emails").interval.every == 1


def test_many_emails_are_erased_and_exported_in_slices(template, monkeypatch):
    """Every ``IN (...)`` is cut in slices (SQLite caps a statement's variables)."""
    monkeypatch.setattr(privacy, "BATCH_SIZE", 2)
    emails = [queue() for _ in range(5)]
    for email in emails:
        event(email, ANN)
    data = privacy.export_address(ANN)
    assert [e["id"] for e in data["emails"]] == [e.pk for e in emails]
    assert all(len(e["events"]) == 1 for e in data["emails"])
    erasure = privacy.forget_address(ANN)
    assert (erasure.emails, erasure.cancelled, erasure.events) == (5, 5, 5)
    assert not Email.objects.exclude(to=["[erased]"]).exists()


@pytest.mark.parametrize("value", [0, -1, "30", 1.5, True])
def test_a_bad_retention_setting_fails_the_check(settings, value):
    from django.core import checks

    from transactional_mail.checks import check_settings

    settings.TRANSACTIONAL_MAIL = {"RETENTION_DAYS": value}
    assert checks.Error(
        f"TRANSACTIONAL_MAIL['RETENTION_DAYS'] is {value!r}; it must be a whole number of "
        "days >= 1, or None to keep bodies and contexts.",
        hint="Emails older than it lose their bodies and context snapshots (docs/privacy.md).",
        id="transactional_mail.E003",
    ) in check_settings()


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="concurrent sessions need PostgreSQL (TM_TEST_POSTGRES runs this)")
@pytest.mark.django_db(transaction=True)
def test_two_retention_runs_at_once_redact_each_row_once(template):
    import threading

    emails = [queue() for _ in range(40)]
    Email.objects.filter(pk__in=[e.pk for e in emails]).update(
        status=EmailStatus.SENT, created_at=timezone.now() - datetime.timedelta(days=90))
    results, errors = [], []

    def run():
        try:
            results.append(privacy.redact_expired(30, batch_size=5))
        except Exception as err:
            errors.append(err)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sum(results) == 40
    assert not Email.objects.filter(redacted_at__isnull=True).exists()


@pytest.mark.parametrize("value", [-1, "30", 1.5, True])
def test_a_bad_digest_retention_setting_fails_the_check(settings, value):
    from django.core import checks

    from transactional_mail.checks import check_settings

    settings.TRANSACTIONAL_MAIL = {"DIGEST_RETENTION_DAYS": value}
    assert check_settings() == [checks.Error(
        f"TRANSACTIONAL_MAIL['DIGEST_RETENTION_DAYS'] is {value!r}; it must be a whole number "
        "of days >= 0, or None to keep closed digest windows.",
        hint="Closed windows hold the events' contexts (personal data); 30 days is the "
        "default (docs/privacy.md).",
        id="transactional_mail.E003",
    )]


@pytest.mark.parametrize("value", [0, 7, None])
def test_a_good_digest_retention_setting_passes_the_check(settings, value):
    from transactional_mail.checks import check_settings

    settings.TRANSACTIONAL_MAIL = {"DIGEST_RETENTION_DAYS": value}
    assert check_settings() == []
