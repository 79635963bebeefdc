"""NVIDIA GPUs through NVML (package ``nvidia-ml-py``, imported as ``pynvml``).

Energy per GPU comes from the total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``,
millijoules, Volta and newer), else from integrating sampled power. Power comes from the
instantaneous field ``NVML_FI_DEV_POWER_INSTANT`` where the GPU supports it, else from
``nvmlDeviceGetPowerUsage``, which NVML documents as a 1-second average on Ampere (except
GA100) and newer GPUs and as instantaneous on GA100 and older; ``describe()`` says which.

Which GPUs: exactly those the run uses. CUDA indices (as the run's process sees them) are
mapped to NVML devices through ``CUDA_VISIBLE_DEVICES``, whose entries may be indices,
``GPU-<uuid>`` (or a unique prefix) or ``MIG-<uuid>``; enumeration stops at the first invalid
entry, as CUDA's does. NVML meters whole GPUs only: a MIG instance is measured as its parent
GPU, and ``describe()`` says so. :func:`gpus_for_device` turns a run's ``device``,
``tp_size`` and ``dp_size`` into CUDA indices, with the reason.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .measurement import NAN
from .meter import Meter, register_meter

#: NVML error codes that a retry will not cure.
_PERMANENT = {1, 2, 3, 4, 6, 9, 12, 13, 15}
#: Architectures (``nvmlDeviceGetArchitecture``) from which power usage is a 1 s average (GA100 excepted).
_AMPERE = 7
_GA100 = re.compile(r"\bA100\b|\bA30\b")


def _decode(x: Any) -> Any:
    return x.decode() if isinstance(x, bytes) else x


def gpus_for_device(device: str, tp_size: int = 1, dp_size: int = 1) -> tuple[list[int] | None, str]:
    """CUDA indices a run on ``device`` with ``tp_size`` x ``dp_size`` GPUs uses, and why.

    ``None`` for a CPU run (no GPU to measure).

    Example:
        >>> gpus_for_device("cuda:2")
        ([2], 'device cuda:2 -> CUDA GPU 2')
        >>> gpus_for_device("cuda", tp_size=2)[0]
        [0, 1]
        >>> gpus_for_device("cpu")
        (None, 'device cpu uses no GPU')
    """
    if device == "cpu":
        return None, "device cpu uses no GPU"
    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not m:
        raise ValueError(f"device {device!r}: expected cpu, cuda or cuda:N")
    first, n = int(m.group(1) or 0), tp_size * dp_size
    gpus = list(range(first, first + n))
    parallel = f", tp_size {tp_size} x dp_size {dp_size}" if n > 1 else ""
    return gpus, f"device {device}{parallel} -> CUDA GPU{'s' * (n > 1)} {', '.join(map(str, gpus))}"


@dataclass(frozen=True)
class _Visible:
    """One GPU as CUDA enumerates it: the NVML device to read, and the MIG instance if any."""

    nvml_index: int
    handle: Any
    uuid: str
    mig_uuid: str | None = None


@register_meter("nvml", priority=0)
class NvmlMeter(Meter):
    """Energy of NVIDIA GPUs through NVML, summed over the GPUs the run uses.

    At start the meter measures the energy counter's update period (typically 10-100 ms;
    windows shorter than ten of them are flagged) and, unless ``sample_interval_s`` is
    given, samples power at that period (between 20 and 100 ms). The energy counter (in the
    trace), clocks, temperature, utilisation and throttle reasons are read about every 2 s
    only: on an H200 one counter read took 7 ms of CPU, one power-field read 0.01 ms, so this
    keeps the sampler under 1 % of a core. Window edges always read the counter.

    Example:
        ```python
        from ttclib.energy import NvmlMeter
        with NvmlMeter(gpus=[0]) as meter:
            meter.measure_idle(5)
            meter.start_sampling()
            meter.begin_window("generate")
            run_the_benchmark()
            m = meter.end_window("generate")
            print(m.total_j, m.net_j, m.method, meter.describe()["devices"][0]["power_source"])
        ```
    """

    counter_method = "energy_counter"

    def __init__(
        self,
        gpus: Sequence[int] | None = None,
        sample_interval_s: float | None = None,
        counter_probe_s: float = 1.5,
        power_source: str = "auto",
        scope: str | None = None,
        retries: int = 3,
        slow_every: int | None = None,
    ) -> None:
        """Initialise NVML and find the GPUs.

        Args:
            gpus: CUDA indices of the GPUs to measure; default all visible ones.
            sample_interval_s: Period of the background sampler, seconds; default derived from
                the counter's update period.
            counter_probe_s: At most this long is spent measuring the counter's update period (0 skips it).
            power_source: ``"auto"`` (instant field where supported), ``"instant"`` or ``"usage"``.
            scope: Why these GPUs (recorded in ``describe()``).
            retries: Further attempts after a failed counter read.
            slow_every: Read the energy counter, clocks, temperature, utilisation and throttle reasons
                every n-th sweep only (default: about every 2 s); power is read every sweep.

        Raises:
            RuntimeError: NVML cannot be initialised, sees no GPU, or a GPU index is out of range.
        """
        super().__init__(sample_interval_s or 0.1, retries)
        if power_source not in ("auto", "instant", "usage"):
            raise ValueError(f"power_source must be auto, instant or usage, got {power_source!r}")
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
        self._sweep = 0
        self._slow_row: dict[str, tuple] = {}  # per device, the last _slow_readings
        try:
            self._setup(gpus, counter_probe_s, power_source, scope)
        except pynvml.NVMLError as err:
            self._close()
            raise RuntimeError(f"NVML query failed: {err}") from err
        except BaseException:
            self._close()
            raise
        if sample_interval_s is None and self.counter_update_period_s:
            self.sample_interval_s = float(np.clip(self.counter_update_period_s, 0.02, 0.1))
        self.sample_interval_source = (
            "parameter"
            if sample_interval_s
            else ("counter update period" if self.counter_update_period_s else "default")
        )
        self.slow_every = max(1, int(slow_every or round(2.0 / self.sample_interval_s)))

    # -- set-up ----------------------------------------------------------------------------

    def _setup(self, gpus: Sequence[int] | None, probe_s: float, power_source: str, scope: str | None) -> None:
        nv = self._nvml
        visible, self._cvd_note = self._visible()
        if not visible:
            raise RuntimeError("NVML sees no GPU (check CUDA_VISIBLE_DEVICES and the driver)")
        cuda_idx = list(range(len(visible))) if gpus is None else [int(g) for g in gpus]
        if not cuda_idx:
            raise RuntimeError("no GPU selected (gpus=[])")
        bad = [g for g in cuda_idx if not 0 <= g < len(visible)]
        if bad:
            raise RuntimeError(
                f"GPU indices {bad} out of range: {len(visible)} GPU(s) visible "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})"
            )
        self._cuda_idx = cuda_idx
        self._gpus = [visible[g] for g in cuda_idx]
        self._handles = [v.handle for v in self._gpus]
        self.nvml_indices = [v.nvml_index for v in self._gpus]  # what clock locks address (ttclib.energy.clocks)
        self.devices = [f"gpu{g}" for g in cuda_idx]
        self.scope = scope or ("all visible GPUs" if gpus is None else f"CUDA GPU(s) {cuda_idx}")
        self._counter0 = {dev: self._first_counter(h) for dev, h in zip(self.devices, self._handles, strict=True)}
        self._power_fn = [self._power_reader(h, power_source) for h in self._handles]
        self._clock_reasons = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nv, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        self.counter_update_period_s = self._probe_counter_period(probe_s)

    def _first_counter(self, h: Any) -> float | None:
        """The counter's first reading, joules; None when this GPU has no counter (or keeps failing)."""
        nv = self._nvml
        for attempt in range(self.retries + 1):
            try:
                return nv.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0
            except nv.NVMLError as err:
                self._read_errors.append(f"{type(err).__name__}: {err}")
                if not self._transient(err):
                    return None
                time.sleep(0.005 * 2**attempt)
        return None

    def _visible(self) -> tuple[list[_Visible], str | None]:
        """GPUs in CUDA's order: all NVML devices, or those ``CUDA_VISIBLE_DEVICES`` lists."""
        nv = self._nvml
        every = []
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            every.append(_Visible(i, h, str(_decode(self._try(nv.nvmlDeviceGetUUID, h)))))
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        if env is None:
            return every, None
        out: list[_Visible] = []
        for item in (s.strip() for s in env.split(",")):
            found = self._lookup(item, every)
            if found is None:  # CUDA stops at the first invalid entry
                return out, f"CUDA_VISIBLE_DEVICES entry {item!r} matches no GPU: entries from it on are ignored"
            out.append(found)
        return out, None

    def _lookup(self, item: str, every: list[_Visible]) -> _Visible | None:
        if re.fullmatch(r"\d+", item):
            return every[int(item)] if int(item) < len(every) else None
        if item.startswith("MIG-"):
            return self._mig(item, every)
        prefix = item if item.startswith("GPU-") else f"GPU-{item}"
        matches = [v for v in every if v.uuid.startswith(prefix)]
        return matches[0] if len(matches) == 1 else None

    def _mig(self, mig_uuid: str, every: list[_Visible]) -> _Visible | None:
        nv = self._nvml
        try:
            mig = nv.nvmlDeviceGetHandleByUUID(mig_uuid)
            parent = nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)
            index = nv.nvmlDeviceGetIndex(parent)
        except (nv.NVMLError, AttributeError):
            return None
        return _Visible(index, every[index].handle, every[index].uuid, mig_uuid)

    def _power_reader(self, h: Any, source: str) -> tuple[str, Callable[[], float]]:
        """(name, reader in watts): the instant field where supported (or asked for), else power usage."""
        nv = self._nvml
        field_id = getattr(nv, "NVML_FI_DEV_POWER_INSTANT", None)
        if source != "usage" and field_id is not None and hasattr(nv, "nvmlDeviceGetFieldValues"):

            def instant() -> float:
                fv = nv.nvmlDeviceGetFieldValues(h, [field_id])[0]
                if fv.nvmlReturn != 0:
                    raise nv.NVMLError(fv.nvmlReturn)
                return field_value(fv) / 1000.0

            try:
                instant()
                return "field_power_instant", instant
            except nv.NVMLError as err:
                if source == "instant":
                    raise RuntimeError(f"NVML_FI_DEV_POWER_INSTANT is not available on this GPU: {err}") from err
        return "power_usage", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0

    def _probe_counter_period(self, max_s: float, changes: int = 6) -> float | None:
        """Median interval between changes of the first counter-capable GPU's energy counter."""
        devs = [i for i, d in enumerate(self.devices) if self._counter0[d] is not None]
        if not devs or max_s <= 0:
            return None
        h, nv = self._handles[devs[0]], self._nvml
        last = nv.nvmlDeviceGetTotalEnergyConsumption(h)
        seen: list[float] = []  # monotonic times of counter changes
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

    # -- readings --------------------------------------------------------------------------

    def _integrated_devices(self) -> list[str]:
        return [d for d, c in self._counter0.items() if c is None]

    def _transient(self, err: Exception) -> bool:
        return getattr(err, "value", None) not in _PERMANENT

    def _try(self, fn: Callable | None, *args: Any) -> Any:
        """Call an NVML function; NaN when it is missing or fails."""
        if fn is None:
            return NAN
        try:
            return fn(*args)
        except self._nvml.NVMLError:
            return NAN

    def _read_energy(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for dev, h in zip(self.devices, self._handles, strict=True):
            c0 = self._counter0[dev]
            out[dev] = None if c0 is None else self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0 - c0
        return out

    def _sample(self) -> list[tuple]:
        slow = self._sweep % self.slow_every == 0
        self._sweep += 1
        rows = []
        for dev, h, (_, power) in zip(self.devices, self._handles, self._power_fn, strict=True):
            if slow or dev not in self._slow_row:
                self._slow_row[dev] = self._slow_readings(dev, h)
            energy, *rest = self._slow_row[dev]
            rows.append((dev, self._try(power), energy, *rest))
        return rows

    def _slow_readings(self, dev: str, h: Any) -> tuple:
        """Energy counter, clocks, temperature, utilisation, throttle reasons: the costly calls
        (the counter read took 7 ms on an H200, the power field 0.01 ms), read every ``slow_every`` sweeps."""
        nv, c0 = self._nvml, self._counter0[dev]
        energy = NAN if c0 is None else self._try(nv.nvmlDeviceGetTotalEnergyConsumption, h) / 1000.0 - c0
        util = self._try(nv.nvmlDeviceGetUtilizationRates, h)
        throttle = self._try(self._clock_reasons, h)
        return (
            energy,
            self._try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
            self._try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM),
            self._try(getattr(nv, "nvmlDeviceGetTemperature", None), h, getattr(nv, "NVML_TEMPERATURE_GPU", 0)),
            NAN if isinstance(util, float) else util.gpu,
            NAN if isinstance(util, float) else util.memory,
            0 if isinstance(throttle, float) else int(throttle),
        )

    # -- description -----------------------------------------------------------------------

    def _power_averaged(self, h: Any, name: str, source: str) -> bool | None:
        """Whether the power readings are a 1 s average (NVML's documentation, by architecture)."""
        if source == "field_power_instant":
            return False
        arch = self._try(getattr(self._nvml, "nvmlDeviceGetArchitecture", None), h)
        if isinstance(arch, float):  # unknown architecture
            return None
        return bool(_AMPERE <= int(arch) < 0xFFFFFFFF and not _GA100.search(name or ""))

    def _describe_devices(self) -> list[dict[str, Any]]:
        nv, out = self._nvml, []
        for dev, g, v, (source, _) in zip(self.devices, self._cuda_idx, self._gpus, self._power_fn, strict=True):
            h = v.handle
            name = _decode(self._try(nv.nvmlDeviceGetName, h))
            out.append(
                {
                    "name": dev,
                    "index": g,
                    "nvml_index": v.nvml_index,
                    "model": name,
                    "uuid": v.uuid,
                    "mig_uuid": v.mig_uuid,
                    "note": None
                    if v.mig_uuid is None
                    else (
                        f"MIG instance {v.mig_uuid}: NVML meters whole GPUs, so this is the energy of GPU "
                        f"{v.nvml_index}, shared with its other instances"
                    ),
                    "power_limit_w": self._try(nv.nvmlDeviceGetPowerManagementLimit, h) / 1000.0,
                    "method": "power_integration" if self._counter0[dev] is None else "energy_counter",
                    "power_source": source,
                    "power_averaged": self._power_averaged(h, name, source),
                }
            )
        return out

    def _describe_extra(self) -> dict[str, Any]:
        order = os.environ.get("CUDA_DEVICE_ORDER")
        return {
            "driver_version": _decode(self._try(self._nvml.nvmlSystemGetDriverVersion)),
            "scope": self.scope,
            "sample_interval_source": getattr(self, "sample_interval_source", None),
            "slow_readings_every_s": self.slow_every * self.sample_interval_s,
            "power_averaged_basis": "NVML documentation: nvmlDeviceGetPowerUsage is a 1 s average on Ampere "
            "(except GA100) and newer, instantaneous before; the instant field is not averaged",
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "cuda_visible_devices_note": self._cvd_note,
            "cuda_device_order": order,
            "cuda_device_order_note": None
            if order == "PCI_BUS_ID" or len(self._gpus) < 2
            else (
                "CUDA_DEVICE_ORDER is not PCI_BUS_ID: with GPUs of different models CUDA's order "
                "can differ from NVML's; set CUDA_DEVICE_ORDER=PCI_BUS_ID"
            ),
        }

    def _close(self) -> None:
        if getattr(self, "_initialized", False):
            self._initialized = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass


def field_value(fv: Any) -> float:
    """The number in an ``nvmlFieldValue_t``, read by its value type."""
    member = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}
    return float(getattr(fv.value, member.get(int(fv.valueType), "uiVal")))
