"""The floors of the data flow: no import runs back up (read from the source, so a stray import fails here)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mcunas"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", "."), path


def _offenders(importer_prefix: str, imported_prefix: str, allowed=()) -> list[str]:
    return [f"{name} imports {imp}" for name, path in _modules()
            if name.startswith(importer_prefix) and not name.startswith(allowed or ("\0",))
            for imp in _imports(path) if imp == imported_prefix or imp.startswith(imported_prefix + ".")]


def test_only_the_cli_imports_the_cli():
    assert _offenders("mcunas", "mcunas.cli", allowed=("mcunas.cli", "mcunas.__main__")) == []


def test_data_never_imports_export():
    assert _offenders("mcunas.data", "mcunas.export") == []


def test_cost_model_never_imports_search_query_or_tensorflow():
    for upper in ("mcunas.search", "mcunas.query", "mcunas.train", "mcunas.export", "tensorflow", "keras"):
        assert _offenders("mcunas.cost", upper) == []


def test_the_layout_check_sees_a_real_import(tmp_path):
    """The checker is not blind: it finds an import inside a function body."""
    stray = tmp_path / "stray.py"
    stray.write_text("def f():\n    from mcunas.cli.flags import add_budget_flags\n")
    assert "mcunas.cli.flags" in _imports(stray)
