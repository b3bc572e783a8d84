"""Brand values a layout may hold: CSS colours, font stacks and logo images, checked.

A layout's colours and font stack are written into its CSS and HTML, so a value that is
not what it claims (``not-a-colour``, ``red; background: url(...)``) would hide a button
or smuggle CSS into every email. Only plain values pass. A logo upload must be what its
name says, one of the image types every mail client shows, read from its first bytes.
"""

from __future__ import annotations

import base64
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

__all__ = ["DEFAULT_FONT_STACK", "LOGO_EXTENSIONS", "LOGO_MAX_BYTES", "logo_data_uri",
           "logo_image_type", "validate_css_color", "validate_font_stack"]

#: The logo upload's allowed extensions, and its largest size: mail clients load the
#: logo for every reader.
LOGO_EXTENSIONS = ["png", "jpg", "jpeg", "gif", "webp"]
LOGO_MAX_BYTES = 1_000_000

# The first bytes of each image type a logo may be (SVG is not one: mail clients do not
# show it, and it can hold scripts).
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def logo_image_type(head: bytes) -> str | None:
    """The MIME type of an image starting with ``head`` (PNG, JPEG, GIF, WebP), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for signature, kind in _IMAGE_SIGNATURES
                 if head.startswith(signature)), None)


def logo_data_uri(content: bytes) -> str:
    """``content`` as a ``data:`` URI, for previewing a logo before it is saved.

    Raise ``ValidationError`` for a file over :data:`LOGO_MAX_BYTES` or not an image of
    an allowed type.
    """
    if len(content) > LOGO_MAX_BYTES:
        raise ValidationError(_("The logo is over 1 MB: email clients load it for every "
                                "reader."), code="logo_size")
    kind = logo_image_type(content[:16])
    if kind is None:
        raise ValidationError(_("The logo is not a PNG, JPEG, GIF or WebP image."),
                              code="logo_type")
    return f"data:{kind};base64,{base64.b64encode(content).decode('ascii')}"

DEFAULT_FONT_STACK = (
    "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
)

#: The named colours of CSS Color Module Level 4 (``transparent`` is not a brand colour).
NAMED_COLORS = frozenset({
    "aliceblue", "antiquewhite", "aqua", "aquamarine", "azure", "beige", "bisque", "black",
    "blanchedalmond", "blue", "blueviolet", "brown", "burlywood", "cadetblue", "chartreuse",
    "chocolate", "coral", "cornflowerblue", "cornsilk", "crimson", "cyan", "darkblue",
    "darkcyan", "darkgoldenrod", "darkgray", "darkgreen", "darkgrey", "darkkhaki",
    "darkmagenta", "darkolivegreen", "darkorange", "darkorchid", "darkred", "darksalmon",
    "darkseagreen", "darkslateblue", "darkslategray", "darkslategrey", "darkturquoise",
    "darkviolet", "deeppink", "deepskyblue", "dimgray", "dimgrey", "dodgerblue", "firebrick",
    "floralwhite", "forestgreen", "fuchsia", "gainsboro", "ghostwhite", "gold", "goldenrod",
    "gray", "green", "greenyellow", "grey", "honeydew", "hotpink", "indianred", "indigo",
    "ivory", "khaki", "lavender", "lavenderblush", "lawngreen", "lemonchiffon", "lightblue",
    "lightcoral", "lightcyan", "lightgoldenrodyellow", "lightgray", "lightgreen", "lightgrey",
    "lightpink", "lightsalmon", "lightseagreen", "lightskyblue", "lightslategray",
    "lightslategrey", "lightsteelblue", "lightyellow", "lime", "limegreen", "linen", "magenta",
    "maroon", "mediumaquamarine", "mediumblue", "mediumorchid", "mediumpurple",
    "mediumseagreen", "mediumslateblue", "mediumspringgreen", "mediumturquoise",
    "mediumvioletred", "midnightblue", "mintcream", "mistyrose", "moccasin", "navajowhite",
    "navy", "oldlace", "olive", "olivedrab", "orange", "orangered", "orchid", "palegoldenrod",
    "palegreen", "paleturquoise", "palevioletred", "papayawhip", "peachpuff", "peru", "pink",
    "plum", "powderblue", "purple", "rebeccapurple", "red", "rosybrown", "royalblue",
    "saddlebrown", "salmon", "sandybrown", "seagreen", "seashell", "sienna", "silver",
    "skyblue", "slateblue", "slategray", "slategrey", "snow", "springgreen", "steelblue",
    "tan", "teal", "thistle", "tomato", "turquoise", "violet", "wheat", "white", "whitesmoke",
    "yellow", "yellowgreen",
})

_HEX = re.compile(r"#(?:[0-9a-f]{3}|[0-9a-f]{4}|[0-9a-f]{6}|[0-9a-f]{8})")
_CHANNEL = r"\s*(?:\d{1,3}(?:\.\d+)?%?)\s*"
_ALPHA = r"\s*(?:0|1|0?\.\d+|\d{1,3}%)\s*"
_RGB = re.compile(
    rf"rgba?\({_CHANNEL},{_CHANNEL},{_CHANNEL}(?:,{_ALPHA})?\)"
    rf"|rgba?\({_CHANNEL}\s{_CHANNEL}\s{_CHANNEL}(?:/{_ALPHA})?\)"
)
#: A font name: letters, digits, spaces, hyphens, or quoted with the same inside.
_FONT = re.compile(r"""[A-Za-z0-9 _-]+|'[A-Za-z0-9 _.-]+'|"[A-Za-z0-9 _.-]+\"""")


def validate_css_color(value: str) -> None:
    """Accept ``#rgb``, ``#rgba``, ``#rrggbb``, ``#rrggbbaa``, ``rgb()``/``rgba()`` (comma
    or space syntax, channels 0-255 or percentages) and CSS colour names; refuse the rest."""
    color = (value or "").strip().lower()
    if _HEX.fullmatch(color) or color in NAMED_COLORS:
        return
    if _RGB.fullmatch(color) and all(
        _channel_in_range(channel) for channel in re.split(r"[,\s/]+", color[color.index("(")
                                                                        + 1:-1].strip())[:3]
    ):
        return
    raise ValidationError(
        _("%(value)s is not a CSS colour. Use #rrggbb (e.g. #1a73e8), rgb(26, 115, 232) or "
          "a colour name such as navy."),
        code="invalid_color",
        params={"value": repr(value)},
    )


def _channel_in_range(channel: str) -> bool:
    if channel.endswith("%"):
        return float(channel[:-1]) <= 100
    return float(channel) <= 255


def validate_font_stack(value: str) -> None:
    """Accept a comma-separated list of font names (quoted or not); refuse anything that
    could end the declaration (``;``, braces, ``url(``...)."""
    fonts = [font.strip() for font in (value or "").split(",")]
    if all(font and _FONT.fullmatch(font) for font in fonts):
        return
    raise ValidationError(
        _("%(value)s is not a font stack. List font names separated by commas, e.g. "
          "Helvetica, Arial, sans-serif."),
        code="invalid_font_stack",
        params={"value": repr(value)},
    )
