"""Scorers and question formats shared by several benchmarks (answer × problem → Score)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence

from .. import answers
from . import Benchmark, Problem, Score, exact

LETTERS = "ABCDEFGHIJ"
CHOICE_FORMAT = "Answer with the letter of the correct option, as 'The answer is (X)'."
BOXED_FORMAT = "Put your final answer within \\boxed{}."


def score_math(answer: str | None, problem: Problem) -> Score:
    """Equivalence by math-verify (``\\frac{1}{2}`` = ``0.5``), not string match."""
    return exact(answers.math_equal(answer, problem.answer))


def score_integer(answer: str | None, problem: Problem) -> Score:
    return exact(answers.integer_equal(answer, problem.answer))


def score_choice(answer: str | None, problem: Problem) -> Score:
    return exact(answer is not None and answer.upper() == problem.answer)


def score_exact_text(answer: str | None, problem: Problem) -> Score:
    return exact(answer is not None and answers.normalize_text(answer) == answers.normalize_text(problem.answer))


def choice_question(question: str, options: Sequence[str]) -> str:
    """The question followed by lettered options, one per line."""
    lines = [question.strip(), ""] + [f"{LETTERS[i]}) {str(o).strip()}" for i, o in enumerate(options)]
    return "\n".join(lines)


def shuffled_options(correct: str, wrong: Sequence[str], key: str) -> tuple[list[str], str]:
    """Options in an order fixed by ``key`` (the record id) and the letter of the correct one."""
    options = [correct, *wrong]
    order = list(range(len(options)))
    random.Random(key).shuffle(order)
    shuffled = [options[i] for i in order]
    return shuffled, LETTERS[order.index(0)]


def extract_choice_for(letters: str):
    def extract(text: str) -> str | None:
        return answers.extract_choice(text, letters)

    extract.__name__ = f"extract_choice_{letters}"
    return extract


# --- a benchmark's verdict on a hand-labelled answer -------------------------------------------

LABELLED_BENCHMARKS = {
    "math": "math500",
    "gsm8k": "gsm8k",
    "aime": "aime24",
    "yes_no": "boolq",
    "choice": "mmlu",
    "code": None,
}


def labelled_problem(record: Mapping) -> tuple[Benchmark, Problem]:
    """The benchmark and problem a record of a labelled answer corpus (``tests/data/labelled_answers.jsonl``)
    is graded as: ``scorer`` names the benchmark (multiple choice takes its ``letters``, code its
    ``benchmark``), ``gold`` is the gold answer (code: the reference solution), code records carry
    their ``tests`` (and HumanEval's ``prompt`` and ``entry_point``, LiveCodeBench's method name).
    A code record without a ``benchmark`` is graded MBPP-style (its ``tests`` are asserts); one
    without a reference (``gold`` null, ``tests/data/labelled_answers_heldout.jsonl``) names the
    function the asserts call in ``entry_point``."""
    from . import get

    scorer = record["scorer"]
    if scorer == "choice":
        bench = dataclasses.replace(get("mmlu"), extract=extract_choice_for(record["letters"]))
    else:
        bench = get(LABELLED_BENCHMARKS[scorer] or record.get("benchmark", "mbpp"))
    meta: dict = {}
    if bench.name == "humaneval":
        meta = {"prompt": record["prompt"], "test": record["tests"], "entry_point": record["entry_point"]}
    elif bench.name == "mbpp":  # the entry point is found the benchmark's way: reference ∩ asserts
        meta = {"tests": list(record["tests"]), "setup": "", "imports": []}
        if record["gold"] is None:  # no reference to find it in
            meta["entry_point"] = record["entry_point"]
    elif bench.name == "livecodebench":
        meta = {"cases": [tuple(c) for c in record["tests"]], "func_name": record.get("entry_point")}
    gold = "" if record["gold"] is None else record["gold"]
    return bench, Problem(record["id"], "", gold, bench.name, bench.category, meta=meta)


def grade_labelled(record: Mapping) -> tuple[str | None, bool]:
    """The answer a benchmark extracts from a labelled record's text and whether it credits it,
    graded the way a run grades (``ttclib.runner``): reasoning split off first, cut-off
    reasoning is no answer."""
    reasoned = answers.split_reasoning(record["text"])
    if reasoned.truncated:
        return None, False
    bench, problem = labelled_problem(record)
    answer = bench.extract_answer(reasoned.answer_text, problem)
    return answer, bool(bench.score(answer, problem).correct)
