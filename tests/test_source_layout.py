"""How the source is laid out: units small enough to read, and every backend branch of the Monte Carlo engine in
`kerasdrop/mc/compile.py`."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "kerasdrop"
LIMITS = {ast.ClassDef: 200, ast.FunctionDef: 80, ast.AsyncFunctionDef: 80}  # lines, docstrings and decorators in


def _units(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if type(node) in LIMITS:
            start = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
            yield node, node.end_lineno - start + 1


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_class_over_200_lines_and_no_function_over_80(path):
    too_long = [f"{node.name} ({lines} lines)" for node, lines in _units(path) if lines > LIMITS[type(node)]]
    assert not too_long, f"{path.name}: {too_long}"


def _reads_the_backend(node):
    """``keras.backend.backend()``, or an import of a backend's own package."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "backend":
        return True
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] in ("jax", "torch") for alias in node.names)
    return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("jax", "torch")


@pytest.mark.parametrize("path", sorted((PACKAGE / "mc").glob("*.py")), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_the_engine_branches_on_the_backend_only_in_compile(path):
    if path.name == "compile.py":
        assert any(_reads_the_backend(node) for node in ast.walk(ast.parse(path.read_text())))
        return
    lines = [node.lineno for node in ast.walk(ast.parse(path.read_text())) if _reads_the_backend(node)]
    assert not lines, f"{path.name} reads the backend at lines {lines}: move the branch to kerasdrop/mc/compile.py"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_keras_internals_are_read_only_in_compat(path):
    """Keras's private modules (``keras.src``) are named only in `kerasdrop/_compat.py`, where a newer Keras that
    moves them fails `tests/test_compat.py` by name."""
    if path.name == "_compat.py":
        return
    lines = [number for number, line in enumerate(path.read_text().splitlines(), 1) if "keras.src" in line]
    assert not lines, f"{path.name} names keras.src at lines {lines}: read it through kerasdrop/_compat.py"
