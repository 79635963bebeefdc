"""Verdicts on code: :func:`passes_io` (stdin/stdout cases), :func:`passes_asserts` (trusted
tests calling the solution) and :func:`passes_call` (LeetCode-style cases).

The tests and the solution run in two processes inside one sandboxed execution (see "How a
verdict is reached" in :mod:`ttclib.sandbox`): the tests' process (:mod:`.programs.harness`)
and the solution's (:mod:`.programs.solution`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence

from . import programs
from .execution import Execution
from .isolation import module_path
from .launcher import Run, run
from .limits import DEFAULT_LIMITS, Limits


def passes_asserts(
    solution: str,
    tests: str,
    *,
    context: str = "",
    candidates: Sequence[str] | dict[str, str] = (),
    data=None,
    limits: Limits = DEFAULT_LIMITS,
) -> Execution:
    """Run trusted ``tests`` (asserts, a ``check(candidate)`` call...) against untrusted
    ``solution`` code; ``.ok`` is whether every test passed.

    The tests and the solution run in two processes (see "How a verdict is reached" in :mod:`ttclib.sandbox`):
    the tests' names that stand for the solution are calls into the solution's process, which
    returns plain values only. ``context`` is trusted code run before the tests in their
    process (helpers the tests use, such as HumanEval's prompt); ``candidates`` are names the
    tests use for the solution's functions even though ``context`` or the builtins define
    them (a mapping when the names differ: ``{"candidate": "find_zero"}``); any other name the
    tests use that neither they, ``context`` nor the builtins define is looked up in the
    solution too. ``data`` (a JSON value) is the tests' global ``TEST_DATA``; the solution
    never sees it, nor the tests, nor ``context``.

    >>> tests = "assert add(2, 3) == 5\\nassert abs(add(0.1, 0.2) - 0.3) < 1e-9"
    >>> passes_asserts("def add(a, b):\\n    return a + b", tests).ok
    True
    >>> passes_asserts("def add(a, b):\\n    return a - b", tests).ok
    False
    """
    if not isinstance(candidates, dict):
        candidates = {name: name for name in candidates}
    return run_tests(
        {
            "solution": solution,
            "module": "__main__",
            "context": context,
            "tests": tests,
            "candidates": dict(candidates),
            "data": data,
        },
        limits,
    )


def passes_io(program: str, cases: Sequence[tuple[str, str]], limits: Limits = DEFAULT_LIMITS) -> bool:
    """Whether ``program`` prints the expected output for every ``(stdin, expected stdout)``
    case; stops at the first failing case. Each case is a separate execution; its stdout is
    compared with the expected text as it arrives (:class:`~ttclib.sandbox.OutputComparison`), so outputs of
    any size are compared and a wrong one is stopped at its first differing line."""
    for given, expected in cases:
        result = run(program, stdin=given, limits=limits, expected_stdout=expected)
        if not (result.ok and result.stdout_matches):
            return False
    return True


def passes_call(
    solution: str, func_name: str, cases: Sequence[tuple[list, object]], limits: Limits = DEFAULT_LIMITS
) -> bool:
    """LeetCode-style check: call ``Solution().func_name(*args)`` (or the top-level function
    ``func_name`` when there is no such class) for every ``(args, expected)`` case and compare
    the return value with ``expected`` (tuples equal lists). All cases run in one execution, so
    ``limits.wall_s`` covers them together. Arguments and results must be JSON values; the
    expected values stay in the tests' process (:func:`passes_asserts`)."""
    return run_tests(
        {
            "solution": "from typing import *\n" + solution,
            "module": "solution",
            "context": "",
            "tests": programs.call_cases(),
            "candidates": {"solution_call": "Solution." + func_name},
            "data": [[list(args), expected] for args, expected in cases],
        },
        limits,
    ).ok


def run_tests(payload: dict, limits: Limits) -> Execution:
    """The two-process harness. T, trusted, runs inline in the sandbox's helper interpreter
    (after the same limits and privilege drop as any program); S is a fresh interpreter
    without ``site`` (which costs more than the rest of its start) that imports from the
    interpreter's own module path."""
    payload["path"] = module_path(sys.executable)
    limits = dataclasses.replace(limits, processes=limits.processes + 1)  # T is not the solution's
    return Run(programs.harness(), json.dumps(payload), limits, False, inline=True).execute()
