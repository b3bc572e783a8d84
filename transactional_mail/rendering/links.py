"""URL attributes of rendered HTML: a link never runs script, whatever the context held.

A template variable in ``href`` or ``src`` (``<a href="{{ reset_url }}">``) is escaped by
autoescaping, but escaping leaves ``javascript:alert(1)`` as it is: a context value could
turn a link into a script. :func:`neutralize_urls` reads the final HTML of every email
and replaces the value of each URL attribute (:data:`URL_ATTRIBUTES`) whose scheme is not
one a mail client follows safely (:data:`ALLOWED_SCHEMES`; ``data:image/...`` in an
``<img>``'s ``src`` and ``srcset`` too) with ``#``. A URL without a scheme (``#top``,
a relative path) is left alone: it cannot run anything, and the editor's preview already
warns about it.

The scheme is read as a browser reads it: character references decoded
(``&#106;avascript:``), leading spaces and control characters dropped, tabs and newlines
anywhere removed, in any case. No HTML parse: a quick scan of the attribute names finds
most emails holding only plainly safe values (``https://``...) and returns them as they
are (about 15 us for the 4 KB email of ``bench/bench_render.py``); otherwise the tags are
read with regular expressions as the HTML tokenizer splits them (about 0.2 ms).
"""

from __future__ import annotations

import html as html_module
import re
from functools import partial

__all__ = ["ALLOWED_SCHEMES", "URL_ATTRIBUTES", "is_allowed_url", "neutralize_urls"]

#: The attributes whose value is a URL a client may follow or load.
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "background", "poster",
                            "srcset", "xlink:href"})
#: The schemes a URL attribute may use; any other becomes ``#``.
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto", "tel", "sms", "cid"})
#: What replaces a refused URL: a link to the top of the email, which runs nothing.
NEUTRAL_URL = "#"

# Values that are safe as written, in any case: no need to decode them.
_PLAINLY_SAFE = r"(?:https?://|mailto:|tel:|sms:|cid:|#)"
# A URL attribute whose value is not plainly safe (a srcset always: its later candidates
# matter too), in a tag. An attribute name follows a space, a slash or a closing quote.
_SINGLE_URL_NAMES = "|".join(sorted(re.escape(name) for name in URL_ATTRIBUTES - {"srcset"}))
_SUSPECT = re.compile(
    rf"""[\s"'/](?:srcset\s*=|(?:{_SINGLE_URL_NAMES})\s*=\s*["']?+(?!{_PLAINLY_SAFE}))""",
    re.IGNORECASE,
)
# The quick test of a whole email (the common case: every link https, nothing to do).
# A regular expression like _SUSPECT costs a Python-level step per character; finding
# the names in the lower-cased UTF-8 bytes costs a C-level scan per name instead. Each
# name is found inside longer ones too (action in formaction, href in xlink:href), which
# only sends a harmless email through the full scan.
_QUICK_NAMES = (b"href", b"src", b"action", b"background", b"poster")
# After a name: "=" and a value not plainly safe, or "set=" (a srcset: always checked).
_QUICK_UNSAFE = re.compile(
    rb"""set\s*=|\s*=(?!\s*["']?%s)""" % _PLAINLY_SAFE.encode()
)
# One attribute as the HTML tokenizer splits a tag: the separator, the name, then "="
# and the value. Possessive quantifiers: one way to match, as the tokenizer reads it.
_ATTRIBUTE_SOURCE = (r"""[\s/]*+([^\s/>][^\s/>=]*+)"""
                     r"""(?:(\s*+=\s*+)("[^"]*+"|'[^']*+'|[^\s>]*+))?+""")
_ATTRIBUTE = re.compile(_ATTRIBUTE_SOURCE)
_TAG_OPEN = re.compile(r"</?[a-zA-Z]")
_TAG = re.compile(rf"</?([a-zA-Z][^\s/>]*+)((?:{_ATTRIBUTE_SOURCE})*+[\s/]*+)>")
_SAFE_VALUE = re.compile(_PLAINLY_SAFE, re.IGNORECASE)
# Browsers drop leading (and trailing) C0 controls and spaces, and tabs and newlines
# anywhere in a URL.
_STRIPPED = "".join(map(chr, range(0x21)))
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_DATA_IMAGE = re.compile(r"data:image/", re.IGNORECASE)
# A srcset candidate's URL: after spaces and commas, a run of non-space.
_SRCSET_URL = re.compile(r"[\s,]*(\S+)")


def neutralize_urls(html: str) -> str:
    """``html`` with the value of every URL attribute of a refused scheme replaced by
    ``#``."""
    if not _may_need_neutralizing(html):
        return html
    parts: list[str] = []
    copied = position = 0
    while (opening := _TAG_OPEN.search(html, position)) is not None:
        tag = _TAG.match(html, opening.start())
        if tag is None:  # no '>' before the end: browsers make no tag of the rest
            break
        position = tag.end()
        if html[tag.start() + 1] == "/" or not _SUSPECT.search(html, tag.start(), position):
            continue  # an end tag (its attributes are ignored), or nothing to check
        attributes = _ATTRIBUTE.sub(partial(_neutral_attribute, tag.group(1).lower()),
                                    tag.group(2))
        if attributes != tag.group(2):
            parts += (html[copied:tag.start(2)], attributes)
            copied = tag.end(2)
    parts.append(html[copied:])
    return "".join(parts)


def _may_need_neutralizing(html: str) -> bool:
    """Whether ``html`` may hold a URL attribute that is not plainly safe (False: it
    surely holds none)."""
    data = html.encode("utf-8", "surrogatepass").lower()  # ASCII letters only: sound
    for name in _QUICK_NAMES:
        position = data.find(name)
        while position >= 0:
            position += len(name)
            if _QUICK_UNSAFE.match(data, position):
                return True
            position = data.find(name, position)
    return False


def _neutral_attribute(tag: str, match: re.Match[str]) -> str:
    """The attribute ``match`` of an element ``tag``, its value ``#`` if refused."""
    name, equals, quoted = match.groups()
    name = name.lower()
    if equals is None or name not in URL_ATTRIBUTES:
        return match.group()
    quote = quoted[:1] if quoted[:1] in ("'", '"') else ""
    value = quoted[1:-1] if quote else quoted
    images = tag == "img" and name in ("src", "srcset")
    urls = _srcset_urls(value) if name == "srcset" else [value]
    if all(is_allowed_url(html_module.unescape(url), images=images) for url in urls):
        return match.group()
    return match.group()[: match.start(3) - match.start()] + f"{quote}{NEUTRAL_URL}{quote}"


def _srcset_urls(value: str) -> list[str]:
    """The candidate URLs of a ``srcset`` value (each followed by its descriptors)."""
    urls, position = [], 0
    while match := _SRCSET_URL.match(value, position):
        url = match.group(1)
        if url.endswith(","):  # no descriptors: the comma ends the candidate
            urls.append(url.rstrip(","))
            position = match.end()
            continue
        urls.append(url)
        comma = value.find(",", match.end())
        if comma < 0:
            break
        position = comma + 1
    return urls


def is_allowed_url(url: str, *, images: bool = False) -> bool:
    """Whether ``url`` (an attribute's value, its character references decoded) has no
    scheme or one of :data:`ALLOWED_SCHEMES` (or is a ``data:image/`` URL, with
    ``images``), read as browsers read it."""
    if _SAFE_VALUE.match(url):
        return True
    url = _TAB_OR_NEWLINE.sub("", url.strip(_STRIPPED))
    scheme = _SCHEME.match(url)
    if scheme is None:  # relative or a fragment: runs nothing
        return True
    if scheme.group(1).lower() in ALLOWED_SCHEMES:
        return True
    return images and _DATA_IMAGE.match(url) is not None
