"""The power trace: timestamped samples per device, stored once, read as a tidy DataFrame.

A sampler that polls faster than the hardware updates reads the same values again. Such
repeats are dropped, except the last of a run of repeats, which is kept once a new value
arrives: so linear interpolation between kept samples is the same as between all of them.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence

import numpy as np
import pandas as pd

NAN = float("nan")

#: Columns of :attr:`~ttclib.energy.trace.Trace.frame` (and of ``power.parquet``), in order.
TRACE_COLUMNS = (
    "t",  # unix time of the sample, seconds
    "device",  # "gpu0", "package-0", "dram-0", "cpu"
    "power_w",  # watts
    "energy_j",  # cumulative meter counter, joules since the meter started (NaN if none)
    "sm_clock_mhz",
    "mem_clock_mhz",
    "temp_c",
    "util_pct",  # GPU: utilisation; CPU estimate: % of all logical CPUs used by the process tree
    "mem_util_pct",
    "throttle_reasons",  # NVML clock event/throttle reason bitmask; 0 where not available
)


def _same(a: tuple, b: tuple) -> bool:
    """Equal readings (NaN equals NaN)."""
    return all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


class Trace:
    """Thread-safe, append-only store of samples, one row per device per sweep.

    Example:
        >>> tr = Trace()
        >>> for t, w in [(0.0, 100.0), (1.0, 100.0), (2.0, 100.0), (3.0, 300.0)]:
        ...     tr.append(t, [("gpu0", w, NAN, NAN, NAN, NAN, NAN, NAN, 0)])
        >>> tr.frame().t.tolist()           # the repeat at t=1 is dropped, its last (t=2) kept
        [0.0, 2.0, 3.0]
        >>> tr.duplicates, tr.integrate("gpu0", 0.0, 3.0)
        (1, 400.0)
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rows: list[tuple] = []
        self._last: dict[str, tuple] = {}  # device -> last reading appended
        self._pending: dict[str, tuple] = {}  # device -> last repeat not yet appended
        self._power: dict[str, tuple[list[float], list[float]]] = {}
        self.duplicates = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows) + len(self._pending)

    def append(self, t: float, rows: Sequence[tuple]) -> None:
        """Add one sweep: ``rows`` are ``TRACE_COLUMNS`` without ``t``, one per device."""
        with self._lock:
            for row in rows:
                dev, reading = row[0], tuple(row[1:])
                if dev in self._last and _same(self._last[dev], reading):
                    self._pending[dev] = (t, *row)
                    self.duplicates += 1
                    continue
                if dev in self._pending:
                    self._add(self._pending.pop(dev))
                    self.duplicates -= 1
                self._add((t, *row))
                self._last[dev] = reading

    def _add(self, row: tuple) -> None:
        self._rows.append(row)
        ts, ws = self._power.setdefault(row[1], ([], []))
        ts.append(row[0])
        ws.append(row[2])

    def frame(self, start_s: float | None = None, end_s: float | None = None) -> pd.DataFrame:
        """Samples with ``start_s <= t <= end_s`` (all by default), in time order.

        Returns:
            Exactly the columns ``TRACE_COLUMNS``; columns a meter cannot fill are NaN,
            ``throttle_reasons`` is int64 with 0 where not available.
        """
        with self._lock:
            # Rows arrive in time order; walk back from the end so a recent window costs
            # O(window), not O(run), on long runs checkpointed many times.
            first = len(self._rows)
            while start_s is not None and first > 0 and self._rows[first - 1][0] >= start_s:
                first -= 1
            rows = self._rows[0 if start_s is None else first :] + sorted(self._pending.values())
        df = pd.DataFrame(rows, columns=list(TRACE_COLUMNS))
        df = df.astype({c: "float64" for c in TRACE_COLUMNS if c not in ("device", "throttle_reasons")})
        df["device"] = df["device"].astype(str)
        df["throttle_reasons"] = pd.to_numeric(df["throttle_reasons"], errors="coerce").fillna(0).astype("int64")
        keep = np.ones(len(df), bool)
        if start_s is not None:
            keep &= df["t"].to_numpy() >= start_s
        if end_s is not None:
            keep &= df["t"].to_numpy() <= end_s
        return df[keep].sort_values("t", kind="stable").reset_index(drop=True)

    def integrate(self, device: str, t0: float, t1: float) -> float:
        """Trapezoid integral of ``device``'s power over ``[t0, t1]``, joules.

        Power is linearly interpolated at the edges and held constant beyond the first/last
        sample. NaN when the device has no power sample at all.
        """
        with self._lock:
            ts, ws = self._power.get(device, ([], []))
            if device in self._pending:
                ts, ws = ts + [self._pending[device][0]], ws + [self._pending[device][2]]
            lo = max(bisect.bisect_left(ts, t0) - 1, 0)
            hi = min(bisect.bisect_right(ts, t1) + 1, len(ts))
            t, p = np.asarray(ts[lo:hi], float), np.asarray(ws[lo:hi], float)
        return integrate_power(t, p, t0, t1)


def integrate_power(t: np.ndarray, p: np.ndarray, t0: float, t1: float) -> float:
    """Trapezoid integral over ``[t0, t1]`` of power samples ``p`` at times ``t`` (sorted), joules.

    Power is linearly interpolated at the edges and held constant beyond the first/last
    sample; NaN samples are skipped. NaN when no sample is left.

    >>> integrate_power(np.array([0.0, 2.0]), np.array([100.0, 300.0]), 1.0, 3.0)
    550.0
    """
    ok = np.isfinite(p)
    t, p = t[ok], p[ok]
    if t.size == 0:
        return NAN
    x = np.concatenate(([t0], t[(t > t0) & (t < t1)], [t1]))
    return float(np.trapezoid(np.interp(x, t, p), x))
