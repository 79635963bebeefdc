"""GPU clocks locked for a run, and always given back (Maliakel et al. [002]'s frequency axis, issue 19 item 1).

A run that sweeps the SM clock locks it through NVML (``nvmlDeviceSetGpuLockedClocks``, the
memory clock with ``nvmlDeviceSetMemoryLockedClocks``; where locking is not supported, application
clocks, ``nvmlDeviceSetApplicationsClocks``) and must give it back however it ends. :class:`ClockLock`
resets on normal exit, on an exception, on SIGTERM and SIGINT (its handlers reset, then behave as the
handlers before them), and at interpreter exit. A process killed with SIGKILL runs none of that, so
the lock first writes a lock file (pid, GPU, what was set) and deletes it when it resets: the next
lock, or ``ttc clocks --reset``, resets the clocks of every lock file whose process is gone
(:func:`recover`).

Requested clocks are snapped to the nearest supported one (:func:`snap`); a missing permission is one
:class:`ClockPermissionError` that says what is needed.

>>> snap(1000, [180, 487, 960, 1500, 2842])
960
>>> snap(1230, [960, 1500])       # a tie goes to the lower clock (less power)
960
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PERMISSION_HELP = (
    "locking GPU clocks needs root or CAP_SYS_ADMIN in this container; without it, ask an "
    "administrator to lock them (`nvidia-smi -lgc <MHz>,<MHz>`, reset with `nvidia-smi -rgc`) "
    "or measure at the default clocks (no sm_clock_mhz)"
)


class ClockError(RuntimeError):
    """Clocks could not be set or read back."""


class ClockPermissionError(ClockError):
    """NVML refused to change clocks (NVML_ERROR_NO_PERMISSION)."""


#: NVML's clock event (throttle) reason bits, by the names of ``nvmlClocksEventReason*``.
THROTTLE_REASONS = {
    0x1: "GpuIdle",
    0x2: "ApplicationsClocksSetting",
    0x4: "SwPowerCap",
    0x8: "HwSlowdown",
    0x10: "SyncBoost",
    0x20: "SwThermalSlowdown",
    0x40: "HwThermalSlowdown",
    0x80: "HwPowerBrakeSlowdown",
    0x100: "DisplayClockSetting",
}
#: Achieved within this fraction of the requested clock counts as achieved (issue 19's GPU check).
TOLERANCE = 0.05


def lock_dir() -> Path:
    """Where lock files live: ``<ttc cache>/clocks`` (``$TTC_CACHE`` or ``~/.cache/ttc-energy``)."""
    from ..models import cache_dir

    return cache_dir() / "clocks"


def snap(requested: int, supported) -> int:
    """The supported clock nearest to ``requested`` (MHz); ties to the lower one."""
    clocks = sorted(set(int(c) for c in supported))
    if not clocks:
        raise ClockError("this GPU reports no supported clocks")
    return min(clocks, key=lambda c: (abs(c - requested), c))


def supported_sm_clocks(nv, handle) -> list[int]:
    """SM clocks the GPU supports at its highest memory clock, ascending."""
    mem = max(nv.nvmlDeviceGetSupportedMemoryClocks(handle))
    return sorted(set(nv.nvmlDeviceGetSupportedGraphicsClocks(handle, mem)))


def _pynvml():
    import pynvml  # lazily: tests inject a fake through sys.modules

    pynvml.nvmlInit()
    return pynvml


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class ClockLock:
    """Lock GPU ``index``'s SM clock (and optionally its memory clock) while the block runs.

    ``achieved`` after entry: what was set and how (``locked`` or ``applications``), and the clock read
    back. Use as a context manager; :meth:`release` is idempotent and safe from a signal handler."""

    def __init__(self, index: int, sm_mhz: int, mem_mhz: int | None = None, *, directory: Path | None = None):
        self.index, self.requested_sm, self.requested_mem = index, sm_mhz, mem_mhz
        self.directory = Path(directory) if directory is not None else lock_dir()
        self.achieved: dict = {}
        self._nv: Any = None  # the pynvml module, once entered
        self._handle: Any = None
        self._method: str | None = None  # "locked" | "applications", once set
        self._file: Path | None = None  # this lock's file
        self._previous: dict = {}
        self._released = threading.Lock()
        self._active = False

    def __enter__(self) -> ClockLock:
        self._nv = _pynvml()
        recover(self.directory)
        self._handle = self._nv.nvmlDeviceGetHandleByIndex(self.index)
        sm = snap(self.requested_sm, supported_sm_clocks(self._nv, self._handle))
        mem = (
            snap(self.requested_mem, self._nv.nvmlDeviceGetSupportedMemoryClocks(self._handle))
            if self.requested_mem is not None
            else None
        )
        self._write_lock_file(sm, mem)
        self._active = True
        try:
            self._set(sm, mem)
        except BaseException:
            self.release()
            raise
        self._install_handlers()
        read = self._nv.nvmlDeviceGetClockInfo(self._handle, self._nv.NVML_CLOCK_SM)
        self.achieved = {
            "index": self.index,
            "requested_sm_mhz": self.requested_sm,
            "sm_mhz": sm,
            "requested_mem_mhz": self.requested_mem,
            "mem_mhz": mem,
            "method": self._method,
            "sm_read_back_mhz": int(read),
        }
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # -- setting and resetting ---------------------------------------------------------------
    def _set(self, sm: int, mem: int | None) -> None:
        """Lock, else set application clocks; ``_method`` names what is set as soon as anything is, so
        a failure half-way (SM locked, memory refused) is still reset."""
        nv, h = self._nv, self._handle
        try:
            nv.nvmlDeviceSetGpuLockedClocks(h, sm, sm)
            self._method = "locked"
            if mem is not None:
                nv.nvmlDeviceSetMemoryLockedClocks(h, mem, mem)
            return
        except nv.NVMLError as err:
            if _code(nv, err) == nv.NVML_ERROR_NO_PERMISSION:
                raise ClockPermissionError(
                    f"GPU {self.index}: {type(err).__name__}: {err}: {PERMISSION_HELP}"
                ) from None
            if _code(nv, err) != nv.NVML_ERROR_NOT_SUPPORTED or self._method is not None:
                raise ClockError(
                    f"GPU {self.index}: locking the clocks at SM {sm} / memory {mem} MHz failed: {err}"
                ) from None
        try:  # older GPUs: application clocks (memory clock required)
            app_mem = mem if mem is not None else max(nv.nvmlDeviceGetSupportedMemoryClocks(h))
            nv.nvmlDeviceSetApplicationsClocks(h, app_mem, sm)
            self._method = "applications"
        except nv.NVMLError as err:
            if _code(nv, err) == nv.NVML_ERROR_NO_PERMISSION:
                raise ClockPermissionError(
                    f"GPU {self.index}: {type(err).__name__}: {err}: {PERMISSION_HELP}"
                ) from None
            raise ClockError(f"GPU {self.index}: neither locked nor application clocks can be set: {err}") from None

    def release(self) -> None:
        """Reset what was set, remove the lock file, put back the signal handlers (once)."""
        if not self._released.acquire(blocking=False):
            return
        try:
            if self._active and self._nv is not None:
                _reset(self._nv, self._handle, self._method)
            if self._file is not None:
                self._file.unlink(missing_ok=True)
            self._restore_handlers()
            atexit.unregister(self.release)
        finally:
            self._active = False
            if self._nv is not None:
                self._nv.nvmlShutdown()

    # -- the lock file and the exits a with-block does not see --------------------------------
    def _write_lock_file(self, sm: int, mem: int | None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        uuid = self._nv.nvmlDeviceGetUUID(self._handle)
        self._file = self.directory / f"gpu{self.index}-{os.getpid()}.json"
        self._file.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "index": self.index,
                    "uuid": uuid,
                    "sm_mhz": sm,
                    "mem_mhz": mem,
                    "since": time.time(),
                }
            )
        )

    def _install_handlers(self) -> None:
        atexit.register(self.release)
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def _restore_handlers(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _on_signal(self, signum, frame) -> None:
        previous = self._previous.get(signum)
        self.release()
        if callable(previous):
            previous(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            raise SystemExit(128 + signum)


def _code(nv, err) -> int | None:
    return getattr(err, "value", None)


def _reset(nv, handle, method: str | None) -> None:
    """Give the clocks back; a reset that NVML refuses is raised (clocks must not be left locked silently)."""
    if method == "applications":
        nv.nvmlDeviceResetApplicationsClocks(handle)
    elif method == "locked":
        nv.nvmlDeviceResetGpuLockedClocks(handle)
        try:
            nv.nvmlDeviceResetMemoryLockedClocks(handle)
        except nv.NVMLError as err:
            if _code(nv, err) != nv.NVML_ERROR_NOT_SUPPORTED:
                raise


def recover(directory: Path | None = None) -> list[dict]:
    """Reset the clocks named by lock files whose process is gone (a SIGKILLed run), delete those
    files, and return what was reset. Locks of live processes are left alone."""
    directory = Path(directory) if directory is not None else lock_dir()
    files = sorted(directory.glob("gpu*-*.json")) if directory.is_dir() else []
    stale = []
    for f in files:
        try:
            info = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if info.get("pid") == os.getpid() or _alive(int(info.get("pid", 0))):
            continue
        stale.append((f, info))
    if not stale:
        return []
    nv = _pynvml()
    try:
        for f, info in stale:
            handle = _handle(nv, info)
            for method in ("locked", "applications"):
                try:
                    _reset(nv, handle, method)
                except nv.NVMLError:
                    pass  # the one the dead process did not use may be unsupported
            f.unlink(missing_ok=True)
    finally:
        nv.nvmlShutdown()
    return [info for _, info in stale]


def _handle(nv, info: dict):
    """The GPU of a lock file: by UUID (indices can change between boots), else by index."""
    try:
        return nv.nvmlDeviceGetHandleByUUID(info["uuid"])
    except (KeyError, nv.NVMLError):
        return nv.nvmlDeviceGetHandleByIndex(int(info["index"]))


def achieved(trace, start: float, end: float, requested_sm: int | None = None, locks: Sequence[dict] = ()) -> dict:
    """What the clocks were while a run measured (``run.json``'s ``clocks``): the SM and memory clocks
    read in the power trace between ``start`` and ``end`` (median and range, MHz), the share of those
    readings that carried each throttle reason, and — for a locked run — whether the median is within
    :data:`TOLERANCE` of the clock set. A trace without clocks (the estimate and RAPL meters) says so.

    >>> import pandas as pd
    >>> trace = pd.DataFrame({"t": [0.0, 1.0, 2.0], "sm_clock_mhz": [960.0, 960.0, 945.0],
    ...                       "mem_clock_mhz": [2619.0] * 3, "throttle_reasons": [0, 4, 4]})
    >>> c = achieved(trace, 0.0, 2.0, requested_sm=960, locks=[{"sm_mhz": 960}])
    >>> c["sm_mhz"], c["throttle_reasons"], c["within_tolerance"]
    ({'median': 960.0, 'min': 945.0, 'max': 960.0, 'readings': 3}, {'SwPowerCap': 0.667}, True)
    """
    import numpy as np

    out: dict = {
        "requested_sm_mhz": requested_sm,
        "locks": list(locks),
        "sm_mhz": None,
        "mem_mhz": None,
        "throttle_reasons": {},
        "within_tolerance": None,
    }
    if trace is None or not len(trace) or "sm_clock_mhz" not in trace or trace["sm_clock_mhz"].isna().all():
        out["note"] = "the meter reads no GPU clocks"
        return out
    inside = trace[(trace.t >= start) & (trace.t <= end)]
    inside = inside if len(inside) else trace
    for col, key in (("sm_clock_mhz", "sm_mhz"), ("mem_clock_mhz", "mem_mhz")):
        v = inside[col].dropna().to_numpy(float)
        if v.size:
            out[key] = {
                "median": float(np.median(v)),
                "min": float(v.min()),
                "max": float(v.max()),
                "readings": int(v.size),
            }
    bits = inside["throttle_reasons"].to_numpy("int64") if "throttle_reasons" in inside else np.zeros(0, "int64")
    out["throttle_reasons"] = {
        name: round(float(np.mean(bits & bit > 0)), 3)
        for bit, name in THROTTLE_REASONS.items()
        if bits.size and np.any(bits & bit)
    }
    target = [lk["sm_mhz"] for lk in locks if lk.get("sm_mhz")]
    if target and out["sm_mhz"]:
        out["within_tolerance"] = bool(abs(out["sm_mhz"]["median"] - target[0]) <= TOLERANCE * target[0])
    return out


def reasons(bits: int) -> list[str]:
    """The names of the reasons set in an NVML clock event bitmask.

    >>> reasons(0x4 | 0x20)
    ['SwPowerCap', 'SwThermalSlowdown']
    """
    return [name for bit, name in THROTTLE_REASONS.items() if bits & bit]
