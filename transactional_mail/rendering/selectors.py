"""CSS selector analysis: what a selector depends on, and which selectors premailer inlines.

The precompiler (:mod:`transactional_mail.rendering.precompile`) asks this before it
trusts CSS inlined ahead of rendering: a selector that tests an attribute holding a
template tag, or sibling structure that blocks change, could match differently once the
email is rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .inlining import _premailer


@dataclass
class _SelectorFacts:
    attributes: set[str]  # attribute names the selector tests (class, id, href...)
    structural: bool  # depends on siblings: :first-child, :last-child, +, ~
    subject_tag: str | None  # the element type matched, None for any
    subject_needs_class_or_id: bool  # elements made by filters have neither


def _selector_facts(selector: str) -> _SelectorFacts:
    """What a CSS selector depends on: attribute names, sibling structure, subject tag."""
    from cssselect import parse
    from cssselect import parser as css

    facts = _SelectorFacts(set(), False, None, False)

    def walk(node: Any) -> None:
        if isinstance(node, css.Class):
            facts.attributes.add("class")
        elif isinstance(node, css.Hash):
            facts.attributes.add("id")
        elif isinstance(node, css.Attrib):
            facts.attributes.add(str(node.attrib).lower())
        elif isinstance(node, (css.Pseudo, css.Function)) or (
            isinstance(node, css.CombinedSelector) and node.combinator in "+~"
        ):
            facts.structural = True
        for value in vars(node).values():
            for child in value if isinstance(value, (list, tuple)) else (value,):
                if type(child).__module__ == css.__name__:
                    walk(child)

    for parsed in parse(selector):
        walk(parsed)
        subject = parsed.parsed_tree
        if isinstance(subject, css.CombinedSelector):
            subject = subject.subselector
        while not isinstance(subject, css.Element) and hasattr(subject, "selector"):
            if isinstance(subject, (css.Class, css.Hash)):
                facts.subject_needs_class_or_id = True
            subject = subject.selector
        element = getattr(subject, "element", None)
        facts.subject_tag = element.lower() if element and element != "*" else None
    return facts


def _inlinable_selectors(page: Any) -> list[str]:
    """The selectors premailer will inline into this document (not media queries etc.)."""
    premailer = _premailer()
    selectors: list[str] = []
    for index, element in enumerate(page.iter("style")):
        media = element.attrib.get("media")
        if media and media not in ("all", "screen"):
            continue
        if element.attrib.get(premailer.attribute_name) == "ignore":
            continue
        # Premailer's own parser, so the selection matches what transform() inlines.
        rules, _leftover = premailer._parse_style_rules(element.text, index)
        selectors.extend(selector for _specificity, selector, _bulk in rules)
    return selectors
