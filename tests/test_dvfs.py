"""Maliakel et al. [002]'s frequency tables (ttclib.dvfs) on constructed sweeps with known answers, the paper's own
Table XI checked against itself, and a sweep measured end to end on the fake NVML's toy DVFS GPU."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ttclib import dvfs, metrics
from ttclib.metrics import RunSet

CLOCKS = (180, 960, 2842)


def _sweep(
    prefill_s: dict, decode_s: dict, power_w: dict, n: int = 12, reps: int = 2, seed: int = 0, noise: float = 0.0
) -> RunSet:
    """One model at batch 1: queries whose prefill and decode times at each clock are given (scaled
    per query by a length factor) and whose energy is power × time."""
    rng = np.random.default_rng(seed)
    length = rng.uniform(0.5, 2.0, n)
    runs, rows = [], []
    for f in CLOCKS:
        rid = f"r{f}"
        runs.append(
            dict(
                run_id=rid,
                model="m",
                batch_size=1,
                benchmark="b",
                max_new_tokens=100,
                scoring="generate",
                sm_clock_set_mhz=f,
                sm_clock_median_mhz=float(f),
                throttle=None,
                meter="nvml",
            )
        )
        for rep in range(reps):
            for i in range(n):
                jitter = 1 + noise * rng.standard_normal()
                p, d = prefill_s[f] * length[i] * jitter, decode_s[f] * length[i] * jitter
                t0 = 1000.0 * rep + 10 * i
                rows.append(
                    dict(
                        run_id=rid,
                        repetition=rep,
                        query_id=f"q{i}",
                        sample=0,
                        t_start=t0,
                        t_first_token=t0 + p,
                        t_end=t0 + p + d,
                        energy_j=power_w[f] * (p + d),
                        prefill_energy_j=power_w[f] * p,
                        decode_energy_j=power_w[f] * d,
                    )
                )
    return RunSet(pd.DataFrame(runs), pd.DataFrame(rows), pd.DataFrame())


# Prefill compute-bound (time ∝ 1/f above a floor), decode memory-bound (flat), power falling with f.
PREFILL = {180: 0.30, 960: 0.12, 2842: 0.10}
DECODE = {180: 1.00, 960: 0.99, 2842: 1.00}
POWER = {180: 60.0, 960: 70.0, 2842: 120.0}


def test_table_xi_known_answer_and_its_identity():
    data = _sweep(PREFILL, DECODE, POWER)
    t = dvfs.savings(data, low=180)
    (row,) = t.to_dict("records")
    e_low, e_base = 60 * 1.30, 120 * 1.10  # per unit length: power × (prefill + decode)
    assert row["base_mhz"] == 2842 and row["n"] == 24
    assert row["energy_saved_pct"] == pytest.approx(100 * (1 - e_low / e_base))
    assert row["latency_delta_pct"] == pytest.approx(100 * (1.30 / 1.10 - 1))
    assert row["prefill_delta_pct"] == pytest.approx(200.0) and row["decode_delta_pct"] == pytest.approx(0.0, abs=1e-9)
    assert row["prefill_share_pct"] == pytest.approx(100 * 0.10 / 1.10)
    assert row["identity_pct"] == pytest.approx(row["latency_delta_pct"], rel=1e-9)  # exact on totals


@pytest.mark.heavy
def test_table_xi_intervals_cover_the_truth_under_noise():
    """Per-query timing noise (5 %): the paired interval of energy saved covers the true saving in
    about 95 % of 200 simulated sweeps."""
    truth = 100 * (1 - 60 * 1.30 / (120 * 1.10))
    hits = [
        dvfs.savings(_sweep(PREFILL, DECODE, POWER, n=20, seed=s, noise=0.05), low=180).pipe(
            lambda t: t.energy_saved_lo[0] <= truth <= t.energy_saved_hi[0]
        )
        for s in range(200)
    ]
    assert 0.90 <= np.mean(hits) <= 0.99


def test_the_edp_optimum_is_the_argmin_with_its_certainty():
    data = _sweep(PREFILL, DECODE, POWER)
    (row,) = dvfs.edp_optimal(data).to_dict("records")
    edp = {f: POWER[f] * (PREFILL[f] + DECODE[f]) ** 2 for f in CLOCKS}  # ∝ energy × latency
    assert row["frequency_mhz"] == min(edp, key=edp.get) == 960
    assert row["share"] == 1.0 and row["by_repetition"] == [960.0, 960.0]
    assert row["energy_saved_pct"] == pytest.approx(100 * (1 - 70 * 1.11 / (120 * 1.10)))
    close = {**POWER, 960: 60 * 1.30**2 / 1.11**2 * 0.998}  # 960 barely better than 180
    uncertain = dvfs.edp_optimal(_sweep(PREFILL, DECODE, close, noise=0.05, n=30)).iloc[0]
    assert uncertain.share < 0.9  # and the bootstrap says so


def test_phases_and_the_decode_share():
    data = _sweep(PREFILL, DECODE, POWER)
    ph = metrics.phases(data.queries, by=["run_id"]).set_index("run_id")
    assert ph.loc["r2842", "prefill_time_share"] == pytest.approx(0.10 / 1.10)
    assert ph.loc["r2842", "prefill_energy_share"] == pytest.approx(0.10 / 1.10)
    assert ph.loc["r180", "edp_js"] == pytest.approx(ph.loc["r180", "energy_j"] * ph.loc["r180", "latency_s"])
    (row,) = dvfs.phase_summary(data).to_dict("records")
    assert row["frequency_mhz"] == 2842 and row["decode_share_pct"] == pytest.approx(100 / 1.10)


def test_no_locked_clock_is_a_clear_error():
    data = _sweep(PREFILL, DECODE, POWER)
    data.runs["sm_clock_set_mhz"] = None
    with pytest.raises(dvfs.NoSweep, match="no run locks an SM clock"):
        dvfs.savings(data, low=180)


def test_the_energy_vs_frequency_fit_finds_the_dvfs_form():
    """E(f) = 20 + 4000/f + 3e-6·f² with 2 % noise, 7 clocks × 3 repetitions: the physical form wins by
    BIC in most simulations, and its parameters' intervals cover the truth."""
    f = np.repeat(np.array(dvfs.PAPER_FREQUENCIES, float), 3)
    truth = 20 + 4000 / f + 3e-6 * f**2
    wins, covers = 0, 0
    for s in range(100):
        y = truth * (1 + 0.02 * np.random.default_rng(s).standard_normal(f.size))
        fit = dvfs.fit_energy_vs_frequency(pd.DataFrame({"frequency_mhz": f, "energy_j": y}))
        wins += fit.form == "dvfs"
        if fit.form == "dvfs":
            covers += fit.ci["b"][0] <= 4000 <= fit.ci["b"][1]
    assert wins >= 90 and covers >= 0.88 * wins


def test_the_papers_table_xi_is_consistent_and_its_summary_is_not():
    checks = dvfs.paper_table_xi_checks()
    llama1 = checks[(checks.model == "Llama-1B") & (checks.batch_size == 1)].iloc[0]
    assert llama1.identity_pct == pytest.approx(5.66, abs=0.005) and abs(llama1.identity_pct - 5.6) < 0.1
    assert not checks.flagged.any()  # every row obeys the identity
    text = " ".join(dvfs.paper_inconsistencies())
    assert "72.5–90.6 %" in text and "44.8–63.2 %" in text and "throttled" in text
    assert "61–69 % of their time is in a phase that scoring does not have" in text


def test_a_static_batch_is_one_observation():
    """Eight rows that ran as one batch share their prefill: resampling them as eight queries would give a
    falsely narrow interval. One batch has no interval; two batches give one."""
    one = pd.DataFrame(
        {
            "run_id": "r",
            "repetition": 0,
            "query_id": [f"q{i}" for i in range(8)],
            "sample": 0,
            "t_start": 0.0,
            "t_first_token": 1.0,
            "t_end": np.linspace(3, 5, 8),
        }
    )
    share, lo, hi = dvfs.time_share(one)
    assert share == pytest.approx(1 - 8 / one.eval("t_end - t_start").sum()) and np.isnan(lo) and np.isnan(hi)
    two = pd.concat([one, one.assign(repetition=1, t_start=10.0, t_first_token=11.5, t_end=one.t_end + 10)])
    share, lo, hi = dvfs.time_share(two)
    assert lo < share < hi
    assert np.isnan(dvfs.share_ratio(one, two)[1]) and not np.isnan(dvfs.share_ratio(two, two)[1])


def test_the_figures_say_what_measured_them():
    from ttclib import plots

    data = _sweep(PREFILL, DECODE, POWER)
    data.runs = data.runs.assign(
        meter_method="energy_counter", hardware="NVIDIA H200", completion_tokens_per_query=48.0
    )
    table = dvfs.sweep(data)
    fig = plots.frequency_sweep(table, dvfs.savings(data, low=180), data.runs)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "energy per generated token (J) — meter: nvml (energy_counter)" in labels
    assert "NVIDIA H200" in fig._suptitle.get_text()
    power = pd.DataFrame({"t": np.arange(0, 30, 0.1), "power_w": 100.0, "device": "gpu0"})
    fig = plots.phase_split(dvfs.generating(table), power, data.queries, data.runs, trace_run="r2842")
    assert "energy and power: meter: nvml (energy_counter)" in fig._suptitle.get_text()
    assert any(ax.get_ylabel() == "power (W)" for ax in fig.axes)
    assert any("decode share of inference time (%)" == ax.get_ylabel() for ax in fig.axes)


def test_the_paper_grid_dry_run_lists_clocks_and_gpu_hours(capsys):
    """`ttc run params/08_dvfs_phases.yaml --profile paper --dry-run`: 7 clocks x 5 models x 4 datasets x
    3 batch sizes, every run with an estimate; BoolQ and HellaSwag scored by log-likelihood generate nothing."""
    from pathlib import Path

    from ttclib import cli

    params = Path(__file__).resolve().parents[1] / "params" / "08_dvfs_phases.yaml"
    assert cli.main(["run", str(params), "--profile", "paper", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "420 runs" in out and "for 420 of 420 runs" in out and "[no estimate" not in out
    for mhz in dvfs.PAPER_FREQUENCIES:
        assert out.count(f"sm_clock_mhz={mhz}") == 60
    assert out.count("scoring=loglikelihood") == 210 and "log-likelihood scoring: nothing generated" in out
    assert "Qwen/Qwen2.5-32B" in out and "meta-llama/Llama-3.2-3B" in out


def test_table_xiii_by_dataset_and_model_size():
    """Two models (1B and 14B) on two datasets: savings are known per (model, dataset); Table XIII averages
    them by dataset and by size class."""
    parts = []
    for model, size, low_power in (("small", 1e9, 60.0), ("large", 14e9, 48.0)):
        for bench in ("boolq", "truthfulqa"):
            d = _sweep(PREFILL, DECODE, {**POWER, 180: low_power})
            tag = f"{model}-{bench}"
            parts.append(
                RunSet(
                    d.runs.assign(model=model, benchmark=bench, parameters=size, run_id=d.runs.run_id + tag),
                    d.queries.assign(run_id=d.queries.run_id + tag),
                    pd.DataFrame(),
                )
            )
    data = RunSet(
        pd.concat([p.runs for p in parts], ignore_index=True),
        pd.concat([p.queries for p in parts], ignore_index=True),
        pd.DataFrame(),
    )
    t = dvfs.by_dataset_and_size(data, low=180).set_index(["by", "group"])
    saved = {p: 100 * (1 - p * 1.30 / (120 * 1.10)) for p in (60.0, 48.0)}
    assert t.loc[("dataset", "boolq"), "energy_saved_pct"] == pytest.approx((saved[60.0] + saved[48.0]) / 2)
    assert t.loc[("model size", "small (1-3B)"), "energy_saved_pct"] == pytest.approx(saved[60.0])
    assert t.loc[("model size", "large (14-32B)"), "energy_saved_pct"] == pytest.approx(saved[48.0])
    assert t.loc[("model size", "large (14-32B)"), "pairs"] == 2
