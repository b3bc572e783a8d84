"""The layout form's footer in other languages: one fieldset per language.

A layout keeps its per-language brand values in ``translations`` (``{"fr": {"legal_text":
...}}``, see ``rendering.layout.translated``). Staff do not edit that JSON: the form shows,
for each language the site's templates are written in (and each the layout already has a
translation for), the footer HTML, address, legal text and help link, blank meaning "the
default one". Mistakes are shown on the field at fault, with its language.
"""

from __future__ import annotations

from types import SimpleNamespace

import django
from django import forms
from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..models import EmailTemplate, Layout
from ..rendering.layout import TRANSLATABLE_FIELDS
from ..rendering.validation import translation_problems
from .history import RevisionNoteForm

__all__ = ["LayoutForm", "field_name", "language_name", "posted_translations",
           "translated_value_display", "translation_languages"]

_LABELS = {
    "footer_html": _("footer HTML"),
    "footer_address": _("footer address"),
    "legal_text": _("legal text"),
    "help_url": _("help link"),
}


def field_name(language: str, name: str) -> str:
    """The form field of one translated value: ``translation__fr__legal_text``."""
    return f"translation__{language}__{name}"


def translated_value_display(name: str):
    """The read-only display of the form field ``name`` (``translation__fr__legal_text``):
    a function of the layout, labelled like the field."""
    _prefix, code, field = name.split("__", 2)

    def display(layout: Layout) -> str:
        values = (layout.translations or {}).get(code) if isinstance(layout.translations,
                                                                      dict) else None
        return values.get(field, "") if isinstance(values, dict) else ""

    display.short_description = _LABELS.get(field, field)
    return display


def posted_translations(data) -> dict[str, dict[str, str]]:
    """The translated values among posted form ``data`` (the preview's), by language."""
    translations: dict[str, dict[str, str]] = {}
    for key, value in data.items():
        parts = key.split("__")
        if len(parts) == 3 and parts[0] == "translation" and parts[2] in TRANSLATABLE_FIELDS \
                and value.strip():
            if parts[2] == "help_url" and "://" not in value:
                value = f"https://{value.strip()}"  # as the form's URL field reads it
            translations.setdefault(parts[1], {})[parts[2]] = value
    return translations


def language_name(code: str) -> str:
    return str(dict(settings.LANGUAGES).get(code, code))


def translation_languages(layout: Layout | None, request=None) -> list[str]:
    """The languages the form offers: those of the email templates (not the default
    variant), and those ``layout`` already has a translation for.

    The templates' languages are looked up once per ``request``: the fieldsets, the form
    and the preview's language list each ask.
    """
    codes = set(getattr(request, "_tm_template_languages", None) or _template_languages())
    if request is not None:
        request._tm_template_languages = frozenset(codes)
    if layout is not None and isinstance(layout.translations, dict):
        codes.update(code for code in layout.translations if isinstance(code, str))
    return sorted(codes)


def _template_languages() -> set[str]:
    return set(EmailTemplate.objects.exclude(language="").values_list("language", flat=True)
               .distinct()[:100])


class _HttpsURLField(forms.URLField):
    """A URL field reading a link typed without a scheme as https, on every Django version
    (Django 4.2's reads it as http)."""

    def to_python(self, value):
        value = (value or "").strip()
        if value and "://" not in value:
            value = f"https://{value}"
        return super().to_python(value)


def _field(name: str) -> forms.Field:
    if name == "help_url":
        # assume_scheme (Django 5.0+) only silences 5.x's warning: to_python adds https.
        options = {"assume_scheme": "https"} if django.VERSION >= (5, 0) else {}
        return _HttpsURLField(label=_LABELS[name], required=False, max_length=500, **options)
    rows = 5 if name == "footer_html" else 3
    return forms.CharField(label=_LABELS[name], required=False, strip=False,
                           widget=forms.Textarea(attrs={"rows": rows, "cols": 80}))


class LayoutForm(RevisionNoteForm):
    """The layout form, with the translated footer values of :attr:`languages`."""

    #: Set by the admin for each request (``LayoutAdmin.get_form``).
    languages: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.translations if isinstance(self.instance.translations,
                                                           dict) else {}
        for code in self.languages:
            values = current.get(code) if isinstance(current.get(code), dict) else {}
            for name in TRANSLATABLE_FIELDS:
                field = _field(name)
                field.initial = values.get(name, "")
                self.fields[field_name(code, name)] = field

    def clean(self):
        cleaned = super().clean()
        translations = {
            code: values for code in self.languages
            if (values := {name: cleaned.get(field_name(code, name)) or ""
                           for name in TRANSLATABLE_FIELDS
                           if (cleaned.get(field_name(code, name)) or "").strip()})
        }
        # Languages the form does not show (no template in them any more) are kept.
        current = self.instance.translations if isinstance(self.instance.translations,
                                                           dict) else {}
        kept = {code: values for code, values in current.items() if code not in self.languages}
        translations = {**kept, **translations}
        if any(not name.startswith("translation__") for name in self.errors):
            return cleaned  # the layout itself is wrong: a translation cannot be rendered
        layout = SimpleNamespace(**{**{name: getattr(self.instance, name, "")
                                       for name in Layout.REVISION_FIELDS},
                                    **cleaned, "translations": translations})
        problems = translation_problems(layout)
        for problem in problems:
            target = field_name(problem.language, problem.field)
            self.add_error(target if target in self.fields else None,
                           problem.message if target in self.fields else str(problem))
        if not problems and not self.errors:  # else the model's check would repeat them
            self.instance.translations = translations
        return cleaned


def translation_fieldsets(languages: list[str]) -> list[tuple[str, dict]]:
    """One collapsed fieldset per language, after the layout's own fields."""
    return [
        (gettext("Footer in %(language)s (%(code)s)") % {
            "language": language_name(code), "code": code}, {
            "classes": ["collapse"],
            "fields": [field_name(code, name) for name in TRANSLATABLE_FIELDS],
            "description": gettext("Emails in this language show these instead of the "
                                   "footer values above; leave one blank to keep the "
                                   "default."),
        })
        for code in languages
    ]
