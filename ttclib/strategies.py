"""Test-time-compute strategies as data: how to prompt, how many samples, and which aggregator
(:mod:`ttclib.aggregators`) turns the samples into the query's answer.

- ``base``: one greedy answer, asked for directly (no TTC).
- ``mv``: majority vote (MV) over ``samples`` independent sampled answers (default 5, temperature
  0.7, top-p 0.95). Each sample is its own request and repeats its prefill, as the paper does (no
  shared-prefix reuse); the ``majority`` aggregator votes over *equivalent* answers (math-verify
  classes for math).
- ``rt``: reasoning tokens (RT): a reasoning model (e.g. DeepSeek-R1-Distill-Qwen) with its own
  chat template thinks inside ``<think>…</think>``; those tokens are counted as reasoning tokens and
  the answer is taken after ``</think>``. A generation that stops before ``</think>`` is truncated:
  incorrect, and flagged. Sampling at temperature 0.6, top-p 0.95, the model authors' setting
  (greedy decoding makes these models repeat themselves).
- ``cot``: chain-of-thought prompting (Wilhelm et al. [001]): think step by step within a token budget, the
  run's ``max_new_tokens``.

A run spec names its strategy; ``samples``, ``temperature`` and ``top_p`` may be overridden there.
Adding a strategy is one entry in :data:`STRATEGIES` (its name is then valid in params files).

>>> from ttclib.strategies import get
>>> get("mv").samples, get("mv").aggregator, get("base").aggregator
(5, 'majority', 'first')
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import aggregators
from .benchmarks import Problem

DIRECT = "Answer with the final answer only."
STEP_BY_STEP = "Think step by step, using at most {budget} tokens, then give the final answer."
REASON = "Please reason step by step."


@dataclass(frozen=True)
class Strategy:
    name: str
    instruction: str  # appended to the question and the benchmark's answer format
    samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    reasoning: bool = False  # the model thinks in <think>…</think>; answer after it
    description: str = ""
    # Base models (no chat template) run on past their answer unless stopped: a direct answer
    # ends at the line break, a reasoning one where the model invents the next question.
    base_stop: tuple[str, ...] = ("\n",)
    aggregator: str = "first"  # a name in ttclib.aggregators.AGGREGATORS

    def __post_init__(self) -> None:
        aggregators.get(self.aggregator)  # an unknown name fails where the strategy is defined

    def instruction_for(self, budget: int | None = None) -> str:
        return self.instruction.format(budget=budget if budget is not None else "a few hundred")

    def messages(self, problem: Problem, answer_format: str = "", budget: int | None = None) -> list[dict]:
        text = "\n\n".join(
            s for s in (problem.question, " ".join(s for s in (answer_format, self.instruction_for(budget)) if s)) if s
        )
        return [{"role": "user", "content": text}]

    def base_prompt(self, problem: Problem, answer_format: str = "", budget: int | None = None) -> str:
        """Plain-text prompt for models without a chat template (base models)."""
        parts = [f"Question: {problem.question}"] + [s for s in (answer_format, self.instruction_for(budget)) if s]
        return "\n".join(parts) + "\nAnswer:"

    def with_overrides(
        self, samples: int | None = None, temperature: float | None = None, top_p: float | None = None
    ) -> Strategy:
        return replace(
            self,
            samples=self.samples if samples is None else samples,
            temperature=self.temperature if temperature is None else temperature,
            top_p=self.top_p if top_p is None else top_p,
        )


STRATEGIES: dict[str, Strategy] = {
    "base": Strategy("base", DIRECT, description="one greedy answer"),
    "mv": Strategy(
        "mv",
        DIRECT,
        samples=5,
        temperature=0.7,
        top_p=0.95,
        aggregator="majority",
        description="majority vote over 5 sampled answers, prefill repeated per sample",
    ),
    "rt": Strategy(
        "rt",
        REASON,
        temperature=0.6,
        top_p=0.95,
        reasoning=True,
        base_stop=("\nQuestion:",),
        description="reasoning model: thinks in <think>…</think>, answer after it",
    ),
    "cot": Strategy(
        "cot",
        STEP_BY_STEP,
        base_stop=("\nQuestion:",),
        description="chain-of-thought prompt within a token budget (max_new_tokens), greedy",
    ),
}


def get(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(STRATEGIES)}") from None
