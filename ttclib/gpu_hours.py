"""GPU-hour projection: the GPU-hours a plan will take, before anything runs (``ttc run PARAMS --dry-run``).

A run generates ``queries = problems × repetitions × samples`` completions of ``output_tokens``
each (expected), each after a prefill of ``prompt_tokens``. On the target GPU, the model split
over the run's ``tp_size`` GPUs, a roofline gives the time (the slower of memory and compute):

- a decode step streams the weights once plus the KV cache of every running sequence
  (``2 × layers × kv_heads × head_dim × dtype bytes`` per token of context; a sequence's average
  context is its prompt plus half its output) at ``bandwidth_efficiency`` of the memory
  bandwidth, unless its ``2 × parameters × batch`` FLOPs at ``compute_efficiency`` of peak take
  longer; the batch is the run's batch size, fewer when the KV cache of that many sequences
  does not fit in ``memory_fraction`` of the GPUs' memory beside the weights;
- prefill is compute-bound: ``2 × parameters`` FLOPs per prompt token.

``GPU-seconds = tp_size × (prefill + decode) seconds``. Energy is bounded above by
GPU-hours × TDP (a GPU rarely draws its TDP for long; the paper's GPUs stayed below).

Expected output tokens per query come from completed runs of the same model, strategy and
benchmark in the plan's runs_dir (their measured mean) when there are any, else from figures the
paper reports (:func:`paper_tokens`), always capped at max_new_tokens. Problems are counted in the
benchmark's data when it is on this machine (never downloaded), else taken from the benchmark's
documented ``size``; generated benchmarks are counted, not generated (``per_level`` × levels, the
question lengths from a sample), and data over ``COUNT_BYTES`` is not read. Not included: model
download and loading, server start-up, warm-up, the idle baseline, grading. Sliding-window layers
are counted as full attention.

>>> from ttclib.gpu_hours import GPU, Architecture, Roofline, decode_step_s
>>> arch = Architecture(parameters=10**9, layers=10, kv_heads=2, head_dim=64)
>>> arch.kv_bytes_per_token(dtype_bytes=2)                   # 2 × 10 layers × 2 heads × 64 × 2 bytes
5120
>>> gpu = GPU("example", memory_bandwidth_gb_s=1000, memory_gb=80, peak_tflops=100, tdp_w=300)
>>> # (2 GB of weights + 16 sequences × 1000 tokens × 5120 B) / (70% of 1000 GB/s):
>>> round(decode_step_s(arch, Roofline(gpu), dtype_bytes=2, batch=16, context_tokens=1000), 6)
0.002974
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import benchmarks, models, rundir
from .benchmarks.scoring import score_choice
from .benchmarks.sources import DATA_DIR_ENV

if TYPE_CHECKING:
    from .params import Plan
    from .spec import RunSpec

DTYPE_BYTES = {
    "float32": 4,
    "bfloat16": 2,
    "float16": 2,
    "auto": 2,
}  # auto is bfloat16 on every GPU the estimate knows (A100, H100, H200)


# --- hardware ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GPU:
    """Datasheet figures: peak memory bandwidth, memory, dense bf16 tensor peak, TDP."""

    name: str
    memory_bandwidth_gb_s: float
    memory_gb: float
    peak_tflops: float
    tdp_w: float


GPUS: dict[str, GPU] = {
    # The paper's GPU (§3). Its 500 W "maximum power rating" is the HGX custom-thermal SKU; 400 W
    # is the standard SXM TDP.
    "a100-80gb": GPU("NVIDIA A100 80GB SXM", memory_bandwidth_gb_s=2039, memory_gb=80, peak_tflops=312, tdp_w=400),
    "h100-sxm": GPU("NVIDIA H100 80GB SXM", memory_bandwidth_gb_s=3350, memory_gb=80, peak_tflops=989, tdp_w=700),
    "h200": GPU("NVIDIA H200 141GB SXM", memory_bandwidth_gb_s=4800, memory_gb=141, peak_tflops=989, tdp_w=700),
}
DEFAULT_GPU = "a100-80gb"


# How much of the datasheet peaks a serving engine reaches (assumptions, not measurements).
BANDWIDTH_EFFICIENCY = 0.7  # of peak memory bandwidth, decode
COMPUTE_EFFICIENCY = 0.5  # of peak FLOPs, prefill and compute-bound decode
MEMORY_FRACTION = 0.9  # of GPU memory for weights + KV cache (SGLang's mem_fraction_static)


@dataclass(frozen=True)
class Roofline:
    """The target GPU and how much of its peaks a serving engine reaches."""

    gpu: GPU
    bandwidth_efficiency: float = BANDWIDTH_EFFICIENCY
    compute_efficiency: float = COMPUTE_EFFICIENCY
    memory_fraction: float = MEMORY_FRACTION

    def describe(self) -> str:
        g = self.gpu
        return (
            f"{g.name}: decode at {self.bandwidth_efficiency:.0%} of {g.memory_bandwidth_gb_s:g} GB/s "
            f"(weights + KV cache per step), prefill at {self.compute_efficiency:.0%} of {g.peak_tflops:g} "
            f"TFLOPS, KV cache in {self.memory_fraction:.0%} of {g.memory_gb:g} GB per GPU"
        )


# --- model architecture --------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    parameters: int
    layers: int
    kv_heads: int
    head_dim: int
    source: str = ""

    @classmethod
    def from_config(cls, config: dict, source: str = "") -> Architecture:
        """From a Hugging Face ``config.json`` of a Llama/Qwen2-style decoder."""
        return cls(parameter_count(config), config["num_hidden_layers"], _kv_heads(config), _head_dim(config), source)

    def weight_bytes(self, dtype_bytes: int) -> int:
        return self.parameters * dtype_bytes

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


def _head_dim(config: dict) -> int:
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def _kv_heads(config: dict) -> int:
    return config.get("num_key_value_heads") or config["num_attention_heads"]


def parameter_count(config: dict) -> int:
    """Embeddings (and an untied output layer), attention, gated MLP and norms of each layer.

    >>> import json; from ttclib.models import CONFIG_DIR
    >>> round(parameter_count(json.loads((CONFIG_DIR / "qwen2.5-7b.json").read_text())) / 1e9, 2)
    7.62
    """
    hidden, heads, head = config["hidden_size"], config["num_attention_heads"], _head_dim(config)
    kv = _kv_heads(config) * head
    embeddings = config["vocab_size"] * hidden * (1 if config.get("tie_word_embeddings", True) else 2)
    attention = hidden * heads * head * 2 + hidden * kv * 2  # q, o; k, v
    if config.get("attention_bias", config.get("model_type") == "qwen2"):  # Qwen2 has q/k/v biases
        attention += heads * head + 2 * kv
    mlp = 3 * hidden * config["intermediate_size"]
    return embeddings + config["num_hidden_layers"] * (attention + mlp + 2 * hidden) + hidden


def architecture(model: str) -> Architecture | None:
    """The architecture of a run's model, from its config.json (None when none is known here, or
    the config lacks what the roofline needs)."""
    path = models.config_path(model)
    if path is None:
        return None
    try:
        config = models.read_config(path, model)
        models.check_architecture(config, model)
    except ValueError:
        return None
    return Architecture.from_config(config, path.name)


def model_parameters(model: str) -> int | None:
    """A model's parameter count from its config.json (None when none is known here)."""
    arch = architecture(model)
    return arch.parameters if arch else None


# --- time on the GPU -----------------------------------------------------------------------


def decode_step_s(
    arch: Architecture, roofline: Roofline, *, dtype_bytes: int, batch: int, context_tokens: float, tp: int = 1
) -> float:
    """One decode step of ``batch`` sequences with ``context_tokens`` each, the model over ``tp`` GPUs."""
    g = roofline.gpu
    moved = arch.weight_bytes(dtype_bytes) + batch * context_tokens * arch.kv_bytes_per_token(dtype_bytes)
    memory_s = moved / tp / (g.memory_bandwidth_gb_s * 1e9 * roofline.bandwidth_efficiency)
    compute_s = 2 * arch.parameters * batch / tp / (g.peak_tflops * 1e12 * roofline.compute_efficiency)
    return max(memory_s, compute_s)


def prefill_s(arch: Architecture, roofline: Roofline, *, prompt_tokens: float, tp: int = 1) -> float:
    return 2 * arch.parameters * prompt_tokens / tp / (roofline.gpu.peak_tflops * 1e12 * roofline.compute_efficiency)


def kv_capacity(arch: Architecture, roofline: Roofline, *, dtype_bytes: int, context_tokens: float, tp: int = 1) -> int:
    """Sequences of ``context_tokens`` whose KV cache fits beside the weights (0: the weights do not fit)."""
    free = tp * roofline.gpu.memory_gb * 1e9 * roofline.memory_fraction - arch.weight_bytes(dtype_bytes)
    return max(0, math.floor(free / (arch.kv_bytes_per_token(dtype_bytes) * max(context_tokens, 1))))


def generation_s(
    arch: Architecture,
    roofline: Roofline,
    *,
    dtype_bytes: int,
    tp: int,
    batch: int,
    queries: int,
    prompt_tokens: float,
    output_tokens: float,
) -> tuple[float, int]:
    """Wall seconds to prefill and decode ``queries`` completions, and how many run at once."""
    context = prompt_tokens + output_tokens / 2
    running = min(batch, queries, kv_capacity(arch, roofline, dtype_bytes=dtype_bytes, context_tokens=context, tp=tp))
    if running < 1:
        raise ValueError(
            f"{arch.parameters / 1e9:.1f}B parameters and one sequence's KV cache do not fit "
            f"on {tp} × {roofline.gpu.name}"
        )
    steps = queries * output_tokens / running
    decode = steps * decode_step_s(
        arch, roofline, dtype_bytes=dtype_bytes, batch=running, context_tokens=context, tp=tp
    )
    return queries * prefill_s(arch, roofline, prompt_tokens=prompt_tokens, tp=tp) + decode, running


# --- what a run generates -------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    per_query: float
    source: str  # said next to the number
    kind: str  # "measured" | "paper" | "max_new_tokens" | "data" | "assumed" | "spec"


@dataclass(frozen=True)
class Problems:
    count: int | None
    source: str
    question_chars: float | None = None  # mean, when the problems were read here


PAPER_TOKENS: dict[str, Tokens] = {
    "base": Tokens(200, "paper §4.2: Base answers ≈ 200 tokens", "paper"),
    "mv": Tokens(200, "paper §4.2: MV samples are Base-length, ≈ 200 tokens", "paper"),
    "rt": Tokens(7845, "paper §4.1: RT averages 7845 tokens", "paper"),
}
PAPER_MULTIPLE_CHOICE = Tokens(1, "paper §4.1: multiple choice answers in 1 token", "paper")
PAPER_RT_LIVECODEBENCH = Tokens(6588, "paper §4.2: RT averages 6588 tokens on LiveCodeBench", "paper")
# The paper gives no RT length on common sense, only that RT cost 1.08× Base's energy there (§4.1):
# Base-like lengths, not the 7845 tokens of the reasoning benchmarks.
PAPER_RT_COMMON_SENSE = Tokens(200, "paper §4.1: RT cost 1.08× Base energy on common sense (Base-like length)", "paper")

ASSUMED_PROMPT = Tokens(256, "assumed: 256 (no data or runs here)", "assumed")
COUNT_BYTES = 64 << 20  # data larger than this (uncompressed) is not read to count problems: documented size
GENERATED_SAMPLE = 16  # problems per level generated to measure a generated benchmark's question lengths
CHARS_PER_TOKEN = 4
TEMPLATE_TOKENS = 50  # chat template, answer format and the strategy's instruction around a question


def paper_tokens(spec: RunSpec) -> Tokens | None:
    """The paper's reported output length for a run like ``spec`` (None: the paper has none)."""
    bench = benchmarks.get(spec.benchmark)
    if spec.strategy in ("base", "mv") and bench.category == "common_sense" and bench.score is score_choice:
        return PAPER_MULTIPLE_CHOICE
    if spec.strategy == "rt" and spec.benchmark == "livecodebench":
        return PAPER_RT_LIVECODEBENCH
    if spec.strategy == "rt" and bench.category == "common_sense":
        return PAPER_RT_COMMON_SENSE
    return PAPER_TOKENS.get(spec.strategy)


@dataclass
class MeasuredRun:
    """A completed run in a runs_dir, as far as the projection needs it."""

    path: Path
    max_new_tokens: int
    completions: int
    completion_tokens: int

    @functools.cached_property
    def prompt_tokens(self) -> float | None:
        try:
            return float(rundir.read_queries(self.path, columns=["prompt_tokens"]).prompt_tokens.sum())
        except (OSError, ValueError, KeyError):
            return None


def measured_runs(runs_dir: str | os.PathLike) -> dict[tuple[str, str, str], list[MeasuredRun]]:
    """Completed runs of ``runs_dir`` by (model, strategy, benchmark)."""
    found: dict[tuple[str, str, str], list[MeasuredRun]] = {}
    for d in rundir.completed_runs(runs_dir):
        try:
            info = rundir.read_info(d)
            spec = info["spec"]
            run = MeasuredRun(d, spec["max_new_tokens"], info["n_completions"], info["completion_tokens"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if run.completions:
            found.setdefault((spec["model"], spec["strategy"], spec["benchmark"]), []).append(run)
    return found


def _like(spec: RunSpec, measured: dict) -> list[MeasuredRun]:
    """Measured runs of the same model, strategy and benchmark: those with the same max_new_tokens, else
    those with a larger one (a smaller cap cut the answers short: no evidence of their length here)."""
    runs = measured.get((spec.model, spec.strategy, spec.benchmark), [])
    return [r for r in runs if r.max_new_tokens == spec.max_new_tokens] or [
        r for r in runs if r.max_new_tokens > spec.max_new_tokens
    ]


def output_tokens(spec: RunSpec, measured: dict) -> Tokens:
    """Expected completion tokens per query (per sample): measured > paper figure > max_new_tokens."""
    cap = spec.max_new_tokens
    if spec.ignore_eos:
        return Tokens(cap, "ignore_eos: = max_new_tokens", "max_new_tokens")
    runs = _like(spec, measured)
    found: Tokens | None
    if runs:
        mean = sum(r.completion_tokens for r in runs) / sum(r.completions for r in runs)
        found = Tokens(mean, f"measured: mean of {len(runs)} completed run(s)", "measured")
    else:
        found = paper_tokens(spec)
    if found is None:
        return Tokens(cap, f"no figure for {spec.strategy}: max_new_tokens (upper bound)", "max_new_tokens")
    if found.per_query > cap:
        return Tokens(cap, f"{found.source}, capped at max_new_tokens", found.kind)
    return found


def prompt_tokens(spec: RunSpec, probs: Problems, measured: dict) -> Tokens:
    """Prompt tokens per query: set by the spec (``input_tokens``) > measured > question lengths of the
    local data > an assumption."""
    if spec.input_tokens is not None:
        return Tokens(float(spec.input_tokens), "input_tokens of the run spec", "spec")
    runs = [r for r in _like(spec, measured) if r.prompt_tokens is not None]
    if runs:
        # every run has prompt_tokens (filtered above); the condition says so to the type checker
        mean = sum(r.prompt_tokens for r in runs if r.prompt_tokens is not None) / sum(r.completions for r in runs)
        return Tokens(mean, f"measured: mean of {len(runs)} completed run(s)", "measured")
    if probs.question_chars is not None:
        return Tokens(
            probs.question_chars / CHARS_PER_TOKEN + TEMPLATE_TOKENS,
            f"question characters / {CHARS_PER_TOKEN} + {TEMPLATE_TOKENS} template tokens",
            "data",
        )
    return ASSUMED_PROMPT


def problems(spec: RunSpec) -> Problems:
    """How many problems a run asks for: counted in local data, else from the documented size."""
    env = os.environ.get(DATA_DIR_ENV)
    local = _count_local(
        spec.benchmark,
        spec.data_path,
        tuple(spec.levels or ()),
        tuple(spec.subsets or ()),
        spec.per_level,
        spec.seed,
        env,
    )
    return local or _count_without_data(spec)


@functools.cache
def _count_local(
    benchmark: str,
    data: Path | None,
    levels: tuple,
    subsets: tuple,
    per_level: int | None,
    seed: int,
    data_dir: str | None,
) -> Problems | None:
    """Problems read from data on this machine (a file, a package, a generator); None for the hub."""
    bench = benchmarks.get(benchmark)
    try:
        where = bench.source.locate(benchmark, data)
        if where.kind == "generated":
            return _count_generated(bench, levels or bench.levels, per_level, seed)
        if where.kind == "hub" or (where.kind == "file" and _data_bytes(Path(where.where)) > COUNT_BYTES):
            return None
        found = bench.load(
            levels=list(levels) or None, per_level=per_level, seed=seed, subsets=list(subsets) or None, data=data
        )
    except (benchmarks.BenchmarkDataError, ValueError, ImportError, OSError, zipfile.BadZipFile):
        return None
    chars = sum(len(p.question) for p in found) / len(found) if found else None
    return Problems(len(found), f"counted in the {where.kind} data here", chars)


def _data_bytes(path: Path) -> int:
    """A data file's size as read: decompressed, and only as far as needed to tell it is over COUNT_BYTES
    (a small .gz or .zip may hold gigabytes)."""
    if not path.is_file():
        return 0  # a folder a benchmark's reader globs (MMLU's CSVs)
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as z:
            return sum(info.file_size for info in z.infolist())
    if path.suffix.lower() != ".gz":
        return path.stat().st_size
    size = 0
    with gzip.open(path, "rb") as f:
        while size <= COUNT_BYTES and (chunk := f.read(1 << 20)):
            size += len(chunk)
    return size


def _count_generated(bench: benchmarks.Benchmark, levels: tuple, per_level: int | None, seed: int) -> Problems | None:
    """A generator makes exactly ``per_level`` per level: counted without generating them all.

    >>> _count_generated(benchmarks.get("arithmetic"), ("easy", "hard"), 10**8, 0).count
    200000000
    """
    if per_level is None:
        return None
    sample = bench.load(levels=list(levels), per_level=min(per_level, GENERATED_SAMPLE), seed=seed)
    chars = sum(len(p.question) for p in sample) / len(sample) if sample else None
    return Problems(
        per_level * len(levels), f"counted in the generated data here (per_level × {len(levels)} levels)", chars
    )


def _count_without_data(spec: RunSpec) -> Problems:
    bench = benchmarks.get(spec.benchmark)
    levels = spec.levels or bench.levels
    groups, per = (len(levels), "levels") if levels else (len(spec.subsets or ()), "subsets")
    if spec.per_level is not None and groups:
        n = spec.per_level * groups
        if bench.size is not None and bench.size < n:
            return Problems(bench.size, f"documented split size (< per_level × {groups} {per})")
        return Problems(n, f"≤ per_level × {groups} {per} (no data here)")
    if spec.per_level is not None:  # drawn per subset, and how many subsets there are only the data says
        n = min(spec.per_level, bench.size or spec.per_level)
        return Problems(n, "≤ per_level (no data here: per subset where the data has subsets)")
    if bench.size is not None:
        return Problems(bench.size, "documented split size (no data here)")
    return Problems(None, "unknown: no data here and no documented size")


# --- runs and plans -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunEstimate:
    spec: RunSpec
    problems: Problems
    queries: int | None  # problems × repetitions × samples
    output_tokens: Tokens
    prompt_tokens: Tokens
    gpus: int  # tensor-parallel GPUs
    running: int | None = None  # sequences decoded at once
    gpu_seconds: float | None = None
    missing: str = ""  # why there is no projection

    @property
    def gpu_hours(self) -> float | None:
        return None if self.gpu_seconds is None else self.gpu_seconds / 3600


def options_per_problem(spec: RunSpec) -> int:
    """Options a log-likelihood run reads per problem: counted on the first problem of the local data,
    else assumed four (BoolQ has two: an overestimate there, said in the dry run's sources)."""
    bench = benchmarks.get(spec.benchmark)
    try:
        if bench.source.locate(spec.benchmark, spec.data_path).kind != "hub":
            first = bench.load(per_level=1, seed=spec.seed, subsets=spec.subsets, data=spec.data_path)[0]
            assert bench.choices is not None  # a log-likelihood run's benchmark has options (RunSpec checks it)
            return len(bench.choices(first).continuations)
    except (benchmarks.BenchmarkDataError, ValueError, ImportError, OSError, IndexError):
        pass
    return 4


def estimate_run(spec: RunSpec, roofline: Roofline, measured: dict | None = None) -> RunEstimate:
    """GPU-seconds of one run on ``roofline.gpu`` (see the module docstring for the model)."""
    measured = measured or {}
    probs = problems(spec)
    out, prompt = output_tokens(spec, measured), prompt_tokens(spec, probs, measured)
    tp = spec.server.tp_size
    per_query = spec.resolved_strategy.samples
    if spec.scoring == "loglikelihood":  # one prefill per option, nothing generated
        per_query, out = options_per_problem(spec), Tokens(0.0, "log-likelihood scoring: nothing generated", "scoring")
    queries = None if probs.count is None else probs.count * spec.repetitions * per_query
    est = RunEstimate(spec, probs, queries, out, prompt, tp)
    arch = architecture(spec.model)
    if not queries or arch is None:
        why = f"no architecture config for {spec.model}" if queries else f"{probs.source}: no problems"
        return replace(est, missing=why)
    try:
        wall_s, running = generation_s(
            arch,
            roofline,
            dtype_bytes=DTYPE_BYTES[spec.dtype],
            tp=tp,
            batch=spec.batch_size,
            queries=queries,
            prompt_tokens=prompt.per_query,
            output_tokens=out.per_query,
        )
    except ValueError as e:
        return replace(est, missing=str(e))
    return replace(est, running=running, gpu_seconds=tp * wall_s)


@dataclass(frozen=True)
class PlanEstimate:
    runs: list[RunEstimate]
    roofline: Roofline

    @property
    def gpu_hours(self) -> float:
        """Sum over the runs that have a projection."""
        return sum(r.gpu_hours for r in self.runs if r.gpu_hours is not None)

    @property
    def energy_upper_bound_kwh(self) -> float:
        """GPU-hours × TDP: no GPU draws more for long, most draw less."""
        return self.gpu_hours * self.roofline.gpu.tdp_w / 1000

    def token_sources(self, which: str = "output_tokens") -> str:
        kinds = [getattr(r, which).kind for r in self.runs]
        labels = {
            "measured": "measured in completed runs",
            "paper": "paper figures",
            "max_new_tokens": "max_new_tokens",
            "data": "question lengths in the local data",
            "assumed": f"{ASSUMED_PROMPT.source}",
            "spec": "input_tokens of the run spec",
            "scoring": "none for log-likelihood scoring",
        }
        return ", ".join(f"{labels[k]} for {kinds.count(k)} run(s)" for k in labels if k in kinds)

    def assumptions(self) -> str:
        """One line: GPU, efficiencies, where tokens and problem counts come from."""
        counted = sum(r.problems.source.startswith("counted") for r in self.runs)
        return (
            f"estimate assumes {self.roofline.describe()}; output tokens per query: "
            f"{self.token_sources()} (capped at max_new_tokens); prompt tokens: "
            f"{self.token_sources('prompt_tokens')}; problem counts: {counted} counted in local data, "
            f"{len(self.runs) - counted} from documented sizes or per_level; excludes model loading, "
            f"warm-up, idle baseline and grading"
        )


def estimate_plan(plan: Plan, roofline: Roofline | None = None) -> PlanEstimate:
    """Every run of ``plan`` (a :class:`ttclib.params.Plan`), measured tokens from its runs_dir."""
    roofline = roofline or Roofline(GPUS[DEFAULT_GPU])
    measured = measured_runs(plan.runs_dir)
    return PlanEstimate([estimate_run(s, roofline, measured) for s in plan.specs], roofline)
