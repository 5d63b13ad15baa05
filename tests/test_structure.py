"""The shape the consolidation gave ``snnhw/`` (one rule, one place), checked on every run.

* no function over 80 lines and no module over 500 lines (a module may be longer only if its docstring
  says "Longer than 500 lines because ...");
* no catch-all ``except Exception`` / ``except BaseException`` / bare ``except`` unless it re-raises
  (bare ``raise``): user errors are :class:`snnhw.errors.SnnhwError`, everything else is a bug;
* no weight-grid literal (254, 255, -256) outside :mod:`snnhw.loihi`, the one home of Loihi's rules;
* only :mod:`snnhw.backends` imports ``lava``.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "snnhw"
FILES = sorted(PKG.rglob("*.py"))
MAX_FUNC, MAX_MODULE = 80, 500


def _tree(p):
    return ast.parse(p.read_text())


def _rel(p):
    return str(p.relative_to(PKG.parent))


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_module_and_function_sizes(path):
    src = path.read_text()
    tree = ast.parse(src)
    n = src.count("\n")
    doc = ast.get_docstring(tree) or ""
    assert n <= MAX_MODULE or "Longer than 500 lines because" in doc, f"{_rel(path)} has {n} lines"
    long = [f"{f.name} ({f.end_lineno - f.lineno + 1} lines)" for f in ast.walk(tree)
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.end_lineno - f.lineno + 1 > MAX_FUNC]
    assert not long, f"{_rel(path)}: functions over {MAX_FUNC} lines: {long}"


def _broad(h: ast.ExceptHandler) -> bool:
    return h.type is None or (isinstance(h.type, ast.Name) and h.type.id in ("Exception", "BaseException"))


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_no_catch_all_that_swallows(path):
    bad = [h.lineno for h in ast.walk(_tree(path)) if isinstance(h, ast.ExceptHandler) and _broad(h)
           and not any(isinstance(x, ast.Raise) and x.exc is None for x in ast.walk(h))]
    assert not bad, f"{_rel(path)}: broad except without re-raise at lines {bad}"


def _grid_literals(tree):
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and type(n.value) in (int, float) and n.value in (254, 255):
            yield n.lineno, n.value
        if (isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub) and isinstance(n.operand, ast.Constant)
                and n.operand.value == 256):
            yield n.lineno, -256


@pytest.mark.parametrize("path", [p for p in FILES if p != PKG / "loihi.py"], ids=_rel)
def test_weight_grid_literals_only_in_loihi(path):
    found = list(_grid_literals(_tree(path)))
    assert not found, f"{_rel(path)}: weight-grid literals {found}; use snnhw.loihi's named constants"


def test_the_scan_finds_what_it_looks_for():
    """The checks above can fail: each catches a planted offence."""
    bad = ast.parse("def f():\n    try:\n        pass\n    except Exception:\n        return 254\n")
    assert list(_grid_literals(bad)) == [(5, 254)]
    h = next(n for n in ast.walk(bad) if isinstance(n, ast.ExceptHandler))
    assert _broad(h) and not any(isinstance(x, ast.Raise) for x in ast.walk(h))


@pytest.mark.parametrize("path", [p for p in FILES if "backends" not in p.parts], ids=_rel)
def test_only_backends_import_lava(path):
    mods = set()
    for n in ast.walk(_tree(path)):
        if isinstance(n, ast.Import):
            mods |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            mods.add(n.module.split(".")[0])
    assert "lava" not in mods, f"{_rel(path)} imports lava; only snnhw/backends/ may"
