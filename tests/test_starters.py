"""The starter templates (transactional_mail.starters): the loader, and every starter's content.

The content tests are parametrized over whatever starter directories exist, so a kind
added later is checked the same way: it renders with its sample context through the real
renderer in every language, passes the app's checks and the preview's warnings, documents
exactly the variables it uses, and has its fingerprints recorded.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping

import pytest
from lxml import etree

from transactional_mail.default_layout import (
    default_layout_values,
    layout_fingerprint,
    shipped_versions,
)
from transactional_mail.models import EmailTemplate, Layout
from transactional_mail.rendering.preview import missing_variables, preview_email
from transactional_mail.rendering.validation import (
    validate_html_source,
    validate_template_budget,
    validate_template_source,
)
from transactional_mail.starters import (
    DIRECTORY,
    LANGUAGES,
    StarterError,
    fingerprint,
    load_starter,
    load_starters,
    record_fingerprints,
    starter_directories,
)

STARTERS = load_starters()
KEYS = sorted(STARTERS)
CASES = [(key, language) for key in KEYS for language in LANGUAGES]
#: The context keys every starter has.
COMMON_CONTEXT = {"site_name", "site_url"}


@pytest.fixture
def layout():
    """The shipped default layout, unsaved (pure rendering: no database)."""
    return Layout(**default_layout_values())


# --- The loader ------------------------------------------------------------------------


@pytest.fixture
def starter_copy(tmp_path):
    """A copy of the password_reset starter to break, and a function to edit its JSON."""
    directory = tmp_path / "password_reset"
    shutil.copytree(DIRECTORY / "password_reset", directory)

    def edit(change):
        path = directory / "starter.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(json.dumps(data), encoding="utf-8")

    return directory, edit


def test_the_starters_load_with_all_their_parts():
    starter = STARTERS["password_reset"]
    assert (starter.key, starter.category, starter.essential) == ("password_reset", "account",
                                                                   True)
    assert starter.secret == ("reset_url",)
    assert set(starter.languages) == set(LANGUAGES)
    assert starter.languages["fr"].subject == "Réinitialisez votre mot de passe {{ site_name }}"
    assert starter.languages["ar"].html.startswith("<h1>")
    assert starter.history[starter.version] == starter.current_fingerprints()


def test_the_directories_are_found_by_their_starter_json(tmp_path):
    (tmp_path / "notes").mkdir()
    shutil.copytree(DIRECTORY / "password_reset", tmp_path / "password_reset")
    assert starter_directories(tmp_path) == [tmp_path / "password_reset"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda data: data.pop("category"), "missing key(s): category."),
    (lambda data: data.update(colour="red"), "unknown key(s): colour"),
    (lambda data: data.update(version="1"), '"version" must be an integer, not \'1\'.'),
    (lambda data: data.update(version=True), '"version" must be an integer, not True.'),
    (lambda data: data.update(version=0), '"version" must be 1 or more, not 0.'),
    (lambda data: data.update(essential="yes"), '"essential" must be true or false'),
    (lambda data: data.update(key="reset"), "\"key\" must be the directory's name, "
     "'password_reset'"),
    (lambda data: data.update(category="Account mail"), '"category" must be a slug'),
    (lambda data: data.update(description=" "), '"description" must say when'),
    (lambda data: data["context"].update({"user.name": ""}), "'user.name' needs a description"),
    (lambda data: data.update(secret=["token"]), "\"secret\": 'token' is not a top-level key"),
    (lambda data: data["languages"].pop("ar"), '"languages" must have exactly en, fr, de, it, '
     "ar; it has en, fr, de, it."),
    (lambda data: data["languages"]["de"].pop("preheader"), "'de' must be an object with "
     'exactly "subject" and "preheader"'),
    (lambda data: data["languages"]["it"].update(subject="Two\nlines"), "the subject of 'it' "
     "must be one non-empty line"),
])
def test_a_malformed_starter_json_is_refused_naming_the_file_and_the_fault(
        starter_copy, change, message):
    directory, edit = starter_copy
    edit(change)
    with pytest.raises(StarterError) as caught:
        load_starter(directory)
    assert str(caught.value).startswith(f"{directory / 'starter.json'}: ")
    assert message in str(caught.value)


def test_invalid_json_is_refused_with_its_line(starter_copy):
    directory, _edit = starter_copy
    (directory / "starter.json").write_text('{\n  "key": "password_reset",\n}', "utf-8")
    with pytest.raises(StarterError, match=r"starter.json: not valid JSON: .* at line 3"):
        load_starter(directory)


def test_a_missing_or_empty_language_file_is_refused(starter_copy):
    directory, _edit = starter_copy
    (directory / "de.txt").unlink()
    with pytest.raises(StarterError, match=r"de\.txt: the file is missing: every language"):
        load_starter(directory)
    (directory / "de.txt").write_text("\n", "utf-8")
    with pytest.raises(StarterError, match=r"de\.txt: the file is empty"):
        load_starter(directory)


def test_a_malformed_history_is_refused(starter_copy):
    directory, _edit = starter_copy
    (directory / "history.json").write_text('{"versions": {"one": {}}}', "utf-8")
    with pytest.raises(StarterError, match=r"history\.json: must be \{\"versions\""):
        load_starter(directory)


def test_recording_adds_a_new_version_and_refuses_to_rewrite_an_old_one(starter_copy):
    directory, edit = starter_copy
    (directory / "en.txt").write_text("Hello {{ user.name }}, a changed text.\n", "utf-8")
    with pytest.raises(StarterError, match='version 1 was recorded with other content: raise '
                       '"version"'):
        record_fingerprints(load_starter(directory))
    edit(lambda data: data.update(version=2))
    assert record_fingerprints(load_starter(directory)) is True
    starter = load_starter(directory)
    assert sorted(starter.history) == [1, 2]
    assert starter.history[2] == starter.current_fingerprints()
    assert starter.earlier_version("en", STARTERS["password_reset"].languages["en"].fingerprint
                                   ) == 1
    assert record_fingerprints(starter) is False  # nothing new


def test_a_fingerprint_ignores_line_endings_and_outer_blanks():
    assert fingerprint("S", "", "<p>a</p>\n<p>b</p>\n", "t") == fingerprint(
        " S", "", "<p>a</p>\r\n<p>b</p>", "t\r\n")
    assert fingerprint("S", "", "<p>a</p>", "t") != fingerprint("S", "", "<p>b</p>", "t")


# --- Every starter x language -----------------------------------------------------------


def test_there_are_starters():
    assert {"password_reset", "order_confirmation"} <= set(KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_the_fingerprint_history_is_up_to_date(key):
    """A starter whose content changed has a new version with its fingerprints recorded
    (run ``python -m transactional_mail.starters record``): sites holding the old one get
    the new one, and sites that edited it keep theirs."""
    starter = STARTERS[key]
    assert starter.history.get(starter.version) == starter.current_fingerprints(), (
        f"{key}: its content is not the one recorded for version {starter.version}. Raise "
        "its version in starter.json and run python -m transactional_mail.starters record."
    )
    assert max(starter.history) == starter.version


@pytest.mark.parametrize("key", KEYS)
def test_the_context_is_documented_with_the_common_keys(key):
    starter = STARTERS[key]
    assert set(starter.context) >= COMMON_CONTEXT
    assert set(starter.sample_context) >= COMMON_CONTEXT
    for secret in starter.secret:
        assert secret in starter.context


def _documented_skeleton(starter) -> dict:
    """A context holding exactly the documented paths, shaped like the sample (a list
    where the sample has a list), so the preview's walk finds undocumented variables."""
    skeleton: dict = {}
    for path in starter.context:
        node, sample = skeleton, starter.sample_context
        parts = path.split(".")
        for index, part in enumerate(parts):
            sample = sample.get(part) if isinstance(sample, Mapping) else None
            if isinstance(sample, list):
                sample = sample[0] if sample and isinstance(sample[0], Mapping) else None
                items = node.setdefault(part, [{}])
                node = items[0]
            elif index == len(parts) - 1:
                node.setdefault(part, "documented")
            else:
                node = node.setdefault(part, {})
    return skeleton


def _without(skeleton, path: str, starter) -> dict:
    copy = json.loads(json.dumps(skeleton))
    node = copy
    *parents, last = path.split(".")
    for part in parents:
        node = node[part][0] if isinstance(node[part], list) else node[part]
    node.pop(last)
    return copy


def _sources(starter, language):
    content = starter.languages[language]
    return {"subject": content.subject, "preheader": content.preheader, "html": content.html,
            "text": content.text}


@pytest.mark.parametrize("key", KEYS)
def test_every_variable_used_is_documented_and_every_documented_one_used(key):
    starter = STARTERS[key]
    skeleton = _documented_skeleton(starter)
    for language in LANGUAGES:
        for part, source in _sources(starter, language).items():
            undocumented = missing_variables(source, skeleton, part)
            assert not undocumented, (language, [m.message for m in undocumented])
    for path in starter.context:
        reduced = _without(skeleton, path, starter)
        for language in LANGUAGES:
            used = any(missing_variables(source, reduced, part)
                       for part, source in _sources(starter, language).items())
            assert used, f"{key} [{language}] documents {path} but does not use it"


@pytest.mark.parametrize(("key", "language"), CASES)
def test_it_passes_the_apps_checks(key, language, layout):
    starter = STARTERS[key]
    for part, source in _sources(starter, language).items():
        if part == "html":
            validate_html_source(source, field_name=part)
        else:
            validate_template_source(source, field_name=part)
    template = EmailTemplate(key=key, language=language, layout=layout,
                             sample_context=dict(starter.sample_context),
                             **_sources(starter, language))
    validate_template_budget(template, layout, starter.sample_context, language=language)


@pytest.mark.parametrize(("key", "language"), CASES)
def test_it_renders_with_its_sample_context_without_a_warning(key, language, layout):
    starter = STARTERS[key]
    sources = _sources(starter, language)
    preview = preview_email(sources["subject"], sources["html"], sources["text"], layout,
                            dict(starter.sample_context), language=language,
                            preheader=sources["preheader"])
    assert not preview.errors, preview.errors
    assert not preview.warnings, [warning.message for warning in preview.warnings]
    root = etree.fromstring(preview.html, etree.HTMLParser())
    direction = "rtl" if language == "ar" else "ltr"
    assert (root.get("lang"), root.get("dir")) == (language, direction)
    [preheader] = root.xpath('//div[@class="preheader"]')
    assert preheader.text and preheader.text.strip() not in preview.subject
    assert 40 <= len(preheader.text) <= 110, preheader.text
    assert "{{" not in preview.subject + preview.text and "{%" not in preview.text
    assert root.xpath("//h1") and len(root.xpath("//h1")) == 1
    # The text part has every link the HTML has, written out.
    for href in root.xpath("//td[@class='content']//a/@href"):
        assert href in preview.text, href
    # The starter's words, not another language's: its subject is in the sample render.
    assert preview.subject and "\n" not in preview.subject


@pytest.mark.parametrize(("key", "language"), CASES)
def test_it_uses_only_the_layouts_vocabulary(key, language):
    """No inline style, no document tags, classes the default layout styles."""
    html = STARTERS[key].languages[language].html
    assert not re.search(r"<(html|head|body|style|script|link)\b", html, re.IGNORECASE)
    root = etree.fromstring(f"<div>{html}</div>", etree.HTMLParser())
    allowed_classes = {"actions", "button", "muted", "code", "notice", "items", "num", "total",
                       "details", "divider"}
    for element in root.xpath("//body/div//*"):
        assert element.get("style") is None, etree.tostring(element)
        assert set((element.get("class") or "").split()) <= allowed_classes, element.get("class")
    for image in root.xpath("//img"):
        assert image.get("alt") is not None


def test_arabic_is_right_to_left_and_never_pinned_left(layout):
    """Premailer inlines text-align as a style and an align attribute: the layout sets no
    physical alignment, so Arabic text follows dir="rtl", and numbers go to the end side."""
    starter = STARTERS["order_confirmation"]
    sources = _sources(starter, "ar")
    preview = preview_email(sources["subject"], sources["html"], sources["text"], layout,
                            dict(starter.sample_context), language="ar",
                            preheader=sources["preheader"])
    root = etree.fromstring(preview.html, etree.HTMLParser())
    assert root.get("dir") == "rtl" and root.xpath('//table[@class="outer"][@dir="rtl"]')
    assert not root.xpath('//*[@align="left" or @align="right"]')
    styles = " ".join(root.xpath("//@style")).replace(" ", "")
    assert "text-align:left" not in styles and "text-align:right" not in styles
    [total] = root.xpath('//tr[@class="total"]/td[@class="num"]')
    assert "text-align:end" in total.get("style").replace(" ", "")
    # Nothing one-sided in a physical direction: it would not mirror.
    assert not re.search(r"(padding|margin|border)-(left|right)", styles)


# --- The default layout's history --------------------------------------------------------


def test_the_default_layouts_history_ends_with_the_shipped_version():
    """Change layouts/default.* and this fails until the new version's fingerprint is
    added to layouts/history.json (sites with the old, unedited layout get the new one)."""
    versions = shipped_versions()
    assert versions[max(versions)] == layout_fingerprint(default_layout_values())
    assert len(set(versions.values())) == len(versions)


def test_the_package_ships_the_starter_files():
    """Hatchling puts every file under the package in the wheel, except what the build
    config or .gitignore excludes: nothing may exclude the starters' data files."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later
    root = DIRECTORY.parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = config["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["transactional_mail"] and not wheel.get("exclude")
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot ask it what .gitignore excludes")
    files = [str(path) for path in DIRECTORY.rglob("*") if path.suffix in {".json", ".html",
                                                                            ".txt"}]
    ignored = subprocess.run(["git", "check-ignore", *files], cwd=root, capture_output=True,
                             text=True).stdout
    assert files and not ignored


def test_the_docs_page_is_current():
    """docs/starter-templates.md's kinds, variables and gallery come from the starter.json
    files: regenerate them with python -m tests.browser.starter_gallery."""
    from tests.browser.starter_gallery import (
        DOCS_IMAGES,
        DOCS_PAGE,
        doc_shots,
        docs_section,
        page_with_section,
        shot_name,
    )

    page = DOCS_PAGE.read_text(encoding="utf-8")
    assert page == page_with_section(page, docs_section(STARTERS)), (
        "docs/starter-templates.md is out of date: run python -m tests.browser.starter_gallery")
    for shot in doc_shots(STARTERS):
        assert (DOCS_IMAGES / f"{shot_name(*shot)}.jpg").exists(), shot
    assert sum(path.stat().st_size for path in DOCS_IMAGES.iterdir()) < 3_000_000
