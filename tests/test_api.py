"""send(): one outbox row in the caller's transaction, delivery enqueued on commit."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_layout, make_template
from tests.testapp.models import Customer
from transactional_mail import api
from transactional_mail.exceptions import (
    ContextNotSerializable,
    InvalidEmailOption,
    TemplateNotFound,
)
from transactional_mail.models import Email, EmailStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def template():
    return make_template(layout=make_layout())


@pytest.fixture
def enqueued():
    with mock.patch("transactional_mail.tasks.deliver.apply_async") as apply_async:
        yield apply_async


def test_send_writes_one_queued_row_and_enqueues_on_commit(template, enqueued,
                                                           django_capture_on_commit_callbacks):
    """The row is written at once; the task is published only when the transaction commits."""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        email = transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT)
        assert enqueued.call_count == 0
    assert len(callbacks) == 1
    enqueued.assert_called_once_with((email.pk,), producer=mock.ANY, retry=False)
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED
    assert email.to == ["ann@example.com"]
    assert email.template_key == "order_confirmation"
    assert email.template_revision is None  # chosen by the worker at the first attempt
    assert email.from_email == "Shop <shop@example.com>"
    assert email.category == "orders"
    assert email.context == ORDER_CONTEXT


def test_rolled_back_transaction_writes_and_enqueues_nothing(template, enqueued,
                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, \
            pytest.raises(RuntimeError), transaction.atomic():
            transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT)
            raise RuntimeError("the order failed")
    assert callbacks == []
    assert Email.objects.count() == 0
    enqueued.assert_not_called()


def test_unknown_key_raises_template_not_found_and_writes_nothing():
    with pytest.raises(TemplateNotFound) as info:
        transactional_mail.send("no_such_template", "ann@example.com")
    assert isinstance(info.value, LookupError)
    assert "no_such_template" in str(info.value)
    assert Email.objects.count() == 0


def test_context_that_is_not_json_names_the_offending_key(template):
    with pytest.raises(ContextNotSerializable) as info:
        transactional_mail.send(
            "order_confirmation", "ann@example.com",
            {"order": {"items": [{"sku": "A"}, {"price": object()}]}},
        )
    assert "context['order']['items'][1]['price']" in str(info.value)
    assert isinstance(info.value, TypeError)
    assert Email.objects.count() == 0


def test_context_model_instance_is_refused(template):
    customer = Customer.objects.create(name="Ann", email="ann@example.com")
    with pytest.raises(ContextNotSerializable, match=r"context\['customer'\] is a Customer"):
        transactional_mail.send("order_confirmation", "ann@example.com", {"customer": customer})


def test_context_nan_is_refused(template):
    with pytest.raises(ContextNotSerializable, match=r"context\['total'\]"):
        transactional_mail.send("order_confirmation", "a@example.com", {"total": float("nan")})


def test_context_is_stored_as_plain_json(template):
    order_id = uuid.uuid4()
    email = transactional_mail.send("order_confirmation", "ann@example.com", {
        "total": Decimal("12.50"), "day": datetime.date(2026, 11, 23), "id": order_id,
    })
    email.refresh_from_db()
    assert email.context == {"total": "12.50", "day": "2026-11-23", "id": str(order_id)}


def test_language_falls_back_from_region_to_language_to_default():
    make_template(subject="Default", category="orders")
    make_template(language="fr", subject="Français", category="commandes")
    email = transactional_mail.send("order_confirmation", "a@example.com", language="fr-CA")
    assert email.language == "fr-ca"
    assert email.category == "commandes"
    email = transactional_mail.send("order_confirmation", "a@example.com", language="de")
    assert email.category == "orders"


def test_only_a_language_variant_without_default_is_not_found_for_others():
    make_template(language="fr")
    transactional_mail.send("order_confirmation", "a@example.com", language="fr-be")
    with pytest.raises(TemplateNotFound, match="'de', ''"):
        transactional_mail.send("order_confirmation", "a@example.com", language="de")


def test_template_lookup_is_cached_and_invalidated_on_save(django_assert_num_queries):
    template = make_template(category="orders")
    transactional_mail.send("order_confirmation", "a@example.com")
    with django_assert_num_queries(1):  # the INSERT only
        transactional_mail.send("order_confirmation", "a@example.com")
    template.category = "receipts"
    template.save()
    assert transactional_mail.send("order_confirmation", "a@example.com").category == "receipts"
    template.key = "renamed"
    template.save()
    with pytest.raises(TemplateNotFound):
        transactional_mail.send("order_confirmation", "a@example.com")
    template.delete()
    with pytest.raises(TemplateNotFound):
        transactional_mail.send("renamed", "a@example.com")


def test_send_at_in_the_future_is_scheduled(template):
    later = timezone.now() + datetime.timedelta(days=2)
    email = transactional_mail.send("order_confirmation", "a@example.com", send_at=later)
    assert email.status == EmailStatus.SCHEDULED
    assert email.next_attempt_at == later


@pytest.mark.parametrize(("delay", "expected"), [
    ("2h", datetime.timedelta(hours=2)),
    ("7d", datetime.timedelta(days=7)),
    (90, datetime.timedelta(seconds=90)),
    (datetime.timedelta(minutes=5), datetime.timedelta(minutes=5)),
])
def test_delay_forms(template, delay, expected):
    before = timezone.now()
    email = transactional_mail.send("order_confirmation", "a@example.com", delay=delay)
    assert email.status == EmailStatus.SCHEDULED
    assert before + expected <= email.next_attempt_at <= timezone.now() + expected


def test_bad_delay_says_what_is_accepted(template):
    with pytest.raises(InvalidEmailOption, match='"7d"'):
        transactional_mail.send("order_confirmation", "a@example.com", delay="a week")


def test_naive_send_at_is_refused(template):
    with pytest.raises(InvalidEmailOption, match="timezone-aware"):
        transactional_mail.send("order_confirmation", "a@example.com",
                                send_at=datetime.datetime(2030, 1, 1))


def test_a_single_tag_string_is_one_tag(template):
    """tags="orders" is the tag "orders", not six one-letter tags."""
    email = transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT,
                                    tags="orders")
    assert email.tags == ["orders"]


def test_options_are_stored(template):
    customer = Customer.objects.create(name="Ann", email="ann@example.com")
    email = transactional_mail.send(
        "order_confirmation", ["ann@example.com", "bob@example.com"], ORDER_CONTEXT,
        cc="cc@example.com", bcc=["audit@example.com"], reply_to="help@example.com",
        from_email="Orders <orders@example.com>", headers={"X-Order": "A-1001"},
        tags=["orders"], metadata={"order": 7}, category="receipts", source=customer,
        attachments=[("invoice.pdf", b"%PDF-1.4", "application/pdf"),
                     ContentFile(b"a,b\n", name="items.csv")],
    )
    email.refresh_from_db()
    assert email.to == ["ann@example.com", "bob@example.com"]
    assert email.cc == ["cc@example.com"]
    assert email.bcc == ["audit@example.com"]
    assert email.reply_to == ["help@example.com"]
    assert email.from_email == "Orders <orders@example.com>"
    assert email.headers == {"X-Order": "A-1001"}
    assert email.tags == ["orders"]
    assert email.metadata == {"order": 7}
    assert email.category == "receipts"
    assert email.source_object_id == str(customer.pk)
    assert email.source_content_type.model_class() is Customer
    assert [a["filename"] for a in email.attachments] == ["invoice.pdf", "items.csv"]
    assert email.attachments[1]["mimetype"] == "text/csv"


@pytest.mark.parametrize("option", [
    {"headers": {"X-Evil": "a\r\nBcc: victim@example.com"}},
    {"from_email": "a@example.com\nBcc: victim@example.com"},
    {"to": "a@example.com\nBcc: victim@example.com"},
    {"headers": {"Bad Name": "x"}},
])
def test_header_injection_is_refused(template, option):
    kwargs = {"to": "a@example.com", **option}
    with pytest.raises(InvalidEmailOption):
        transactional_mail.send("order_confirmation", **kwargs)
    assert Email.objects.count() == 0


def test_same_idempotency_key_returns_the_existing_row(template):
    first = transactional_mail.send("order_confirmation", "a@example.com",
                                    idempotency_key="order-7-confirmation")
    second = transactional_mail.send("order_confirmation", "a@example.com",
                                     idempotency_key="order-7-confirmation")
    assert second.pk == first.pk
    assert Email.objects.count() == 1


def test_broker_down_at_commit_does_not_raise(template, django_capture_on_commit_callbacks):
    """The request survives a dead broker; the row stays queued for the sweep."""
    from kombu.exceptions import OperationalError

    with mock.patch("transactional_mail.tasks.deliver.apply_async",
                    side_effect=OperationalError("connection refused")) as apply_async, \
            django_capture_on_commit_callbacks(execute=True):
        email = transactional_mail.send("order_confirmation", "a@example.com")
    apply_async.assert_called_once()
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED


def test_long_delay_is_left_to_the_sweep(template, enqueued, django_capture_on_commit_callbacks):
    """Waits longer than MAX_COUNTDOWN never become broker countdowns."""
    with django_capture_on_commit_callbacks(execute=True):
        transactional_mail.send("order_confirmation", "a@example.com", delay="7d")
        transactional_mail.send("order_confirmation", "a@example.com", delay="60s")
    assert enqueued.call_count == 1
    assert 55 <= enqueued.call_args.kwargs["countdown"] <= 60


def test_queue_setting_routes_the_task(template, enqueued, settings,
                                       django_capture_on_commit_callbacks):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "QUEUE": "mail"}
    with django_capture_on_commit_callbacks(execute=True):
        transactional_mail.send("order_confirmation", "a@example.com")
    assert enqueued.call_args.kwargs["queue"] == "mail"


def test_parse_delay_rejects_bool():
    with pytest.raises(InvalidEmailOption):
        api.parse_delay(True)


def test_metadata_that_is_not_json_names_metadata(template):
    with pytest.raises(ContextNotSerializable, match=r"^metadata\['order'\] is a object"):
        transactional_mail.send("order_confirmation", "a@example.com", metadata={"order": object()})
