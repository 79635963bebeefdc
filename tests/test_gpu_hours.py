"""GPU-hour projection (ttclib.gpu_hours, `ttc run --dry-run`): hand-computed cases, where the token
counts come from, and the paper's plan estimated offline."""

from __future__ import annotations

import doctest
import json
import re
import socket
from pathlib import Path

import pandas as pd
import pytest

from ttclib import cli, gpu_hours, models
from ttclib.gpu_hours import GPU, Architecture, Roofline
from ttclib.params import load_params
from ttclib.spec import RunSpec

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

# A toy GPU with round numbers and no efficiency losses: 1 GB/s, 1 TFLOPS, 1 GB.
TOY = Roofline(
    GPU("toy", memory_bandwidth_gb_s=1, memory_gb=1, peak_tflops=1, tdp_w=100),
    bandwidth_efficiency=1,
    compute_efficiency=1,
    memory_fraction=1,
)
# A Llama-style decoder small enough to count by hand (no attention biases, tied embeddings).
TOY_CONFIG = {
    "model_type": "llama",
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "intermediate_size": 128,
    "vocab_size": 1000,
    "tie_word_embeddings": True,
}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Projections never touch the network: any connection attempt fails the test."""

    def refuse(*a, **k):
        raise AssertionError("the projection tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    gpu_hours._count_local.cache_clear()


def test_docstring_examples():
    for module in (gpu_hours, models):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_parameter_count_by_hand_and_of_the_shipped_configs():
    # embeddings 1000 × 64 (tied); per layer: q, o 64 × 64 each, k, v 64 × 32 each, MLP 3 × 64 × 128,
    # two norms of 64; a final norm of 64
    per_layer = 2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128 + 2 * 64
    assert gpu_hours.parameter_count(TOY_CONFIG) == 1000 * 64 + 2 * per_layer + 64 == 138_048
    published = {"1.5b": 1.54, "7b": 7.62, "14b": 14.77, "32b": 32.76}  # Qwen2.5 model cards, billions
    for size, billions in published.items():
        arch = gpu_hours.architecture(f"random:qwen2.5-{size}")
        assert round(arch.parameters / 1e9, 2) == billions, size
    arch = gpu_hours.architecture("Qwen/Qwen2.5-32B-Instruct")
    assert (arch.layers, arch.kv_heads, arch.head_dim) == (64, 8, 128)
    assert arch.kv_bytes_per_token(2) == 2 * 64 * 8 * 128 * 2
    assert gpu_hours.architecture("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B") == gpu_hours.architecture(
        "Qwen/Qwen2.5-7B-Instruct"
    )
    assert gpu_hours.architecture("Qwen/Qwen2.5-3B-Instruct") is None  # no shipped config: no guess


def test_generation_time_by_hand():
    arch = Architecture(parameters=10**9, layers=10, kv_heads=2, head_dim=64)
    gpu = Roofline(
        GPU("g", memory_bandwidth_gb_s=1000, memory_gb=80, peak_tflops=100, tdp_w=400),
        bandwidth_efficiency=0.5,
        compute_efficiency=0.5,
        memory_fraction=0.9,
    )
    # 32 queries, 100 prompt + 200 output tokens, batch 16, bf16: average context 100 + 200 / 2 = 200
    kv = 2 * 10 * 2 * 64 * 2  # 5120 bytes per token
    step = (2e9 + 16 * 200 * kv) / 500e9  # weights + KV cache at 50% of 1000 GB/s
    decode = 32 * 200 / 16 * step  # 400 steps
    prefill = 32 * 100 * 2e9 / 50e12  # 2 FLOPs per parameter per prompt token
    seconds, running = gpu_hours.generation_s(
        arch, gpu, dtype_bytes=2, tp=1, batch=16, queries=32, prompt_tokens=100, output_tokens=200
    )
    assert running == 16 and seconds == pytest.approx(decode + prefill)
    assert seconds == pytest.approx(1.7411072)
    # tensor parallel over two GPUs: half the wall time, the same GPU-seconds
    half, _ = gpu_hours.generation_s(
        arch, gpu, dtype_bytes=2, tp=2, batch=16, queries=32, prompt_tokens=100, output_tokens=200
    )
    assert half == pytest.approx(seconds / 2)
    # compute-bound decode: 2 FLOPs per parameter per sequence outweigh the bytes at a large batch
    big = gpu_hours.decode_step_s(arch, gpu, dtype_bytes=2, batch=4096, context_tokens=1)
    assert big == pytest.approx(2e9 * 4096 / 50e12)
    # fewer queries than the batch: only those run at once
    assert (
        gpu_hours.generation_s(
            arch, gpu, dtype_bytes=2, tp=1, batch=16, queries=3, prompt_tokens=100, output_tokens=200
        )[1]
        == 3
    )


def test_kv_cache_capacity_caps_the_batch():
    arch = Architecture(parameters=10**9, layers=10, kv_heads=2, head_dim=64)
    gpu = Roofline(GPU("g", memory_bandwidth_gb_s=1000, memory_gb=3, peak_tflops=100, tdp_w=400), memory_fraction=1)
    # 3 GB - 2 GB of weights = 1 GB for KV; a sequence of 10,000 tokens holds 51.2 MB: 19 fit
    assert gpu_hours.kv_capacity(arch, gpu, dtype_bytes=2, context_tokens=10_000) == 19
    assert (
        gpu_hours.generation_s(
            arch, gpu, dtype_bytes=2, tp=1, batch=256, queries=1000, prompt_tokens=0, output_tokens=20_000
        )[1]
        == 19
    )
    with pytest.raises(ValueError, match="do not fit"):
        gpu_hours.generation_s(arch, gpu, dtype_bytes=4, tp=1, batch=1, queries=1, prompt_tokens=0, output_tokens=1)


def toy_model(tmp_path: Path) -> str:
    folder = tmp_path / "toy-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TOY_CONFIG))
    return str(folder)


def fake_run(
    runs_dir: Path,
    run_id: str,
    *,
    model: str,
    strategy: str = "base",
    benchmark: str = "arithmetic",
    max_new_tokens: int = 200,
    completion_tokens: list[int],
    prompt_tokens: int = 30,
) -> None:
    """A completed run as ttclib writes one, reduced to what the projection reads."""
    d = runs_dir / run_id
    d.mkdir(parents=True)
    (d / "run.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "n_completions": len(completion_tokens),
                "completion_tokens": sum(completion_tokens),
                "spec": {
                    "model": model,
                    "strategy": strategy,
                    "benchmark": benchmark,
                    "max_new_tokens": max_new_tokens,
                },
            }
        )
    )
    pd.DataFrame(
        {"prompt_tokens": [prompt_tokens] * len(completion_tokens), "completion_tokens": completion_tokens}
    ).to_parquet(d / "queries.parquet")


def test_run_estimate_by_hand_with_measured_tokens(tmp_path):
    model = toy_model(tmp_path)
    runs = tmp_path / "runs"
    fake_run(runs, "aaa", model=model, completion_tokens=[50, 150] * 5)  # mean 100, prompt 30
    spec = RunSpec(
        model=model,
        strategy="base",
        benchmark="arithmetic",
        per_level=4,
        repetitions=2,
        batch_size=8,
        max_new_tokens=200,
    )
    est = gpu_hours.estimate_run(spec, TOY, gpu_hours.measured_runs(runs))
    assert est.problems.count == 12 and est.problems.source.startswith("counted")  # 4 per level × 3 levels
    assert est.queries == 24 and est.running == 8
    assert (est.output_tokens.per_query, est.output_tokens.kind) == (100, "measured")
    assert (est.prompt_tokens.per_query, est.prompt_tokens.kind) == (30, "measured")
    # float32: 138,048 parameters × 4 bytes; KV 2 × 2 layers × 2 heads × 16 × 4 = 512 bytes per token;
    # context 30 + 100 / 2 = 80; 24 × 100 / 8 = 300 decode steps at 1 GB/s; prefill at 1 TFLOPS
    step = (138_048 * 4 + 8 * 80 * 512) / 1e9
    prefill = 24 * 30 * 2 * 138_048 / 1e12
    assert est.gpu_seconds == pytest.approx(300 * step + prefill)
    assert est.gpu_seconds == pytest.approx(0.26416039)
    assert est.gpu_hours == pytest.approx(est.gpu_seconds / 3600)


def test_measured_tokens_take_precedence_over_the_papers(tmp_path):
    model = "Qwen/Qwen2.5-7B-Instruct"
    spec = RunSpec(model=model, strategy="rt", benchmark="math500", max_new_tokens=32768)
    assert gpu_hours.output_tokens(spec, {}).per_query == 7845  # paper §4.1
    runs = tmp_path / "runs"
    fake_run(
        runs,
        "r1",
        model=model,
        strategy="rt",
        benchmark="math500",
        max_new_tokens=32768,
        completion_tokens=[3000, 5000],
    )
    fake_run(
        runs, "r2", model=model, strategy="rt", benchmark="math500", max_new_tokens=4096, completion_tokens=[4096, 4096]
    )
    fake_run(runs, "other", model=model, strategy="rt", benchmark="aime24", completion_tokens=[9])
    measured = gpu_hours.measured_runs(runs)
    tokens = gpu_hours.output_tokens(spec, measured)
    assert (tokens.per_query, tokens.kind) == (4000, "measured") and "measured" in tokens.source
    # no run at this max_new_tokens: every run of the configuration counts, capped at max_new_tokens
    short = spec.model_copy(update={"max_new_tokens": 3000})
    assert gpu_hours.output_tokens(short, measured).per_query == 3000
    # another model's runs do not count
    other = spec.model_copy(update={"model": "Qwen/Qwen2.5-14B-Instruct"})
    assert gpu_hours.output_tokens(other, measured).kind == "paper"
    # and the projection of a plan reads its runs_dir
    est = gpu_hours.estimate_run(spec, Roofline(gpu_hours.GPUS["a100-80gb"]), measured)
    assert est.output_tokens.per_query == 4000 and est.prompt_tokens.per_query == 30


@pytest.mark.parametrize(
    "strategy, benchmark, max_new_tokens, expected",
    [
        ("base", "math500", 32768, 200),  # §4.2: Base lengths cluster around 200
        ("mv", "math500", 32768, 200),  # per sample: MV = 5 Base-length samples
        ("rt", "math500", 32768, 7845),  # §4.1
        ("rt", "math500", 3277, 3277),  # capped at max_new_tokens
        ("rt", "livecodebench", 32768, 6588),  # §4.2
        ("base", "mmlu", 32768, 1),  # multiple choice: one token
        ("mv", "hellaswag", 32768, 1),
        ("base", "gsm8k", 32768, 200),  # common sense, but not multiple choice
        ("rt", "mmlu", 32768, 200),  # §4.1: RT cost 1.08× Base on common sense
        ("cot", "math500", 512, 512),  # no paper figure: max_new_tokens, an upper bound
    ],
)
def test_paper_figures_as_labelled_assumptions(strategy, benchmark, max_new_tokens, expected):
    model = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B" if strategy == "rt" else "Qwen/Qwen2.5-7B-Instruct"
    spec = RunSpec(model=model, strategy=strategy, benchmark=benchmark, max_new_tokens=max_new_tokens)
    tokens = gpu_hours.output_tokens(spec, {})
    assert tokens.per_query == expected
    assert ("paper §" in tokens.source) == (strategy != "cot") and tokens.source


def test_problem_counts_without_data(monkeypatch):
    monkeypatch.delenv("TTC_DATA_DIR", raising=False)
    spec = RunSpec(model="Qwen/Qwen2.5-7B-Instruct", strategy="base", benchmark="livecodebench", per_level=None)
    assert gpu_hours.problems(spec).count == 1055 and "documented" in gpu_hours.problems(spec).source
    spec = RunSpec(model="Qwen/Qwen2.5-7B-Instruct", strategy="base", benchmark="math500", per_level=7)
    assert gpu_hours.problems(spec).count == 35  # per_level × 5 levels
    spec = RunSpec(model="Qwen/Qwen2.5-7B-Instruct", strategy="base", benchmark="aime24", per_level=50)
    assert gpu_hours.problems(spec).count == 30  # never more than the split holds
    spec = RunSpec(model="Qwen/Qwen2.5-7B-Instruct", strategy="base", benchmark="humaneval", per_level=None)
    assert gpu_hours.problems(spec).count == 164 and gpu_hours.problems(spec).source.startswith("counted")


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data not present")
def test_problem_counts_from_local_data(monkeypatch):
    monkeypatch.setenv("TTC_DATA_DIR", str(SHARED_DATA))
    spec = RunSpec(model="Qwen/Qwen2.5-7B-Instruct", strategy="base", benchmark="livecodebench", per_level=None)
    assert gpu_hours.problems(spec).count == 342  # the v5+v6 release file, not the hub's 1055
    hard = spec.model_copy(update={"levels": ["hard"]})
    assert gpu_hours.problems(hard).count == 154


def test_dry_run_of_the_paper_prints_a_total_offline(capsys, monkeypatch):
    import datasets

    monkeypatch.delenv("TTC_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("data was downloaded"))
    assert cli.main(["run", str(ROOT / "params" / "paper.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("to run") == 144 and "data=hub" in out  # the run list is still there
    total = re.search(r"Estimated total: ([\d,.]+) GPU-hours on NVIDIA A100 80GB SXM for 144 of 144 runs", out)
    assert total and 100 < float(total.group(1).replace(",", "")) < 100_000
    assert "upper bound: GPU-hours × 400 W TDP" in out
    assert re.search(r"Assumptions: estimate assumes NVIDIA A100 80GB SXM: decode at 70% of 2039 GB/s", out)
    assert "paper figures for 144 run(s)" in out
    rows = [line for line in out.splitlines() if re.match(r"  [0-9a-f]{12}\s+[\d.,e+-]+\s+\d+\s+\d+\s+\d+\s", line)]
    assert len(rows) == 144 and all("paper §" in r for r in rows)


def test_dry_run_on_another_gpu_is_faster(capsys):
    totals = {}
    for gpu in ("a100-80gb", "h200"):
        assert (
            cli.main(["run", str(ROOT / "params" / "paper.yaml"), "--profile", "batch", "--dry-run", "--gpu", gpu]) == 0
        )
        out = capsys.readouterr().out
        totals[gpu] = float(re.search(r"Estimated total: ([\d,.]+) GPU-hours", out).group(1).replace(",", ""))
    assert 0 < totals["h200"] < totals["a100-80gb"]


def test_batch_profile_saturates_where_the_kv_cache_is_full():
    plan = load_params(ROOT / "params" / "paper.yaml", "batch")
    est = gpu_hours.estimate_plan(plan)
    rt_lcb = {r.spec.batch_size: r for r in est.runs if r.spec.strategy == "rt" and r.spec.benchmark == "livecodebench"}
    assert rt_lcb[256].running < 256 and rt_lcb[256].running == rt_lcb[128].running
    assert rt_lcb[1].gpu_hours > 10 * rt_lcb[16].gpu_hours
    assert all(r.gpus == 2 for r in est.runs)


def test_help_explains_the_estimate(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for words in (
        "ESTIMATES the GPU-hours",
        "roofline",
        "KV cache",
        "tp_size",
        "Base ~200",
        "RT ~7845",
        "GPU-hours x TDP",
        "--gpu",
        "a100-80gb",
    ):
        assert words in out, words


# --- the projection never generates or reads without bound, and never fails on odd data -------


def test_generated_problems_are_counted_not_generated(monkeypatch):
    from ttclib import benchmarks

    asked = []
    load = benchmarks.Benchmark.load
    monkeypatch.setattr(
        benchmarks.Benchmark, "load", lambda self, **kw: asked.append(kw["per_level"]) or load(self, **kw)
    )
    spec = RunSpec(
        model="random:tiny-qwen2", strategy="base", benchmark="arithmetic", per_level=100_000, levels=["easy", "hard"]
    )
    probs = gpu_hours.problems(spec)
    assert probs.count == 200_000 and probs.source.startswith("counted in the generated data")
    assert asked == [gpu_hours.GENERATED_SAMPLE]  # a sample, for the question lengths only
    # easy: "What is a + b?" with one-digit terms, 14 characters; hard: "What is ab + cd - ef?", 21
    assert probs.question_chars == pytest.approx((14 + 21) / 2)


def test_another_benchmarks_data_gives_no_count_and_no_traceback(tmp_path):
    data = tmp_path / "gsm8k.jsonl"
    data.write_text('{"question": "1 + 1?", "answer": "1+1=<<1+1=2>>2\\n#### 2"}\n')
    spec = RunSpec(model="Qwen/Qwen2.5-7B-Instruct", strategy="base", benchmark="math500", data=str(data), per_level=2)
    assert gpu_hours.problems(spec).count == 10 and "no data here" in gpu_hours.problems(spec).source


def test_compressed_data_over_the_limit_is_not_read(tmp_path, monkeypatch):
    import gzip

    monkeypatch.setattr(gpu_hours, "COUNT_BYTES", 1 << 20)
    record = '{"problem": "1+1?", "answer": "2", "level": "Level 1"}\n'
    small, bomb = tmp_path / "small.jsonl.gz", tmp_path / "bomb.jsonl.gz"
    small.write_bytes(gzip.compress(record.encode() * 3))
    bomb.write_bytes(gzip.compress(record.encode() * 30_000))  # 1.6 MB of records in a 10 KB file
    counted = RunSpec(
        model="Qwen/Qwen2.5-7B-Instruct", strategy="base", benchmark="math500", data=str(small), per_level=None
    )
    assert gpu_hours.problems(counted).count == 3
    too_big = counted.model_copy(update={"data": str(bomb)})
    assert gpu_hours.problems(too_big).count == 500 and "documented" in gpu_hours.problems(too_big).source


def test_a_model_folder_with_an_unusable_config_has_no_estimate(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    assert gpu_hours.architecture(str(folder)) is None
    (folder / "config.json").write_text(json.dumps({**TOY_CONFIG, "num_attention_heads": 0}))
    assert gpu_hours.architecture(str(folder)) is None
    spec = RunSpec(model=str(folder), strategy="base", benchmark="arithmetic", per_level=1)
    assert gpu_hours.estimate_run(spec, TOY).missing == f"no architecture config for {folder}"


def test_runs_with_a_smaller_cap_are_no_evidence_of_answer_length(tmp_path):
    """A 1-token run of the same configuration says nothing about 100-token answers: it is not used (it
    had set 08's estimate to 6 tokens per answer); with no other run, the paper's figure is."""
    model = "Qwen/Qwen2.5-7B-Instruct"
    runs = tmp_path / "runs"
    fake_run(runs, "one", model=model, strategy="base", benchmark="math500", max_new_tokens=1, completion_tokens=[1, 1])
    spec = RunSpec(model=model, strategy="base", benchmark="math500", max_new_tokens=100)
    tokens = gpu_hours.output_tokens(spec, gpu_hours.measured_runs(runs))
    assert tokens.kind == "paper" and tokens.per_query == 100  # the paper's Base length, capped


def test_per_level_caps_a_benchmark_without_levels_when_its_data_is_absent():
    spec = RunSpec(model="Qwen/Qwen2.5-7B-Instruct", strategy="base", benchmark="boolq", per_level=1000)
    counted = gpu_hours._count_without_data(spec)
    assert counted.count == 1000 and "per_level" in counted.source  # not BoolQ's documented 3,270
