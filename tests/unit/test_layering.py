"""The layering holds: pages → state → services → models/db and payments (README, Layout).

Read from the source (the AST of every module's imports, also those inside functions), so a late import
cannot slip past. No exceptions: state/calls.py, which resolves the payment provider for every state (as
FastAPI's deps.py does), takes it from services/providers.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cf_portal"


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports (`from a.b import c` gives a.b and a.b.c)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).glob("*.py"))


def relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


@pytest.mark.parametrize("path", modules("state") + modules("pages"), ids=relative)
def test_states_and_pages_import_neither_models_nor_payments(path: Path) -> None:
    crossing = sorted(name for name in imported_modules(path)
                      if within(name, "cf_portal.models") or within(name, "cf_portal.payments"))
    assert crossing == [], f"{relative(path)} reaches past the services: {crossing}"


@pytest.mark.parametrize("path", modules("services") + modules("payments"), ids=relative)
def test_services_and_payments_know_nothing_of_reflex_or_states(path: Path) -> None:
    crossing = sorted(name for name in imported_modules(path)
                      if within(name, "reflex") or within(name, "cf_portal.state") or within(name, "cf_portal.pages"))
    assert crossing == [], f"{relative(path)} imports {crossing}"


@pytest.mark.parametrize("path", modules("state"), ids=relative)
def test_no_state_imports_a_private_name_of_another(path: Path) -> None:
    private = sorted(f"{node.module}.{alias.name}"
                     for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.ImportFrom) and node.module and within(node.module, "cf_portal.state")
                     for alias in node.names if alias.name.startswith("_"))
    assert private == [], f"{relative(path)} imports private names: {private}"


def test_the_check_sees_a_crossing(tmp_path: Path) -> None:
    """The checks above can fail: a module that imports a model inside a function is caught."""
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def load():\n    from cf_portal.models import User\n    import reflex as rx\n")
    assert {"cf_portal.models", "cf_portal.models.User", "reflex"} <= imported_modules(sneaky)
