"""One exception hierarchy for the app.

Each class is mixed with the built-in exception of the same meaning, so callers can catch
either. Configuration errors subclass ``ImproperlyConfigured``.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class TransactionalMailError(Exception):
    """Base class of every error raised by transactional_mail."""


class ConfigurationError(TransactionalMailError, ImproperlyConfigured):
    """The TRANSACTIONAL_MAIL settings are wrong; the message says what to change."""


class TemplateNotFound(TransactionalMailError, LookupError):
    """No EmailTemplate exists for the key (in any fallback language)."""

    def __init__(self, key: str, languages: tuple[str, ...] = ()):
        self.key = key
        self.languages = languages
        tried = ", ".join(repr(lang) for lang in languages) or "''"
        super().__init__(
            f"No email template with key {key!r} (languages tried: {tried}). "
            "Create it in the admin (Transactional mail > Email templates) or fix the key."
        )


class TemplateNotPublished(TemplateNotFound):
    """Email templates exist for the key, but none has a published revision to send."""

    def __init__(self, key: str, languages: tuple[str, ...] = (), layouts: tuple[str, ...] = ()):
        self.key = key
        self.languages = languages
        self.layouts = layouts
        tried = ", ".join(repr(lang) for lang in languages) or "''"
        if layouts:
            problem = (f"uses a layout with no published revision ({', '.join(layouts)}). "
                       "Publish the layout in the admin (Transactional mail > Layouts).")
        else:
            problem = ("has no published revision. Publish it in the admin (Transactional "
                       "mail > Email templates); saving only records a draft.")
        LookupError.__init__(
            self, f"The email template with key {key!r} (languages tried: {tried}) {problem}"
        )


class ContextNotSerializable(TransactionalMailError, TypeError):
    """The context given to send() or returned by a trigger is not JSON-serialisable."""

    def __init__(self, path: str, value: object, name: str = "context", problem: str = ""):
        self.path = path
        self.value = value
        super().__init__(
            f"{name}{path} {problem}" if problem else
            f"{name}{path} is a {type(value).__name__}, which cannot be stored as JSON. "
            "Pass plain data (str, int, float, bool, None, Decimal, date, UUID, lists and "
            "dicts with str keys), e.g. str(value) or a dict of the fields the template needs."
        )


class InvalidEmailOption(TransactionalMailError, ValueError):
    """An option given to send() is malformed (a header with a newline, a bad delay...)."""


class RenderError(TransactionalMailError):
    """A stored template revision could not be rendered."""


class RenderLimitExceeded(RenderError):
    """A render went over one of its budgets (``RENDER_MAX_*`` settings) and was stopped.

    ``setting`` names the budget, ``limit`` its value; ``template_name`` (``"html"``,
    ``"subject"``, ``"css"``...) and ``line`` say where the render was when it stopped,
    when known. ``reason`` is the message without the place.
    """

    _UNITS = {
        "RENDER_MAX_CHARS": "characters",
        "RENDER_MAX_ITERATIONS": "iterations",
        "RENDER_MAX_SECONDS": "seconds",
        "RENDER_MAX_CSS_RULES": "rules",
    }

    def __init__(self, setting: str, limit: float, what: str):
        self.setting = setting
        self.limit = limit
        self.template_name: str | None = None
        self.line: int | None = None
        self.reason = (
            f"the render was stopped: {what} the {setting} budget "
            f"({limit:,} {self._UNITS.get(setting, '')}). Make the template do less, or raise "
            f"TRANSACTIONAL_MAIL[{setting!r}] if such an email is expected."
        )
        super().__init__(self.reason[0].upper() + self.reason[1:])

    def locate(self, template_name: str | None, line: int | None) -> None:
        """Record where the render stopped (the innermost known place wins)."""
        if self.template_name is None:
            self.template_name = template_name
        if self.line is None and line is not None:
            self.line = line
            where = f"line {line} of the {template_name}" if template_name else f"line {line}"
            self.args = (f"{self.args[0]} ({where})",)


class DeliveryError(TransactionalMailError):
    """Base class of classified delivery failures (see failures.classify_error)."""
