"""Math benchmarks of the paper's Table 1: AIME24, AIME25, GPQA-Diamond, MATH500.

Answers are compared by equivalence (math-verify), AIME answers as integers, GPQA by the letter
of the chosen option. Levels:

- MATH500: the dataset's ``level`` 1–5.
- AIME: derived from the problem's number within its contest (problems get harder through the
  paper): 1–5 easy, 6–10 medium, 11–15 hard.
- GPQA-Diamond: the question writer's difficulty estimate, grouped as undergraduate (easy or hard
  undergraduate level), graduate, post-graduate.
"""

from __future__ import annotations

import re

from .. import answers
from . import Benchmark, Problem, register
from .scoring import (
    BOXED_FORMAT,
    CHOICE_FORMAT,
    choice_question,
    extract_choice_for,
    score_choice,
    score_integer,
    score_math,
    shuffled_options,
)
from .sources import Hub, Source, read_zipped_csv

AIME_LEVELS = ("easy", "medium", "hard")


def aime_level(number: int) -> str:
    return "easy" if number <= 5 else "medium" if number <= 10 else "hard"


def _aime_number(record: dict, index: int) -> tuple[str, int]:
    """(contest, problem number) from an AoPS url, an id like "I-3" / "2024-II-3", the 2024
    release's running id (60-89), or else the record's position (15 per contest, I first)."""
    m = re.search(r"AIME_(I+)_Problems/Problem_(\d+)", str(record.get("url") or ""))
    if m:
        return m.group(1), int(m.group(2))
    rid = str(record.get("id", record.get("ID", "")))
    m = re.search(r"\b(I+)-(\d+)$", rid)
    if m:
        return m.group(1), int(m.group(2))
    k = int(rid) - 60 if rid.isdigit() and 60 <= int(rid) < 90 else index  # QwenLM/HF AIME 2024 ids 60-89
    return ("I" if k < 15 else "II"), k % 15 + 1


def _aime_parser(year: int):
    def parse(r: dict, i: int) -> Problem:
        contest, number = _aime_number(r, i)
        return Problem(
            f"aime{year % 100}/{contest}-{number}",
            r["problem"],
            str(r["answer"]).strip(),
            f"aime{year % 100}",
            "math",
            aime_level(number),
            subset=f"AIME {year} {contest}",
        )

    return parse


for _year, _files, _hub in (
    (2024, ("aime24/test.jsonl", "aime24/aime24.json"), Hub("HuggingFaceH4/aime_2024", split="train")),
    (2025, ("aime25/aime25.json", "aime25/test.jsonl"), Hub("math-ai/aime25", split="test")),
):
    register(
        Benchmark(
            name=f"aime{_year % 100}",
            category="math",
            size=30,
            description=f"AIME {_year} (contests I and II, 30 problems), integer answers 0-999.",
            source=Source(files=_files, hub=_hub),
            parse=_aime_parser(_year),
            extract=answers.extract_math,
            score=score_integer,
            equivalent=answers.math_equivalent,
            levels=AIME_LEVELS,
            difficulty_note="derived: problem number within the contest (1-5, 6-10, 11-15)",
            answer_format=BOXED_FORMAT,
        )
    )


def _math500(r: dict, i: int) -> Problem:
    return Problem(
        r.get("unique_id") or f"math500/{i}",
        r["problem"],
        str(r["answer"]),
        "math500",
        "math",
        str(r["level"]).removeprefix("Level ").strip(),
        subset=r.get("subject"),
    )


register(
    Benchmark(
        name="math500",
        category="math",
        size=500,
        description="MATH-500 (the PRM800K test subset of MATH): 500 problems, LaTeX answers compared by equivalence.",
        source=Source(files=("math500/test.jsonl",), hub=Hub("HuggingFaceH4/MATH-500", split="test")),
        parse=_math500,
        extract=answers.extract_math,
        score=score_math,
        equivalent=answers.math_equivalent,
        levels=("1", "2", "3", "4", "5"),
        answer_format=BOXED_FORMAT,
    )
)


GPQA_PASSWORD = b"deserted-untouched"  # the GPQA authors' published zip password (not a secret)


def gpqa_level(estimate: str) -> str | None:
    e = (estimate or "").lower()
    if "post-graduate" in e:
        return "post-graduate"
    if "graduate" in e and "undergraduate" not in e:
        return "graduate"
    if "undergraduate" in e:
        return "undergraduate"
    return None


def _gpqa(r: dict, i: int) -> Problem:
    rid = r.get("Record ID") or str(i)
    wrong = [r[f"Incorrect Answer {k}"] for k in (1, 2, 3)]
    options, gold = shuffled_options(r["Correct Answer"], wrong, rid)
    return Problem(
        f"gpqa_diamond/{rid}",
        choice_question(r["Question"], options),
        gold,
        "gpqa_diamond",
        "math",
        gpqa_level(r.get("Writer's Difficulty Estimate", "")),
        subset=r.get("High-level domain"),
        meta={"options": options},
    )


register(
    Benchmark(
        name="gpqa_diamond",
        category="math",
        size=198,
        description="GPQA Diamond: 198 graduate-level science questions, four options shuffled per question "
        "(fixed by the record id).",
        source=Source(
            files=("gpqa_diamond/gpqa_diamond.csv", "gpqa_diamond/gpqa_diamond.zip"),
            hub=Hub("Idavidrein/gpqa", "gpqa_diamond", split="train"),
            reader=lambda p: read_zipped_csv(p, GPQA_PASSWORD),
        ),
        parse=_gpqa,
        extract=extract_choice_for("ABCD"),
        score=score_choice,
        levels=("undergraduate", "graduate", "post-graduate"),
        difficulty_note="the writer's difficulty estimate, grouped",
        answer_format=CHOICE_FORMAT,
    )
)
