"""A grid on a SLURM cluster: ``ttc run params.yaml --executor slurm`` submits it with submitit, one job per
group of runs that can share a loaded model (:func:`ttclib.runner.backend_key`: same model, backend, device,
dtype, ... — the model or SGLang server loads once per job, as ``ttc run`` does locally, instead of once per
run: a 32B model takes minutes to load), cut where the projected GPU-hours would pass the job's time limit,
as job arrays (one per shape of resources) with a concurrency limit. Every job writes into the profile's
``runs_dir`` on the shared filesystem.

A run is measured by one process at a time: the job takes the run's lock (:class:`ttclib.rundir.RunLock`,
which records the SLURM job id and node, and a heartbeat), skips a run another job holds, and resumes a run
a dead job left half done from its last checkpoint. Submitting the same grid again therefore submits jobs
only for the runs that are not complete, and measures exactly what is missing.

The ``cluster:`` section of a profile (every key optional; the command line overrides)::

    cluster:
      partition: gpu
      account: myproject
      qos: normal
      time_min: 240          # per job
      gpus_per_run: null     # null: tp_size x dp_size of the run's SGLang server on CUDA, 0 on a CPU
      cpus_per_run: 8
      mem_gb: 64
      exclusive: true        # the node to the job alone: co-located jobs would share its power draw
      array_parallelism: 8   # jobs of the array running at once
      sbatch: ["--constraint=a100"]   # further sbatch options
      setup: ["module load cuda/12.4", "source ~/venvs/ttc/bin/activate"]

``jobs_dir`` (default ``<runs_dir>/.slurm``) holds submitit's scripts, logs and results, and
``jobs.jsonl``: which job was given which runs — what ``ttc status`` reads.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

JOBS_FILE = "jobs.jsonl"
EXECUTORS = ("local", "slurm")


class Cluster(BaseModel):
    """A profile's ``cluster:`` section: the SLURM resources of each job (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid")
    partition: str | None = Field(None, description="SLURM partition (sbatch --partition)")
    account: str | None = Field(None, description="account to charge (sbatch --account)")
    qos: str | None = Field(None, description="quality of service (sbatch --qos)")
    time_min: int = Field(240, ge=1, description="wall-time limit of each job, minutes")
    gpus_per_run: int | None = Field(
        None, ge=0, description="GPUs per job; None: tp_size x dp_size on CUDA, 0 on a CPU"
    )
    cpus_per_run: int | None = Field(None, ge=1, description="CPUs per job; None: the runs' threads, else 4")
    mem_gb: float | None = Field(None, gt=0, description="memory per job, GB (None: the partition's default)")
    exclusive: bool = Field(False, description="the node to one job alone (co-located jobs share power)")
    array_parallelism: int = Field(8, ge=1, description="jobs of the array running at once")
    sbatch: list[str] = Field([], description="further sbatch options, e.g. --constraint=a100")
    setup: list[str] = Field([], description="shell lines run at the start of each job (module load, venv)")
    jobs_dir: str | None = Field(None, description="submitit's folder (logs, results): default <runs_dir>/.slurm")


@dataclasses.dataclass
class Job:
    """One job to submit: runs that share a loaded model, and the resources they need."""

    specs: list  # RunSpec
    gpus: int
    cpus: int

    @property
    def run_ids(self) -> list[str]:
        return [s.run_id for s in self.specs]

    @property
    def model(self) -> str:
        return self.specs[0].model


def jobs(plan, cluster: Cluster, gpu_hours: dict[str, float | None] | None = None) -> list[Job]:
    """The jobs that would measure the plan's runs not yet complete: one per group of runs sharing a model
    (:func:`ttclib.runner.backend_key`), in plan order — split, where ``gpu_hours`` projects the runs
    (:func:`projected_gpu_hours`), into consecutive pieces that each fit 90 % of the time limit. A run
    projected past the limit is a job of its own: it times out and resumes from its last checkpoint when
    resubmitted (``ttc status --resubmit-failed``)."""
    from .rundir import is_complete
    from .runner import backend_key

    pending = [s for s in plan.specs if not is_complete(s, plan.runs_dir)]
    order = {key: i for i, key in enumerate(dict.fromkeys(backend_key(s) for s in pending))}
    budget = 0.9 * cluster.time_min / 60
    out = []
    for _, group in itertools.groupby(sorted(pending, key=lambda s: order[backend_key(s)]), key=backend_key):
        specs = list(group)
        gpus = cluster.gpus_per_run if cluster.gpus_per_run is not None else max(_gpus(s) for s in specs)
        cpus = cluster.cpus_per_run or max((s.threads or 4) for s in specs)
        piece: list = []  # RunSpecs of the job being filled
        used = 0.0
        for s in specs:
            h = (gpu_hours or {}).get(s.run_id) or 0.0
            h /= max(gpus, 1)
            if piece and used + h > budget:
                out.append(Job(piece, gpus, cpus))
                piece, used = [], 0.0
            piece.append(s)
            used += h
        out.append(Job(piece, gpus, cpus))
    return out


def projected_gpu_hours(plan, gpu: str | None = None) -> dict[str, float | None]:
    """Run id -> projected GPU-hours on ``gpu`` (:mod:`ttclib.gpu_hours`, offline), for splitting jobs."""
    from . import gpu_hours

    est = gpu_hours.estimate_plan(plan, gpu_hours.Roofline(gpu_hours.GPUS[gpu or gpu_hours.DEFAULT_GPU]))
    return {r.spec.run_id: r.gpu_hours for r in est.runs}


def _gpus(spec) -> int:
    if not str(spec.device).startswith("cuda"):
        return 0
    return spec.server.tp_size * spec.server.dp_size


def jobs_dir(plan, cluster: Cluster | None) -> Path:
    if cluster is not None and cluster.jobs_dir:
        d = Path(cluster.jobs_dir)
        return d if d.is_absolute() else (plan.path.parent / d).resolve()
    return Path(plan.runs_dir) / ".slurm"


def sbatch_options(job: Job, cluster: Cluster) -> dict[str, Any]:
    """submitit's SLURM parameters of one job (every job of an array has the same: :func:`submit` makes one
    array per shape of resources)."""
    opts: dict[str, Any] = {
        "slurm_time": cluster.time_min,
        "slurm_cpus_per_task": job.cpus,
        "slurm_ntasks_per_node": 1,
        "slurm_array_parallelism": cluster.array_parallelism,
        "slurm_job_name": "ttc-energy",
    }
    if job.gpus:
        opts["slurm_gpus_per_node"] = job.gpus
    for key, value in (
        ("slurm_partition", cluster.partition),
        ("slurm_account", cluster.account),
        ("slurm_qos", cluster.qos),
        ("slurm_mem_gb", cluster.mem_gb),
    ):
        if value is not None:
            opts[key] = value
    if cluster.exclusive:
        opts["slurm_exclusive"] = True
    extra = {}
    for line in cluster.sbatch:
        key, _, value = line.lstrip("-").partition("=")
        extra[key] = value if value else True
    if extra:
        opts["slurm_additional_parameters"] = extra
    if cluster.setup:
        opts["slurm_setup"] = list(cluster.setup)
    return opts


def job_hours(jobs_: list[Job], gpu_hours: dict[str, float | None]) -> list[float | None]:
    """Each job's wall-clock hours from its runs' projected GPU-hours (:mod:`ttclib.gpu_hours`) spread over
    its GPUs; None where a run has no projection."""
    out: list[float | None] = []
    for j in jobs_:
        hours = [gpu_hours.get(r) for r in j.run_ids]
        known = [h for h in hours if h is not None]
        out.append(None if len(known) < len(hours) else sum(known) / max(j.gpus, 1))
    return out


def wall_hours(hours: list[float], slots: int) -> float:
    """Wall time of jobs of these lengths with at most ``slots`` running at once: the longest-first greedy
    schedule (within 4/3 of the best), so an estimate that leaves out queueing and model loading.

    >>> wall_hours([4.0, 3.0, 3.0, 2.0, 2.0], 2)     # 4+2+2 and 3+3: 8 (the best split, 4+3 and 3+2+2, is 7)
    8.0
    >>> wall_hours([5.0, 1.0], 4)
    5.0
    """
    finish = [0.0] * max(slots, 1)
    for h in sorted(hours, reverse=True):
        i = finish.index(min(finish))
        finish[i] += h
    return max(finish)


def describe(jobs_: list[Job], cluster: Cluster, hours: list[float | None] | None = None) -> list[str]:
    """One line per job: its runs and resources, and its projected hours when given, with a warning where
    they pass the job's time limit (``ttc run --executor slurm --dry-run``)."""
    lines = []
    hours = hours or [None] * len(jobs_)
    for i, (j, h) in enumerate(zip(jobs_, hours, strict=True)):
        opts = sbatch_options(j, cluster)
        res = [f"gpus={j.gpus}", f"cpus={j.cpus}", f"time={cluster.time_min}min"]
        res += [
            f"{k.removeprefix('slurm_')}={opts[k]}"
            for k in ("slurm_partition", "slurm_account", "slurm_qos", "slurm_mem_gb")
            if k in opts
        ]
        res += ["--exclusive"] * bool(opts.get("slurm_exclusive"))
        res += [
            f"--{k}" + ("" if v is True else f"={v}") for k, v in opts.get("slurm_additional_parameters", {}).items()
        ]
        est = (
            "" if h is None else f" | est. {h:.2f} h" + (" — over its time limit" if h * 60 > cluster.time_min else "")
        )
        lines.append(f"  job {i}: {j.model}: {len(j.specs)} run(s) {' '.join(j.run_ids)} | {' '.join(res)}{est}")
    return lines


def submit(plan, cluster: Cluster, *, executor: str = "slurm") -> list[dict]:
    """Submit one job per :func:`jobs` group as one array (``executor="debug"``: run them here in this
    process, submitit's debug executor, for tests), record each in ``jobs.jsonl`` and return the records."""
    import submitit

    todo = jobs(plan, cluster, projected_gpu_hours(plan) if executor == "slurm" else None)
    if not todo:
        return []
    folder = jobs_dir(plan, cluster)
    folder.mkdir(parents=True, exist_ok=True)
    ex = submitit.AutoExecutor(folder=folder / "%j", cluster=None if executor == "slurm" else executor)
    by_index: dict[int, Any] = {}  # submitit job of todo[i]
    shapes = {(j.gpus, j.cpus) for j in todo}
    for shape in sorted(shapes):  # one array per shape of resources: a 1.5B job asks 1 GPU, a 32B 2
        mine = [i for i, j in enumerate(todo) if (j.gpus, j.cpus) == shape]
        opts = sbatch_options(todo[mine[0]], cluster) if executor == "slurm" else {"timeout_min": cluster.time_min}
        ex.update_parameters(**opts)
        with ex.batch():
            batch = [ex.submit(measure_job, str(plan.path), plan.profile, todo[i].run_ids) for i in mine]
        by_index.update(zip(mine, batch, strict=True))
    handles = [by_index[i] for i in range(len(todo))]
    records = []
    with open(folder / JOBS_FILE, "a") as f:
        for j, h in zip(todo, handles, strict=True):
            rec = {
                "job_id": str(h.job_id),
                "run_ids": j.run_ids,
                "model": j.model,
                "params": str(plan.path),
                "profile": plan.profile,
                "submitted": time.time(),
                "folder": str(h.paths.folder),
                "stdout": str(h.paths.stdout),
                "stderr": str(h.paths.stderr),
                "result": str(h.paths.result_pickle),
            }
            f.write(json.dumps(rec) + "\n")
            records.append({**rec, "handle": h})
    return records


def measure_job(params_path: str, profile: str, run_ids: list[str]) -> dict:
    """What a job runs on its node: the plan's runs ``run_ids`` (measured, resumed, or skipped when another
    job holds them), loading the model once. Returns what it measured and what it left to another holder."""
    from .params import load_params
    from .runner import measure_plan

    plan = load_params(params_path, profile)
    mine = [s for s in plan.specs if s.run_id in set(run_ids)]
    missing = set(run_ids) - {s.run_id for s in mine}
    if missing:
        raise ValueError(
            f"{params_path} [{profile}] no longer has run(s) {sorted(missing)}: the params file changed "
            "since the job was submitted"
        )
    out = measure_plan(dataclasses.replace(plan, specs=mine), progress=False, wait=False)
    return {"measured": out.measured, "held": out.held, "node": socket.gethostname(), "job": job_ids()}


# --- what a run records of its job ----------------------------------------------------------------


def job_context() -> dict | None:
    """The SLURM job this process runs in, for run.json and the lock record: job id (array job and task),
    node, whether the node is the job's alone (``scontrol``: OverSubscribe=NO), the other jobs on the node
    and the GPUs outside the job's that have compute processes (they share the node's power). None outside
    SLURM."""
    ids = job_ids()
    if ids is None:
        return None
    job = ids["job_id"]
    info = _scontrol_job(job)
    others = _squeue(["-w", socket.gethostname(), "-h", "-o", "%i"])
    return {
        "scheduler": "slurm",
        **ids,
        "oversubscribe": info.get("OverSubscribe"),
        "exclusive": info.get("OverSubscribe") == "NO",
        "other_jobs_on_node": sorted(set(others or []) - {job, _array_id()}) if others is not None else None,
        "busy_gpus_outside_job": _busy_gpus_outside(os.environ.get("CUDA_VISIBLE_DEVICES")),
    }


def job_ids() -> dict | None:
    """The SLURM job, array job and task ids and node of this process, from its environment alone (what a
    run lock records: no scheduler call on the way to every run); None outside SLURM."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    return {
        "job_id": job,
        "array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID"),
        "array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID"),
        "node": socket.gethostname(),
    }


def _array_id() -> str | None:
    a, t = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{a}_{t}" if a and t else None


def _scontrol_job(job: str) -> dict[str, str]:
    """``scontrol show job -o <job>`` as key=value pairs ({} where it fails)."""
    if shutil.which("scontrol") is None:
        return {}
    try:
        out = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


def _squeue(args: list[str]) -> list[str] | None:
    """Lines of ``squeue`` (None where squeue is absent or fails)."""
    if shutil.which("squeue") is None:
        return None
    try:
        r = subprocess.run(["squeue", *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.split() if r.returncode == 0 else None


def _busy_gpus_outside(visible: str | None) -> list[int] | None:
    """NVML indices of GPUs not given to this job that run compute processes (None without NVML)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        mine = {int(v) for v in (visible or "").split(",") if v.strip().isdigit()}
        busy = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            if i in mine:
                continue
            if pynvml.nvmlDeviceGetComputeRunningProcesses(pynvml.nvmlDeviceGetHandleByIndex(i)):
                busy.append(i)
        return busy
    except Exception:
        return None
    finally:
        pynvml.nvmlShutdown()


# --- ttc status --------------------------------------------------------------------------------


def active_jobs() -> dict[str, str] | None:
    """Job id -> state (PENDING, RUNNING, ...) of every job SLURM still lists; array tasks as
    ``<array>_<task>``, a pending array's range expanded. None without squeue."""
    lines = _squeue(["-h", "-r", "-o", "%i|%T"])
    if lines is None:
        return None
    return dict(line.split("|", 1) for line in lines if "|" in line)


def records(plan, cluster: Cluster | None) -> list[dict]:
    """The ``jobs.jsonl`` records of this plan's jobs dir, oldest first."""
    path = jobs_dir(plan, cluster) / JOBS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def status(plan, cluster: Cluster | None = None) -> list[dict]:
    """One row per run of the plan: ``done``; ``running`` (a process holds its lock: job, node, pid);
    ``pending`` (its last job is still queued); ``failed`` (its last job ended without completing it:
    the reason from the job's result or log, and the log's path); ``to run`` (never submitted)."""
    from .rundir import is_complete, run_lock

    queued = active_jobs() or {}
    last: dict[str, dict] = {}
    for job_rec in records(plan, cluster):
        for run_id in job_rec["run_ids"]:
            last[run_id] = job_rec
    rows = []
    for s in plan.specs:
        row = {
            "run_id": s.run_id,
            "model": s.model,
            "strategy": s.strategy,
            "benchmark": s.benchmark,
            "state": "to run",
            "job_id": None,
            "node": None,
            "reason": None,
            "log": None,
        }
        rec = last.get(s.run_id)
        if rec:
            row.update(job_id=rec["job_id"], log=rec["stderr"])
        lock = run_lock(plan.runs_dir, s.run_id)
        if is_complete(s, plan.runs_dir):
            row["state"] = "done"
        elif lock.held_elsewhere():
            holder = lock.record()
            job = holder.get("job") or {}
            row.update(
                state="running",
                job_id=job.get("job_id") or row["job_id"],
                node=holder.get("host"),
                reason=f"pid {holder.get('pid')}",
            )
        elif rec and rec["job_id"] in queued:
            row.update(state=queued[rec["job_id"]].lower())
        elif rec:
            row.update(state="failed", reason=failure(rec))
        rows.append(row)
    return rows


def failure(rec: dict) -> str:
    """Why a job ended without completing its runs: the exception it raised (its result), or the end of
    its log (killed, cancelled, out of time or memory)."""
    import pickle

    result = Path(rec["result"])
    if result.exists():
        try:
            outcome, value = pickle.loads(result.read_bytes())
        except Exception as e:  # noqa: BLE001 - an unreadable result is itself the reason
            return f"unreadable result {result}: {e}"
        if outcome == "error":
            last = [ln for ln in str(value).strip().splitlines() if ln.strip()]
            return f"raised {last[-1] if last else value}"
        held = (value or {}).get("held") or {}
        return f"finished, leaving {len(held)} run(s) to another holder" if held else "finished without completing it"
    log = Path(rec["stderr"])
    tail = [ln for ln in (log.read_text(errors="replace").splitlines() if log.exists() else []) if ln.strip()]
    for line in reversed(tail):
        if "CANCELLED" in line or "DUE TO TIME LIMIT" in line or "oom" in line.lower() or "Killed" in line:
            return line.strip()
    return "ended without a result (killed, cancelled or its node failed)" + (f": {tail[-1].strip()}" if tail else "")


def format_status(rows: list[dict]) -> str:
    counts = {s: sum(r["state"] == s for r in rows) for s in dict.fromkeys(r["state"] for r in rows)}
    lines = [", ".join(f"{n} {s}" for s, n in counts.items())]
    for r in rows:
        where = " ".join(
            p for p in (f"job {r['job_id']}" if r["job_id"] else "", f"on {r['node']}" if r["node"] else "") if p
        )
        extra = f" — {r['reason']}" if r["reason"] else ""
        log = f" (log: {r['log']})" if r["state"] == "failed" and r["log"] else ""
        lines.append(
            f"  {r['run_id']}  {r['state']:8s} {r['model']:24s} {r['strategy']:5s} {r['benchmark']:12s} "
            f"{where}{extra}{log}"
        )
    return "\n".join(lines)
