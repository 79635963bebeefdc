"""Strategies (Base / MV / RT / CoT), voting over equivalent answers, pass@k / maj@k, and grading of
a whole run: reasoning split off, truncated reasoning incorrect, vote classes stored."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import time
from math import comb

import pandas as pd
import pytest

from ttclib import aggregators, answers, benchmarks, metrics, strategies
from ttclib.runner import execute
from ttclib.serving import Completion
from ttclib.spec import RunSpec


def test_strategy_prompts():
    p = benchmarks.get("arithmetic").load(per_level=1)[0]
    cot = strategies.get("cot")
    text = cot.messages(p, "Give the final answer as a number.", budget=256)[0]["content"]
    assert text.startswith("What is") and "step by step, using at most 256 tokens" in text
    assert cot.base_prompt(p, budget=64).startswith("Question: What is") and cot.base_prompt(p).endswith("Answer:")
    mv = strategies.get("mv")
    assert mv.samples == 5 and mv.temperature > 0 and mv.with_overrides(samples=3, top_p=0.8).top_p == 0.8
    rt = strategies.get("rt")
    assert rt.reasoning and rt.samples == 1 and "reason step by step" in rt.messages(p)[0]["content"]
    assert not strategies.get("base").reasoning and strategies.get("base").temperature == 0
    with pytest.raises(ValueError, match="unknown strategy 'tot'"):
        strategies.get("tot")


def test_vote_over_equivalent_answers_and_tie_break():
    vote = aggregators.vote
    assert vote(["1", "2", "2"]) == "2"
    assert vote(["3", "1", "1", "3"]) == "3"  # tie: the class seen first wins
    assert vote([None, None, "4"]) == "4" and vote([None]) is None
    same = answers.math_equivalent
    assert aggregators.answer_classes(["\\frac{1}{2}", "3", "0.5", None, "1/2"], same) == [0, 1, 0, None, 0]
    assert vote(["3", "0.5", "\\frac12", "3", "1/2"], same) == "0.5"  # 3 equivalent beat 2 equal


def test_strategies_name_registered_aggregators():
    assert {s.aggregator for s in strategies.STRATEGIES.values()} <= set(aggregators.AGGREGATORS)
    assert strategies.get("mv").aggregator == "majority" and strategies.get("base").aggregator == "first"
    first = aggregators.get("first")
    assert first(aggregators.Samples.of(["2", "3", "3"])).index == 0  # not the majority
    with pytest.raises(ValueError, match="unknown aggregator 'best-of-n'"):
        strategies.Strategy("x", "", aggregator="best-of-n")


def _brute_maj(classes, right, k):
    total = 0.0
    for sub in itertools.combinations(range(len(classes)), k):
        votes = [classes[i] for i in sub if classes[i] is not None]
        if not votes:
            continue
        counts = {c: votes.count(c) for c in set(votes)}
        top = [c for c, n in counts.items() if n == max(counts.values())]
        total += sum(c in right for c in top) / len(top)
    return total / comb(len(classes), k)


def test_maj_at_k_matches_enumeration_and_pass_at_k_is_unbiased():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 9)
        k = rng.randint(1, n)
        classes = [rng.choice([None, 0, 1, 2, 3]) for _ in range(n)]
        right = {c for c in set(classes) - {None} if rng.random() < 0.4}
        assert metrics.maj_at_k(classes, right, k) == pytest.approx(_brute_maj(classes, right, k))
    for n, c, k in [(10, 3, 1), (10, 3, 5), (7, 0, 2), (5, 5, 5)]:
        brute = sum(any(i < c for i in sub) for sub in itertools.combinations(range(n), k)) / comb(n, k)
        assert metrics.pass_at_k(n, c, k) == pytest.approx(brute)
    with pytest.raises(ValueError, match="at least 5 samples"):
        metrics.pass_at_k(3, 1, 5)


class ScriptedBackend:
    """Replies with fixed texts, as a reasoning model would: no reasoning model runs on this machine
    (no model hub), and the grading path — not generation — is what these tests check."""

    name, chat, log_path, device, external = "scripted", False, None, "cpu", None

    def __init__(self, replies: dict[str, list[str]]):
        self.replies, self.batch_size = replies, 4
        self.tokenizer = type("WordTokenizer", (), {"encode": lambda self, t, add_special_tokens=False: t.split()})()

    def stream(self, requests):
        for r in requests:
            rep, qid, sample = r.id.split("|") if "|" in r.id else (0, r.id, 0)
            texts = self.replies.get(qid, ["?"])
            now = time.time()
            yield Completion(r.id, 0, texts[int(sample) % len(texts)], 10, 20, "stop", now, now + 0.001)

    def generate(self, requests):
        return list(self.stream(requests))

    def describe(self):
        return {"backend": self.name}

    def close(self):
        pass


def _scripted(strategy: str, **spec) -> tuple[RunSpec, list[benchmarks.Problem]]:
    """A run of three easy arithmetic problems (scripted replies, estimate meter) and its problems."""
    problems = benchmarks.get("arithmetic").load(levels=["easy"], per_level=3, seed=0)
    kw = dict(model="random:tiny-qwen2", benchmark="arithmetic", levels=["easy"], per_level=3, idle_s=0)
    return RunSpec(strategy=strategy, warmup=False, meter="estimate", **kw, **spec), problems


def _run(tmp_path, strategy: str, replies_for, **spec):
    spec, problems = _scripted(strategy, **spec)
    backend = ScriptedBackend({p.id: replies_for(p) for p in problems})
    d = execute(spec, tmp_path, progress=False, backend=backend)
    return pd.read_parquet(d / "queries.parquet"), json.loads((d / "run.json").read_text()), problems


def test_rt_run_splits_reasoning_counts_it_and_fails_truncated(tmp_path):
    def replies(p):
        if p.id.endswith("/0"):  # reasoning never closed: cut off before the answer
            return [f"Let me add. {p.question} is {p.answer}, so the answer is {p.answer}"]
        return [f"Add the digits one by one.\n</think>\n\nThe answer is \\boxed{{{p.answer}}}."]

    q, info, _ = _run(tmp_path, "rt", replies)
    q = q.set_index("query_id")
    cut = q.loc["arithmetic/easy/0"]
    assert bool(cut.truncated) and not bool(cut.correct) and pd.isna(cut.answer)
    ok = q.drop("arithmetic/easy/0")
    assert not ok.truncated.any() and ok.correct.all()
    assert (ok.reasoning_tokens == len("Add the digits one by one.".split())).all()
    assert cut.reasoning_tokens > 0
    res = metrics.query_results(q.reset_index())
    assert res.truncated.sum() == 1 and res.correct.sum() == 2
    assert info["benchmark"]["data"] == {"kind": "generated", "where": "arithmetic"}


def test_mv_run_votes_over_equivalent_answers(tmp_path):
    def replies(p):
        a = int(p.answer)
        # two equal-valued spellings of the gold answer vs a repeated wrong one
        return [f"\\boxed{{{a + 1}}}", f"\\boxed{{{a}}}", f"\\boxed{{{a}.0}}", f"\\boxed{{{a + 1}}}", f"\\boxed{{{a}}}"]

    q, _, _ = _run(tmp_path, "mv", replies)
    assert q.groupby("query_id").size().eq(5).all()
    first = q[q.query_id == "arithmetic/easy/0"].sort_values("sample")
    assert first.answer_class.tolist() == [0, 1, 1, 0, 1]  # "7" and "7.0" are one class
    res = metrics.query_results(q)
    assert res.correct.all() and (res.samples == 5).all()
    k = metrics.sample_metrics(q, 5)
    assert (k["pass@5"] == 1.0).all() and (k["maj@5"] == 1.0).all() and (k.c == 3).all()
    k1 = metrics.sample_metrics(q, 1)
    assert k1["maj@1"].tolist() == pytest.approx([0.6] * 3) and k1["pass@1"].tolist() == pytest.approx([0.6] * 3)


@pytest.fixture
def last_answer(monkeypatch):
    """A toy aggregator registered the way the README says: one function, one registry entry; and a
    strategy that names it."""
    monkeypatch.setattr(aggregators, "AGGREGATORS", dict(aggregators.AGGREGATORS))
    monkeypatch.setattr(strategies, "STRATEGIES", dict(strategies.STRATEGIES))

    @aggregators.register("last", "the last sample that answered")
    def last(s: aggregators.Samples) -> aggregators.Choice:
        answered = [i for i, a in enumerate(s.answers) if a is not None]
        return aggregators.Choice(
            aggregators.answer_classes(s.answers, s.equivalent), answered[-1] if answered else None
        )

    strategies.STRATEGIES["mv-last"] = dataclasses.replace(strategies.get("mv"), name="mv-last", aggregator="last")


def test_a_new_aggregator_decides_the_answer_of_a_run(tmp_path, last_answer):
    def replies(p):  # the majority is right; the last sample that answers is wrong
        a = int(p.answer)
        return [f"\\boxed{{{a}}}", f"\\boxed{{{a}}}", f"\\boxed{{{a}}}", f"\\boxed{{{a + 1}}}", "no idea"]

    q, info, _ = _run(tmp_path / "last", "mv-last", replies)
    assert info["strategy"]["aggregator"] == "last"
    assert q[q.chosen]["sample"].tolist() == [3, 3, 3]  # sample 4 gave no answer
    res = metrics.query_results(q)
    assert not res.correct.any() and (res.sample_accuracy == 0.6).all()
    voted = metrics.query_results(q.drop(columns="chosen"))  # a run graded before `chosen`: majority
    assert voted.correct.all()
    mv, _, _ = _run(tmp_path / "mv", "mv", replies)
    assert mv[mv.chosen]["sample"].tolist() == [0, 0, 0] and metrics.query_results(mv).correct.all()


class CheckingBackend(ScriptedBackend):
    """Scripted samples; a follow-up "Check: is X right?" is answered yes exactly when X is the gold
    answer, after a few milliseconds of work (so the energy windows see it)."""

    def __init__(self, replies, gold):
        super().__init__(replies)
        self.gold, self.asked, self.sampled = gold, [], 0

    def stream(self, requests):
        checks = [r for r in requests if r.prompt.startswith("Check:")]
        samples = [r for r in requests if not r.prompt.startswith("Check:")]
        self.sampled += len(samples)
        yield from super().stream(samples)
        for r in checks:
            self.asked.append(r.id)
            qid, answer = r.id.split("|")[1], r.prompt.removeprefix("Check: is ").removesuffix(" right?")
            start = time.time()
            while time.time() - start < 0.005:
                pass
            text = "yes" if answer == self.gold[qid] else "no"
            yield Completion(r.id, 0, text, 10, 1, "stop", start, time.time())


@pytest.fixture
def self_check(monkeypatch):
    """An aggregator that asks the model about each distinct answer, and a strategy that names it."""
    monkeypatch.setattr(aggregators, "AGGREGATORS", dict(aggregators.AGGREGATORS))
    monkeypatch.setattr(strategies, "STRATEGIES", dict(strategies.STRATEGIES))

    def distinct(s: aggregators.Samples) -> list[str]:
        return list(dict.fromkeys(a for a in s.answers if a is not None))

    def ask(s: aggregators.Samples) -> list[str]:
        return [f"Check: is {a} right?" for a in distinct(s)]

    @aggregators.register("self-check", "the first answer the model confirms", follow_ups=ask)
    def self_check(s: aggregators.Samples) -> aggregators.Choice:
        for answer, reply in zip(distinct(s), s.follow_ups, strict=True):
            if reply.strip() == "yes":
                return aggregators.Choice(aggregators.answer_classes(s.answers, s.equivalent), s.answers.index(answer))
        return aggregators.majority(s)

    strategies.STRATEGIES["mv-check"] = dataclasses.replace(
        strategies.get("mv"), name="mv-check", aggregator="self-check"
    )


def _checked_run(tmp_path, backend_type=None):
    """A scripted MV run whose majority is wrong (3 of 5) and whose checks confirm the right answer."""
    spec, problems = _scripted("mv-check")
    wrong_majority = {p.id: [f"\\boxed{{{int(p.answer) + 1}}}"] * 3 + [f"\\boxed{{{p.answer}}}"] * 2 for p in problems}
    backend = (backend_type or CheckingBackend)(wrong_majority, {p.id: str(p.answer) for p in problems})
    return backend, lambda: pd.read_parquet(
        execute(spec, tmp_path, progress=False, backend=backend) / "queries.parquet"
    )


def test_an_aggregator_that_asks_the_model_is_measured_with_the_query(tmp_path, self_check):
    backend, run = _checked_run(tmp_path)
    q = run()

    assert len(backend.asked) == 6  # two distinct answers per query, each checked once
    asked = q[q.follow_up]
    assert sorted(asked["sample"].unique()) == [5, 6] and asked.answer.isna().all() and not asked.chosen.any()
    assert asked.correct.isna().all() and (asked.energy_j > 0).all()  # measured in the run's window
    assert q[q.chosen]["sample"].tolist() == [3, 3, 3]  # the confirmed answer, not the majority
    res = metrics.query_results(q)
    assert res.correct.all() and (res.samples == 5).all() and (res.sample_accuracy == 0.4).all()
    assert (res.completion_tokens == 5 * 20 + 2 * 1).all()
    per_query = q.groupby("query_id").energy_j.sum()
    assert res.set_index("query_id").energy_j.to_dict() == pytest.approx(per_query.to_dict())
    assert (metrics.sample_metrics(q, 5).n == 5).all()
    assert not metrics.query_results(q.drop(columns="chosen")).correct.any()  # the majority alone is wrong


class FailingChecks(CheckingBackend):
    def stream(self, requests):
        for c in super().stream(requests):
            if len(self.asked) == 3:
                raise RuntimeError("server died")
            yield c


def test_a_run_that_dies_in_the_follow_ups_resumes_them_without_the_samples(tmp_path, self_check):
    dying, run = _checked_run(tmp_path, FailingChecks)
    with pytest.raises(RuntimeError, match="server died"):
        run()
    assert dying.asked[:2] == ["0|arithmetic/easy/0|5", "0|arithmetic/easy/0|6"]  # query 0's checks: a whole group
    backend, run = _checked_run(tmp_path)
    q = run()
    assert dying.sampled == 15 and backend.sampled == 0  # the samples are not generated again
    assert len(backend.asked) == 4 and all(r.endswith(("|5", "|6")) for r in backend.asked)
    assert q.groupby(["query_id", "sample"]).size().eq(1).all() and q.follow_up.sum() == 6
    assert q[q.chosen]["sample"].tolist() == [3, 3, 3]
