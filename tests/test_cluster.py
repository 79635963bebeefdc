"""A grid on SLURM (ttclib.cluster, `ttc run --executor slurm`, `ttc status`).

The `slurm` tests run against a real single-node SLURM started on this machine by
scripts/slurm_cluster.sh (slurmctld + slurmd + munged, as root): a grid is submitted, a job is cancelled
in the middle of its run, the failed run is resubmitted, and every query must be measured exactly once
with the answers of a local run. `make test` sets TTC_REQUIRE_SLURM=1, so there a cluster that cannot
start fails the suite instead of skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ttclib import cli, cluster, rundir
from ttclib.params import ParamsError, load_params
from ttclib.runner import run_plan

ROOT = Path(__file__).resolve().parents[1]


def _params(tmp_path: Path, grid: dict, cluster_section: dict | None = None, defaults: dict | None = None) -> Path:
    profile = {
        "runs_dir": "runs",
        "figures_dir": "figures",
        "defaults": {
            "strategy": "base",
            "backend": "transformers",
            "repetitions": 1,
            "idle_s": 0.2,
            "warmup": False,
            **(defaults or {}),
        },
        "grid": grid,
    }
    if cluster_section is not None:
        profile["cluster"] = cluster_section
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"title": "cluster test", "profiles": {"default": profile}}))
    return path


# --- without a cluster ---------------------------------------------------------------------------


def test_one_job_per_model_with_gpus_from_tp_and_dp(tmp_path):
    """Runs that share a loaded model are one job; a CUDA run's GPUs are its server's tp_size x dp_size;
    the cluster section and the command line set the rest."""
    path = _params(
        tmp_path,
        {"model": ["random:tiny-qwen2", "Qwen/Qwen2.5-32B"], "max_new_tokens": [8, 16]},
        {
            "partition": "gpu",
            "account": "lab",
            "exclusive": True,
            "sbatch": ["--constraint=a100"],
            "setup": ["module load cuda"],
            "array_parallelism": 3,
        },
        {
            "benchmark": "arithmetic",
            "per_level": 1,
            "device": "cuda",
            "backend": "sglang",
            "server": {"tp_size": 2, "dp_size": 2},
        },
    )
    plan = load_params(path)
    jobs = cluster.jobs(plan, plan.cluster)
    assert [(j.model, len(j.specs), j.gpus) for j in jobs] == [("random:tiny-qwen2", 2, 4), ("Qwen/Qwen2.5-32B", 2, 4)]
    opts = cluster.sbatch_options(jobs[0], plan.cluster)
    assert opts["slurm_partition"] == "gpu" and opts["slurm_account"] == "lab" and opts["slurm_exclusive"] is True
    assert opts["slurm_gpus_per_node"] == 4 and opts["slurm_array_parallelism"] == 3
    assert opts["slurm_additional_parameters"] == {"constraint": "a100"} and opts["slurm_setup"] == ["module load cuda"]
    cpu = load_params(_params(tmp_path, {"model": ["random:tiny-qwen2"]}, defaults={"benchmark": "arithmetic"}))
    (job,) = cluster.jobs(cpu, cluster.Cluster())
    assert job.gpus == 0 and "slurm_gpus_per_node" not in cluster.sbatch_options(job, cluster.Cluster())


def test_a_models_runs_are_cut_to_fit_the_time_limit(tmp_path):
    """Runs of one model projected at 2, 2 and 5 GPU-hours: a 4-hour limit (3.6 h usable) gives three jobs, the
    5-hour run alone past the limit; a 10-hour limit one job. Job hours and the wall time follow."""
    plan = load_params(
        _params(
            tmp_path,
            {"model": ["random:tiny-qwen2"], "max_new_tokens": [4, 8, 16]},
            defaults={"benchmark": "arithmetic"},
        )
    )
    hours = dict(zip((s.run_id for s in plan.specs), (2.0, 2.0, 5.0), strict=True))
    short = cluster.jobs(plan, cluster.Cluster(time_min=240), hours)
    assert [len(j.specs) for j in short] == [1, 1, 1]
    assert cluster.job_hours(short, hours) == [2.0, 2.0, 5.0] and cluster.wall_hours([2.0, 2.0, 5.0], 2) == 5.0
    lines = cluster.describe(short, cluster.Cluster(time_min=240), cluster.job_hours(short, hours))
    assert "over its time limit" in lines[2] and "over its time limit" not in lines[0]
    assert [len(j.specs) for j in cluster.jobs(plan, cluster.Cluster(time_min=600), hours)] == [3]


@pytest.mark.heavy
def test_a_notebook_on_a_partial_grid_says_what_is_missing(tmp_path, monkeypatch, capsys):
    """TTC_MEASURE=0: run_grid analyses the complete runs and names the missing ones, measuring nothing."""
    import ttclib

    path = _params(
        tmp_path,
        {"model": ["random:tiny-qwen2"], "max_new_tokens": [2, 3]},
        defaults={"benchmark": "arithmetic", "per_level": 1},
    )
    plan = load_params(path)
    monkeypatch.setenv("TTC_MEASURE", "0")
    with pytest.raises(ParamsError, match="none of its 2 runs is complete"):
        ttclib.run_grid(str(path))
    from ttclib.runner import execute

    execute(plan.specs[0], plan.runs_dir, progress=False)
    study = ttclib.run_grid(str(path))
    assert list(study.runs.run_id) == [plan.specs[0].run_id] and len(study.plan.specs) == 1
    out = capsys.readouterr().out
    assert f"analysing 1 of 2 runs; not measured yet: {plan.specs[1].run_id}" in out
    assert not rundir.partial_dir(plan.specs[1], plan.runs_dir).exists()


def test_a_misspelt_cluster_key_is_named(tmp_path):
    path = _params(tmp_path, {"model": ["random:tiny-qwen2"]}, {"partiton": "gpu"}, {"benchmark": "arithmetic"})
    with pytest.raises(ParamsError, match=r"profiles\.default\.cluster\.partiton"):
        load_params(path)


def test_paper_grid_dry_run_lists_the_jobs_and_their_resources(capsys):
    """`ttc run params/paper.yaml --executor slurm --dry-run`: the jobs it would submit, with resources, offline."""
    assert (
        cli.main(
            [
                "run",
                str(ROOT / "params" / "paper.yaml"),
                "--executor",
                "slurm",
                "--dry-run",
                "--partition",
                "gpu",
                "--time-min",
                "720",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    jobs = [ln for ln in out.splitlines() if ln.startswith("  job ")]
    assert jobs and all("partition=gpu" in ln and "time=720min" in ln for ln in jobs)
    assert any("Qwen/Qwen2.5-32B" in ln and "gpus=2" in ln for ln in jobs)  # TP=2 for 32B
    assert "one per group of runs that share a loaded model" in out and "Estimated total" in out


def test_stale_lock_is_broken_only_when_job_gone_and_heartbeat_old(tmp_path):
    """A holder that keeps its flock (a node that failed on a shared filesystem, here a stopped process)
    with a SLURM job the scheduler no longer lists and a heartbeat older than the lease: the lock is broken
    and taken. A recent heartbeat, or a job still listed, keeps it."""
    lock_path = tmp_path / "r.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import fcntl, json, os, sys, time
fd = os.open({str(lock_path)!r}, os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, json.dumps({{"host": "node7", "pid": 1, "started": 0, "heartbeat": float(sys.argv[1]),
                          "job": {{"job_id": "4242", "node": "node7"}}}}).encode())
print("held", flush=True)
time.sleep(60)
""",
            str(time.time() - 2 * rundir.LEASE_S),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = rundir.RunLock(lock_path)
        assert lock.held_elsewhere()
        assert not lock.stale(jobs={"4242": "RUNNING"})  # the scheduler still runs it
        assert not lock.stale(now=time.time() - 1.5 * rundir.LEASE_S, jobs={})  # heartbeat within the lease
        assert lock.stale(jobs={}) and "SLURM job 4242" in lock.holder()
        orig = cluster.active_jobs
        cluster.active_jobs = lambda: {}
        try:
            assert lock.acquire()
        finally:
            cluster.active_jobs = orig
        assert lock.record()["pid"] == os.getpid() and lock.record()["heartbeat"] > time.time() - 60
        assert len(list(tmp_path.glob("r.lock.broken-*"))) == 1
        lock.release()
    finally:
        holder.kill()
        holder.wait()


def test_a_local_lock_records_no_job_and_is_never_stale(tmp_path):
    lock = rundir.RunLock(tmp_path / "x.lock")
    assert lock.acquire()
    try:
        rec = lock.record()
        assert rec["job"] is None and rec["pid"] == os.getpid() and not lock.stale(now=time.time() + 1e6, jobs={})
    finally:
        lock.release()


def test_status_names_why_a_job_failed(tmp_path):
    """An exception the job raised is read from its result; a job killed without a result from its log."""
    import pickle

    path = _params(
        tmp_path, {"model": ["random:tiny-qwen2"], "max_new_tokens": [4, 8]}, defaults={"benchmark": "arithmetic"}
    )
    plan = load_params(path)
    folder = plan.runs_dir / ".slurm"
    folder.mkdir(parents=True)
    (folder / "a_result.pkl").write_bytes(pickle.dumps(("error", "Traceback ...\nValueError: data missing")))
    (folder / "b_log.err").write_text("loading\nslurmstepd: error: *** JOB 7 ON vm CANCELLED AT 2026-11-29 ***\n")
    recs = [
        {
            "job_id": "6",
            "run_ids": [plan.specs[0].run_id],
            "result": str(folder / "a_result.pkl"),
            "stderr": str(folder / "a_log.err"),
        },
        {
            "job_id": "7",
            "run_ids": [plan.specs[1].run_id],
            "result": str(folder / "none.pkl"),
            "stderr": str(folder / "b_log.err"),
        },
    ]
    (folder / cluster.JOBS_FILE).write_text("".join(json.dumps(r) + "\n" for r in recs))
    rows = {r["run_id"]: r for r in cluster.status(plan)}
    a, b = rows[plan.specs[0].run_id], rows[plan.specs[1].run_id]
    assert a["state"] == "failed" and a["reason"] == "raised ValueError: data missing"
    assert b["state"] == "failed" and "CANCELLED" in b["reason"] and b["log"].endswith("b_log.err")
    assert "2 failed" in cluster.format_status(list(rows.values()))


# --- a real SLURM on this machine ------------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm():
    """A single-node SLURM cluster (scripts/slurm_cluster.sh up, in /tmp/ttc-slurm as `make slurm-up` starts
    it: restarted here, and stopped afterwards unless it was running before)."""
    required = os.environ.get("TTC_REQUIRE_SLURM") == "1"
    if shutil.which("slurmctld") is None and not required:
        pytest.skip("SLURM is not installed (make test installs it; make slurm-up starts one)")
    folder = Path("/tmp/ttc-slurm")
    conf = folder / "etc" / "slurm.conf"
    was_up = (
        conf.exists()
        and subprocess.run(
            ["sinfo", "-h"], env={**os.environ, "SLURM_CONF": str(conf)}, capture_output=True, timeout=30
        ).returncode
        == 0
    )
    up = subprocess.run(
        ["bash", str(ROOT / "scripts" / "slurm_cluster.sh"), "up", str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if up.returncode != 0:
        if required:
            pytest.fail(f"SLURM did not start: {up.stderr[-2000:]}")
        pytest.skip(f"SLURM did not start here: {up.stderr[-500:]}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    yield folder
    if not was_up:
        subprocess.run(["bash", str(ROOT / "scripts" / "slurm_cluster.sh"), "down", str(folder)], timeout=60)
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


def _ttc(*args: str) -> str:
    """`ttc` as a user runs it, in its own process; its output."""
    r = subprocess.run([sys.executable, "-m", "ttclib.cli", *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def _wait(predicate, timeout: float, what: str, step: float = 0.2):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.slurm
def test_cancel_a_job_mid_run_resubmit_exactly_once_and_equal_to_local(slurm, tmp_path):
    """Two jobs (two models). The long run's job is cancelled once its first checkpoint is written; `ttc
    status` says it failed and why; --resubmit-failed resumes it. Every query is then measured exactly once,
    and the answers equal a local run of the same grid."""
    grid = {
        "config": [
            {"model": "random:tiny-qwen2", "max_new_tokens": 96, "ignore_eos": True, "batch_size": 1},
            {"model": "smollm2-135m-instruct", "max_new_tokens": 4, "batch_size": 4},
        ]
    }
    defaults = {"benchmark": "arithmetic", "per_level": 8}
    path = _params(tmp_path / "cluster", grid, {"cpus_per_run": 1, "time_min": 20}, defaults)
    plan = load_params(path)
    long_run = plan.specs[0]
    assert cli.main(["run", str(path), "--executor", "slurm"]) == 0
    records = cluster.records(plan, plan.cluster)
    job = next(r["job_id"] for r in records if long_run.run_id in r["run_ids"])
    partial = rundir.partial_dir(long_run, plan.runs_dir)
    _wait(lambda: partial.exists() and rundir.read_segments(partial), 240, "the first checkpoint of the long run")
    subprocess.run(["scancel", job], check=True)
    _wait(lambda: not any(k == job for k in (cluster.active_jobs() or {})), 120, "the cancelled job to leave the queue")
    _wait(
        lambda: all(r["state"] in ("done", "failed") for r in cluster.status(plan, plan.cluster)),
        240,
        "both jobs to end",
    )
    rows = {r["run_id"]: r for r in cluster.status(plan, plan.cluster)}
    assert rows[long_run.run_id]["state"] == "failed", rows
    assert rows[long_run.run_id]["reason"] and rows[long_run.run_id]["log"]
    assert rows[plan.specs[1].run_id]["state"] == "done"
    kept = len(rundir.read_segments(partial))
    assert kept >= 1  # what the cancelled job checkpointed is kept
    assert _ttc("status", str(path), "--resubmit-failed").count("resubmitted as job") == 1
    assert len(cluster.records(plan, plan.cluster)) == len(records) + 1
    _wait(lambda: rundir.is_complete(long_run, plan.runs_dir), 300, "the resubmitted run to complete", step=1)
    info = rundir.read_info(rundir.run_dir(long_run, plan.runs_dir))
    assert info["resumed"] and info["scheduler"]["scheduler"] == "slurm"
    # exactly once, and what a local run answers
    local = load_params(_params(tmp_path / "local", grid, None, defaults))
    run_plan(local, progress=False)
    for spec, here in zip(plan.specs, local.specs, strict=True):
        a = pd.read_parquet(rundir.run_dir(spec, plan.runs_dir) / rundir.QUERIES_PARQUET)
        b = pd.read_parquet(rundir.run_dir(here, local.runs_dir) / rundir.QUERIES_PARQUET)
        keys = ["repetition", "query_id", "sample"]
        assert not a.duplicated(keys).any() and len(a) == len(b)
        pd.testing.assert_frame_equal(
            a.sort_values(keys)[keys + ["text", "answer", "completion_tokens"]].reset_index(drop=True),
            b.sort_values(keys)[keys + ["text", "answer", "completion_tokens"]].reset_index(drop=True),
        )
    assert "2 done" in _ttc("status", str(path))


@pytest.mark.slurm
def test_two_submissions_of_one_grid_measure_each_run_once(slurm, tmp_path):
    """The same grid submitted twice at once (two `ttc run --executor slurm`): each run is measured by one
    job; the other finds it held or complete and leaves it."""
    grid = {"model": ["random:tiny-qwen2"], "max_new_tokens": [24, 32]}
    path = _params(tmp_path, grid, {"cpus_per_run": 1, "time_min": 10}, {"benchmark": "arithmetic", "per_level": 2})
    plan = load_params(path)
    assert cli.main(["run", str(path), "--executor", "slurm"]) == 0
    assert cli.main(["run", str(path), "--executor", "slurm"]) == 0
    records = cluster.records(plan, plan.cluster)
    assert len(records) == 2  # one job per submission (one model)
    _wait(lambda: not (set(cluster.active_jobs() or {}) & {r["job_id"] for r in records}), 300, "both jobs", step=1)
    assert all(rundir.is_complete(s, plan.runs_dir) for s in plan.specs)
    import pickle

    measured = []
    for r in records:
        outcome, value = pickle.loads(Path(r["result"]).read_bytes())
        assert outcome == "success", value
        measured += value["measured"]
    assert sorted(measured) == sorted(s.run_id for s in plan.specs)  # each once, by one of the jobs


def test_a_lock_in_a_slurm_job_records_its_ids_without_asking_the_scheduler(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "70")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")

    def no_scheduler(*_):
        raise AssertionError("a lock must not call the scheduler")

    monkeypatch.setattr(cluster, "_squeue", no_scheduler)
    monkeypatch.setattr(cluster, "_scontrol_job", no_scheduler)
    lock = rundir.RunLock(tmp_path / "y.lock")
    assert lock.acquire()
    try:
        job = lock.record()["job"]
        assert (job["job_id"], job["array_job_id"], job["array_task_id"]) == ("77", "70", "3")
    finally:
        lock.release()
