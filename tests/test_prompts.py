"""Prompts of exactly N tokens (run spec ``input_tokens``): exact as the engine counts them, on real
prompts and a real chat template, including cuts where decode → encode merges tokens."""

from __future__ import annotations

import dataclasses

import pytest

from ttclib import benchmarks, models, prompts, runner, serving, strategies
from ttclib.metrics import load_runs
from ttclib.spec import RunSpec

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def tokenizer():
    return serving._load_tokenizer(MODEL, models.resolve(MODEL))


def _render(tokenizer, problem, strategy="base"):
    st, bench = strategies.get(strategy), benchmarks.get(problem.benchmark)
    return lambda q: serving.render_prompt(
        tokenizer, st.messages(dataclasses.replace(problem, question=q), bench.answer_format, 1), True
    )


@pytest.mark.parametrize("n", [48, 64, 300, 1000])
def test_every_mtbench_prompt_is_exactly_n_tokens(tokenizer, n):
    # At n = 64 and 300 some plain cuts jump over n (62 -> 65): the shifted start must still find one.
    for p in benchmarks.get("mtbench").load(per_level=None):
        text = prompts.fit_question(p.question, _render(tokenizer, p), tokenizer, n)
        assert prompts.count(tokenizer, text) == n, p.id


def test_short_questions_are_repeated_long_ones_cut(tokenizer):
    p = benchmarks.get("mtbench").load(per_level=None)[0]
    long = prompts.fit_question(p.question, _render(tokenizer, p), tokenizer, 1000)
    assert long.count(p.question.strip()[:60]) >= 2  # repeated whole, then cut
    short = prompts.fit_question(p.question, _render(tokenizer, p), tokenizer, 48)
    assert p.question.strip()[:20] in short and p.question.strip() not in short
    assert short == prompts.fit_question(p.question, _render(tokenizer, p), tokenizer, 48)  # deterministic


def test_a_length_below_the_template_is_refused_with_the_template_size(tokenizer):
    p = benchmarks.get("mtbench").load(per_level=None)[0]
    overhead = prompts.count(tokenizer, _render(tokenizer, p)(""))
    with pytest.raises(prompts.PromptLengthError, match=rf"input_tokens 20 leaves no room .* has {overhead} tokens"):
        prompts.fit_question(p.question, _render(tokenizer, p), tokenizer, 20)


def test_input_tokens_is_part_of_the_run_id_only_when_set():
    base = dict(model="random:tiny-qwen2", strategy="base", benchmark="mtbench", per_level=1)
    plain = RunSpec(**base)
    assert RunSpec(**base, input_tokens=None).run_id == plain.run_id
    assert len({plain.run_id, RunSpec(**base, input_tokens=64).run_id, RunSpec(**base, input_tokens=65).run_id}) == 3
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        RunSpec(**base, input_tokens=0)


@pytest.mark.heavy
def test_a_run_measures_prompts_of_exactly_n_tokens(tmp_path):
    spec = RunSpec(
        model=MODEL,
        strategy="base",
        benchmark="mtbench",
        per_level=1,
        input_tokens=96,
        max_new_tokens=1,
        batch_size=1,
        backend="transformers",
        idle_s=0.1,
        warmup=False,
    )
    results = load_runs([runner.execute(spec, tmp_path, progress=False)]).results
    assert len(results) == 8 and (results.prompt_tokens == 96).all()
    assert (results.completion_tokens == 1).all()
