#!/usr/bin/env python
"""One prepared GPU check for a short, network-less GPU window (`make gpu-check`).

Steps (``--steps`` picks some; each timed and in its own try/except: a failure is written into the
summary with its exact error and the next step runs; the summary is rewritten after every step):
  meter    scripts/nvml_check.py's steps a-f (NVML support, update periods, averaged vs instant power,
           idle, loaded window vs Zeus, clock locking), in this process -> <out>/nvml_check.json
  runs     params/gpu_check.yaml's profile (default: thirty hardware-only runs, random Qwen2.5-7B and 1.5B on
           CUDA, NVML; six of them at locked SM clocks, skipped and recorded where locking is refused) through
           ttclib.runner.measure_plan -> its runs_dir; cached runs are reused, so a cut-off window resumes
           (--runs-dir elsewhere to measure afresh). A run whose estimate (the H200 timing model below) would
           end past --budget-s is deferred and recorded: the next call measures it
  collect  <out>/gpu_check.json: GPU, driver, runtime (Firecracker/gVisor), the meter facts, one line per
           run (energy, J/token, steady-state J/token, flags, clock set and read, prefill/decode), clock
           lock files left (none expected); with $OUT set, copies of both JSONs and
           the plan's runs as one $OUT/gpu_runs.tar.gz (replace the committed set: rm -rf outputs/gpu/runs
           && tar xzf gpu_runs.tar.gz -C outputs/gpu)
The exit code is 0 only if every selected step is ok.

Device command (after ``make gpu-wheels`` here; carry ``.whl``; about 8 minutes, see --dry-run):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \\
      && export PYTHONPATH=/tmp/site:$PWD && python3 scripts/gpu_check.py

(``make gpu-check PY=python3`` does the last part.) ``.whl/`` holds the wheels the GPU machine lacks
(scripts/gpu_wheels.py, its record scripts/gpu_wheels.txt) and the tokenizer random-weight models borrow.

``--fake`` runs it all on the CPU: tests/fake_pynvml.py as ``pynvml`` (one "hopper" GPU), the ``smoke``
profile (tiny model, ``meter: nvml``), results under outputs/smoke/gpu. Any option not listed below
goes to scripts/nvml_check.py (its --help), e.g. ``--seconds 12`` or the short timings the tests use.

Examples:
    python scripts/gpu_check.py --dry-run
    python scripts/gpu_check.py --fake --fake-clock-error no_permission --fake-no-energy-counter
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import nvml_check as nc  # noqa: E402 - its helpers (Report, install_fake, borrow_tokenizer, summarize_run)

PARAMS = ROOT / "params" / "gpu_check.yaml"
STEPS = {
    "meter": "meter facts: scripts/nvml_check.py steps a-f",
    "runs": "reference runs of params/gpu_check.yaml",
    "collect": "summary gpu_check.json (+ $OUT copies, gpu_runs.tar.gz)",
}
# Step times measured on the lent H200 (Firecracker, driver 580.159.04) on 2026-11-28:
#  meter    nvml_check a-f: 49.8 s from its start to the clock reset (outputs/gpu/nvml_check.log)
#  collect  not measured there: the tar of outputs/gpu/runs (0.5 MB) takes well under a second here
#  runs     estimated run by run (estimate_run_s) from what the ten runs of that day measured
#           (run.json, queries.parquet, gpu_runs.log in outputs/gpu):
RUN_STEP_S = 0.030  # one decode step of random Qwen2.5-7B at batch 1-64, later repetitions: 29-33 ms (the Python
#                     side of HF generate sets it, not the GPU: batch 64 took no longer than batch 1). Taken for the
#                     1.5B too (28 layers as well; not measured there)
FIRST_SHAPE_X = 3.0  # a first pass at a batch size or length new to the process took 2.3-3.4x the next one
#                      (5 of 10 runs); with warmup: full the warm-up pays it, else the first repetition
IDLE_RUN_S = 5.6  # per run with an idle baseline (idle_s 1): settling (>= 3 s) + idle + sealing; 195 s of wall
#                   time over 10 runs less their 139 s measured
BARE_RUN_S = 1.5  # per run without one (idle_s 0): problems, sealing. Not measured there: an estimate
MODEL_LOAD_S = 10.0  # per model: importing transformers, the CUDA context, random init (7B: load_s 1.3 s,
#                      about 4 s of imports and context in nvml_check.log)
PROMPT_TOKENS = 60  # an arithmetic prompt as it is, when input_tokens does not set it
GPU_SECONDS = {"meter": 50.0, "collect": 2.0}  # "runs": the sum of the runs' estimates
BUDGET_S = (
    480.0  # default --budget-s: the whole check inside 8 minutes (the device allows 10 a call), the rest deferred
)
# --fake on the 2-core CPU box of this project (2026-11-29): the smoke profile's twelve tiny runs took
# 7.8 s, imports and model load included
FAKE_RUNS_SECONDS = 10.0


def runtime(release: str, proc_version: str) -> str:
    """The VM or sandbox the machine runs in, from ``uname -r`` and /proc/version."""
    if "-fc-" in release or "firecracker" in proc_version.lower():
        return "firecracker"
    if release.startswith("4.4.0") and "2016" in proc_version:  # gVisor reports a fixed 4.4.0 of 2016
        return "gvisor"
    return "unknown (neither Firecracker nor gVisor)"


def runtime_facts() -> dict:
    proc = Path("/proc/version")
    version = proc.read_text().strip() if proc.is_file() else ""
    return {"runtime": runtime(platform.release(), version), "kernel": platform.release(), "proc_version": version}


# --- the plan -------------------------------------------------------------------------------


def load_plan(a: argparse.Namespace):
    from ttclib.params import load_params

    plan = load_params(PARAMS, a.profile)
    if a.runs_dir is not None:
        plan.runs_dir = a.runs_dir.resolve()
    return plan


def _decode_step_s(spec, batch: int, context: float) -> float:
    """A decode step on the H200: the measured floor (:data:`RUN_STEP_S`), or the roofline's GPU time
    when that is longer, stretched by a locked SM clock below the H200's top one (1980 MHz)."""
    from ttclib import gpu_hours as gh

    arch = gh.architecture(spec.model)
    if arch is None:
        return RUN_STEP_S
    roof = gh.Roofline(gh.GPUS["h200"])
    gpu_s = gh.decode_step_s(arch, roof, dtype_bytes=gh.DTYPE_BYTES[spec.dtype], batch=batch, context_tokens=context)
    return max(RUN_STEP_S, gpu_s * 1980 / (spec.sm_clock_mhz or 1980))


def _prefill_s(spec, tokens: float) -> float:
    from ttclib import gpu_hours as gh

    arch = gh.architecture(spec.model)
    return gh.prefill_s(arch, gh.Roofline(gh.GPUS["h200"]), prompt_tokens=tokens) if arch is not None else 0.0


def estimate_run_s(spec, seen: set) -> float:
    """Seconds one run of the plan takes on the H200 by the timing model above: its batches (decode steps
    and prefill), its warm-up, a first pass at a shape the process has not generated (``seen``: the
    (model, batch, length) shapes of the runs before it, updated) and the per-run overhead."""
    from ttclib import gpu_hours as gh

    queries = gh.problems(spec).count or 1
    samples = spec.resolved_strategy.samples
    batch = min(spec.batch_size, queries)
    batches = -(-queries // batch) * samples  # a backend that seeds per batch batches each sample apart
    prompt = spec.input_tokens or PROMPT_TOKENS
    batch_s = spec.max_new_tokens * _decode_step_s(spec, batch, prompt + spec.max_new_tokens / 2)
    batch_s += _prefill_s(spec, batch * prompt)
    new_shape = not any(m == spec.model and b == batch and n >= spec.max_new_tokens for m, b, n in seen)
    seen.add((spec.model, batch, spec.max_new_tokens))
    first_pass_extra = (FIRST_SHAPE_X - 1) * batch_s if new_shape else 0.0
    warm = {"full": batch_s, True: 4 * RUN_STEP_S, False: 0.0}[spec.warmup]
    overhead = IDLE_RUN_S + max(0.0, spec.idle_s - 1) if spec.idle_s > 0 else BARE_RUN_S
    return spec.repetitions * batches * batch_s + warm + first_pass_extra + overhead


def run_estimates(plan) -> dict[str, float]:
    """run id -> estimated seconds, in the order the runner measures them (models in the order the plan
    names them first, each model's runs in plan order), a model's load counted with its first run."""
    from ttclib.runner import backend_groups

    seen: set = set()
    out = {}
    for group in backend_groups(plan.specs):
        for i, s in enumerate(group):
            out[s.run_id] = estimate_run_s(s, seen) + (MODEL_LOAD_S if i == 0 else 0.0)
    return out


def runs_estimate(a: argparse.Namespace) -> tuple[float, list[dict], str]:
    """The runs step's seconds (runs not cached, on the H200's timing model; --fake: the measured CPU
    figure), a row per run, and a line on what is cached."""
    from ttclib.rundir import is_complete

    try:
        plan = load_plan(a)
    except Exception as err:  # noqa: BLE001 - the plan prints without it
        return 0.0, [], f"runs not counted: {nc.err_text(err)}"
    est = run_estimates(plan)
    rows = [
        {
            "run_id": s.run_id,
            "model": s.model,
            "shape": _shape(s),
            "cached": is_complete(s, plan.runs_dir),
            "estimate_s": round(est[s.run_id], 1),
        }
        for s in plan.specs
    ]
    done = sum(r["cached"] for r in rows)
    reuse = ": reused, not measured again (--runs-dir elsewhere to measure afresh)" if done else ""
    line = f"{len(rows)} runs, {done} of them cached in {plan.runs_dir}{reuse}"
    seconds = FAKE_RUNS_SECONDS if a.fake else round(sum(r["estimate_s"] for r in rows if not r["cached"]), 1)
    return seconds, rows, line


def _shape(s) -> str:
    tokens = f"{s.input_tokens} in, " if s.input_tokens else ""
    clock = f" @ {s.sm_clock_mhz} MHz" if s.sm_clock_mhz else ""
    samples = f" x{s.resolved_strategy.samples}" if s.resolved_strategy.samples > 1 else ""
    return f"{s.strategy}{samples} batch {s.batch_size}, {tokens}{s.max_new_tokens} out, {s.repetitions} reps{clock}"


def plan_rows(a: argparse.Namespace, runs_s: float) -> list[dict]:
    """A row per step with its estimated seconds (``runs_s``: :func:`runs_estimate`'s)."""
    meter = sum(r["estimate_s"] for r in nc.plan(a.nvml)) if a.fake else GPU_SECONDS["meter"]
    est = {**GPU_SECONDS, "meter": meter, "runs": runs_s}
    what = {**STEPS, "runs": f"{STEPS['runs']} [{a.profile}]"}
    return [{"step": s, "what": what[s], "estimate_s": est[s]} for s in a.steps]


def print_plan(a: argparse.Namespace, rows: list[dict], runs: tuple[float, list[dict], str]) -> None:
    nc.print_plan(rows)
    if "runs" not in a.steps:
        return
    print(f"  runs: {runs[2]}; budget {a.budget_s:g} s (--budget-s): runs that would end past it are", flush=True)
    print("  deferred to the next call, which resumes; per run (H200 timing model, load included):", flush=True)
    for r in runs[1]:
        state = "cached" if r["cached"] else f"~{r['estimate_s']:5.1f} s"
        print(f"    {r['run_id']}  {state:>9}  {r['model']:22s} {r['shape']}", flush=True)


# --- the steps ------------------------------------------------------------------------------


def step_meter(a: argparse.Namespace, fake_gpus: list | None) -> dict:
    report = nc.check(a.nvml, fake_gpus, nc.plan(a.nvml))
    data = report.data
    failed = {
        k: v.get("error", v["status"]) for k, v in data["steps"].items() if v["status"] in ("error", "interrupted")
    }
    if "error" in data or failed:
        raise RuntimeError(
            data.get("error") or "nvml_check steps failed: " + "; ".join(f"{k}: {e}" for k, e in failed.items())
        )
    return {"nvml_check": str(report.path), "statuses": data["summary"]["statuses"]}


def step_runs(a: argparse.Namespace) -> dict:
    from ttclib.energy.clocks import ClockError
    from ttclib.rundir import is_complete
    from ttclib.runner import measure_plan

    plan = load_plan(a)
    tokenizer = nc.borrow_tokenizer(a.nvml.tokenizer)
    cached = [s.run_id for s in plan.specs if is_complete(s, plan.runs_dir)]
    nc.log(f"  {len(plan.specs)} runs -> {plan.runs_dir} ({len(cached)} cached); {tokenizer}")
    defer = budget_rule(a, run_estimates(plan))
    skipped = None
    try:
        out = measure_plan(plan, progress=False, defer=defer)
    except ClockError as err:  # refused before any model loaded: the runs at default clocks still go
        skipped = {"runs": [s.run_id for s in plan.specs if s.sm_clock_mhz is not None], "error": nc.err_text(err)}
        nc.log(f"  clock locking refused: {len(skipped['runs'])} runs at locked clocks skipped ({skipped['error']})")
        plan.specs = [s for s in plan.specs if s.sm_clock_mhz is None]
        out = measure_plan(plan, progress=False, defer=defer)
    if out.deferred:
        nc.log(
            f"  {len(out.deferred)} runs deferred past the {a.budget_s:g} s budget: the next call "
            f"(python3 scripts/gpu_check.py --steps runs,collect) measures them; the rest are kept"
        )
    return {
        "params": str(PARAMS.relative_to(ROOT)),
        "profile": a.profile,
        "runs_dir": str(plan.runs_dir),
        "tokenizer": tokenizer,
        "run_dirs": [str(out.dirs[s.run_id]) for s in plan.specs if s.run_id in out.dirs],
        "cached": cached,
        "measured": out.measured,
        "deferred": out.deferred,
        "clock_runs_skipped": skipped,
    }


def budget_rule(a: argparse.Namespace, estimate: dict[str, float]):
    """The runner's ``defer``: leave a run for the next call when, by its estimate, it would end past the
    budget (counted from the script's start, the collect step's seconds kept free)."""
    deadline = a.t0 + a.budget_s - GPU_SECONDS["collect"]

    def defer(spec) -> str | None:
        ends = time.monotonic() + estimate[spec.run_id]
        if ends <= deadline:
            return None
        return (
            f"estimated {estimate[spec.run_id]:.0f} s: would end {ends - a.t0:.0f} s in, past --budget-s {a.budget_s:g}"
        )

    return defer


def run_line(run: Path) -> dict:
    """One reference run in a line: what it ran and what it cost."""
    info = json.loads((run / "run.json").read_text())
    s, spec = nc.summarize_run(run), info["spec"]
    return {
        "run_id": info["run_id"],
        "strategy": spec["strategy"],
        "samples": info["strategy"].get("samples"),
        "max_new_tokens": spec["max_new_tokens"],
        "batch_size": spec["batch_size"],
        "repetitions": spec["repetitions"],
        "energy_j": info["energy_j"],
        "net_energy_j": info.get("net_energy_j"),
        "j_per_token": info.get("energy_per_output_token_j"),
        "steady_j_per_token": (info.get("steady_state") or {}).get("j_per_token"),
        "completion_tokens": info.get("completion_tokens"),
        "measured_s": info.get("measured_s"),
        "flags": info.get("flags"),
        "meter": s["meter"],
        "methods": sorted({d["method"] for d in s["devices"]}),
        "power_source": sorted({d["power_source"] for d in s["devices"]}),
        "queries_sum_over_energy_j": s["queries_sum_over_energy_j"],
        **clock_and_phases(run, info),
    }


def clock_and_phases(run: Path, info: dict) -> dict:
    """The clock a run locked and what NVML read (within 5 %?), the throttle reasons, and its queries'
    mean prefill and decode time and energy (Maliakel et al. [002]'s phases)."""
    from ttclib import metrics, rundir

    c = info.get("clocks") or {}
    lock = (c.get("locks") or [{}])[0]
    ph = metrics.phases(rundir.read_queries(run), by=["run_id"]).iloc[0]
    value = lambda col: float(ph[col]) if ph[col] == ph[col] else None  # noqa: E731  (NaN: no first-token time)
    return {
        "sm_clock_requested_mhz": info["spec"].get("sm_clock_mhz"),
        "sm_clock_set_mhz": lock.get("sm_mhz"),
        "sm_clock_method": lock.get("method"),
        "sm_clock_read_mhz": c.get("sm_mhz"),
        "sm_clock_within_5pct": c.get("within_tolerance"),
        "throttle_reasons": c.get("throttle_reasons"),
        **{col: value(col) for col in ("prefill_s", "decode_s", "prefill_energy_j", "decode_energy_j")},
    }


def gpu_facts() -> dict:
    """GPUs and driver as NVML reports them (each call's error recorded instead)."""
    try:
        import pynvml as nv

        nv.nvmlInit()
    except Exception as err:  # noqa: BLE001 - the run table is collected without them
        return {"nvml_error": nc.err_text(err)}
    try:
        handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(nv.nvmlDeviceGetCount())]
        return {
            "gpus": [nc.call(nv.nvmlDeviceGetName, h).get("value") for h in handles],
            "driver": nc.call(nv.nvmlSystemGetDriverVersion).get("value"),
            "cuda_driver": nc.call(getattr(nv, "nvmlSystemGetCudaDriverVersion", None)).get("value"),
            "pynvml": nc.pynvml_version(nv),
        }
    finally:
        nv.nvmlShutdown()


def copy_out(out: Path, runs: list[Path]) -> list[str]:
    """Into $OUT: nvml_check.json and one tar.gz of this plan's complete runs, under their folder's name
    (gpu_check.json goes there on every save). Only the plan's: runs of older plans in the same folder
    (the committed ones travel with the working tree) stay out, so the tar replaces outputs/gpu/runs."""
    dest = Path(os.environ["OUT"])
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    if (out / "nvml_check.json").is_file():
        files.append(shutil.copy(out / "nvml_check.json", dest / "nvml_check.json"))
    if runs:
        with tarfile.open(dest / "gpu_runs.tar.gz", "w:gz") as tar:
            for run in runs:
                tar.add(run, arcname=f"{run.parent.name}/{run.name}")
        files.append(str(dest / "gpu_runs.tar.gz"))
    return [str(f) for f in files] + [str(dest / "gpu_check.json")]


def step_collect(a: argparse.Namespace, report: nc.Report) -> dict:
    data = report.data
    data["machine"] = {**data["machine"], **gpu_facts()}
    meter_json = a.out / "nvml_check.json"
    data["meter_facts"] = json.loads(meter_json.read_text()).get("summary") if meter_json.is_file() else None
    runs = [Path(d) for d in data["steps"].get("runs", {}).get("run_dirs") or []]
    data["runs"] = [run_line(d) for d in runs]
    for r in data["runs"]:
        nc.log(
            f"  {r['run_id']} {r['strategy']:4s} max_new_tokens={r['max_new_tokens']:<4} batch={r['batch_size']:<3} "
            f"{r['energy_j']:9.1f} J  {r['j_per_token'] or float('nan'):.4f} J/token  {r['methods']} {r['flags']}"
        )
    from ttclib.energy import clocks

    left = sorted(p.name for p in clocks.lock_dir().glob("gpu*-*.json")) if clocks.lock_dir().is_dir() else []
    return {
        "runs": len(data["runs"]),
        "clock_locks_left": left,
        "out_files": copy_out(a.out, runs) if os.environ.get("OUT") else [],
    }


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = ap.add_argument
    add("--steps", default=",".join(STEPS), help=f"comma-separated steps (default all): {', '.join(STEPS)}")
    add(
        "--out",
        type=Path,
        help="folder of gpu_check.json and nvml_check.json (default outputs/gpu; outputs/smoke/gpu with --fake)",
    )
    add("--profile", help="profile of params/gpu_check.yaml (default: default; smoke with --fake)")
    add("--runs-dir", type=Path, help="where the runs go (default: the profile's runs_dir)")
    add("--fake", action="store_true", help="on the CPU: tests/fake_pynvml.py as pynvml, the smoke profile")
    add(
        "--fake-clock-error",
        choices=sorted(nc.FAKE_CLOCK_ERRORS),
        default="none",
        help="with --fake: the error clock locking raises (default none)",
    )
    add(
        "--fake-no-energy-counter",
        action="store_true",
        help="with --fake: the GPU has no energy counter (NotSupported): the meter integrates power",
    )
    add("--dry-run", action="store_true", help="print the plan with estimated seconds and exit")
    add(
        "--budget-s",
        type=float,
        default=BUDGET_S,
        help=f"seconds the whole check may take (default {BUDGET_S:g}): a run whose estimate would end past it "
        "is deferred (recorded; the next call measures it, the finished runs are kept)",
    )
    a, rest = ap.parse_known_args(argv)
    a.steps = [s.strip() for s in a.steps.split(",") if s.strip()]
    if set(a.steps) - set(STEPS):
        ap.error(f"unknown steps {sorted(set(a.steps) - set(STEPS))}; choose from {list(STEPS)}")
    a.steps = [s for s in STEPS if s in a.steps]
    a.out = a.out or ROOT / ("outputs/smoke/gpu" if a.fake else "outputs/gpu")
    a.profile = a.profile or ("smoke" if a.fake else "default")
    fake = ["--fake", "--fake-clock-error", a.fake_clock_error] if a.fake else []
    a.nvml = nc.parse_args(
        [*rest, *fake, *(["--fake-no-energy-counter"] if a.fake_no_energy_counter else []), "--out", str(a.out)]
    )
    return a


def run_steps(a: argparse.Namespace, report: nc.Report) -> None:
    fake_gpus = nc.install_fake(a.nvml) if a.fake else None
    fns = {
        "meter": lambda: step_meter(a, fake_gpus),
        "runs": lambda: step_runs(a),
        "collect": lambda: step_collect(a, report),
    }
    for name in a.steps:
        with report.step(name) as rec:
            rec.update(fns[name]())


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    a.t0 = time.monotonic()
    runs = runs_estimate(a) if "runs" in a.steps else (0.0, [], "")
    rows = plan_rows(a, runs[0])
    print_plan(a, rows, runs)
    if a.dry_run:
        return 0
    report = nc.Report(
        a.out,
        {
            "script": "scripts/gpu_check.py",
            "argv": sys.argv[1:],
            "fake": a.fake,
            "started": time.time(),
            "plan": rows,
            "profile": a.profile,
            "machine": {"host": platform.node(), "python": sys.version.split()[0], **runtime_facts()},
        },
        name="gpu_check.json",
        steps=STEPS,
    )
    try:
        run_steps(a, report)
    finally:
        report.data["finished"] = time.time()
        report.save()
    statuses = {k: v["status"] for k, v in report.data["steps"].items()}
    nc.log(f"wrote {report.path}: {statuses}" + (" (and to $OUT)" if os.environ.get("OUT") else ""))
    return 0 if set(statuses.values()) == {"ok"} and len(statuses) == len(a.steps) else 1


if __name__ == "__main__":
    sys.exit(main())
