"""Executing runs: a validated spec in, a run directory with measured energy and scored answers out.

Finished queries are checkpointed after every batch (see :mod:`ttclib.rundir`), so a run that
dies resumes where it stopped. :func:`run_plan` executes every run of a params file's plan,
loading each model (or starting each SGLang server) once.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
import itertools
import os
import shutil
import time
from pathlib import Path

import pandas as pd

from . import answers, benchmarks, energy, hardware, rundir, strategies
from .params import ParamsError, Plan
from .rundir import QUERY_COLUMNS, is_complete, run_dir, write_json, write_parquet
from .serving import Backend, Request, SamplingParams, make_backend, render_prompt, resolve_backend
from .spec import SPEC_VERSION, RunSpec


def execute(spec: RunSpec, runs_dir: str | os.PathLike, *, progress: bool = True, backend: Backend | None = None,
            problems: list[benchmarks.Problem] | None = None) -> Path:
    """Run ``spec`` (or reuse its complete run) and return the run directory.

    ``backend`` may be given to reuse an already loaded model across runs of the same model,
    ``problems`` when they were loaded already (see :func:`load_problems`).
    """
    if is_complete(spec, runs_dir):
        return run_dir(spec, runs_dir)
    return _Execution(spec, Path(runs_dir), progress, backend, problems).run()


def load_problems(spec: RunSpec) -> list[benchmarks.Problem]:
    """The problems a run asks for; a clear error when there are none or the data is missing."""
    bench = benchmarks.get(spec.benchmark)
    problems = bench.load(levels=spec.levels, per_level=spec.per_level, seed=spec.seed, subsets=spec.subsets,
                          data=spec.data_path)
    if not problems:
        raise ValueError(f"benchmark {spec.benchmark!r}: no problems for levels={spec.levels} subsets={spec.subsets}")
    return problems


class _Execution:
    def __init__(self, spec: RunSpec, runs_dir: Path, progress: bool, backend: Backend | None, problems=None):
        self.spec, self.progress, self.backend = spec, progress, backend
        self.final = run_dir(spec, runs_dir)
        self.partial = rundir.partial_dir(spec, runs_dir)
        self.strategy = spec.resolved_strategy
        self.bench = benchmarks.get(spec.benchmark)
        self.data = self.bench.source.locate(self.bench.name, spec.data_path)
        self.problems = {p.id: p for p in (problems if problems is not None else load_problems(spec))}

    def run(self) -> Path:
        rundir.segments_dir(self.partial).mkdir(parents=True, exist_ok=True)
        write_json(self.partial / rundir.SPEC_JSON, self.spec.model_dump())
        done = self._done_keys()
        self.resumed = bool(done)
        own_backend, meter = self.backend is None, None
        started = time.time()
        try:
            if own_backend:
                self.backend = open_backend(self.spec, self.partial / rundir.SERVER_LOG)
            meter = select_meter(self.spec, self.backend)
            return self._measure_and_finish(meter, done, started)
        finally:
            if meter is not None:
                meter.close()
            if own_backend and self.backend is not None:
                self.backend.close()

    def _measure_and_finish(self, meter: energy.Meter, done: set[str], started: float) -> Path:
        """Measure what ``done`` lacks with the open backend and finish; the server's log is kept either way."""
        try:
            self.backend.batch_size = self.spec.batch_size
            _check_meter_sees_backend(meter, self.backend)
            self.log_offset = _size(self.backend.log_path)
            todo = [r for r in self._requests() if r.id not in done]
            if todo:
                if self.spec.warmup:
                    self.backend.generate([Request("warmup", todo[0].prompt, SamplingParams(max_new_tokens=4))])
                if self.spec.idle_s > 0:
                    meter.measure_idle(self.spec.idle_s)
                self._measure(todo, meter)
            self._save_server_log()
            return self._finish(meter, started)
        except BaseException:
            self._save_server_log()
            raise

    # requests ------------------------------------------------------------------------
    def _prompt(self, problem) -> str:
        fmt, budget = self.bench.answer_format, self.spec.budget or self.spec.max_new_tokens
        if self.backend.chat:
            return render_prompt(self.backend.tokenizer, self.strategy.messages(problem, fmt, budget), True)
        return self.strategy.base_prompt(problem, fmt, budget)

    def _requests(self) -> list[Request]:
        """Every (repetition, query, sample) as one request, in repetition order."""
        s, st = self.spec, self.strategy
        stop = () if self.backend.chat else st.base_stop
        prompts = {p.id: self._prompt(p) for p in self.problems.values()}
        reqs = []
        for rep in range(s.repetitions):
            for qid, prompt in prompts.items():
                for k in range(st.samples):
                    sp = SamplingParams(temperature=st.temperature, top_p=st.top_p if st.temperature > 0 else 1.0,
                                        max_new_tokens=s.max_new_tokens, seed=s.seed * 1_000_003 + rep * 1009 + k,
                                        stop=stop, ignore_eos=s.ignore_eos)
                    reqs.append(Request(_key(rep, qid, k), prompt, sp))
        return reqs

    # measuring -------------------------------------------------------------------------
    def _measure(self, todo: list[Request], meter: energy.Meter) -> None:
        """One window, checkpointed after every ``batch_size`` completions (once the window spans ten
        counter update periods) and at the end of each repetition: one counter read closes a segment
        and opens the next, so the segments tile the measured time. Energy is split over the
        requests once the run is complete (:meth:`_finish`)."""
        from tqdm.auto import tqdm

        segment = self._next_segment()
        bar = tqdm(total=len(todo), desc=f"{self.spec.model} {self.spec.strategy}", unit="q",
                   disable=not self.progress, dynamic_ncols=True)
        energy_so_far, tokens, t0 = self._energy_so_far(), 0, time.time()
        meter.start_sampling()
        meter.begin_window("segment")
        batch: list = []
        opened = time.time()
        try:
            for _, reqs in itertools.groupby(todo, key=lambda r: _parse_key(r.id)[0]):
                for completion in self.backend.stream(list(reqs)):
                    batch.append(completion)
                    if len(batch) >= self.spec.batch_size and time.time() - opened >= meter.min_window_s:
                        energy_so_far += self._checkpoint(segment, batch, meter)
                        segment, tokens = segment + 1, tokens + sum(c.completion_tokens for c in batch)
                        bar.update(len(batch))
                        bar.set_postfix(tok_s=f"{tokens / (time.time() - t0):.1f}", J=f"{energy_so_far:.0f}")
                        batch, opened = [], time.time()
                if batch:  # a repetition's last segment holds no completion of the next one
                    energy_so_far += self._checkpoint(segment, batch, meter)
                    segment += 1
                    bar.update(len(batch))
                    batch, opened = [], time.time()
        except BaseException:
            if batch:  # keep what finished before the failure: a resumed run skips it
                try:
                    self._checkpoint(segment, batch, meter)
                except Exception:  # e.g. the failure hit mid-checkpoint; the batch is generated again
                    pass           # on resume, and the first error is the one that matters
            raise
        finally:
            bar.close()
            meter.discard_window("segment")   # what follows the last checkpoint measured nothing
            meter.stop_sampling()

    def _checkpoint(self, segment: int, completions: list, meter: energy.Meter) -> float:
        """Close the segment's window (opening the next at the same reading), then write it:
        window first, then its power trace, then its queries (whose presence marks them done),
        so a crash between two writes never leaves measured queries without their window."""
        m = meter.checkpoint("segment")
        trace = meter.trace(m.start_s, m.end_s)
        write_json(rundir.segment_file(self.partial, segment, rundir.SEGMENT_WINDOW), {"segment": segment, **m.to_dict()})
        write_parquet(trace.assign(segment=segment), rundir.segment_file(self.partial, segment, rundir.SEGMENT_POWER))
        rows = [self._row(c, segment, m.meter) for c in completions]
        write_parquet(pd.DataFrame(rows, columns=QUERY_COLUMNS),
                      rundir.segment_file(self.partial, segment, rundir.SEGMENT_QUERIES))
        return m.total_j

    def _row(self, c, segment: int, meter: str) -> dict:
        """A measured completion; energy is attributed and answers graded once the run is complete."""
        rep, qid, sample = _parse_key(c.request_id)
        p = self.problems[qid]
        return dict(run_id=self.spec.run_id, repetition=rep, query_id=qid, sample=sample, benchmark=p.benchmark,
                    category=p.category, difficulty=p.difficulty, subset=p.subset, prompt_tokens=c.prompt_tokens,
                    completion_tokens=c.completion_tokens, reasoning_tokens=c.reasoning_tokens,
                    cached_tokens=c.cached_tokens, finish_reason=c.finish_reason, text=c.text, truncated=None,
                    answer=None, answer_class=None, gold=p.answer, correct=None, score=None, t_start=c.t_start,
                    t_end=c.t_end, segment=segment, energy_j=float("nan"), net_energy_j=float("nan"), meter=meter)

    # grading -----------------------------------------------------------------------------
    def _grade(self, queries: pd.DataFrame) -> pd.DataFrame:
        """Extract → score → vote classes, after measuring: grading (and the sandbox) never runs
        inside an energy window. Reasoning is split off first; a cut-off reasoning is incorrect."""
        from concurrent.futures import ThreadPoolExecutor
        from tqdm.auto import tqdm

        q = queries.sort_values(["repetition", "query_id", "sample"], ignore_index=True)
        split = [answers.split_reasoning(t, expect_think=self.strategy.reasoning) for t in q.text]
        problems = [self.problems[qid] for qid in q.query_id]
        found = [None if r.truncated else self.bench.extract_answer(r.answer_text, p) for r, p in zip(split, problems)]
        unscored = benchmarks.Score(None, None) if self.bench.metric == "none" else benchmarks.Score(False, 0.0)

        def score(i: int) -> benchmarks.Score:
            return unscored if split[i].truncated else self.bench.score(found[i], problems[i])

        workers = (os.cpu_count() or 1) if self.bench.executes_code else 1
        with ThreadPoolExecutor(workers) as pool:
            scores = list(tqdm(pool.map(score, range(len(q))), total=len(q), desc=f"scoring {self.bench.name}",
                               unit="answer", disable=not (self.progress and self.bench.executes_code)))
        classes: list[int | None] = [None] * len(q)
        for idx in q.groupby(["repetition", "query_id"], sort=False).indices.values():
            for i, c in zip(idx, strategies.answer_classes([found[i] for i in idx], self.bench.equivalent)):
                classes[i] = c
        q["truncated"] = [r.truncated for r in split]
        q["answer"] = pd.array(found, dtype=object)
        q["reasoning_tokens"] = [self._reasoning_tokens(r, n) for r, n in zip(split, q.reasoning_tokens)]
        q["correct"] = pd.array([s.correct for s in scores], dtype="boolean")
        q["score"] = pd.array([s.value for s in scores], dtype="Float64")
        q["answer_class"] = pd.array(classes, dtype="Int64")
        return q

    def _reasoning_tokens(self, reasoned: answers.Reasoned, reported: int) -> int:
        """The engine's count when it gives one, else the reasoning text tokenized."""
        if reported or not reasoned.reasoning:
            return int(reported)
        return len(self.backend.tokenizer.encode(reasoned.reasoning, add_special_tokens=False))

    # resume & finish ---------------------------------------------------------------------
    def _save_server_log(self) -> None:
        """Copy this run's part of a shared server's log into the run directory."""
        src = self.backend.log_path
        dest = self.partial / rundir.SERVER_LOG
        if src is None or not self.partial.exists() or Path(src) == dest:
            return
        with open(src, "rb") as f:
            f.seek(getattr(self, "log_offset", 0))
            with open(dest, "ab") as out:
                shutil.copyfileobj(f, out)
        self.log_offset = _size(src)

    def _done_keys(self) -> set[str]:
        done = rundir.read_segments(self.partial, rundir.SEGMENT_QUERIES, columns=["repetition", "query_id", "sample"])
        return {_key(r, q, s) for r, q, s in done.itertuples(index=False)}

    def _next_segment(self) -> int:
        """One past the highest segment number of any file: a missing segment never gets reused."""
        numbers = [int(f.name.split(".")[0]) for f in rundir.segments_dir(self.partial).glob("*.*")
                   if f.name.split(".")[0].isdigit()]
        return max(numbers, default=-1) + 1

    def _energy_so_far(self) -> float:
        return sum(w["total_j"] for w in rundir.read_windows(self.partial))

    def _backend_info(self) -> dict:
        info = self.backend.describe()
        if (self.partial / rundir.SERVER_LOG).exists():
            info["server_log"] = rundir.SERVER_LOG  # relative to the run directory
        return info

    def _finish(self, meter: energy.Meter, started: float) -> Path:
        queries = self._grade(rundir.read_segments(self.partial, rundir.SEGMENT_QUERIES))
        power = rundir.read_segments(self.partial, rundir.SEGMENT_POWER)
        if len(power):  # a sample on the edge of two segments is in both
            power = power.drop_duplicates(["t", "device"]).sort_values("t", ignore_index=True)
        window_dicts = rundir.read_windows(self.partial)
        queries, attribution = _attribute(queries, power, window_dicts, self.backend.batch_size)
        write_parquet(queries, self.partial / rundir.QUERIES_PARQUET)
        write_parquet(power, self.partial / rundir.POWER_PARQUET)
        meters = sorted({w["meter"] for w in window_dicts})
        info = {
            "run_id": self.spec.run_id, "spec": self.spec.model_dump(), "spec_version": SPEC_VERSION,
            "strategy": dataclasses.asdict(self.strategy),
            "benchmark": {"name": self.bench.name, "category": self.bench.category, "metric": self.bench.metric,
                          "description": self.bench.description, "data": self.data.describe(),
                          "difficulty": self.bench.difficulty_note or ("from the data" if self.bench.levels else None)},
            "meter": meter.describe(), "meter_name": meters[0] if len(meters) == 1 else "+".join(meters),
            "measured_devices": _measured_devices(meter),
            "energy_j": sum(w["total_j"] for w in window_dicts), "net_energy_j": sum(w["net_j"] for w in window_dicts),
            "measured_s": sum(w["time_s"] for w in window_dicts), **attribution, "windows": window_dicts,
            "n_queries": int(queries.query_id.nunique()), "n_completions": len(queries),
            "completion_tokens": int(queries.completion_tokens.sum()),
            "backend": self._backend_info(), "hardware": hardware.describe(),
            "software": hardware.software_versions(),
            "started": started, "finished": time.time(), "resumed": self.resumed,
        }
        write_json(self.partial / rundir.RUN_JSON, info)
        rundir.seal(self.partial, self.final)
        return self.final


def _attribute(queries: pd.DataFrame, power: pd.DataFrame, window_dicts: list[dict],
               batch_size: int) -> tuple[pd.DataFrame, dict]:
    """Per-query energy from every window (see :mod:`ttclib.energy.attribution`), and the run-level
    figures: overhead, flags, J per output token overall and in the steady state."""
    windows = [energy.Measurement.from_dict(w) for w in window_dicts]
    intervals = queries[["t_start", "t_end"]].to_numpy(float)
    trace = power if len(power) else pd.DataFrame({"t": [], "device": [], "power_w": [], "energy_j": []})
    shares, overhead = energy.attribute_windows(windows, trace, intervals, energy=("total_j", "net_j"))
    queries = queries.assign(energy_j=shares[:, 0], net_energy_j=shares[:, 1])
    tokens = int(queries.completion_tokens.sum())
    run_j = sum(w.total_j for w in windows)
    flags = dict(Counter(f for w in windows for f in w.flags))
    steady = energy.steady_state(trace, intervals, queries.completion_tokens.to_numpy(float), batch_size)
    return queries, {"overhead_j": float(overhead[0]), "flags": flags,
                     "energy_per_output_token_j": run_j / tokens if tokens else None,
                     "steady_state": steady.to_dict(), "attribution": energy.attribution.RULE}


def _measured_devices(meter: energy.Meter) -> dict:
    """Which devices the energy is of, and why those (``run.json``'s ``measured_devices``)."""
    d = meter.describe()
    return {"meter": meter.name, "scope": d.get("scope", "this process tree" if meter.name == "estimate" else "all zones"),
            "devices": [{k: dev.get(k) for k in ("name", "index", "nvml_index", "model", "uuid", "mig_uuid",
                                                  "power_source", "power_averaged") if k in dev}
                        for dev in d["devices"]],
            "counter_update_period_s": d.get("counter_update_period_s")}


def open_backend(spec: RunSpec, log_path: Path | None = None) -> Backend:
    """The backend a spec asks for; an SGLang server logs to ``log_path``."""
    return make_backend(spec.backend, spec.model, device=spec.device, dtype=spec.dtype,
                        batch_size=spec.batch_size, seed=spec.seed, options=spec.server, log_path=log_path)


def backend_key(spec: RunSpec) -> tuple:
    """Runs with equal keys can share one loaded model (or one SGLang server)."""
    name = resolve_backend(spec.backend)
    key = (spec.model, name, spec.device, spec.dtype, spec.seed)
    if name == "sglang":  # the server's max_running_requests is the run's batch size
        key += (spec.batch_size, spec.server.model_dump_json())
    return key


def select_meter(spec: RunSpec, backend: Backend) -> energy.Meter:
    """The run's meter, scoped to the GPUs the run uses (``device``, SGLang's ``tp_size`` x ``dp_size``).

    ``meter: auto`` on a CPU run never picks NVML (idle GPUs are not the run's energy); ``meter: nvml``
    asked for explicitly on a CPU run measures every visible GPU, and says so.
    """
    gpus, scope = energy.gpus_for_device(backend.device, spec.server.tp_size, spec.server.dp_size)
    kwargs = {} if spec.sample_interval_s is None else {"sample_interval_s": spec.sample_interval_s}
    if gpus is None:
        if spec.meter == "nvml":
            return energy.select_meter("nvml", scope="all visible GPUs (meter nvml asked for on a CPU run)", **kwargs)
        return energy.select_meter(spec.meter, exclude=("nvml",), **kwargs)
    return energy.select_meter(spec.meter, gpus=gpus, scope=scope, **kwargs)


def _check_meter_sees_backend(meter: energy.Meter, backend: Backend) -> None:
    if meter.name == "estimate" and backend.external is not None:
        raise ValueError(f"the estimate meter counts the CPU time of this process and its children; the attached "
                         f"server at {backend.external} is neither, so its energy would be missed. Use meter: nvml "
                         f"or rapl, or let ttc-energy launch the server (no server.url)")


def _size(path) -> int:
    return os.path.getsize(path) if path and os.path.exists(path) else 0


def _key(rep: int, qid: str, sample: int) -> str:
    return f"{rep}|{qid}|{sample}"


def _parse_key(key: str) -> tuple[int, str, int]:
    rep, qid, sample = key.split("|")
    return int(rep), qid, int(sample)


# --- grids -------------------------------------------------------------------------------

def progress_default() -> bool:
    """Progress bars unless ``TTC_PROGRESS=0`` (set by ``make reproduce`` for clean executed notebooks)."""
    return os.environ.get("TTC_PROGRESS", "1") != "0"


def _problems_before_any_model(plan: Plan, specs: list[RunSpec]) -> dict[str, list]:
    """Every pending run's problems, so missing data stops the plan before a model loads."""
    problems = {}
    for s in specs:
        try:
            problems[s.run_id] = load_problems(s)
        except (benchmarks.BenchmarkDataError, ValueError) as e:
            raise ParamsError(f"{plan.path}: profiles.{plan.profile}: run {s.run_id} ({s.model}, {s.strategy}): {e}") from None
    return problems


def run_plan(plan: Plan, *, progress: bool | None = None) -> list[Path]:
    """Execute every run of a plan (cached runs are reused), loading each model once."""
    progress = progress_default() if progress is None else progress
    dirs: dict[str, Path] = {}
    pending = [s for s in plan.specs if not is_complete(s, plan.runs_dir)]
    for s in plan.specs:
        if is_complete(s, plan.runs_dir):
            dirs[s.run_id] = run_dir(s, plan.runs_dir)
    problems = _problems_before_any_model(plan, pending)
    for _, group in itertools.groupby(sorted(pending, key=backend_key), key=backend_key):
        group = list(group)
        backend = open_backend(group[0], rundir.shared_server_log(plan.runs_dir, group[0]))
        try:
            for s in group:
                t0 = time.time()
                dirs[s.run_id] = execute(s, plan.runs_dir, progress=progress, backend=backend,
                                         problems=problems[s.run_id])
                if not progress:
                    info = rundir.read_info(dirs[s.run_id])
                    print(f"measured {s.model} {s.strategy}: {info['n_queries']} queries, "
                          f"{info['completion_tokens']} tokens, {info['energy_j']:.0f} J ({info['meter_name']}), "
                          f"{time.time() - t0:.0f} s", flush=True)
        finally:
            backend.close()
    return [dirs[s.run_id] for s in plan.specs]
