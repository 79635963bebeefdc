"""Paper 002's query features and the analyses on them (ttclib.features) with known answers: the pinned
spaCy NER model on a fixed sentence, entropy in bits, the Table VI ablation on a separable and on an
independent label, scaling patterns and the Table X rule on constructed tables."""
from __future__ import annotations

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
    assert sorted((e.text, e.label_) for e in doc.ents) == [("Barack Obama", "PERSON"), ("France", "GPE"),
                                                            ("Google", "ORG"), ("Paris", "GPE")]
    assert ft.entity_density(doc) == pytest.approx(4 / 12)
    assert ft.nlp().meta["version"] == "3.8.0"
    # a date and a number are entities, but not of the paper's types
    assert ft.entity_density(ft.nlp()("It rained on 3 May 2021 for 40 minutes.")) == 0.0


def test_causal_questions_and_markers_as_people_write_them():
    assert ft.causal_question_score("How do vaccines work?") == 1.0
    assert ft.causal_question_score("Who wrote Hamlet? When was it written?") == 0.0
    assert ft.causal_question_score("Passage about rivers.\n\nQuestion: why do rivers meander?") == 1.0
    assert ft.causal_question_score("is the sky blue") == 0.0        # BoolQ's questions have no '?'
    assert ft.reasoning_complexity("The bridge closed because of ice, therefore traffic slowed.") == pytest.approx(2 / 9)


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
    assert ft.scaling_patterns(correct).value_counts().to_dict() == {"Always Easy": 1, "Always Hard": 1,
                                                                     "Scaling Helps": 2, "Inconsistent": 2}
    t = pd.DataFrame({"model": ["m"] * 6, "entity_density": [0.1, 0.1, 0.1, 0.3, 0.1, 0.5],
                      "causal_question_score": [0, 0, 0, 0, 1, 0], "quality": [0.9, 0.8, 0.7, 0.2, 0.3, 0.1]})
    assert ft.rule_easy(t).tolist() == [True, True, True, False, False, False]
    (row,) = ft.rule_gap(t, "quality").to_dict("records")
    assert row["easy"] == pytest.approx(0.8) and row["hard"] == pytest.approx(0.2) and row["gap"] == pytest.approx(0.6)
    assert row["lo"] < 0.6 < row["hi"] and row["n_easy"] == row["n_hard"] == 3


def test_the_papers_section_v_checked_against_its_tables():
    text = " ".join(ft.paper_inconsistencies())
    assert "causal_question_score's correlation with quality 'typically' in [-0.25, -0.15]" in text
    assert "-0.18 to -0.13" in text and "entity_density" not in text        # entity's range matches its table
    assert "token entropy's correlation with quality in Table VIII is +0.11 to +0.33" in text
    assert "Table X" not in text                                             # its averages follow from its rows
