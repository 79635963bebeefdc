from __future__ import annotations

import pytest

from ttclib import benchmarks, strategies


def test_arithmetic_is_deterministic_and_graded():
    b = benchmarks.get("arithmetic")
    p1, p2 = b.load(per_level=5, seed=3), b.load(per_level=5, seed=3)
    assert p1 == p2 and len(p1) == 15
    assert [p.difficulty for p in p1[::5]] == ["easy", "medium", "hard"]
    for p in p1:
        assert str(eval(p.question.removeprefix("What is ").rstrip("?"))) == p.answer
    assert b.load(per_level=5, seed=4) != p1


def test_unknown_level_and_benchmark():
    with pytest.raises(ValueError, match="no level"):
        benchmarks.get("arithmetic").load(levels=["trivial"])
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        benchmarks.get("nope")


@pytest.mark.parametrize("text, expected", [
    ("3 + 4 = 7", "7"),
    ("The answer is 12.", "12"),
    ("First 10 + 5 = 15, then 15 - 3 = 12. The answer is: 12", "12"),
    ("so the result is \\boxed{1,234}", "1234"),
    ("-5", "-5"),
    ("I don't know", None),
])
def test_extract_final_integer(text, expected):
    assert benchmarks.extract_final_integer(text) == expected


@pytest.mark.parametrize("answer, gold, ok", [("7", "7", True), ("07", "7", True), ("8", "7", False),
                                              (None, "7", False), ("x", "7", False)])
def test_score_integer(answer, gold, ok):
    assert benchmarks.score_integer(answer, gold) is ok


def test_vote_majority_and_tie_break():
    assert strategies.vote(["1", "2", "2"]) == "2"
    assert strategies.vote(["3", "1", "1", "3"]) == "3"      # tie: first seen wins
    assert strategies.vote([None, None, "4"]) == "4"
    assert strategies.vote([None]) is None


def test_strategy_prompts():
    p = benchmarks.get("arithmetic").load(per_level=1)[0]
    cot = strategies.get("cot")
    assert "step by step" in cot.messages(p)[0]["content"]
    assert cot.base_prompt(p).startswith("Question: What is") and cot.base_prompt(p).endswith("Answer:")
    assert strategies.get("mv").samples == 5 and strategies.get("mv").temperature > 0
    assert strategies.get("mv").with_overrides(samples=3).samples == 3
