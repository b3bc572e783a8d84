"""Header values: what reaches the wire is one line per header, one mailbox per address.

The wire tests build the message the worker sends from a stored row (as written before
``send()`` checked it, or with ``QuerySet.update``) and read ``message().as_bytes()``.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import re

import pytest
from django.utils import timezone

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_template
from tests.hostile import SEPARATOR_IDS, SEPARATORS
from transactional_mail import delivery, headers
from transactional_mail.exceptions import InvalidEmailOption
from transactional_mail.models import Email, EmailStatus
from transactional_mail.rendering import RenderedEmail

#: An RFC 2047 encoded word that a mail client decodes to CR LF "Bcc: evil@example.com".
ENCODED_BREAK = "=?utf-8?q?=0D=0ABcc:_evil@example.com?="


# --- The checks ----------------------------------------------------------------------


@pytest.mark.parametrize(("separator", "name"), SEPARATORS.items(), ids=SEPARATOR_IDS)
def test_every_line_separator_is_named(separator, name):
    assert headers.forbidden_character(f"Hi{separator}Bcc: evil@example.com") == (
        f"contains {name}")


def test_tab_and_ordinary_unicode_are_one_line():
    for value in ("Order\tA-1", "Zoë Ørsted", "注文 A-1", "Ünïcödé — “quoted”", "emoji 📦"):
        assert headers.forbidden_character(value) == ""
        assert headers.one_line(value) == value


def test_an_encoded_word_that_decodes_to_a_line_break_is_refused():
    """A mail client decodes RFC 2047 words: the check reads the value as it will."""
    assert headers.forbidden_character(f"Hi {ENCODED_BREAK}") == (
        "contains an RFC 2047 encoded word that decodes to a carriage return (CR)")
    assert headers.forbidden_character("=?utf-8?b?SGkNCkJjYzogZXZpbEBleGFtcGxlLmNvbQ==?=") != ""
    # A harmless encoded word is left alone.
    assert headers.forbidden_character("=?utf-8?q?Caf=C3=A9?=") == ""
    assert headers.one_line("=?utf-8?q?Caf=C3=A9?=") == "=?utf-8?q?Caf=C3=A9?="


def test_undecodable_encoded_words_do_not_crash_the_check():
    for value in ("=?nope-charset?q?x?=", "=?utf-8?b?!!!?=", "=?utf-8?q?=ZZ?="):
        headers.forbidden_character(value)
        headers.one_line(value)


@pytest.mark.parametrize("separator", SEPARATORS, ids=SEPARATOR_IDS)
def test_one_line_collapses_each_separator_to_a_space(separator):
    assert headers.one_line(f"Order A-1{separator}{separator}Bcc: x") == "Order A-1 Bcc: x"


def test_one_line_decodes_a_hostile_encoded_word_instead_of_passing_it_on():
    assert headers.one_line(f"Hi {ENCODED_BREAK}") == "Hi Bcc: evil@example.com"
    nested = "=?utf-8?q?=3D=3Futf-8=3Fq=3F=3D0A=3F=3D?=\n"  # decodes to an encoded LF
    assert headers.forbidden_character(headers.one_line(nested)) == ""


@pytest.mark.parametrize(("value", "problem"), [
    ("a@example.com <b@example.com>", "2 addresses in one string"),
    ("Ann Bcc: evil@example.com <ann@example.com>", "2 addresses in one string"),
    ("a@example.com, b@example.com", "2 addresses in one string"),
    ("<a@example.com> <b@example.com>", "2 addresses in one string"),
    ("Group: a@example.com, b@example.com;", "2 addresses in one string"),
    ("a" * 310 + "@example.com", "322 characters long"),
    ("ann@example.com\u2028Bcc: evil@example.com",
     "not one line: it contains a line separator (U+2028)"),
    (f"{ENCODED_BREAK} <ann@example.com>", "not one line: it contains an RFC 2047 "
                                           "encoded word that decodes to a carriage return"),
])
def test_address_problems(value, problem):
    assert problem in headers.address_problem(value)


@pytest.mark.parametrize("value", [
    "ann@example.com", "Ann <ann@example.com>", '"Doe, Ann" <ann@example.com>',
    "Zoë Ørsted <zoe@example.com>", "Ann (work) <ann@example.com>",
    "not an address",  # invalid, not unsafe: it fails its email at delivery
])
def test_one_mailbox_per_value_passes(value):
    assert headers.address_problem(value) == ""


# --- What reaches the wire -------------------------------------------------------------


def stored_email(**fields) -> Email:
    """A row as it may sit in the database, unchecked (stored before the fix)."""
    values = {"template_key": "order_confirmation", "from_email": "Shop <shop@example.com>",
              "to": ["ann@example.com"], "status": EmailStatus.QUEUED,
              "next_attempt_at": timezone.now()}
    values.update(fields)
    return Email(**values)


def rendered(subject="Order A-1 confirmed") -> RenderedEmail:
    return RenderedEmail(subject=subject, html="<p>Hello</p>", text="Hello")


_HEADER_LINE = re.compile(rb"^(?:[!-9;-~]+:|[ \t])")


def assert_one_line_headers(message) -> bytes:
    """Every line of every header block on the wire is a header or its folded tail."""
    raw = message.message().as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    boundaries = {b"--" + part.get_boundary().encode() for part in parsed.walk()
                  if part.is_multipart()}
    assert not re.search(rb"[\x00\x0b\x0c\x1c-\x1e\r]|\xc2\x85|\xe2\x80[\xa8\xa9]", raw)
    in_headers = True
    for line in raw.split(b"\n"):
        if line.rstrip(b"-") in boundaries or line in boundaries:
            in_headers = True
        elif in_headers and line == b"":
            in_headers = False
        elif in_headers:
            assert _HEADER_LINE.match(line), line
    names = {name.lower() for name in parsed}
    assert "bcc" not in names and "x-injected" not in names
    return raw


def test_a_clean_message_passes_the_wire_check():
    message = delivery.build_message(stored_email(
        to=["Zoë Ørsted <zoe@example.com>"], headers={"X-Order": "A-1"}, tags=["orders"],
        attachments=[{"filename": "facture-été.pdf", "mimetype": "application/pdf",
                      "content": base64.b64encode(b"%PDF").decode()}]), rendered())
    raw = assert_one_line_headers(message)
    assert b"X-Order: A-1" in raw


@pytest.mark.parametrize("separator", SEPARATORS, ids=SEPARATOR_IDS)
def test_stored_header_values_reach_the_wire_as_one_line(separator):
    """Subject, custom headers, tags and attachment names stored before the fix."""
    hostile = f"x{separator}X-Injected: 1{separator}Bcc: evil@example.com"
    message = delivery.build_message(stored_email(
        headers={"X-Order": hostile}, tags=[hostile],
        attachments=[{"filename": hostile + ".txt", "mimetype": "text/plain",
                      "content": base64.b64encode(b"hi").decode()}],
    ), rendered(subject=hostile))
    assert_one_line_headers(message)
    assert message.subject == "x X-Injected: 1 Bcc: evil@example.com"
    assert message.extra_headers == {"X-Order": "x X-Injected: 1 Bcc: evil@example.com"}
    assert message.tags == ["x X-Injected: 1 Bcc: evil@example.com"]
    assert message.attachments[0][0] == "x X-Injected: 1 Bcc: evil@example.com.txt"
    assert message.recipients() == ["ann@example.com"]


def test_a_stored_encoded_word_subject_is_decoded_not_passed_on():
    message = delivery.build_message(stored_email(), rendered(subject=f"Hi {ENCODED_BREAK}"))
    assert message.subject == "Hi Bcc: evil@example.com"
    assert_one_line_headers(message)


@pytest.mark.parametrize("separator", SEPARATORS, ids=SEPARATOR_IDS)
@pytest.mark.parametrize("field", ["from_email", "to", "cc", "bcc", "reply_to"])
def test_a_stored_address_that_is_not_one_line_never_reaches_the_backend(field, separator):
    """A display name cannot be made safe by guessing: the message is not built."""
    value = f"Ann{separator}Bcc: evil@example.com <ann@example.com>"
    row = stored_email(**{field: value if field == "from_email" else [value]})
    with pytest.raises(InvalidEmailOption, match=f"^{field} .* is not one line: it contains"):
        delivery.build_message(row, rendered())


@pytest.mark.parametrize("value", [
    "Ann Bcc: evil@example.com <ann@example.com>",  # what one_line would make of "Ann\n..."
    "ann@example.com <evil@example.com>",
    "ann@example.com, evil@example.com",
])
def test_a_stored_address_naming_two_mailboxes_never_reaches_the_backend(value):
    """Anymail would split each of these into two recipients."""
    with pytest.raises(InvalidEmailOption, match="2 addresses in one string"):
        delivery.build_message(stored_email(to=[value]), rendered())


@pytest.mark.django_db
def test_the_esp_receives_one_line_values_from_a_row_stored_before_the_fix(esp):
    """Through the real Postmark backend: the JSON the ESP gets has no separator left."""
    make_template()
    row = transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT,
                                  headers={"X-Order": "A-1"}, tags=["orders"])
    hostile = "A-1\u2028Bcc: evil@example.com\x85X-Injected: 1"
    Email.objects.filter(pk=row.pk).update(headers={"X-Order": hostile}, tags=[hostile])
    assert delivery.deliver(row.pk).status == EmailStatus.SENT
    [request] = esp.requests
    sent = request.json
    assert sent["Headers"] == [{"Name": "X-Order",
                                "Value": "A-1 Bcc: evil@example.com X-Injected: 1"}]
    assert sent["Tag"] == "A-1 Bcc: evil@example.com X-Injected: 1"
    assert sent["To"] == "ann@example.com" and "Bcc" not in sent


@pytest.mark.django_db
def test_a_row_stored_with_a_smuggled_recipient_is_not_sent(esp):
    make_template()
    row = transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT)
    Email.objects.filter(pk=row.pk).update(to=["Ann\u2028Bcc: evil@example.com <ann@example.com>"])
    delivery.deliver(row.pk)
    assert esp.requests == []
    row.refresh_from_db()
    assert row.status == EmailStatus.FAILED  # at once: a retry would refuse it again
    assert row.attempts == 1
    assert row.last_error.startswith("[permanent] InvalidEmailOption")
    assert "is not one line: it contains a line separator (U+2028)" in row.last_error


@pytest.mark.parametrize("value", [
    "a@example.com, x", "x, a@example.com", "x y <a@example.com>", "a@example.com <x>",
    "Group: a@example.com;", "a@example.com,", "<x> <a@example.com>", "x: y, a@example.com;",
])
def test_a_value_with_one_at_sign_is_never_two_mailboxes_to_anymail(value):
    """mailbox_count() skips Anymail's parser below two "@": pin the reason it may."""
    from anymail.exceptions import AnymailInvalidAddress
    from anymail.utils import parse_address_list

    with contextlib.suppress(AnymailInvalidAddress):
        assert len(parse_address_list([value])) <= 1
    assert headers.mailbox_count(value) == 1


# --- addr_spec: parseaddr's answer, without the parser for a bare address ----------------

_ADDRESS_ALPHABET = "aZ09._%+-@ <>\"'(),:;[]\\!#$&*/=?^`{|}~é\t"


def _generated_addresses():
    """Bare addresses, near misses (dots, spaces, brackets, quotes) and random strings."""
    import random

    rng = random.Random(20261130)
    samples = ["ann@example.com", "Ann.Lee+tag@mail.example.co.uk", "a_b%c-d@x-y.io",
               "a..b@example.com", ".a@example.com", "a.@example.com", "a@example",
               "a@.example.com", "a@example..com", "a@-x.com", " a@example.com",
               "a@example.com ", "Ann <ann@example.com>", "ann@example.com (Ann)",
               '"a b"@example.com', "a@[127.0.0.1]", "a@b@example.com", "", "@", "a@"]
    for _ in range(20000):
        samples.append("".join(rng.choice(_ADDRESS_ALPHABET) for _ in range(rng.randint(1, 24))))
        local = ".".join(rng.choice(["a", "Zz", "0", "_", "%", "+", "-", ""]) for _ in
                         range(rng.randint(1, 3)))
        domain = ".".join(rng.choice(["x", "ex-ample", "0", "", "-"]) for _ in
                          range(rng.randint(1, 3)))
        samples.append(f"{local}@{domain}")
    return samples


def test_addr_spec_reads_every_address_as_parseaddr_does():
    from email.utils import parseaddr

    from transactional_mail.headers import addr_spec

    differ = [value for value in _generated_addresses() if addr_spec(value) != parseaddr(value)[1]]
    assert differ == []
