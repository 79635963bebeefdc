"""The runnable examples in the library's docstrings run and hold: every module of ttclib that has one."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[1] / "ttclib"
# Not imported: the sandbox's programs run as text in a child (importing one would start it), and
# sglang_cpu is a shim for SGLang's own interpreter.
NOT_IMPORTED = ("sandbox/programs/", "sglang_cpu/")


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(LIBRARY.rglob("*.py")):
        rel = path.relative_to(LIBRARY).as_posix()
        if rel.startswith(NOT_IMPORTED) or ">>> " not in path.read_text():
            continue
        parts = ["ttclib", *rel.removesuffix(".py").split("/")]
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_the_examples_are_found():
    assert {"ttclib.aggregators", "ttclib.papers", "ttclib.sandbox", "ttclib.energy.clocks"} <= set(MODULES)
    assert len(MODULES) >= 35


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
