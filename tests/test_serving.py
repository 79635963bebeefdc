"""TransformersBackend on a random-weight Qwen2 architecture (real code path, tiny size)."""

from __future__ import annotations

import time

import pytest

from ttclib import hardware, models
from ttclib.serving import Request, SamplingParams, TransformersBackend, make_backend

TINY = "random:tiny-qwen2"

PROMPTS = ["What is 2 + 2?", "A much longer prompt about the energy cost of reasoning in language models.", "Hi"]


def test_token_counts_match_the_tokenizer(tiny_backend):
    reqs = [Request(f"r{i}", p, SamplingParams(max_new_tokens=6, ignore_eos=True)) for i, p in enumerate(PROMPTS)]
    out = tiny_backend.generate(reqs)
    assert [c.request_id for c in out] == ["r0", "r1", "r2"]
    for c, p in zip(out, PROMPTS, strict=True):
        assert c.prompt_tokens == len(tiny_backend.tokenizer(p).input_ids)
        assert c.completion_tokens == 6 and c.finish_reason == "length"
        assert c.t_end >= c.t_start > 0


def test_batched_greedy_equals_one_at_a_time(tiny_backend):
    sp = SamplingParams(max_new_tokens=8, ignore_eos=True)
    reqs = [Request(f"r{i}", p, sp) for i, p in enumerate(PROMPTS)]
    batched = [c.text for c in tiny_backend.generate(reqs)]
    single = [tiny_backend.generate([r])[0].text for r in reqs]
    assert batched == single


def test_samples_are_independent_sequences(tiny_backend):
    sp = SamplingParams(max_new_tokens=5, temperature=1.0, n=3, seed=1, ignore_eos=True)
    out = tiny_backend.generate([Request("a", "Hello", sp), Request("b", "World", sp)])
    assert [(c.request_id, c.sample) for c in out] == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]
    assert len({c.text for c in out if c.request_id == "a"}) > 1


def test_stop_string_and_eos_accounting(tiny_backend):
    tok = tiny_backend.tokenizer
    body = tok("4. Then more text").input_ids
    pad, eos = tok.pad_token_id, next(iter(tiny_backend._eos))
    r = Request("r", "x", SamplingParams(max_new_tokens=len(body) + 3, stop=(".",)))
    # stop string: generation halted after the token holding '.', then padding
    c = tiny_backend._completion(r, 0, body[:2] + [pad] * (len(body) + 1), 3, r.sampling, 0.0, 1.0)
    assert c.text == "4" and c.finish_reason == "stop" and c.completion_tokens == 2
    # EOS: counted as a generated token
    r2 = Request("r", "x", SamplingParams(max_new_tokens=len(body) + 3))
    c = tiny_backend._completion(r2, 0, body + [eos, pad, pad], 3, r2.sampling, 0.0, 1.0)
    assert c.finish_reason == "stop" and c.completion_tokens == len(body) + 1
    # no EOS: cut by length
    c = tiny_backend._completion(r2, 0, body, 3, r2.sampling, 0.0, 1.0)
    assert c.finish_reason == "length" and c.completion_tokens == len(body)


def test_describe_and_unknown_backend(tiny_backend):
    d = tiny_backend.describe()
    assert d["backend"] == "transformers" and d["model_kind"] == "random" and 1e6 < d["parameters"] < 1e7
    with pytest.raises(ValueError, match="unknown backend"):
        make_backend("vllm", "random:tiny-qwen2")


def test_model_resolution_errors():
    with pytest.raises(ValueError, match="shipped configs"):
        models.resolve("random:nope")
    assert models.resolve("random:qwen2.5-32b").kind == "random"
    assert models.resolve("smollm2-135m-instruct").kind == "embedded"


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, chat", [("smollm2-135m-instruct", True), ("gemma3-270m", False), ("qwen2.5-coder-0.5b-instruct", True)]
)
def test_embedded_models_answer_arithmetic(name, chat):
    """The embedded GGUF models convert, load, and answer 1-digit additions through the real path."""
    from ttclib import benchmarks, strategies
    from ttclib.serving import render_prompt

    b = TransformersBackend(name, batch_size=8, dtype="auto" if name.startswith("qwen") else "float32")
    assert b.chat is chat
    bench, strat = benchmarks.get("arithmetic"), strategies.get("base")
    problems = bench.load(levels=["easy"], per_level=8, seed=0)
    prompts = [
        render_prompt(b.tokenizer, strat.messages(p, bench.answer_format), True)
        if chat
        else strat.base_prompt(p, bench.answer_format)
        for p in problems
    ]
    stop = () if chat else strat.base_stop
    out = b.generate(
        [
            Request(p.id, pr, SamplingParams(max_new_tokens=24, stop=stop))
            for p, pr in zip(problems, prompts, strict=True)
        ]
    )
    correct = sum(bench.grade(c.text, p).correct for c, p in zip(out, problems, strict=True))
    assert correct >= 2, [c.text for c in out]
    assert (models.hf_directory(name) / "config.json").exists()
    d = b.describe()  # what run.json records of the weights
    if models.EMBEDDED[name].parts:
        assert d["gguf_name"] == "Qwen2.5 Coder 0.5B Instruct AWQ" and d["gguf_sha256"].startswith("1d961463")
        assert (
            d["dtype"] == ("bfloat16" if hardware.bf16_support("cpu") else "float32") and d["dtype_requested"] == "auto"
        )


def test_static_batch_end_times_follow_each_sequences_last_token(tiny_backend):
    """generate() pads a finished sequence until the batch ends; its end time is its last token's
    (here without step times: equal steps, the fallback), so attribution charges the padded steps to the
    sequences still running."""
    from ttclib.serving import Request, SamplingParams

    eos = next(iter(tiny_backend._eos))
    r, p = Request("q", "x"), SamplingParams(max_new_tokens=10)
    ids = [5, 6, 7, 8, eos] + [tiny_backend.tokenizer.pad_token_id] * 5  # 5 tokens of 10 steps
    short = tiny_backend._completion(r, 0, ids, 3, p, t_start=100.0, t_end=110.0)
    full = tiny_backend._completion(r, 1, [5] * 10, 3, p, t_start=100.0, t_end=110.0)
    assert (short.completion_tokens, short.t_start, short.t_end) == (5, 100.0, 105.0)
    assert (full.completion_tokens, full.finish_reason, full.t_end) == (10, "length", 110.0)
    import pandas as pd

    from ttclib.energy import Measurement, attribute_windows

    shares, _ = attribute_windows(
        [Measurement("nvml", "energy_counter", 100.0, 10.0, {"gpu0": 150.0})],
        pd.DataFrame({"t": [], "power_w": []}),
        [(short.t_start, short.t_end), (full.t_start, full.t_end)],
    )
    assert shares.tolist() == [37.5, 112.5]  # 5 s shared by two, then 5 s by the long one alone


def test_a_slow_prefill_stays_with_the_rows_first_token():
    """The case that equal steps got wrong (run 358fce24e40c charged 98 J of a 156 J batch to one
    query): a 9 s prefill, then nine 0.1 s steps. Row A stops at token 0, row B runs all 10 steps.
    Hand-computed at 100 W: [0, 9] s is shared by both (450 J each), [9, 9.9] s is B's alone (90 J)."""
    import pandas as pd

    from ttclib.energy import Measurement, attribute_windows
    from ttclib.serving import token_time

    steps = [9.0 + 0.1 * k for k in range(10)]
    ends = [token_time(1, 10, 0.0, 9.9, steps), token_time(10, 10, 0.0, 9.9, steps)]
    assert ends == [9.0, steps[-1]]
    shares, _ = attribute_windows(
        [Measurement("nvml", "energy_counter", 0.0, 9.9, {"gpu0": 990.0})],
        pd.DataFrame({"t": [], "power_w": []}),
        [(0.0, e) for e in ends],
    )
    assert shares.round(6).tolist() == [450.0, 540.0]
    equal_steps = [token_time(1, 10, 0.0, 9.9), token_time(10, 10, 0.0, 9.9)]  # the fallback: A ends at 0.99 s
    shares, _ = attribute_windows(
        [Measurement("nvml", "energy_counter", 0.0, 9.9, {"gpu0": 990.0})],
        pd.DataFrame({"t": [], "power_w": []}),
        [(0.0, e) for e in equal_steps],
    )
    assert shares[0] < 50


def test_generate_records_a_time_per_step(tiny_backend, monkeypatch):
    """On the real model with its prefill slowed by 0.6 s: every row ends after the prefill, and a
    row's end is the step clock's time of its last token (not its share of the batch's span)."""
    from ttclib.serving import Request, SamplingParams, StepClock

    model, clocks = tiny_backend.model, []
    forward = model.forward

    def slow_prefill(*a, **kw):
        ids = kw.get("input_ids", a[0] if a else None)
        if ids is not None and ids.shape[1] > 1:
            time.sleep(0.6)
        return forward(*a, **kw)

    class Spy(StepClock):
        def __init__(self):
            super().__init__()
            clocks.append(self)

    monkeypatch.setattr(model, "forward", slow_prefill)
    monkeypatch.setattr("ttclib.serving.StepClock", Spy)
    p = SamplingParams(max_new_tokens=8)
    out = tiny_backend._batch([(Request("a", "1+1="), 0), (Request("b", "2+2="), 0)], p, 0)
    (clock,) = clocks
    assert len(clock.times) == max(c.completion_tokens for c in out)
    for c in out:
        assert c.t_end >= c.t_start + 0.6
        assert c.t_end == clock.times[c.completion_tokens - 1]


def test_dtype_auto_and_threads_are_chosen_and_recorded(monkeypatch):
    """dtype auto is bf16 exactly where the CPU has bf16 instructions; the thread count is the usable
    CPUs unless a spec sets it; run.json (describe) records both and where they came from."""
    import torch

    from ttclib import hardware
    from ttclib.spec import RunSpec

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
        d = TransformersBackend(TINY, dtype="auto").describe()
        assert (d["dtype"], d["dtype_requested"], d["bf16_native"]) == ("bfloat16", "auto", "avx512_bf16")
        assert (d["threads"], d["threads_source"]) == (hardware.usable_cpus(), "usable CPUs")
        monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2"})  # emulated bf16 is slower than fp32
        d = TransformersBackend(TINY, dtype="auto", threads=1).describe()
        assert (d["dtype"], d["bf16_native"], d["threads"], d["threads_source"]) == ("float32", None, 1, "params")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    spec = RunSpec(model=TINY, strategy="base")
    assert spec.model_copy(update={"threads": None}).run_id == spec.run_id  # the default keeps earlier ids
    assert RunSpec(model=TINY, strategy="base", threads=1).run_id != spec.run_id
    assert RunSpec(model=TINY, strategy="base", dtype="auto").run_id != spec.run_id


def test_the_stop_string_criterion_is_built_once(tiny_backend, monkeypatch):
    """Building generate()'s stop-string criterion walks the whole vocabulary (0.4 s for a 150k-token
    one); built inside generate() on every batch it was timed as prefill. It is built once per stop set."""
    from transformers.generation import stopping_criteria as sc

    built, init = [], sc.StopStringCriteria.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(sc.StopStringCriteria, "__init__", counting)
    stop = ("\n\nOnce-only stop:",)  # a stop set no other test uses
    for i in range(3):
        tiny_backend.generate([Request(f"s{i}", "Question: 2 + 2?", SamplingParams(max_new_tokens=3, stop=stop))])
    assert len(built) == 1
