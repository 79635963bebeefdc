"""Maliakel et al. [002]'s query features and the analyses on them (ttclib.features) with known answers: the pinned
spaCy NER model on a fixed sentence, entropy in bits, the Table VI ablation on a separable and on an
independent label, scaling patterns and the Table X rule on constructed tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ttclib import features as ft


def test_entropy_in_bits():
    assert ft.token_entropy_bits("a a b b".split()) == 1.0
    assert ft.token_entropy_bits(list("abcdefgh")) == 3.0 and ft.token_entropy_bits([]) == 0.0


def test_entity_density_with_the_pinned_model():
    """Four entities of the paper's types in twelve tokens (the period is a token), from en_core_web_sm 3.8.0."""
    doc = ft.nlp()("Barack Obama visited Paris and met executives of Google in France.")
    assert sorted((e.text, e.label_) for e in doc.ents) == [
        ("Barack Obama", "PERSON"),
        ("France", "GPE"),
        ("Google", "ORG"),
        ("Paris", "GPE"),
    ]
    assert ft.entity_density(doc) == pytest.approx(4 / 12)
    assert ft.nlp().meta["version"] == "3.8.0"
    # a date and a number are entities, but not of the paper's types
    assert ft.entity_density(ft.nlp()("It rained on 3 May 2021 for 40 minutes.")) == 0.0


def test_causal_questions_and_markers_as_people_write_them():
    assert ft.causal_question_score("How do vaccines work?") == 1.0
    assert ft.causal_question_score("Who wrote Hamlet? When was it written?") == 0.0
    assert ft.causal_question_score("Passage about rivers.\n\nQuestion: why do rivers meander?") == 1.0
    assert ft.causal_question_score("is the sky blue") == 0.0  # BoolQ's questions have no '?'
    assert ft.reasoning_complexity("The bridge closed because of ice, therefore traffic slowed.") == pytest.approx(
        2 / 9
    )


def test_features_table_uses_the_models_tokens(tiny_backend):
    t = ft.features(["Why is the sky blue? Explain it simply."], tokenizer=tiny_backend.tokenizer)
    n = len(tiny_backend.tokenizer.encode("Why is the sky blue? Explain it simply.", add_special_tokens=False))
    assert t.input_tokens[0] == n and t.causal_question_score[0] == 1.0
    assert 0 < t.complexity_score[0] <= 1 and set(ft.FEATURES) <= set(t.columns)


def test_ablation_separable_and_independent():
    """A label that a feature separates is learned (≥ 0.95); a label independent of every feature is not
    (≈ 0.5, within the folds' noise)."""
    rng = np.random.default_rng(0)
    n = 400
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    x["separable"] = (x.a + 0.5 * x.b > 0).astype(int)
    x["independent"] = rng.integers(0, 2, n)
    sep = ft.ablation(x, "separable", {"a+b": ["a", "b"], "b only": ["b"]})
    ind = ft.ablation(x, "independent", {"a+b": ["a", "b"]})
    assert sep.set_index("features").accuracy["a+b"] >= 0.95
    assert sep.set_index("features").accuracy["b only"] < 0.8
    assert abs(ind.accuracy[0] - 0.5) < 0.07 and ind.folds[0] == 5


def test_easy_labels_per_dataset_median():
    q = pd.Series([0.1, 0.5, 0.9, 10, 20, 30])
    d = pd.Series(["x", "x", "x", "y", "y", "y"])
    assert ft.easy_labels(q, d).tolist() == [0, 0, 1, 0, 0, 1]


def test_correlation_interval_covers_the_truth():
    """y = 0.3·x + noise with r = 0.3: the Fisher interval covers it in about 95 % of 300 samples of 200."""
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(300):
        x = rng.normal(size=200)
        y = 0.3 * x + np.sqrt(1 - 0.09) * rng.normal(size=200)
        r = ft.correlations(pd.DataFrame({"x": x, "y": y}), "y", ["x"]).iloc[0]
        hits += r.lo <= 0.3 <= r.hi
    assert 0.92 <= hits / 300 <= 0.98


def test_patterns_and_the_rule_on_constructed_tables():
    correct = pd.DataFrame({"1B": [1, 0, 0, 1, 0, 0], "8B": [1, 0, 1, 0, 0, 1], "32B": [1, 0, 1, 1, 1, 0]})
    assert ft.scaling_patterns(correct).value_counts().to_dict() == {
        "Always Easy": 1,
        "Always Hard": 1,
        "Scaling Helps": 2,
        "Inconsistent": 2,
    }
    t = pd.DataFrame(
        {
            "model": ["m"] * 6,
            "entity_density": [0.1, 0.1, 0.1, 0.3, 0.1, 0.5],
            "causal_question_score": [0, 0, 0, 0, 1, 0],
            "quality": [0.9, 0.8, 0.7, 0.2, 0.3, 0.1],
        }
    )
    assert ft.rule_easy(t).tolist() == [True, True, True, False, False, False]
    (row,) = ft.rule_gap(t, "quality").to_dict("records")
    assert row["easy"] == pytest.approx(0.8) and row["hard"] == pytest.approx(0.2) and row["gap"] == pytest.approx(0.6)
    assert row["lo"] < 0.6 < row["hi"] and row["n_easy"] == row["n_hard"] == 3


def test_the_papers_section_v_checked_against_its_tables():
    text = " ".join(ft.paper_inconsistencies())
    assert "causal_question_score's correlation with quality 'typically' in [-0.25, -0.15]" in text
    assert "-0.18 to -0.13" in text and "entity_density" not in text  # entity's range matches its table
    assert "token entropy's correlation with quality in Table VIII is +0.11 to +0.33" in text
    assert "Table X: the average" not in text  # its averages follow from its rows
    assert "Table I gives BoolQ 100 input tokens on average, Table II 102.9" in text
    assert "Table I gives TruthfulQA" not in text and "26.8x" not in text  # 13 vs 12.6 and 26.8x: rounding
    assert "800 queries" in text and "median" in text


# --- the workload of a study -----------------------------------------------------------------------

TEXTS = {
    "d/0": "Barack Obama visited Paris and met executives of Google in France.",
    "d/1": "Why do rivers meander? Explain the process.",
    "d/2": "Add two and three.",
    "d/3": "Which number is larger, four or five?",
    "e/0": "Name a colour.",
    "e/1": "How does a lever lift a heavy stone?",
}


def _results() -> pd.DataFrame:
    """Study.results of three models (smallest first) on two datasets: d scored by accuracy (MMLU), e by
    ROUGE-L (TruthfulQA: correct at a ROUGE-L closer to the true references; here at >= 0.5)."""
    hits = {"s": [1, 0, 0, 1], "m": [1, 0, 1, 0], "l": [1, 0, 1, 1]}
    rouge = {"s": [0.2, 0.4], "m": [0.6, 0.2], "l": [0.8, 0.6]}
    rows = []
    for m in hits:
        for qid, value in zip(TEXTS, hits[m] + rouge[m], strict=True):
            rows.append(
                {
                    "run_id": m,
                    "repetition": 0,
                    "model": m,
                    "strategy": "base",
                    "query_id": qid,
                    "benchmark": "mmlu_letter" if qid[0] == "d" else "truthfulqa",
                    "subset": qid[0],
                    "correct": bool(value >= 0.5),
                    "score": float(value),
                    "energy_j": {"s": 1.0, "m": 2.0, "l": 4.0}[m],
                }
            )
    return pd.DataFrame(rows)


def test_workload_label_patterns_and_rule_by_hand():
    """The label: quality min-max normalised per dataset (ROUGE-L 0.2-0.8 -> 0-1), averaged over the models,
    above the dataset's median; patterns read the models smallest first; the rule reads the features; a
    query not every model answered is dropped."""
    r = _results()
    r = pd.concat([r, r.iloc[[0]].assign(query_id="d/9")])  # answered by one model only
    w = ft.workload(r, TEXTS | {"d/9": "x"}, ["s", "m", "l"])
    q = w.queries.set_index("query_id")
    assert list(q.index) == list(TEXTS) and w.models == ("s", "m", "l")
    assert q.quality.round(3).tolist() == [1.0, 0.0, 0.667, 0.667, 0.556, 0.333]
    assert q.easy.tolist() == [1, 0, 0, 0, 1, 0]  # medians: d 2/3 (strictly above), e 4/9
    assert q.pattern.tolist() == [
        "Always Easy",
        "Always Hard",
        "Scaling Helps",
        "Inconsistent",
        "Scaling Helps",
        "Scaling Helps",
    ]
    assert q.rule_easy.tolist() == [0, 0, 1, 1, 1, 0]  # entities in d/0; why/how in d/1, e/1
    per = w.quality.set_index(["query_id", "model"])
    assert per.loc[("e/0", "m"), "quality"] == 0.6 and per.loc[("d/3", "m"), "quality"] == 0.0
    assert ft.quality_by_model(w.quality, w.models).loc["truthfulqa", "l"] == pytest.approx(0.7)
    stats = ft.length_stats(q.reset_index()).set_index("dataset")
    assert stats.loc["truthfulqa", "count"] == 2 and stats.loc["mmlu_letter", "range"] == pytest.approx(
        stats.loc["mmlu_letter", "max"] / stats.loc["mmlu_letter", "min"]
    )
    shares = ft.pattern_table(q.reset_index()).set_index("pattern").share
    assert shares["Scaling Helps"] == pytest.approx(0.5) and shares.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no text for"):
        ft.workload(_results(), {k: v for k, v in TEXTS.items() if k != "e/1"})


def test_ablation_rule_row_and_paired_difference():
    """A rule that is right on every row scores 1.0 and beats a classifier on a feature unrelated to the label;
    the difference's paired interval excludes 0. The out-of-fold classifier on a separable feature agrees."""
    rng = np.random.default_rng(3)
    n = 200
    t = pd.DataFrame({"x": rng.normal(size=n), "noise": rng.normal(size=n)})
    t["easy"] = (t.x > 0).astype(int)
    res = ft.ablation(t, "easy", {"noise": ["noise"], "x": ["x"]}, rules={"perfect": t.easy})
    acc = res.set_index("features")
    assert acc.accuracy["perfect"] == 1.0 and acc.kind["perfect"] == "rule" and acc.accuracy["x"] >= 0.95
    d, lo, hi = ft.ablation_difference(res, "noise", "perfect")
    assert d == pytest.approx(1 - acc.accuracy["noise"]) and lo > 0
    predicted = ft.predicted_easy(t.assign(entity_density=t.x, causal_question_score=t.noise))
    assert ((predicted == "easy") == t.easy.astype(bool)).mean() >= 0.95


DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not (DATA / "boolq").is_dir(), reason="the benchmark files of ../shared/data are absent")
@pytest.mark.heavy
def test_table_ii_input_lengths_on_the_papers_datasets(monkeypatch):
    """Table II on the real data with Qwen2.5's tokenizer (the paper's Llama tokenizer is on the hub).
    TruthfulQA's questions give the paper's length (12.6 tokens: 12.9 here); the datasets keep the paper's
    order at the short end; BoolQ's whole passages reach far past Table II's maximum of 294 tokens, so the
    paper's BoolQ inputs were cut or chosen, which it does not say (measured: mean 138, max 1,261)."""
    from ttclib import serving
    from ttclib.spec import RunSpec

    monkeypatch.setenv("TTC_DATA_DIR", str(DATA))
    specs = [
        RunSpec(model="qwen2.5-coder-0.5b-instruct", strategy="base", benchmark=b, per_level=None)
        for b in ("truthfulqa", "boolq")
    ]
    texts = ft.query_texts(specs)
    tok = serving.load_tokenizer("qwen2.5-coder-0.5b-instruct")
    rows = pd.DataFrame({"query_id": list(texts), "dataset": [k.split("/")[0] for k in texts]})
    rows["input_tokens"] = [len(tok.encode(t, add_special_tokens=False)) for t in texts.values()]
    stats = ft.length_stats(rows).set_index("dataset")
    assert stats.loc["truthfulqa", "count"] == 817 and stats.loc["boolq", "count"] == 3270
    assert stats.loc["truthfulqa", "mean"] == pytest.approx(ft.PAPER_TABLE_II["TruthfulQA"][0], rel=0.10)
    assert stats.loc["truthfulqa", "mean"] < stats.loc["boolq", "mean"]
    assert stats.loc["boolq", "max"] > 3 * ft.PAPER_TABLE_II["BoolQ"][3]


def _simulated(n: int = 1500, seed: int = 0) -> ft.Workload:
    """A workload whose truth is known: three models right with probability sigmoid(a_m − 6·entity − 1.5·causal),
    length unrelated to anything. Entity density and the causal score lower quality; length does not."""
    rng = np.random.default_rng(seed)
    q = pd.DataFrame(
        {
            "dataset": "d",
            "query_id": [f"q{i}" for i in range(n)],
            "entity_density": rng.uniform(0, 0.5, n),
            "causal_question_score": (rng.random(n) < 0.3) * 1.0,
            "input_tokens": rng.integers(20, 300, n),
            "token_entropy_bits": rng.uniform(3, 7, n),
            "reasoning_complexity": rng.uniform(0, 0.1, n),
            "complexity_score": rng.uniform(0.3, 0.7, n),
        }
    )
    models = ("s", "m", "l")
    rows = []
    for a, m in zip((0.0, 1.0, 2.0), models, strict=True):
        p = 1 / (1 + np.exp(-(a - 6 * q.entity_density - 1.5 * q.causal_question_score)))
        hit = (rng.random(n) < p) * 1.0
        rows.append(q.assign(model=m, quality=hit, correct=hit))
    per = pd.concat(rows, ignore_index=True)
    q["quality"] = per.groupby("query_id", sort=False).quality.mean().to_numpy()
    q["easy"] = ft.easy_labels(q.quality, q.dataset)
    q["pattern"] = q.query_id.map(
        ft.scaling_patterns(per.pivot(index="query_id", columns="model", values="correct")[list(models)] >= 0.5)
    )
    return ft.Workload(q, per, models)


def test_verdicts_decide_a_simulated_truth():
    """On the simulated workload the claims that are true there hold (length does not predict quality,
    entity density and the causal score lower it under every model, the features beat the length rule and
    the majority class, the rule's easy queries score higher); the same verdicts on a workload whose quality
    ignores the features are not 'held'."""
    from ttclib import report

    runs = pd.DataFrame({"hardware": ["sim"]})
    w = _simulated()
    text = report.difficulty_features(w, ft.difficulty_ablation(w.queries), runs)
    for claim in (
        "input length does not predict quality",
        "entity density correlates negatively",
        "the causal question score correlates negatively",
        "classify difficulty better than length",
        "score higher than its hard ones",
    ):
        sentence = next(s for s in text.split("\n\n") if claim in s)
        assert "held here" in sentence and "did not hold" not in sentence, sentence
    rng = np.random.default_rng(7)
    shuffled = w.quality.assign(quality=lambda d: rng.permutation(d.quality.to_numpy()))
    shuffled["correct"] = shuffled.quality
    q = w.queries.assign(quality=shuffled.groupby("query_id", sort=False).quality.mean().to_numpy())
    q["easy"] = ft.easy_labels(q.quality, q.dataset)
    null = ft.Workload(q, shuffled, w.models)
    text = report.difficulty_features(null, ft.difficulty_ablation(q), runs)
    for claim in ("entity density correlates negatively", "classify difficulty better than length"):
        sentence = next(s for s in text.split("\n\n") if claim in s)
        assert " held here" not in sentence, sentence


def test_paper_profiles_are_runs_of_section_08s_paper_grid(capsys):
    """09's and 10's `paper` runs are 08's at 2842 MHz (and 180 MHz for 10), batch 1: one run id each, so one
    measurement serves all three sections; their dry-runs list them with GPU-hours."""
    from ttclib import cli
    from ttclib.params import load_params

    root = Path(__file__).resolve().parents[1] / "params"
    dvfs = {s.run_id for s in load_params(root / "08_dvfs_phases.yaml", "paper").specs}
    for name, n in (("09_difficulty_features", 20), ("10_routing_dvfs", 40)):
        ids = {s.run_id for s in load_params(root / f"{name}.yaml", "paper").specs}
        assert len(ids) == n and ids <= dvfs, name
        assert cli.main(["run", str(root / f"{name}.yaml"), "--profile", "paper", "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert f"for {n} of {n} runs" in out and "GPU-hours" in out and "[no estimate" not in out


def test_ner_model_is_explosions_en_core_web_sm_380():
    """The PyPI upload's meta.json against Explosion's own release record for en_core_web_sm 3.8.0
    (explosion/spacy-models, meta/en_core_web_sm-3.8.0.json): the same spaCy commit, pipeline and measured
    accuracies to ten digits. Metadata, not a hash of the weights (the release wheel is not on PyPI), with the
    entity test above as the behavioural check."""
    meta = ft.nlp().meta
    perf = meta["performance"]
    assert meta["version"] == "3.8.0" and meta["spacy_git_version"] == "5010fcbd3"
    assert meta["pipeline"] == ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"]
    official = {
        "ents_f": 0.8433119744,
        "ents_p": 0.8429743795,
        "ents_r": 0.8436498397,
        "dep_las": 0.8991533598,
        "tag_acc": 0.972937262,
    }
    assert {k: perf[k] for k in official} == pytest.approx(official, abs=1e-12)


def test_features_must_beat_the_majority_class_not_only_the_length_rule():
    """Unbalanced labels independent of the features, every query short: the length rule calls all easy (20 %
    right), the classifier falls back on 'hard' (80 %). Beating the length rule by 60 points is no evidence
    that the features predict difficulty: the verdict must not say held (it did before the majority check)."""
    from ttclib import report

    w = _simulated(n=500, seed=2)
    rng = np.random.default_rng(5)
    q = w.queries.assign(easy=(rng.random(len(w.queries)) < 0.2).astype(int), input_tokens=50)
    abl = ft.difficulty_ablation(q)
    acc = abl.set_index("features").accuracy
    assert acc[f"length > {ft.LENGTH_CUT} tokens"] < 0.3 and acc["features only (no length)"] > 0.7
    text = report.difficulty_features(ft.Workload(q, w.quality, w.models), abl, pd.DataFrame({"hardware": ["sim"]}))
    sentence = next(s for s in text.split("\n\n") if "classify difficulty better than length" in s)
    assert " held here" not in sentence and "vs majority class" in sentence, sentence
