"""Command line: ``ttc run params/<file>.yaml [--executor slurm]``, ``ttc status``, ``ttc info``, ``ttc benchmarks``."""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
from typing import Any


def _sigterm_as_exit() -> None:
    # SIGTERM unwinds like Ctrl-C so `finally` blocks stop samplers and servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _plan(args):
    """The params file's plan under ``--profile``, or None after one line naming the file and key."""
    from .params import ParamsError, load_params

    try:
        return load_params(args.params, args.profile)
    except ParamsError as e:
        print(f"error: {e}", file=sys.stderr)
        return None


def cmd_run(args) -> int:
    from .params import ParamsError
    from .rundir import status
    from .runner import measure_plan

    plan = _plan(args)
    if plan is None:
        return 2
    print(f"{plan.path} [{plan.profile}]: {len(plan.specs)} runs -> {plan.runs_dir}")
    if plan.uses:
        print(f"  (the runs of {plan.uses[0]} [{plan.uses[1]}])")
    for s in plan.specs:
        state = status(s, plan.runs_dir)
        print(
            f"  {s.run_id}  {state:7s}  {s.model:24s} {s.strategy:5s} {s.benchmark} {_shape(s)}"
            f"max_new_tokens={s.max_new_tokens} batch={s.batch_size} reps={s.repetitions} "
            f"backend={s.backend} data={_data_source(s)}"
        )
    if args.executor == "slurm":
        return _run_on_slurm(plan, args)
    if args.dry_run:
        _print_gpu_hours(plan, args.gpu)
        return 0
    _sigterm_as_exit()
    try:
        out = measure_plan(plan, progress=not args.quiet, wait=False)
    except ParamsError as e:  # e.g. a benchmark's data is missing: found before any model loads
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        print(
            f"error: disk full ({e.filename or plan.runs_dir}): every query measured up to the last checkpoint "
            f"is kept; free space and run `ttc run` again to resume",
            file=sys.stderr,
        )
        return 1
    for s in plan.specs:
        if s.run_id in out.dirs:
            print(out.dirs[s.run_id])
    for run_id, holder in out.held.items():
        print(f"skipped {run_id}: being measured by {holder}")
    return EXIT_HELD if out.held else 0


EXIT_HELD = 75  # EX_TEMPFAIL: runs of the grid are still being measured by another process


def _cluster(plan, args):
    """The profile's ``cluster:`` section with the command line's overrides."""
    from .cluster import Cluster

    given = {
        k: getattr(args, k)
        for k in (
            "partition",
            "account",
            "qos",
            "time_min",
            "gpus_per_run",
            "cpus_per_run",
            "mem_gb",
            "array_parallelism",
        )
        if getattr(args, k, None) is not None
    }
    if getattr(args, "exclusive", False):
        given["exclusive"] = True
    return (plan.cluster or Cluster()).model_copy(update=given)


def _run_on_slurm(plan, args) -> int:
    import shutil

    from . import cluster as cl

    spec = _cluster(plan, args)
    projected = cl.projected_gpu_hours(plan, args.gpu)
    todo = cl.jobs(plan, spec, projected)
    print(
        f"\n{len(todo)} job(s), one per group of runs that share a loaded model, cut to fit the "
        f"{spec.time_min}-minute time limit by projected GPU-hours, as job arrays (one per shape of resources, "
        f"at most {spec.array_parallelism} jobs of each at once)"
        f"{'; nothing to submit: every run is complete' if not todo else ''}:"
    )
    hours = cl.job_hours(todo, projected)
    print("\n".join(cl.describe(todo, spec, hours)))
    if args.dry_run:
        known = [h for h in hours if h is not None]
        if known:
            print(
                f"Wall time with at most {spec.array_parallelism} jobs at once on {args.gpu}: about "
                f"{cl.wall_hours(known, spec.array_parallelism):.1f} h for the {len(known)} job(s) with an estimate "
                f"(longest first; queueing, model loading and warm-up not included; --array-parallelism sets it)"
            )
        _print_gpu_hours(plan, args.gpu)
        return 0
    if not todo:
        return 0
    if shutil.which("sbatch") is None:
        print(
            "error: --executor slurm needs SLURM's sbatch on the PATH (run on a login node of the cluster)",
            file=sys.stderr,
        )
        return 2
    records = cl.submit(plan, spec)
    for r in records:
        print(f"submitted job {r['job_id']}: {r['model']}, {len(r['run_ids'])} run(s); log {r['stderr']}")
    print(f"follow it with: ttc status {args.params} --profile {plan.profile}")
    if not args.wait:
        return 0
    return _wait_for(plan, spec, {r["job_id"] for r in records})


def _wait_for(plan, spec, job_ids: set[str]) -> int:
    import time

    from . import cluster as cl

    while True:
        active = cl.active_jobs() or {}
        if not any(j in active or any(k.startswith(f"{j.split('_')[0]}_") for k in active) for j in job_ids):
            break
        time.sleep(5)
    rows = cl.status(plan, spec)
    print(cl.format_status(rows))
    return 0 if all(r["state"] == "done" for r in rows) else 1


def cmd_status(args) -> int:
    import dataclasses

    from . import cluster as cl

    plan = _plan(args)
    if plan is None:
        return 2
    spec = _cluster(plan, args)
    rows = cl.status(plan, spec)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"{plan.path} [{plan.profile}]: {len(rows)} runs in {plan.runs_dir}")
        print(cl.format_status(rows))
    failed = [r["run_id"] for r in rows if r["state"] == "failed"]
    if args.resubmit_failed and failed:
        again = dataclasses.replace(plan, specs=[s for s in plan.specs if s.run_id in set(failed)])
        for r in cl.submit(again, spec):
            print(f"resubmitted as job {r['job_id']}: {', '.join(r['run_ids'])}")
    return 0


def _cluster_options(p) -> None:
    g = p.add_argument_group("SLURM (--executor slurm; override the profile's cluster: section)")
    g.add_argument("--partition")
    g.add_argument("--account")
    g.add_argument("--qos")
    g.add_argument("--time-min", type=int, help="wall-time limit per job, minutes")
    g.add_argument("--gpus-per-run", type=int, help="GPUs per job (default: tp_size x dp_size on CUDA, 0 on a CPU)")
    g.add_argument("--cpus-per-run", type=int)
    g.add_argument("--mem-gb", type=float)
    g.add_argument("--array-parallelism", type=int, help="jobs of the array running at once")
    g.add_argument("--exclusive", action="store_true", help="each job has its node alone (no shared power draw)")


def _shape(s) -> str:
    """The fields that set a run's shape beyond the usual columns, when set: samples, prompt length,
    fixed output length, subsets, scoring by log-likelihood, locked clocks."""
    parts = [
        f"samples={s.resolved_strategy.samples}" if s.samples is not None else "",
        f"input_tokens={s.input_tokens}" if s.input_tokens is not None else "",
        "ignore_eos" if s.ignore_eos else "",
        f"subsets={','.join(s.subsets)}" if s.subsets else "",
        "scoring=loglikelihood" if s.scoring == "loglikelihood" else "",
        f"sm_clock_mhz={s.sm_clock_mhz}" if s.sm_clock_mhz is not None else "",
        f"mem_clock_mhz={s.mem_clock_mhz}" if s.mem_clock_mhz is not None else "",
    ]
    return "".join(f"{p} " for p in parts if p)


def _data_source(spec) -> str:
    """Where the data would come from; only looks at local paths (``hub`` is never contacted)."""
    from . import benchmarks

    try:
        return benchmarks.get(spec.benchmark).source.locate(spec.benchmark, spec.data_path).kind
    except benchmarks.BenchmarkDataError:
        return "missing"


def _print_gpu_hours(plan, gpu: str) -> None:
    """Projected GPU-hours per run and in total (ttclib.gpu_hours), each number saying where it comes from."""
    from . import gpu_hours
    from .rundir import is_complete

    est = gpu_hours.estimate_plan(plan, gpu_hours.Roofline(gpu_hours.GPUS[gpu]))
    print(f"\nEstimated GPU-hours on {est.roofline.gpu.name} (an estimate, not a measurement; ttclib.gpu_hours):")
    print(
        f"  {'run_id':12s}  {'est GPU-h':>9s}  {'queries':>9s}  {'at once':>7s}  {'out tok/q':>9s}  "
        f"output tokens from | problems from"
    )
    todo = 0.0
    for r in est.runs:
        hours = "n/a" if r.gpu_hours is None else _hours(r.gpu_hours)
        queries = "?" if r.queries is None else str(r.queries)
        running = "?" if r.running is None else str(r.running)
        why = f"  [no estimate: {r.missing}]" if r.missing else ""
        print(
            f"  {r.spec.run_id:12s}  {hours:>9s}  {queries:>9s}  {running:>7s}  {r.output_tokens.per_query:>9.0f}  "
            f"{r.output_tokens.source} | {r.problems.source}{why}"
        )
        if r.gpu_hours is not None and not is_complete(r.spec, plan.runs_dir):
            todo += r.gpu_hours
    known = sum(r.gpu_hours is not None for r in est.runs)
    print(
        f"Estimated total: {_hours(est.gpu_hours)} GPU-hours on {est.roofline.gpu.name} for {known} of "
        f"{len(est.runs)} runs ({_hours(todo)} GPU-hours not measured yet); energy at most "
        f"{est.energy_upper_bound_kwh:,.4g} kWh (upper bound: GPU-hours × {est.roofline.gpu.tdp_w:g} W TDP)"
    )
    print(f"Assumptions: {est.assumptions()}")


def _hours(h: float) -> str:
    return f"{h:.3g}" if h < 100 else f"{h:,.0f}"


def cmd_info(args) -> int:
    from . import energy, hardware, models, serving
    from .server import sglang_python

    why = serving.sglang_usable()[1]
    info: dict[str, Any] = {
        "hardware": hardware.describe(),
        "meters": energy.available_meters(),
        "backends": {
            "sglang": sglang_python() or "not installed",
            "auto": f"{serving.resolve_backend('auto')} ({why})",
        },
        "embedded_models": {
            n: {"state": models.is_available(n)[1], "converted": models.is_converted(n), **models.resolve(n).info}
            for n in models.EMBEDDED
        },
        "random_configs": models.random_configs(),
        "software": hardware.software_versions(),
    }
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    hw = info["hardware"]
    print(
        f"CPU      {hw['cpu']} ({hw['cpu_count']} cores, {hw['usable_cpus']} usable), {hw['memory_gib']} GiB, "
        f"bf16: {hw['cpu_bf16'] or 'emulated (dtype auto runs float32)'}"
    )
    print("GPUs     " + (", ".join(f"{g['index']}: {g['name']}" for g in hw["gpus"]) or "none visible to NVML"))
    for name, state in info["meters"].items():
        print(f"meter    {name:9s} {state}")
    for name, state in info["backends"].items():
        print(f"backend  {name:9s} {state}")
    for name, m in info["embedded_models"].items():
        print(f"model    {name:28s} {m['state']}{'' if m['converted'] else ' (not converted yet: once, on first use)'}")
        print(f"           {m['description']}")
        print(
            f"           from {m['package']}"
            + (f", sha256 {m['gguf_sha256'][:16]}…" if "gguf_sha256" in m else "")
            + (f", GGUF name {m['gguf_name']!r}" if m.get("gguf_name") else "")
        )
        if m.get("upstream"):
            print(f"           upstream {m['upstream']}, licence {m['license']}")
    print(f"random   {', '.join('random:' + c for c in info['random_configs'])}")
    return 0


def cmd_benchmarks(args) -> int:
    from . import benchmarks

    print(f"{'benchmark':14s} {'category':12s} {'metric':9s} {'levels':36s} data on this machine")
    for name in benchmarks.names():
        b = benchmarks.get(name)
        try:
            loc = b.source.locate(name)
            where = f"{loc.kind}: {loc.where}" + (" (needs network)" if loc.kind == "hub" else "")
        except benchmarks.BenchmarkDataError as e:
            where = f"none ({e})"
        print(f"{name:14s} {b.category:12s} {b.metric:9s} {'/'.join(b.levels) or '-':36s} {where}")
    print(
        "\nSet `data:` in a params file, or $TTC_DATA_DIR to a folder in the standard layout "
        "(math500/test.jsonl, gsm8k/test.jsonl, mmlu/test/*.csv, ...), to use local files."
    )
    return 0


def cmd_clocks(args) -> int:
    from .energy import clocks

    if args.reset:
        reset = clocks.recover()
        print(
            "\n".join(
                f"reset GPU {i['index']} (left at SM {i.get('sm_mhz')} MHz by pid {i['pid']}, no longer running)"
                for i in reset
            )
            or "no clocks left locked by a dead process"
        )
        return 0
    files = sorted(clocks.lock_dir().glob("gpu*-*.json")) if clocks.lock_dir().is_dir() else []
    print("\n".join(f.read_text() for f in files) or f"no clock locks ({clocks.lock_dir()})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ttc", description="Measure the energy cost of test-time compute (ttc-energy)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    from .gpu_hours import BANDWIDTH_EFFICIENCY, COMPUTE_EFFICIENCY, DEFAULT_GPU, GPUS

    run = sub.add_parser(
        "run",
        help="run every grid point of a params file (cached runs are reused)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Validate a params file, then measure each run not yet in its runs_dir.\n"
        "Runs resume after interruption; finished runs are never re-measured.\n"
        "A run another process is measuring (its runs_dir/<run_id>.lock is held) is skipped\n"
        "and named at the end; the exit status is then 75 (grid not complete yet), else 0.\n"
        "Ctrl-C exits 130 and a full disk 1, keeping every checkpointed query.\n\n"
        "--dry-run lists the runs and ESTIMATES the GPU-hours of each and in total, in seconds,\n"
        "offline (no model loading, no download). The estimate is a memory-bandwidth roofline:\n"
        "each decode step streams the weights (parameter count from the model's config) and\n"
        f"the batch's KV cache at {BANDWIDTH_EFFICIENCY:.0%} of the GPU's bandwidth, prefill at "
        f"{COMPUTE_EFFICIENCY:.0%} of peak FLOPs,\n"
        "x tp_size GPUs. Output tokens per query: the measured mean of completed runs of the\n"
        "same model, strategy and benchmark in runs_dir, else the paper's figures (Base ~200,\n"
        "RT ~7845, one token for multiple choice), capped at max_new_tokens. Energy is bounded\n"
        "above by GPU-hours x TDP. Model loading, warm-up and idle windows are not included.\n"
        "Problems are counted in local data, else taken from each benchmark's documented size.",
    )
    run.add_argument("params", help="params/<section>.yaml")
    run.add_argument("--profile", default="default", help="profile inside the params file (default: default)")
    run.add_argument(
        "--dry-run", action="store_true", help="validate and list the runs without measuring, with estimated GPU-hours"
    )
    run.add_argument(
        "--gpu",
        default=DEFAULT_GPU,
        choices=sorted(GPUS),
        help=f"GPU the --dry-run estimate is for (default: {DEFAULT_GPU}, the paper's)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument(
        "--executor",
        choices=("local", "slurm"),
        default="local",
        help="local: measure here (default); slurm: submit one job per group of runs sharing a model "
        "(submitit), into the same runs_dir; with --dry-run, list the jobs and their resources",
    )
    run.add_argument(
        "--wait", action="store_true", help="with --executor slurm: wait for the jobs, then show the status"
    )
    _cluster_options(run)
    run.set_defaults(func=cmd_run)
    st = sub.add_parser(
        "status",
        help="which runs of a grid are done, running, pending, failed or to run",
        description="The state of every run of a params file's profile: done (complete in runs_dir), "
        "running (a process holds its lock: SLURM job and node), pending (its job is "
        "queued), failed (its job ended without completing it: why, and the log), to run.",
    )
    st.add_argument("params", help="params/<section>.yaml")
    st.add_argument("--profile", default="default", help="profile inside the params file (default: default)")
    st.add_argument("--resubmit-failed", action="store_true", help="submit the failed runs again (they resume)")
    st.add_argument("--json", action="store_true", help="one JSON object per run")
    _cluster_options(st)
    st.set_defaults(func=cmd_status)
    info = sub.add_parser("info", help="show the hardware, energy meters and models this machine has")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)
    bench = sub.add_parser(
        "benchmarks",
        help="list the benchmarks, their levels and where their data comes from",
        description="List every registered benchmark with its category, metric, difficulty "
        "levels and the data source it would use on this machine.",
    )
    bench.set_defaults(func=cmd_benchmarks)
    clk = sub.add_parser(
        "clocks",
        help="GPU clock locks left by runs; --reset gives back those of dead processes",
        description="A run that locks GPU clocks (sm_clock_mhz) writes a lock file and resets the "
        "clocks however it ends; only a SIGKILL leaves them set. This lists the lock "
        "files, and with --reset resets the clocks of every lock whose process is gone "
        "(the next clock lock does the same by itself).",
    )
    clk.add_argument("--reset", action="store_true", help="reset the clocks left locked by dead processes")
    clk.set_defaults(func=cmd_clocks)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted: every checkpointed query is kept; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
