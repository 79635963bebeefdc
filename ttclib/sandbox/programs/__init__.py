"""The programs the sandbox runs outside the caller's process, kept as modules of this package
and read as text at run time.

None of them is imported where it runs, and none is a file there: each is passed as text,
``python -I -S -c TEXT`` or, the tests' harness, as the program the helper runs. A program
made of several modules is their texts joined in one ``__main__`` module; a name one of them
takes from another is imported under ``TYPE_CHECKING`` only, for linters and type checkers.

- :mod:`.helper`: sets up the namespaces, file system, limits and uid, then runs the program.
- :mod:`.codec`: the values and messages crossing between the tests' and the solution's process.
- :mod:`.solution`: S, the solution's process (after the codec).
- :mod:`.harness`: T, the tests' process (S's program assigned first, then the codec).
- :mod:`.call_cases`: the tests :func:`ttclib.sandbox.passes_call` gives the harness.
"""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def source(name: str) -> str:
    """The text of program module ``name`` of this package."""
    return resources.files(__name__).joinpath(f"{name}.py").read_text(encoding="utf-8")


def helper() -> str:
    """The helper's program (``python -I -S -c``, argv: config fd, report fd, caller's pid)."""
    return source("helper")


@functools.cache
def solution() -> str:
    """S's program (``python -I -S -c``, argv: request fd, reply fd)."""
    return source("codec") + source("solution")


@functools.cache
def harness() -> str:
    """T's program: S's, assigned to ``SOLUTION_RUNNER`` by its first line, then the codec and
    the harness."""
    return f"SOLUTION_RUNNER = {solution()!r}\n" + source("codec") + source("harness")


def call_cases() -> str:
    """The tests of :func:`ttclib.sandbox.passes_call` (trusted: they run in T)."""
    return source("call_cases")
