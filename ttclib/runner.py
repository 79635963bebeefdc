"""Executing runs: a validated spec in, a run directory with measured energy and scored answers out.

Finished queries are checkpointed after every batch (see :mod:`ttclib.rundir`), so a run that
dies resumes where it stopped; a sample's seed depends only on what it is (:func:`sampling_seed`),
so the resumed run generates what an uninterrupted one would. One process at a time measures a run
(its lock): :func:`run_plan` executes every run of a params file's plan, loading each model (or
starting each SGLang server) once, and waits for runs another process is measuring;
:func:`measure_plan` can leave those to it instead (``ttc run``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import aggregators, answers, benchmarks, cluster, energy, hardware, prompts, rundir
from .params import ParamsError, Plan
from .rundir import QUERY_COLUMNS, RUN_JSON, is_complete, run_dir, write_json
from .serving import Backend, Request, SamplingParams, make_backend, render_prompt, resolve_backend, resolve_device
from .spec import SPEC_VERSION, RunSpec


class RunHeld(RuntimeError):
    """Another process holds the run's lock: it is measuring the run now."""


def execute(
    spec: RunSpec,
    runs_dir: str | os.PathLike,
    *,
    progress: bool = True,
    backend: Backend | None = None,
    problems: list[benchmarks.Problem] | None = None,
    wait: bool = True,
) -> Path:
    """Run ``spec`` (or reuse its complete run) and return the run directory.

    ``backend`` may be given to reuse an already loaded model across runs of the same model,
    ``problems`` when they were loaded already (see :func:`load_problems`). The run's lock is held
    throughout; when another process holds it, this waits for it (a message says so) and reuses
    what it completed, or raises :class:`RunHeld` when not ``wait``. A complete run whose files
    fail their manifest is set aside (one line says which file) and measured again.
    """
    final = run_dir(spec, runs_dir)
    lock = rundir.run_lock(runs_dir, spec.run_id)
    if cached(spec, runs_dir):
        if rundir.segments_dir(final).exists() and lock.acquire():  # a kill between seal's rename and clean-up
            rundir.drop_segments(final)
            lock.release()
        return final
    if not lock.acquire():
        if not wait:
            raise RunHeld(f"run {spec.run_id} is being measured by {lock.holder()}")
        print(f"run {spec.run_id} is being measured by {lock.holder()}; waiting for it", flush=True)
        lock.acquire(wait=True)
    try:
        if (final / RUN_JSON).exists():
            why = rundir.damage(final)
            if why is None:  # completed by the process we waited for
                return final
            aside = rundir.set_aside(final)
            print(
                f"run {spec.run_id}: {why}: the stored run is damaged; moved to {aside} and measured again",
                file=sys.stderr,
                flush=True,
            )
        return _Execution(spec, Path(runs_dir), progress, backend, problems).run()
    finally:
        lock.release()


def cached(spec: RunSpec, runs_dir: str | os.PathLike) -> bool:
    """Complete and measured on this machine's hardware. A run from other hardware (copied in, a
    shared folder, the published reference) is never taken for this machine's measurement: it is
    moved to ``runs_dir/.other-hardware/`` with one line, and the run is measured here."""
    if not is_complete(spec, runs_dir):
        return False
    run = run_dir(spec, runs_dir)
    there, here = rundir.measured_on(run), hardware.this_machine()
    if there == here:
        return True
    try:
        aside = rundir.set_aside(run, rundir.OTHER_HARDWARE)
    except FileNotFoundError:  # another process moved it first
        return False
    print(
        f"run {spec.run_id} in {runs_dir} was measured on {there}, not on this machine ({here}): "
        f"moved to {aside}; measuring it here",
        file=sys.stderr,
        flush=True,
    )
    return False


def load_problems(spec: RunSpec) -> list[benchmarks.Problem]:
    """The problems a run asks for; a clear error when there are none or the data is missing."""
    bench = benchmarks.get(spec.benchmark)
    problems = bench.load(
        levels=spec.levels, per_level=spec.per_level, seed=spec.seed, subsets=spec.subsets, data=spec.data_path
    )
    if not problems:
        raise ValueError(f"benchmark {spec.benchmark!r}: no problems for levels={spec.levels} subsets={spec.subsets}")
    return problems


class _Execution:
    def __init__(self, spec: RunSpec, runs_dir: Path, progress: bool, backend: Backend | None, problems=None):
        self.spec, self.progress, self.backend = spec, progress, backend
        self.final = run_dir(spec, runs_dir)
        self.partial = rundir.partial_dir(spec, runs_dir)
        self.strategy = spec.resolved_strategy
        self.aggregate = aggregators.get(self.strategy.aggregator)
        self.bench = benchmarks.get(spec.benchmark)
        self.data = self.bench.source.locate(self.bench.name, spec.data_path)
        self.problems = {p.id: p for p in (problems if problems is not None else load_problems(spec))}

    def run(self) -> Path:
        rundir.segments_dir(self.partial).mkdir(parents=True, exist_ok=True)
        write_json(self.partial / rundir.SPEC_JSON, self.spec.model_dump())
        self.kept = rundir.read_segments(self.partial)
        done = self._done_keys()
        self.resumed = bool(done)
        own_backend, meter = self.backend is None, None
        started = time.time()
        try:
            meter = select_meter(self.spec, self.backend.device if self.backend else resolve_device(self.spec.device))
            with clocks_locked(self.spec, meter) as self.locks:  # before the model loads
                if own_backend:
                    self.backend = open_backend(self.spec, self.partial / rundir.SERVER_LOG)
                return self._measure_and_finish(meter, done, started)
        finally:
            if meter is not None:
                meter.close()
            if own_backend and self.backend is not None:
                self.backend.close()

    @property
    def loaded(self) -> Backend:
        """The backend, given or opened by :meth:`run` before anything uses it."""
        assert self.backend is not None, "the backend is opened in run()"
        return self.backend

    def _measure_and_finish(self, meter: energy.Meter, done: set[str], started: float) -> Path:
        """Measure what ``done`` lacks with the open backend and finish; the server's log is kept either way."""
        try:
            self.loaded.batch_size = self.spec.batch_size
            _check_meter_sees_backend(meter, self.loaded)
            self.log_offset = _size(self.loaded.log_path)
            todo = [r for r in self._requests() if r.id not in done]
            if todo:
                self._warm_up(todo, meter)
                self._measure(todo, meter)
            # An aggregator that asks the model about the samples: measured the same way, after them
            asked = [r for r in self._follow_up_requests() if r.id not in done] if self.aggregate.costs_energy else []
            if asked:
                if not todo:
                    self._warm_up(asked, meter)
                self._measure(asked, meter)
            self._save_server_log()
            return self._finish(meter, started)
        except BaseException:
            self._save_server_log()
            raise

    def _warm_up(self, todo: list[Request], meter: energy.Meter) -> None:
        warm = self._warm_up_requests(todo)
        if warm:
            self.loaded.generate(warm)
        if self.spec.idle_s > 0:
            meter.measure_idle(self.spec.idle_s)

    def _warm_up_requests(self, todo: list[Request]) -> list[Request]:
        """What ``spec.warmup`` generates before anything is measured. ``full``: a batch of the shape the
        run measures first (its prompts, batch size and sampling): of the first repetition's requests,
        those sharing the first one's sampling parameters come first (a backend that seeds per batch
        batches only those together), cut at the batch size. On the H200 a first repetition at a batch
        size or length the process had not yet generated took 2.3-3.4x the second (outputs/gpu/runs,
        warm-up ``true``)."""
        if not self.spec.warmup:
            return []
        if self.spec.warmup != "full":
            return [Request("warmup", todo[0].prompt, SamplingParams(max_new_tokens=4))]
        first_rep = [r for r in todo if _parse_key(r.id)[0] == _parse_key(todo[0].id)[0]]
        alike = sorted(first_rep, key=lambda r: r.sampling != todo[0].sampling)  # stable: run order kept
        return [dataclasses.replace(r, id=f"warmup:{r.id}") for r in alike[: self.spec.batch_size]]

    # requests ------------------------------------------------------------------------
    def _prompt(self, problem) -> str:
        if self.spec.input_tokens is None:
            return self._render(problem)
        return prompts.fit_question(
            problem.question,
            lambda q: self._render(dataclasses.replace(problem, question=q)),
            self.loaded.tokenizer,
            self.spec.input_tokens,
        )

    def _render(self, problem) -> str:
        fmt, budget = self.bench.answer_format, self.spec.budget or self.spec.max_new_tokens
        if self.loaded.chat:
            return render_prompt(self.loaded.tokenizer, self.strategy.messages(problem, fmt, budget), True)
        return self.strategy.base_prompt(problem, fmt, budget)

    def _requests(self) -> list[Request]:
        """Every (repetition, query, sample) as one request, in repetition order.

        Sets :attr:`seed_group` (request id -> the requests that share its random stream, which a
        checkpoint never splits; see :func:`_seed_owner`) and :attr:`position` (request id -> place
        in this order, which names segments).
        """
        if self.spec.scoring == "loglikelihood":
            return self._scoring_requests()
        s, st = self.spec, self.strategy
        stop = () if self.loaded.chat else st.base_stop
        texts = {p.id: self._prompt(p) for p in self.problems.values()}
        qids = list(texts)
        per_request = getattr(self.backend, "name", None) in SEEDS_PER_REQUEST
        reqs: list[Request] = []
        self.seed_group: dict[str, tuple] = {}  # request id -> the key of its seed group
        for rep in range(s.repetitions):
            for i, qid in enumerate(qids):
                owner = qid if per_request else _seed_owner(qids, i, s.batch_size)
                for k in range(st.samples):
                    sp = SamplingParams(
                        temperature=st.temperature,
                        top_p=st.top_p if st.temperature > 0 else 1.0,
                        max_new_tokens=s.max_new_tokens,
                        seed=sampling_seed(s.seed, rep, owner, k),
                        stop=stop,
                        ignore_eos=s.ignore_eos,
                    )
                    reqs.append(Request(_key(rep, qid, k), texts[qid], sp))
                    self.seed_group[reqs[-1].id] = (rep, owner, k)
        self.position = {r.id: i for i, r in enumerate(reqs)}
        return reqs

    def _follow_up_requests(self) -> list[Request]:
        """The prompts the strategy's aggregator asks about each query's samples (all checkpointed by
        now), one request each, numbered after the samples: greedy, the run's ``max_new_tokens``."""
        s, st = self.spec, self.strategy
        assert self.aggregate.follow_ups is not None
        rows = pd.concat([seg.queries for seg in rundir.read_segments(self.partial)], ignore_index=True)
        rows = rows[rows["sample"] < st.samples].sort_values(["repetition", "query_id", "sample"])
        stop = () if self.loaded.chat else st.base_stop
        reqs: list[Request] = []
        for (rep, qid), g in rows.groupby(["repetition", "query_id"], sort=False):
            problem = self.problems[qid]
            texts = g.text.tolist()
            samples = aggregators.Samples(
                [self._answer(self._split(t), problem) for t in texts], self.bench.equivalent, texts, problem
            )
            for k, prompt in enumerate(self.aggregate.follow_ups(samples), start=st.samples):
                sp = SamplingParams(max_new_tokens=s.max_new_tokens, seed=sampling_seed(s.seed, rep, qid, k), stop=stop)
                reqs.append(Request(_key(rep, qid, k), self._ask(prompt), sp))
                self.seed_group[reqs[-1].id] = (rep, qid, "follow-up")
                self.position[reqs[-1].id] = len(self.position)
        return reqs

    def _ask(self, text: str) -> str:
        if self.loaded.chat:
            return render_prompt(self.loaded.tokenizer, [{"role": "user", "content": text}], True)
        return text

    def _scoring_requests(self) -> list[Request]:
        """Log-likelihood scoring: one request per (repetition, query, option), the option's index as its
        sample; a query's options are one seed group, so a checkpoint never splits them."""
        choices = self.bench.choices
        assert choices is not None, "spec validation: loglikelihood scoring needs a multiple-choice benchmark"
        reqs: list[Request] = []
        self.seed_group = {}
        for rep in range(self.spec.repetitions):
            for qid, p in self.problems.items():
                ch = choices(p)
                for k, continuation in enumerate(ch.continuations):
                    reqs.append(
                        Request(
                            _key(rep, qid, k), ch.context, SamplingParams(max_new_tokens=1), continuation=continuation
                        )
                    )
                    self.seed_group[reqs[-1].id] = (rep, qid)
        self.position = {r.id: i for i, r in enumerate(reqs)}
        return reqs

    # measuring -------------------------------------------------------------------------
    def _measure(self, todo: list[Request], meter: energy.Meter) -> None:
        """One window, checkpointed after every ``batch_size`` completions (once the window spans ten
        counter update periods and no seed group is half done) and at the end of each repetition:
        one counter read closes a segment and opens the next, so the segments tile the measured
        time. Energy is split over the requests once the run is complete (:meth:`_finish`)."""
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(todo),
            desc=f"{self.spec.model} {self.spec.strategy}",
            unit="q",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        energy_so_far, tokens, t0 = self._energy_so_far(), 0, time.time()
        left = Counter(self.seed_group[r.id] for r in todo)  # completions each seed group still lacks
        meter.start_sampling()
        meter.begin_window("segment")
        batch: list = []
        opened = time.time()
        try:
            for _, reqs in itertools.groupby(todo, key=lambda r: _parse_key(r.id)[0]):
                for completion in self.loaded.stream(list(reqs)):
                    batch.append(completion)
                    left[self.seed_group[completion.request_id]] -= 1
                    if (
                        len(batch) >= self.spec.batch_size
                        and time.time() - opened >= meter.min_window_s
                        and not any(left[self.seed_group[c.request_id]] for c in batch)
                    ):
                        energy_so_far += self._checkpoint(batch, meter)
                        tokens += sum(c.completion_tokens for c in batch)
                        bar.update(len(batch))
                        bar.set_postfix(tok_s=f"{tokens / (time.time() - t0):.1f}", J=f"{energy_so_far:.0f}")
                        batch, opened = [], time.time()
                if batch:  # a repetition's last segment holds no completion of the next one
                    energy_so_far += self._checkpoint(batch, meter)
                    bar.update(len(batch))
                    batch, opened = [], time.time()
        except BaseException:
            # Keep what finished before the failure (a resumed run skips it), but only whole seed
            # groups: the rest of a group is generated again, with its whole group, on resume.
            whole = [c for c in batch if not left[self.seed_group[c.request_id]]]
            if whole:
                try:
                    self._checkpoint(whole, meter)
                except Exception:  # e.g. the failure hit mid-checkpoint; the batch is generated again
                    pass  # on resume, and the first error is the one that matters
            raise
        finally:
            bar.close()
            meter.discard_window("segment")  # what follows the last checkpoint measured nothing
            meter.stop_sampling()

    def _checkpoint(self, completions: list, meter: energy.Meter) -> float:
        """Close the segment's window (opening the next at the same reading), then write the
        segment — its queries, power trace and window — as one unit (:func:`rundir.write_segment`),
        named after its first request. Segments are numbered when the run is sealed."""
        m = meter.checkpoint("segment")
        trace = meter.trace(m.start_s, m.end_s)
        key = rundir.segment_key(min(self.position[c.request_id] for c in completions))
        rows = pd.DataFrame([self._row(c, -1, m.meter) for c in completions], columns=QUERY_COLUMNS)
        rundir.write_segment(self.partial, rundir.Segment(key, rows, trace.assign(segment=-1), m.to_dict()))
        return m.total_j

    def _row(self, c, segment: int, meter: str) -> dict:
        """A measured completion; energy is attributed and answers graded once the run is complete."""
        rep, qid, sample = _parse_key(c.request_id)
        p = self.problems[qid]
        follow_up = self.spec.scoring == "generate" and sample >= self.strategy.samples
        return dict(
            run_id=self.spec.run_id,
            repetition=rep,
            query_id=qid,
            sample=sample,
            benchmark=p.benchmark,
            category=p.category,
            difficulty=p.difficulty,
            subset=p.subset,
            prompt_tokens=c.prompt_tokens,
            completion_tokens=c.completion_tokens,
            reasoning_tokens=c.reasoning_tokens,
            cached_tokens=c.cached_tokens,
            finish_reason=c.finish_reason,
            text=c.text,
            truncated=None,
            answer=None,
            answer_class=None,
            chosen=None,
            follow_up=follow_up,
            gold=p.answer,
            correct=None,
            score=None,
            t_start=c.t_start,
            t_end=c.t_end,
            segment=segment,
            energy_j=float("nan"),
            net_energy_j=float("nan"),
            meter=meter,
            t_first_token=float("nan") if c.t_first_token is None else c.t_first_token,
            prefill_energy_j=float("nan"),
            decode_energy_j=float("nan"),
            logprob=float("nan") if c.logprob is None else c.logprob,
        )

    # grading -----------------------------------------------------------------------------
    def _grade(self, queries: pd.DataFrame) -> pd.DataFrame:
        """Extract → score → aggregate (the strategy's aggregator), after measuring: grading (and the
        sandbox) never runs inside an energy window. Reasoning is split off first; a cut-off reasoning
        is incorrect."""
        q = queries.sort_values(["repetition", "query_id", "sample"], ignore_index=True)
        if self.spec.scoring == "loglikelihood":
            return self._grade_choices(q)
        asked = q["follow_up"].fillna(False).to_numpy(bool) if "follow_up" in q.columns else np.zeros(len(q), bool)
        if asked.any():  # the aggregator's own requests: read by it, never graded as samples
            replies = q[asked].groupby(["repetition", "query_id"], sort=False).text.agg(list).to_dict()
            graded = self._grade_samples(q[~asked].reset_index(drop=True), replies)
            extra = q[asked].assign(
                truncated=pd.array([pd.NA] * asked.sum(), dtype="boolean"),
                answer=pd.array([None] * asked.sum(), dtype=object),
                correct=pd.array([pd.NA] * asked.sum(), dtype="boolean"),
                score=pd.array([pd.NA] * asked.sum(), dtype="Float64"),
                answer_class=pd.array([pd.NA] * asked.sum(), dtype="Int64"),
                chosen=False,
            )
            return pd.concat([graded, extra]).sort_values(["repetition", "query_id", "sample"], ignore_index=True)
        return self._grade_samples(q, {})

    def _split(self, text: str) -> answers.Reasoned:
        return answers.split_reasoning(text, expect_think=self.strategy.reasoning)

    def _answer(self, r: answers.Reasoned, problem: benchmarks.Problem) -> str | None:
        """The extracted answer; none after a cut-off reasoning."""
        return None if r.truncated else self.bench.extract_answer(r.answer_text, problem)

    def _grade_samples(self, q: pd.DataFrame, replies: dict) -> pd.DataFrame:
        """Grade the samples ``q`` (sorted); ``replies``: (repetition, query) -> the texts the model gave
        the aggregator's follow-up prompts."""
        from concurrent.futures import ThreadPoolExecutor

        from tqdm.auto import tqdm

        split = [self._split(t) for t in q.text]
        problems = [self.problems[qid] for qid in q.query_id]
        found = [self._answer(r, p) for r, p in zip(split, problems, strict=True)]
        unscored = benchmarks.Score(None, None) if self.bench.metric == "none" else benchmarks.Score(False, 0.0)

        def score(i: int) -> benchmarks.Score:
            return unscored if split[i].truncated else self.bench.score(found[i], problems[i])

        workers = (os.cpu_count() or 1) if self.bench.executes_code else 1
        with ThreadPoolExecutor(workers) as pool:
            scores = list(
                tqdm(
                    pool.map(score, range(len(q))),
                    total=len(q),
                    desc=f"scoring {self.bench.name}",
                    unit="answer",
                    disable=not (self.progress and self.bench.executes_code),
                )
            )
        classes: list[int | None] = [None] * len(q)
        chosen = np.zeros(len(q), dtype=bool)
        for idx in q.groupby(["repetition", "query_id"], sort=False).indices.values():
            key = (q.repetition.iat[idx[0]], q.query_id.iat[idx[0]])
            texts = [q.text.iat[i] for i in idx]
            found_here = [found[i] for i in idx]
            samples = aggregators.Samples(
                found_here, self.bench.equivalent, texts, problems[idx[0]], replies.get(key, ())
            )
            choice = self.aggregate(samples)
            for i, c in zip(idx, choice.classes, strict=True):
                classes[i] = c
            if choice.index is not None:
                chosen[idx[choice.index]] = True
        q["truncated"] = [r.truncated for r in split]
        q["answer"] = pd.array(found, dtype=object)
        q["reasoning_tokens"] = [self._reasoning_tokens(r, n) for r, n in zip(split, q.reasoning_tokens, strict=True)]
        q["correct"] = pd.array([s.correct for s in scores], dtype="boolean")
        q["score"] = pd.array([s.value for s in scores], dtype="Float64")
        q["answer_class"] = pd.array(classes, dtype="Int64")
        q["chosen"] = chosen
        return q

    def _grade_choices(self, q: pd.DataFrame) -> pd.DataFrame:
        """Log-likelihood scoring: in each (repetition, query) the option with the highest log-probability
        is the answer; every option's row carries it and its score (a query is right or wrong once)."""
        choices = self.bench.choices
        assert choices is not None, "spec validation: loglikelihood scoring needs a multiple-choice benchmark"
        answer: list[str | None] = [None] * len(q)
        correct: list[bool | None] = [None] * len(q)
        value: list[float | None] = [None] * len(q)
        chosen = np.zeros(len(q), dtype=bool)
        for (_, qid), idx in q.groupby(["repetition", "query_id"], sort=False).indices.items():
            p = self.problems[qid]
            best = idx[int(np.argmax(q.logprob.iloc[idx]))]
            option = choices(p).answers[int(q["sample"].iloc[best])]
            s = self.bench.score(option, p)
            chosen[best] = True
            for i in idx:
                answer[i], correct[i], value[i] = option, s.correct, s.value
        q["truncated"] = False
        q["answer"] = pd.array(answer, dtype=object)
        q["correct"] = pd.array(correct, dtype="boolean")
        q["score"] = pd.array(value, dtype="Float64")
        q["answer_class"] = pd.array(pd.factorize(pd.Series(answer, dtype=object))[0], dtype="Int64")
        q["chosen"] = chosen
        return q

    def _reasoning_tokens(self, reasoned: answers.Reasoned, reported: int) -> int:
        """The engine's count when it gives one, else the reasoning text tokenized."""
        if reported or not reasoned.reasoning:
            return int(reported)
        return len(self.loaded.tokenizer.encode(reasoned.reasoning, add_special_tokens=False))

    # resume & finish ---------------------------------------------------------------------
    def _save_server_log(self) -> None:
        """Copy this run's part of a shared server's log into the run directory."""
        src = self.loaded.log_path
        dest = self.partial / rundir.SERVER_LOG
        if src is None or not self.partial.exists() or Path(src) == dest:
            return
        with open(src, "rb") as f:
            f.seek(getattr(self, "log_offset", 0))
            with open(dest, "ab") as out:
                shutil.copyfileobj(f, out)
        self.log_offset = _size(src)

    def _done_keys(self) -> set[str]:
        return {
            _key(r, q, s)
            for seg in self.kept
            for r, q, s in seg.queries[["repetition", "query_id", "sample"]].itertuples(index=False)
        }

    def _energy_so_far(self) -> float:
        return sum(seg.window["total_j"] for seg in self.kept)

    def _backend_info(self) -> dict:
        info = self.loaded.describe()
        if (self.partial / rundir.SERVER_LOG).exists():
            info["server_log"] = rundir.SERVER_LOG  # relative to the run directory
        return info

    def _finish(self, meter: energy.Meter, started: float) -> Path:
        queries, power, window_dicts = self._segments_in_time_order()
        queries = self._grade(queries)
        if len(power):  # a sample on the edge of two segments is in both
            power = power.drop_duplicates(["t", "device"]).sort_values("t", ignore_index=True)
        queries, attribution = _attribute(queries, power, window_dicts, self.loaded.batch_size)
        meters = sorted({w["meter"] for w in window_dicts})
        info = {
            "run_id": self.spec.run_id,
            "spec": self.spec.model_dump(),
            "spec_version": SPEC_VERSION,
            "strategy": dataclasses.asdict(self.strategy),
            "benchmark": {
                "name": self.bench.name,
                "category": self.bench.category,
                "metric": self.bench.metric,
                "description": self.bench.description,
                "data": self.data.describe(),
                "difficulty": self.bench.difficulty_note or ("from the data" if self.bench.levels else None),
            },
            "meter": meter.describe(),
            "meter_name": meters[0] if len(meters) == 1 else "+".join(meters),
            "measured_devices": _measured_devices(meter),
            "energy_j": sum(w["total_j"] for w in window_dicts),
            "net_energy_j": sum(w["net_j"] for w in window_dicts),
            "measured_s": sum(w["time_s"] for w in window_dicts),
            **attribution,
            "windows": window_dicts,
            "clocks": energy.clocks.achieved(
                power, queries.t_start.min(), queries.t_end.max(), self.spec.sm_clock_mhz, self.locks
            ),
            "phases": self._phases(queries),
            "n_queries": int(queries.query_id.nunique()),
            "n_completions": len(queries),
            "completion_tokens": int(queries.completion_tokens.sum()),
            "backend": self._backend_info(),
            "hardware": hardware.describe(),
            "software": hardware.software_versions(),
            "scheduler": cluster.job_context(),
            "started": started,
            "finished": time.time(),
            "resumed": self.resumed,
        }
        rundir.seal(self.partial, self.final, queries, power, info)
        return self.final

    def _phases(self, queries: pd.DataFrame) -> dict:
        """How this run's prefill and decode are known (``run.json`` ``phases``)."""
        if self.spec.scoring == "loglikelihood":
            method = "log-likelihood scoring: every query is prefill only"
        else:
            method = getattr(self.backend, "phase_timing", None) or "not reported by this backend"
        return {
            "method": method,
            "queries_with_first_token": int(queries.t_first_token.notna().sum()),
            "queries": len(queries),
            "split": "ttclib.energy.attribute_phases at each query's first token",
        }

    def _segments_in_time_order(self) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
        """Every segment's queries, power trace and window, numbered 0, 1, ... in time order; an
        error, not a run with missing rows, when a request has no completion."""
        segments = rundir.read_segments(self.partial)
        if not segments:
            raise RuntimeError(f"run {self.spec.run_id}: no checkpointed segment to seal in {self.partial}")
        queries = pd.concat([seg.queries.assign(segment=i) for i, seg in enumerate(segments)], ignore_index=True)
        missing = set(self.position) - {
            _key(*k) for k in queries[["repetition", "query_id", "sample"]].itertuples(index=False)
        }
        if missing or len(queries) != len(self.position):
            raise RuntimeError(
                f"run {self.spec.run_id}: {len(missing)} of {len(self.position)} requests have no "
                f"completion and {len(queries) - len(self.position) + len(missing)} have two; "
                f"{self.partial} is kept, run again to measure the missing ones"
            )
        power = pd.concat([seg.power.assign(segment=i) for i, seg in enumerate(segments)], ignore_index=True)
        return queries, power, [{"segment": i, **seg.window} for i, seg in enumerate(segments)]


def _attribute(
    queries: pd.DataFrame, power: pd.DataFrame, window_dicts: list[dict], batch_size: int
) -> tuple[pd.DataFrame, dict]:
    """Per-query energy from every window (see :mod:`ttclib.energy.attribution`), and the run-level
    figures: overhead, flags, J per output token overall and in the steady state."""
    windows = [energy.Measurement.from_dict(w) for w in window_dicts]
    intervals = queries[["t_start", "t_end"]].to_numpy(float)
    trace = power if len(power) else pd.DataFrame({"t": [], "device": [], "power_w": [], "energy_j": []})
    split = energy.attribute_phases(
        windows, trace, intervals, queries.t_first_token.to_numpy(float), energy=("total_j", "net_j")
    )
    overhead = split.overhead
    queries = queries.assign(
        energy_j=split.whole[:, 0],
        net_energy_j=split.whole[:, 1],
        prefill_energy_j=split.prefill[:, 0],
        decode_energy_j=split.decode[:, 0],
    )
    tokens = int(queries.completion_tokens.sum())
    run_j = sum(w.total_j for w in windows)
    flags = dict(Counter(f for w in windows for f in w.flags))
    steady = energy.steady_state(trace, intervals, queries.completion_tokens.to_numpy(float), batch_size)
    return queries, {
        "overhead_j": float(np.atleast_1d(overhead)[0]),
        "flags": flags,
        "energy_per_output_token_j": run_j / tokens if tokens else None,
        "steady_state": steady.to_dict(),
        "attribution": energy.attribution.RULE,
    }


def _measured_devices(meter: energy.Meter) -> dict:
    """Which devices the energy is of, and why those (``run.json``'s ``measured_devices``)."""
    d = meter.describe()
    return {
        "meter": meter.name,
        "scope": d.get("scope", "this process tree" if meter.name == "estimate" else "all zones"),
        "devices": [
            {
                k: dev.get(k)
                for k in ("name", "index", "nvml_index", "model", "uuid", "mig_uuid", "power_source", "power_averaged")
                if k in dev
            }
            for dev in d["devices"]
        ],
        "counter_update_period_s": d.get("counter_update_period_s"),
    }


def open_backend(spec: RunSpec, log_path: Path | None = None) -> Backend:
    """The backend a spec asks for; an SGLang server logs to ``log_path``."""
    return make_backend(
        spec.backend,
        spec.model,
        device=spec.device,
        dtype=spec.dtype,
        batch_size=spec.batch_size,
        seed=spec.seed,
        threads=spec.threads,
        options=spec.server,
        log_path=log_path,
    )


def backend_key(spec: RunSpec) -> tuple:
    """Runs with equal keys can share one loaded model (or one SGLang server)."""
    name = resolve_backend(spec.backend)
    key: tuple = (spec.model, name, spec.device, spec.dtype, spec.seed, spec.threads)
    if name == "sglang":  # the server's max_running_requests is the run's batch size
        key += (spec.batch_size, spec.server.model_dump_json())
    return key


def backend_groups(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """``specs`` grouped by :func:`backend_key`, the groups in the order of their first run and each in
    plan order: the order :func:`measure_plan` measures them in, one loaded model per group."""
    groups: dict[tuple, list[RunSpec]] = {}
    for s in specs:
        groups.setdefault(backend_key(s), []).append(s)
    return list(groups.values())


def select_meter(spec: RunSpec, device: str) -> energy.Meter:
    """The run's meter, scoped to the GPUs the run uses on ``device`` (resolved: cpu, cuda or cuda:N)
    with SGLang's ``tp_size`` x ``dp_size``.

    ``meter: auto`` on a CPU run never picks NVML (idle GPUs are not the run's energy); ``meter: nvml``
    asked for explicitly on a CPU run measures every visible GPU, and says so.
    """
    gpus, scope = energy.gpus_for_device(device, spec.server.tp_size, spec.server.dp_size)
    kwargs: dict[str, Any] = {} if spec.sample_interval_s is None else {"sample_interval_s": spec.sample_interval_s}
    if gpus is None:
        if spec.meter == "nvml":
            return energy.select_meter("nvml", scope="all visible GPUs (meter nvml asked for on a CPU run)", **kwargs)
        return energy.select_meter(spec.meter, exclude=("nvml",), **kwargs)
    return energy.select_meter(spec.meter, gpus=gpus, scope=scope, **kwargs)


@contextlib.contextmanager
def clocks_locked(spec: RunSpec, meter: energy.Meter) -> Iterator[list[dict]]:
    """Lock ``spec``'s SM (and memory) clock on every GPU ``meter`` measures while the block runs, and
    give them back however it ends (:class:`~ttclib.energy.clocks.ClockLock`); yields what each lock set
    (nothing when the spec sets no clock)."""
    if spec.sm_clock_mhz is None:
        yield []
        return
    indices = getattr(meter, "nvml_indices", None)
    if not indices:
        raise energy.clocks.ClockError(
            f"sm_clock_mhz {spec.sm_clock_mhz}: clocks are locked on the GPUs a run measures, and this run's meter "
            f"({meter.name}) measures none: run it on a GPU (device: cuda) or with meter: nvml"
        )
    with contextlib.ExitStack() as stack:
        locks = [
            stack.enter_context(energy.clocks.ClockLock(i, spec.sm_clock_mhz, spec.mem_clock_mhz)) for i in indices
        ]
        yield [lock.achieved for lock in locks]


def _check_clocks(plan: Plan, specs: list[RunSpec]) -> None:
    """Lock and reset the clocks of each GPU set the plan locks, once, before any model loads: a
    missing permission stops the plan here, with the run it stopped at."""
    seen = set()
    for s in specs:
        key = (resolve_device(s.device), s.server.tp_size, s.server.dp_size, s.meter)
        if s.sm_clock_mhz is None or key in seen:
            continue
        seen.add(key)
        try:
            with select_meter(s, key[0]) as meter, clocks_locked(s, meter):
                pass
        except energy.clocks.ClockError as e:
            raise type(e)(
                f"{plan.path}: profiles.{plan.profile}: run {s.run_id} ({s.model}, sm_clock_mhz {s.sm_clock_mhz}): {e}"
            ) from None


def _check_meter_sees_backend(meter: energy.Meter, backend: Backend) -> None:
    if meter.name == "estimate" and backend.external is not None:
        raise ValueError(
            f"the estimate meter counts the CPU time of this process and its children; the attached "
            f"server at {backend.external} is neither, so its energy would be missed. Use meter: nvml "
            f"or rapl, or let ttc-energy launch the server (no server.url)"
        )


def _size(path) -> int:
    return os.path.getsize(path) if path and os.path.exists(path) else 0


# Backends that seed each request on its own (SGLang's per-request sampling_seed). The others
# (transformers) draw one random stream per batch: there a batch's rows depend on the whole batch.
SEEDS_PER_REQUEST = frozenset({"sglang"})


def sampling_seed(seed: int, repetition: int, query_id: str, sample: int) -> int:
    """The seed of one sample, from what it is — the run's seed, the repetition, the query, the
    sample — and nothing else (not from when or in which batch it ran), so a resumed run draws
    what an uninterrupted one draws. Mixed by NumPy's ``SeedSequence``; fits in 32 bits.

    >>> sampling_seed(0, 0, "q1", 0) == sampling_seed(0, 0, "q1", 0)
    True
    >>> len({sampling_seed(0, 0, "q1", 0), sampling_seed(0, 0, "q1", 1), sampling_seed(0, 1, "q1", 0),
    ...      sampling_seed(0, 0, "q2", 0), sampling_seed(1, 0, "q1", 0)})
    5
    """
    qid = int.from_bytes(hashlib.sha256(query_id.encode()).digest()[:8], "big")
    return int(np.random.SeedSequence([seed, repetition, sample, qid]).generate_state(1)[0])


def _seed_owner(query_ids: list[str], i: int, batch_size: int) -> str:
    """Whose seed query ``i`` samples with on a backend that seeds per batch: the first query of its
    batch, the batches being fixed runs of ``batch_size`` queries of the run's order (the ones such a
    backend forms anyway). So a batch's composition and seed do not depend on what ran before it.

    >>> _seed_owner(["a", "b", "c", "d", "e"], 3, 2), _seed_owner(["a", "b", "c", "d", "e"], 4, 2)
    ('c', 'e')
    """
    return query_ids[i - i % batch_size]


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
            raise ParamsError(
                f"{plan.path}: profiles.{plan.profile}: run {s.run_id} ({s.model}, {s.strategy}): {e}"
            ) from None
    return problems


@dataclasses.dataclass
class PlanOutcome:
    """What :func:`measure_plan` did: the complete runs, those measured now, and those left to
    another process that holds their lock (run id -> who)."""

    dirs: dict[str, Path] = dataclasses.field(default_factory=dict)
    measured: list[str] = dataclasses.field(default_factory=list)
    held: dict[str, str] = dataclasses.field(default_factory=dict)
    deferred: dict[str, str] = dataclasses.field(default_factory=dict)  # run id -> why ``defer`` left it


def measure_plan(
    plan: Plan,
    *,
    progress: bool | None = None,
    wait: bool = True,
    defer: Callable[[RunSpec], str | None] | None = None,
) -> PlanOutcome:
    """Execute every run of a plan (cached runs are reused), loading each model once; models load in
    the order the plan first names them.

    A run another process is measuring (it holds the run's lock) is skipped, so two processes on
    one grid share it; at the end the skipped ones are waited for (``wait``: a message says so;
    reused when done, measured here if their holder died) or left to their holder (``held``).
    ``defer``, asked just before each run would start, may leave it for a later call by returning
    why (``deferred``), e.g. when it would not end inside a time budget.
    """
    progress = progress_default() if progress is None else progress
    out = PlanOutcome()
    pending = []
    for s in plan.specs:
        if cached(s, plan.runs_dir):
            out.dirs[s.run_id] = run_dir(s, plan.runs_dir)
        else:
            pending.append(s)
    problems = _problems_before_any_model(plan, pending)
    _check_clocks(plan, pending)
    held = _measure_runs(plan, pending, problems, progress, out, wait=False, defer=defer)
    if wait and held:
        held = _measure_runs(plan, held, problems, progress, out, wait=True, defer=defer)
    for s in held:
        if is_complete(s, plan.runs_dir):  # finished by its holder meanwhile
            out.dirs[s.run_id] = run_dir(s, plan.runs_dir)
        else:
            out.held[s.run_id] = rundir.run_lock(plan.runs_dir, s.run_id).holder()
    return out


def run_plan(plan: Plan, *, progress: bool | None = None) -> list[Path]:
    """Execute every run of a plan (cached runs are reused, runs another process is measuring are
    waited for), loading each model once; the run directories in plan order."""
    out = measure_plan(plan, progress=progress, wait=True)
    return [out.dirs[s.run_id] for s in plan.specs]


def stored_runs(plan: Plan, runs_dir: str | os.PathLike) -> list[Path]:
    """The plan's runs from a folder of finished runs, measuring nothing: the published reference
    runs (``make report``), or another machine's, to analyse or compare with one's own.

    A run is found by its run id, or else by the id its spec had under an earlier
    :data:`~ttclib.spec.SPEC_VERSION` (one line says so). Raises :class:`ParamsError` naming the
    params file and every run the folder lacks, or the first damaged one."""
    folder = Path(runs_dir)
    if not folder.is_dir():
        raise ParamsError(f"{plan.path}: runs_dir {folder}: no such folder of runs")
    found, missing = [], []
    for s in plan.specs:
        run = _stored_run(folder, s)
        if run is None:
            missing.append(f"{s.run_id} ({s.model}, {s.strategy}, {s.benchmark})")
            continue
        if run.name != s.run_id:
            print(
                f"run {s.run_id}: using {run.name} from {folder}, the same spec measured under spec version "
                f"{rundir.read_info(run).get('spec_version')} (this code: {SPEC_VERSION})",
                flush=True,
            )
        why = rundir.damage(run)
        if why is not None:
            raise ParamsError(f"{plan.path}: runs_dir {folder}: run {run.name} is damaged: {why}")
        found.append(run)
    if missing:
        raise ParamsError(
            f"{plan.path}: profiles.{plan.profile}: {len(missing)} of {len(plan.specs)} runs are not in "
            f"{folder}: {'; '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} (runs_dir=None "
            f"measures them here)"
        )
    return found


def _stored_run(folder: Path, spec: RunSpec) -> Path | None:
    """``spec``'s complete run in ``folder`` under this spec version's id, else the newest earlier one."""
    for version in range(SPEC_VERSION, 0, -1):
        run = folder / spec.run_id_at(version)
        if (run / RUN_JSON).exists():
            return run
    return None


def _measure_runs(
    plan: Plan,
    specs: list[RunSpec],
    problems: dict,
    progress: bool,
    out: PlanOutcome,
    wait: bool,
    defer: Callable[[RunSpec], str | None] | None = None,
) -> list[RunSpec]:
    """Measure ``specs``, one backend per group of runs that can share it (groups in the order of
    their first run), opened only when a run of the group is claimed; the runs whose lock another
    process holds (unless ``wait``)."""
    held = []
    for group in backend_groups(specs):
        backend = None
        try:
            for s in group:
                why = defer(s) if defer is not None else None
                if why:
                    out.deferred[s.run_id] = why
                    continue
                lock = rundir.run_lock(plan.runs_dir, s.run_id)
                if not lock.acquire():
                    if not wait:
                        held.append(s)
                        continue
                    print(f"run {s.run_id} is being measured by {lock.holder()}; waiting for it", flush=True)
                    lock.acquire(wait=True)
                try:
                    if is_complete(s, plan.runs_dir):  # completed by another process meanwhile
                        out.dirs[s.run_id] = run_dir(s, plan.runs_dir)
                        continue
                    backend = backend or open_backend(s, rundir.shared_server_log(plan.runs_dir, s))
                    t0 = time.time()
                    out.dirs[s.run_id] = execute(
                        s, plan.runs_dir, progress=progress, backend=backend, problems=problems[s.run_id]
                    )
                    out.measured.append(s.run_id)
                finally:
                    lock.release()
                if not progress:
                    info = rundir.read_info(out.dirs[s.run_id])
                    print(
                        f"measured {s.run_id} {s.model} {s.strategy}: {info['n_queries']} queries, "
                        f"{info['completion_tokens']} tokens, {info['energy_j']:.0f} J ({info['meter_name']}), "
                        f"{time.time() - t0:.0f} s",
                        flush=True,
                    )
        finally:
            if backend is not None:
                backend.close()
    return held
