"""GPU reference runs beside a section: finding, selecting by spec, labels, tables and sentences.

Known answers on small constructed run directories (numbers chosen so every table value is exact),
and on the committed H200 runs of outputs/gpu/runs (params/gpu_check.yaml)."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from ttclib import reference, rundir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "outputs" / "gpu" / "runs"


# --- constructed run directories -------------------------------------------------------------


def write_run(
    root: Path,
    run_id: str,
    *,
    strategy="base",
    max_new_tokens=8,
    batch_size=4,
    queries=4,
    samples=1,
    budget=None,
    rep_s=(1.0, 1.0),
    energy_per_query=(2.0, 2.0),
    power_w=100.0,
    device="cuda",
    model="random:test-7b",
    model_kind="random",
    gpu="NVIDIA TestGPU",
    meter="nvml",
    power_source="power_usage",
) -> Path:
    """One complete run directory: ``len(rep_s)`` repetitions of ``queries`` queries, each repetition
    one energy window of ``rep_s[i]`` seconds in which every query used ``energy_per_query[i]`` J;
    a flat power trace at ``power_w``."""
    d = root / run_id
    d.mkdir(parents=True)
    rows, windows = [], []
    for rep, (secs, e) in enumerate(zip(rep_s, energy_per_query, strict=True)):
        windows.append({"segment": rep, "time_s": secs, "total_j": e * queries})
        for q in range(queries):
            for s in range(samples):
                rows.append(
                    dict(
                        run_id=run_id,
                        repetition=rep,
                        query_id=f"q{q}",
                        sample=s,
                        benchmark="arithmetic",
                        category="math",
                        difficulty="easy",
                        prompt_tokens=10,
                        completion_tokens=max_new_tokens,
                        finish_reason="length",
                        answer="1",
                        answer_class=0,
                        gold="2",
                        correct=False,
                        segment=rep,
                        energy_j=e / samples,
                        net_energy_j=e / samples / 2,
                        meter=meter,
                    )
                )
    pd.DataFrame(rows).to_parquet(d / rundir.QUERIES_PARQUET)
    n_t = 20
    pd.DataFrame({"t": np.arange(n_t, dtype=float), "device": "gpu0", "power_w": power_w}).to_parquet(
        d / rundir.POWER_PARQUET
    )
    energy = float(sum(energy_per_query) * queries)
    devices = (
        [{"name": "gpu0", "model": gpu, "power_source": power_source}]
        if device == "cuda"
        else [{"name": "cpu", "model": "Test CPU"}]
    )
    info = {
        "run_id": run_id,
        "spec": {
            "model": model,
            "strategy": strategy,
            "benchmark": "arithmetic",
            "max_new_tokens": max_new_tokens,
            "batch_size": batch_size,
            "backend": "transformers",
            "device": device,
            "budget": budget,
            "repetitions": len(rep_s),
        },
        "strategy": {"samples": samples},
        "meter_name": meter,
        "meter": {"method": "energy_counter", "idle_power_w": 50.0, "devices": devices},
        "measured_devices": {"devices": devices},
        "windows": windows,
        "energy_j": energy,
        "net_energy_j": energy / 2,
        "measured_s": float(sum(rep_s)),
        "completion_tokens": max_new_tokens * samples * queries * len(rep_s),
        "backend": {"parameters": 7_000_000_000, "model_kind": model_kind},
        "hardware": {"gpus": [{"name": gpu}]} if device == "cuda" else {"cpu": "Test CPU", "cpu_count": 2},
    }
    rundir.write_json(d / rundir.RUN_JSON, info)
    return d


def mm(b: float) -> float:
    """Queries/s of the constructed batch sweep: 10·b / (2 + b), a 1 % wobble so fits have residuals."""
    return 10 * b / (2 + b) * (1 + 0.01 * np.cos(3 * b))


@pytest.fixture
def folder(tmp_path):
    """A reference folder with the three groups of params/gpu_check.yaml at a smaller scale, plus a CPU run."""
    root = tmp_path / "gpu" / "runs"
    # Figure 3 shapes at batch 4: base 8 tokens (100 W), mv 3 × 8 (120 W); cot 64 is the sweep's longest (90 W)
    write_run(root, "p-base", strategy="base", max_new_tokens=8, power_w=100.0, rep_s=(2.0, 1.0))
    write_run(root, "p-mv", strategy="mv", max_new_tokens=8, samples=3, power_w=120.0)
    # Figure 4: cot at 16 / 32 with budget 64, and cot 64 (budget defaults to 64): E = 0.5 J/token · L + 2
    for n, budget in ((16, 64), (32, 64), (64, None)):
        e = 0.5 * n + 2
        write_run(
            root,
            f"l-{n}",
            strategy="cot",
            max_new_tokens=n,
            budget=budget,
            power_w=90.0,
            energy_per_query=(2 * e, e) if n == 64 else (e, e),
            rep_s=(3.0, 1.0) if n == 64 else (1.0, 1.0),
        )
    # Figure 7: base 128 tokens at batch 1..16, one full batch per repetition, 10·b/(2 + b) queries/s
    for b in (1, 2, 4, 8, 16):
        write_run(
            root,
            f"b-{b:02d}",
            strategy="base",
            max_new_tokens=128,
            batch_size=b,
            queries=b,
            rep_s=(b / mm(b), b / mm(b)),
            energy_per_query=(640 / b, 640 / b),
        )
    write_run(root, "cpu-run", strategy="base", max_new_tokens=8, device="cpu", meter="estimate")
    return root


def ids(gpu) -> list[str]:
    return sorted(gpu.runs.run_id)


def test_sections_select_by_spec(folder):
    assert ids(reference.gpu_reference("batch", runs_dir=folder)) == ["b-01", "b-02", "b-04", "b-08", "b-16"]
    assert ids(reference.gpu_reference("length", runs_dir=folder)) == ["l-16", "l-32", "l-64"]
    # shapes: outside the batch sweep, and only the longest run of the length sweep; the CPU run never
    assert ids(reference.gpu_reference("power", runs_dir=folder)) == ["l-64", "p-base", "p-mv"]


def test_select_rules_on_a_table():
    runs = pd.DataFrame(
        {
            "run_id": list("abcdef"),
            "model": "m",
            "strategy": ["base"] * 4 + ["cot", "cot"],
            "max_new_tokens": [8, 8, 8, 16, 8, 16],
            "samples": 1,
            "budget": [None] * 4 + [16, None],
            "batch_size": [1, 2, 4, 4, 4, 4],
        }
    )
    assert reference.select(runs, "batch") == ["a", "b", "c"]
    assert reference.select(runs, "length") == []  # two lengths are not a sweep
    assert reference.select(runs, "power") == ["d", "f"]  # base 16 and the longer cot at batch 4
    with pytest.raises(ValueError, match="section must be one of"):
        reference.select(runs, "overview")


def test_absent_folder_gives_none_and_show_does_nothing(tmp_path):
    assert reference.gpu_reference("power", runs_dir=tmp_path / "missing") is None
    # a params folder without gpu_check.yaml, and the notebooks' smoke workspace (params copied, no outputs)
    (tmp_path / "p").mkdir()
    assert reference.runs_dir_for(tmp_path / "p" / "02_power.yaml") is None
    shutil.copytree(ROOT / "params", tmp_path / "params")
    assert reference.runs_dir_for(tmp_path / "params" / "02_power.yaml") == (tmp_path / "outputs" / "gpu" / "runs")
    for section in reference.SECTIONS:
        assert reference.gpu_reference(section, tmp_path / "params" / f"{section}.yaml") is None
    assert reference.show(None, tmp_path / "figures") is None
    assert not (tmp_path / "figures").exists()


def test_cpu_only_folder_is_no_reference(tmp_path):
    write_run(tmp_path, "c1", device="cpu", meter="estimate", batch_size=1, queries=1)
    write_run(tmp_path, "c2", device="cpu", meter="estimate", batch_size=2, queries=2)
    write_run(tmp_path, "c3", device="cpu", meter="estimate", batch_size=4)
    assert reference.gpu_reference("batch", runs_dir=tmp_path) is None


def test_label_comes_from_the_runs(folder):
    gpu = reference.gpu_reference("power", runs_dir=folder)
    assert reference.label(gpu.runs) == (
        "GPU reference: NVIDIA TestGPU, random-weight test-7b (7.0 B parameters), transformers, NVML (energy counter; "
        "power usage, a 1 s average on Ampere and newer), hardware only: accuracy not meaningful"
    )
    real = gpu.runs.assign(model_kind="hub", model="org/model")
    assert reference.label(real).endswith("NVML (energy counter; power usage, a 1 s average on Ampere and newer)")
    assert reference.shapes(gpu.runs) == {"base": "base: 8 tokens", "mv": "mv: 3 × 8 tokens", "cot": "cot: 64 tokens"}


def test_power_panel_known_answers(folder):
    p = reference.panel(reference.gpu_reference("power", runs_dir=folder))
    t = p.table.set_index("strategy")
    assert list(t.index) == ["base", "mv", "cot"]
    assert t.mean_power_w.tolist() == [100.0, 120.0, 90.0] and t.std_power_w.tolist() == [0.0, 0.0, 0.0]
    assert t.first_repetition_x.tolist() == [2.0, 1.0, 3.0]
    assert "MV (3 × 8 output tokens) 120 W ± 0, +20.0 % vs base" in p.sentence
    assert "COT (64 output tokens) 90 W ± 0, -10.0 % vs base" in p.sentence
    assert "in 2 of 3 runs the first repetition" in p.sentence and "cot 64 tokens at batch 4: 3.0×" in p.sentence
    assert "3.0×; base 8 tokens at batch 4: 2.0×), so those runs' mean power mixes the warm-up" in p.sentence
    assert p.sentence.startswith("GPU reference on NVIDIA TestGPU (meter: nvml (energy_counter); power: power usage")
    assert "not a verdict" in p.sentence and "The claim" not in p.sentence


def test_length_panel_known_answers(folder):
    p = reference.panel(reference.gpu_reference("length", runs_dir=folder))
    t = p.table.set_index("max_new_tokens")
    assert t.energy_per_query_j.tolist() == [10.0, 18.0, 51.0]  # 64 tokens: (68 + 34) / 2
    assert t.energy_per_query_j_lo.iloc[0] == 10.0 and not any(c.startswith("accuracy") for c in p.table)
    assert p.repetitions.set_index(["max_new_tokens", "repetition"]).energy_per_query_j[(64, 1)] == 34.0
    assert (
        "energy per query rose 5.1× from 10.0 J at 16 tokens to 51 J at 64 (4× the length; "
        "3.4× over the later repetitions alone: 10.0 → 34 J)" in p.sentence
    )
    fit = p.curves[("random:test-7b", "cot")]
    assert fit.n == 3 and f"{fit.form} fits best by BIC" in p.sentence


def test_batch_panel_known_answers(folder):
    p = reference.panel(reference.gpu_reference("batch", runs_dir=folder))
    t = p.table.set_index("batch_size")
    assert np.allclose(t.queries_per_s, [mm(b) for b in (1, 2, 4, 8, 16)])
    assert np.allclose(t.energy_per_token_j, [640 / b / 128 for b in (1, 2, 4, 8, 16)])
    gain = mm(16) / mm(1)
    assert (
        f"throughput rose {gain:.0f}× from {mm(1):.2f} queries/s at batch 1 to {mm(16):.1f} at batch 16" in p.sentence
    )
    assert "energy per output token fell from 5.00 J to 0.312 J (16× less)" in p.sentence
    fit = p.curves["base"]
    assert fit.form == "michaelis_menten" and abs(fit.params["k"] - 2) < 0.2
    assert f"reaches 90% of its ceiling at batch {fit.ceiling:.3g}" in p.sentence
    assert "No run's first repetition" in p.sentence


@pytest.mark.heavy
def test_show_draws_and_saves_each_section(folder, tmp_path, capsys):
    for section, name in reference.SECTIONS.items():
        if section == "dvfs":  # no run here locks a clock (the dvfs panel: tests/test_clocks.py)
            assert reference.gpu_reference(section, runs_dir=folder) is None
            continue
        p = reference.show(reference.gpu_reference(section, runs_dir=folder), tmp_path)
        assert (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}.svg").exists()
        assert p.caption in capsys.readouterr().out
    assert "GPU reference: NVIDIA TestGPU" in (tmp_path / "fig7_throughput_vs_batch_gpu.svg").read_text()


# --- the committed H200 runs -----------------------------------------------------------------

committed = pytest.mark.skipif(not COMMITTED.is_dir(), reason="outputs/gpu/runs not present")


def _spec(gpu) -> set:
    return {(r.strategy, r.max_new_tokens, r.batch_size) for r in gpu.runs.itertuples()}


@committed
def test_committed_runs_are_found_from_params():
    assert reference.runs_dir_for() == COMMITTED
    assert reference.runs_dir_for(ROOT / "params" / "02_power.yaml") == COMMITTED
    assert len(rundir.completed_runs(COMMITTED)) == 10


@committed
def test_committed_sections():
    assert _spec(reference.gpu_reference("power", ROOT / "params" / "02_power.yaml")) == {
        ("base", 32, 16),
        ("mv", 32, 16),
        ("cot", 512, 16),
    }
    assert _spec(reference.gpu_reference("length", ROOT / "params" / "03_length_sweep.yaml")) == {
        ("cot", 64, 16),
        ("cot", 128, 16),
        ("cot", 256, 16),
        ("cot", 512, 16),
    }
    assert _spec(reference.gpu_reference("batch", ROOT / "params" / "05_batch_throughput.yaml")) == {
        ("base", 128, 1),
        ("base", 128, 4),
        ("base", 128, 16),
        ("base", 128, 64),
    }


@committed
def test_committed_label_says_h200_nvml_instant():
    gpu = reference.gpu_reference("power")
    text = reference.label(gpu.runs)
    info = rundir.read_info(COMMITTED / gpu.runs.run_id.iloc[0])
    assert info["hardware"]["gpus"][0]["name"] == "NVIDIA H200"
    assert info["meter"]["devices"][0]["power_source"] == "field_power_instant"
    assert text.startswith(
        "GPU reference: NVIDIA H200, random-weight qwen2.5-7b (7.6 B parameters), transformers, "
        "NVML (energy counter; instant power field)"
    )
    assert text.endswith("hardware only: accuracy not meaningful")


@committed
def test_committed_sentences_match_the_runs():
    # throughput: mean over repetitions of (queries / window seconds), from run.json directly
    qps = {}
    for d in rundir.completed_runs(COMMITTED):
        info = rundir.read_info(d)
        s = info["spec"]
        if s["strategy"] == "base" and s["max_new_tokens"] == 128:
            qps[s["batch_size"]] = np.mean([s["per_level"] / w["time_s"] for w in info["windows"]])
            if s["batch_size"] in (1, 64):
                qps[f"jpt{s['batch_size']}"] = info["energy_j"] / info["completion_tokens"]
    p = reference.panel(reference.gpu_reference("batch"))
    assert (
        f"throughput rose {qps[64] / qps[1]:.0f}× from {qps[1]:.2f} queries/s at batch 1 to {qps[64]:.1f}" in p.sentence
    )
    assert f"fell from {qps['jpt1']:.2f} J to {qps['jpt64']:.3f} J" in p.sentence
    assert "rose 64× from 0.17 queries/s at batch 1 to 11.0 at batch 64" in p.sentence  # as committed

    power = reference.panel(reference.gpu_reference("power"))
    t = power.table.set_index("strategy")
    mv = 100 * (t.mean_power_w["mv"] / t.mean_power_w["base"] - 1)
    assert f"+{mv:.1f} % vs base" in power.sentence and round(mv, 1) == 22.6

    length = reference.panel(reference.gpu_reference("length"))
    e = length.table.set_index("max_new_tokens").energy_per_query_j
    assert f"rose {e[512] / e[64]:.1f}× from {e[64]:.1f} J at 64 tokens to {e[512]:.0f} J at 512" in length.sentence
    for p in (power, length):
        assert "not a verdict" in p.sentence and "held" not in p.sentence
