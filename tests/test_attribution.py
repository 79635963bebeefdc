"""Known-answer tests of per-request energy: constructed schedules whose shares are computed by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ttclib.energy import Measurement, attribute_energy, attribute_windows, full_spans, steady_state

NO_TRACE = pd.DataFrame({"t": [], "power_w": []})


def _window(start: float, end: float, joules: float, idle_w: float | None = None) -> Measurement:
    return Measurement("nvml", "energy_counter", start, end - start, {"gpu0": joules}, idle_w)


def _checkpoints_every(n: int, yields: list[float], start: float) -> list[float]:
    """Window edges of a runner that checkpoints after every n completions (yield times sorted)."""
    return [start] + [yields[i] for i in range(n - 1, len(yields), n)] + ([yields[-1]] if len(yields) % n else [])


def test_static_batches_of_15_cut_by_windows_of_16_share_equally():
    """The review's case: MV samples come in batches of 15 while the runner checkpoints every 16
    completions. Every batch costs 25 J, so every completion costs 25/15 J, whichever window it
    was returned in (the old rule gave one completion 25.19 J and many 0 J)."""
    batches = [(k * 1.0, k + 1.0) for k in range(4)]
    intervals = [b for b in batches for _ in range(15)]
    yields = [end for _, end in intervals]  # a batch's completions arrive at its end
    edges = _checkpoints_every(16, yields, 0.0)
    assert edges == [0.0, 2.0, 3.0, 4.0, 4.0]  # windows cut through batches 2 and 3
    windows = [_window(a, b, 25.0 * (b - a)) for a, b in itertools.pairwise(edges)]
    shares, overhead = attribute_windows(windows, NO_TRACE, intervals)
    assert overhead == 0.0
    np.testing.assert_allclose(shares, 25.0 / 15, rtol=1e-9)


def test_continuous_batching_schedule_with_known_power():
    """Four requests under continuous batching, power 100 W until t=4 then 200 W, windows cut at
    t=3 and t=6. Concurrent requests share power equally at each instant:
    A [0,10]: 100 (with B) + 100 (with C) + 600 (with D) = 800 J; B [0,2] 100; C [2,4] 100; D [4,10] 600.
    The old rule (a window to the requests returned in it, clipped) gave A far less."""
    intervals = [(0, 10), (0, 2), (2, 4), (4, 10)]
    trace = pd.DataFrame({"t": [0.0, 4.0 - 1e-9, 4.0, 10.0], "power_w": [100.0, 100.0, 200.0, 200.0]})
    windows = [_window(0, 3, 300.0), _window(3, 6, 500.0), _window(6, 10, 800.0)]
    shares, _ = attribute_windows(windows, trace, intervals)
    np.testing.assert_allclose(shares, [800.0, 100.0, 100.0, 600.0], atol=1e-3)
    assert shares.sum() == pytest.approx(1600.0)


def test_long_request_is_charged_for_windows_before_it_finished():
    """A long request finishing in the last window still gets its share of the earlier ones."""
    intervals = [(0.0, 9.0)] + [(k, k + 1.0) for k in range(9)]  # 1 long, 9 short, 100 W
    windows = [_window(a, a + 3, 300.0) for a in (0.0, 3.0, 6.0)]
    shares, _ = attribute_windows(windows, NO_TRACE, intervals)
    np.testing.assert_allclose(shares, [450.0] + [50.0] * 9)


def test_window_without_requests_is_overhead_spread_by_share():
    intervals = [(0, 1), (0, 1), (2, 3)]
    windows = [_window(0, 1, 20.0), _window(1, 2, 8.0), _window(2, 3, 10.0)]  # nothing runs in [1, 2]
    shares, overhead = attribute_windows(windows, NO_TRACE, intervals)
    assert overhead == 8.0
    np.testing.assert_allclose(shares, [10 + 8 * 10 / 30, 10 + 8 * 10 / 30, 10 + 8 * 10 / 30])
    assert shares.sum() == pytest.approx(38.0)


def test_net_energy_split_like_total():
    intervals = [(0, 2), (1, 2)]
    windows = [_window(0, 2, 300.0, idle_w=50.0)]  # net = 300 - 50 * 2 = 200
    net, _ = attribute_windows(windows, NO_TRACE, intervals, energy="net_j")
    np.testing.assert_allclose(net, [200 * 1.5 / 2, 200 * 0.5 / 2])


def test_attribute_energy_follows_power():
    """Two back-to-back requests, the second at three times the power: it gets three quarters."""
    shares = attribute_energy(400.0, [0, 1 - 1e-9, 1, 2], [100, 100, 300, 300], [(0, 1), (1, 2)])
    np.testing.assert_allclose(shares, [100.0, 300.0], rtol=1e-6)


def test_full_spans_and_steady_state_known_answer():
    """Three full static batches of 4 (10 tokens each, 1 s, 100 W) and a final half batch: the
    steady state counts the full batches only: 300 J / 120 tokens = 2.5 J/token, while the run's
    average is 400 J / 140 tokens."""
    intervals = [(k, k + 1.0) for k in range(3) for _ in range(4)] + [(3.0, 4.0)] * 2
    tokens = [10] * len(intervals)
    assert full_spans(np.array(intervals), 4) == [(0.0, 3.0)]
    trace = pd.DataFrame({"t": [0.0, 4.0], "device": "gpu0", "power_w": 100.0, "energy_j": [0.0, 400.0]})
    ss = steady_state(trace, intervals, tokens, batch_size=4)
    assert ss.j_per_token == pytest.approx(2.5)
    assert (ss.energy_j, ss.time_s, ss.tokens) == pytest.approx((300.0, 3.0, 120.0))
    no_counter = trace.assign(energy_j=np.nan)  # integrated power gives the same
    assert steady_state(no_counter, intervals, tokens, 4).j_per_token == pytest.approx(2.5)
    never_full = steady_state(trace, intervals, tokens, batch_size=5)
    assert np.isnan(never_full.j_per_token) and never_full.to_dict()["j_per_token"] is None


def test_total_and_net_split_in_one_pass_match_separate_splits():
    intervals = [(0, 2), (1, 2), (3, 4)]
    windows = [_window(0, 2, 300.0, idle_w=50.0), _window(2, 3, 40.0, idle_w=50.0), _window(3, 4, 90.0, idle_w=50.0)]
    both, overheads = attribute_windows(windows, NO_TRACE, intervals, energy=("total_j", "net_j"))
    for k, name in enumerate(("total_j", "net_j")):
        one, overhead = attribute_windows(windows, NO_TRACE, intervals, energy=name)
        np.testing.assert_allclose(both[:, k], one)
        assert overheads[k] == pytest.approx(overhead)
    assert overheads.tolist() == [40.0, -10.0]  # the empty window's gross and net (40 - 50 W x 1 s)


def test_phases_of_a_continuous_batch_with_known_power():
    """Hand-computed shares. Power 100 W for 0-4 s, 300 W for 4-8 s; two windows 0-4 and 4-8 (400 J,
    1200 J). A: prefill 0-1, decode 1-6. B: prefill 2-3 (beside A's decode), decode 3-8. C (no
    first-token time, an engine that does not say) runs 5-7: it takes its share but gets no phases.
    Window 1 (100 W): 0-1 A alone 100 J to A's prefill; 1-2 A alone 100 J to A's decode; 2-3 A
    and B share: 50 J each (A decode, B prefill); 3-4: 50 J each (A decode, B decode).
    Window 2 (300 W): 4-5 A, B: 150 each; 5-6 A, B, C: 100 each; 6-7 B, C: 150 each; 7-8 B: 300."""
    from ttclib.energy import attribute_phases

    w = [
        Measurement("nvml", "energy_counter", 0.0, 4.0, {"gpu0": 400.0}),
        Measurement("nvml", "energy_counter", 4.0, 4.0, {"gpu0": 1200.0}),
    ]
    trace = pd.DataFrame({"t": [0.0, 3.999999, 4.0, 8.0], "power_w": [100.0, 100.0, 300.0, 300.0]})
    split = attribute_phases(w, trace, [(0, 6), (2, 8), (5, 7)], [1.0, 3.0, np.nan])
    pre, dec = split.prefill, split.decode
    assert pre[:2] == pytest.approx([100.0, 50.0], abs=0.1)
    assert dec[:2] == pytest.approx([100 + 50 + 50 + 150 + 100, 50 + 150 + 100 + 150 + 300], abs=0.1)
    assert np.isnan(pre[2]) and np.isnan(dec[2])
    whole, _ = attribute_windows(w, trace, [(0, 6), (2, 8), (5, 7)])
    assert (pre + dec)[:2] == pytest.approx(whole[:2], rel=1e-12) and whole[2] == pytest.approx(250.0, abs=0.1)
    assert split.whole == pytest.approx(whole, rel=1e-12)  # the one pass gives the whole shares too
