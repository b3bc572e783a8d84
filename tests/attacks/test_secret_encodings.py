"""Attacks on secrets in a context: spellings of a secret the redaction does not know.

The attacker reads the send log (view_email only), possibly also authors templates
(an untrusted staff author). The token of the reset link is the prize.
"""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

import transactional_mail
from tests.factories import make_layout, make_template
from transactional_mail import delivery
from transactional_mail.models import Email, EmailAttempt, EmailStatus

TOKEN = "c4k9-1f2e3d4c5b6a"
RESET_URL = f"https://shop.example.com/reset/MQ/{TOKEN}/"
CODE = "493817"


def everything_stored(pk: int) -> str:
    row = Email.objects.get(pk=pk)
    attempts = " ".join(EmailAttempt.objects.filter(email_id=pk).values_list("error", flat=True))
    return " ".join([row.subject, row.html_body, row.text_body, row.last_error,
                     json.dumps(row.context), attempts])


def token_recoverable(text: str) -> bool:
    """The token, in any case, with any non-alphanumerics between its characters."""
    squashed = "".join(ch for ch in text.lower() if ch.isalnum())
    return TOKEN.replace("-", "") in squashed


def deliver_with(html: str, *, text: str = "", subject: str = "Reset", context=None,
                 keys=("reset_url",)) -> int:
    make_template("password_reset", subject=subject, html=html, text=text,
                  category="account", layout=make_layout())
    context = context or {"user": {"name": "Ann"}, "reset_url": RESET_URL, "code": CODE}
    email = transactional_mail.send("password_reset", "ann@example.com", context,
                                    secret_keys=list(keys))
    assert delivery.deliver(email.pk).status == EmailStatus.SENT
    return email.pk


def refused_at_send(html: str, *, text: str = "") -> int:
    """A secret through a filter: refused on save under a key whose starter declares it
    secret, and failed before sending under any other (the email's own secret_keys)."""
    with pytest.raises(ValidationError, match="reset_url"):
        make_template("password_reset", subject="Reset", html=html, text=text,
                      category="account")
    make_template("reset_link", subject="Reset", html=html, text=text, category="account",
                  layout=make_layout())
    email = transactional_mail.send("reset_link", "ann@example.com",
                                    {"reset_url": RESET_URL}, secret_keys=["reset_url"])
    assert delivery.deliver(email.pk).status == EmailStatus.FAILED
    assert "reset_url" in Email.objects.get(pk=email.pk).last_error
    return email.pk


@pytest.mark.django_db
def test_plain_secret_in_html_and_text_is_redacted(esp):
    pk = deliver_with('<p><a href="{{ reset_url }}">{{ reset_url }}</a></p>',
                      text="Reset: {{ reset_url }}")
    assert not token_recoverable(everything_stored(pk))
    assert TOKEN in esp.requests[0].json["HtmlBody"]


@pytest.mark.django_db
def test_long_link_through_the_html_to_text_converter_is_redacted(esp):
    """No text part: the converter makes one; a long link must not be wrapped across
    lines into a spelling the redaction misses."""
    long_url = RESET_URL + "?next=/" + "a" * 120 + "&utm=" + "b" * 40
    pk = deliver_with('<table><tr><td><p>Paste this: {{ reset_url }} and '
                      '<a href="{{ reset_url }}">{{ reset_url }}</a></p></td></tr></table>',
                      context={"reset_url": long_url})
    assert not token_recoverable(everything_stored(pk))


@pytest.mark.django_db
def test_secret_through_upper_filter_is_not_stored(esp):
    pk = refused_at_send("<p>{{ reset_url|upper }}</p>", text="{{ reset_url|upper }}")
    assert esp.requests == []
    assert not token_recoverable(everything_stored(pk))


@pytest.mark.django_db
def test_secret_split_by_slice_is_not_stored(esp):
    pk = refused_at_send('<p>{{ reset_url|slice:":40" }}<br>{{ reset_url|slice:"40:" }}</p>')
    assert esp.requests == []
    assert not token_recoverable(everything_stored(pk))


@pytest.mark.django_db
def test_secret_spelled_out_by_make_list_is_not_stored(esp):
    pk = refused_at_send('<p>{{ reset_url|make_list|join:" " }}</p>')
    assert esp.requests == []
    assert not token_recoverable(everything_stored(pk))


@pytest.mark.django_db
def test_truncated_link_text_leaks_no_token_prefix(esp):
    pk = refused_at_send(f'<p><a href="{{{{ reset_url }}}}">'
                         f'{{{{ reset_url|truncatechars:{len(RESET_URL) - 1} }}}}</a></p>')
    assert esp.requests == []
    stored = everything_stored(pk)
    assert TOKEN[:-1] not in stored


@pytest.mark.django_db
def test_urlencoded_and_urlize_secret_is_redacted(esp):
    pk = refused_at_send('<p>{{ reset_url|urlize }} <a href="https://t.example/?u='
                         '{{ reset_url|urlencode:"" }}">t</a> {{ reset_url|iriencode }}</p>')
    assert esp.requests == []
    assert not token_recoverable(everything_stored(pk))


@pytest.mark.django_db
def test_code_in_subject_is_redacted(esp):
    pk = deliver_with("<p>{{ code }}</p>", subject="Code {{ code }} for {{ user.name }}",
                      keys=("code",))
    row = Email.objects.get(pk=pk)
    assert CODE not in row.subject and CODE not in row.html_body
    assert CODE in esp.requests[0].json["Subject"]


@pytest.mark.django_db
def test_integer_code_with_thousand_separator_is_redacted(esp, settings):
    settings.USE_THOUSAND_SEPARATOR = True
    pk = deliver_with("<p>{{ code }}</p>", text="{{ code }}",
                      context={"code": 493817}, keys=("code",))
    sent = esp.requests[0].json["TextBody"]
    assert "493" in sent
    stored = everything_stored(pk)
    assert "493" not in stored.replace("[redacted]", "")


@pytest.mark.django_db
def test_short_code_colliding_with_other_text_is_redacted_everywhere(esp):
    """A code that is also ordinary text (an order number): the documented safe side."""
    pk = deliver_with("<p>Order 4938 for code {{ code }}</p>", context={"code": "4938"},
                      keys=("code",))
    assert "4938" not in everything_stored(pk)


@pytest.mark.django_db
def test_esp_error_echoing_the_secret_json_escaped_is_redacted(esp, admin_client):
    """An ESP error body that quotes the link JSON-escaped (https:\\/\\/...)."""
    make_template("password_reset", subject="Reset", html="<p>{{ reset_url }}</p>",
                  category="account", layout=make_layout())
    esp.add_response(500, {"ErrorCode": 100,
                           "Message": "bad " + RESET_URL.replace("/", "\\/")})
    email = transactional_mail.send("password_reset", "ann@example.com",
                                    {"reset_url": RESET_URL}, secret_keys=["reset_url"])
    delivery.deliver(email.pk)
    row = Email.objects.get(pk=email.pk)
    attempts = " ".join(EmailAttempt.objects.filter(email_id=email.pk)
                        .values_list("error", flat=True))
    page = admin_client.get(f"/admin/transactional_mail/email/{email.pk}/change/")
    assert page.status_code == 200
    for text in (row.last_error, attempts, page.content.decode()):
        assert TOKEN not in text


@pytest.mark.parametrize("secret", [
    "kq7w-3m9x\nzt4p-8h2c",   # recovery codes, one a line
    "ABCD  EFGH",             # grouped with two spaces
    "493\u00a0817",           # grouped with a no-break space so it never wraps
    " 493817 ",               # a stray blank from a form
])
@pytest.mark.django_db
def test_a_secret_with_whitespace_is_redacted_from_the_converted_text_part(esp, secret):
    pk = deliver_with('<p class="code">{{ code }}</p>', context={"code": secret},
                      keys=("code",))
    core = "".join(secret.split())
    sent = "".join(esp.requests[0].json["TextBody"].split())
    assert core in sent
    row = Email.objects.get(pk=pk)
    assert core not in "".join(row.text_body.split())


@pytest.mark.django_db
def test_a_secret_with_quotes_survives_per_email_inlining_redacted(esp):
    password = "Tr0ub&4dor\"3<x>'"
    pk = deliver_with('<p class="{{ badge }}">Your temporary password: {{ password }}</p>',
                      context={"password": password, "badge": "notice"},
                      keys=("password",))
    html = Email.objects.get(pk=pk).html_body
    assert "Tr0ub" not in html and "4dor" not in html


@pytest.mark.django_db
def test_a_grouped_code_in_the_subject_is_redacted(esp):
    pk = deliver_with("<p>x</p>", subject="Your code: {{ code }}",
                      context={"code": "493  817"}, keys=("code",))
    assert "493 817" in esp.requests[0].json["Subject"]
    assert "493 817" not in Email.objects.get(pk=pk).subject
