"""Measure the energy of a block of code: GPU (NVML), CPU package (RAPL), or an estimate.

Three meters share one API, modelled on Zeus's ``ZeusMonitor``: open a named window
with [`begin_window`][ttclib.energy.Meter.begin_window], close it with
[`end_window`][ttclib.energy.Meter.end_window], and get a
[`Measurement`][ttclib.energy.Measurement] back. Windows may overlap and nest.

- [`NvmlMeter`][ttclib.energy.NvmlMeter]: NVIDIA GPUs through ``pynvml``
  (package ``nvidia-ml-py``). Energy from the total-energy counter (Volta and newer),
  else from trapezoid integration of sampled power. Summed over the GPUs it covers.
- [`RaplMeter`][ttclib.energy.RaplMeter]: CPU package and DRAM energy from the Linux
  powercap (RAPL) counters, wraparound handled.
- [`EstimateMeter`][ttclib.energy.EstimateMeter]: **not a measurement**. CPU seconds of
  this process tree times a per-core power derived from the CPU's TDP. The last resort,
  and labelled as such everywhere it appears.

[`select_meter`][ttclib.energy.select_meter] picks the best one available;
[`attribute_energy`][ttclib.energy.attribute_energy] splits a run's energy over
concurrent queries using the power trace.

Every meter can also run a background sampler (``start_sampling``) that records a
power/clock/temperature trace, returned by ``trace()`` as a tidy DataFrame.

Example:
    >>> import time
    >>> from ttclib.energy import EstimateMeter
    >>> with EstimateMeter(per_core_w=10.0, sample_interval_s=0.05) as meter:
    ...     meter.begin_window("work")
    ...     _ = sum(i * i for i in range(200_000))
    ...     m = meter.end_window("work")
    >>> m.meter, m.method
    ('estimate', 'cpu_time_x_tdp')
    >>> m.total_j >= 0.0
    True
"""

from __future__ import annotations

import bisect
import inspect
import math
import os
import platform
import re
import statistics
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "CPU_TDP",
    "DEFAULT_PER_CORE_W",
    "TRACE_COLUMNS",
    "Measurement",
    "Meter",
    "NvmlMeter",
    "RaplMeter",
    "EstimateMeter",
    "select_meter",
    "available_meters",
    "attribute_energy",
]

NAN = float("nan")

#: Columns of [`Meter.trace`][ttclib.energy.Meter.trace], in order.
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

# ---------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """Energy of one measurement window.

    Attributes:
        meter: Which meter produced it: ``"nvml"``, ``"rapl"`` or ``"estimate"``.
        method: How the energy was obtained: ``"energy_counter"``, ``"power_integration"``,
            ``"rapl_counter"`` or ``"cpu_time_x_tdp"``. When devices of one window used
            different methods they are joined with ``+``
            (e.g. ``"energy_counter+power_integration"``); see ``methods``.
        start_s: Unix time (``time.time()``) at which the window began, seconds.
        time_s: Window length, seconds.
        energy_j: Joules per device over the window: ``"gpu0"``, ``"gpu1"``, ... (NVML),
            ``"package-0"``, ``"dram-0"`` (RAPL), ``"cpu"`` (estimate).
        idle_power_w: Idle baseline of the meter's devices, watts summed over them
            (``None`` if never measured; see [`Meter.measure_idle`][ttclib.energy.Meter.measure_idle]).
        methods: Method per device (same keys as ``energy_j``).

    Example:
        >>> m = Measurement("nvml", "energy_counter", 0.0, 2.0, {"gpu0": 500.0}, 100.0)
        >>> m.total_j, m.net_j, m.mean_power_w
        (500.0, 300.0, 250.0)
    """

    meter: str
    method: str
    start_s: float
    time_s: float
    energy_j: dict[str, float]
    idle_power_w: float | None = None
    methods: dict[str, str] = field(default_factory=dict)

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
        d.update(total_j=self.total_j, net_j=self.net_j, mean_power_w=self.mean_power_w)
        return _json_clean(d)


def _json_clean(x: Any) -> Any:
    """Recursively turn NaN/inf floats into None and numpy scalars into Python ones."""
    if isinstance(x, dict):
        return {str(k): _json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass
class _Window:
    start_s: float
    counters: dict[str, float | None]


# ---------------------------------------------------------------------------------------
# Meter base class
# ---------------------------------------------------------------------------------------


class Meter(ABC):
    """Base class of the energy meters: measurement windows, idle baseline, sampler.

    Subclasses provide ``devices`` and three hooks: ``_read_energy`` (cumulative joules per
    device since the meter started, or ``None`` for a device without a counter, whose energy
    is then integrated from sampled power), ``_sample`` (one trace row per device) and
    ``_describe_devices``.

    The sampler is a daemon thread that calls ``_sample`` every ``sample_interval_s``. It never
    raises (errors are counted in ``describe()["sampler"]``) and stops promptly. It is started
    by ``start_sampling()``, or automatically by ``begin_window`` when the meter needs it for
    correctness (power integration, counter wraparound, short-lived child processes); an
    automatically started sampler stops again when the last window closes.

    Example:
        >>> from ttclib.energy import EstimateMeter
        >>> meter = EstimateMeter(per_core_w=5.0)
        >>> meter.begin_window("outer"); meter.begin_window("inner")
        >>> inner = meter.end_window("inner"); outer = meter.end_window("outer")
        >>> outer.time_s >= inner.time_s
        True
        >>> meter.close()
    """

    name: str = ""
    #: Method used by devices that have a counter.
    counter_method: str = ""

    def __init__(self, sample_interval_s: float = 0.1) -> None:
        """Set up windows and sampler state.

        Args:
            sample_interval_s: Period of the background sampler, seconds.
        """
        if not sample_interval_s > 0:
            raise ValueError(f"sample_interval_s must be > 0, got {sample_interval_s!r}")
        self.sample_interval_s = float(sample_interval_s)
        self.idle_power_w: float | None = None
        self.devices: list[str] = []
        self._windows: dict[str, _Window] = {}
        self._lock = threading.RLock()
        self._rows: list[tuple] = []
        self._power_t: dict[str, list[float]] = {}
        self._power_w: dict[str, list[float]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._auto_sampling = False
        self._sampler_errors = 0
        self._sampler_last_error: str | None = None
        self._sampler_cpu_s = 0.0
        self._closed = False

    # -- hooks -------------------------------------------------------------------------

    @abstractmethod
    def _read_energy(self) -> dict[str, float | None]:
        """Cumulative energy per device since the meter started, joules (None: no counter)."""

    @abstractmethod
    def _sample(self) -> list[tuple]:
        """One row per device: ``TRACE_COLUMNS`` without ``t``."""

    @abstractmethod
    def _describe_devices(self) -> list[dict[str, Any]]:
        """Static facts per device for ``describe()``."""

    def _describe_extra(self) -> dict[str, Any]:
        """Meter-specific entries for ``describe()``."""
        return {}

    def _needs_sampler(self) -> bool:
        """Whether open windows need the sampler running to be correct."""
        return bool(self._integrated_devices())

    def _integrated_devices(self) -> list[str]:
        """Devices whose energy comes from integrating sampled power."""
        return []

    def _close(self) -> None:
        """Release meter resources (after the sampler stopped)."""

    # -- windows -----------------------------------------------------------------------

    @property
    def method(self) -> str:
        """The meter's method(s), ``+``-joined when devices differ."""
        methods = [self.counter_method] * (len(self.devices) - len(self._integrated_devices()))
        methods += ["power_integration"] * len(self._integrated_devices())
        return "+".join(dict.fromkeys(methods)) or self.counter_method

    def begin_window(self, key: str) -> None:
        """Open the measurement window ``key``.

        Args:
            key: Unique name among the currently open windows.

        Raises:
            ValueError: A window with this name is already open.
        """
        self._check_open()
        if key in self._windows:
            raise ValueError(f"Measurement window {key!r} is already open")
        if self._needs_sampler() and not self.sampling:
            self.start_sampling()
            self._auto_sampling = True
        if self._integrated_devices():
            self._sample_now()
        counters = self._read_energy()
        self._windows[key] = _Window(start_s=time.time(), counters=counters)

    def end_window(self, key: str) -> Measurement:
        """Close the measurement window ``key`` and return its energy.

        Raises:
            KeyError: No window named ``key`` is open.
        """
        try:
            win = self._windows.pop(key)
        except KeyError:
            raise KeyError(
                f"No open measurement window {key!r} on the {self.name} meter; "
                f"open windows: {sorted(self._windows)}"
            ) from None
        counters = self._read_energy()
        end_s = time.time()
        if self._integrated_devices():
            self._sample_now()
        energy, methods = {}, {}
        for dev in self.devices:
            c0, c1 = win.counters.get(dev), counters.get(dev)
            if c0 is not None and c1 is not None:
                energy[dev], methods[dev] = c1 - c0, self.counter_method
            else:
                energy[dev] = self._integrate(dev, win.start_s, end_s)
                methods[dev] = "power_integration"
        if self._auto_sampling and not self._windows:
            self.stop_sampling()
        return Measurement(
            meter=self.name,
            method="+".join(dict.fromkeys(methods.values())),
            start_s=win.start_s,
            time_s=end_s - win.start_s,
            energy_j=energy,
            idle_power_w=self.idle_power_w,
            methods=methods,
        )

    def measure_idle(self, seconds: float = 5.0) -> float:
        """Measure the idle baseline: sleep ``seconds`` inside a window.

        Call it while nothing else runs on the devices. The result (watts, summed over the
        devices) is stored in ``idle_power_w`` and attached to later measurements, whose
        ``net_j`` then subtracts it.

        Returns:
            Idle power, watts.
        """
        key = f"__idle__{id(self)}_{time.monotonic_ns()}"
        self.begin_window(key)
        time.sleep(seconds)
        m = self.end_window(key)
        self.idle_power_w = m.total_j / m.time_s if m.time_s > 0 else NAN
        return self.idle_power_w

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"The {self.name} meter is closed")

    def _integrate(self, dev: str, t0: float, t1: float) -> float:
        """Trapezoid integral of the sampled power of ``dev`` over ``[t0, t1]``, joules.

        Power is linearly interpolated at the window edges (held constant beyond the
        first/last sample). NaN when the device has no power sample at all.
        """
        with self._lock:
            ts, ws = self._power_t.get(dev, []), self._power_w.get(dev, [])
            lo = max(bisect.bisect_left(ts, t0) - 1, 0)
            hi = min(bisect.bisect_right(ts, t1) + 1, len(ts))
            t, p = np.asarray(ts[lo:hi], float), np.asarray(ws[lo:hi], float)
        ok = np.isfinite(p)
        t, p = t[ok], p[ok]
        if t.size == 0:
            return NAN
        x = np.concatenate(([t0], t[(t > t0) & (t < t1)], [t1]))
        return float(np.trapezoid(np.interp(x, t, p), x))

    # -- sampler -----------------------------------------------------------------------

    @property
    def sampling(self) -> bool:
        """Whether the background sampler is running."""
        return self._thread is not None and self._thread.is_alive()

    def start_sampling(self) -> None:
        """Start the background sampler (idempotent)."""
        self._check_open()
        self._auto_sampling = False
        if self.sampling:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._sampler_loop, name=f"ttclib-{self.name}-sampler", daemon=True
        )
        self._thread.start()

    def stop_sampling(self) -> None:
        """Stop the background sampler (idempotent); returns once the thread has exited."""
        self._auto_sampling = False
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=max(5.0, 5 * self.sample_interval_s))

    def _sampler_loop(self) -> None:
        cpu0 = time.thread_time()
        next_t = time.monotonic()
        while not self._stop.is_set():
            self._sample_now()
            self._sampler_cpu_s += time.thread_time() - cpu0
            cpu0 = time.thread_time()
            next_t += self.sample_interval_s
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind (e.g. suspended): do not try to catch up
                next_t, delay = time.monotonic(), 0.0
            self._stop.wait(delay)

    def _sample_now(self) -> None:
        """Take one sample of every device and append it to the trace; never raises."""
        try:
            with self._lock:
                t0 = time.time()
                rows = self._sample()
                t = 0.5 * (t0 + time.time())  # one timestamp per sweep, mid-sweep
                for row in rows:
                    self._rows.append((t, *row))
                    self._power_t.setdefault(row[0], []).append(t)
                    self._power_w.setdefault(row[0], []).append(row[1])
        except Exception as err:  # noqa: BLE001 - the sampler must never die
            self._sampler_errors += 1
            self._sampler_last_error = f"{type(err).__name__}: {err}"

    def trace(self, start_s: float | None = None, end_s: float | None = None) -> pd.DataFrame:
        """All samples so far (optionally only those with ``start_s <= t <= end_s``).

        Returns:
            A DataFrame with exactly the columns ``TRACE_COLUMNS``; columns the meter
            cannot fill are NaN, ``throttle_reasons`` is int64 with 0 where not available.
        """
        with self._lock:
            # Rows are appended in time order; walk back from the end so a recent window costs
            # O(window), not O(run), on long runs checkpointed many times.
            first = len(self._rows)
            if start_s is not None:
                while first > 0 and self._rows[first - 1][0] >= start_s:
                    first -= 1
            else:
                first = 0
            rows = self._rows[first:]
        df = pd.DataFrame(rows, columns=list(TRACE_COLUMNS))
        df = df.astype({c: "float64" for c in TRACE_COLUMNS if c not in ("device", "throttle_reasons")})
        df["device"] = df["device"].astype(str)
        df["throttle_reasons"] = (
            pd.to_numeric(df["throttle_reasons"], errors="coerce").fillna(0).astype("int64")
        )
        if start_s is not None:
            df = df[df["t"] >= start_s]
        if end_s is not None:
            df = df[df["t"] <= end_s]
        return df.reset_index(drop=True)

    # -- description / lifecycle ---------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """JSON-friendly facts about the meter, its devices, and the sampler's health."""
        d: dict[str, Any] = {
            "meter": self.name,
            "method": self.method,
            "devices": self._describe_devices(),
            "sample_interval_s": self.sample_interval_s,
            "counter_update_period_s": getattr(self, "counter_update_period_s", None),
            "idle_power_w": self.idle_power_w,
            "sampler": {
                "running": self.sampling,
                "samples": len(self._rows),
                "errors": self._sampler_errors,
                "last_error": self._sampler_last_error,
                "cpu_s": self._sampler_cpu_s,
            },
        }
        d.update(self._describe_extra())
        return _json_clean(d)

    def close(self) -> None:
        """Stop the sampler and release the meter's resources (idempotent)."""
        if self._closed:
            return
        self.stop_sampling()
        self._closed = True
        self._close()

    def __enter__(self) -> "Meter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(devices={self.devices}, method={self.method!r})"


# ---------------------------------------------------------------------------------------
# NVML
# ---------------------------------------------------------------------------------------


def _decode(x: Any) -> Any:
    return x.decode() if isinstance(x, bytes) else x


def _visible_gpus(count: int) -> tuple[list[int], str | None]:
    """NVML indices visible to CUDA (``CUDA_VISIBLE_DEVICES`` when it lists integers)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return list(range(count)), None
    items = [s.strip() for s in env.split(",") if s.strip()]
    if not all(re.fullmatch(r"\d+", s) for s in items):
        return list(range(count)), f"CUDA_VISIBLE_DEVICES={env!r} is not a list of integers; ignored"
    visible = []
    for s in items:  # CUDA stops at the first invalid index
        if int(s) >= count:
            break
        visible.append(int(s))
    return visible, None


class NvmlMeter(Meter):
    """Energy of NVIDIA GPUs through NVML, summed over the GPUs it covers.

    Per GPU, energy comes from the total-energy counter
    (``nvmlDeviceGetTotalEnergyConsumption``, millijoules, Volta and newer). Where that is
    not supported, from trapezoid integration of ``nvmlDeviceGetPowerUsage`` sampled by the
    background sampler, which ``begin_window`` then starts. At start the meter measures the
    counter's update period (typically 10-100 ms): windows much shorter than that are not
    meaningful. Note that ``nvmlDeviceGetPowerUsage`` is a 1 s moving average on H100 but
    instantaneous on A100, so the power trace is smoother on the former.

    GPU indices are CUDA's (``CUDA_VISIBLE_DEVICES`` is honoured when it lists integers);
    devices are named ``gpu0``, ``gpu1``, ... by those indices.

    Example:
        ```python
        from ttclib.energy import NvmlMeter
        with NvmlMeter(gpus=[0]) as meter:
            meter.measure_idle(5)
            meter.start_sampling()
            meter.begin_window("generate")
            run_the_benchmark()
            m = meter.end_window("generate")
            print(m.total_j, m.net_j, m.method)
            power = meter.trace()
        ```
    """

    name = "nvml"
    counter_method = "energy_counter"

    def __init__(
        self,
        gpus: Sequence[int] | None = None,
        sample_interval_s: float = 0.1,
        counter_probe_s: float = 1.5,
    ) -> None:
        """Initialise NVML and find the GPUs.

        Args:
            gpus: CUDA indices of the GPUs to measure; default all visible ones.
            sample_interval_s: Period of the background sampler, seconds.
            counter_probe_s: At most this long is spent measuring the energy counter's update
                period at start (0 skips it).

        Raises:
            RuntimeError: NVML cannot be initialised or sees no GPU.
        """
        super().__init__(sample_interval_s)
        try:
            import pynvml  # lazily: tests inject a fake through sys.modules
        except ImportError as err:
            raise RuntimeError(f"pynvml (package nvidia-ml-py) is not importable: {err}") from err
        self._nvml = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as err:
            raise RuntimeError(f"nvmlInit failed: {err} (no NVIDIA driver?)") from err
        self._initialized = True
        try:
            self._setup(gpus, counter_probe_s)
        except pynvml.NVMLError as err:
            self._close()
            raise RuntimeError(f"NVML query failed: {err}") from err
        except BaseException:
            self._close()
            raise

    def _setup(self, gpus: Sequence[int] | None, counter_probe_s: float) -> None:
        nv = self._nvml
        visible, self._cvd_note = _visible_gpus(nv.nvmlDeviceGetCount())
        if not visible:
            raise RuntimeError("NVML sees no GPU (check CUDA_VISIBLE_DEVICES and the driver)")
        cuda_idx = list(range(len(visible))) if gpus is None else [int(g) for g in gpus]
        if not cuda_idx:
            raise RuntimeError("no GPU selected (gpus=[])")
        bad = [g for g in cuda_idx if not 0 <= g < len(visible)]
        if bad:
            raise RuntimeError(f"GPU indices {bad} out of range: {len(visible)} GPU(s) visible")
        self._cuda_idx = cuda_idx
        self._nvml_idx = [visible[g] for g in cuda_idx]
        self._handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in self._nvml_idx]
        self.devices = [f"gpu{g}" for g in cuda_idx]
        self._counter0: dict[str, float | None] = {}
        for dev, h in zip(self.devices, self._handles):
            try:
                self._counter0[dev] = nv.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0
            except nv.NVMLError:
                self._counter0[dev] = None
        self._clock_reasons = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nv, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        self.counter_update_period_s = self._probe_counter_period(counter_probe_s)

    def _integrated_devices(self) -> list[str]:
        return [d for d, c in self._counter0.items() if c is None]

    def _probe_counter_period(self, max_s: float, changes: int = 6) -> float | None:
        """Median interval between changes of the first counter-capable GPU's energy counter."""
        devs = [i for i, d in enumerate(self.devices) if self._counter0[d] is not None]
        if not devs or max_s <= 0:
            return None
        h, nv = self._handles[devs[0]], self._nvml
        last, seen = nv.nvmlDeviceGetTotalEnergyConsumption(h), []
        deadline = time.monotonic() + max_s
        while time.monotonic() < deadline and len(seen) < changes:
            time.sleep(0.001)
            v = nv.nvmlDeviceGetTotalEnergyConsumption(h)
            if v != last:
                seen.append(time.monotonic())
                last = v
        if len(seen) < 2:
            return None
        return float(statistics.median(np.diff(seen)))

    def _try(self, fn: Callable | None, *args: Any) -> Any:
        """Call an NVML function; NaN when it is missing or not supported on this GPU."""
        if fn is None:
            return NAN
        try:
            return fn(*args)
        except self._nvml.NVMLError:
            return NAN

    def _read_energy(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for dev, h in zip(self.devices, self._handles):
            c0 = self._counter0[dev]
            out[dev] = None if c0 is None else self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0 - c0
        return out

    def _sample(self) -> list[tuple]:
        nv, rows = self._nvml, []
        for dev, h in zip(self.devices, self._handles):
            c0 = self._counter0[dev]
            energy = NAN if c0 is None else self._try(nv.nvmlDeviceGetTotalEnergyConsumption, h) / 1000.0 - c0
            util = self._try(nv.nvmlDeviceGetUtilizationRates, h)
            throttle = self._try(self._clock_reasons, h)
            rows.append((
                dev,
                self._try(nv.nvmlDeviceGetPowerUsage, h) / 1000.0,
                energy,
                self._try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
                self._try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM),
                self._try(getattr(nv, "nvmlDeviceGetTemperature", None), h, nv.NVML_TEMPERATURE_GPU),
                NAN if isinstance(util, float) else util.gpu,
                NAN if isinstance(util, float) else util.memory,
                0 if isinstance(throttle, float) else int(throttle),
            ))
        return rows

    def _describe_devices(self) -> list[dict[str, Any]]:
        nv, out = self._nvml, []
        for dev, g, i, h in zip(self.devices, self._cuda_idx, self._nvml_idx, self._handles):
            limit = self._try(nv.nvmlDeviceGetPowerManagementLimit, h)
            out.append({
                "name": dev,
                "index": g,
                "nvml_index": i,
                "model": _decode(self._try(nv.nvmlDeviceGetName, h)),
                "uuid": _decode(self._try(nv.nvmlDeviceGetUUID, h)),
                "power_limit_w": limit / 1000.0,
                "method": "power_integration" if self._counter0[dev] is None else "energy_counter",
            })
        return out

    def _describe_extra(self) -> dict[str, Any]:
        return {
            "driver_version": _decode(self._try(self._nvml.nvmlSystemGetDriverVersion)),
            "counter_update_period_s": self.counter_update_period_s,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "cuda_visible_devices_note": self._cvd_note,
        }

    def _close(self) -> None:
        if getattr(self, "_initialized", False):
            self._initialized = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass


# ---------------------------------------------------------------------------------------
# RAPL
# ---------------------------------------------------------------------------------------


@dataclass
class _RaplZone:
    device: str
    path: Path
    max_uj: int
    last_uj: int
    acc_uj: int = 0  # accumulated since the meter started, wraparound unfolded

    def read(self) -> float:
        """Unfold wraparound and return joules since the meter started."""
        raw = int((self.path / "energy_uj").read_text())
        delta = raw - self.last_uj
        if delta < 0:  # the counter wrapped at max_energy_range_uj
            delta += self.max_uj
        self.acc_uj += delta
        self.last_uj = raw
        return self.acc_uj / 1e6


class RaplMeter(Meter):
    """CPU package and DRAM energy from the Linux powercap RAPL counters.

    Reads ``<root>/intel-rapl:N/energy_uj`` (device ``package-N``) and its ``dram``
    subzone (device ``dram-N``) wherever readable; AMD CPUs expose the same interface.
    Counter wraparound at ``max_energy_range_uj`` is unfolded; the sampler (started by
    ``begin_window``) keeps reading so that no more than one wrap happens between reads.
    On recent kernels ``energy_uj`` is readable by root only.

    Example:
        ```python
        from ttclib.energy import RaplMeter
        with RaplMeter() as meter:
            meter.begin_window("x")
            work()
            print(meter.end_window("x").energy_j)   # {'package-0': ..., 'dram-0': ...}
        ```
    """

    name = "rapl"
    counter_method = "rapl_counter"

    def __init__(self, root: str | os.PathLike = "/sys/class/powercap", sample_interval_s: float = 0.1) -> None:
        """Find the readable RAPL zones under ``root``.

        Raises:
            RuntimeError: No readable RAPL zone (missing, or permission denied).
        """
        super().__init__(sample_interval_s)
        self.root = Path(root)
        self._zones, self._skipped = self._discover()
        if not self._zones:
            why = "; ".join(self._skipped) or f"no intel-rapl:N zone under {self.root}"
            raise RuntimeError(f"No readable RAPL zone: {why}")
        self.devices = [z.device for z in self._zones]
        self._last_sample: dict[str, tuple[float, float]] = {}

    def _discover(self) -> tuple[list[_RaplZone], list[str]]:
        zones, skipped = [], []
        if not self.root.is_dir():
            return zones, [f"{self.root} does not exist"]
        pkgs = sorted(
            (p for p in self.root.iterdir() if re.fullmatch(r"intel-rapl:\d+", p.name)),
            key=lambda p: int(p.name.split(":")[1]),
        )
        for pkg in pkgs:
            n = pkg.name.split(":")[1]
            name = _read_text(pkg / "name") or f"package-{n}"
            if not name.startswith("package"):  # e.g. "psys" (platform) would double count
                skipped.append(f"{pkg.name} ({name}) is not a package zone")
                continue
            candidates = [(name, pkg)]
            candidates += [
                (f"dram-{n}", sub)
                for sub in sorted(pkg.glob(f"intel-rapl:{n}:*"))
                if _read_text(sub / "name") == "dram"
            ]
            for dev, path in candidates:
                zone = self._open_zone(dev, path, skipped)
                if zone is not None:
                    zones.append(zone)
        return zones, skipped

    @staticmethod
    def _open_zone(dev: str, path: Path, skipped: list[str]) -> _RaplZone | None:
        try:
            raw = int((path / "energy_uj").read_text())
        except (OSError, ValueError) as err:
            skipped.append(f"{path}/energy_uj unreadable ({type(err).__name__}: {err})")
            return None
        max_uj = _read_text(path / "max_energy_range_uj")
        return _RaplZone(dev, path, int(max_uj) if max_uj else 2**32, raw)

    def _needs_sampler(self) -> bool:
        return True  # keep reading so a wraparound is never missed

    def _read_energy(self) -> dict[str, float | None]:
        with self._lock:
            return {z.device: z.read() for z in self._zones}

    def _sample(self) -> list[tuple]:
        t, rows = time.time(), []
        for dev, e in self._read_energy().items():
            t_prev, e_prev = self._last_sample.get(dev, (NAN, NAN))
            power = (e - e_prev) / (t - t_prev) if t > t_prev else NAN
            self._last_sample[dev] = (t, e)
            rows.append((dev, power, e, NAN, NAN, NAN, NAN, NAN, 0))
        return rows

    def _describe_devices(self) -> list[dict[str, Any]]:
        return [
            {"name": z.device, "index": i, "path": str(z.path), "max_energy_range_uj": z.max_uj}
            for i, z in enumerate(self._zones)
        ]

    def _describe_extra(self) -> dict[str, Any]:
        return {"root": str(self.root), "cpu_model": cpu_model(), "skipped": self._skipped}


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


# ---------------------------------------------------------------------------------------
# Estimate
# ---------------------------------------------------------------------------------------

#: CPU model substring -> (TDP watts, physical cores), vendors' published figures. Matched
#: case-insensitively against the model name without "(R)"/"(TM)", longer keys first. Apple publishes no TDP: its entries are approximate peak
#: CPU-cluster power.
CPU_TDP: dict[str, tuple[float, int]] = {
    "EPYC 7742": (225.0, 64),
    "EPYC 7763": (280.0, 64),
    "EPYC 7543": (225.0, 32),
    "EPYC 9554": (360.0, 64),
    "EPYC 9654": (360.0, 96),
    "Xeon Platinum 8380": (270.0, 40),
    "Xeon Platinum 8480": (350.0, 56),  # 8480+ and 8480C
    "Xeon Platinum 8358": (250.0, 32),
    "Xeon Gold 6248R": (205.0, 24),
    "Xeon Gold 6248": (150.0, 20),
    "Core i9-13900K": (125.0, 24),
    "Ryzen 9 7950X": (170.0, 16),
    "Apple M1": (20.0, 8),
    "Apple M2": (22.0, 8),
}

#: Watts per busy core when neither a parameter nor the table gives one.
DEFAULT_PER_CORE_W = 5.0


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` 'model name', else ``platform.processor()``)."""
    text = _read_text(Path("/proc/cpuinfo")) or ""
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return m.group(1).strip() if m else (platform.processor() or "unknown")


def _per_core_w(
    tdp_w: float | None, cores: int | None, per_core_w: float | None, model: str
) -> tuple[float, str, float | None, int | None]:
    """(watts per core, source, tdp_w, cores) from the parameters, the table, or the default."""
    if per_core_w is not None:
        return float(per_core_w), "parameter", tdp_w, cores
    if tdp_w is not None:
        cores = cores or _physical_cores()
        return float(tdp_w) / cores, "parameter", float(tdp_w), cores
    plain = " ".join(re.sub(r"\((?:R|TM)\)", " ", model, flags=re.IGNORECASE).split()).lower()
    for key in sorted(CPU_TDP, key=len, reverse=True):  # "Gold 6248R" before "Gold 6248"
        if key.lower() in plain:
            tdp, n = CPU_TDP[key]
            return tdp / n, f"table:{key}", tdp, n
    return DEFAULT_PER_CORE_W, "default", None, cores


def _physical_cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


class _ProcessTree:
    """CPU seconds (user + system) of a process and all its descendants, ever.

    The last value seen per descendant is remembered, so children that exited keep their
    time; a child that starts and exits between two reads is missed (the sampler reads every
    ``sample_interval_s``), as are grandchildren re-parented away from the tree. On Linux it
    walks ``/proc/<pid>/task/<tid>/children`` (cheap); elsewhere it uses psutil.
    """

    _TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._seen: dict[tuple[int, int], float] = {}  # (pid, start time) -> cpu seconds
        self._lock = threading.Lock()
        self.source = "procfs" if os.path.exists(f"/proc/{pid}/task/{pid}/children") else "psutil"

    def cpu_s(self) -> float:
        """Total CPU seconds of the tree, including descendants that have exited."""
        found = self._walk_procfs() if self.source == "procfs" else self._walk_psutil()
        with self._lock:
            self._seen.update(found)
            return sum(self._seen.values())

    def _walk_procfs(self) -> dict[tuple[int, int], float]:
        found, stack = {}, [self.pid]
        while stack:
            pid = stack.pop()
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                # after "pid (comm)": state=0 ... utime=11 stime=12 ... starttime=19
                found[(pid, int(fields[19]))] = (int(fields[11]) + int(fields[12])) / self._TICK
            except (OSError, IndexError, ValueError):
                if pid == self.pid:
                    raise ProcessLookupError(f"process {pid} is gone") from None
                continue  # exited meanwhile: its last seen value is kept
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{tid}/children") as f:
                        stack.extend(int(c) for c in f.read().split())
            except (OSError, ValueError):
                continue
        return found

    def _walk_psutil(self) -> dict[tuple[int, int], float]:
        import psutil

        root = psutil.Process(self.pid)
        found = {}
        for p in [root, *root.children(recursive=True)]:
            try:
                ct = p.cpu_times()
                found[(p.pid, int(p.create_time() * 100))] = ct.user + ct.system
            except psutil.Error:
                if p.pid == self.pid:
                    raise
        return found


class EstimateMeter(Meter):
    """ESTIMATE, NOT A MEASUREMENT: CPU seconds of a process tree × watts per core.

    Energy = (user + system CPU seconds of the process ``pid`` and all its descendants)
    × ``per_core_w``. Watts per core come from ``per_core_w``, else ``tdp_w / cores``,
    else the table ``CPU_TDP`` (by CPU model), else ``DEFAULT_PER_CORE_W`` (5 W);
    ``describe()["per_core_w_source"]`` says which. It ignores idle/uncore/DRAM power,
    frequency and SMT, and other processes; use it only where neither NVML nor RAPL
    is available, and report it as an estimate.

    Example:
        >>> from ttclib.energy import EstimateMeter
        >>> meter = EstimateMeter(per_core_w=10.0)
        >>> meter.begin_window("x"); _ = sum(range(10**6)); m = meter.end_window("x")
        >>> m.method, m.energy_j["cpu"] >= 0
        ('cpu_time_x_tdp', True)
        >>> meter.describe()["estimate"]
        True
        >>> meter.close()
    """

    name = "estimate"
    counter_method = "cpu_time_x_tdp"
    WARNING = (
        "ESTIMATE, not a measurement: CPU seconds of the process tree x per-core power from "
        "TDP; ignores idle, uncore, DRAM, frequency and other processes"
    )

    def __init__(
        self,
        tdp_w: float | None = None,
        cores: int | None = None,
        per_core_w: float | None = None,
        pid: int | None = None,
        sample_interval_s: float = 0.1,
    ) -> None:
        """Resolve the watts per core and start counting CPU time of the tree of ``pid``.

        Args:
            tdp_w: CPU TDP, watts (with ``cores``: physical cores it covers; default all).
            cores: Cores the TDP covers.
            per_core_w: Watts per busy core; overrides ``tdp_w``.
            pid: Root of the process tree; default this process.
            sample_interval_s: Period of the background sampler, seconds.
        """
        super().__init__(sample_interval_s)
        self.cpu_model = cpu_model()
        self.per_core_w, self.per_core_w_source, self.tdp_w, self.cores = _per_core_w(
            tdp_w, cores, per_core_w, self.cpu_model
        )
        self.pid = os.getpid() if pid is None else int(pid)
        self._tree = _ProcessTree(self.pid)
        self._cpu0 = self._tree.cpu_s()
        self.devices = ["cpu"]
        self._last_sample = (time.time(), 0.0)
        self._ncpu = os.cpu_count() or 1

    def _needs_sampler(self) -> bool:
        return True  # catch children that exit inside the window

    def cpu_seconds(self) -> float:
        """CPU seconds of the process tree since the meter started."""
        return self._tree.cpu_s() - self._cpu0

    def _read_energy(self) -> dict[str, float | None]:
        return {"cpu": self.cpu_seconds() * self.per_core_w}

    def _sample(self) -> list[tuple]:
        t, cpu = time.time(), self.cpu_seconds()
        t_prev, cpu_prev = self._last_sample
        self._last_sample = (t, cpu)
        busy = (cpu - cpu_prev) / (t - t_prev) if t > t_prev else NAN
        return [("cpu", busy * self.per_core_w, cpu * self.per_core_w, NAN, NAN, NAN,
                 100.0 * busy / self._ncpu, NAN, 0)]

    def _describe_devices(self) -> list[dict[str, Any]]:
        return [{"name": "cpu", "index": 0, "model": self.cpu_model, "logical_cpus": self._ncpu}]

    def _describe_extra(self) -> dict[str, Any]:
        return {
            "estimate": True,
            "warning": self.WARNING,
            "cpu_model": self.cpu_model,
            "tdp_w": self.tdp_w,
            "cores": self.cores,
            "per_core_w": self.per_core_w,
            "per_core_w_source": self.per_core_w_source,
            "pid": self.pid,
            "process_tree_source": self._tree.source,
        }


# ---------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------

_METERS: dict[str, type[Meter]] = {"nvml": NvmlMeter, "rapl": RaplMeter, "estimate": EstimateMeter}


def _accepted(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in kwargs.items() if k in params}


def select_meter(name: str = "auto", **kwargs: Any) -> Meter:
    """Return a meter: ``"nvml"``, ``"rapl"``, ``"estimate"``, or ``"auto"``.

    ``"auto"`` takes NVML if pynvml imports, ``nvmlInit`` succeeds and it sees a GPU,
    else RAPL if a zone is readable, else the estimate. Keyword arguments go to the
    meter's constructor; with ``"auto"`` each candidate gets only those it accepts.

    Raises:
        ValueError: Unknown meter name.
        RuntimeError: The named meter is unavailable (the message says why).

    Example:
        >>> from ttclib.energy import select_meter
        >>> meter = select_meter("estimate", per_core_w=4.0)
        >>> meter.name
        'estimate'
        >>> meter.close()
    """
    if name == "auto":
        for cls in (NvmlMeter, RaplMeter):
            try:
                return cls(**_accepted(cls, kwargs))
            except Exception:  # noqa: BLE001 - fall through to the next meter
                continue
        return EstimateMeter(**_accepted(EstimateMeter, kwargs))
    if name not in _METERS:
        raise ValueError(f"Unknown meter {name!r}; choose one of 'auto', {', '.join(map(repr, _METERS))}")
    try:
        return _METERS[name](**kwargs)
    except RuntimeError as err:
        raise RuntimeError(f"Meter {name!r} is unavailable: {err}") from err


def available_meters(**kwargs: Any) -> dict[str, str]:
    """Meter name -> ``"ok"`` or why it is unavailable (for ``ttc info``).

    Example:
        >>> from ttclib.energy import available_meters
        >>> available_meters()["estimate"]
        'ok'
    """
    out = {}
    for name, cls in _METERS.items():
        kw = _accepted(cls, {**kwargs, "counter_probe_s": 0})
        try:
            cls(**kw).close()
            out[name] = "ok"
        except Exception as err:  # noqa: BLE001
            out[name] = f"{type(err).__name__}: {err}"
    return out


# ---------------------------------------------------------------------------------------
# Attribution
# ---------------------------------------------------------------------------------------


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
    ``t``/``power_w`` columns of [`Meter.trace`][ttclib.energy.Meter.trace]): powers at
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
