"""Test-time-compute strategies as data: how to prompt, how many samples, how to aggregate.

- ``base``: one greedy answer, asked for directly.
- ``cot``: chain-of-thought prompting (paper 001): think step by step within a token budget.
- ``mv``: majority vote over ``samples`` independent sampled answers; each sample repeats its
  prefill, as the paper does (no shared-prefix reuse).

A run names its strategy; samples/temperature may be overridden by the run spec.

>>> from ttclib.strategies import get, vote
>>> get("mv").samples
5
>>> vote(["7", "8", "7", None])
'7'
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from .benchmarks import Problem

DIRECT = "Answer with the final answer only."
STEP_BY_STEP = "Think step by step, then finish with 'The answer is N.'"


@dataclass(frozen=True)
class Strategy:
    name: str
    instruction: str
    samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    description: str = ""

    def messages(self, problem: Problem, answer_format: str = "") -> list[dict]:
        text = " ".join(s for s in (problem.question, answer_format, self.instruction) if s)
        return [{"role": "user", "content": text}]

    def base_prompt(self, problem: Problem, answer_format: str = "") -> str:
        """Plain-text prompt for models without a chat template (base models)."""
        parts = [f"Question: {problem.question}"] + [s for s in (answer_format, self.instruction) if s]
        return "\n".join(parts) + "\nAnswer:"

    # Base models (no chat template) run on past their answer unless stopped: a direct answer
    # ends at the line break, a reasoning one where the model invents the next question.
    base_stop: tuple[str, ...] = ("\n",)

    def with_overrides(self, samples: int | None = None, temperature: float | None = None) -> "Strategy":
        return replace(self, samples=self.samples if samples is None else samples,
                       temperature=self.temperature if temperature is None else temperature)


STRATEGIES: dict[str, Strategy] = {
    "base": Strategy("base", DIRECT, description="one greedy answer"),
    "cot": Strategy("cot", STEP_BY_STEP, base_stop=("\nQuestion:",), description="chain-of-thought prompt, greedy"),
    "mv": Strategy("mv", DIRECT, samples=5, temperature=0.7, top_p=0.95,
                   description="majority vote over 5 sampled answers, prefill repeated per sample"),
}


def get(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(STRATEGIES)}") from None


def vote(answers: list[str | None]) -> str | None:
    """Most frequent answer; ties go to the answer seen first (sample order), None never wins."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)
