"""The package's folders show its layers, and imports point one way: down."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "clarify_auth"

# What each layer may import of the others (besides _errors, _version, _urls, _config).
LAYERS = {
    "credentials": set(),
    "tokens": {"credentials"},
    "transports": {"credentials", "tokens", "transports"},
    "cli": {"credentials", "tokens", "transports", "cli", "testing"},
}
FOUNDATION = {"_errors", "_version", "_urls", "_config"}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def layer_modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_imports_only_the_layers_below_it(layer):
    """credentials <- tokens <- transports <- cli: no import points up or sideways."""
    allowed = LAYERS[layer] | {layer} | FOUNDATION
    wrong = {
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in layer_modules(layer)
        for module in imported_modules(path)
        if module.startswith("clarify_auth.")
        and module.split(".")[1] not in allowed
        and not (
            module.count(".") == 1 and module.split(".")[1] in {"httpx", "mqtt"} and layer == "cli"
        )
    }

    assert layer_modules(layer)
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("layer", ["credentials", "tokens"])
def test_the_token_core_imports_no_http_library(layer):
    """Nothing under credentials/ or tokens/ imports requests, urllib3 or httpx."""
    libraries = {"requests", "urllib3", "httpx", "httpcore", "anyio"}
    wrong = {
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in layer_modules(layer)
        for module in imported_modules(path)
        if module.split(".")[0] in libraries
    }

    assert not wrong, sorted(wrong)


def test_package_inits_only_describe_or_re_export():
    """Every __init__.py of a folder holds a docstring and nothing else."""
    for init in sorted(PACKAGE.rglob("__init__.py")):
        if init.parent == PACKAGE:
            continue  # the public namespace: lazy re-exports
        body = ast.parse(init.read_text(encoding="utf-8")).body
        assert len(body) == 1, init
        assert isinstance(body[0], ast.Expr), init
        assert isinstance(body[0].value, ast.Constant), init


@pytest.mark.parametrize("name", sorted(FOUNDATION))
def test_the_foundation_imports_no_layer(name):
    """_errors, _version, _urls and _config, which every layer uses, use no layer themselves."""
    modules = imported_modules(PACKAGE / f"{name}.py")

    assert not {
        m for m in modules if m.startswith("clarify_auth.") and m.split(".")[1] not in FOUNDATION
    }


def test_architecture_md_names_every_folder_and_module_of_the_layers():
    """ARCHITECTURE.md's map names each folder and each module of tokens/ and transports/."""
    text = (PACKAGE.parent.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    folders = {p.parent.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("__init__.py")}
    modules = {p.name for p in (PACKAGE / "tokens").glob("*.py") if p.name != "__init__.py"}

    assert all(f"{folder.rsplit('/', 1)[-1]}/" in text for folder in folders - {"."})
    assert all(module in text for module in modules)


def test_no_module_over_400_lines_and_no_class_over_250():
    """Every module of the package stays within 400 lines, and every class within 250."""
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > 400:
            too_long.append(f"{path.relative_to(PACKAGE)}: {lines} lines")
        too_long.extend(
            f"{path.relative_to(PACKAGE)}: class {node.name}"
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 250
        )

    assert not too_long, too_long
