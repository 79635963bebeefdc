#!/usr/bin/env python
"""Check NVML energy on a real GPU: energy counter vs integrated sampled power.

Measures the idle baseline, then loads the GPU(s) with bf16 matmuls in a loop (torch with
CUDA; without it, warns and measures an idle window instead) for ``--seconds`` inside one
NvmlMeter window, sampling power every ``--interval`` seconds. Per GPU it prints the energy
from ``nvmlDeviceGetTotalEnergyConsumption`` deltas, the trapezoid integral of the sampled
``nvmlDeviceGetPowerUsage``, their ratio, the counter update period and the idle power,
and writes the figures as JSON to ``--out``.

On H100 ``nvmlDeviceGetPowerUsage`` is a 1 s moving average, so the integral lags the
counter by ~0.5 s at the window's edges; use windows of >= 10 s.

Example:
    python scripts/nvml_check.py --seconds 15 --out outputs/nvml_check.json
    python scripts/nvml_check.py --fake --seconds 2   # smoke test with tests/fake_pynvml.py
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def install_fake_pynvml():
    """Use tests/fake_pynvml.py as ``pynvml``: one 250 W GPU (for a smoke test without a GPU)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import fake_pynvml

    mod = fake_pynvml.install()
    mod.setup([mod.FakeGPU(power_w=250.0, update_period_s=0.02)])


def make_load(gpus: list[int], size: int):
    """A function running one round of matmuls on every GPU, or None without CUDA torch."""
    try:
        import torch
    except ImportError:
        return None, None
    if not torch.cuda.is_available():
        return None, None
    mats = [
        (torch.randn(size, size, device=f"cuda:{g}", dtype=torch.bfloat16),
         torch.randn(size, size, device=f"cuda:{g}", dtype=torch.bfloat16))
        for g in gpus
    ]

    def step(n: int = 8) -> None:
        for a, b in mats:
            for _ in range(n):
                a @ b
        for g in gpus:
            torch.cuda.synchronize(g)

    return step, torch.__version__


def integrate(df, t0: float, t1: float) -> float:
    """Trapezoid integral of one device's sampled power over [t0, t1], joules."""
    df = df.dropna(subset=["power_w"]).sort_values("t")
    t, p = df["t"].to_numpy(), df["power_w"].to_numpy()
    if t.size == 0:
        return float("nan")
    x = np.concatenate(([t0], t[(t > t0) & (t < t1)], [t1]))
    return float(np.trapezoid(np.interp(x, t, p), x))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12.0, help="loaded window length, s (>= 10 recommended)")
    ap.add_argument("--idle-seconds", type=float, default=5.0, help="idle baseline length, s (default 5)")
    ap.add_argument("--interval", type=float, default=0.1, help="sample interval, s (default 0.1)")
    ap.add_argument("--gpus", type=int, nargs="*", help="CUDA indices (default: all visible)")
    ap.add_argument("--size", type=int, default=8192, help="matmul size (default 8192)")
    ap.add_argument("--out", type=Path, default=Path("outputs/nvml_check.json"), help="JSON output path")
    ap.add_argument("--fake", action="store_true", help="use tests/fake_pynvml.py (smoke test, no GPU)")
    args = ap.parse_args(argv)
    if args.seconds < 10 and not args.fake:
        warnings.warn("windows shorter than 10 s make the counter/integration comparison noisy")

    if args.fake:
        install_fake_pynvml()
    from ttclib.energy import NvmlMeter

    try:
        meter = NvmlMeter(gpus=args.gpus, sample_interval_s=args.interval)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with meter:
        cuda_idx = [d["index"] for d in meter.describe()["devices"]]
        step, torch_version = (None, None) if args.fake else make_load(cuda_idx, args.size)
        if step is None:
            warnings.warn("torch with CUDA not available: the 'loaded' window is idle")
        else:
            step(2)  # warm up (cuBLAS init, clocks up)
        print(f"measuring idle for {args.idle_seconds:g} s ...", flush=True)
        idle_w = meter.measure_idle(args.idle_seconds)
        meter.start_sampling()
        print(f"loading {len(cuda_idx)} GPU(s) for {args.seconds:g} s ...", flush=True)
        meter.begin_window("load")
        deadline, rounds = time.monotonic() + args.seconds, 0
        while time.monotonic() < deadline:
            if step is None:
                time.sleep(0.05)
            else:
                step()
            rounds += 1
        m = meter.end_window("load")
        meter.stop_sampling()
        trace = meter.trace()
        info = meter.describe()

    t0, t1 = m.start_s, m.start_s + m.time_s
    per_gpu = {}
    for dev, energy in m.energy_j.items():
        rows = trace[trace["device"] == dev]
        integ = integrate(rows, t0, t1)
        win = rows[(rows["t"] >= t0) & (rows["t"] <= t1)]
        per_gpu[dev] = {
            "method": m.methods[dev],
            "counter_j": energy if m.methods[dev] == "energy_counter" else None,
            "integrated_j": integ,
            "ratio_counter_over_integrated": energy / integ if integ else None,
            "mean_power_w": energy / m.time_s,
            "max_sampled_power_w": float(win["power_w"].max()),
            "mean_sm_clock_mhz": float(win["sm_clock_mhz"].mean()),
            "max_temp_c": float(win["temp_c"].max()),
            "mean_util_pct": float(win["util_pct"].mean()),
            "samples": int(len(win)),
        }
    result = {
        "host": platform.node(),
        "fake": args.fake,
        "loaded": step is not None,
        "torch": torch_version,
        "window_s": m.time_s,
        "matmul_rounds": rounds,
        "idle_power_w": idle_w,
        "total_j": m.total_j,
        "net_j": m.net_j,
        "counter_update_period_s": info.get("counter_update_period_s"),
        "driver_version": info.get("driver_version"),
        "devices": info["devices"],
        "sampler": info["sampler"],
        "per_gpu": per_gpu,
    }

    print(f"driver {result['driver_version']}, counter update period "
          f"{_fmt(result['counter_update_period_s'], 1000, 'ms')}, idle {idle_w:.1f} W (sum)")
    print(f"window {m.time_s:.2f} s, {'loaded' if step else 'IDLE (no CUDA torch)'}, "
          f"total {m.total_j:.1f} J, net {m.net_j:.1f} J")
    for dev, r in per_gpu.items():
        print(f"  {dev}: counter {_fmt(r['counter_j'], 1, 'J')}  integrated {r['integrated_j']:.1f} J  "
              f"ratio {_fmt(r['ratio_counter_over_integrated'], 1, '', 4)}  mean {r['mean_power_w']:.1f} W  "
              f"max {r['max_sampled_power_w']:.1f} W  SM {r['mean_sm_clock_mhz']:.0f} MHz  "
              f"{r['samples']} samples")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {args.out}")
    return 0


def _fmt(x, scale: float, unit: str, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x * scale:.{digits}f} {unit}".strip()


if __name__ == "__main__":
    sys.exit(main())
