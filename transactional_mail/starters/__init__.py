"""Starter templates: the emails a site gets ready-made, read from this package's directories.

Each kind lives in ``starters/<key>/``: a ``starter.json`` (key, version, category, whether
it is essential, a description, the documented context and a sample of it, the secret
keys, and per language the subject and preheader) beside ``<lang>.html`` and ``<lang>.txt``
for each of :data:`LANGUAGES`, and a ``history.json`` holding the fingerprint of every
version shipped so far. :func:`load_starters` reads and checks them all and returns
:class:`Starter` objects; a malformed starter raises :class:`StarterError` naming the
file and what is wrong with it (the files ship with the package: that is a bug to fix, not
a situation to work around at run time).

The fingerprints let ``install_starter_templates`` tell a template it installed (and that
nobody edited since) from one staff wrote: a template whose published content has the
fingerprint of an earlier version is upgraded, any other is left alone. When a starter's
content changes, its ``version`` goes up and ``python -m transactional_mail.starters
record`` adds the new fingerprints (``tests/test_starters.py`` fails until it has).

Pure: reads files, no database, no Django settings.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..exceptions import TransactionalMailError

__all__ = [
    "DIRECTORY",
    "LANGUAGES",
    "Starter",
    "StarterContent",
    "StarterError",
    "fingerprint",
    "load_starter",
    "load_starters",
    "record_fingerprints",
]

#: Where the starters live: one directory per kind.
DIRECTORY = Path(__file__).resolve().parent
#: The languages every starter is written in (Arabic reads right to left).
LANGUAGES = ("en", "fr", "de", "it", "ar")
#: The fingerprint history of each starter, beside its starter.json.
HISTORY_FILE = "history.json"

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
_REQUIRED = {
    "key": str, "version": int, "category": str, "essential": bool, "description": str,
    "secret": list, "context": dict, "sample_context": dict, "languages": dict,
}
_OPTIONAL = {"trigger_hint": str}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list",
               dict: "an object"}


class StarterError(TransactionalMailError, ValueError):
    """A starter's files are malformed; the message names the file and what is wrong."""


@dataclass(frozen=True)
class StarterContent:
    """One language of a starter: what an ``EmailTemplate`` row holds."""

    subject: str
    preheader: str
    html: str
    text: str

    @property
    def fingerprint(self) -> str:
        """The fingerprint of this content (see :func:`fingerprint`)."""
        return fingerprint(self.subject, self.preheader, self.html, self.text)


@dataclass(frozen=True)
class Starter:
    """A starter template kind, in every language of :data:`LANGUAGES`."""

    key: str
    version: int
    category: str
    essential: bool
    description: str
    trigger_hint: str
    secret: tuple[str, ...]
    #: ``{dotted path: what it is}`` for every variable the templates use.
    context: Mapping[str, str]
    sample_context: Mapping[str, Any]
    languages: Mapping[str, StarterContent]
    #: ``{version: {language: fingerprint}}`` of every version shipped so far.
    history: Mapping[int, Mapping[str, str]]
    directory: Path

    def earlier_version(self, language: str, content_fingerprint: str) -> int | None:
        """The version whose ``language`` content has this fingerprint, or None."""
        for version, fingerprints in sorted(self.history.items(), reverse=True):
            if fingerprints.get(language) == content_fingerprint:
                return version
        return None

    def current_fingerprints(self) -> dict[str, str]:
        """``{language: fingerprint}`` of the content as shipped now."""
        return {language: content.fingerprint for language, content in self.languages.items()}


def _normalized(value: str) -> str:
    # An admin textarea posts CRLF and forms strip the ends: neither is an edit.
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def fingerprint(*parts: str) -> str:
    """A hash of content (a template's subject, preheader, HTML and text; a layout's HTML,
    CSS and footer), the same whatever its line endings and outer blanks."""
    normalized = [_normalized(value or "") for value in parts]
    return "sha256:" + hashlib.sha256(json.dumps(normalized).encode("utf-8")).hexdigest()


def _fail(path: Path, message: str) -> StarterError:
    return StarterError(f"{path}: {message}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise _fail(path, "the file is missing.") from err
    except json.JSONDecodeError as err:
        raise _fail(path, f"not valid JSON: {err.msg} at line {err.lineno}, "
                    f"column {err.colno}.") from err


def _check_types(path: Path, data: Any) -> None:
    if not isinstance(data, dict):
        raise _fail(path, "the file must hold a JSON object.")
    missing = sorted(set(_REQUIRED) - set(data))
    if missing:
        raise _fail(path, f"missing key(s): {', '.join(missing)}.")
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise _fail(path, f"unknown key(s): {', '.join(unknown)} (expected "
                    f"{', '.join(sorted({*_REQUIRED, *_OPTIONAL}))}).")
    for name, kind in {**_REQUIRED, **_OPTIONAL}.items():
        value = data.get(name, kind())
        # bool is an int: a version of true is refused.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _fail(path, f'"{name}" must be {_TYPE_NAMES[kind]}, not {value!r}.')


def _check_fields(path: Path, data: dict, directory: Path) -> None:
    if data["key"] != directory.name or not _KEY.match(data["key"]):
        raise _fail(path, f'"key" must be the directory\'s name, {directory.name!r} (lower '
                    f"case letters, digits and _), not {data['key']!r}.")
    if data["version"] < 1:
        raise _fail(path, f'"version" must be 1 or more, not {data["version"]}.')
    if not _SLUG.match(data["category"]):
        raise _fail(path, f'"category" must be a slug such as "account", not '
                    f"{data['category']!r}.")
    if not data["description"].strip():
        raise _fail(path, '"description" must say when a site sends this email.')
    for name, doc in data["context"].items():
        if not isinstance(doc, str) or not doc.strip():
            raise _fail(path, f'"context": {name!r} needs a description (a non-empty string).')
    for name in data["secret"]:
        if not isinstance(name, str) or name not in data["sample_context"]:
            raise _fail(path, f'"secret": {name!r} is not a top-level key of '
                        '"sample_context".')
    languages = data["languages"]
    if sorted(languages) != sorted(LANGUAGES):
        raise _fail(path, f'"languages" must have exactly {", ".join(LANGUAGES)}; it has '
                    f"{', '.join(languages) or 'none'}.")
    for language, parts in languages.items():
        if not isinstance(parts, dict) or set(parts) != {"subject", "preheader"}:
            raise _fail(path, f'"languages": {language!r} must be an object with exactly '
                        '"subject" and "preheader".')
        for name, value in parts.items():
            if not isinstance(value, str) or not value.strip() or "\n" in value:
                raise _fail(path, f'"languages": the {name} of {language!r} must be one '
                            "non-empty line of text.")


def _read_history(directory: Path) -> dict[int, dict[str, str]]:
    path = directory / HISTORY_FILE
    if not path.exists():
        return {}
    data = _read_json(path)
    versions = data.get("versions") if isinstance(data, dict) else None
    if not isinstance(versions, dict) or not all(
        number.isdigit() and isinstance(prints, dict)
        and all(isinstance(value, str) for value in prints.values())
        for number, prints in versions.items()
    ):
        raise _fail(path, 'must be {"versions": {"<version>": {"<language>": '
                    '"sha256:..."}}}; run python -m transactional_mail.starters record.')
    return {int(number): dict(prints) for number, prints in versions.items()}


def _read_part(directory: Path, name: str) -> str:
    path = directory / name
    try:
        value = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise _fail(path, "the file is missing: every language has an .html and a .txt "
                    "file.") from err
    if not value.strip():
        raise _fail(path, "the file is empty.")
    return _normalized(value) + "\n"


def load_starter(directory: Path) -> Starter:
    """Read and check the starter in ``directory``; raise :class:`StarterError` if malformed."""
    path = directory / "starter.json"
    data = _read_json(path)
    _check_types(path, data)
    _check_fields(path, data, directory)
    languages = {
        language: StarterContent(
            subject=data["languages"][language]["subject"].strip(),
            preheader=data["languages"][language]["preheader"].strip(),
            html=_read_part(directory, f"{language}.html"),
            text=_read_part(directory, f"{language}.txt"),
        )
        for language in LANGUAGES
    }
    return Starter(
        key=data["key"],
        version=data["version"],
        category=data["category"],
        essential=data["essential"],
        description=data["description"].strip(),
        trigger_hint=data.get("trigger_hint", "").strip(),
        secret=tuple(data["secret"]),
        context=MappingProxyType(dict(data["context"])),
        sample_context=MappingProxyType(data["sample_context"]),
        languages=MappingProxyType(languages),
        history=MappingProxyType(_read_history(directory)),
        directory=directory,
    )


def starter_directories(root: Path = DIRECTORY) -> list[Path]:
    """The starter directories under ``root`` (those with a ``starter.json``), by name."""
    return sorted(path.parent for path in root.glob("*/starter.json"))


@cache
def _load_all(root: Path) -> tuple[Starter, ...]:
    return tuple(load_starter(directory) for directory in starter_directories(root))


def load_starters(root: Path = DIRECTORY) -> dict[str, Starter]:
    """``{key: Starter}`` of every starter under ``root``, by key (read once per process)."""
    return {starter.key: starter for starter in _load_all(root)}


def record_fingerprints(starter: Starter) -> bool:
    """Add the starter's current fingerprints to its history as its version; True if new.

    Refuse (``StarterError``) to record content under a version whose fingerprints were
    recorded with other content: a changed starter needs a new version number.
    """
    current = starter.current_fingerprints()
    recorded = starter.history.get(starter.version)
    if recorded == current:
        return False
    path = starter.directory / HISTORY_FILE
    if recorded is not None:
        raise _fail(path, f"version {starter.version} was recorded with other content: "
                    "raise \"version\" in starter.json, then record again.")
    versions = {str(number): dict(prints) for number, prints in starter.history.items()}
    versions[str(starter.version)] = current
    ordered = dict(sorted(versions.items(), key=lambda item: int(item[0])))
    path.write_text(json.dumps({"versions": ordered}, indent=2, sort_keys=False) + "\n",
                    encoding="utf-8")
    return True
