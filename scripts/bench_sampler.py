#!/usr/bin/env python
"""Measure what the energy meters' background sampler costs in CPU time.

Runs each meter's sampler for ``--seconds`` while the main thread sleeps and reports the
process CPU time consumed as a percentage of one core (target: < 1 % at 10 Hz):

- ``nvml (fake)``: NvmlMeter against ``tests/fake_pynvml.py`` (Hopper profile: instant power field)
  (a pure-Python stand-in, so the figure approximates the real library's per-call cost, not the driver's);
- ``estimate``: EstimateMeter (walks this process tree through /proc each sample).

Example:
    python scripts/bench_sampler.py --seconds 10 --interval 0.1 --gpus 1 8
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_fake_pynvml():
    """tests/fake_pynvml.py installed as ``pynvml``."""
    sys.path.insert(0, str(ROOT / "tests"))
    import fake_pynvml

    return fake_pynvml.install()


def cost(meter, seconds: float) -> dict:
    """CPU used by the process while ``meter`` samples and the main thread sleeps."""
    cpu0, wall0 = time.process_time(), time.monotonic()
    meter.start_sampling()
    time.sleep(seconds)
    meter.stop_sampling()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    d = meter.describe()
    return {
        "wall_s": wall,
        "process_cpu_s": cpu,
        "pct_of_one_core": 100.0 * cpu / wall,
        "sampler_thread_cpu_s": d["sampler"]["cpu_s"],
        "sampler_thread_pct_of_one_core": 100.0 * d["sampler"]["cpu_s"] / wall,
        "sweeps": d["sampler"]["sweeps"],
        "samples_kept": d["sampler"]["samples"],
        "duplicates_dropped": d["sampler"]["duplicates_dropped"],
        "sample_errors": d["sampler"]["errors"],
        "sweeps_per_s": d["sampler"]["sweeps"] / wall,
        "cpu_us_per_sweep": 1e6 * d["sampler"]["cpu_s_per_sweep"] if d["sampler"]["cpu_s_per_sweep"] else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="sampling time per meter (default 10)")
    ap.add_argument("--interval", type=float, default=0.1, help="sample interval, s (default 0.1 = 10 Hz)")
    ap.add_argument("--gpus", type=int, nargs="+", default=[1], help="fake GPU counts to try (default 1)")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)

    fake = load_fake_pynvml()
    from ttclib.energy import EstimateMeter, NvmlMeter

    cpu0 = time.process_time()
    time.sleep(1.0)
    results = {"baseline_sleep_pct_of_one_core": 100.0 * (time.process_time() - cpu0) / 1.0}
    for n in args.gpus:
        fake.setup([fake.FakeGPU(profile="hopper", power_w=250.0, noise_w=5.0, seed=i) for i in range(n)])
        with NvmlMeter(sample_interval_s=args.interval, counter_probe_s=0) as meter:
            results[f"nvml_fake_{n}gpu"] = cost(meter, args.seconds)
    with EstimateMeter(sample_interval_s=args.interval) as meter:
        results["estimate"] = cost(meter, args.seconds)
        results["estimate"]["process_tree_source"] = meter.describe()["process_tree_source"]

    print(
        f"sampler at {1 / args.interval:g} Hz, {args.seconds:g} s per meter "
        f"(baseline while sleeping: {results['baseline_sleep_pct_of_one_core']:.3f} % of one core)"
    )
    for name, r in results.items():
        if isinstance(r, dict):
            print(
                f"  {name:16s} {r['pct_of_one_core']:6.3f} % of one core (process), "
                f"sampler thread {r['sampler_thread_pct_of_one_core']:6.3f} %, "
                f"{r['cpu_us_per_sweep'] or 0:7.1f} us CPU per sweep, {r['sweeps_per_s']:.2f} sweeps/s, "
                f"{r['sample_errors']} errors"
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
