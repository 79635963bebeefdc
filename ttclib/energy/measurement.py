"""What one measurement window yields: joules per device, with the meter and method named."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

NAN = float("nan")

#: Flags a window can carry (``Measurement.flags``).
SHORT_WINDOW = "short_window"  # shorter than 10x the counter's update period: quantisation dominates
COUNTER_ERROR = "counter_error"  # the energy counter failed after retries: energy integrated from power


@dataclass(frozen=True)
class Measurement:
    """Energy of one measurement window.

    Attributes:
        meter: Which meter produced it: ``"nvml"``, ``"rapl"`` or ``"estimate"``.
        method: How the energy was obtained: ``"energy_counter"``, ``"power_integration"``,
            ``"rapl_counter"`` or ``"cpu_time_x_tdp"``; ``+``-joined when devices differ (see ``methods``).
        start_s: Unix time (``time.time()``) at which the window began, seconds.
        time_s: Window length, seconds.
        energy_j: Joules per device over the window: ``"gpu0"``, ``"gpu1"``, ... (NVML),
            ``"package-0"``, ``"dram-0"`` (RAPL), ``"cpu"`` (estimate).
        idle_power_w: Idle baseline of the meter's devices, watts summed over them
            (``None`` if never measured; see :meth:`~ttclib.energy.Meter.measure_idle`).
        methods: Method per device (same keys as ``energy_j``).
        flags: Warnings about this window: ``"short_window"``, ``"counter_error"``.

    Example:
        >>> m = Measurement("nvml", "energy_counter", 0.0, 2.0, {"gpu0": 500.0}, 100.0)
        >>> m.total_j, m.net_j, m.mean_power_w, m.end_s
        (500.0, 300.0, 250.0, 2.0)
    """

    meter: str
    method: str
    start_s: float
    time_s: float
    energy_j: dict[str, float]
    idle_power_w: float | None = None
    methods: dict[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()

    @property
    def end_s(self) -> float:
        """Unix time at which the window ended, seconds."""
        return self.start_s + self.time_s

    @property
    def total_j(self) -> float:
        """Energy summed over all devices, joules."""
        return float(sum(self.energy_j.values()))

    @property
    def net_j(self) -> float:
        """Energy above the idle baseline, joules (``total_j`` when the idle power is unknown)."""
        if self.idle_power_w is None:
            return self.total_j
        return self.total_j - self.idle_power_w * self.time_s

    @property
    def mean_power_w(self) -> float:
        """Mean power over the window, watts (NaN for a zero-length window)."""
        return self.total_j / self.time_s if self.time_s > 0 else NAN

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: the fields plus ``total_j``, ``net_j``, ``mean_power_w`` (NaN -> None)."""
        d = asdict(self)
        d.update(flags=list(self.flags), total_j=self.total_j, net_j=self.net_j, mean_power_w=self.mean_power_w)
        return json_clean(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        """The inverse of :meth:`to_dict` (derived keys ignored).

        >>> m = Measurement("rapl", "rapl_counter", 1.0, 2.0, {"package-0": 9.0}, flags=("short_window",))
        >>> Measurement.from_dict(m.to_dict()) == m
        True
        """
        return cls(
            meter=d["meter"],
            method=d["method"],
            start_s=d["start_s"],
            time_s=d["time_s"],
            energy_j=dict(d["energy_j"]),
            idle_power_w=d.get("idle_power_w"),
            methods=dict(d.get("methods") or {}),
            flags=tuple(d.get("flags") or ()),
        )


def json_clean(x: Any) -> Any:
    """Recursively turn NaN/inf floats into None and numpy scalars into Python ones."""
    if isinstance(x, dict):
        return {str(k): json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
