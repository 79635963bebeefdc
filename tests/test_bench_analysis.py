"""scripts/bench_analysis.py on a tiny synthetic store: the builder writes what the loader reads, a
notebook runs on it in a child process and its table row parses, a missing run is named, and the
library's vectorised vote and streamed power summary agree with their definitions on synthetic runs."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ttclib
from ttclib import aggregators, load_params, metrics
from ttclib.params import ParamsError
from ttclib.runner import stored_runs

pytestmark = pytest.mark.heavy  # make test-fast leaves this module out

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_analysis", ROOT / "scripts" / "bench_analysis.py")
bench = sys.modules.setdefault("bench_analysis", importlib.util.module_from_spec(spec))
spec.loader.exec_module(bench)

QUERIES = 2000  # the smallest store: one problem per level


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> bench.Store:
    """The batch notebook's paper grid (36 runs of MATH-500 and LiveCodeBench), one problem per level."""
    return bench.build_store(tmp_path_factory.mktemp("store") / "runs", QUERIES, keys=["05"], progress=False)


def test_store_holds_the_plan_with_the_counted_records(store):
    plan = load_params(ROOT / "params" / "05_batch_throughput.yaml", "paper")
    assert store.per_level == 1 and store.runs == len(plan.specs) == 36
    # known answer: levels x per_level x samples x repetitions per run (MATH-500 has 5 levels, LCB 3)
    assert store.records == sum(len(bench.levels_of(s.benchmark)) * s.repetitions for s in plan.specs) == 1440
    data = metrics.load_runs(stored_runs(plan, store.path))
    assert len(data.queries) == store.records and "text" not in data.queries
    info = data.runs.set_index("run_id")
    assert (info.meter == "nvml").all() and (info.energy_j > 0).all() and data.queries.energy_j.gt(0).all()
    # per-query energy is the runner's attribution of the windows: it adds up to each run's energy
    per_run = data.queries.groupby("run_id").energy_j.sum()
    assert np.allclose(per_run[info.index], info.energy_j, rtol=1e-9)


def test_a_notebook_runs_on_the_store_and_its_row_parses(store, capsys):
    status = bench.main(["--queries", str(QUERIES), "--store", str(store.path), "--notebooks", "05"])
    lines = capsys.readouterr().out.splitlines()
    row = bench.parse_row(lines[lines.index(bench.HEADER) + 1])
    assert row["notebook"] == "05_batch_throughput" and row["runs"] == 36
    assert row["queries"] == store.records  # what the loader saw is what was written
    assert 0 < row["load_s"] < row["total_s"] and 0 < row["peak_gb"] < bench.TARGET_GB
    assert row["verdict"] == ("PASS" if status == 0 else "FAIL")
    assert store.path.is_dir()  # a store given with --store is kept


def test_a_store_missing_a_run_fails_naming_it(store, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(store.path, copy)
    plan = load_params(ROOT / "params" / "05_batch_throughput.yaml", "paper")
    gone = plan.specs[7].run_id
    shutil.rmtree(copy / gone)
    with pytest.raises(ParamsError, match=f"1 of 36 runs are not in .*{gone}"):
        ttclib.run_grid(str(ROOT / "params" / "05_batch_throughput.yaml"), "paper", runs_dir=str(copy))
    row = bench.run_notebook(bench.notebooks(["05"])[0], copy)
    assert not row.passed and "ParamsError" in row.error and gone in row.error


def _mv_queries(spellings: bool) -> pd.DataFrame:
    """A synthetic MV run (5 samples, wrong answers in 3 classes), a quarter of its samples unanswered;
    with ``spellings``, odd samples write their class's answer differently ("12" and "12.0")."""
    plan = load_params(ROOT / "params" / "paper.yaml", "default")
    mv = next(s for s in plan.specs if s.strategy == "mv" and s.benchmark == "gsm8k")
    q, _, _ = bench.build_run(mv, bench.problems("gsm8k", 4, 0), 0, bench.T0)
    lost = np.random.default_rng(0).random(len(q)) < 0.25
    answer = q.answer.where(~lost, None)
    if spellings:
        answer = answer.where(q["sample"] % 2 == 0, answer + ".0")
    q = q.drop(columns="chosen")  # graded before `chosen` existed: the vote is computed (aggregators.majority_rows)
    return q.assign(
        answer=answer, answer_class=q.answer_class.where(~lost, pd.NA), correct=q.correct.where(~lost, False)
    )


def _vote_by_definition(q: pd.DataFrame, with_classes: bool) -> pd.DataFrame:
    """The vote one query at a time, as the majority aggregator defines it."""
    rows = []
    for (rep, qid), g in q.sort_values(["repetition", "query_id", "sample"]).groupby(["repetition", "query_id"]):
        answers = [a if isinstance(a, str) else None for a in g.answer]
        classes = (
            [None if pd.isna(c) else int(c) for c in g.answer_class]
            if with_classes
            else aggregators.answer_classes(answers)
        )
        win = aggregators.winning_class(classes)
        first = None if win is None else classes.index(win)
        rows.append(
            {
                "repetition": rep,
                "query_id": qid,
                "answer": None if first is None else answers[first],
                "correct": False if first is None else bool(g.correct.iloc[first]),
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("with_classes", [True, False])
def test_vectorised_vote_is_the_majority_vote(with_classes):
    q = _mv_queries(spellings=with_classes)  # graded classes hold equivalent spellings
    assert q.groupby(["repetition", "query_id"]).size().eq(5).all() and q.answer.isna().any()
    got = metrics.query_results(q if with_classes else q.drop(columns="answer_class"))
    want = _vote_by_definition(q, with_classes)
    merged = got.merge(want, on=["repetition", "query_id"], suffixes=("", "_want"))
    assert len(merged) == len(want) == 4 * 3 * 10
    assert merged.answer.tolist() == merged.answer_want.tolist()
    assert merged.correct.astype(bool).tolist() == merged.correct_want.tolist()
    assert 0 < merged.correct.mean() < 1  # votes both won and lost


def test_power_summary_streamed_run_by_run_is_the_same_table(store):
    plan = load_params(ROOT / "params" / "05_batch_throughput.yaml", "paper")
    data = metrics.load_runs(stored_runs(plan, store.path))
    streamed = metrics.power_summary(data)
    assert "power" not in data.__dict__  # no trace was held for it
    pd.testing.assert_frame_equal(streamed, metrics.power_summary(data.power), check_exact=True)
    tp2 = data.power[data.power.run_id == plan.specs[0].run_id]
    assert set(tp2.device) == {"gpu0", "gpu1"}  # 32B runs: two GPUs summed per sample time
    assert streamed.samples.iloc[0] == tp2.t.nunique()
