"""A scripted stand-in for ``pynvml`` (package nvidia-ml-py), for tests without a GPU.

It mimics the part of the real API that ``ttclib.energy.NvmlMeter`` uses: the same function
names, constants and units (energy mJ, power mW, clocks MHz, temperature °C), the
``NVMLError`` hierarchy (``NVMLError(code)`` returns the matching subclass such as
``NVMLError_NotSupported``), and a ``c_nvmlUtilization_t``-like object with ``.gpu`` and
``.memory``.

Each fake GPU follows a power script of wall-clock time (a constant, or steps
``[(t_rel_s, watts), ...]`` counted from ``setup()``), and its total-energy counter is the
exact integral of that script, updated only every ``update_period_s`` like real hardware.

Usage (a fresh module per test keeps state apart; see ``load()``):

    fake = load()
    fake.setup([FakeGPU(power_w=250.0), FakeGPU(power_w=100.0, energy_counter=False)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

# ---- constants (values as in the real pynvml) ----------------------------------------

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_CLOCK_VIDEO = 3

nvmlClocksEventReasonGpuIdle = 0x0000000000000001
nvmlClocksEventReasonApplicationsClocksSetting = 0x0000000000000002
nvmlClocksEventReasonSwPowerCap = 0x0000000000000004
nvmlClocksEventReasonHwSlowdown = 0x0000000000000008
nvmlClocksEventReasonSwThermalSlowdown = 0x0000000000000020
nvmlClocksThrottleReasonGpuIdle = nvmlClocksEventReasonGpuIdle
nvmlClocksThrottleReasonSwPowerCap = nvmlClocksEventReasonSwPowerCap

_ERROR_STRINGS = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


# ---- errors -------------------------------------------------------------------------


class NVMLError(Exception):
    """Like pynvml.NVMLError: ``NVMLError(code)`` returns an instance of the code's subclass."""

    _valClassMapping: dict[int, type] = {}

    def __new__(cls, value):
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __init__(self, value):
        super().__init__(value)
        self.value = value

    def __str__(self):
        return _ERROR_STRINGS.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other):
        return isinstance(other, NVMLError) and self.value == other.value

    __hash__ = Exception.__hash__


def _error_class(name: str, code: int) -> type:
    def __new__(cls, *args):
        return NVMLError.__new__(cls, code)

    def __init__(self, *args):
        NVMLError.__init__(self, code)

    cls = type(name, (NVMLError,), {"__new__": __new__, "__init__": __init__})
    NVMLError._valClassMapping[code] = cls
    return cls


NVMLError_Uninitialized = _error_class("NVMLError_Uninitialized", NVML_ERROR_UNINITIALIZED)
NVMLError_InvalidArgument = _error_class("NVMLError_InvalidArgument", NVML_ERROR_INVALID_ARGUMENT)
NVMLError_NotSupported = _error_class("NVMLError_NotSupported", NVML_ERROR_NOT_SUPPORTED)
NVMLError_NoPermission = _error_class("NVMLError_NoPermission", NVML_ERROR_NO_PERMISSION)
NVMLError_NotFound = _error_class("NVMLError_NotFound", NVML_ERROR_NOT_FOUND)
NVMLError_DriverNotLoaded = _error_class("NVMLError_DriverNotLoaded", NVML_ERROR_DRIVER_NOT_LOADED)
NVMLError_LibraryNotFound = _error_class("NVMLError_LibraryNotFound", NVML_ERROR_LIBRARY_NOT_FOUND)
NVMLError_FunctionNotFound = _error_class("NVMLError_FunctionNotFound", NVML_ERROR_FUNCTION_NOT_FOUND)
NVMLError_GpuIsLost = _error_class("NVMLError_GpuIsLost", NVML_ERROR_GPU_IS_LOST)
NVMLError_Unknown = _error_class("NVMLError_Unknown", NVML_ERROR_UNKNOWN)


class c_nvmlUtilization_t:
    """Like the ctypes struct: ``.gpu`` and ``.memory`` in percent."""

    def __init__(self, gpu: int, memory: int) -> None:
        self.gpu = gpu
        self.memory = memory

    def __repr__(self) -> str:
        return f"c_nvmlUtilization_t(gpu: {self.gpu} %, memory: {self.memory} %)"


# ---- scripted GPUs ------------------------------------------------------------------


@dataclass
class FakeGPU:
    """One scripted GPU.

    Attributes:
        power_w: Constant watts, or steps ``[(t_rel_s, watts), ...]`` (t from ``setup()``).
        update_period_s: The energy counter advances only at multiples of this period.
        energy_counter: False makes ``nvmlDeviceGetTotalEnergyConsumption`` raise
            ``NVMLError_NotSupported`` (pre-Volta GPU).
        unsupported: Further function names that raise ``NVMLError_NotSupported``.
    """

    power_w: float | list[tuple[float, float]] = 250.0
    update_period_s: float = 0.02
    energy_counter: bool = True
    name: str = "NVIDIA A100-SXM4-80GB"
    uuid: str = ""
    sm_clock_mhz: int = 1410
    mem_clock_mhz: int = 1593
    temp_c: int = 45
    util: tuple[int, int] = (87, 41)
    clocks_event_reasons: int = nvmlClocksEventReasonSwPowerCap
    power_limit_w: float = 400.0
    initial_energy_mj: int = 123_456_789  # counters count since the driver loaded
    unsupported: set[str] = field(default_factory=set)
    t0: float = 0.0  # set by setup()

    def steps(self) -> list[tuple[float, float]]:
        if isinstance(self.power_w, (int, float)):
            return [(-math.inf, float(self.power_w))]
        return sorted(self.power_w)

    def power_at(self, t: float) -> float:
        """Watts at unix time ``t``."""
        watts = self.steps()[0][1]
        for start, w in self.steps():
            if t - self.t0 >= start:
                watts = w
        return watts

    def energy_between(self, a: float, b: float) -> float:
        """Exact joules of the script between unix times ``a`` and ``b``."""
        steps = self.steps()
        total = 0.0
        for k, (start, w) in enumerate(steps):
            lo = max(a, self.t0 + start) if k else a
            hi = min(b, self.t0 + steps[k + 1][0]) if k + 1 < len(steps) else b
            total += w * max(0.0, hi - lo)
        return total

    def counter_mj(self, t: float) -> int:
        """Counter value at unix time ``t``: integral up to the last update tick."""
        tick = self.t0 + math.floor((t - self.t0) / self.update_period_s) * self.update_period_s
        return self.initial_energy_mj + int(round(1000.0 * self.energy_between(self.t0, tick)))


_GPUS: list[FakeGPU] = []
_DRIVER = "550.54.15"
_INIT_ERROR: int | None = None
_initialized = 0
calls: Counter = Counter()


def setup(gpus: list[FakeGPU], driver_version: str = "550.54.15", init_error: int | None = None) -> None:
    """Script the machine: its GPUs, driver version, and optionally an nvmlInit error code."""
    global _GPUS, _DRIVER, _INIT_ERROR, _initialized
    now = time.time()
    for i, g in enumerate(gpus):
        g.t0 = now
        g.uuid = g.uuid or f"GPU-fake-{i:04d}-0000-0000-0000-000000000000"
    _GPUS, _DRIVER, _INIT_ERROR, _initialized = list(gpus), driver_version, init_error, 0
    calls.clear()


class _Handle:
    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<fake nvmlDevice_t {self.index}>"


def _gpu(handle: _Handle, fn: str) -> FakeGPU:
    calls[fn] += 1
    if not _initialized:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    gpu = _GPUS[handle.index]
    if fn in gpu.unsupported:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return gpu


# ---- the API ------------------------------------------------------------------------


def nvmlInit() -> None:
    global _initialized
    calls["nvmlInit"] += 1
    if _INIT_ERROR is not None:
        raise NVMLError(_INIT_ERROR)
    _initialized += 1


def nvmlShutdown() -> None:
    global _initialized
    calls["nvmlShutdown"] += 1
    if not _initialized:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    _initialized -= 1


def nvmlSystemGetDriverVersion() -> str:
    calls["nvmlSystemGetDriverVersion"] += 1
    if not _initialized:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    return _DRIVER


def nvmlDeviceGetCount() -> int:
    calls["nvmlDeviceGetCount"] += 1
    if not _initialized:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    return len(_GPUS)


def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
    calls["nvmlDeviceGetHandleByIndex"] += 1
    if not _initialized:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    if not 0 <= index < len(_GPUS):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return _Handle(index)


def nvmlDeviceGetName(handle: _Handle) -> str:
    return _gpu(handle, "nvmlDeviceGetName").name


def nvmlDeviceGetUUID(handle: _Handle) -> str:
    return _gpu(handle, "nvmlDeviceGetUUID").uuid


def nvmlDeviceGetTotalEnergyConsumption(handle: _Handle) -> int:
    """Millijoules since the driver loaded."""
    gpu = _gpu(handle, "nvmlDeviceGetTotalEnergyConsumption")
    if not gpu.energy_counter:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return gpu.counter_mj(time.time())


def nvmlDeviceGetPowerUsage(handle: _Handle) -> int:
    """Milliwatts."""
    return int(round(1000.0 * _gpu(handle, "nvmlDeviceGetPowerUsage").power_at(time.time())))


def nvmlDeviceGetPowerManagementLimit(handle: _Handle) -> int:
    """Milliwatts."""
    return int(1000 * _gpu(handle, "nvmlDeviceGetPowerManagementLimit").power_limit_w)


def nvmlDeviceGetClockInfo(handle: _Handle, type: int) -> int:  # noqa: A002 - real signature
    """MHz."""
    gpu = _gpu(handle, "nvmlDeviceGetClockInfo")
    if type in (NVML_CLOCK_SM, NVML_CLOCK_GRAPHICS):
        return gpu.sm_clock_mhz
    if type == NVML_CLOCK_MEM:
        return gpu.mem_clock_mhz
    raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)


def nvmlDeviceGetTemperature(handle: _Handle, sensor: int) -> int:
    """°C."""
    gpu = _gpu(handle, "nvmlDeviceGetTemperature")
    if sensor != NVML_TEMPERATURE_GPU:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return gpu.temp_c


def nvmlDeviceGetUtilizationRates(handle: _Handle) -> c_nvmlUtilization_t:
    return c_nvmlUtilization_t(*_gpu(handle, "nvmlDeviceGetUtilizationRates").util)


def nvmlDeviceGetCurrentClocksEventReasons(handle: _Handle) -> int:
    return _gpu(handle, "nvmlDeviceGetCurrentClocksEventReasons").clocks_event_reasons


def nvmlDeviceGetCurrentClocksThrottleReasons(handle: _Handle) -> int:
    return _gpu(handle, "nvmlDeviceGetCurrentClocksThrottleReasons").clocks_event_reasons


# ---- loading ------------------------------------------------------------------------


def load(name: str = "pynvml") -> ModuleType:
    """A fresh, independent copy of this module (its own GPUs and counters)."""
    spec = importlib.util.spec_from_file_location(f"_fake_{name}_{id(object())}", Path(__file__))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need the module registered while executing
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[spec.name]
    return mod


def install() -> ModuleType:
    """A fresh copy installed as ``sys.modules['pynvml']`` (for scripts that smoke-test without a GPU)."""
    mod = load()
    sys.modules["pynvml"] = mod
    return mod
