"""The structure's rules (docs/architecture.md): imports run one way, and nothing loops.

Every import of the app's modules counts, the lazy ones inside functions too: a lazy
import is still a dependency, only hidden.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "transactional_mail"

#: Bottom first: a module may import its own layer's modules and those below.
LAYERS = [
    {"conf", "exceptions", "headers", "snapshots", "retries", "metadata", "send_checks",
     "signals", "redaction", "categories", "subscriptions", "durations", "subject_variants",
     "process_cache"},
    {"rendering"},
    {"models", "migrations"},
    {"privacy", "suppression_files"},
    {"claims", "publishing", "background_publish", "outbox_insert", "results", "failures",
     "alerts", "pacing", "stats"},
    {"delivery"},
    {"tasks"},
    {"api", "resending"},
    {"triggers", "tracking", "auth", "allauth", "periodic"},
    {"checks", "schedule", "worker", "default_layout", "starters", "stats_rebuild"},
    {"admin", "management", "templatetags", "views", "urls"},
]
#: What wires the layers together: the app config and the package's lazy ``send``.
WIRING = {"apps", "__init__"}


def layer_of(part: str) -> int:
    for index, names in enumerate(LAYERS):
        if part in names:
            return index
    raise AssertionError(f"transactional_mail.{part} is in no layer of "
                         "tests/test_architecture.py: add it where docs/architecture.md says")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The app's modules ``path`` imports, anywhere in it but under ``TYPE_CHECKING``, as
    dotted names (``from . import x`` imports the module ``x``, not the package)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    tree = ast.parse(path.read_text(), str(path))
    type_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    return {target for target in found if target in modules and target != name}


def app_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def top_part(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


@pytest.mark.parametrize("path", app_modules(), ids=lambda p: module_name(p))
def test_imports_run_down_the_layers(path):
    source = top_part(module_name(path))
    if source in WIRING:
        return
    upward = [
        target for target in imported_modules(path)
        if top_part(target) not in WIRING and layer_of(top_part(target)) > layer_of(source)
    ]
    assert upward == [], f"{module_name(path)} imports a higher layer: {upward}"


def test_no_module_imports_the_package_facade_or_the_app_config():
    offenders = sorted(
        module_name(path) for path in app_modules()
        if top_part(module_name(path)) not in WIRING
        and {"transactional_mail", "transactional_mail.apps"} & imported_modules(path)
    )
    assert offenders == []


def test_no_import_cycle():
    graph = {module_name(path): imported_modules(path) for path in app_modules()}
    # A package's __init__ importing its own modules is how it exports them, not a cycle.
    for name in graph:
        graph[name] = {target for target in graph[name] if not name.startswith(target + ".")
                       and not (target.startswith(name + ".") and name in graph)}
    visiting, done, cycles = [], set(), []

    def visit(node):
        if node in done:
            return
        if node in visiting:
            cycles.append(visiting[visiting.index(node):] + [node])
            return
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            visit(target)
        visiting.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)
    assert cycles == []


def test_delivery_does_not_import_the_triggers():
    """Imported with the models loaded but without what wires the triggers in (the app's
    ready(), which connects their receivers, and the admin's autodiscovery), delivery loads
    no trigger module."""
    code = (
        "import django, os, sys\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.settings'\n"
        "from django.conf import settings\n"
        "settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS\n"
        "                           if app != 'django.contrib.admin']\n"
        "from transactional_mail.apps import TransactionalMailConfig\n"
        "TransactionalMailConfig.ready = lambda self: None\n"
        "django.setup()\n"
        "import transactional_mail.delivery\n"
        "print(sorted(m for m in sys.modules if m.startswith('transactional_mail.triggers')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=PACKAGE.parent, check=True)
    assert result.stdout.strip() == "[]"
