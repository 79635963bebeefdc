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
    input_tokens=None,
    ignore_eos=False,
    prompt_tokens=10,
    util_pct=None,
) -> Path:
    """One complete run directory: ``len(rep_s)`` repetitions of ``queries`` queries, each repetition
    one energy window of ``rep_s[i]`` seconds in which every query used ``energy_per_query[i]`` J (or,
    a sequence, query q used its q-th value); each query's prompt ``prompt_tokens`` long (or its q-th
    value); a flat power trace at ``power_w``. With ``util_pct``, the trace holds that flat utilisation
    and the queries their start and end times (query q from t = 1 + q to 2 + q, inside the trace)."""
    d = root / run_id
    d.mkdir(parents=True)
    rows, windows = [], []
    per_query = lambda v, q: v[q] if np.ndim(v) else v  # noqa: E731
    for rep, (secs, e) in enumerate(zip(rep_s, energy_per_query, strict=True)):
        windows.append({"segment": rep, "time_s": secs, "total_j": float(np.sum(np.broadcast_to(e, queries)))})
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
                        prompt_tokens=per_query(prompt_tokens, q),
                        completion_tokens=max_new_tokens,
                        finish_reason="length",
                        answer="1",
                        answer_class=0,
                        gold="2",
                        correct=False,
                        segment=rep,
                        energy_j=per_query(e, q) / samples,
                        net_energy_j=per_query(e, q) / samples / 2,
                        meter=meter,
                        **({"t_start": 1.0 + q, "t_end": 2.0 + q} if util_pct is not None else {}),
                    )
                )
    pd.DataFrame(rows).to_parquet(d / rundir.QUERIES_PARQUET)
    n_t = 20
    trace = pd.DataFrame({"t": np.arange(n_t, dtype=float), "device": "gpu0", "power_w": power_w})
    if util_pct is not None:
        trace["util_pct"] = float(util_pct)
    trace.to_parquet(d / rundir.POWER_PARQUET)
    energy = float(sum(np.sum(np.broadcast_to(e, queries)) for e in energy_per_query))
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
            "input_tokens": input_tokens,
            "ignore_eos": ignore_eos,
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


# Wilhelm et al. [001]'s operating curves (notebook 06) at batch 1, as params/gpu_check.yaml measures them:
# Figure 1 on the prompts as they are, an input sweep at one output token, an output sweep at 256 input tokens.
# Energy per query is exactly E_in(prompt tokens) at one output token and E_in(256) + E_out(out - 1) after;
# the first repetition reads WOBBLE more and the second WOBBLE less, so the fits have residuals while the
# mean at each point (and so each least-squares fit) stays exact.
FIG1_PROMPTS = (19, 39, 79, 159)  # prompt tokens of the four Figure 1 prompts
INPUTS, OUTPUTS, AT = (256, 1024, 4096), (8, 32, 128), 256
WOBBLE = 0.01
CURVES = {  # model -> (E_in(n), E_out(k) for k = out - 1, utilisation %)
    "random:test-7b": (lambda n: 1 + 0.01 * n + 1e-6 * n**2, lambda k: 0.05 * k, 80.0),  # quadratic in, linear out
    "random:test-1b": (lambda n: 0.5 + 0.002 * n, lambda k: 0.02 * k + 1e-3 * k**2, 40.0),  # linear in, quadratic out
}


def write_curves(root: Path, model: str, tag: str, output_sweep: bool = True) -> list[str]:
    """The curve runs of ``model`` (run ids ``tag-…``); returns their ids."""
    e_in, e_out, util = CURVES[model]
    common = dict(model=model, strategy="base", batch_size=1, ignore_eos=True, util_pct=util, rep_s=(1.0, 1.0))
    wobble = lambda e: (np.multiply(e, 1 + WOBBLE), np.multiply(e, 1 - WOBBLE))  # noqa: E731
    prompts = np.array(FIG1_PROMPTS)
    write_run(
        root,
        f"{tag}-fig1",
        max_new_tokens=1,
        queries=4,
        prompt_tokens=prompts,
        energy_per_query=wobble(e_in(prompts)),
        **common,
    )
    for n in INPUTS:
        write_run(
            root,
            f"{tag}-in{n}",
            max_new_tokens=1,
            input_tokens=n,
            prompt_tokens=n,
            queries=4,
            energy_per_query=wobble(e_in(n)),
            **common,
        )
    if output_sweep:
        for out in OUTPUTS:
            write_run(
                root,
                f"{tag}-out{out}",
                max_new_tokens=out,
                input_tokens=AT,
                prompt_tokens=AT,
                queries=2,
                energy_per_query=wobble(e_in(AT) + e_out(out - 1)),
                **common,
            )
    return [f"{tag}-fig1", *(f"{tag}-in{n}" for n in INPUTS), *(f"{tag}-out{o}" for o in OUTPUTS if output_sweep)]


@pytest.fixture
def curves_folder(folder):
    """``folder`` (power shapes, a length sweep, a batch sweep of base 128 tokens from batch 1) and the curve
    runs of two models: random:test-7b, the batch sweep's model, whose output sweep reaches 128 tokens at
    batch 1 like the batch sweep's first run, and random:test-1b."""
    write_curves(folder, "random:test-7b", "c7")
    write_curves(folder, "random:test-1b", "c1")
    return folder


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
    assert reference.select(runs, "dvfs") == []  # no sm_clock_set_mhz column: nothing locked (this raised)
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


def _curve_table(with_output_sweep=True) -> pd.DataFrame:
    """A runs table: model m's curve runs (Figure 1, input sweep, output sweep), its batch sweep of 128 tokens
    from batch 1, a length sweep and two shapes at batch 4; model n's input sweep and Figure 1 run alone."""
    rows = [dict(run_id="f1", max_new_tokens=1)]
    rows += [dict(run_id=f"i{n}", max_new_tokens=1, input_tokens=n) for n in INPUTS]
    rows += [dict(run_id=f"o{k}", max_new_tokens=k, input_tokens=AT, ignore_eos=True) for k in OUTPUTS][
        : 3 if with_output_sweep else 0
    ]
    rows += [dict(run_id=f"b{b}", max_new_tokens=128, batch_size=b, ignore_eos=True) for b in (1, 4, 16)]
    rows += [dict(run_id=f"l{k}", strategy="cot", max_new_tokens=k, budget=64, batch_size=4) for k in (16, 32, 64)]
    rows += [
        dict(run_id="s-base", max_new_tokens=64, batch_size=4),
        dict(run_id="s-mv", strategy="mv", samples=3, batch_size=4),
    ]
    rows += [dict(run_id="n1", model="n", max_new_tokens=1)]
    rows += [dict(run_id=f"n{n}", model="n", max_new_tokens=1, input_tokens=n) for n in INPUTS]
    defaults = dict(model="m", strategy="base", samples=1, budget=None, batch_size=1, input_tokens=None)
    return pd.DataFrame([{**defaults, "ignore_eos": False, "max_new_tokens": 8, **r} for r in rows])


def test_curve_runs_belong_to_curves_alone():
    runs = _curve_table()
    curve = ["f1", "i256", "i1024", "i4096", "o8", "o32", "o128"]
    assert reference.select(runs, "batch") == ["b1", "b4", "b16"]  # o128 (128 tokens at batch 1) not among them
    assert reference.select(runs, "curves") == curve  # model n has no output sweep: not a curve model
    assert reference.select(runs, "length") == ["l16", "l32", "l64"]
    assert reference.select(runs, "power") == ["l64", "s-base", "s-mv"]
    # n's runs are curve runs too (batch 1, one token or input_tokens): in no section
    for section in ("power", "length", "batch", "dvfs"):
        assert not set(reference.select(runs, section)) & {*curve, "n1", "n256", "n1024", "n4096"}, section
    # without the output sweep (or one output length, two input lengths, no Figure 1) m makes no curves
    assert reference.select(_curve_table(with_output_sweep=False), "curves") == []
    assert reference.select(runs[runs.run_id != "o32"], "curves") == [r for r in curve if r != "o32"]  # 2 lengths do
    assert reference.select(runs[~runs.run_id.isin(["o32", "o128"])], "curves") == []
    assert reference.select(runs[runs.run_id != "f1"], "curves") == []
    assert reference.select(runs[runs.run_id != "i1024"], "curves") == []
    # a clock lock takes a run out of the curves (into dvfs, given a second clock): two input lengths are left
    locked = runs.assign(sm_clock_set_mhz=[990.0 if r == "i1024" else np.nan for r in runs.run_id])
    assert reference.select(locked, "curves") == []
    # a table without input_tokens or ignore_eos: every prompt as it is, no output sweep, no curves; the
    # output runs are then plain batch-1 runs of fixed lengths (o128 joins the batch sweep at 128 tokens)
    bare = runs.drop(columns=["input_tokens", "ignore_eos"])
    assert reference.select(bare, "curves") == []
    assert reference.select(bare, "batch") == ["o128", "b1", "b4", "b16"]


def test_curves_select_by_spec(curves_folder):
    # the other sections as without the curve runs (c7-out128 is 128 tokens at batch 1 like b-01, but no batch
    # sweep's); the batch sweep's batch-1 run (no input_tokens) is no curve run
    assert ids(reference.gpu_reference("batch", runs_dir=curves_folder)) == ["b-01", "b-02", "b-04", "b-08", "b-16"]
    assert ids(reference.gpu_reference("length", runs_dir=curves_folder)) == ["l-16", "l-32", "l-64"]
    assert ids(reference.gpu_reference("power", runs_dir=curves_folder)) == ["l-64", "p-base", "p-mv"]
    curve = sorted(reference.gpu_reference("curves", runs_dir=curves_folder).runs.run_id)
    assert curve == sorted(
        [f"{t}-{r}" for t in ("c1", "c7") for r in ("fig1", "in256", "in1024", "in4096", "out8", "out32", "out128")]
    )
    assert reference.gpu_reference("dvfs", runs_dir=curves_folder) is None


def test_curves_without_an_output_sweep_are_no_reference(folder):
    write_curves(folder, "random:test-7b", "c7", output_sweep=False)
    assert ids(reference.gpu_reference("batch", runs_dir=folder)) == ["b-01", "b-02", "b-04", "b-08", "b-16"]
    assert ids(reference.gpu_reference("power", runs_dir=folder)) == ["l-64", "p-base", "p-mv"]
    assert reference.gpu_reference("curves", runs_dir=folder) is None


def test_curves_panel_known_answers(curves_folder):
    from ttclib import fits, metrics, report

    gpu = reference.gpu_reference("curves", runs_dir=curves_folder)
    p = reference.panel(gpu)
    seven, one = "random:test-7b", "random:test-1b"
    t = p.table.assign(input_tokens=p.table.input_tokens.fillna(0)).set_index(
        ["model", "input_tokens", "max_new_tokens"]
    )
    assert len(t) == 14 and t.index.is_unique and p.table.input_tokens.isna().sum() == 2  # 0: Figure 1, unset
    assert t.index[t.index.get_level_values("model") == seven].tolist() == [
        (seven, 0, 1),
        (seven, 256, 1),
        (seven, 256, 8),
        (seven, 256, 32),
        (seven, 256, 128),
        (seven, 1024, 1),
        (seven, 4096, 1),
    ]  # Figure 1 first, then by input and output tokens
    for model, (e_in, e_out, util) in CURVES.items():
        fig1 = t.loc[(model, 0, 1)]
        assert (fig1.queries, fig1.repetitions, fig1.completion_tokens) == (4, 2, 1)
        assert fig1.prompt_tokens == np.mean(FIG1_PROMPTS) and fig1.run_id == f"c{model[-2]}-fig1"
        assert np.isclose(fig1.energy_per_query_j, np.mean([e_in(x) for x in FIG1_PROMPTS]))
        e = sum(e_in(x) for x in FIG1_PROMPTS)
        assert np.isclose(fig1.energy_per_processed_token_j, e / sum(x + 1 for x in FIG1_PROMPTS))
        for n in INPUTS:
            r = t.loc[(model, n, 1)]
            assert r.prompt_tokens == n and np.isclose(r.energy_per_query_j, e_in(n))
            assert np.isclose(r.energy_per_processed_token_j, e_in(n) / (n + 1))
        for k in OUTPUTS:
            r = t.loc[(model, AT, k)]
            assert (r.queries, r.completion_tokens) == (2, k)
            assert np.isclose(r.energy_per_query_j, e_in(AT) + e_out(k - 1))
            assert np.isclose(r.energy_per_processed_token_j, (e_in(AT) + e_out(k - 1)) / (AT + k))
        assert (t.loc[model].mean_util_pct == util).all() and (t.loc[model].meter == "nvml").all()

    # the fits: exact on the means (each repetition's wobble cancels), the form chosen by BIC
    fit = p.curves[(seven, "input")]
    assert fit.form == "quadratic" and np.allclose(list(fit.params.values()), [1, 0.01, 1e-6], rtol=1e-6)
    assert p.curves[(seven, "output")].form == "linear"
    assert np.isclose(p.curves[(seven, "output")].params["b"], 0.05)
    assert p.curves[(one, "input")].form == "linear" and p.curves[(one, "output")].form == "quadratic"
    assert set(p.curves) == {(m, side) for m in CURVES for side in ("input", "output")}

    # the sentence: computed per-token energies (mean over the Figure 1 prompts, with its CI), forms, utilisation
    assert p.sentence.startswith("GPU reference on NVIDIA TestGPU (meter: nvml (energy_counter); power: power usage")
    assert "hardware only, not a verdict" in p.sentence and "held" not in p.sentence
    assert "energy per processed token over the 4 arithmetic prompts (one output token) was " in p.sentence
    for model, (e_in, _, util) in CURVES.items():
        per_prompt = [e_in(x) / (x + 1) for x in FIG1_PROMPTS]
        _, lo, hi = fits.mean_ci(per_prompt * 2)  # both repetitions: their wobble cancels in the mean, not the CI
        assert f"{model} {np.mean(per_prompt):.3g} J (95 % CI {lo:.3g} J–{hi:.3g} J)" in p.sentence
        assert f"{model} {util:.0f} %" in p.sentence
    quad = p.curves[(seven, "input")].candidates.set_index("form").delta_bic["linear"]
    assert quad > report.NONLINEAR_DBIC
    lin = p.curves[(one, "input")].candidates.set_index("form").delta_bic.drop("linear").min()
    assert lin < report.NONLINEAR_DBIC  # one parameter more, the same residuals: ΔBIC ln n, no clear verdict
    inputs, outputs = p.sentence.split("energy per query vs input tokens (one output token), form by BIC: ")[1].split(
        "energy per query vs output tokens (256 input tokens), form by BIC: "
    )
    assert f"{seven} quadratic, ΔBIC {quad:.1f} to linear (linear loses by ΔBIC > 10: nonlinear)" in inputs
    assert (
        f"{one} linear, ΔBIC {lin:.1f} to the best nonlinear form (margin within ΔBIC 10: not clearly nonlinear)"
        in inputs
    )
    assert f"{one} quadratic, ΔBIC " in outputs and f"{seven} linear, ΔBIC " in outputs
    assert "mean GPU utilisation (NVML) while generating: random:test-1b 40 %, random:test-7b 80 %." in outputs

    # notebook 06's own sentence names the benchmark it ran: MT-Bench word for word, as committed
    results = gpu.results
    fig1 = results[(results.max_new_tokens == 1) & results.input_tokens.isna()]
    per_token = metrics.mean_by(fig1, "energy_per_processed_token_j")
    estimator = fits.EnergyEstimator.from_results(results)
    util = metrics.utilisation(gpu)
    text = report.operating_curves(fig1.assign(benchmark="mtbench"), per_token, estimator, util, gpu.runs)
    assert "energy per processed token over the 4 MT-Bench prompts (one output token, batch 1): " in text
    assert "over the 4 arithmetic prompts" in report.operating_curves(fig1, per_token, estimator, util, gpu.runs)


@pytest.mark.heavy
def test_show_draws_the_curves(curves_folder, tmp_path, capsys):
    p = reference.show(reference.gpu_reference("curves", runs_dir=curves_folder), tmp_path)
    name = reference.SECTIONS["curves"]
    assert name == "fig1-4_operating_curves_gpu"
    assert (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}.svg").exists()
    out = capsys.readouterr().out
    assert p.caption in out and p.sentence in out and "energy/query ~ input tokens [random:test-7b]" in out
    svg = (tmp_path / f"{name}.svg").read_text()
    assert "GPU reference: NVIDIA TestGPU" in svg and "arithmetic prompts" in svg and "MT-Bench" not in svg


@pytest.mark.heavy
def test_show_draws_and_saves_each_section(folder, tmp_path, capsys):
    for section, name in reference.SECTIONS.items():
        if section == "dvfs":  # no run here locks a clock (the dvfs panel: tests/test_clocks.py)
            assert reference.gpu_reference(section, runs_dir=folder) is None
            continue
        if section == "curves":  # no curve runs here (test_show_draws_the_curves)
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
def test_committed_runs_have_no_curves():
    # no committed run is at batch 1 with one output token or a set input length: no curve runs yet
    assert reference.gpu_reference("curves", ROOT / "params" / "06_operating_curves.yaml") is None
    assert reference.gpu_reference("curves") is None


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
