"""Wilhelm et al. [001]'s MMLU trade-off (Table 1), its router and token budgets, and the computed sentences of
sections 06/07 — on constructed results with hand-computed answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ttclib import fits, report, tradeoff

PARAMS = Path(__file__).resolve().parents[1] / "params"
CATS = ["Computer Science", "Math", "Natural Sciences", "Economics", "Humanities", "Health", "Sociology", "Engineering"]
HARD = {"Math", "Engineering", "Computer Science"}


def _results(n=20, cot_tokens=200):
    """8 categories × n queries; small (s) and large (l) answer in one token, s also with MV(4) and CoT.
    Large is right on every query of the hard categories, small on a quarter (CoT on half); elsewhere
    all on half."""
    rows = []
    for cat in CATS:
        for i in range(n):
            q = f"{cat}/{i}"
            prompt = 100 + 10 * (i % 5)
            small_ok = (i % 4 == 0) if cat in HARD else (i % 2 == 0)
            large_ok = True if cat in HARD else (i % 2 == 0)
            common = dict(subset=cat, query_id=q, batch_size=1, run_id="r")
            rows += [
                dict(
                    common,
                    model="s",
                    strategy="base",
                    correct=small_ok,
                    energy_j=1.0 + 0.01 * prompt,
                    prompt_tokens=prompt,
                    completion_tokens=1,
                    samples=1,
                ),
                dict(
                    common,
                    model="l",
                    strategy="base",
                    correct=large_ok,
                    energy_j=3.0 + 0.03 * prompt,
                    prompt_tokens=prompt,
                    completion_tokens=1,
                    samples=1,
                ),
                dict(
                    common,
                    model="s",
                    strategy="mv",
                    correct=small_ok,
                    energy_j=4 * (1.0 + 0.01 * prompt),
                    prompt_tokens=4 * prompt,
                    completion_tokens=4,
                    samples=4,
                ),
                dict(
                    common,
                    model="s",
                    strategy="cot",
                    correct=small_ok or (cat in HARD and i % 4 == 1),
                    energy_j=1.0 + 0.01 * prompt + 0.5 * (cot_tokens - 1),
                    prompt_tokens=prompt,
                    completion_tokens=cot_tokens,
                    samples=1,
                ),
            ]
    return pd.DataFrame(rows)


def _estimator():
    """Exact linear curves: small E = 1 + 0.01·in + 0.5·(out − 1); large E = 3 + 0.03·in + 1.5·(out − 1)."""
    rows, rng = [], np.random.default_rng(1)
    for model, (a, b, c) in {"s": (1.0, 0.01, 0.5), "l": (3.0, 0.03, 1.5)}.items():
        for n in np.repeat([64, 128, 256, 512], 4):
            rows.append(
                dict(
                    model=model,
                    max_new_tokens=1,
                    ignore_eos=False,
                    prompt_tokens=n,
                    completion_tokens=1,
                    energy_j=a + b * n + rng.normal(0, 1e-4),
                )
            )
        for out in np.repeat([16, 32, 64, 128], 4):
            rows.append(
                dict(
                    model=model,
                    max_new_tokens=out,
                    ignore_eos=True,
                    prompt_tokens=64,
                    completion_tokens=out,
                    energy_j=a + b * 64 + c * (out - 1) + rng.normal(0, 1e-4),
                )
            )
    return fits.EnergyEstimator.from_results(pd.DataFrame(rows).assign(batch_size=1, run_id="c"))


def test_table_1_changes_are_the_hand_computed_ones_with_paired_intervals():
    t = tradeoff.table(_results(), {"model": "s", "strategy": "base"}, n_boot=300).set_index(
        ["subset", "model", "strategy"]
    )
    # Math: small right on 5 of 20, large on 20 -> +300 % accuracy; energy 3x at every prompt -> +200 %, no spread
    big = t.loc[("Math", "l", "base")]
    assert big.accuracy == 1.0 and big.d_accuracy_pct == pytest.approx(300.0)
    assert big.d_energy_pct == pytest.approx(200.0) and big.d_energy_pct_lo == pytest.approx(200.0)
    assert big.d_accuracy_pct_lo < 300 < big.d_accuracy_pct_hi  # resampled queries move the accuracy ratio
    assert t.loc[("Humanities", "l", "base")].d_accuracy_pct == pytest.approx(0.0)
    mv = t.loc[("All", "s", "mv")]
    assert mv.d_energy_pct == pytest.approx(300.0) and mv.n == 160  # 4 samples, each with its prefill
    base = t.loc[("All", "s", "base")]
    assert base.d_energy_pct == 0 and base.accuracy_lo < base.accuracy < base.accuracy_hi
    with pytest.raises(ValueError, match="baseline .* not among"):
        tradeoff.table(_results(), {"model": "x", "strategy": "base"})


def test_the_router_sends_the_hard_categories_to_the_large_model_and_scores_on_held_out_queries():
    router = tradeoff.route(
        _results(n=40), _estimator(), {"model": "l", "strategy": "base"}, tolerance=0.05, n_boot=300
    )
    went = router.routing.table.set_index("subset")[["model", "strategy"]].agg(" ".join, axis=1).to_dict()
    assert {c for c, m in went.items() if m == "l base"} == HARD
    assert {c for c, m in went.items() if m == "s base"} == set(CATS) - HARD
    assert router.routing.n == 160  # the held-out half only
    assert set(router.energy.source) == {"operating curves"}
    saved = router.saved.set_index("quantity").loc["saved"]
    assert 0 < saved.lo <= saved.value <= saved.hi < 1
    c = router.compared.set_index("policy")
    assert {"router", "always s base", "always l base", "always s mv", "always s cot"} == set(c.index)
    # held out: 80 queries; always-large costs 3 + 0.03·in, the router pays that only on the three hard categories
    assert c.energy_per_query_j["router"] < c.energy_per_query_j["always l base"]
    assert c.accuracy["router"] == pytest.approx(c.accuracy["always l base"])  # easy ones: small is as good
    text = report.category_router(
        router, "s", "l", pd.DataFrame({"hardware": ["cpu"], "meter": ["estimate"], "meter_method": ["cpu_time_x_tdp"]})
    )
    assert "always s base" in text and "always l base" in text
    assert "agrees with the paper's assignment in 6 of 6" in text and "held here" in text


def test_budgets_and_mv_prices_follow_the_curves():
    est = _estimator()
    b = tradeoff.budgets(est, "s", "l", [110]).iloc[0]
    # large one-token answer at 110 tokens: 3 + 3.3 = 6.3 J; small: 1 + 1.1 + 0.5·(out − 1) <= 6.3 -> out <= 9.4
    assert b.large_one_token_j == pytest.approx(6.3, abs=1e-3) and b.small_tokens_within == 9
    prices = tradeoff.mv_prices(_results(), est, "s", samples=[16]).set_index(["samples", "prefill"])
    # MV: 4 samples of one token after 120 tokens on average: own prefill 4 × 2.2 J; shared: 2.2 J
    assert prices.energy_j[(4, "own")] == pytest.approx(8.8, abs=1e-2)
    assert prices.energy_j[(4, "shared")] == pytest.approx(2.2, abs=1e-2)
    assert prices.change_pct[(16, "own")] == pytest.approx(1500, abs=1) and prices.change_pct[
        (16, "shared")
    ] == pytest.approx(0, abs=1)
    assert tradeoff.mv_prices(_results(), est, "nobody") is None


def test_the_headline_sentences_decide_by_interval():
    runs = pd.DataFrame({"hardware": ["cpu"], "meter": ["estimate"], "meter_method": ["cpu_time_x_tdp"]})
    t = tradeoff.table(_results(cot_tokens=271), {"model": "s", "strategy": "base"}, n_boot=300)
    text = report.mmlu_tradeoff(t, "s", "l", runs, tradeoff.mv_prices(_results(), _estimator(), "s", samples=[16]))
    # CoT: (2.2 + 135) / 2.2 = 62x, outside 120-150; large +200 % energy, outside +35-65 %; MV +300 %
    assert "CoT costs 120-150× the energy of a direct answer (small model) did not hold here: 62×" in text
    assert "more accurate for +35-65 % energy did not hold here" in text
    assert "majority vote costs +72-177 % energy did not hold here" in text
    assert "16 samples: +1500 % with a prefill per sample, +0 % with one shared prefill" in text


def test_the_paper_table_is_checked_against_itself():
    bad = tradeoff.paper_inconsistencies().set_index(["subset", "config"])
    assert ("Math", "Llama 8B") in bad.index and ("Math", "Llama 1B CoT") in bad.index
    assert ("Computer Science", "Llama 8B") not in bad.index  # .56 / .38 = +47 %, as printed


def test_nonlinear_is_decided_by_bic_both_ways():
    rng = np.random.default_rng(3)
    x = np.repeat([16.0, 64, 128, 256, 512, 1024], 6)
    quad = fits.fit_energy_vs_input(
        pd.DataFrame({"prompt_tokens": x, "energy_j": 1 + 1e-3 * x + 4e-6 * x**2 + rng.normal(0, 0.02, x.size)})
    )
    lin = fits.fit_energy_vs_input(
        pd.DataFrame({"prompt_tokens": x, "energy_j": 1 + 1e-3 * x + rng.normal(0, 1e-4, x.size)})
    )
    assert report._nonlinear(quad)[0] == "held"
    assert report._nonlinear(lin)[0] in ("did not hold", "inconclusive")
    assert report._nonlinear(fits.Unfitted("c", "too few"))[0] == "inconclusive"


def test_the_paper_profiles_dry_run_list_the_grid_and_its_gpu_hours(capsys):
    from ttclib import cli

    assert cli.main(["run", str(PARAMS / "07_mmlu_tradeoff.yaml"), "--profile", "paper", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 runs" in out and out.count("meta-llama/Llama-3.2-1B-Instruct") == 3 and "Llama-3.1-8B-Instruct" in out
    assert "mv    mmlu_letter samples=16 max_new_tokens=1 batch=1" in out and "cot   mmlu max_new_tokens=512" in out
    assert "for 4 of 4 runs" in out and "[no estimate" not in out
    assert cli.main(["run", str(PARAMS / "06_operating_curves.yaml"), "--profile", "paper", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "70 runs" in out and "for 70 of 70 runs" in out and "input_tokens=4096" in out
