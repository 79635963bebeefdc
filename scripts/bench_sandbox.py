#!/usr/bin/env python
"""Check that ttclib.sandbox contains hostile programs, and measure what an execution costs.

1. A bounded preflight (process limit and network isolation in force), then every program in
   ``ttclib.sandbox_probes.HOSTILE_PROGRAMS`` (fork bomb, rm -rf ~, network, endless loop,
   50 GB allocations, writes outside, secret reading, daemons, stdout flood). Contained means:
   scored as a failure, canaries intact, nothing written outside, secret not leaked, no
   connection to the local listener, no process of the sandbox left, the caller alive.
2. Overhead: median wall time of ``print(1)`` over ``--repeats`` runs, and the throughput of
   ``run_many`` with ``--workers`` threads.

Exits 1 when any hostile program was not contained.

Example:
    python scripts/bench_sandbox.py --repeats 20 --workers 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttclib import sandbox, sandbox_probes  # noqa: E402


def outcome_text(outcome: sandbox_probes.Outcome) -> str:
    e = outcome.execution
    if e is None:
        return "sandbox error"
    if e.timed_out:
        what = "killed at wall-clock limit"
    elif e.returncode is not None and e.returncode < 0:
        what = f"killed by signal {-e.returncode}"
    else:
        what = f"exit {e.returncode}"
    if e.stray_processes:
        what += f", {e.stray_processes} left-behind processes killed"
    return what


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="print(1) runs for the median")
    parser.add_argument("--workers", type=int, default=2, help="run_many threads")
    parser.add_argument("--jobs", type=int, default=40, help="run_many jobs")
    args = parser.parse_args()

    limits = sandbox_probes.PROBE_LIMITS
    pre = sandbox_probes.preflight(limits)
    print(f"isolation: {', '.join(pre.isolation)}")
    print(f"probe limits: wall {limits.wall_s} s, cpu {limits.cpu_s} s, {limits.memory_mb} MiB, "
          f"{limits.processes} processes, output {limits.output_kb} KiB\n")

    outcomes = []
    print(f"{'program':15s} {'result':10s} {'wall s':>7s}  outcome")
    for name in sandbox_probes.HOSTILE_PROGRAMS:
        outcome = sandbox_probes.check_contained(name, limits)
        outcomes.append(outcome)
        wall = outcome.execution.wall_s if outcome.execution else float("nan")
        status = "contained" if outcome.contained else "ESCAPED"
        print(f"{name:15s} {status:10s} {wall:7.2f}  {outcome_text(outcome)}"
              + (f"  PROBLEMS: {'; '.join(outcome.problems)}" if outcome.problems else ""),
              flush=True)
    contained = sum(o.contained for o in outcomes)
    print(f"\nhostile programs tried: {len(outcomes)}, contained: {contained}\n")

    sandbox.run("print(1)")                                 # warm caches
    inner, outer = [], []
    for _ in range(args.repeats):
        start = time.monotonic()
        result = sandbox.run("print(1)")
        outer.append(time.monotonic() - start)
        inner.append(result.wall_s)
        assert result.ok and result.stdout == "1\n", result
    print(f"print(1): median {statistics.median(outer) * 1000:.0f} ms per run() "
          f"(program tree {statistics.median(inner) * 1000:.0f} ms), "
          f"min {min(outer) * 1000:.0f} ms, max {max(outer) * 1000:.0f} ms over {args.repeats}")

    jobs = [(f"print({i})", "") for i in range(args.jobs)]
    start = time.monotonic()
    results = sandbox.run_many(jobs, workers=args.workers)
    elapsed = time.monotonic() - start
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(args.jobs)]
    print(f"run_many: {args.jobs} jobs with {args.workers} workers in {elapsed:.2f} s "
          f"= {args.jobs / elapsed:.1f} executions/s")
    return 0 if contained == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
