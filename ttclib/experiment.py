"""Runs: a validated spec in, a run directory with measured energy and scored answers out.

A params file (``params/<section>.yaml``) declares a grid per profile::

    profiles:
      default:
        runs_dir: ../outputs/runs          # relative to the params file
        defaults: {benchmark: arithmetic, max_new_tokens: 16, ...}
        grid:                               # cartesian product; a mapping value sets several keys
          model: [smollm2-135m-instruct, gemma3-270m]
          strategy: [{strategy: base}, {strategy: cot, max_new_tokens: 96}]

A profile may instead reuse another file's profile, runs and figures folders included, so that
sections sharing a study measure it once::

    profiles:
      default: {use: 00_overview.yaml}                      # its `default` profile
      paper: {use: paper.yaml, profile: length_sweep}       # path relative to this file

Each grid point is a :class:`RunSpec`. Its run id is a hash of the spec, and the run lives in
``runs_dir/<run_id>/`` as ``run.json``, ``queries.parquet`` and ``power.parquet``. While it runs,
finished queries are checkpointed under ``<run_id>.partial/`` after every batch, so a run that
dies resumes where it stopped; the complete directory appears in one atomic rename.

>>> from ttclib.experiment import RunSpec
>>> RunSpec(model="random:tiny-qwen2", strategy="base", benchmark="arithmetic").run_id  # doctest: +ELLIPSIS
'...'
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from . import answers, benchmarks, energy, hardware, models, strategies
from .server import ServerOptions
from .serving import Request, SamplingParams, make_backend, render_prompt, resolve_backend

SPEC_VERSION = 3


class RunSpec(BaseModel):
    """Everything that determines a run's results. Changing any field changes the run id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="embedded name, random:<config>, HF directory, .gguf file or hub id")
    strategy: str = Field(description="base | mv | rt | cot")
    benchmark: str = "arithmetic"
    data: str | None = Field(None, description="benchmark data file or directory (relative to the params file); "
                                               "default: packaged/generated data, $TTC_DATA_DIR, else the HF hub")
    levels: list[str] | None = Field(None, description="difficulty levels to include (default all)")
    subsets: list[str] | None = Field(None, description="subsets to include, e.g. MMLU categories (default all)")
    per_level: int | None = Field(16, ge=1, description="problems drawn per difficulty level (per subset for "
                                                        "benchmarks without levels); null = all")
    backend: Literal["auto", "transformers", "sglang"] = Field(
        "auto", description="sglang | transformers | auto (SGLang when installed and a CUDA GPU is visible)")
    server: ServerOptions = Field(default_factory=ServerOptions, description="SGLang launch/attach settings")
    max_new_tokens: int = Field(128, ge=1)
    budget: int | None = Field(None, ge=1, description="token budget a CoT prompt states (default max_new_tokens); "
                                                       "fix it to sweep max_new_tokens under one prompt")
    batch_size: int = Field(16, ge=1)
    samples: int | None = Field(None, ge=1, description="override the strategy's samples per query")
    temperature: float | None = Field(None, ge=0, description="override the strategy's temperature")
    top_p: float | None = Field(None, gt=0, le=1, description="override the strategy's top-p")
    seed: int = 0
    repetitions: int = Field(1, ge=1, description="measured passes over the benchmark")
    ignore_eos: bool = Field(False, description="generate exactly max_new_tokens (hardware-only runs)")
    meter: Literal["auto", "nvml", "rapl", "estimate"] = "auto"
    device: str = Field("auto", description="cpu | cuda | cuda:N | auto (cuda when a GPU is visible)")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    idle_s: float = Field(5.0, ge=0, description="idle baseline window, seconds, model loaded")
    sample_interval_s: float = Field(0.1, gt=0, description="power sampler period, seconds")
    warmup: bool = True

    _base_dir: Path | None = PrivateAttr(None)   # the params file's folder: relative `data` paths start there

    @field_validator("levels", mode="before")
    @classmethod
    def _levels_as_strings(cls, v):
        return [str(x) for x in v] if isinstance(v, list) else v

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, v: str) -> str:
        strategies.get(v)
        return v

    @field_validator("benchmark")
    @classmethod
    def _known_benchmark(cls, v: str) -> str:
        benchmarks.get(v)
        return v

    @field_validator("model")
    @classmethod
    def _resolvable_model(cls, v: str) -> str:
        models.resolve(v)
        return v

    @model_validator(mode="after")
    def _known_levels(self) -> "RunSpec":
        bench = benchmarks.get(self.benchmark)
        bad = sorted(set(self.levels or []) - set(bench.levels))
        if bad:
            raise ValueError(f"levels {bad} not in benchmark {self.benchmark!r} (levels: {list(bench.levels)})")
        return self

    @property
    def run_id(self) -> str:
        # Prompts and answer handling are part of what is measured: changing them changes the id.
        bench = benchmarks.get(self.benchmark)
        method = {"strategy": dataclasses.asdict(self.resolved_strategy),
                  "benchmark": [bench.description, bench.answer_format, bench.extract.__name__, bench.score.__name__,
                                bench.source.hub and str(bench.source.hub)]}
        spec = self.model_dump(exclude={"server": set(ServerOptions.NOT_MEASURED)})
        if spec["budget"] in (None, self.max_new_tokens) or "{budget}" not in method["strategy"]["instruction"]:
            del spec["budget"]           # the default prompt: the same run as without the field
        blob = json.dumps({"v": SPEC_VERSION, **spec, **method}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def resolved_strategy(self) -> strategies.Strategy:
        return strategies.get(self.strategy).with_overrides(self.samples, self.temperature, self.top_p)

    @property
    def data_path(self) -> Path | None:
        if self.data is None:
            return None
        path = Path(self.data).expanduser()
        return path if path.is_absolute() or self._base_dir is None else (self._base_dir / path).resolve()

    def with_base_dir(self, base: Path) -> "RunSpec":
        self._base_dir = Path(base)
        return self


# --- params files ------------------------------------------------------------------------

class ParamsError(ValueError):
    """A params file is wrong; the message names the file and the key."""


class Profile(BaseModel):
    """A grid of its own, or ``use:`` another params file's profile (``profile:``, default ``default``)."""

    model_config = ConfigDict(extra="forbid")
    use: str | None = Field(None, description="params file (relative to this one) whose profile this is")
    profile: str | None = Field(None, description="the profile of `use` (default: default)")
    runs_dir: str = "../outputs/runs"
    figures_dir: str = "../outputs/figures"
    defaults: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}

    OWN: ClassVar[tuple[str, ...]] = ("runs_dir", "figures_dir", "defaults", "grid")

    @model_validator(mode="after")
    def _use_or_own_grid(self) -> "Profile":
        own = [k for k in self.OWN if k in self.model_fields_set]
        if self.use is not None and own:
            raise ValueError(f"`use` takes the runs, runs_dir and figures_dir of another file's profile; it cannot "
                             f"be combined with {', '.join(own)}: keep either `use` (+ `profile`) or this "
                             f"profile's own runs_dir/figures_dir/defaults/grid")
        if self.use is None and self.profile is not None:
            raise ValueError("`profile` names a profile of the file given by `use`, and there is no `use`")
        return self


class ParamsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = ""
    profiles: dict[str, Profile]


@dataclass
class Plan:
    """The runs a params file asks for under one profile."""

    path: Path
    profile: str
    specs: list[RunSpec]
    runs_dir: Path
    figures_dir: Path
    title: str = ""
    uses: tuple[Path, str] | None = None   # (file, profile) that defines the grid, when `profile` says `use:`


def load_params(path: str | os.PathLike, profile: str = "default") -> Plan:
    """Validate a params file and expand its grid. Raises :class:`ParamsError` naming file and key.

    A profile that says ``use: other.yaml`` (``profile: name``) is that file's profile: its runs,
    runs_dir and figures_dir (relative to that file); errors there name that file."""
    return _load(Path(path), profile, chain=())


def _read(path: Path) -> ParamsFile:
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    try:
        return ParamsFile.model_validate(raw)
    except ValidationError as e:
        raise ParamsError(_format_errors(path, e, lambda loc: ".".join(map(str, loc)))) from None


def _load(path: Path, profile: str, chain: tuple[tuple[Path, str], ...], used_by: str | None = None) -> Plan:
    """``chain``: the (file, profile) pairs that led here through `use:`, to stop cycles."""
    params = _read(path)
    if profile not in params.profiles:
        have = ", ".join(params.profiles)
        if used_by:
            raise ParamsError(f"{used_by}.profile: {path} has no profile {profile!r} (have: {have})")
        raise ParamsError(f"{path}: profiles.{profile}: no such profile (have: {have})")
    prof = params.profiles[profile]
    where = f"profiles.{profile}"
    if prof.use is not None:
        used = _load_used(path, where, prof.use, prof.profile or "default", chain + ((path.resolve(), profile),))
        return dataclasses.replace(used, path=path, profile=profile, title=params.title or used.title,
                                   uses=used.uses or (used.path, used.profile))
    specs = [_spec(path, point, prov) for point, prov in _expand(prof.defaults, prof.grid, where)]
    base = path.parent
    return Plan(path, profile, specs, (base / prof.runs_dir).resolve(), (base / prof.figures_dir).resolve(),
                params.title)


def _load_used(path: Path, where: str, use: str, profile: str, chain: tuple[tuple[Path, str], ...]) -> Plan:
    target = Path(use).expanduser()
    target = target if target.is_absolute() else path.parent / target
    if not target.is_file():
        raise ParamsError(f"{path}: {where}.use: no such params file: {target}")
    if (target.resolve(), profile) in chain:
        loop = " -> ".join(f"{p.name} [{name}]" for p, name in (*chain, (target, profile)))
        raise ParamsError(f"{path}: {where}.use: profiles use each other in a cycle: {loop}")
    return _load(target, profile, chain, used_by=f"{path}: {where}")


def _expand(defaults: dict, grid: dict[str, list], where: str):
    """Yield (merged spec dict, {key: where it came from}) for each grid point."""
    axes = [[(axis, i, v) for i, v in enumerate(values)] for axis, values in grid.items()]
    for combo in itertools.product(*axes):
        point = dict(defaults)
        prov = {k: f"{where}.defaults.{k}" for k in defaults}
        for axis, i, value in combo:
            updates = value if isinstance(value, dict) else {axis: value}
            for k, v in updates.items():
                point[k] = v
                prov[k] = f"{where}.grid.{axis}[{i}]" + (f".{k}" if isinstance(value, dict) else "")
        yield point, prov


def _spec(path: Path, point: dict, prov: dict) -> RunSpec:
    try:
        spec = RunSpec.model_validate(point).with_base_dir(path.parent)
    except ValidationError as e:
        def key(loc):
            top = str(loc[0]) if loc else ""
            return prov.get(top, f"(missing) {top}") + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                                               for p in loc[1:])
        raise ParamsError(_format_errors(path, e, key)) from None
    if spec.data is not None and not spec.data_path.exists():
        raise ParamsError(f"{path}: {prov.get('data', 'data')}: no such file or directory: {spec.data_path}")
    return spec


def _format_errors(path: Path, e: ValidationError, key) -> str:
    lines = [f"{path}: {key(err['loc']) or '(top level)'}: {err['msg']}" for err in e.errors()]
    return "\n".join(lines)


# --- executing a run ---------------------------------------------------------------------

QUERY_COLUMNS = ["run_id", "repetition", "query_id", "sample", "benchmark", "category", "difficulty", "subset",
                 "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "finish_reason",
                 "text", "truncated", "answer", "answer_class", "gold", "correct", "score", "t_start", "t_end",
                 "segment", "energy_j", "net_energy_j", "meter"]


def run_dir(spec: RunSpec, runs_dir: Path) -> Path:
    return Path(runs_dir) / spec.run_id


def is_complete(spec: RunSpec, runs_dir: Path) -> bool:
    return (run_dir(spec, runs_dir) / "run.json").exists()


def execute(spec: RunSpec, runs_dir: str | os.PathLike, *, progress: bool = True, backend=None,
            problems: list[benchmarks.Problem] | None = None) -> Path:
    """Run ``spec`` (or reuse its complete run) and return the run directory.

    ``backend`` may be given to reuse an already loaded model across runs of the same model,
    ``problems`` when they were loaded already (see :func:`load_problems`).
    """
    runs_dir = Path(runs_dir)
    final = run_dir(spec, runs_dir)
    if (final / "run.json").exists():
        return final
    return _Execution(spec, runs_dir, progress, backend, problems).run()


def load_problems(spec: RunSpec) -> list[benchmarks.Problem]:
    """The problems a run asks for; a clear error when there are none or the data is missing."""
    bench = benchmarks.get(spec.benchmark)
    problems = bench.load(levels=spec.levels, per_level=spec.per_level, seed=spec.seed, subsets=spec.subsets,
                          data=spec.data_path)
    if not problems:
        raise ValueError(f"benchmark {spec.benchmark!r}: no problems for levels={spec.levels} subsets={spec.subsets}")
    return problems


class _Execution:
    def __init__(self, spec: RunSpec, runs_dir: Path, progress: bool, backend, problems=None):
        self.spec, self.progress, self.backend = spec, progress, backend
        self.final = run_dir(spec, runs_dir)
        self.partial = self.final.with_name(self.final.name + ".partial")
        self.strategy = spec.resolved_strategy
        self.bench = benchmarks.get(spec.benchmark)
        self.data = self.bench.source.locate(self.bench.name, spec.data_path)
        self.problems = {p.id: p for p in (problems if problems is not None else load_problems(spec))}

    def run(self) -> Path:
        (self.partial / "segments").mkdir(parents=True, exist_ok=True)
        _write_json(self.partial / "spec.json", self.spec.model_dump())
        done = self._done_keys()
        self.resumed = bool(done)
        meter = energy.select_meter(self.spec.meter, sample_interval_s=self.spec.sample_interval_s)
        own_backend = self.backend is None
        started = time.time()
        try:
            if own_backend:
                self.backend = open_backend(self.spec, self.partial / "server.log")
            self.backend.batch_size = self.spec.batch_size
            _check_meter_sees_backend(meter, self.backend)
            self.log_offset = _size(getattr(self.backend, "log_path", None))
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
        finally:
            meter.close()
            if own_backend and self.backend is not None and hasattr(self.backend, "close"):
                self.backend.close()

    # requests ------------------------------------------------------------------------
    @property
    def _chat(self) -> bool:
        return getattr(self.backend, "chat", True)

    def _prompt(self, problem) -> str:
        fmt, budget = self.bench.answer_format, self.spec.budget or self.spec.max_new_tokens
        if self._chat:
            return render_prompt(self.backend.tokenizer, self.strategy.messages(problem, fmt, budget), True)
        return self.strategy.base_prompt(problem, fmt, budget)

    def _requests(self) -> list[Request]:
        """Every (repetition, query, sample) as one request, in repetition order."""
        s, st = self.spec, self.strategy
        stop = () if self._chat else st.base_stop
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
        """One energy window per repetition, closed and reopened at every checkpoint (contiguous)."""
        from tqdm.auto import tqdm

        segment = len(self._segment_files())
        bar = tqdm(total=len(todo), desc=f"{self.spec.model} {self.spec.strategy}", unit="q",
                   disable=not self.progress, dynamic_ncols=True)
        energy_so_far, tokens, t0 = self._energy_so_far(), 0, time.time()
        meter.start_sampling()
        for _, reqs in itertools.groupby(todo, key=lambda r: _parse_key(r.id)[0]):
            batch: list = []
            meter.begin_window("segment")
            try:
                for completion in self.backend.stream(list(reqs)):
                    batch.append(completion)
                    if len(batch) < self.spec.batch_size:
                        continue
                    energy_so_far += self._checkpoint(segment, batch, meter)
                    segment, tokens = segment + 1, tokens + sum(c.completion_tokens for c in batch)
                    bar.update(len(batch))
                    bar.set_postfix(tok_s=f"{tokens / (time.time() - t0):.1f}", J=f"{energy_so_far:.0f}")
                    batch = []
                    meter.begin_window("segment")
            except BaseException:
                if batch:  # keep what finished before the failure: a resumed run skips it
                    try:
                        self._checkpoint(segment, batch, meter)
                    except Exception:  # e.g. the failure hit mid-checkpoint: its window is closed already;
                        pass           # the batch is generated again on resume, the first error matters
                raise
            if batch:
                energy_so_far += self._checkpoint(segment, batch, meter)
                segment += 1
                bar.update(len(batch))
            else:
                meter.end_window("segment")
        bar.close()
        meter.stop_sampling()

    def _checkpoint(self, segment: int, completions: list, meter: energy.Meter) -> float:
        """Close the energy window, attribute it to the batch's queries, write the segment atomically."""
        m = meter.end_window("segment")
        window = meter.trace(m.start_s, m.start_s + m.time_s)
        intervals = [(max(c.t_start, m.start_s), max(c.t_end, m.start_s)) for c in completions]
        shares = energy.attribute_energy(m.total_j, window.t.to_numpy(), window.power_w.to_numpy(), intervals)
        net_scale = m.net_j / m.total_j if m.total_j else 0.0
        rows = [self._row(c, segment, e, e * net_scale, m.meter) for c, e in zip(completions, shares)]
        _write_parquet(pd.DataFrame(rows, columns=QUERY_COLUMNS), self.partial / "segments" / f"{segment:05d}.parquet")
        _write_parquet(window.assign(segment=segment), self.partial / "segments" / f"{segment:05d}.power.parquet")
        _write_json(self.partial / "segments" / f"{segment:05d}.json", m.to_dict())
        return m.total_j

    def _row(self, c, segment: int, energy_j: float, net_j: float, meter: str) -> dict:
        """A measured completion; answers are graded once the run is complete (see :meth:`_grade`)."""
        rep, qid, sample = _parse_key(c.request_id)
        p = self.problems[qid]
        return dict(run_id=self.spec.run_id, repetition=rep, query_id=qid, sample=sample, benchmark=p.benchmark,
                    category=p.category, difficulty=p.difficulty, subset=p.subset, prompt_tokens=c.prompt_tokens,
                    completion_tokens=c.completion_tokens, reasoning_tokens=c.reasoning_tokens,
                    cached_tokens=c.cached_tokens, finish_reason=c.finish_reason, text=c.text, truncated=None,
                    answer=None, answer_class=None, gold=p.answer, correct=None, score=None, t_start=c.t_start,
                    t_end=c.t_end, segment=segment, energy_j=energy_j, net_energy_j=net_j, meter=meter)

    # grading -----------------------------------------------------------------------------
    def _grade(self, queries: pd.DataFrame) -> pd.DataFrame:
        """Extract → score → vote classes, after measuring: grading (and the sandbox) never runs
        inside an energy window. Reasoning is split off first; a cut-off reasoning is incorrect."""
        from concurrent.futures import ThreadPoolExecutor
        from tqdm.auto import tqdm

        q = queries.sort_values(["repetition", "query_id", "sample"], ignore_index=True)
        split = [answers.split_reasoning(t, expect_think=self.strategy.reasoning) for t in q.text]
        found = [None if r.truncated else self.bench.extract(r.answer_text) for r in split]
        problems = [self.problems[qid] for qid in q.query_id]
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
        tokenizer = getattr(self.backend, "tokenizer", None)
        return len(tokenizer.encode(reasoned.reasoning, add_special_tokens=False)) if tokenizer else 0

    # resume & finish ---------------------------------------------------------------------
    def _save_server_log(self) -> None:
        """Copy this run's part of a shared server's log into the run directory."""
        src = getattr(self.backend, "log_path", None)
        dest = self.partial / "server.log"
        if src is None or not self.partial.exists() or Path(src) == dest:
            return
        with open(src, "rb") as f:
            f.seek(getattr(self, "log_offset", 0))
            with open(dest, "ab") as out:
                shutil.copyfileobj(f, out)
        self.log_offset = _size(src)

    def _segment_files(self) -> list[Path]:
        return sorted(p for p in (self.partial / "segments").glob("*.parquet") if not p.name.endswith(".power.parquet"))

    def _done_keys(self) -> set[str]:
        keys = set()
        for f in self._segment_files():
            df = pd.read_parquet(f, columns=["repetition", "query_id", "sample"])
            keys.update(_key(r, q, s) for r, q, s in df.itertuples(index=False))
        return keys

    def _energy_so_far(self) -> float:
        return sum(json.loads(f.read_text())["total_j"] for f in (self.partial / "segments").glob("*.json"))

    def _backend_info(self) -> dict:
        info = self.backend.describe()
        if (self.partial / "server.log").exists():
            info["server_log"] = "server.log"  # relative to the run directory
        return info

    def _finish(self, meter: energy.Meter, started: float) -> Path:
        seg_dir = self.partial / "segments"
        queries = self._grade(pd.concat([pd.read_parquet(f) for f in self._segment_files()], ignore_index=True))
        power_files = sorted(seg_dir.glob("*.power.parquet"))
        power = pd.concat([pd.read_parquet(f) for f in power_files], ignore_index=True) if power_files else pd.DataFrame()
        windows = [json.loads(f.read_text()) for f in sorted(seg_dir.glob("*.json"))]
        total_j = sum(w["total_j"] for w in windows)
        net_j = sum(w["net_j"] for w in windows)
        _write_parquet(queries, self.partial / "queries.parquet")
        _write_parquet(power, self.partial / "power.parquet")
        meters = sorted({w["meter"] for w in windows})
        info = {
            "run_id": self.spec.run_id, "spec": self.spec.model_dump(), "spec_version": SPEC_VERSION,
            "strategy": dataclasses.asdict(self.strategy),
            "benchmark": {"name": self.bench.name, "category": self.bench.category, "metric": self.bench.metric,
                          "description": self.bench.description, "data": self.data.describe(),
                          "difficulty": self.bench.difficulty_note or ("from the data" if self.bench.levels else None)},
            "meter": meter.describe(), "meter_name": meters[0] if len(meters) == 1 else "+".join(meters),
            "energy_j": total_j, "net_energy_j": net_j,
            "measured_s": sum(w["time_s"] for w in windows), "windows": windows,
            "n_queries": int(queries.query_id.nunique()), "n_completions": len(queries),
            "completion_tokens": int(queries.completion_tokens.sum()),
            "backend": self._backend_info(), "hardware": hardware.describe(),
            "software": hardware.software_versions(),
            "started": started, "finished": time.time(), "resumed": self.resumed,
        }
        _write_json(self.partial / "run.json", info)
        shutil.rmtree(seg_dir)
        os.replace(self.partial, self.final)
        return self.final


def open_backend(spec: RunSpec, log_path: Path | None = None):
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


def _check_meter_sees_backend(meter: energy.Meter, backend) -> None:
    server = getattr(backend, "server", None)
    if meter.name == "estimate" and server is not None and not server.launched:
        raise ValueError(f"the estimate meter counts the CPU time of this process and its children; the attached "
                         f"server at {server.url} is neither, so its energy would be missed. Use meter: nvml or "
                         f"rapl, or let ttc-energy launch the server (no server.url)")


def _size(path) -> int:
    return os.path.getsize(path) if path and os.path.exists(path) else 0


def _key(rep: int, qid: str, sample: int) -> str:
    return f"{rep}|{qid}|{sample}"


def _parse_key(key: str) -> tuple[int, str, int]:
    rep, qid, sample = key.split("|")
    return int(rep), qid, int(sample)


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


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
        log = plan.runs_dir / "servers" / f"{time.strftime('%Y%m%d-%H%M%S')}-{group[0].run_id}.log"
        backend = open_backend(group[0], log)
        try:
            for s in group:
                t0 = time.time()
                dirs[s.run_id] = execute(s, plan.runs_dir, progress=progress, backend=backend,
                                         problems=problems[s.run_id])
                if not progress:
                    info = json.loads((dirs[s.run_id] / "run.json").read_text())
                    print(f"measured {s.model} {s.strategy}: {info['n_queries']} queries, "
                          f"{info['completion_tokens']} tokens, {info['energy_j']:.0f} J ({info['meter_name']}), "
                          f"{time.time() - t0:.0f} s", flush=True)
        finally:
            if hasattr(backend, "close"):
                backend.close()
    return [dirs[s.run_id] for s in plan.specs]
