"""Stand-ins for revisions and helpers shared by the rendering tests."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from django.template import Context
from lxml import etree

from transactional_mail.rendering.context import freeze_context
from transactional_mail.rendering.engine import get_engine

CORPUS = Path(__file__).parent.parent / "rendering_corpus"
_REAL_CONNECT = socket.socket.connect
_REAL_CREATE_CONNECTION = socket.create_connection


def template(html: str = "", subject: str = "Hello", text: str = "", pk: int | None = 1):
    """A stand-in for a TemplateRevision."""
    return SimpleNamespace(pk=pk, subject=subject, html=html, text=text)


def layout(html: str = "<html><body>{{ content }}</body></html>", css: str = "", pk=1, **brand):
    """A stand-in for a LayoutRevision."""
    fields = dict(
        name="Acme",
        logo_url="https://cdn.example.com/logo.png",
        primary_color="#ff6600",
        background_color="#f4f4f4",
        text_color="#333333",
        footer_html="",
    )
    fields.update(brand)
    return SimpleNamespace(pk=pk, html=html, css=css, **fields)


def render(source: str, context: dict | None = None, *, autoescape: bool = True) -> str:
    return (
        get_engine()
        .from_string(source)
        .render(Context(freeze_context(context or {}), autoescape=autoescape))
    )


def dom(html: str) -> list[Any]:
    """The parsed document as a list of nodes (see the docstring of test_precompile)."""
    tree = etree.fromstring(html, etree.HTMLParser()).getroottree()
    nodes: list[Any] = [tree.docinfo.doctype]
    for node in tree.getroot().iter():
        if isinstance(node.tag, str):
            nodes.append((node.tag, tuple(node.attrib.items()), node.text, node.tail))
        else:
            nodes.append(("#comment", node.text, node.tail))
    return nodes
