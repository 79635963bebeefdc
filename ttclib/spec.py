"""The run spec: everything that determines a run's results, and the run id hashed from it.

>>> from ttclib.spec import RunSpec
>>> RunSpec(model="random:tiny-qwen2", strategy="base", benchmark="arithmetic").run_id  # doctest: +ELLIPSIS
'...'
>>> try:
...     RunSpec(model="random:tiny-qwen2", strategy="base", backend="vllm")
... except ValueError as e:
...     print(e.errors()[0]["msg"])
Input should be 'auto', 'transformers' or 'sglang'

Numbers are finite and bounded (:data:`LIMITS`): far above what the paper's study asks (32768
new tokens, 10 repetitions, batches up to 256) and the models' contexts (131072 tokens), so that
a value beyond them is a typo found before anything runs, not hours into a run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from . import benchmarks, models, serving, strategies
from .server import ServerOptions

# 7: transformers rows end at their own last step's timestamp (per-step clock);
# 6: sampling seeds from (run, repetition, query, sample);
# 5: answers extracted and code judged anew (labelled corpus, unforgeable sandbox verdicts);
# 4: per-query energy over all windows
SPEC_VERSION = 7

LIMITS = {
    "per_level": 100_000,
    "max_new_tokens": 131_072,
    "budget": 131_072,
    "batch_size": 4096,
    "samples": 1024,
    "repetitions": 100,
    "threads": 1024,
    "clock_mhz": 10_000,
    "idle_s": 3600,
    "sample_interval_s": 60,
    "seed": 2**32 - 1,
}
DEVICE = re.compile(r"auto|cpu|cuda(:\d{1,4})?")


def _no_control_characters(value: str) -> str:
    if any(ord(c) < 32 for c in value):
        raise PydanticCustomError(
            "string_pattern_mismatch", "Input should have no control characters (NUL, newline, ...)"
        )
    return value


# A path or name in a params file: no NUL byte (no file system takes one) or other control character.
PathStr = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_no_control_characters)]


def _known_meter() -> tuple[str, ...]:
    """The meter names a spec accepts: ``auto`` and every meter :mod:`ttclib.energy` registers."""
    from .energy import METERS

    return ("auto", *sorted(METERS, key=lambda name: METERS[name].priority))


def _one_of(names: Callable[[], tuple[str, ...]]):
    """A string field whose choices come from a registry, read when validating (and in the JSON schema)."""

    def check(value: str) -> str:
        if value not in names():
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": _either(names())})
        return value

    return Annotated[str, AfterValidator(check), Field(json_schema_extra=lambda s: s.update(enum=list(names())))]


if TYPE_CHECKING:  # to a type checker, a name checked against a registry is a str
    BackendName = str
    MeterName = str
else:
    BackendName = _one_of(serving.backend_names)
    MeterName = _one_of(_known_meter)


def _either(choices: tuple[str, ...]) -> str:
    """As pydantic words a Literal's choices: 'a', 'b' or 'c'."""
    quoted = [repr(c) for c in choices]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]


class RunSpec(BaseModel):
    """Everything that determines a run's results. Changing any field changes the run id."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    model: PathStr = Field(description="embedded name, random:<config>, HF directory, .gguf file or hub id")
    strategy: str = Field(description="base | mv | rt | cot")
    benchmark: str = "arithmetic"
    data: PathStr | None = Field(
        None,
        description="benchmark data file or directory (relative to the params file); "
        "default: packaged/generated data, $TTC_DATA_DIR, else the HF hub",
    )
    levels: list[str] | None = Field(None, description="difficulty levels to include (default all)")
    subsets: list[str] | None = Field(None, description="subsets to include, e.g. MMLU categories (default all)")
    per_level: int | None = Field(
        16,
        ge=1,
        le=LIMITS["per_level"],
        description="problems drawn per difficulty level (per subset for benchmarks without levels); null = all",
    )
    backend: BackendName = Field(
        "auto", description="sglang | transformers | auto (SGLang when installed and a CUDA GPU is visible)"
    )
    server: ServerOptions = Field(default_factory=ServerOptions, description="SGLang launch/attach settings")
    max_new_tokens: int = Field(128, ge=1, le=LIMITS["max_new_tokens"])
    budget: int | None = Field(
        None,
        ge=1,
        le=LIMITS["budget"],
        description="token budget a CoT prompt states (default max_new_tokens); "
        "fix it to sweep max_new_tokens under one prompt",
    )
    input_tokens: int | None = Field(
        None,
        ge=1,
        le=LIMITS["max_new_tokens"],
        description="make every prompt exactly this many tokens (chat template "
        "included): the question cut, or repeated then cut "
        "(ttclib.prompts); default: the prompt as it is",
    )
    batch_size: int = Field(16, ge=1, le=LIMITS["batch_size"])
    samples: int | None = Field(
        None, ge=1, le=LIMITS["samples"], description="override the strategy's samples per query"
    )
    temperature: float | None = Field(None, ge=0, description="override the strategy's temperature")
    top_p: float | None = Field(None, gt=0, le=1, description="override the strategy's top-p")
    seed: int = Field(0, ge=0, le=LIMITS["seed"])
    repetitions: int = Field(1, ge=1, le=LIMITS["repetitions"], description="measured passes over the benchmark")
    ignore_eos: bool = Field(False, description="generate exactly max_new_tokens (hardware-only runs)")
    scoring: Literal["generate", "loglikelihood"] = Field(
        "generate",
        description="generate: the model writes its answer, which is extracted and scored; loglikelihood: "
        "no generation, each option's summed token log-probability after the question, the "
        "highest is the answer (Maliakel et al. [002]'s BoolQ and HellaSwag; benchmarks with choices)",
    )
    sm_clock_mhz: int | None = Field(
        None,
        ge=1,
        le=LIMITS["clock_mhz"],
        description="lock the SM clock of the run's GPUs at this frequency, snapped to "
        "the nearest supported one (ttclib.energy.clocks; needs root or "
        "CAP_SYS_ADMIN); default: the GPU's own clock management",
    )
    mem_clock_mhz: int | None = Field(
        None, ge=1, le=LIMITS["clock_mhz"], description="lock the memory clock too (default: left to the GPU)"
    )
    meter: MeterName = "auto"
    device: str = Field("auto", description="cpu | cuda | cuda:N | auto (cuda when a GPU is visible)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "float32",
        description="auto = bfloat16 where the device computes it natively (CPU: AMX or AVX512-BF16; "
        "CUDA), else float32; run.json records what ran",
    )
    threads: int | None = Field(
        None,
        ge=1,
        le=LIMITS["threads"],
        description="CPU threads of the transformers backend (default: the CPUs this "
        "process may use); recorded in run.json",
    )
    idle_s: float = Field(5.0, ge=0, le=LIMITS["idle_s"], description="idle baseline window, seconds, model loaded")
    sample_interval_s: float | None = Field(
        None,
        gt=0,
        le=LIMITS["sample_interval_s"],
        description="power sampler period, seconds (default: NVML: the energy "
        "counter's update period, 20-100 ms; other meters: 0.1)",
    )
    warmup: Literal[True, False, "full"] = Field(
        True,
        description="unmeasured generation before the idle baseline: true, one 4-token request (the first "
        "kernels); full, the run's first batch as it will be measured (its batch size, prompts and output "
        "length), so the first repetition does not pay for shapes the GPU meets for the first time; false, none",
    )

    _base_dir: Path | None = PrivateAttr(None)  # the params file's folder: relative `data` paths start there

    @field_validator("levels", mode="before")
    @classmethod
    def _levels_as_strings(cls, v):
        return [str(x) if isinstance(x, (int, float)) else x for x in v] if isinstance(v, list) else v

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

    @field_validator("device")
    @classmethod
    def _known_device(cls, v: str) -> str:
        if not DEVICE.fullmatch(v):
            raise PydanticCustomError("literal_error", "Input should be 'auto', 'cpu', 'cuda' or 'cuda:N' (N >= 0)")
        return v

    @field_validator("data", "levels", "subsets", "per_level")
    @classmethod
    def _fits_benchmark(cls, v, info: ValidationInfo):
        """What these fields allow depends on the benchmark (declared before them). A partial spec
        (``context={"partial": True}``: a params file's ``defaults``, whose benchmark may come from the grid)
        skips this."""
        if "benchmark" not in info.data or (info.context or {}).get("partial"):
            return v
        bench, name = benchmarks.get(info.data["benchmark"]), info.data["benchmark"]
        if info.field_name == "levels":
            bad = sorted(set(v or []) - set(bench.levels))
            if bad:
                raise ValueError(f"levels {bad} not in benchmark {name!r} (levels: {list(bench.levels)})")
        elif bench.source.generate is not None and (v is None) == (info.field_name == "per_level"):
            why = "needs a number per level" if info.field_name == "per_level" else f"takes no {info.field_name}"
            raise ValueError(f"benchmark {name!r} is generated: it {why}")
        return v

    @model_validator(mode="after")
    def _loglikelihood_needs_choices(self):
        """Log-likelihood scoring reads options the benchmark defines, once per query, as they are."""
        if self.scoring != "loglikelihood":
            return self
        if benchmarks.get(self.benchmark).choices is None:
            have = sorted(n for n, b in benchmarks.REGISTRY.items() if b.choices is not None)
            raise ValueError(
                f"scoring loglikelihood: benchmark {self.benchmark!r} defines no options to score "
                f"(benchmarks that do: {', '.join(have)})"
            )
        if self.resolved_strategy.samples != 1 or self.input_tokens is not None:
            raise ValueError(
                "scoring loglikelihood reads each option once, as it is: it takes one sample and no input_tokens"
            )
        return self

    @model_validator(mode="after")
    def _clocks_on_a_measured_gpu(self):
        """Clocks are locked on the GPUs a run measures: a CPU run measures none unless it asks for NVML."""
        if self.mem_clock_mhz is not None and self.sm_clock_mhz is None:
            raise ValueError("mem_clock_mhz is locked together with sm_clock_mhz: set both")
        if self.sm_clock_mhz is not None and self.device == "cpu" and self.meter != "nvml":
            raise ValueError(
                f"sm_clock_mhz {self.sm_clock_mhz}: clocks are locked on the GPUs a run measures, and a "
                f"run on device cpu with meter {self.meter!r} measures none (device: cuda, or meter: nvml)"
            )
        return self

    @property
    def run_id(self) -> str:
        return self.run_id_at(SPEC_VERSION)

    def run_id_at(self, version: int) -> str:
        """The id this spec had under spec version ``version`` (same prompts and answer handling)."""
        # Prompts and answer handling are part of what is measured: changing them changes the id.
        bench = benchmarks.get(self.benchmark)
        strategy = dataclasses.asdict(self.resolved_strategy)
        if strategy["aggregator"] == "majority" or (strategy["aggregator"] == "first" and strategy["samples"] == 1):
            del strategy["aggregator"]  # added later, when every strategy voted: these keep earlier ids
        method: dict[str, Any] = {
            "strategy": strategy,
            "benchmark": [
                bench.description,
                bench.answer_format,
                bench.extract.__name__,
                bench.score.__name__,
                bench.source.hub and str(bench.source.hub),
            ],
        }
        spec = self.model_dump(exclude={"server": set(ServerOptions.NOT_MEASURED)})
        for later in ("threads", "input_tokens", "sm_clock_mhz", "mem_clock_mhz"):
            if spec[later] is None:
                del spec[later]  # added later: the default keeps earlier ids
        if spec["scoring"] == "generate":
            del spec["scoring"]  # added later: the default keeps earlier ids
        else:  # the options' wording is what is measured
            assert bench.choices is not None  # _loglikelihood_needs_choices checked it
            method["benchmark"].append(bench.choices.__name__)
        if spec["budget"] in (None, self.max_new_tokens) or "{budget}" not in method["strategy"]["instruction"]:
            del spec["budget"]  # the default prompt: the same run as without the field
        blob = json.dumps({"v": version, **spec, **method}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def resolved_strategy(self) -> strategies.Strategy:
        return strategies.get(self.strategy).with_overrides(self.samples, self.temperature, self.top_p)

    @property
    def data_path(self) -> Path | None:
        if self.data is None:
            return None
        path = models.local_path(self.data)
        return path if path.is_absolute() or self._base_dir is None else (self._base_dir / path).resolve()

    def with_base_dir(self, base: Path) -> RunSpec:
        self._base_dir = Path(base)
        return self
