"""The run store under attack: kills inside a checkpoint, torn and deleted files, concurrent writers,
Ctrl-C and a full disk. Every resumed run must equal the uninterrupted one (same completions, same
sampled texts) and keep per-query energy summing to the run's energy."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from ttclib import cli, rundir, runner
from ttclib.params import load_params
from ttclib.rundir import KILL_POINTS, DamagedRun, run_dir
from ttclib.runner import RunHeld, execute, measure_plan, run_plan
from ttclib.spec import RunSpec

pytestmark = pytest.mark.heavy  # make test-fast leaves this module out

# Majority voting samples at temperature > 0, so a completion's text depends on its seed: a resume
# that drew other seeds (or formed other batches) would change texts.
MV = dict(
    model="random:tiny-qwen2",
    strategy="mv",
    samples=2,
    per_level=2,
    max_new_tokens=6,
    batch_size=4,
    repetitions=2,
    idle_s=0,
    warmup=False,
    sample_interval_s=0.05,
    ignore_eos=True,
    seed=11,
)
KEY = ["repetition", "query_id", "sample"]

# One `execute` in a fresh process, with the same random weights as the tests' `tiny_backend`.
CHILD = textwrap.dedent("""
    import json, sys
    from ttclib.runner import execute
    from ttclib.serving import TransformersBackend
    from ttclib.spec import RunSpec
    execute(RunSpec(**json.loads(sys.argv[1])), sys.argv[2], progress=False,
            backend=TransformersBackend("random:tiny-qwen2", batch_size=4))
""")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_backend):
    spec = RunSpec(**MV)
    d = execute(spec, tmp_path_factory.mktemp("whole"), progress=False, backend=tiny_backend)
    return spec, d, pd.read_parquet(d / "queries.parquet")


def _texts(q: pd.DataFrame) -> dict:
    return {tuple(k): t for k, t in zip(q[KEY].itertuples(index=False), q.text, strict=True)}


def assert_same_run(d: Path, reference: pd.DataFrame) -> pd.DataFrame:
    """``d`` holds every completion once, with the reference's texts, and its energy adds up."""
    q = pd.read_parquet(d / "queries.parquet")
    info = json.loads((d / "run.json").read_text())
    assert len(q) == len(reference) and not q.duplicated(KEY).any()
    assert _texts(q) == _texts(reference)
    assert q.energy_j.sum() == pytest.approx(info["energy_j"], rel=1e-9)
    assert info["energy_j"] == pytest.approx(sum(w["total_j"] for w in info["windows"]))
    assert [w["segment"] for w in info["windows"]] == list(range(len(info["windows"])))
    assert set(q.segment) == set(range(len(info["windows"])))
    assert rundir.damage(d) is None and not (d / "segments").exists()
    return q


def test_sampling_is_random_so_same_texts_mean_same_seeds(uninterrupted):
    _, _, q = uninterrupted
    per_query = q.groupby(["repetition", "query_id"]).text.nunique()
    assert (per_query == 2).mean() > 0.5  # two samples of a query differ ...
    by_rep = q.pivot_table(index=["query_id", "sample"], columns="repetition", values="text", aggfunc="first")
    assert (by_rep[0] != by_rep[1]).mean() > 0.5  # ... and so do repetitions


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> dict:
    """A process per kill point, killed there (all at once: each spends most of its time importing),
    each in its own runs dir: point -> (runs dir, exit status, stderr)."""
    procs = {}
    for point in KILL_POINTS:
        nth = "2" if point.startswith("segment") else "1"  # a segment kill with one segment already kept
        runs = tmp_path_factory.mktemp(point)
        procs[point] = (
            runs,
            subprocess.Popen(
                [sys.executable, "-c", CHILD, json.dumps(MV), str(runs)],
                text=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**os.environ, "TTC_KILL_AT": f"{point}:{nth}"},
            ),
        )
    return {point: (runs, p.wait(timeout=600), p.stderr.read()) for point, (runs, p) in procs.items()}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_at_every_point_of_a_checkpoint_resumes_to_the_uninterrupted_run(
    point, killed, uninterrupted, tiny_backend
):
    spec, _, reference = uninterrupted
    runs, code, err = killed[point]
    assert code == 137, err[-2000:]  # killed where asked
    final, partial = run_dir(spec, runs), rundir.partial_dir(spec, runs)
    assert final.exists() == (point == "seal-renamed") and partial.exists() == (point != "seal-renamed")
    if point.startswith("segment"):
        kept = [s for s in (partial / "segments").iterdir() if not s.name.endswith(".tmp")]
        assert len(kept) == (2 if point == "segment-renamed" else 1)
    d = execute(spec, runs, progress=False, backend=tiny_backend)
    assert_same_run(d, reference)
    assert not partial.exists()


@pytest.mark.parametrize("after", [0, 4, 9])
def test_resumed_majority_vote_equals_uninterrupted(after, tmp_path, uninterrupted, tiny_backend):
    """A crash at the 1st, 5th or 10th completion of the first repetition (whose seed groups hold 4
    or 2 samples, so after 0 nothing is whole and kept): the resumed run samples exactly the texts
    an uninterrupted one does."""
    from test_experiment import Crash, CrashingBackend

    spec, _, reference = uninterrupted
    with pytest.raises(Crash):
        execute(spec, tmp_path, progress=False, backend=CrashingBackend(tiny_backend, after=after))
    d = execute(spec, tmp_path, progress=False, backend=tiny_backend)
    q = assert_same_run(d, reference)
    assert json.loads((d / "run.json").read_text())["resumed"] is (after > 0)
    assert (q.groupby("segment").size() % 2 == 0).all()  # whole seed groups (4 and 2 queries) per segment


def _crash_with_segments(tmp_path, tiny_backend) -> tuple[RunSpec, Path]:
    """A run killed in its second repetition, with its first repetition's segments on disk."""
    from test_experiment import Crash, CrashingBackend

    class SecondRepetitionCrash(CrashingBackend):
        calls = 0

        def stream(self, requests):
            SecondRepetitionCrash.calls += 1
            return super().stream(requests) if self.calls == 2 else self.inner.stream(requests)

    spec = RunSpec(**{**MV, "batch_size": 2})
    with pytest.raises(Crash):
        execute(spec, tmp_path, progress=False, backend=SecondRepetitionCrash(tiny_backend, after=5))
    return spec, rundir.segments_dir(rundir.partial_dir(spec, tmp_path))


def test_torn_deleted_and_unfinished_segments_are_measured_again(tmp_path, tiny_backend, capfd):
    spec, segs = _crash_with_segments(tmp_path, tiny_backend)
    kept = sorted(segs.iterdir())
    assert len(kept) >= 5
    data = (kept[0] / "queries.parquet").read_bytes()
    (kept[0] / "queries.parquet").write_bytes(data[: len(data) // 2])  # torn
    (kept[1] / "power.parquet").write_bytes(b"")  # zero bytes
    window = (kept[2] / "window.json").read_text()
    at = window.index('"total_j": ') + len('"total_j": ')  # one digit changed: parses, same
    digit = "1" if window[at] != "1" else "2"  # size, not the energy written
    (kept[2] / "window.json").write_text(window[:at] + digit + window[at + 1 :])
    shutil.rmtree(kept[3])  # a deleted middle segment
    shutil.copytree(kept[4], segs / "9999999.tmp")  # an unfinished write
    whole = execute(spec, tmp_path / "whole", progress=False, backend=tiny_backend)
    capfd.readouterr()

    d = execute(spec, tmp_path, progress=False, backend=tiny_backend)
    err = capfd.readouterr().err.splitlines()
    assert len([e for e in err if "is damaged" in e]) == 3
    assert any(f"segment {kept[0].name} is damaged (queries.parquet:" in e for e in err)
    assert any(f"segment {kept[1].name} is damaged (power.parquet: 0 bytes" in e for e in err)
    assert any(f"segment {kept[2].name} is damaged (window.json: sha256 differs" in e for e in err)
    assert_same_run(d, pd.read_parquet(whole / "queries.parquet"))


def test_finish_refuses_a_run_with_missing_completions(tmp_path, tiny_backend):
    """If a segment vanishes between resume and sealing, the run is not sealed short of rows."""
    from ttclib.runner import _Execution

    spec, segs = _crash_with_segments(tmp_path, tiny_backend)
    ex = _Execution(spec, tmp_path, False, tiny_backend)
    ex._requests()
    shutil.rmtree(sorted(segs.iterdir())[0])
    with pytest.raises(RuntimeError, match=r"requests have no completion"):
        ex._segments_in_time_order()


def test_damaged_complete_run_is_measured_again(tmp_path, uninterrupted, tiny_backend, capfd):
    spec, whole, reference = uninterrupted
    d = run_dir(spec, tmp_path)
    shutil.copytree(whole, d)
    data = (d / "queries.parquet").read_bytes()
    (d / "queries.parquet").write_bytes(data[:-100])
    assert not rundir.is_complete(spec, tmp_path) and rundir.status(spec, tmp_path) == "damaged"
    with pytest.raises(DamagedRun, match=r"queries.parquet: \d+ bytes, \d+ when written; the run is damaged"):
        rundir.read_queries(d)
    capfd.readouterr()
    assert execute(spec, tmp_path, progress=False, backend=tiny_backend) == d
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "queries.parquet" in err[0] and "measured again" in err[0]
    assert_same_run(d, reference)
    assert len(list((tmp_path / ".damaged").iterdir())) == 1 and rundir.completed_runs(tmp_path) == [d]


def test_run_sealed_before_manifests_is_trusted_while_it_parses(tmp_path, uninterrupted):
    spec, whole, _ = uninterrupted
    d = run_dir(spec, tmp_path)
    shutil.copytree(whole, d)
    (d / "manifest.json").unlink()
    assert rundir.is_complete(spec, tmp_path) and len(rundir.read_queries(d)) == 24
    data = (d / "power.parquet").read_bytes()
    (d / "power.parquet").write_bytes(data[: len(data) // 2])
    assert rundir.damage(d).startswith("power.parquet: does not parse")
    with pytest.raises(DamagedRun, match="power.parquet: does not parse"):
        rundir.read_power(d)


# --- the lock -----------------------------------------------------------------------------

HOLD = textwrap.dedent("""
    import sys, time
    from ttclib import rundir
    lock = rundir.run_lock(sys.argv[1], sys.argv[2])
    assert lock.acquire()
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
""")


def _hold(runs_dir, run_id, seconds) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(runs_dir), run_id, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_held_run_is_not_measured_and_a_killed_holder_frees_it(tmp_path, tiny_backend):
    spec = RunSpec(**MV)
    holder = _hold(tmp_path, spec.run_id, 600)
    try:
        assert rundir.status(spec, tmp_path) == "running"
        with pytest.raises(RunHeld, match=rf"run {spec.run_id} is being measured by pid {holder.pid} on "):
            execute(spec, tmp_path, progress=False, backend=tiny_backend, wait=False)
        assert not rundir.partial_dir(spec, tmp_path).exists()
    finally:
        holder.kill()
        holder.wait()
    assert rundir.status(spec, tmp_path) == "to run"  # the kernel dropped the dead holder's lock
    assert "that process is dead" in rundir.run_lock(tmp_path, spec.run_id).holder()  # its record is stale
    lock = rundir.run_lock(tmp_path, spec.run_id)
    assert lock.acquire() and lock.acquire()  # re-entrant within a process
    lock.release()
    assert not rundir.run_lock(tmp_path, spec.run_id).held_elsewhere()
    lock.release()
    assert (tmp_path / f"{spec.run_id}.lock").read_bytes() == b""  # released cleanly: no holder recorded


def _grid(tmp_path, runs: int = 3, per_level: int = 2) -> Path:
    params = tmp_path / "p.yaml"
    params.write_text(
        textwrap.dedent(f"""
        profiles:
          default:
            runs_dir: runs
            defaults: {{model: "random:tiny-qwen2", strategy: base, per_level: {per_level}, batch_size: 2,
                       max_new_tokens: 24, ignore_eos: true, idle_s: 0, warmup: false}}
            grid: {{seed: {list(range(1, runs + 1))}}}
    """)
    )
    return params


def test_run_grid_waits_for_a_held_run_then_measures_it_if_the_holder_died(tmp_path, capsys):
    plan = load_params(_grid(tmp_path, runs=1, per_level=1))
    spec = plan.specs[0]
    holder = _hold(plan.runs_dir, spec.run_id, 3)
    t0 = time.time()
    (d,) = run_plan(plan, progress=False)
    holder.wait()
    assert (
        time.time() - t0 >= 2 and f"run {spec.run_id} is being measured by pid {holder.pid}" in capsys.readouterr().out
    )
    assert rundir.is_complete(spec, plan.runs_dir) and d == run_dir(spec, plan.runs_dir)


def test_plan_loads_models_in_grid_order_and_defers_what_it_is_told(tmp_path, monkeypatch):
    """Runs sharing a loaded model go together, in the order the grid first names that model (not
    sorted by key: a time budget keeps what the grid lists first); a run ``defer`` answers for is
    left unmeasured, with the reason, and measured by a later call."""
    plan = load_params(_grid(tmp_path, runs=3, per_level=1))
    a, b, c = (
        RunSpec(**{**s.model_dump(), "seed": 1, "threads": t, "max_new_tokens": n})
        for s, t, n in zip(plan.specs, (2, 1, 2), (8, 8, 12), strict=True)
    )
    plan.specs = [a, b, c]  # two backends (threads 2 and 1), threads 2 named first: sorted keys put 1 first
    opened: list[int | None] = []
    real = runner.open_backend
    monkeypatch.setattr(runner, "open_backend", lambda s, log: opened.append(s.threads) or real(s, log))
    out = measure_plan(plan, progress=False, defer=lambda s: "over budget" if s is c else None)
    assert opened == [2, 1] and out.measured == [a.run_id, b.run_id]
    assert out.deferred == {c.run_id: "over budget"} and not rundir.is_complete(c, plan.runs_dir)
    again = measure_plan(plan, progress=False)
    assert again.measured == [c.run_id] and not again.deferred


def test_two_concurrent_ttc_run_never_measure_one_run_twice(tmp_path):
    params = _grid(tmp_path)
    plan = load_params(params)
    cmd = [sys.executable, "-m", "ttclib.cli", "run", str(params), "--quiet"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120  # the second starts once the first holds a run
    while (
        time.time() < deadline
        and first.poll() is None
        and not any(rundir.run_lock(plan.runs_dir, s.run_id).held_elsewhere() for s in plan.specs)
    ):
        time.sleep(0.05)
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outs = [p.communicate(timeout=600) for p in (first, second)]
    codes = [first.returncode, second.returncode]
    assert set(codes) <= {0, cli.EXIT_HELD} and 0 in codes, outs
    measured = [line.split()[1] for out, _ in outs for line in out.splitlines() if line.startswith("measured ")]
    assert sorted(measured) == sorted(s.run_id for s in plan.specs)  # each run measured once
    assert any(line.startswith("skipped ") for out, _ in outs for line in out.splitlines())
    assert all("Traceback" not in err for _, err in outs)
    for s in plan.specs:
        d = run_dir(s, plan.runs_dir)
        q, info = rundir.read_queries(d), rundir.read_info(d)
        assert len(q) == 6 and not q.duplicated(KEY).any() and info["resumed"] is False
        assert q.energy_j.sum() == pytest.approx(info["energy_j"], rel=1e-9)
    assert not list(plan.runs_dir.glob("*.partial"))


# --- exits ---------------------------------------------------------------------------------


def test_ctrl_c_exits_130_with_one_line(tmp_path):
    params = _grid(tmp_path, runs=1, per_level=8)
    spec = load_params(params).specs[0]
    segs = rundir.segments_dir(rundir.partial_dir(spec, tmp_path / "runs"))
    cmd = [sys.executable, "-m", "ttclib.cli", "run", str(params), "--quiet"]
    # SIGINT as a terminal delivers it, even when this suite runs in the background (`cmd &` ignores
    # SIGINT in its children, and Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (segs.is_dir() and any(segs.iterdir())):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        "interrupted: every checkpointed query is kept; run the same command again to resume"
    ]
    assert any(segs.iterdir())


def test_full_disk_says_data_is_kept_and_a_rerun_resumes(tmp_path, monkeypatch, capsys):
    params = _grid(tmp_path, runs=1, per_level=2)
    spec = load_params(params).specs[0]
    real, calls = rundir._write_synced, []

    def full_after_two_segments(path, data):
        calls.append("segments" in str(path))
        if sum(calls) > 8:  # 4 files a segment
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(rundir, "_write_synced", full_after_two_segments)
    assert cli.main(["run", str(params), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: disk full (") and "kept" in err[0] and "resume" in err[0]
    segs = rundir.segments_dir(rundir.partial_dir(spec, tmp_path / "runs"))
    assert len([s for s in segs.iterdir() if not s.name.endswith(".tmp")]) == 2
    monkeypatch.setattr(rundir, "_write_synced", real)
    assert cli.main(["run", str(params), "--quiet"]) == 0
    d = run_dir(spec, tmp_path / "runs")
    info = rundir.read_info(d)
    assert info["resumed"] is True and len(rundir.read_queries(d)) == 6
