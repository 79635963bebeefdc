"""Test-time-compute strategies as data: how to prompt, how many samples, how to aggregate.

- ``base``: one greedy answer, asked for directly (no TTC).
- ``mv``: majority vote (MV) over ``samples`` independent sampled answers (default 5, temperature
  0.7, top-p 0.95). Each sample is its own request and repeats its prefill, as the paper does (no
  shared-prefix reuse); the vote is over *equivalent* answers (math-verify classes for math).
- ``rt``: reasoning tokens (RT): a reasoning model (e.g. DeepSeek-R1-Distill-Qwen) with its own
  chat template thinks inside ``<think>…</think>``; those tokens are counted as reasoning tokens and
  the answer is taken after ``</think>``. A generation that stops before ``</think>`` is truncated:
  incorrect, and flagged. Sampling at temperature 0.6, top-p 0.95, the model authors' setting
  (greedy decoding makes these models repeat themselves).
- ``cot``: chain-of-thought prompting (paper 001): think step by step within a token budget, the
  run's ``max_new_tokens``.

A run spec names its strategy; ``samples``, ``temperature`` and ``top_p`` may be overridden there.

>>> from ttclib.strategies import get, vote
>>> get("mv").samples
5
>>> vote(["7", "8", "7", None])
'7'
>>> vote(["1/2", "0.5", "3"], equivalent=lambda a, b: eval(a) == eval(b))   # classes, not strings
'1/2'
"""
from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from .benchmarks import Problem

DIRECT = "Answer with the final answer only."
STEP_BY_STEP = "Think step by step, using at most {budget} tokens, then give the final answer."
REASON = "Please reason step by step."


@dataclass(frozen=True)
class Strategy:
    name: str
    instruction: str                  # appended to the question and the benchmark's answer format
    samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    reasoning: bool = False           # the model thinks in <think>…</think>; answer after it
    description: str = ""
    # Base models (no chat template) run on past their answer unless stopped: a direct answer
    # ends at the line break, a reasoning one where the model invents the next question.
    base_stop: tuple[str, ...] = ("\n",)

    def instruction_for(self, budget: int | None = None) -> str:
        return self.instruction.format(budget=budget if budget is not None else "a few hundred")

    def messages(self, problem: Problem, answer_format: str = "", budget: int | None = None) -> list[dict]:
        text = "\n\n".join(s for s in (problem.question, " ".join(
            s for s in (answer_format, self.instruction_for(budget)) if s)) if s)
        return [{"role": "user", "content": text}]

    def base_prompt(self, problem: Problem, answer_format: str = "", budget: int | None = None) -> str:
        """Plain-text prompt for models without a chat template (base models)."""
        parts = [f"Question: {problem.question}"] + [s for s in (answer_format, self.instruction_for(budget)) if s]
        return "\n".join(parts) + "\nAnswer:"

    def with_overrides(self, samples: int | None = None, temperature: float | None = None,
                       top_p: float | None = None) -> "Strategy":
        return replace(self, samples=self.samples if samples is None else samples,
                       temperature=self.temperature if temperature is None else temperature,
                       top_p=self.top_p if top_p is None else top_p)


STRATEGIES: dict[str, Strategy] = {
    "base": Strategy("base", DIRECT, description="one greedy answer"),
    "mv": Strategy("mv", DIRECT, samples=5, temperature=0.7, top_p=0.95,
                   description="majority vote over 5 sampled answers, prefill repeated per sample"),
    "rt": Strategy("rt", REASON, temperature=0.6, top_p=0.95, reasoning=True, base_stop=("\nQuestion:",),
                   description="reasoning model: thinks in <think>…</think>, answer after it"),
    "cot": Strategy("cot", STEP_BY_STEP, base_stop=("\nQuestion:",),
                    description="chain-of-thought prompt within a token budget (max_new_tokens), greedy"),
}


def get(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(STRATEGIES)}") from None


Equivalence = Callable[[str, str], bool]


def answer_classes(answers: Sequence[str | None], equivalent: Equivalence = operator.eq) -> list[int | None]:
    """Class index of each answer: equal to the first earlier answer it is equivalent to.

    Classes are numbered in order of first appearance; a missing answer (None) has no class.
    """
    reps: list[str] = []
    classes: list[int | None] = []
    for a in answers:
        if a is None:
            classes.append(None)
            continue
        k = next((j for j, r in enumerate(reps) if a == r or equivalent(a, r)), None)
        if k is None:
            reps.append(a)
            k = len(reps) - 1
        classes.append(k)
    return classes


def winning_class(classes: Sequence[int | None]) -> int | None:
    """The most frequent class; a tie goes to the class seen first in sample order."""
    counts = Counter(c for c in classes if c is not None)
    if not counts:
        return None
    best = max(counts.values())
    return min(c for c, n in counts.items() if n == best)


def vote(answers: Sequence[str | None], equivalent: Equivalence = operator.eq) -> str | None:
    """Majority over equivalent answers; returns the first-seen member of the winning class."""
    classes = answer_classes(answers, equivalent)
    win = winning_class(classes)
    return None if win is None else answers[classes.index(win)]
