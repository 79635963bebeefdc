"""A scripted stand-in for ``pynvml`` (package nvidia-ml-py 13.615.71), for tests without a GPU.

It mimics the part of the real API that ttclib uses or will use, with the real function
names and signatures, constant values, units (energy mJ, power mW, clocks MHz, memory
bytes, temperature °C) and return types: ctypes structs shaped like the real
``c_nvmlFieldValue_t``, ``c_nvmlMemory_t`` and ``c_nvmlUtilization_t``, and the
``NVMLError`` hierarchy (``NVMLError(code)`` returns the matching subclass such as
``NVMLError_NotSupported``, one subclass per ``NVML_ERROR_*`` code).

Each fake GPU follows a power script of wall-clock time (a constant, or steps
``[(t_rel_s, watts), ...]`` counted from ``setup()``). From it:

- the total-energy counter is the exact integral of the script, advanced only every
  ``update_period_s`` like real hardware (and never noisy);
- ``nvmlDeviceGetPowerUsage`` is the instantaneous power on the ``"ampere"`` profile (A100)
  and the 1 s trailing average on ``"hopper"`` (H100), where the instantaneous power is
  the field ``NVML_FI_DEV_POWER_INSTANT`` of ``nvmlDeviceGetFieldValues``;
- power readings may carry seeded gaussian noise (``noise_w``);
- the script is the power at the GPU's own SM clock: while a lock (or application clocks) holds the
  clock at ``f`` instead, power is scaled by ``dvfs_factor(f) / dvfs_factor(own clock)``, a toy
  model of a GPU under DVFS — a static part that does not depend on the clock plus a dynamic part
  ``∝ f·V(f)²`` with the voltage rising linearly from ``V_MIN`` of its maximum at 0 MHz
  (:func:`dvfs_factor`). It is not a calibrated model of any GPU; it gives tests a known answer
  (energy at a locked clock over energy at the default one) through the real code path. Clock
  changes are timed, so the counter integrates the scaled power exactly.

Each call on a device may sleep (``call_latency_s``, like the ~0.1-1 ms of the real
library) and may fail transiently (``FakeGPU.transient_errors`` or ``fail_next()``). Calls
are counted by function name in ``calls``. Like the real NVML, the fake ignores
``CUDA_VISIBLE_DEVICES``: it enumerates every GPU and offers UUID and index look-ups
(including MIG devices) with which a caller resolves that variable.

Usage (a fresh module per test keeps state apart; see ``load()``):

    fake = load()
    fake.setup([FakeGPU(power_w=250.0), FakeGPU(power_w=100.0, energy_counter=False)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
"""

from __future__ import annotations

import ctypes
import importlib.util
import itertools
import math
import random
import string
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from uuid import NAMESPACE_OID, uuid5

# ---- constants (values as in the real pynvml) ----------------------------------------

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_ERROR_INSUFFICIENT_POWER = 8
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_IRQ_ISSUE = 11
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_CORRUPTED_INFOROM = 14
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_OPERATING_SYSTEM = 17
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_IN_USE = 19
NVML_ERROR_MEMORY = 20
NVML_ERROR_NO_DATA = 21
NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22
NVML_ERROR_INSUFFICIENT_RESOURCES = 23
NVML_ERROR_FREQ_NOT_SUPPORTED = 24
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
NVML_ERROR_DEPRECATED = 26
NVML_ERROR_NOT_READY = 27
NVML_ERROR_GPU_NOT_FOUND = 28
NVML_ERROR_INVALID_STATE = 29
NVML_ERROR_RESET_TYPE_NOT_SUPPORTED = 30
NVML_ERROR_UNKNOWN = 999

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_CLOCK_VIDEO = 3
NVML_PSTATE_0 = 0
NVML_DEVICE_MIG_DISABLE = 0x0
NVML_DEVICE_MIG_ENABLE = 0x1
NVML_POWER_SCOPE_GPU = 0

NVML_VALUE_TYPE_DOUBLE = 0
NVML_VALUE_TYPE_UNSIGNED_INT = 1
NVML_VALUE_TYPE_UNSIGNED_LONG = 2
NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3
NVML_VALUE_TYPE_SIGNED_LONG_LONG = 4
NVML_VALUE_TYPE_SIGNED_INT = 5
NVML_VALUE_TYPE_UNSIGNED_SHORT = 6

NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION = 83  # mJ since the driver loaded
NVML_FI_DEV_POWER_AVERAGE = 185  # mW, 1 s average; Ampere (except GA100) or newer
NVML_FI_DEV_POWER_INSTANT = 186  # mW, all architectures
NVML_FI_DEV_ENERGY = 191  # mJ, same as NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION
NVML_FI_MAX = 308  # one greater than the largest field id

nvmlMemory_v2 = 0x02000028

nvmlClocksEventReasonGpuIdle = 0x0000000000000001
nvmlClocksEventReasonApplicationsClocksSetting = 0x0000000000000002
nvmlClocksEventReasonSwPowerCap = 0x0000000000000004
nvmlClocksEventReasonHwSlowdown = 0x0000000000000008
nvmlClocksEventReasonSwThermalSlowdown = 0x0000000000000020
nvmlClocksThrottleReasonGpuIdle = nvmlClocksEventReasonGpuIdle
nvmlClocksThrottleReasonSwPowerCap = nvmlClocksEventReasonSwPowerCap


# ---- errors -------------------------------------------------------------------------


class NVMLError(Exception):
    """Like pynvml.NVMLError: ``NVMLError(code)`` returns an instance of the code's subclass."""

    _valClassMapping: dict[int, type] = {}
    _errcode_to_string = {  # the real table; other codes fall back to "NVML Error with code N"
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_ALREADY_INITIALIZED: "Already Initialized",
        NVML_ERROR_NOT_FOUND: "Not Found",
        NVML_ERROR_INSUFFICIENT_SIZE: "Insufficient Size",
        NVML_ERROR_INSUFFICIENT_POWER: "Insufficient External Power",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_TIMEOUT: "Timeout",
        NVML_ERROR_IRQ_ISSUE: "Interrupt Request Issue",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
        NVML_ERROR_CORRUPTED_INFOROM: "Corrupted infoROM",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
        NVML_ERROR_RESET_REQUIRED: "GPU requires restart",
        NVML_ERROR_OPERATING_SYSTEM: "The operating system has blocked the request.",
        NVML_ERROR_LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
        NVML_ERROR_MEMORY: "Insufficient Memory",
        NVML_ERROR_UNKNOWN: "Unknown Error",
    }

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
        return self._errcode_to_string.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other):
        return isinstance(other, NVMLError) and self.value == other.value

    __hash__ = Exception.__hash__


def _make_error_classes() -> None:
    """One subclass per ``NVML_ERROR_*`` code, named as the real module names them
    (``NVML_ERROR_NOT_SUPPORTED`` -> ``NVMLError_NotSupported``)."""
    module = globals()
    for const in [name for name in module if name.startswith("NVML_ERROR_")]:
        code = module[const]
        name = "NVMLError_" + string.capwords(const.removeprefix("NVML_ERROR_"), "_").replace("_", "")

        def __new__(cls, *args, _code=code):
            return NVMLError.__new__(cls, _code)

        def __init__(self, *args, _code=code):
            NVMLError.__init__(self, _code)

        cls = type(name, (NVMLError,), {"__new__": __new__, "__init__": __init__, "__module__": __name__})
        NVMLError._valClassMapping[code] = cls
        module[name] = cls


_make_error_classes()


# ---- structs (ctypes, fields as in the real pynvml) ---------------------------------


class _PrintableStructure(ctypes.Structure):
    """Prints as ``name(field: value, ...)`` like the real ``_PrintableStructure``."""

    _fmt_: dict[str, str] = {}

    def __str__(self) -> str:
        parts = []
        for key, *_ in self._fields_:
            fmt = self._fmt_.get(key, self._fmt_.get("<default>", "%s"))
            parts.append(("%s: " + fmt) % (key, getattr(self, key)))
        return f"{type(self).__name__}({', '.join(parts)})"


class c_nvmlUtilization_t(_PrintableStructure):
    """``.gpu`` and ``.memory`` in percent."""

    _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]
    _fmt_ = {"<default>": "%d %%"}


class c_nvmlMemory_t(_PrintableStructure):
    """Frame-buffer memory in bytes."""

    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]
    _fmt_ = {"<default>": "%d B"}


class c_nvmlMemory_v2_t(_PrintableStructure):
    """Memory in bytes, with the part reserved for the driver and firmware apart."""

    _fields_ = [
        ("version", ctypes.c_uint),
        ("total", ctypes.c_ulonglong),
        ("reserved", ctypes.c_ulonglong),
        ("free", ctypes.c_ulonglong),
        ("used", ctypes.c_ulonglong),
    ]
    _fmt_ = {"<default>": "%d B"}


class c_nvmlValue_t(ctypes.Union):
    """The value of a field; ``valueType`` of the enclosing field tells which member is set."""

    _fields_ = [
        ("dVal", ctypes.c_double),
        ("uiVal", ctypes.c_uint),
        ("ulVal", ctypes.c_ulong),
        ("ullVal", ctypes.c_ulonglong),
        ("sllVal", ctypes.c_longlong),
        ("siVal", ctypes.c_int),
        ("usVal", ctypes.c_ushort),
    ]


class c_nvmlFieldValue_t(_PrintableStructure):
    """One answer of ``nvmlDeviceGetFieldValues``; ``value`` is valid only if ``nvmlReturn == 0``."""

    _fields_ = [
        ("fieldId", ctypes.c_uint32),
        ("scopeId", ctypes.c_uint32),
        ("timestamp", ctypes.c_int64),  # µs since 1970
        ("latencyUsec", ctypes.c_int64),
        ("valueType", ctypes.c_uint),
        ("nvmlReturn", ctypes.c_uint),
        ("value", c_nvmlValue_t),
    ]


# ---- scripted GPUs ------------------------------------------------------------------

# Per-profile defaults of FakeGPU fields left None, and how the profile reports power.
_PROFILES = {
    "ampere": {  # A100-SXM4-80GB: power usage is instantaneous; no POWER_AVERAGE field (GA100)
        "name": "NVIDIA A100-SXM4-80GB",
        "max_sm_clock_mhz": 1410,
        "min_sm_clock_mhz": 210,
        "mem_clock_mhz": 1593,
        "power_limit_w": 400.0,
        "averaged_power_usage": False,
        "architecture": 7,  # NVML_DEVICE_ARCH_AMPERE
    },
    "hopper": {  # H100 SXM5 80GB: power usage is the 1 s trailing average
        "name": "NVIDIA H100 80GB HBM3",
        "max_sm_clock_mhz": 1980,
        "min_sm_clock_mhz": 345,
        "mem_clock_mhz": 2619,
        "power_limit_w": 700.0,
        "averaged_power_usage": True,
        "architecture": 9,  # NVML_DEVICE_ARCH_HOPPER
    },
}
_CLOCK_STEP_MHZ = 15  # spacing of the supported graphics clocks
STATIC_FRACTION = 0.5  # toy DVFS model: the share of power at the maximum clock that no clock lowers
V_MIN = 0.6  # toy DVFS model: voltage at 0 MHz as a fraction of the voltage at the maximum clock


def dvfs_factor(sm_mhz: float, max_sm_mhz: float) -> float:
    """Power at SM clock ``sm_mhz`` relative to power at ``max_sm_mhz`` in the toy model:
    ``STATIC_FRACTION + (1 - STATIC_FRACTION) · r · v(r)²`` with ``r = f / f_max`` and
    ``v(r) = V_MIN + (1 - V_MIN) · r``.

    >>> dvfs_factor(1410, 1410)
    1.0
    >>> round(dvfs_factor(705, 1410), 4)     # half the clock: 0.5 + 0.5 * 0.5 * 0.8**2
    0.66
    """
    r = sm_mhz / max_sm_mhz
    return STATIC_FRACTION + (1 - STATIC_FRACTION) * r * (V_MIN + (1 - V_MIN) * r) ** 2


_MAX_MIG_DEVICES = 7  # A100 and H100: at most seven GPU instances
_POWER_AVERAGE_WINDOW_S = 1.0


@dataclass
class FakeGPU:
    """One scripted GPU.

    Attributes:
        power_w: Constant watts, or steps ``[(t_rel_s, watts), ...]`` (t from ``setup()``).
        update_period_s: The energy counter advances only at multiples of this period.
        energy_counter: False makes ``nvmlDeviceGetTotalEnergyConsumption`` (and the energy
            fields) ``NVMLError_NotSupported`` (pre-Volta GPU).
        name, sm_clock_mhz, mem_clock_mhz, power_limit_w, max_sm_clock_mhz,
            min_sm_clock_mhz: None takes the profile's value. ``sm_clock_mhz`` is the clock
            reported while no lock is set; the supported graphics clocks run from the max
            down to the min in 15 MHz steps, the only memory clock is ``mem_clock_mhz``.
        unsupported: Function names that raise ``NVMLError_NotSupported``.
        profile: ``"ampere"`` (``nvmlDeviceGetPowerUsage`` is instantaneous, no
            ``NVML_FI_DEV_POWER_AVERAGE``) or ``"hopper"`` (it is the 1 s trailing average).
        unsupported_fields: Field ids answered with ``NVML_ERROR_NOT_SUPPORTED``.
        noise_w: Standard deviation of gaussian noise on power readings (never on the counter).
        seed: Seed of that noise, re-applied by ``setup()``.
        call_latency_s: Every call on a device handle sleeps this long.
        transient_errors: Function name -> how many of its next calls on this GPU (counted
            from ``setup()``) raise ``NVMLError_Unknown`` before it succeeds again.
        memory_total_mib, memory_used_mib: Frame-buffer memory.
        mig_devices: MIG devices (0 = MIG disabled, up to 7); each gets an equal share of
            the memory and a ``MIG-`` UUID.
        app_clock_error: Error code raised by the set/reset application-clocks calls.
        clock_lock_error: Error code raised by the set/reset locked-clocks calls (e.g.
            ``NVML_ERROR_NO_PERMISSION`` as for a non-root user); None lets them succeed.
        pstate: Performance state reported (0 = P0, maximum performance).
        locked_gpu_clocks_mhz, locked_mem_clocks_mhz: ``(min, max)`` set through the API,
            None when reset (not constructor arguments).
    """

    power_w: float | list[tuple[float, float]] = 250.0
    update_period_s: float = 0.02
    energy_counter: bool = True
    name: str | None = None
    uuid: str = ""
    sm_clock_mhz: int | None = None
    mem_clock_mhz: int | None = None
    temp_c: int = 45
    util: tuple[int, int] = (87, 41)
    clocks_event_reasons: int = nvmlClocksEventReasonSwPowerCap
    power_limit_w: float | None = None
    initial_energy_mj: int = 123_456_789  # counters count since the driver loaded
    unsupported: set[str] = field(default_factory=set)
    profile: str = "ampere"
    unsupported_fields: set[int] = field(default_factory=set)
    noise_w: float = 0.0
    seed: int = 0
    call_latency_s: float = 0.0
    transient_errors: dict[str, int] = field(default_factory=dict)
    memory_total_mib: int = 81920
    memory_used_mib: int = 0
    mig_devices: int = 0
    max_sm_clock_mhz: int | None = None
    min_sm_clock_mhz: int | None = None
    clock_lock_error: int | None = None
    app_clock_error: int | None = None
    pstate: int = NVML_PSTATE_0
    t0: float = 0.0  # set by setup()
    locked_gpu_clocks_mhz: tuple[int, int] | None = field(default=None, init=False)
    locked_mem_clocks_mhz: tuple[int, int] | None = field(default=None, init=False)
    application_clocks_mhz: tuple[int, int] | None = field(default=None, init=False)  # (memory, graphics)
    clock_events: list[tuple[float, int]] = field(default_factory=list, init=False)  # (unix s, SM MHz) per change
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.profile not in _PROFILES:
            raise ValueError(f"Unknown profile {self.profile!r}; expected one of {sorted(_PROFILES)}")
        if not 0 <= self.mig_devices <= _MAX_MIG_DEVICES:
            raise ValueError(f"mig_devices must be in 0..{_MAX_MIG_DEVICES}, not {self.mig_devices}")
        defaults = _PROFILES[self.profile]
        for key in ("name", "max_sm_clock_mhz", "min_sm_clock_mhz", "mem_clock_mhz", "power_limit_w"):
            if getattr(self, key) is None:
                setattr(self, key, defaults[key])
        if self.sm_clock_mhz is None:
            self.sm_clock_mhz = self.max_sm_clock_mhz
        self._rng = random.Random(self.seed)

    # -- the power script --

    def steps(self) -> list[tuple[float, float]]:
        if isinstance(self.power_w, (int, float)):
            return [(-math.inf, float(self.power_w))]
        return sorted(self.power_w)

    def power_at(self, t: float) -> float:
        """Watts at unix time ``t`` (the first step's watts extend back before it), scaled by the
        toy DVFS model while the SM clock is held away from the GPU's own clock."""
        watts = self.steps()[0][1]
        for start, w in self.steps():
            if t - self.t0 >= start:
                watts = w
        sm = self.sm_clock_at(t)
        if sm == self.sm_clock_mhz:
            return watts
        return watts * dvfs_factor(sm, self.max_sm_clock_mhz) / dvfs_factor(self.sm_clock_mhz, self.max_sm_clock_mhz)

    def sm_clock_at(self, t: float) -> int:
        """The SM clock at unix time ``t``: the last clock change at or before ``t``."""
        sm = self.sm_clock_mhz
        for when, mhz in self.clock_events:
            if when <= t:
                sm = mhz
        return sm

    def energy_between(self, a: float, b: float) -> float:
        """Exact joules between unix times ``a`` and ``b``: power is constant between the script's
        steps and the clock changes."""
        cuts = {a, b} | {self.t0 + start for start, _ in self.steps() if a < self.t0 + start < b}
        cuts |= {when for when, _ in self.clock_events if a < when < b}
        cuts = sorted(cuts)
        return sum(
            self.power_at((lo + hi) / 2) * (hi - lo) for lo, hi in itertools.pairwise(cuts)
        )  # mid: no rounding at a cut

    def average_power(self, t: float, window_s: float = _POWER_AVERAGE_WINDOW_S) -> float:
        """Mean watts over the ``window_s`` seconds before unix time ``t``."""
        return self.energy_between(t - window_s, t) / window_s

    def power_usage_w(self, t: float) -> float:
        """What ``nvmlDeviceGetPowerUsage`` reports at ``t`` before noise: the profile's choice
        of instantaneous power or 1 s trailing average."""
        return self.average_power(t) if _PROFILES[self.profile]["averaged_power_usage"] else self.power_at(t)

    def counter_mj(self, t: float) -> int:
        """Counter value at unix time ``t``: integral up to the last update tick."""
        tick = self.t0 + math.floor((t - self.t0) / self.update_period_s) * self.update_period_s
        return self.initial_energy_mj + int(round(1000.0 * self.energy_between(self.t0, tick)))

    # -- clocks, memory, MIG --

    def supported_graphics_clocks(self) -> list[int]:
        """MHz, highest first, as the real list."""
        return list(range(self.max_sm_clock_mhz, self.min_sm_clock_mhz - 1, -_CLOCK_STEP_MHZ))

    def clock_mhz(self, clock_type: int) -> int:
        """Current SM/graphics or memory clock: the scripted one, held inside a lock if set."""
        if clock_type in (NVML_CLOCK_SM, NVML_CLOCK_GRAPHICS):
            if self.locked_gpu_clocks_mhz is None and self.application_clocks_mhz is not None:
                return min(self.sm_clock_mhz, self.application_clocks_mhz[1])  # a ceiling, as on real GPUs
            return _within(
                self.sm_clock_mhz, self.locked_gpu_clocks_mhz, (self.min_sm_clock_mhz, self.max_sm_clock_mhz)
            )
        if clock_type == NVML_CLOCK_MEM:
            return _within(self.mem_clock_mhz, self.locked_mem_clocks_mhz, (self.mem_clock_mhz, self.mem_clock_mhz))
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)

    def memory_mib(self, mig: int | None) -> tuple[int, int]:
        """``(total, used)`` MiB of the GPU, or of MIG device ``mig`` (an equal share)."""
        if mig is None:
            return self.memory_total_mib, self.memory_used_mib
        return self.memory_total_mib // self.mig_devices, 0

    def mig_name(self) -> str:
        slices = _MAX_MIG_DEVICES // self.mig_devices
        gb = round(self.memory_mib(0)[0] / 1024)
        return f"{self.name} MIG {slices}g.{gb}gb"

    def mig_uuid(self, mig: int) -> str:
        """A stable, well-formed ``MIG-`` UUID derived from the GPU's UUID."""
        return f"MIG-{uuid5(NAMESPACE_OID, f'{self.uuid}/mig/{mig}')}"


def _within(value: int, lock: tuple[int, int] | None, supported: tuple[int, int]) -> int:
    """``value`` unchanged without a lock, else clamped to the lock and the supported range."""
    if lock is None:
        return value
    lo, hi = (min(max(bound, supported[0]), supported[1]) for bound in lock)
    return min(max(value, lo), hi)


# ---- module state -------------------------------------------------------------------

_GPUS: list[FakeGPU] = []
_DRIVER = "550.54.15"
_CUDA_DRIVER_VERSION = 12040
_INIT_ERROR: int | None = None
_initialized = 0
_clock: Callable[[], float] = time.time
_FAILURES: dict[tuple[int | None, str], list[int]] = {}  # (gpu index or None, fn) -> error codes
_LOCK = threading.Lock()  # guards calls, _FAILURES and the noise generators
calls: Counter = Counter()


def setup(
    gpus: list[FakeGPU],
    driver_version: str = "550.54.15",
    init_error: int | None = None,
    cuda_driver_version: int = 12040,
    clock: Callable[[], float] = time.time,
    state_file: str | Path | None = None,
) -> None:
    """Script the machine and start the GPUs' scripts now.

    Args:
        gpus: The GPUs, in NVML index order.
        driver_version: What ``nvmlSystemGetDriverVersion`` reports.
        init_error: An error code ``nvmlInit`` raises, or None.
        cuda_driver_version: What ``nvmlSystemGetCudaDriverVersion`` reports (12040 = 12.4).
        clock: Unix time in seconds; a test may pass its own to read the scripts at exact times.
        state_file: A JSON file holding the clock settings (locked and application clocks), shared
            by every process that sets up the fake with it — as the driver holds them for all
            processes on a real machine — so a test can kill a process that locked clocks and
            check from another what it left. Existing settings in the file are kept.
    """
    global _GPUS, _DRIVER, _CUDA_DRIVER_VERSION, _INIT_ERROR, _initialized, _clock, _STATE_FILE
    _clock = clock
    _STATE_FILE = Path(state_file) if state_file is not None else None
    now = clock()
    failures: dict[tuple[int | None, str], list[int]] = {}
    for i, g in enumerate(gpus):
        g.t0 = now
        g.uuid = g.uuid or f"GPU-fake-{i:04d}-0000-0000-0000-000000000000"
        g.locked_gpu_clocks_mhz = g.locked_mem_clocks_mhz = g.application_clocks_mhz = None
        g.clock_events = []
        g._rng.seed(g.seed)
        for fn, n in g.transient_errors.items():
            _check_function_name(fn)
            failures[(i, fn)] = [NVML_ERROR_UNKNOWN] * n
    _GPUS, _DRIVER, _INIT_ERROR, _initialized = list(gpus), driver_version, init_error, 0
    _load_clock_state()
    _CUDA_DRIVER_VERSION = cuda_driver_version
    with _LOCK:
        _FAILURES.clear()
        _FAILURES.update(failures)
        calls.clear()


def fail_next(fn_name: str, n: int = 1, code: int = NVML_ERROR_UNKNOWN, gpu: int | None = None) -> None:
    """Make the next ``n`` calls of ``fn_name`` raise ``NVMLError(code)``, then succeed again.

    With ``gpu`` (an NVML index) only calls on that GPU (or its MIG devices) fail; without
    it, any call of that function does, ``nvmlInit`` and other system calls included.
    """
    _check_function_name(fn_name)
    with _LOCK:
        _FAILURES.setdefault((gpu, fn_name), []).extend([code] * n)


def _check_function_name(fn: str) -> None:
    if not (fn.startswith("nvml") and callable(globals().get(fn))):
        raise ValueError(f"{fn!r} is not a function of the fake pynvml")


class _Handle:
    """A device handle: a GPU, or one of its MIG devices when ``mig`` is set."""

    def __init__(self, index: int, mig: int | None = None) -> None:
        self.index = index
        self.mig = mig

    def __repr__(self) -> str:
        return f"<fake nvmlDevice_t {self.index}{'' if self.mig is None else f' mig {self.mig}'}>"


def _enter(fn: str, gpu_index: int | None = None) -> None:
    """Count a call, require nvmlInit, and raise the next queued transient error if any."""
    with _LOCK:
        calls[fn] += 1
    if not _initialized:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    _raise_queued(fn, gpu_index)


def _raise_queued(fn: str, gpu_index: int | None) -> None:
    with _LOCK:
        for key in ((gpu_index, fn), (None, fn)):
            queue = _FAILURES.get(key)
            if queue:
                code = queue.pop(0)
                break
        else:
            return
    raise NVMLError(code)


_STATE_FILE: Path | None = None
_CLOCK_STATE = ("locked_gpu_clocks_mhz", "locked_mem_clocks_mhz", "application_clocks_mhz", "clock_events")


def _load_clock_state() -> None:
    """The clock settings of ``setup(state_file=...)``, as another process may have left them."""
    if _STATE_FILE is None or not _STATE_FILE.exists():
        return
    import json

    saved = json.loads(_STATE_FILE.read_text() or "{}")
    for i, gpu in enumerate(_GPUS):
        for attr in _CLOCK_STATE:
            value = saved.get(str(i), {}).get(attr)
            if attr == "clock_events":
                gpu.clock_events = [tuple(e) for e in value or []]
            else:
                setattr(gpu, attr, tuple(value) if value is not None else None)


def _clock_changed(gpu: FakeGPU) -> None:
    """Note when the SM clock changed (the toy DVFS power follows it), then save the state."""
    sm = gpu.clock_mhz(NVML_CLOCK_SM)
    if sm != gpu.sm_clock_at(_clock()):
        gpu.clock_events.append((_clock(), sm))
    _save_clock_state()


def _save_clock_state() -> None:
    if _STATE_FILE is None:
        return
    import json

    _STATE_FILE.write_text(json.dumps({str(i): {a: getattr(g, a) for a in _CLOCK_STATE} for i, g in enumerate(_GPUS)}))


def _device(handle: _Handle, fn: str, *, mig_ok: bool = False) -> FakeGPU:
    """Common part of every call on a device handle; returns its GPU.

    MIG handles raise ``NVMLError_NotSupported`` unless ``mig_ok`` (the real NVML answers
    only some queries, never power or energy, for a MIG device).
    """
    with _LOCK:
        calls[fn] += 1
    if not _initialized:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    if not isinstance(handle, _Handle) or not 0 <= handle.index < len(_GPUS):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    _load_clock_state()
    gpu = _GPUS[handle.index]
    if handle.mig is not None and not 0 <= handle.mig < gpu.mig_devices:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    if gpu.call_latency_s > 0:
        time.sleep(gpu.call_latency_s)
    _raise_queued(fn, handle.index)
    if fn in gpu.unsupported or (handle.mig is not None and not mig_ok):
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return gpu


def _power_mw(gpu: FakeGPU, watts: float) -> int:
    """A power reading in mW: ``watts`` plus the GPU's noise, never negative."""
    if gpu.noise_w > 0:
        with _LOCK:
            watts += gpu._rng.gauss(0.0, gpu.noise_w)
    return max(0, int(round(1000.0 * watts)))


# ---- the API: library and system ----------------------------------------------------


def nvmlInit() -> None:
    global _initialized
    with _LOCK:
        calls["nvmlInit"] += 1
    _raise_queued("nvmlInit", None)
    if _INIT_ERROR is not None:
        raise NVMLError(_INIT_ERROR)
    _initialized += 1


def nvmlShutdown() -> None:
    global _initialized
    _enter("nvmlShutdown")
    _initialized -= 1


def nvmlSystemGetDriverVersion() -> str:
    _enter("nvmlSystemGetDriverVersion")
    return _DRIVER


def nvmlSystemGetNVMLVersion() -> str:
    """E.g. ``"12.550.54.15"``: the CUDA major version, then the driver version."""
    _enter("nvmlSystemGetNVMLVersion")
    return f"{_CUDA_DRIVER_VERSION // 1000}.{_DRIVER}"


def nvmlSystemGetCudaDriverVersion() -> int:
    """E.g. 12040 for CUDA 12.4."""
    _enter("nvmlSystemGetCudaDriverVersion")
    return _CUDA_DRIVER_VERSION


# ---- the API: enumeration, UUIDs and MIG --------------------------------------------


def nvmlDeviceGetCount() -> int:
    """Physical GPUs only, whatever ``CUDA_VISIBLE_DEVICES`` says (as the real NVML)."""
    _enter("nvmlDeviceGetCount")
    return len(_GPUS)


def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
    _enter("nvmlDeviceGetHandleByIndex", index)
    if not 0 <= index < len(_GPUS):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return _Handle(index)


def nvmlDeviceGetHandleByUUID(uuid: str | bytes) -> _Handle:
    """A GPU's (``GPU-...``) or a MIG device's (``MIG-...``) handle; exact UUIDs only."""
    _enter("nvmlDeviceGetHandleByUUID")
    wanted = uuid.decode() if isinstance(uuid, bytes) else uuid
    for i, g in enumerate(_GPUS):
        if g.uuid == wanted:
            return _Handle(i)
        for k in range(g.mig_devices):
            if g.mig_uuid(k) == wanted:
                return _Handle(i, k)
    raise NVMLError(NVML_ERROR_NOT_FOUND)


def nvmlDeviceGetIndex(handle: _Handle) -> int:
    """The NVML index; for a MIG handle, its index under its GPU."""
    _device(handle, "nvmlDeviceGetIndex", mig_ok=True)
    return handle.index if handle.mig is None else handle.mig


def nvmlDeviceGetName(handle: _Handle) -> str:
    gpu = _device(handle, "nvmlDeviceGetName", mig_ok=True)
    return gpu.name if handle.mig is None else gpu.mig_name()


def nvmlDeviceGetUUID(handle: _Handle) -> str:
    gpu = _device(handle, "nvmlDeviceGetUUID", mig_ok=True)
    return gpu.uuid if handle.mig is None else gpu.mig_uuid(handle.mig)


def nvmlDeviceGetMigMode(device: _Handle) -> list[int]:
    """``[current, pending]``, both ``NVML_DEVICE_MIG_ENABLE`` when the GPU has MIG devices."""
    gpu = _device(device, "nvmlDeviceGetMigMode")
    mode = NVML_DEVICE_MIG_ENABLE if gpu.mig_devices else NVML_DEVICE_MIG_DISABLE
    return [mode, mode]


def nvmlDeviceGetMaxMigDeviceCount(device: _Handle) -> int:
    """7 with MIG enabled, 0 without (slots beyond ``mig_devices`` hold no device)."""
    gpu = _device(device, "nvmlDeviceGetMaxMigDeviceCount")
    return _MAX_MIG_DEVICES if gpu.mig_devices else 0


def nvmlDeviceGetMigDeviceHandleByIndex(device: _Handle, index: int) -> _Handle:
    gpu = _device(device, "nvmlDeviceGetMigDeviceHandleByIndex")
    if not 0 <= index < gpu.mig_devices:
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    return _Handle(device.index, index)


def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(migDevice: _Handle) -> _Handle:  # noqa: N803
    _device(migDevice, "nvmlDeviceGetDeviceHandleFromMigDeviceHandle", mig_ok=True)
    if migDevice.mig is None:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return _Handle(migDevice.index)


def nvmlDeviceIsMigDeviceHandle(device: _Handle) -> ctypes.c_uint:
    """A ``c_uint`` (use ``.value`` or ``bool()``), as the real function returns."""
    _device(device, "nvmlDeviceIsMigDeviceHandle", mig_ok=True)
    return ctypes.c_uint(int(device.mig is not None))


# ---- the API: energy and power ------------------------------------------------------


def nvmlDeviceGetTotalEnergyConsumption(handle: _Handle) -> int:
    """Millijoules since the driver loaded."""
    gpu = _device(handle, "nvmlDeviceGetTotalEnergyConsumption")
    if not gpu.energy_counter:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return gpu.counter_mj(_clock())


def nvmlDeviceGetPowerUsage(handle: _Handle) -> int:
    """Milliwatts: instantaneous ("ampere") or the 1 s trailing average ("hopper")."""
    gpu = _device(handle, "nvmlDeviceGetPowerUsage")
    return _power_mw(gpu, gpu.power_usage_w(_clock()))


def nvmlDeviceGetFieldValues(handle: _Handle, fieldIds: list) -> ctypes.Array:  # noqa: N803
    """A ctypes array of ``c_nvmlFieldValue_t``, one per id (an int, or ``(fieldId, scopeId)``).

    Each field carries its own ``nvmlReturn``: an unsupported field does not make the call
    raise. Modelled fields: ``NVML_FI_DEV_POWER_INSTANT`` and ``NVML_FI_DEV_POWER_AVERAGE``
    (``uiVal``, mW, GPU scope only; AVERAGE not on "ampere"), ``NVML_FI_DEV_ENERGY`` and
    ``NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` (``ullVal``, mJ). Other valid ids are not
    supported; ids outside ``1..NVML_FI_MAX-1`` are invalid arguments.
    """
    gpu = _device(handle, "nvmlDeviceGetFieldValues", mig_ok=True)
    t = _clock()
    values = (c_nvmlFieldValue_t * len(fieldIds))()
    for v, fid in zip(values, fieldIds, strict=True):
        try:
            v.fieldId, v.scopeId = fid
        except TypeError:
            v.fieldId = fid
        v.timestamp = int(t * 1e6)
        v.latencyUsec = int(gpu.call_latency_s * 1e6)
        v.nvmlReturn = _read_field(gpu, handle, v, t)
    return values


def _read_field(gpu: FakeGPU, handle: _Handle, v: c_nvmlFieldValue_t, t: float) -> int:
    """Fill ``v.valueType`` and ``v.value`` for ``v.fieldId`` at time ``t``; the return code."""
    fid = v.fieldId
    if not 0 < fid < NVML_FI_MAX:
        return NVML_ERROR_INVALID_ARGUMENT
    if handle.mig is not None or fid in gpu.unsupported_fields:
        return NVML_ERROR_NOT_SUPPORTED
    if fid in (NVML_FI_DEV_POWER_INSTANT, NVML_FI_DEV_POWER_AVERAGE):
        if v.scopeId != NVML_POWER_SCOPE_GPU:
            return NVML_ERROR_NOT_SUPPORTED
        if fid == NVML_FI_DEV_POWER_INSTANT:
            watts = gpu.power_at(t)
        elif _PROFILES[gpu.profile]["averaged_power_usage"]:
            watts = gpu.average_power(t)
        else:
            return NVML_ERROR_NOT_SUPPORTED
        v.valueType, v.value.uiVal = NVML_VALUE_TYPE_UNSIGNED_INT, _power_mw(gpu, watts)
        return NVML_SUCCESS
    if fid in (NVML_FI_DEV_ENERGY, NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION) and gpu.energy_counter:
        v.valueType, v.value.ullVal = NVML_VALUE_TYPE_UNSIGNED_LONG_LONG, gpu.counter_mj(t)
        return NVML_SUCCESS
    return NVML_ERROR_NOT_SUPPORTED


def nvmlDeviceGetPowerManagementLimit(handle: _Handle) -> int:
    """Milliwatts."""
    return int(1000 * _device(handle, "nvmlDeviceGetPowerManagementLimit").power_limit_w)


def nvmlDeviceGetEnforcedPowerLimit(handle: _Handle) -> int:
    """Milliwatts (the management limit: no other limit is scripted)."""
    return int(1000 * _device(handle, "nvmlDeviceGetEnforcedPowerLimit").power_limit_w)


def nvmlDeviceGetPerformanceState(handle: _Handle) -> int:
    return _device(handle, "nvmlDeviceGetPerformanceState").pstate


def nvmlDeviceGetArchitecture(device: _Handle) -> int:
    return _PROFILES[_device(device, "nvmlDeviceGetArchitecture").profile]["architecture"]


# ---- the API: clocks ----------------------------------------------------------------


def nvmlDeviceGetClockInfo(handle: _Handle, type: int) -> int:  # noqa: A002 - real signature
    """MHz; a locked clock range holds the SM/memory clock inside it."""
    return _device(handle, "nvmlDeviceGetClockInfo").clock_mhz(type)


def nvmlDeviceGetMaxClockInfo(handle: _Handle, type: int) -> int:  # noqa: A002 - real signature
    """MHz."""
    gpu = _device(handle, "nvmlDeviceGetMaxClockInfo")
    if type in (NVML_CLOCK_SM, NVML_CLOCK_GRAPHICS):
        return gpu.max_sm_clock_mhz
    if type == NVML_CLOCK_MEM:
        return gpu.mem_clock_mhz
    raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)


def nvmlDeviceGetSupportedMemoryClocks(handle: _Handle) -> list[int]:
    """MHz; HBM GPUs have one."""
    return [_device(handle, "nvmlDeviceGetSupportedMemoryClocks").mem_clock_mhz]


def nvmlDeviceGetSupportedGraphicsClocks(handle: _Handle, memoryClockMHz: int) -> list[int]:  # noqa: N803
    """MHz, highest first; ``NVMLError_NotFound`` for a memory clock not supported."""
    gpu = _device(handle, "nvmlDeviceGetSupportedGraphicsClocks")
    if memoryClockMHz != gpu.mem_clock_mhz:
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    return gpu.supported_graphics_clocks()


def _lock_clocks(handle: _Handle, fn: str, attr: str, lock: tuple[int, int] | None) -> None:
    gpu = _device(handle, fn)
    if gpu.clock_lock_error is not None:
        raise NVMLError(gpu.clock_lock_error)
    if lock is not None and lock[0] > lock[1]:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    setattr(gpu, attr, lock)
    _clock_changed(gpu)


def nvmlDeviceSetGpuLockedClocks(handle: _Handle, minGpuClockMHz: int, maxGpuClockMHz: int) -> None:  # noqa: N803
    _lock_clocks(handle, "nvmlDeviceSetGpuLockedClocks", "locked_gpu_clocks_mhz", (minGpuClockMHz, maxGpuClockMHz))


def nvmlDeviceResetGpuLockedClocks(handle: _Handle) -> None:
    _lock_clocks(handle, "nvmlDeviceResetGpuLockedClocks", "locked_gpu_clocks_mhz", None)


def nvmlDeviceSetMemoryLockedClocks(handle: _Handle, minMemClockMHz: int, maxMemClockMHz: int) -> None:  # noqa: N803
    _lock_clocks(handle, "nvmlDeviceSetMemoryLockedClocks", "locked_mem_clocks_mhz", (minMemClockMHz, maxMemClockMHz))


def nvmlDeviceResetMemoryLockedClocks(handle: _Handle) -> None:
    _lock_clocks(handle, "nvmlDeviceResetMemoryLockedClocks", "locked_mem_clocks_mhz", None)


def nvmlDeviceSetApplicationsClocks(handle: _Handle, maxMemClockMHz: int, maxGraphicsClockMHz: int) -> None:  # noqa: N803
    gpu = _device(handle, "nvmlDeviceSetApplicationsClocks")
    if gpu.app_clock_error is not None:
        raise NVMLError(gpu.app_clock_error)
    if maxMemClockMHz != gpu.mem_clock_mhz or maxGraphicsClockMHz not in gpu.supported_graphics_clocks():
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    gpu.application_clocks_mhz = (maxMemClockMHz, maxGraphicsClockMHz)
    _clock_changed(gpu)


def nvmlDeviceResetApplicationsClocks(handle: _Handle) -> None:
    gpu = _device(handle, "nvmlDeviceResetApplicationsClocks")
    if gpu.app_clock_error is not None:
        raise NVMLError(gpu.app_clock_error)
    gpu.application_clocks_mhz = None
    _clock_changed(gpu)


def nvmlDeviceGetCurrentClocksEventReasons(handle: _Handle) -> int:
    return _device(handle, "nvmlDeviceGetCurrentClocksEventReasons").clocks_event_reasons


def nvmlDeviceGetCurrentClocksThrottleReasons(handle: _Handle) -> int:
    return _device(handle, "nvmlDeviceGetCurrentClocksThrottleReasons").clocks_event_reasons


# ---- the API: memory, temperature, utilisation --------------------------------------


def nvmlDeviceGetMemoryInfo(handle: _Handle, version: int | None = None) -> c_nvmlMemory_t | c_nvmlMemory_v2_t:
    """Bytes; with ``version=nvmlMemory_v2`` a ``c_nvmlMemory_v2_t`` (nothing reserved)."""
    gpu = _device(handle, "nvmlDeviceGetMemoryInfo", mig_ok=True)
    total, used = (mib * 2**20 for mib in gpu.memory_mib(handle.mig))
    if not version:
        return c_nvmlMemory_t(total=total, free=total - used, used=used)
    if version != nvmlMemory_v2:
        raise NVMLError(NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
    return c_nvmlMemory_v2_t(version=version, total=total, reserved=0, free=total - used, used=used)


def nvmlDeviceGetTemperature(handle: _Handle, sensor: int) -> int:
    """°C."""
    gpu = _device(handle, "nvmlDeviceGetTemperature")
    if sensor != NVML_TEMPERATURE_GPU:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return gpu.temp_c


def nvmlDeviceGetUtilizationRates(handle: _Handle) -> c_nvmlUtilization_t:
    """Percent; ``NVMLError_NotSupported`` on a GPU in MIG mode, as on real hardware."""
    gpu = _device(handle, "nvmlDeviceGetUtilizationRates")
    if gpu.mig_devices:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return c_nvmlUtilization_t(*gpu.util)


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
