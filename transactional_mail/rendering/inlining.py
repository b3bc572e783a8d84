"""CSS inlining with premailer: never fetching anything, and bounded before it starts.

Mail clients ignore ``<style>``, so CSS is inlined with premailer (:func:`inline_css`,
the slow way; :mod:`transactional_mail.rendering.precompile` runs it once per revision).

Premailer options, chosen deliberately (see :data:`PREMAILER_OPTIONS`): no network and no
files (``allow_network=False``: a ``<link>`` stylesheet is left alone, never fetched;
cssutils ignores it for ``@import``, hence our own fetcher), no URL rewriting;
``disable_validation=True`` so vendor properties survive; cssutils logging silenced;
``keep_style_tags=False`` so only rules that cannot be inlined (media queries,
``:hover``) stay in a ``<style>``, and ``strip_important=False`` so those keep the
``!important`` they need to beat inline styles (responsive emails rely on it);
``remove_classes=False`` because media queries refer to the classes; no pretty printing.

Whatever is stored, premailer parses CSS with a cssutils parser whose fetcher refuses
every URL (``_premailer_class``), so neither validation, nor inlining, nor rendering
ever opens a URL or a file.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..conf import get_setting
from ..exceptions import RenderLimitExceeded

__all__ = ["PREMAILER_OPTIONS", "inline_css"]

logger = logging.getLogger(__name__)


#: The premailer options (see the module docstring for why each is set).
PREMAILER_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {
        "base_url": None,
        "disable_link_rewrites": True,
        "allow_network": False,
        "allow_loading_external_files": False,
        "external_styles": None,
        "keep_style_tags": False,
        "strip_important": False,
        "exclude_pseudoclasses": True,
        "include_star_selectors": False,
        "remove_classes": False,
        "capitalize_float_margin": False,
        "disable_validation": True,
        "cssutils_logging_level": logging.CRITICAL,
        "method": "html",
        "align_floating_images": True,
        "remove_unset_properties": True,
        "disable_leftover_css": False,
    }
)


def _refuse_fetch(url: str) -> None:
    """The fetcher of every CSS parser premailer uses here: nothing is ever fetched.

    cssutils loads ``@import`` with its own fetcher (urllib, no timeout, ``file:`` URLs
    included), whatever premailer's ``allow_network`` says. Returning None makes cssutils
    skip the rule as unreadable; premailer then drops it.
    """
    logger.warning("A stylesheet asked to load %r; refused (@import is never fetched).", url)


@functools.lru_cache(maxsize=256)
def _parse_stylesheet(css: str, validate: bool) -> Any:
    """Parse CSS with a cssutils parser whose fetcher refuses (cached, as premailer's own
    parse is: premailer only reads the sheets)."""
    import cssutils

    return cssutils.CSSParser(fetcher=_refuse_fetch).parseString(css, validate=validate)


@functools.cache
def _premailer_class() -> type:
    from premailer import Premailer

    class NoFetchPremailer(Premailer):
        """Premailer whose stylesheets are parsed by a cssutils parser that never fetches.

        Premailer parses every ``<style>`` (and, with ``allow_network``, which is off,
        every ``<link>`` stylesheet) through ``_parse_css_string``, which calls cssutils'
        module-level ``parseString``: a parser with the default urllib fetcher. Style
        attributes go through ``cssutils.parseStyle``, which parses declarations only (no
        ``@import``). So this method is the one place to put ours.
        """

        def _parse_css_string(self, css_body: str, validate: bool = True) -> Any:
            _check_css_rules(css_body.count("{"))
            return _parse_stylesheet(css_body, validate)

    return NoFetchPremailer


def _premailer() -> Any:
    return _premailer_class()(**PREMAILER_OPTIONS)


# Premailer's work grows with rules x elements (each rule is matched against the whole
# document), and cssutils' with the square of the rule count: neither runs under the
# render's clock, so both are bounded before premailer starts.
_ELEMENTS_PER_RULE_BUDGET = 2000
_STYLE_ELEMENT = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.IGNORECASE | re.DOTALL)


def _check_css_rules(rules: int, elements: int = 0) -> None:
    """Refuse a stylesheet over ``RENDER_MAX_CSS_RULES`` rules, or a document whose rules
    x elements would keep premailer busy for long (``RenderLimitExceeded``)."""
    limit = get_setting("RENDER_MAX_CSS_RULES")
    if rules > limit:
        raise RenderLimitExceeded(
            "RENDER_MAX_CSS_RULES", limit, "the stylesheets have more rules than"
        )
    if rules * elements > limit * _ELEMENTS_PER_RULE_BUDGET:
        raise RenderLimitExceeded(
            "RENDER_MAX_CSS_RULES", limit,
            f"{rules:,} CSS rules to match against {elements:,} elements exceed what",
        )


def inline_css(html: str) -> str:
    """Inline the ``<style>`` CSS of an HTML document with premailer (the slow way).

    Used per email only for templates that cannot be precompiled; the precompiled
    templates are proven to give the same result as ``inline_css(rendered_html)``. A
    document whose CSS is too big to inline raises ``RenderLimitExceeded``.
    """
    rules = sum(css.count("{") for css in _STYLE_ELEMENT.findall(html))
    _check_css_rules(rules, html.count("<"))
    return _premailer().transform(html, pretty_print=False)
