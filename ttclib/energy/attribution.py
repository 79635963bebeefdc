"""Who used the energy: a run's windows split over its requests, and the steady-state energy per token.

The rule (``attribute_windows``): each measurement window's energy goes to every request
that was active in it, whether it finished in that window or later; a request that spans
windows accumulates its share of each. Within a window, concurrent requests share the power
equally at every instant (a request's weight is the integral of ``P(t) / n_active(t)`` over its
part of the window), and the weights are scaled to the window's measured energy, so time in
the window when no request ran (the runner preparing the next batch) is charged to the
requests that ran in it. In a static batch (transformers) every sequence starts together and
ends at its last token, so equal-length sequences split the batch's energy equally and the steps
that a finished row still occupies go to the sequences still generating; under continuous
batching (SGLang) a long request is charged for every window it was running in. Energy of a window in
which no request ran at all is *overhead*: spread over all requests in proportion to their
shares, and reported. The engines give no per-token timestamps, so the split is by time, not by
tokens processed.

The steady-state figure (``steady_state``) is the ML.ENERGY benchmark's: joules per output
token over the spans in which the batch is full, which leaves out ramp-up and drain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .measurement import NAN, Measurement
from .trace import integrate_power


def attribute_energy(
    total_j: float,
    trace_t: Sequence[float] | np.ndarray,
    trace_power_w: Sequence[float] | np.ndarray,
    intervals: Sequence[tuple[float, float]] | np.ndarray,
) -> np.ndarray:
    """Split ``total_j`` over queries that ran over (possibly overlapping) intervals.

    Query ``i`` is active over ``[s_i, e_i]``. Its weight is

        w_i = ∫_{s_i}^{e_i} P(t) / n_active(t) dt

    with ``P`` the total sampled power (linearly interpolated between samples, held constant
    beyond them, constant if the trace is empty) and ``n_active(t)`` the number of queries
    active at ``t``: concurrent queries share the power equally. Then
    ``energy_i = total_j * w_i / Σ w`` so the result sums exactly to ``total_j``. If
    ``Σ w == 0`` the split is by interval length, and if all intervals have zero length it
    is equal.

    ``trace_t``/``trace_power_w`` may be the long-format trace of several devices (the
    ``t``/``power_w`` columns of :meth:`~ttclib.energy.Meter.trace`): powers at
    identical timestamps are summed, NaN powers dropped. The computation is vectorised over
    the sorted union of interval ends and sample times: O((n + m) log(n + m)).

    Returns:
        Joules per query, in the order of ``intervals``.

    Example:
        >>> attribute_energy(30.0, [], [], [(0, 2), (1, 3)]).tolist()  # overlap shared
        [15.0, 15.0]
        >>> attribute_energy(30.0, [0, 3], [100, 100], [(0, 1), (0, 3)]).tolist()
        [5.0, 25.0]
    """
    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    n = len(iv)
    if n == 0:
        return np.zeros(0)
    s, e = iv[:, 0], iv[:, 1]
    if np.any(e < s) or not np.all(np.isfinite(iv)):
        raise ValueError("every interval must be finite with end >= start")
    t, p = _total_power(trace_t, trace_power_w)

    b = np.unique(np.concatenate([s, e, t[(t > s.min()) & (t < e.max())]]))
    pb = np.interp(b, t, p) if t.size else np.ones_like(b)
    # active count on each segment [b_k, b_k+1]: started at or before b_k, not ended by b_k
    n_act = np.searchsorted(np.sort(s), b[:-1], "right") - np.searchsorted(np.sort(e), b[:-1], "right")
    seg_j = 0.5 * (pb[:-1] + pb[1:]) * np.diff(b)
    share = np.divide(seg_j, n_act, out=np.zeros_like(seg_j), where=n_act > 0)
    cum = np.concatenate(([0.0], np.cumsum(share)))
    w = cum[np.searchsorted(b, e)] - cum[np.searchsorted(b, s)]

    if not w.sum() > 0:
        w = e - s
    if not w.sum() > 0:
        w = np.ones(n)
    return total_j * w / w.sum()


def _total_power(trace_t: Any, trace_power_w: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique sample times and the power summed over devices at each."""
    t = np.asarray(trace_t, dtype=float).ravel()
    p = np.asarray(trace_power_w, dtype=float).ravel()
    if t.shape != p.shape:
        raise ValueError(f"trace_t and trace_power_w differ in length: {t.size} != {p.size}")
    ok = np.isfinite(t) & np.isfinite(p)
    t, p = t[ok], p[ok]
    tu, inv = np.unique(t, return_inverse=True)
    return tu, np.bincount(inv, weights=p, minlength=tu.size)


#: The rule in one sentence, recorded in every run.json.
RULE = (
    "each window's energy is split over the requests active in it (finished or still running), "
    "sharing power equally among concurrent requests at each instant; a request spanning windows "
    "sums its shares; energy of windows in which no request ran is overhead, spread by share"
)


def _active(starts: np.ndarray, ends: np.ndarray, a: float, b: float) -> np.ndarray:
    """Requests that ran during ``[a, b)`` (a zero-length request counts where it sits)."""
    return ((ends > a) & (starts < b)) | ((ends == starts) & (starts >= a) & (starts < b))


def attribute_windows(
    windows: Sequence[Measurement],
    trace: pd.DataFrame,
    intervals: Sequence[tuple[float, float]] | np.ndarray,
    energy: str | Sequence[str] = "total_j",
) -> tuple[np.ndarray, float | np.ndarray]:
    """Split every window's energy over the requests active in it (the module's rule).

    Args:
        windows: Consecutive measurement windows (``start_s``, ``time_s`` and ``energy``).
        trace: Power samples with columns ``t`` and ``power_w`` (devices summed per timestamp).
        intervals: ``(t_start, t_end)`` of each request, unix seconds.
        energy: Which energy of a window to split: ``"total_j"`` or ``"net_j"``, or several names
            at once (the split is computed once and applied to each).

    Returns:
        (joules per request, in the order of ``intervals``; overhead joules: windows with no request).
        With several names: an array of shape (requests, names) and one overhead per name.

    Example:
        A static batch of three sequences in one window, then one request that spans two windows:

        >>> w = [Measurement("nvml", "energy_counter", 0.0, 10.0, {"gpu0": 300.0}),
        ...      Measurement("nvml", "energy_counter", 10.0, 10.0, {"gpu0": 100.0})]
        >>> shares, overhead = attribute_windows(w, pd.DataFrame({"t": [], "power_w": []}),
        ...                                      [(0, 4), (0, 4), (0, 4), (5, 15)])
        >>> shares.round(2).tolist(), overhead   # the fourth: 5 of window 1's 9 weighted s, and all of window 2
        ([44.44, 44.44, 44.44, 266.67], 0.0)
    """
    names = [energy] if isinstance(energy, str) else list(energy)
    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    starts, ends = iv[:, 0], iv[:, 1]
    shares, overhead = np.zeros((len(iv), len(names))), np.zeros(len(names))
    t = trace["t"].to_numpy(float) if len(trace) else np.zeros(0)
    p = trace["power_w"].to_numpy(float) if len(trace) else np.zeros(0)
    order = np.argsort(t, kind="stable")
    t, p = t[order], p[order]
    for w in windows:
        a, b = w.start_s, w.end_s
        e = np.array([getattr(w, n) for n in names])
        act = _active(starts, ends, a, b)
        if not act.any():
            overhead += e
            continue
        near = slice(np.searchsorted(t, a - 1.0), np.searchsorted(t, b + 1.0, "right"))  # edges shaped by neighbours
        shares[act] += np.outer(attribute_energy(1.0, t[near], p[near], np.clip(iv[act], a, b)), e)
    if overhead.any() and len(iv):
        total = shares.sum(axis=0)
        fraction = np.where(total > 0, shares / np.where(total > 0, total, 1.0), 1 / len(iv))
        shares += fraction * overhead
    if isinstance(energy, str):
        return shares[:, 0], float(overhead[0])
    return shares, overhead


@dataclass(frozen=True)
class SteadyState:
    """Energy per output token while the batch is full (ML.ENERGY's steady-state method).

    Attributes:
        j_per_token: Joules per output token over the full spans (NaN if the batch was never full).
        energy_j: Joules over those spans.
        time_s: Their total length, seconds.
        tokens: Output tokens produced in them (each request's tokens spread evenly over its interval).
        batch_size: The concurrency that counts as full.
    """

    j_per_token: float
    energy_j: float
    time_s: float
    tokens: float
    batch_size: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in self.__dict__.items()}


def full_spans(intervals: np.ndarray, batch_size: int) -> list[tuple[float, float]]:
    """The spans in which at least ``batch_size`` requests were active.

    >>> full_spans(np.array([(0, 4), (1, 5), (2, 3)]), 2)
    [(1.0, 4.0)]
    """
    iv = np.asarray(intervals, float).reshape(-1, 2)
    events = sorted(
        [(s, 1) for s in iv[:, 0]] + [(e, -1) for e in iv[:, 1]], key=lambda x: (x[0], -x[1])
    )  # touching = continuous
    spans, n, since = [], 0, None
    for t, d in events:
        n += d
        if n >= batch_size and since is None:
            since = t
        elif n < batch_size and since is not None:
            if t > since:
                spans.append((float(since), float(t)))
            since = None
    return spans


def steady_state(
    trace: pd.DataFrame,
    intervals: Sequence[tuple[float, float]] | np.ndarray,
    tokens: Sequence[float],
    batch_size: int,
) -> SteadyState:
    """Joules per output token over the spans with a full batch.

    Energy over a span comes from the trace's cumulative counter column ``energy_j`` where every
    device has one, else from integrating ``power_w``.

    Example:
        Two requests of 100 tokens each, overlapping in [1, 2] s at a constant 100 W:

        >>> tr = pd.DataFrame({"t": [0.0, 3.0], "device": "gpu0", "power_w": 100.0, "energy_j": [0.0, 300.0]})
        >>> steady_state(tr, [(0, 2), (1, 3)], [100, 100], 2).j_per_token      # 100 J / (50 + 50) tokens
        1.0
    """
    iv = np.asarray(intervals, float).reshape(-1, 2)
    tok = np.asarray(tokens, float)
    spans = full_spans(iv, batch_size)
    if not spans:
        return SteadyState(NAN, 0.0, 0.0, 0.0, batch_size)
    dur = np.maximum(iv[:, 1] - iv[:, 0], 1e-12)
    energy_j = produced = 0.0
    for a, b in spans:
        energy_j += _span_energy(trace, a, b)
        overlap = np.clip(np.minimum(iv[:, 1], b) - np.maximum(iv[:, 0], a), 0, None)
        produced += float((tok * overlap / dur).sum())
    time_s = sum(b - a for a, b in spans)
    return SteadyState(energy_j / produced if produced > 0 else NAN, energy_j, time_s, produced, batch_size)


def _span_energy(trace: pd.DataFrame, a: float, b: float) -> float:
    total = 0.0
    for _, dev in trace.groupby("device", sort=False):
        dev = dev.sort_values("t")
        t, e = dev["t"].to_numpy(float), dev["energy_j"].to_numpy(float)
        if len(t) > 1 and np.isfinite(e).all() and np.all(np.diff(e) >= 0):
            total += float(np.interp(b, t, e) - np.interp(a, t, e))
        else:
            total += integrate_power(dev["t"].to_numpy(float), dev["power_w"].to_numpy(float), a, b)
    return total


class PhaseShares(NamedTuple):
    """What :func:`attribute_phases` returns: per request (rows) and energy name (columns, or one
    column's values for a single name) its whole share, its prefill and decode parts, and overhead."""

    whole: np.ndarray
    prefill: np.ndarray
    decode: np.ndarray
    overhead: float | np.ndarray


def attribute_phases(
    windows: Sequence[Measurement],
    trace: pd.DataFrame,
    intervals: Sequence[tuple[float, float]] | np.ndarray,
    first_token: Sequence[float] | np.ndarray,
    energy: str | Sequence[str] = "total_j",
) -> PhaseShares:
    """Each request's share (as :func:`attribute_windows` gives it) and its split into prefill (its
    start to its first token) and decode (first token to its end), in one pass: the module's rule
    applied to the two parts as requests of their own.

    The rule shares power among the requests active at each instant, and a request's two parts are
    never active together, so prefill + decode is the request's whole share, exactly. A request
    without a first-token time (NaN) is one part: its whole share is kept, its phases are NaN.

    Example:
        A static batch of two at a constant 100 W: a 1 s prefill they share, then A decodes for 2 s
        beside B and B 2 s more alone:

        >>> w = [Measurement("nvml", "energy_counter", 0.0, 5.0, {"gpu0": 500.0})]
        >>> trace = pd.DataFrame({"t": [0.0, 5.0], "power_w": [100.0, 100.0]})
        >>> s = attribute_phases(w, trace, [(0, 3), (0, 5)], [1.0, 1.0])
        >>> s.prefill.tolist(), s.decode.tolist(), s.whole.tolist()
        ([50.0, 50.0], [100.0, 300.0], [150.0, 350.0])
    """
    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    first = np.asarray(first_token, dtype=float).ravel()
    known = np.isfinite(first)
    n = len(iv)
    # a request without a first token takes its share as one part (the second is empty)
    f = np.clip(np.where(known, first, iv[:, 1]), iv[:, 0], iv[:, 1])
    parts = np.concatenate([np.column_stack([iv[:, 0], f]), np.column_stack([f, iv[:, 1]])])
    shares, overhead = attribute_windows(windows, trace, parts, energy=energy)
    prefill, decode = shares[:n].astype(float), shares[n:].astype(float)
    whole = prefill + decode
    prefill[~known], decode[~known] = NAN, NAN
    return PhaseShares(whole, prefill, decode, overhead)
