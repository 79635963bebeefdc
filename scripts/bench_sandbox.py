#!/usr/bin/env python
"""Check that ttclib.sandbox contains hostile programs, and measure what an execution costs.

1. A bounded preflight (process limit and network isolation in force), then every program in
   ``HOSTILE_PROGRAMS`` of ``tests/sandbox_probes.py`` (fork bomb, rm -rf ~, network, endless loop,
   50 GB allocations, writes outside, secret reading, daemons, stdout flood, the caller's
   keyring, a host Unix socket, new user namespaces, memfd hoarding past the memory limits,
   lowering oom_score_adj). Contained means: scored as a failure, canaries intact, nothing
   written outside, secret not leaked, no connection to the local TCP or Unix listener, the
   caller's key intact, no process of the sandbox left, the caller alive.
2. Every forged verdict in ``FORGERIES`` of ``tests/sandbox_probes.py`` (stolen secrets, a faked
   completion, exit-0 tricks, objects equal to everything...) against ``passes_asserts`` and
   ``passes_call``: each must score as not passed.
3. Overhead: median wall time of ``print(1)`` over ``--repeats`` runs, and the throughput of
   ``run_many`` with ``--workers`` threads.
4. Scoring: seconds per scored answer through the code benchmarks' own scorers: the first
   ``--problems`` HumanEval canonical solutions (assert tests), MBPP reference solutions and a
   LiveCodeBench functional problem (when ``../shared/data`` is present), and a stdin/stdout
   program whose expected output is ``--big-mib`` MiB.

Exits 1 when any hostile program was not contained or any forged verdict passed.

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
# the hostile programs and forged verdicts live with the tests, which import them the same way
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))

import sandbox_probes  # noqa: E402

from ttclib import sandbox  # noqa: E402


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
    parser.add_argument("--problems", type=int, default=20, help="problems per scoring benchmark")
    parser.add_argument("--big-mib", type=float, default=4.0, help="expected stdout of the big case")
    args = parser.parse_args()

    limits = sandbox_probes.PROBE_LIMITS
    pre = sandbox_probes.preflight(limits)
    print(f"isolation: {', '.join(pre.isolation)}")
    print(
        f"probe limits: wall {limits.wall_s} s, cpu {limits.cpu_s} s, {limits.memory_mb} MiB, "
        f"{limits.processes} processes, output {limits.output_kb} KiB\n"
    )

    outcomes = []
    print(f"{'program':15s} {'result':10s} {'wall s':>7s}  outcome")
    for name in sandbox_probes.HOSTILE_PROGRAMS:
        outcome = sandbox_probes.check_contained(name, limits)
        outcomes.append(outcome)
        wall = outcome.execution.wall_s if outcome.execution else float("nan")
        status = "contained" if outcome.contained else "ESCAPED"
        print(
            f"{name:15s} {status:10s} {wall:7.2f}  {outcome_text(outcome)}"
            + (f"  PROBLEMS: {'; '.join(outcome.problems)}" if outcome.problems else ""),
            flush=True,
        )
    contained = sum(o.contained for o in outcomes)
    print(f"\nhostile programs tried: {len(outcomes)}, contained: {contained}\n")

    forged = []
    start = time.monotonic()
    for name in sandbox_probes.FORGERIES:
        for harness in ("asserts", "call"):
            verdict = sandbox_probes.check_forgery(name, harness)
            if verdict.passed:
                forged.append(f"{name} ({harness})")
    print(
        f"forged verdicts tried: {2 * len(sandbox_probes.FORGERIES)} in "
        f"{time.monotonic() - start:.1f} s, passed: {len(forged)} {' '.join(forged)}\n"
    )

    sandbox.run("print(1)")  # warm caches
    inner, outer = [], []
    for _ in range(args.repeats):
        start = time.monotonic()
        result = sandbox.run("print(1)")
        outer.append(time.monotonic() - start)
        inner.append(result.wall_s)
        assert result.ok and result.stdout == "1\n", result
    print(
        f"print(1): median {statistics.median(outer) * 1000:.0f} ms per run() "
        f"(program tree {statistics.median(inner) * 1000:.0f} ms), "
        f"min {min(outer) * 1000:.0f} ms, max {max(outer) * 1000:.0f} ms over {args.repeats}"
    )

    jobs = [(f"print({i})", "") for i in range(args.jobs)]
    start = time.monotonic()
    results = sandbox.run_many(jobs, workers=args.workers)
    elapsed = time.monotonic() - start
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(args.jobs)]
    print(
        f"run_many: {args.jobs} jobs with {args.workers} workers in {elapsed:.2f} s "
        f"= {args.jobs / elapsed:.1f} executions/s"
    )
    bench_scoring(args.problems, args.big_mib)
    return 0 if contained == len(outcomes) and not forged else 1


DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def scoring_sets(n: int) -> list[tuple[str, list, object]]:
    """(name, problems, benchmark) for the code benchmarks whose reference solutions run."""
    from ttclib import benchmarks

    he = benchmarks.get("humaneval")
    sets = [("humaneval", he.load(per_level=None)[:n], he)]
    if (DATA / "mbpp" / "mbpp.jsonl").exists():
        mbpp = benchmarks.get("mbpp")
        sets.append(("mbpp", mbpp.load(per_level=None, data=DATA / "mbpp" / "mbpp.jsonl")[:n], mbpp))
    return sets


def bench_scoring(n: int, big_mib: float) -> None:
    for name, problems, benchmark in scoring_sets(n):
        start = time.monotonic()
        passed = sum(benchmark.score(p.answer, p).correct for p in problems)
        elapsed = time.monotonic() - start
        print(
            f"{name}: {passed}/{len(problems)} reference solutions pass, "
            f"{elapsed / len(problems) * 1000:.0f} ms per answer"
        )
    cases = [([list(range(i, i + 50))], sorted(range(i, i + 50), reverse=True)) for i in range(200)]
    start = time.monotonic()
    ok = sandbox.passes_call("def rev(xs):\n    return sorted(xs, reverse=True)\n", "rev", cases)
    print(f"passes_call with {len(cases)} cases: passed={ok}, {time.monotonic() - start:.2f} s")
    lines = int(big_mib * 2**20 / 8)
    program = "import sys\nn = int(input())\nsys.stdout.write(''.join(f'{i:7d}\\n' for i in range(n)))\n"
    expected = "".join(f"{i:7d}\n" for i in range(lines))
    start = time.monotonic()
    ok = sandbox.passes_io(program, [(f"{lines}\n", expected)], sandbox.Limits(wall_s=30))
    print(f"stdin/stdout with {len(expected) / 2**20:.1f} MiB expected: passed={ok}, {time.monotonic() - start:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
