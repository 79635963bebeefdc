"""How a strategy turns the samples of one query into the query's answer (extract → **aggregate** → score).

An aggregator is a function of one query's :class:`Samples` — the extracted answers in sample order
(None: no answer), the texts, the problem and the benchmark's equivalence — that returns a
:class:`Choice`: each sample's answer class and the sample whose answer is the query's. It is
registered under a name that a :class:`~ttclib.strategies.Strategy` gives in its ``aggregator``
field; the runner calls it when it grades a run and stores the classes (``answer_class``) and the
chosen sample (``chosen``) in ``queries.parquet``; :func:`ttclib.metrics.query_results` only reads
them.

>>> majority = get("majority")
>>> majority(Samples.of(["7", "8", "7", None])).index          # the first sample of the largest class
0
>>> majority(Samples.of(["1/2", "0.5", "3"], equivalent=lambda a, b: eval(a) == eval(b))).classes
[0, 0, 1]
>>> get("first")(Samples.of([None, "4"])).index is None          # the first sample did not answer
True

Adding one is one function and one registration (the name then goes in a strategy)::

    @register("last", "the last sample that answered")
    def last(s: Samples) -> Choice:
        answered = [i for i, a in enumerate(s.answers) if a is not None]
        return Choice(answer_classes(s.answers, s.equivalent), answered[-1] if answered else None)

``first`` and ``majority`` cost no energy: they run after measuring, with the grading. One that asks
the model again — self-verification, a judge over the samples — costs energy, which belongs to the
query: it gives ``follow_ups``, a function of the :class:`Samples` (their answers and texts) returning
the prompts it asks. The runner generates them inside the run's energy window, after the samples
(:meth:`ttclib.runner._Execution._measure_and_finish`), stores each as a row of ``queries.parquet``
marked ``follow_up`` (so its energy and tokens add to the query's in
:func:`ttclib.metrics.query_results`, and it is never a sample), and hands their texts to ``choose``
as :attr:`Samples.follow_ups`. A reward model other than the run's model is not served: best-of-N
with one would need its own backend in the run.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

Equivalence = Callable[[str, str], bool]


@dataclass(frozen=True)
class Samples:
    """One query's samples, in sample order."""

    answers: Sequence[str | None]  # extracted answers; None: the sample gave none (or was cut off)
    equivalent: Equivalence = operator.eq  # when two answers are the same answer (the benchmark's)
    texts: Sequence[str] = ()  # the generated texts
    problem: Any = None  # the :class:`ttclib.benchmarks.Problem`
    follow_ups: Sequence[str] = ()  # the model's replies to the aggregator's follow-up prompts, in order

    @classmethod
    def of(cls, answers: Sequence[str | None], equivalent: Equivalence = operator.eq) -> Samples:
        return cls(list(answers), equivalent)


@dataclass(frozen=True)
class Choice:
    """What an aggregator decided for one query."""

    classes: list[int | None]  # each sample's answer class (numbered by first appearance); None: no answer
    index: int | None  # the sample whose answer is the query's; None: the query has no answer


@dataclass(frozen=True)
class Aggregator:
    name: str
    choose: Callable[[Samples], Choice] = field(repr=False)
    description: str = ""
    # The prompts it asks the run's model about one query's samples (None: it asks nothing)
    follow_ups: Callable[[Samples], list[str]] | None = field(default=None, repr=False)

    @property
    def costs_energy(self) -> bool:
        """It asks the model: its generations are measured inside the run's energy window."""
        return self.follow_ups is not None

    def __call__(self, samples: Samples) -> Choice:
        return self.choose(samples)


AGGREGATORS: dict[str, Aggregator] = {}


def register(
    name: str, description: str = "", *, follow_ups: Callable[[Samples], list[str]] | None = None
) -> Callable[[Callable[[Samples], Choice]], Callable[[Samples], Choice]]:
    """Register the decorated function as the aggregator ``name`` (``follow_ups``: the prompts it asks
    the model, whose replies it reads in :attr:`Samples.follow_ups`)."""

    def add(choose: Callable[[Samples], Choice]) -> Callable[[Samples], Choice]:
        AGGREGATORS[name] = Aggregator(name, choose, description, follow_ups)
        return choose

    return add


def get(name: str) -> Aggregator:
    try:
        return AGGREGATORS[name]
    except KeyError:
        raise ValueError(f"unknown aggregator {name!r}; available: {', '.join(AGGREGATORS)}") from None


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
    """Majority over equivalent answers; returns the first-seen member of the winning class.

    >>> vote(["3", "1", "1", "3"])          # a tie goes to the class seen first
    '3'
    """
    choice = majority(Samples.of(answers, equivalent))
    return None if choice.index is None else answers[choice.index]


@register("majority", "majority vote over equivalent answers; a tie goes to the class seen first")
def majority(s: Samples) -> Choice:
    classes = answer_classes(s.answers, s.equivalent)
    win = winning_class(classes)
    return Choice(classes, None if win is None else classes.index(win))


@register("first", "the first sample's answer (one sample: that sample)")
def first(s: Samples) -> Choice:
    classes = answer_classes(s.answers, s.equivalent)
    return Choice(classes, 0 if classes and classes[0] is not None else None)


def majority_rows(queries: pd.DataFrame, group: np.ndarray) -> np.ndarray:
    """Which rows :func:`majority` chooses, for all queries at once (``group``: each row's query, rows in
    sample order within a query): the first sample of each query's most frequent class, a tie to the
    class seen first. For runs graded before the ``chosen`` column existed, when every strategy voted;
    their classes are ``answer_class``, or exact strings for runs graded before classes existed."""
    cls = _class_keys(queries, group)
    has = ~np.isnan(cls)
    counts = pd.DataFrame({"g": group[has], "c": cls[has]}).groupby(["g", "c"]).size().reset_index(name="k")
    top = counts[counts.k == counts.groupby("g").k.transform("max")].drop_duplicates("g")  # sorted: smaller class
    win = np.full(int(group.max()) + 1 if len(group) else 0, np.nan)
    win[top.g.to_numpy()] = top.c.to_numpy()
    rows = np.flatnonzero(has & (cls == win[group]))
    _, at = np.unique(group[rows], return_index=True)
    chosen = np.zeros(len(queries), dtype=bool)
    chosen[rows[at]] = True
    return chosen


def _class_keys(q: pd.DataFrame, group: np.ndarray) -> np.ndarray:
    """Each row's class (NaN: no answer) as graded, or for runs graded before classes existed, exact
    strings keyed by the row of their first appearance in the query (the order :func:`answer_classes`
    numbers)."""
    if "answer_class" in q.columns:
        return np.trunc(pd.to_numeric(q.answer_class).astype("Float64").to_numpy(float, na_value=np.nan))
    given = np.array([isinstance(a, str) for a in q.answer.to_numpy(object)], dtype=bool)
    seen = pd.DataFrame({"g": group[given], "a": q.answer.to_numpy(object)[given], "row": np.flatnonzero(given)})
    keys = np.full(len(q), np.nan)
    keys[given] = seen.groupby(["g", "a"], sort=False).row.transform("min").to_numpy(float)
    return keys
