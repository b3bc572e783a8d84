"""Hostile input shared by the tests of what reaches a mail header."""

from __future__ import annotations

#: Every character something splits a header line on, with how errors name it.
SEPARATORS = {
    "\r": "a carriage return (CR)",
    "\n": "a line feed (LF)",
    "\x0b": "a vertical tab (VT, U+000B)",
    "\x0c": "a form feed (FF, U+000C)",
    "\x00": "a NUL character (U+0000)",
    "\x85": "a next-line character (NEL, U+0085)",
    "\u2028": "a line separator (U+2028)",
    "\u2029": "a paragraph separator (U+2029)",
    "\x1c": "a control character (U+001C)",
    "\x1d": "a control character (U+001D)",
    "\x1e": "a control character (U+001E)",
    "\r\n": "a carriage return (CR)",
}
SEPARATOR_IDS = [f"U+{ord(s[0]):04X}" + ("+LF" if len(s) > 1 else "") for s in SEPARATORS]
