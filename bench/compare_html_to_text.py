"""Our derived text part against permissively licensed HTML-to-text libraries.

Run: ``pip install html-text inscriptis markdownify html2text-rs`` into a virtualenv that
has this project, then ``python bench/compare_html_to_text.py`` (``--show NAME`` prints
every converter's text of one corpus case; ``--show all`` of every case). A library that
is not installed is left out. None of them is a dependency of the project (html2text is
GPL-3.0 and is not compared).

Every case and context of ``tests/rendering_corpus`` is rendered with ``render_email()``
(blank text part, so the CSS-inlined HTML a derived text part is made from), then each
converter turns the HTML into text. Per converter it prints, over the corpus: the links
whose URL the text keeps, the emails showing the hidden preheader, the emails with
more than one blank line in a row or with trailing blanks, and the time per email (the
minimum of 5 rounds over the whole corpus).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from types import SimpleNamespace

from bench_render import CORPUS, configure
from lxml import etree

PREHEADER = "News from"  # the hidden preheader of the corpus's branded layout


def converters() -> dict[str, Callable[[str], str]]:
    from transactional_mail.rendering.text import html_to_text

    found: dict[str, Callable[[str], str]] = {"ours": html_to_text}
    try:
        import html_text

        found["html-text"] = html_text.extract_text
    except ImportError:
        pass
    try:
        from inscriptis import get_text
        from inscriptis.model.config import ParserConfig

        config = ParserConfig(display_links=True)
        found["inscriptis"] = lambda html: get_text(html, config)
    except ImportError:
        pass
    try:
        from markdownify import markdownify

        found["markdownify"] = markdownify
    except ImportError:
        pass
    try:
        import html2text_rs

        found["html2text-rs"] = lambda html: html2text_rs.text_plain(html, 78)
    except ImportError:
        pass
    return found


def corpus_emails() -> list[tuple[str, str]]:
    """(case name, HTML) of every case and context of the corpus, rendered."""
    from transactional_mail.rendering import render_email

    cases = json.loads((CORPUS / "cases.json").read_text())
    emails = []
    for pk, case in enumerate(cases["cases"], start=1):
        source = (CORPUS / "templates" / case.get("template", f"{case['name']}.html"))
        template = SimpleNamespace(
            pk=pk, subject=case["subject"], html=source.read_text(), text=""
        )
        layout = None
        if case["layout"]:
            spec = cases["layouts"][case["layout"]]
            layout = SimpleNamespace(
                pk=pk,
                html=(CORPUS / spec["html"]).read_text(),
                css=(CORPUS / spec["css"]).read_text() if spec["css"] else "",
                **{"footer_html": "", **spec["brand"]},
            )
        for context in case["contexts"]:
            emails.append((case["name"], render_email(template, layout, context).html))
    return emails


def link_urls(html: str) -> list[str]:
    root = etree.fromstring(html, etree.HTMLParser())
    return [
        href.strip().removeprefix("mailto:")
        for href in root.xpath("//a/@href")
        if href.strip() and not href.strip().startswith("#")
    ]


def seconds_per_email(convert: Callable[[str], str], htmls: list[str]) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for html in htmls:
            convert(html)
        best = min(best, (time.perf_counter() - start) / len(htmls))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", help="print every converter's text of this case (or all)")
    args = parser.parse_args()
    configure()
    emails = corpus_emails()
    htmls = [html for _name, html in emails]
    links = sum(len(link_urls(html)) for html in htmls)
    print(f"{len(emails)} emails, {links} links\n")
    print(f"{'converter':<14}{'links kept':>12}{'preheader':>11}{'blank runs':>12}"
          f"{'trailing':>10}{'ms/email':>10}")
    for name, convert in converters().items():
        texts = [convert(html) for html in htmls]
        kept = sum(
            url in text for html, text in zip(htmls, texts, strict=True)
            for url in link_urls(html)
        )
        preheader = sum(PREHEADER in text for text in texts)
        blank_runs = sum(bool(re.search(r"\n[ \t]*\n[ \t]*\n", text)) for text in texts)
        trailing = sum(bool(re.search(r"[ \t]$", text, re.MULTILINE)) for text in texts)
        ms = seconds_per_email(convert, htmls) * 1000
        print(f"{name:<14}{kept:>7}/{links:<4}{preheader:>8}/{len(texts):<2}"
              f"{blank_runs:>9}/{len(texts):<2}{trailing:>7}/{len(texts):<2}{ms:>10.3f}")
    if args.show:
        for case, html in emails:
            if args.show not in ("all", case):
                continue
            for name, convert in converters().items():
                print(f"\n===== {case}: {name} =====\n{convert(html)}")
            if args.show != "all":
                break


if __name__ == "__main__":
    main()
