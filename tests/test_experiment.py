"""A run end to end on the tiny random model: files, energy accounting, caching, resume."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from ttclib.metrics import load_runs
from ttclib.params import load_params
from ttclib.rundir import run_dir
from ttclib.runner import execute
from ttclib.spec import RunSpec

pytestmark = pytest.mark.heavy  # make test-fast leaves this module out

SPEC = dict(
    model="random:tiny-qwen2",
    strategy="mv",
    samples=2,
    per_level=2,
    max_new_tokens=6,
    batch_size=4,
    idle_s=0.3,
    sample_interval_s=0.05,
    ignore_eos=True,
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_backend):
    runs = tmp_path_factory.mktemp("runs")
    spec = RunSpec(**SPEC)
    return spec, execute(spec, runs, progress=False, backend=tiny_backend)


def test_run_directory_layout(finished):
    spec, d = finished
    assert d.name == spec.run_id and {p.name for p in d.iterdir()} == {
        "run.json",
        "queries.parquet",
        "power.parquet",
        "spec.json",
        "manifest.json",
    }
    info = json.loads((d / "run.json").read_text())
    assert info["spec"] == spec.model_dump() and info["meter_name"] == "estimate"
    assert info["meter"]["method"] == "cpu_time_x_tdp" and info["meter"]["idle_power_w"] is not None
    assert info["hardware"]["cpu_count"] and info["software"]["torch"] and info["backend"]["backend"] == "transformers"
    q = pd.read_parquet(d / "queries.parquet")
    assert len(q) == 3 * 2 * 2 and set(q.meter) == {"estimate"}
    assert (q.completion_tokens == 6).all()
    power = pd.read_parquet(d / "power.parquet")
    assert {"t", "device", "power_w"} <= set(power.columns) and len(power) > 0


def test_attributed_energy_sums_to_the_run(finished):
    _, d = finished
    info = json.loads((d / "run.json").read_text())
    q = pd.read_parquet(d / "queries.parquet")
    assert info["energy_j"] > 0
    assert q.energy_j.sum() == pytest.approx(info["energy_j"], rel=1e-9)
    assert q.net_energy_j.sum() == pytest.approx(info["net_energy_j"], rel=1e-9)
    assert info["energy_j"] == pytest.approx(sum(w["total_j"] for w in info["windows"]))


def test_complete_run_is_reused(finished, tiny_backend):
    spec, d = finished
    before = (d / "run.json").stat().st_mtime_ns
    assert execute(spec, d.parent, progress=False, backend=tiny_backend) == d
    assert (d / "run.json").stat().st_mtime_ns == before


def test_run_records_attribution_and_steady_state(finished):
    _, d = finished
    info = json.loads((d / "run.json").read_text())
    assert info["measured_devices"]["meter"] == "estimate" and info["measured_devices"]["devices"][0]["name"] == "cpu"
    assert info["attribution"].startswith("each window's energy") and info["overhead_j"] >= 0
    assert info["energy_per_output_token_j"] == pytest.approx(info["energy_j"] / info["completion_tokens"])
    assert set(info["steady_state"]) == {"j_per_token", "energy_j", "time_s", "tokens", "batch_size"}
    segments = [w["segment"] for w in info["windows"]]
    assert segments == sorted(segments) and all(
        b["start_s"] == a["start_s"] + a["time_s"] for a, b in itertools.pairwise(info["windows"])
    )


def test_load_runs_tables(finished):
    _, d = finished
    rs = load_runs([d])
    row = rs.runs.iloc[0]
    assert row.n_queries == 6 and row.samples == 2 and row.meter == "estimate"
    assert row.energy_per_query_j == pytest.approx(row.energy_j / 6)
    assert len(rs.results) == 6


class Crash(Exception):
    pass


class CrashingBackend:
    """Wraps a backend and dies after `after` completions, like a run killed mid-way."""

    def __init__(self, inner, after):
        self.inner, self.after = inner, after

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def stream(self, requests):
        for i, c in enumerate(self.inner.stream(requests)):
            if i == self.after:
                raise Crash()
            yield c


def test_crashed_run_resumes_without_losing_queries(tmp_path, tiny_backend):
    """A crash mid-batch keeps the whole seed groups finished before it (4 + 2 rows of the first
    sample's two batches); the resumed run measures the rest and keeps the first session's windows."""
    spec = RunSpec(**{**SPEC, "seed": 7})
    with pytest.raises(Crash):
        execute(spec, tmp_path, progress=False, backend=CrashingBackend(tiny_backend, after=7))
    partial = tmp_path / f"{spec.run_id}.partial"
    assert not run_dir(spec, tmp_path).exists()
    first = pd.concat([pd.read_parquet(d / "queries.parquet") for d in sorted((partial / "segments").iterdir())])
    assert len(first) == 6 and first.groupby("sample").size().tolist() in ([6], [4, 2], [2, 4])

    d = execute(spec, tmp_path, progress=False, backend=tiny_backend)
    q = pd.read_parquet(d / "queries.parquet")
    assert not partial.exists() and len(q) == 12
    assert sorted(q.segment.unique()) == list(range(q.segment.nunique()))  # numbered in time order, no gaps
    assert q.groupby(["query_id", "sample"]).size().max() == 1
    kept = q.merge(first[["query_id", "sample", "t_start"]], on=["query_id", "sample"], suffixes=("", "_0"))
    assert len(kept) == 6 and (kept.t_start == kept.t_start_0).all() and (kept.energy_j > 0).all()
    info = json.loads((d / "run.json").read_text())
    assert {0, 1} <= {w["segment"] for w in info["windows"]}  # the first session's windows count
    assert info["resumed"] is True and q.energy_j.sum() == pytest.approx(info["energy_j"])


def _slow_run_params(tmp_path):
    """A params file whose single run takes many small batches, and where its checkpoints appear."""
    params = tmp_path / "p.yaml"
    params.write_text(
        textwrap.dedent("""
        profiles:
          default:
            runs_dir: runs
            defaults: {model: "random:tiny-qwen2", strategy: base, per_level: 8, batch_size: 2,
                       max_new_tokens: 48, ignore_eos: true, idle_s: 0, warmup: false}
    """)
    )
    spec = load_params(params).specs[0]
    return params, spec, tmp_path / "runs" / f"{spec.run_id}.partial" / "segments"


def _segments(seg_dir) -> list:
    """The checkpointed segments (folders renamed into place; not those being written)."""
    return [d for d in seg_dir.iterdir() if not d.name.endswith(".tmp")] if seg_dir.is_dir() else []


def test_killed_process_resumes(tmp_path):
    """SIGKILL a real `ttc run` after its first checkpoint; the rerun finishes the same run."""
    params, spec, seg_dir = _slow_run_params(tmp_path)
    cmd = [sys.executable, "-m", "ttclib.cli", "run", str(params), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while len(_segments(seg_dir)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(_segments(seg_dir))
    assert 2 <= done_before < 12
    subprocess.run(cmd, check=True, capture_output=True)
    q = pd.read_parquet(tmp_path / "runs" / spec.run_id / "queries.parquet")
    assert len(q) == 24 and q.query_id.is_unique


def test_sigterm_stops_cleanly(tmp_path):
    params, spec, seg_dir = _slow_run_params(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ttclib.cli", "run", str(params), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while not _segments(seg_dir) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert _segments(seg_dir)


def test_budget_fixes_the_cot_prompt_across_lengths(tiny_backend, tmp_path):
    """A length sweep keeps one prompt (budget) while max_new_tokens moves; the default budget is
    max_new_tokens, and stating it explicitly is the same run."""
    cot = dict(model="random:tiny-qwen2", strategy="cot", per_level=1, max_new_tokens=12)
    assert RunSpec(**cot).run_id == RunSpec(**cot, budget=12).run_id
    assert RunSpec(**cot).run_id != RunSpec(**cot, budget=40).run_id
    base = {**cot, "strategy": "base"}  # no budget in Base's prompt: same run
    assert RunSpec(**base).run_id == RunSpec(**base, budget=40).run_id
    from ttclib.runner import _Execution

    spec = RunSpec(**{**cot, "max_new_tokens": 4}, budget=40)
    prompts = [r.prompt for r in _Execution(spec, tmp_path, False, tiny_backend)._requests()]
    assert prompts and all("at most 40 tokens" in p for p in prompts)
    assert all(r.sampling.max_new_tokens == 4 for r in _Execution(spec, tmp_path, False, tiny_backend)._requests())


def test_full_run_under_nvml_meter(tmp_path, tiny_backend, monkeypatch):
    """The whole experiment under NvmlMeter with the fake Hopper GPU: the run says which GPU and
    power field it measured, and every static batch's energy is split equally among its sequences
    although the checkpoints (every 4 completions) cut through the batches (4, 2, 4, 2 sequences)."""
    import fake_pynvml

    fake = fake_pynvml.load()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake.setup(
        [
            fake.FakeGPU(
                profile="hopper",
                power_w=300.0,
                update_period_s=0.01,
                noise_w=2.0,
                call_latency_s=0.0002,
                transient_errors={"nvmlDeviceGetTotalEnergyConsumption": 1},
            )
        ]
    )
    spec = RunSpec(**{**SPEC, "meter": "nvml", "seed": 3, "sample_interval_s": None, "idle_s": 0.5})
    d = execute(spec, tmp_path, progress=False, backend=tiny_backend)
    info = json.loads((d / "run.json").read_text())
    dev = info["measured_devices"]["devices"][0]
    assert (
        info["meter_name"] == "nvml" and dev["power_source"] == "field_power_instant" and dev["power_averaged"] is False
    )
    assert dev["uuid"].startswith("GPU-") and "CPU run" in info["measured_devices"]["scope"]
    assert info["measured_devices"]["counter_update_period_s"] == pytest.approx(0.01, abs=0.003)
    assert info["meter"]["idle"]["settled"] and info["meter"]["idle"]["power_w"] == pytest.approx(300.0, rel=0.02)
    assert info["energy_j"] == pytest.approx(300.0 * info["measured_s"], rel=0.05)
    q = pd.read_parquet(d / "queries.parquet")
    assert q.energy_j.sum() == pytest.approx(info["energy_j"], rel=1e-9)
    batches = q.groupby(["t_start", "t_end"]).energy_j
    assert sorted(batches.size().tolist()) == [2, 2, 4, 4]
    assert (batches.max() - batches.min()).max() <= 1e-9 * q.energy_j.max()  # equal within a batch
    assert info["flags"].get("short_window", 0) >= 0 and "counter_error" not in info["flags"]


@pytest.mark.parametrize("warmup", [True, "full", False])
def test_warm_up_generates_the_first_measured_batch(tmp_path, tiny_backend, monkeypatch, warmup):
    """``warmup: full`` generates, unmeasured, exactly the batch the run measures first (same prompts,
    sampling and length), so a shape the process meets for the first time is not billed to the first
    repetition; ``true`` one 4-token request; ``false`` nothing. MV with 2 samples of 5 queries at
    batch 3: the backend batches each sample's seed separately, so the first measured batch is one
    sample of the first three queries, not the first three requests (query 0's two samples and query 1's)."""
    batches: list[tuple[list[str], object]] = []
    real = tiny_backend._batch

    def recording(seqs, params, batch_index):
        batches.append(([r.prompt for r, _ in seqs], params))
        return real(seqs, params, batch_index)

    monkeypatch.setattr(tiny_backend, "_batch", recording)
    shape = {**SPEC, "levels": ["easy"], "per_level": 5, "batch_size": 3, "idle_s": 0, "repetitions": 2}
    spec = RunSpec(**shape, warmup=warmup)
    run = execute(spec, tmp_path, progress=False, backend=tiny_backend)
    queries = pd.read_parquet(run / "queries.parquet")
    assert len(queries) == 2 * 5 * 2 and not queries.query_id.str.contains("warmup").any()
    measured = batches[{False: 0, True: 1, "full": 1}[warmup] :]
    assert len(measured) == 2 * 2 * 2  # per repetition and sample: batches of 3 and 2 queries
    first_prompts, first_params = measured[0]
    assert len(first_prompts) == 3 and first_params.max_new_tokens == 6
    if warmup == "full":  # the seed aside: the backend orders its batches by seed
        assert batches[0][0] == first_prompts
        assert dataclasses.replace(batches[0][1], seed=0) == dataclasses.replace(first_params, seed=0)
    elif warmup:
        assert len(batches[0][0]) == 1 and batches[0][1].max_new_tokens == 4
    if warmup is not True:  # a new value of the field; the default keeps every earlier run id
        assert spec.run_id != RunSpec(**shape).run_id
