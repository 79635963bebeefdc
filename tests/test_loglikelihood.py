"""Log-likelihood scoring (Maliakel et al. [002]'s BoolQ and HellaSwag; lm-evaluation-harness's ``loglikelihood``):
the options as the benchmarks define them, the summed log-probability against a direct computation, and a
run that scores by it end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ttclib import benchmarks
from ttclib.runner import execute
from ttclib.serving import Request, SamplingParams
from ttclib.spec import RunSpec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LL = dict(
    model="random:tiny-qwen2",
    strategy="base",
    benchmark="mmlu",
    scoring="loglikelihood",
    per_level=1,
    subsets=["Math", "Health", "Humanities"],
    batch_size=4,
    backend="transformers",
    idle_s=0.1,
    warmup=False,
)


def _direct(backend, context: str, continuation: str) -> float:
    """log p(continuation | context) from one unpadded forward, token by token."""
    whole = backend.tokenizer(context + continuation).input_ids
    n = len(backend.tokenizer(context).input_ids)
    with torch.inference_mode():
        logits = backend.model(input_ids=torch.tensor([whole])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    return sum(float(logp[i - 1, whole[i]]) for i in range(n, len(whole)))


def test_summed_logprob_equals_a_direct_computation_despite_padding(tiny_backend):
    """Contexts of different lengths in one batch (right padding), continuations of one and several
    tokens: every sum equals the unpadded computation."""
    pairs = [
        ("The capital of France is", " Paris"),
        ("Q: 2 + 2 =\nA:", " 4"),
        ("A long context " * 12 + "and so the answer is", " yes, certainly it is"),
        ("Hi", " there"),
    ]
    reqs = [Request(f"r{i}", c, SamplingParams(max_new_tokens=1), continuation=x) for i, (c, x) in enumerate(pairs)]
    got = {c.request_id: c for c in tiny_backend.generate(reqs)}
    for i, (context, continuation) in enumerate(pairs):
        c = got[f"r{i}"]
        assert c.logprob == pytest.approx(_direct(tiny_backend, context, continuation), abs=1e-3)
        assert c.completion_tokens == 0 and c.finish_reason == "loglikelihood" and c.t_first_token == c.t_end
        assert c.prompt_tokens == len(tiny_backend.tokenizer(context + continuation).input_ids)


def test_mmlu_options_as_lm_evaluation_harness_asks_them():
    p = benchmarks.get("mmlu").load(per_level=1, subsets=["Math"], seed=0)[0]
    ch = benchmarks.get("mmlu").choices(p)
    assert ch.context.startswith("The following are multiple choice questions (with answers) about ")
    assert ch.context.endswith("\nD. " + str(p.meta["options"][3]).strip() + "\nAnswer:")
    assert ch.continuations == (" A", " B", " C", " D") and ch.answers == tuple("ABCD")
    assert benchmarks.get("mmlu").score(ch.answers["ABCD".index(p.answer)], p).correct


@pytest.mark.skipif(
    not (SHARED / "boolq").is_dir() or not (SHARED / "hellaswag").is_dir(),
    reason="../shared/data/{boolq,hellaswag} not present",
)
def test_boolq_and_hellaswag_options_from_the_real_files():
    b = benchmarks.get("boolq").load(per_level=3, seed=0, data=SHARED / "boolq")
    for p in b:
        ch = benchmarks.get("boolq").choices(p)
        assert ch.continuations == (" no", " yes") and ch.context.endswith("?\nAnswer:")
        assert p.meta["passage"] in ch.context and benchmarks.get("boolq").score(p.answer, p).correct
    h = benchmarks.get("hellaswag").load(per_level=2, seed=0, data=SHARED / "hellaswag")
    for p in h:
        ch = benchmarks.get("hellaswag").choices(p)
        assert len(ch.continuations) == 4 and all(c.startswith(" ") and "[" not in c for c in ch.continuations)
        assert ch.context and ch.context in p.question.replace("\n", " ") or ch.context.split(": ")[0] in p.question
        gold = ch.answers.index(p.answer)
        assert ch.continuations[gold].strip() in p.question


@pytest.mark.heavy
def test_a_run_scored_by_loglikelihood(tmp_path, tiny_backend):
    """One row per option; the answer is the option with the highest log-probability, the same on every
    row of a query; nothing is generated, so all of a query's time and energy is prefill."""
    spec = RunSpec(**LL)
    d = execute(spec, tmp_path, progress=False, backend=tiny_backend)
    q = pd.read_parquet(d / "queries.parquet")
    assert len(q) == 4 * q.query_id.nunique() and (q.completion_tokens == 0).all()
    for _, g in q.groupby("query_id"):
        best = "ABCD"[int(g.sort_values("sample").logprob.to_numpy().argmax())]
        assert set(g.answer) == {best} and g.correct.nunique() == 1
        assert g.correct.iloc[0] == (best == g.gold.iloc[0])
    assert (q.t_first_token == q.t_end).all()
    assert (
        q.prefill_energy_j.to_numpy() == pytest.approx(q.energy_j.to_numpy()) and (q.decode_energy_j.abs() < 1e-9).all()
    )
    assert np.isfinite(q.logprob).all() and (q.logprob < 0).all()
    assert spec.run_id != RunSpec(**{**LL, "scoring": "generate"}).run_id
    assert (
        RunSpec(**{**LL, "scoring": "generate"}).run_id
        == RunSpec(**{k: v for k, v in LL.items() if k != "scoring"}).run_id
    )


def test_loglikelihood_needs_options_and_one_sample():
    with pytest.raises(ValueError, match="benchmark 'mtbench' defines no options to score.*boolq, hellaswag, mmlu"):
        RunSpec(**{**LL, "benchmark": "mtbench", "subsets": None})
    with pytest.raises(ValueError, match="takes one sample and no input_tokens"):
        RunSpec(**{**LL, "strategy": "mv"})
