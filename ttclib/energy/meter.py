"""The meter: measurement windows, gap-free checkpoints, the idle baseline, the sampler, the registry.

A meter reads cumulative energy counters. ``begin_window(key)`` remembers one reading,
``end_window(key)`` takes another and returns the difference as a
:class:`~ttclib.energy.Measurement`. ``checkpoint(key)`` closes a window and opens the
next one *at the same reading*, so consecutive checkpoints tile the run without a gap:
their energies sum to one window over the whole run (to within one counter quantum each),
and nothing the hardware does between two checkpoints — the caller writing files, say — is lost.

Transient read errors are retried (``retries`` times, with back-off) and logged. If a counter
still cannot be read, the window's energy is integrated from the sampled power instead and
the measurement is flagged ``counter_error``: a window is never lost. A window shorter than
ten counter update periods is flagged ``short_window`` and logged as a warning.

Meters are registered by name with :func:`~ttclib.energy.register_meter`;
:func:`~ttclib.energy.select_meter` picks one by name or, for ``"auto"``, the best
available (lowest ``priority`` first).
"""

from __future__ import annotations

import inspect
import logging
import math
import statistics
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .measurement import COUNTER_ERROR, SHORT_WINDOW, Measurement, json_clean
from .trace import Trace

log = logging.getLogger("ttclib.energy")

#: Meter name -> class, filled by :func:`~ttclib.energy.register_meter`.
METERS: dict[str, type[Meter]] = {}


def register_meter(name: str, priority: int) -> Callable[[type[Meter]], type[Meter]]:
    """Class decorator: make a meter selectable by ``name``; ``"auto"`` tries low ``priority`` first.

    Example:
        ```python
        @register_meter("amdsmi", priority=5)
        class AmdSmiMeter(Meter): ...
        ```
    """

    def add(cls: type[Meter]) -> type[Meter]:
        cls.name, cls.priority = name, priority
        METERS[name] = cls
        return cls

    return add


@dataclass
class _Window:
    start_s: float
    counters: dict[str, float | None]


@dataclass(frozen=True)
class IdleBaseline:
    """The idle power of the meter's devices, taken once the power had settled.

    Attributes:
        power_w: Mean power over the measured span, watts, summed over devices.
        std_w: Standard deviation of the sub-window means, watts.
        span_s: Length of the measured span, seconds.
        settle_s: Seconds waited for the power to settle before measuring.
        settled: False when the power never settled within the time allowed (then measured anyway).
    """

    power_w: float
    std_w: float
    span_s: float
    settle_s: float
    settled: bool

    RULE = (
        "power is settled when the means of the last 3 sub-windows (each max(0.5 s, 10 counter "
        "update periods)) lie within 5 % (or 2 W) of each other; the baseline is then the mean over "
        "the requested span, its spread the std of the sub-window means"
    )


class Meter(ABC):
    """Base class of the energy meters: windows, checkpoints, idle baseline, sampler.

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
        >>> meter.begin_window("run"); meter.begin_window("segment")
        >>> a = meter.checkpoint("segment"); b = meter.end_window("segment"); run = meter.end_window("run")
        >>> b.start_s == a.end_s                    # the next window opens where the last one closed
        True
        >>> abs(a.total_j + b.total_j - run.total_j) < 0.05
        True
        >>> meter.close()
    """

    name: str = ""
    priority: int = 100
    #: Method used by devices that have a counter.
    counter_method: str = ""

    def __init__(self, sample_interval_s: float = 0.1, retries: int = 3) -> None:
        """Set up windows and sampler state.

        Args:
            sample_interval_s: Period of the background sampler, seconds.
            retries: Further attempts after a failed counter read (with 5, 10, 20 ... ms back-off).
        """
        if not sample_interval_s > 0:
            raise ValueError(f"sample_interval_s must be > 0, got {sample_interval_s!r}")
        self.sample_interval_s = float(sample_interval_s)
        self.retries = int(retries)
        self.idle: IdleBaseline | None = None
        self.devices: list[str] = []
        self.counter_update_period_s: float | None = None
        self._windows: dict[str, _Window] = {}
        self._lock = threading.RLock()
        self._trace = Trace()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._auto_sampling = False
        self._sampler_errors = 0
        self._sampler_last_error: str | None = None
        self._sampler_cpu_s = 0.0
        self._sampler_sweeps = 0
        self._read_errors: list[str] = []
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

    def _transient(self, err: Exception) -> bool:
        """Whether a failed read is worth retrying."""
        return True

    def _close(self) -> None:  # noqa: B027 - an optional hook: meters holding no resources keep this no-op
        """Release meter resources (after the sampler stopped)."""

    # -- windows -----------------------------------------------------------------------

    @property
    def idle_power_w(self) -> float | None:
        """Idle baseline, watts summed over the devices (None until measured)."""
        return None if self.idle is None else self.idle.power_w

    @property
    def min_window_s(self) -> float:
        """Shortest meaningful window: ten counter update periods (0 when the period is unknown)."""
        return 10 * (self.counter_update_period_s or 0.0)

    @property
    def method(self) -> str:
        """The meter's method(s), ``+``-joined when devices differ."""
        methods = [self.counter_method] * (len(self.devices) - len(self._integrated_devices()))
        methods += ["power_integration"] * len(self._integrated_devices())
        return "+".join(dict.fromkeys(methods)) or self.counter_method

    def begin_window(self, key: str) -> None:
        """Open the measurement window ``key``.

        Raises:
            ValueError: A window with this name is already open.
        """
        self._check_open()
        if key in self._windows:
            raise ValueError(f"Measurement window {key!r} is already open")
        if self._needs_sampler() and not self.sampling:
            self.start_sampling()
            self._auto_sampling = True
        start_s, counters = self._reading()
        self._windows[key] = _Window(start_s, counters)

    def end_window(self, key: str) -> Measurement:
        """Close the measurement window ``key`` and return its energy.

        Raises:
            KeyError: No window named ``key`` is open.
        """
        win = self._open_window(key)
        end_s, counters = self._reading()
        del self._windows[key]
        m = self._measurement(win, end_s, counters)
        if self._auto_sampling and not self._windows:
            self.stop_sampling()
        return m

    def checkpoint(self, key: str) -> Measurement:
        """Close window ``key`` and reopen it at the same reading; return the closed window.

        One counter read ends one window and starts the next, so nothing happens between them.

        Raises:
            KeyError: No window named ``key`` is open.
        """
        win = self._open_window(key)
        end_s, counters = self._reading()
        self._windows[key] = _Window(end_s, counters)
        return self._measurement(win, end_s, counters)

    def trace(self, start_s: float | None = None, end_s: float | None = None) -> pd.DataFrame:
        """The sampled trace (optionally only ``start_s <= t <= end_s``); see ``TRACE_COLUMNS``."""
        return self._trace.frame(start_s, end_s)

    def _open_window(self, key: str) -> _Window:
        try:
            return self._windows[key]
        except KeyError:
            raise KeyError(
                f"No open measurement window {key!r} on the {self.name} meter; open windows: {sorted(self._windows)}"
            ) from None

    def _reading(self) -> tuple[float, dict[str, float | None]]:
        """(unix time, counters) of one read; a device whose counter failed reads as None."""
        if self._integrated_devices():
            self._sample_now()
        counters = self._read_with_retries()
        t = time.time()
        if any(v is None for v in counters.values()) and not self._integrated_devices():
            self._sample_now()  # a failed counter: the trace must cover this edge
        return t, counters

    def _read_with_retries(self) -> dict[str, float | None]:
        for attempt in range(self.retries + 1):
            try:
                return self._read_energy()
            except Exception as err:  # noqa: BLE001 - retried, then integrated instead
                msg = f"{type(err).__name__}: {err}"
                self._read_errors.append(msg)
                if attempt == self.retries or not self._transient(err):
                    log.warning(
                        "%s meter: counter read failed %d times (%s); integrating sampled power",
                        self.name,
                        attempt + 1,
                        msg,
                    )
                    return {dev: None for dev in self.devices}
                log.info("%s meter: counter read failed (%s); retrying", self.name, msg)
                time.sleep(0.005 * 2**attempt)
        raise AssertionError("unreachable")

    def _measurement(self, win: _Window, end_s: float, counters: dict[str, float | None]) -> Measurement:
        energy, methods, flags = {}, {}, []
        for dev in self.devices:
            c0, c1 = win.counters.get(dev), counters.get(dev)
            if c0 is not None and c1 is not None:
                energy[dev], methods[dev] = c1 - c0, self.counter_method
            else:
                energy[dev], methods[dev] = self._trace.integrate(dev, win.start_s, end_s), "power_integration"
                if dev not in self._integrated_devices():
                    flags.append(COUNTER_ERROR)
        time_s = end_s - win.start_s
        if time_s < 0.95 * self.min_window_s:  # 5 %: the period is itself measured
            flags.append(SHORT_WINDOW)
            log.warning(
                "%s meter: a %.3f s window is shorter than 10 counter update periods (%.3f s)",
                self.name,
                time_s,
                self.counter_update_period_s,
            )
        return Measurement(
            meter=self.name,
            method="+".join(dict.fromkeys(methods.values())),
            start_s=win.start_s,
            time_s=time_s,
            energy_j=energy,
            idle_power_w=self.idle_power_w,
            methods=methods,
            flags=tuple(dict.fromkeys(flags)),
        )

    # -- idle baseline -------------------------------------------------------------------

    def measure_idle(self, seconds: float = 5.0, settle_timeout_s: float = 30.0) -> float:
        """Measure the idle baseline once the power has settled (see ``IdleBaseline.RULE``).

        Call it while nothing else runs on the devices. The result (watts, summed over the
        devices) is stored in ``idle`` and attached to later measurements, whose ``net_j`` then
        subtracts it.

        Returns:
            Idle power, watts.
        """
        step = max(0.5, 10 * (self.counter_update_period_s or 0.0))
        key = f"__idle__{id(self)}"
        self.begin_window(key)
        try:
            t0 = time.monotonic()
            settling: list[float] = []
            while not _settled(settling[-3:]) and time.monotonic() - t0 < settle_timeout_s:
                settling.append(self._idle_step(key, step).mean_power_w)
            settle_s = time.monotonic() - t0
            parts: list[Measurement] = []
            while not parts or sum(p.time_s for p in parts) < seconds:
                parts.append(self._idle_step(key, step))
        finally:
            self.discard_window(key)
        span = sum(p.time_s for p in parts)
        powers = [p.mean_power_w for p in parts]
        self.idle = IdleBaseline(
            sum(p.total_j for p in parts) / span,
            statistics.pstdev(powers) if len(powers) > 1 else 0.0,
            span,
            settle_s,
            _settled(settling[-3:]),
        )
        return self.idle.power_w

    def discard_window(self, key: str) -> None:
        """Close a window without measuring its (empty) remainder."""
        self._windows.pop(key, None)
        if self._auto_sampling and not self._windows:
            self.stop_sampling()

    def _idle_step(self, key: str, seconds: float) -> Measurement:
        time.sleep(seconds)
        return self.checkpoint(key)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"The {self.name} meter is closed")

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
        self._thread = threading.Thread(target=self._sampler_loop, name=f"ttclib-{self.name}-sampler", daemon=True)
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
        next_t = time.monotonic()
        while not self._stop.is_set():
            cpu0 = time.thread_time()
            self._sample_now()
            self._sampler_cpu_s += time.thread_time() - cpu0
            self._sampler_sweeps += 1
            next_t += self.sample_interval_s
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind (e.g. suspended): do not try to catch up
                next_t, delay = time.monotonic(), 0.0
            self._stop.wait(delay)

    def _sample_now(self) -> None:
        """Take one sample of every device and append it to the trace; never raises."""
        try:
            t0 = time.time()
            rows = self._sample()
            self._trace.append(0.5 * (t0 + time.time()), rows)  # one timestamp per sweep, mid-sweep
        except Exception as err:  # noqa: BLE001 - the sampler must never die
            self._sampler_errors += 1
            self._sampler_last_error = f"{type(err).__name__}: {err}"

    # -- description / lifecycle ---------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """JSON-friendly facts about the meter, its devices, the idle baseline and the sampler's health."""
        sweeps = self._sampler_sweeps
        d: dict[str, Any] = {
            "meter": self.name,
            "method": self.method,
            "devices": self._describe_devices(),
            "sample_interval_s": self.sample_interval_s,
            "counter_update_period_s": self.counter_update_period_s,
            "idle_power_w": self.idle_power_w,
            "idle": None if self.idle is None else {**self.idle.__dict__, "rule": IdleBaseline.RULE},
            "read_errors": {"count": len(self._read_errors), "last": self._read_errors[-5:]},
            "sampler": {
                "running": self.sampling,
                "sweeps": sweeps,
                "samples": len(self._trace),
                "duplicates_dropped": self._trace.duplicates,
                "errors": self._sampler_errors,
                "last_error": self._sampler_last_error,
                "cpu_s": self._sampler_cpu_s,
                "cpu_s_per_sweep": self._sampler_cpu_s / sweeps if sweeps else None,
                "core_share": (self._sampler_cpu_s / sweeps / self.sample_interval_s) if sweeps else None,
            },
        }
        d.update(self._describe_extra())
        return json_clean(d)

    def close(self) -> None:
        """Stop the sampler and release the meter's resources (idempotent)."""
        if self._closed:
            return
        self.stop_sampling()
        self._closed = True
        self._close()

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(devices={self.devices}, method={self.method!r})"


def _settled(powers: list[float]) -> bool:
    if len(powers) < 3 or not all(math.isfinite(p) for p in powers):
        return False
    mean = sum(powers) / len(powers)
    return max(powers) - min(powers) <= max(0.05 * abs(mean), 2.0)


# ---------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------


def _accepted(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(cls).parameters  # the constructor's parameters (__init__'s, less self)
    return {k: v for k, v in kwargs.items() if k in params}


def _by_priority() -> list[type[Meter]]:
    return sorted(METERS.values(), key=lambda c: c.priority)


def select_meter(name: str = "auto", *, exclude: tuple[str, ...] = (), **kwargs: Any) -> Meter:
    """Return a meter by registered name, or ``"auto"``: the first available by priority.

    ``"auto"`` tries NVML (a GPU is visible), then RAPL (a readable powercap zone), then the
    estimate, skipping the names in ``exclude`` (e.g. ``("nvml",)`` for a run on the CPU).
    Keyword arguments go to the meter's constructor; with ``"auto"`` each candidate gets only
    those it accepts.

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
        candidates = [c for c in _by_priority() if c.name not in exclude]
        for cls in candidates[:-1]:
            try:
                return cls(**_accepted(cls, kwargs))
            except Exception:  # noqa: BLE001 - fall through to the next meter
                continue
        return candidates[-1](**_accepted(candidates[-1], kwargs))
    if name not in METERS:
        raise ValueError(f"Unknown meter {name!r}; choose one of 'auto', {', '.join(map(repr, METERS))}")
    try:
        return METERS[name](**kwargs)
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
    for cls in _by_priority():
        kw = _accepted(cls, {**kwargs, "counter_probe_s": 0})
        try:
            cls(**kw).close()
            out[cls.name] = "ok"
        except Exception as err:  # noqa: BLE001
            out[cls.name] = f"{type(err).__name__}: {err}"
    return out
