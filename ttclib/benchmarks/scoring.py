"""Scorers and question formats shared by several benchmarks (answer × problem → Score)."""
from __future__ import annotations

import random
from typing import Sequence

from .. import answers
from . import Problem, Score, exact

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
