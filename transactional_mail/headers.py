"""What may reach a header line of an outgoing email: one line, one mailbox per address.

Whatever reads a header splits lines on more than CR and LF: Python's ``email`` package
on every ``str.splitlines()`` break (VT, FF, FS, GS, RS, NEL, U+2028, U+2029), a C
library at NUL, an ESP on what its JSON decoder calls a line, a mail client on an RFC 2047
encoded word that decodes to a line break. ``send()`` refuses a value holding any of
them (:func:`check_header_value`, :func:`address_problem`); the worker collapses them in
values stored before these checks existed (:func:`one_line`), and refuses a stored
address it cannot make safe.
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.header import decode_header, make_header

from .exceptions import InvalidEmailOption

#: Every C0 and C1 control character except TAB (folding whitespace), DEL, and the two
#: Unicode separators: all of ``str.splitlines()``'s breaks, NUL, and characters no
#: header value needs.
FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_FORBIDDEN_RUN = re.compile(r"[ \t]*(?:" + FORBIDDEN.pattern + r")+[ \t]*")

#: RFC 3696 (errata 1690): 64 characters of local part, "@" and 255 of domain. A longer
#: value is refused at send(), display name included.
MAX_ADDRESS_LENGTH = 320

_NAMES = {
    "\r": "a carriage return (CR)",
    "\n": "a line feed (LF)",
    "\x0b": "a vertical tab (VT, U+000B)",
    "\x0c": "a form feed (FF, U+000C)",
    "\x00": "a NUL character (U+0000)",
    "\x85": "a next-line character (NEL, U+0085)",
    "\u2028": "a line separator (U+2028)",
    "\u2029": "a paragraph separator (U+2029)",
}

_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def describe(character: str) -> str:
    """``"a line separator (U+2028)"``: how an error message names a forbidden character."""
    return _NAMES.get(character, f"a control character (U+{ord(character):04X})")


def _decoded(value: str) -> str:
    """``value`` with its RFC 2047 encoded words decoded, as a mail client shows it."""
    if not _ENCODED_WORD.search(value):
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, ValueError):
        return value  # undecodable: the client shows the words as they are


def forbidden_character(value: str) -> str:
    """Why ``value`` cannot be one header line ("contains a line feed (LF)"); "" if it can."""
    found = FORBIDDEN.search(value)
    if found:
        return f"contains {describe(found[0])}"
    found = FORBIDDEN.search(_decoded(value))
    if found:
        return f"contains an RFC 2047 encoded word that decodes to {describe(found[0])}"
    return ""


def check_header_value(option: str, value: str) -> str:
    """Return ``value``; ``InvalidEmailOption`` naming ``option`` and the character if it
    cannot stay one header line."""
    problem = forbidden_character(value)
    if problem:
        raise InvalidEmailOption(
            f"{option} {value!r} {problem}, which would break the header line. Remove it."
        )
    return value


def address_problem(value: str) -> str:
    """Why ``value`` cannot be one address header entry; "" if it can.

    The phrase reads after "is": "not one line: it contains a line feed (LF)". Only what
    makes a value unsafe is checked here; an address that is merely invalid fails its
    email at delivery.
    """
    problem = forbidden_character(value)
    if problem:
        return f"not one line: it {problem}"
    surrogate = _SURROGATE.search(value)
    if surrogate:
        # Not a character: neither UTF-8 nor the database can hold it.
        return (f"not text: it contains a lone UTF-16 surrogate (\\u{ord(surrogate[0]):04x}), "
                "which usually comes from text decoded with errors='surrogateescape'")
    if len(value) > MAX_ADDRESS_LENGTH:
        return (f"{len(value)} characters long; an address has at most "
                f"{MAX_ADDRESS_LENGTH} (64 before the @, 255 after it)")
    count = mailbox_count(value)
    if count > 1:
        return (f"{count} addresses in one string; each value must name one mailbox "
                "(quote a display name that holds a comma: '\"Doe, Ann\" <ann@example.com>')")
    return ""


def mailbox_count(value: str) -> int:
    """How many mailboxes an email backend would read in ``value``.

    Anymail's parser (which the ESP backends use) splits ``"a@example.com <b@example.com>"``
    or ``"Ann Bcc: b@example.com <a@example.com>"`` into two recipients, so it decides. A
    value it cannot parse counts as one: it fails at delivery, sent to nobody.
    """
    if value.count("@") < 2:
        return 1  # each mailbox Anymail accepts has an "@": the common case costs nothing
    from anymail.exceptions import AnymailInvalidAddress
    from anymail.utils import parse_address_list

    try:
        return len(parse_address_list([value]))
    except AnymailInvalidAddress:
        return 1


#: An address a parser has nothing to do with (no display name, comment, quoting, route or
#: surrounding space): ``email.utils.parseaddr`` gives it back as it is.
_BARE_ADDRESS = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\Z")


def addr_spec(value: str) -> str:
    """The address in ``value`` as ``email.utils.parseaddr`` reads it ("" if none).

    A bare address skips the parser, which costs more than the rest of a trigger's
    recipient check; tests/test_headers.py compares the two on generated addresses.
    """
    if _BARE_ADDRESS.match(value):
        return value
    from email.utils import parseaddr

    return parseaddr(value)[1]


def check_address(option: str, value: str) -> str:
    """Return ``value``; ``InvalidEmailOption`` naming ``option`` if it is unsafe."""
    problem = address_problem(value)
    if problem:
        raise InvalidEmailOption(f"{option} {value!r} is {problem}.")
    return value


def one_line(value: str) -> str:
    """``value`` made one header line: each run of forbidden characters becomes a space.

    For values that need no exactness (subject, custom header values, tags, attachment
    filenames) stored before ``send()`` checked them. An encoded word that decodes to a
    forbidden character is decoded first, so it cannot turn into one in a mail client.
    """
    for _ in range(3):
        decoded = _decoded(value)
        if not FORBIDDEN.search(value) and not FORBIDDEN.search(decoded):
            return value
        value = _FORBIDDEN_RUN.sub(" ", decoded).strip()
    # Encoded words nested deeper still: break them all, so no client decodes one.
    return value.replace("=?", "=\N{ZERO WIDTH SPACE}?")
