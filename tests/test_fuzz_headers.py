"""Property-based: no text in a subject, a display name, a header value, a tag or an
attachment name ever becomes a second header line or a second recipient.

Each example either is refused by ``send()`` with ``InvalidEmailOption`` or, once built
into the message the backend gets, parses back to exactly the headers that were set,
with one mailbox per address.
"""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from anymail.exceptions import AnymailInvalidAddress
from anymail.utils import parse_address_list
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_template
from transactional_mail import delivery, failures, headers
from transactional_mail.exceptions import InvalidEmailOption
from transactional_mail.rendering import RenderedEmail
from transactional_mail.rendering.compose import one_line

pytestmark = pytest.mark.django_db

#: Characters a mail header must never carry raw, and some that merely look odd.
HOSTILE = "\r\n\x0b\x0c\x00\x1c\x1d\x1e\x85\u2028\u2029\t:;,<>\"'@=?\\"
hostile_text = st.text(
    alphabet=st.one_of(st.sampled_from(HOSTILE), st.characters(codec="utf-8")),
    max_size=40,
) | st.builds(
    lambda a, b: f"{a}\r\nBcc: evil@example.com\r\n{b}", st.text(max_size=5), st.text(max_size=5)
) | st.builds(lambda a: f"=?utf-8?q?{a}=0ABcc=3A_evil=40example.com?=", st.text("abc", max_size=3))

#: What the message must carry, and nothing more (Django adds the rest).
EXPECTED_HEADERS = {
    "subject", "from", "to", "reply-to", "x-order", "date", "message-id",
    "content-type", "mime-version", "content-transfer-encoding",
}


@pytest.fixture
def template():
    return make_template()


def queue_or_refuse(name: str, value: str):
    try:
        return transactional_mail.send(
            "order_confirmation",
            f'"{name}" <ann@example.com>' if name else "ann@example.com",
            ORDER_CONTEXT,
            reply_to=f"{value} <help@example.com>",
            headers={"X-Order": value},
            tags=[value or "t"],
            attachments=[(f"{value}.pdf", b"%PDF", "application/pdf")],
        )
    except InvalidEmailOption:
        return None


@override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
@given(name=hostile_text, value=hostile_text, subject=hostile_text)
def test_no_value_becomes_a_second_header_or_recipient(template, name, value, subject):
    row = queue_or_refuse(name, value)
    if row is None:
        return
    rendered = RenderedEmail(subject=one_line(subject), html="<p>Hi</p>", text="Hi")
    message = delivery.build_message(row, rendered)
    try:
        raw = message.message().as_bytes()
    except ValueError as err:
        # An invalid (not unsafe) address: its email fails at delivery, sent to nobody.
        assert failures.classify_error(err)[0] is failures.Failure.PERMANENT, err
        return
    parsed = message_from_bytes(raw, policy=policy.compat32)

    assert {key.lower() for key in parsed} <= EXPECTED_HEADERS
    assert len(parsed.get_all("To")) == 1
    assert parsed.get_all("Bcc") is None and parsed.get_all("Cc") is None
    # The ESP backends read recipients with Anymail's parser: one mailbox, or refused
    # (an invalid address fails its email at delivery, sent to nobody).
    try:
        recipients = parse_address_list(row.to)
    except AnymailInvalidAddress:
        recipients = None
    if recipients is not None:
        # One mailbox, at the domain written (quoting games may bend its local part).
        [recipient] = recipients
        assert recipient.domain == "example.com", recipient
    # Every header line is a header or a folded continuation of one.
    head = raw.split(b"\n\n", 1)[0]
    for line in head.split(b"\n"):
        assert line[:1] in (b" ", b"\t") or b":" in line, line


@given(value=hostile_text)
def test_one_line_leaves_no_forbidden_character(value):
    line = headers.one_line(value)
    assert len(line.splitlines()) <= 1
    assert not headers.FORBIDDEN.search(line)
    assert headers.forbidden_character(line) == ""
