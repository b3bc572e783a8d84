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
from tests.factories import ORDER_CONTEXT, make_layout, make_template, published
from tests.hostile import SEPARATOR_IDS, SEPARATORS
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


def test_send_writes_one_queued_row_and_enqueues_on_commit(template, enqueued,
                                                           django_capture_on_commit_callbacks):
    """The row is written at once; the task is published only when the transaction commits."""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        email = transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT)
        assert enqueued.call_count == 0
    assert len(callbacks) == 1
    assert published(enqueued) == [(email.pk,)]
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

    with mock.patch("transactional_mail.publishing.publish",
                    side_effect=OperationalError("connection refused")) as publish, \
            django_capture_on_commit_callbacks(execute=True):
        email = transactional_mail.send("order_confirmation", "a@example.com")
    publish.assert_called_once()
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


# --- Hardening: header values, recipients, attachments (issue 11, section 5) -----------


def hostile_option(field: str, separator: str) -> tuple[dict, str]:
    """send() options with ``separator`` in ``field``, and the name the error gives it."""
    name = f"Ann{separator}Bcc: evil@example.com <ann@example.com>"
    value = f"A-1{separator}Bcc: evil@example.com"
    return {
        "to": ({"to": name}, "to"),
        "cc": ({"cc": [name]}, "cc"),
        "bcc": ({"bcc": [name]}, "bcc"),
        "reply_to": ({"reply_to": name}, "reply_to"),
        "from_email": ({"from_email": name}, "from_email"),
        "header": ({"headers": {"X-Order": value}}, "headers['X-Order']"),
        "tag": ({"tags": [value]}, "tags"),
        "filename": ({"attachments": [(value + ".pdf", b"%PDF", "application/pdf")]},
                     "attachment filename"),
        "mimetype": ({"attachments": [("a.pdf", b"%PDF", "application/pdf" + value)]},
                     "attachment mimetype"),
    }[field]


@pytest.mark.parametrize("separator", SEPARATORS, ids=SEPARATOR_IDS)
@pytest.mark.parametrize("field", ["to", "cc", "bcc", "reply_to", "from_email", "header",
                                   "tag", "filename", "mimetype"])
def test_every_line_separator_is_refused_in_every_header_value(template, field, separator):
    """The error names the option and the character; nothing is written."""
    options, option_name = hostile_option(field, separator)
    kwargs = {"to": "ann@example.com", **options}
    with pytest.raises(InvalidEmailOption) as raised:
        transactional_mail.send("order_confirmation", **kwargs)
    message = str(raised.value)
    assert message.startswith(f"{option_name} ")
    assert SEPARATORS[separator] in message
    assert Email.objects.count() == 0


@pytest.mark.parametrize("value", [
    "ann@example.com\r\nBcc: evil@example.com",
    "=?utf-8?q?Ann=0D=0ABcc:_evil@example.com?= <ann@example.com>",
    "=?utf-8?b?QW5uDQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?= <ann@example.com>",
])
def test_encoded_word_and_crlf_tricks_in_addresses_are_refused(template, value):
    with pytest.raises(InvalidEmailOption, match="is not one line"):
        transactional_mail.send("order_confirmation", value)


def test_an_encoded_word_subject_header_trick_is_refused(template):
    with pytest.raises(InvalidEmailOption, match="encoded word that decodes to a line feed"):
        transactional_mail.send("order_confirmation", "ann@example.com",
                                headers={"X-Note": "=?utf-8?q?x=0AX-Injected:_1?="})


@pytest.mark.parametrize("value", [
    "ann@example.com <evil@example.com>",
    "Ann Bcc: evil@example.com <ann@example.com>",
    "ann@example.com, evil@example.com",
    "<ann@example.com> <evil@example.com>",
    "Friends: ann@example.com, evil@example.com;",
])
@pytest.mark.parametrize("option", ["to", "cc", "bcc", "reply_to", "from_email"])
def test_an_address_string_that_names_two_mailboxes_is_refused(template, option, value):
    """Anymail's ESP backends would send to both: one value is one mailbox."""
    kwargs = {"to": "ann@example.com", option: value}
    with pytest.raises(InvalidEmailOption, match=f"^{option} .* is 2 addresses in one string"):
        transactional_mail.send("order_confirmation", **kwargs)
    assert Email.objects.count() == 0


def test_display_names_that_are_one_mailbox_are_accepted(template):
    email = transactional_mail.send(
        "order_confirmation", ['"Doe, Ann" <ann@example.com>', "Zoë Ørsted <zoe@example.com>"],
        reply_to="Support (EU) <help@example.com>", from_email="Shop\t<shop@example.com>")
    assert email.to == ['"Doe, Ann" <ann@example.com>', "Zoë Ørsted <zoe@example.com>"]


@pytest.mark.parametrize("option", ["to", "cc", "bcc", "reply_to", "from_email"])
def test_an_address_over_320_characters_is_refused(template, option):
    longest = "a" * 64 + "@" + "b" * 251 + ".com"  # 320: the most RFC 3696 allows
    transactional_mail.send("order_confirmation", **{"to": "ann@example.com", option: longest})
    kwargs = {"to": "ann@example.com", option: "a" + longest}
    with pytest.raises(InvalidEmailOption,
                       match=f"^{option} .* is 321 characters long; an address has at most 320"):
        transactional_mail.send("order_confirmation", **kwargs)


def test_more_recipients_than_max_recipients_are_refused(template):
    """50 by default (Postmark's and Amazon SES's cap), counted over to + cc + bcc."""
    to = [f"to{n}@example.com" for n in range(30)]
    cc = [f"cc{n}@example.com" for n in range(10)]
    bcc = [f"bcc{n}@example.com" for n in range(10)]
    transactional_mail.send("order_confirmation", to, cc=cc, bcc=bcc)
    with pytest.raises(InvalidEmailOption) as raised:
        transactional_mail.send("order_confirmation", to, cc=cc, bcc=[*bcc, "one@example.com"])
    assert str(raised.value) == (
        "The email has 51 recipients (to + cc + bcc); at most 50 are allowed "
        "(TRANSACTIONAL_MAIL['MAX_RECIPIENTS']). Send one email per recipient, or raise the "
        "setting if your ESP accepts more in one message.")
    assert Email.objects.count() == 1


def test_max_recipients_is_read_at_call_time(template, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "MAX_RECIPIENTS": 2}
    transactional_mail.send("order_confirmation", ["a@example.com"], cc="b@example.com")
    with pytest.raises(InvalidEmailOption, match="3 recipients .* at most 2"):
        transactional_mail.send("order_confirmation", ["a@example.com"], cc="b@example.com",
                                bcc="c@example.com")
    with pytest.raises(InvalidEmailOption, match="^reply_to has 3 addresses; at most 2"):
        transactional_mail.send("order_confirmation", "a@example.com",
                                reply_to=["a@example.com", "b@example.com", "c@example.com"])


def test_ten_thousand_recipients_are_refused_before_any_is_parsed(template):
    import time

    started = time.monotonic()
    with pytest.raises(InvalidEmailOption, match="^to has 10000 addresses; at most 50"):
        transactional_mail.send("order_confirmation",
                                [f"user{n}@example.com" for n in range(10_000)])
    assert time.monotonic() - started < 1
    assert Email.objects.count() == 0


def test_attachments_over_max_attachments_size_are_refused(template, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "MAX_ATTACHMENTS_SIZE": 100}
    transactional_mail.send("order_confirmation", "a@example.com",
                            attachments=[("a.txt", b"x" * 60), ("b.txt", "y" * 40)])
    with pytest.raises(InvalidEmailOption) as raised:
        transactional_mail.send("order_confirmation", "a@example.com",
                                attachments=[("a.txt", b"x" * 60), ("b.txt", "é" * 21)])
    assert str(raised.value) == (
        "The attachments total 102 bytes with 'b.txt'; at most 100 are allowed "
        "(TRANSACTIONAL_MAIL['MAX_ATTACHMENTS_SIZE']). Link to large files instead, or raise "
        "the setting up to your ESP's message size limit (see the settings reference).")
    assert Email.objects.count() == 1


def test_the_default_attachment_limit_fits_the_strictest_esp(template):
    """7 MB of files is 9.3 MB base64-encoded: under Postmark's 10 MB per message."""
    from transactional_mail.conf import DEFAULTS

    assert DEFAULTS["MAX_ATTACHMENTS_SIZE"] == 7_000_000
    assert DEFAULTS["MAX_ATTACHMENTS_SIZE"] * 4 / 3 < 10_000_000 - 500_000
    with pytest.raises(InvalidEmailOption, match="total 7000001 bytes"):
        transactional_mail.send("order_confirmation", "a@example.com",
                                attachments=[("big.bin", b"\0" * 7_000_001)])


def test_a_huge_file_is_not_read_past_the_limit(template, settings):
    """A File attachment is read no further than the limit allows (bounded memory)."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "MAX_ATTACHMENTS_SIZE": 1000}
    import io

    from django.core.files.base import File

    reads = []

    class CountingReads(io.BytesIO):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    big = File(CountingReads(b"x" * 5_000_000), name="huge.bin")
    with pytest.raises(InvalidEmailOption, match="total 5000000 bytes with 'huge.bin'"):
        transactional_mail.send("order_confirmation", "a@example.com", attachments=[big])
    assert reads == [1001]


@pytest.mark.parametrize("option", ["context", "metadata"])
@pytest.mark.parametrize("data, path", [
    ({"note": "a\x00b"}, r"\['note'\]"),
    ({"items": [{"name": "ok"}, {"name": "\x00"}]}, r"\['items'\]\[1\]\['name'\]"),
    ({"bad\x00key": 1}, r"\['bad\\x00key'\] \(key\)"),
])
def test_a_nul_character_is_refused_before_the_database_sees_it(template, option, data, path):
    """PostgreSQL's jsonb cannot hold NUL: the INSERT would fail and take the caller's
    transaction with it (on PostgreSQL only). Refused on every database, naming the value."""
    with pytest.raises(ContextNotSerializable, match=rf"^{option}{path} contains a NUL"):
        transactional_mail.send("order_confirmation", "ann@example.com", **{option: data})
    assert not Email.objects.exists()


def test_text_that_merely_spells_the_json_escape_of_nul_is_kept(template):
    email = transactional_mail.send(
        "order_confirmation", "ann@example.com", {"note": "a\\u0000b"}
    )
    assert Email.objects.get(pk=email.pk).context == {"note": "a\\u0000b"}


@pytest.mark.parametrize("option", ["context", "metadata"])
@pytest.mark.parametrize("data, path, code", [
    ({"note": "cut emoji \ud83d"}, r"\['note'\]", "d83d"),
    ({"items": ["ok", "\udc80 from surrogateescape"]}, r"\['items'\]\[1\]", "dc80"),
    ({"bad\udfffkey": 1}, r"\['bad\\udfffkey'\] \(key\)", "dfff"),
])
def test_a_lone_surrogate_is_refused_before_the_database_sees_it(template, option, data, path,
                                                                 code):
    """A lone UTF-16 surrogate is no character: PostgreSQL refuses its JSON escape, which
    would fail the caller's transaction (on PostgreSQL only), or a whole scheduled batch."""
    with pytest.raises(ContextNotSerializable,
                       match=rf"^{option}{path} contains a lone UTF-16 surrogate \(\\u{code}\)"):
        transactional_mail.send("order_confirmation", "ann@example.com", **{option: data})
    assert not Email.objects.exists()


def test_a_character_outside_the_basic_plane_is_stored(template):
    """Its JSON escape is a surrogate pair: a whole character, kept."""
    email = transactional_mail.send("order_confirmation", "ann@example.com",
                                    {"note": "😀 \\ud800 spelled out"})
    assert Email.objects.get(pk=email.pk).context == {"note": "😀 \\ud800 spelled out"}


def test_is_test_marks_a_staff_test_send():
    make_template()
    assert transactional_mail.send("order_confirmation", "ann@example.com", is_test=True).is_test
    assert not transactional_mail.send("order_confirmation", "ann@example.com").is_test


def test_an_unsent_row_whose_source_key_is_too_long_is_written_unlinked():
    """record_unsent logs a trigger that could not queue (send() refused the source's key,
    say): a key over 255 characters would fail the INSERT (and on PostgreSQL the caller's
    transaction), so the row is written without the link, saying why."""
    from transactional_mail.api import record_unsent

    source = Customer(pk=10**300)  # a 301-character key
    email = record_unsent("order_confirmation", "Trigger 'x' could not queue.",
                          to=["ann@example.com"], trigger_key="x", source=source)
    email = Email.objects.get(pk=email.pk)
    assert email.status == EmailStatus.FAILED
    assert email.source_object_id == "" and email.source_content_type is None
    assert email.last_error.startswith("Trigger 'x' could not queue. (Its source")
    assert "too long a key to link" in email.last_error
