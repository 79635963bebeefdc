"""Small composable answer-processing steps: split the reasoning off, extract, compare, score.

Each step is a pure function so that a benchmark composes them lm-evaluation-harness style
(extract → vote → score)::

    text = split_reasoning(generation, expect_think=True).answer_text
    answer = extract_math(text)                 # a string, or None
    correct = math_equal(answer, gold)          # math-verify equivalence with a fast path

Conventions of the math comparison (they are math-verify 0.9.0's, kept on purpose):

* Percent is lenient: a gold ``10\\%`` accepts ``10``, ``10\\%`` and ``0.1``.
* An equation is compared by its right-hand side: ``x=5`` equals ``5`` (either side).
* Text answers compare case-insensitively after ``\\text{}`` is removed, so ``\\text{(B)}``
  equals ``B`` and ``\\text{Evelyn}`` equals ``Evelyn``.
* A comma-separated list is an unordered set (``1, 2`` equals ``2, 1``); a parenthesised pair
  is an ordered tuple or an open interval, and interval ends must match (``[1,2)`` is not
  ``[1,2]``).
* Units and degrees are dropped (``90^\\circ`` equals ``90``); thousands separators are read
  (``1,000`` equals ``1000``, so ``1,000`` is never the set {1, 0}).
* Floats are compared after rounding to 6 places: ``0.333`` is not ``\\frac13``.

Thread safety: math-verify's own timeouts use ``signal.alarm``, which works only in the main
thread. In the main thread the comparison keeps a 5 s timeout; in any other thread it runs
without one (``parsing_timeout=None``, ``timeout_seconds=None``). In both cases expressions
that are known to hang sympy (power towers, huge exponents or factorials, very long strings)
are never handed to it; they are compared as normalised strings only. No exception escapes a
comparison: anything that goes wrong is ``False``.
"""

from __future__ import annotations

import builtins
import functools
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "Reasoned",
    "split_reasoning",
    "extract_math",
    "math_equal",
    "math_equivalent",
    "extract_integer",
    "integer_equal",
    "extract_choice",
    "extract_yes_no",
    "extract_code",
    "normalize_text",
    "rouge_l",
]

# ---------------------------------------------------------------------------------------------
# reasoning

_OPEN, _CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class Reasoned:
    """A generation split into its reasoning and its answer."""

    reasoning: str | None  # text inside <think>…</think> (None when the model did not reason)
    answer_text: str  # text after </think> (the whole text when there was no reasoning)
    truncated: bool  # reasoning started but </think> never came → the answer is missing


def split_reasoning(text: str, expect_think: bool = False) -> Reasoned:
    """Split ``<think>…</think>`` reasoning from the answer.

    R1-style chat templates append ``<think>\\n`` to the prompt, so the generation usually holds
    only the closing tag; pass ``expect_think=True`` for such models so that a generation
    without ``</think>`` counts as truncated reasoning rather than as an answer.

    >>> split_reasoning("Let me see. 2+3=5.</think>\\n\\nThe answer is 5.")
    Reasoned(reasoning='Let me see. 2+3=5.', answer_text='The answer is 5.', truncated=False)
    >>> split_reasoning("<think>Hmm, 2+3 is", expect_think=True).truncated
    True
    >>> split_reasoning("The answer is 5.")
    Reasoned(reasoning=None, answer_text='The answer is 5.', truncated=False)
    """
    head, closed, tail = text.partition(_CLOSE)
    if closed:
        return Reasoned(_drop_open(head), tail.strip(), False)
    if expect_think or _OPEN in text:
        return Reasoned(_drop_open(text), "", True)
    return Reasoned(None, text, False)


def _drop_open(s: str) -> str:
    s = s.lstrip()
    return (s[len(_OPEN) :] if s.startswith(_OPEN) else s).strip()


# ---------------------------------------------------------------------------------------------
# the model's own answer

# a base model continuing a few-shot prompt writes the next "Question: …" (lm-evaluation-harness
# stops generation there)
_NEXT_QUESTION = re.compile(r"\n[ \t]*(?:Question|Problem|Q)[ \t]*:")


def _own_answer(text: str) -> str:
    """The text before a following few-shot question.

    >>> _own_answer("So 9 * 2 = 18.\\n#### 18\\n\\nQuestion: A robe takes 2 bolts…\\nAnswer: 3")
    'So 9 * 2 = 18.\\n#### 18\\n'
    """
    text = text.strip("\n")
    return _NEXT_QUESTION.split(text, maxsplit=1)[0]


# ---------------------------------------------------------------------------------------------
# math extraction

_BOX = re.compile(r"\\(?:boxed|fbox)\b")
# "The answer is", "Answer:", "the answer would be", GSM8K's "#### 18"
_ANSWER_IS = re.compile(
    r"answer\s*(?:is\b|:|would\s+be\b|will\s+be\b|should\s+be\b|must\s+be\b|=)\s*:?"
    r"|^#{4}(?!#)",
    re.IGNORECASE | re.MULTILINE,
)
# a number: thousands-separated or plain, optional decimals or a simple fraction; a minus sign
# only where it cannot be a binary minus ("16-3" gives 3, not -3)
_NUM = re.compile(r"(?<![\w)\]}.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+|/\d+)?(?!\d)")
_UNICODE_MINUS = str.maketrans({"\u2212": "-", "\ufe63": "-", "\uff0d": "-"})
# a concluding clause: "So the total is 18", "…, so 20 - 2 = 18", "Therefore, she earns $90"
_CONCLUSION = re.compile(
    r"(?:^|(?<=[.!?;:,—]))[ \t]*(?:[-*#>]+\s*)?(?:and\s+)?"
    r"(?:so(?!\s+(?:that|far|on|much|many|long|if)\b)|therefore|thus|hence|in\s+total|altogether|overall|"
    r"in\s+all|finally|in\s+conclusion|consequently|the\s+(?:total|final|overall|combined)\b)\b[,:]?",
    re.IGNORECASE | re.MULTILINE,
)
_VERB = re.compile(
    r"\b(?:is|are|was|were|be|equals?|has|have|had|gets?|got|makes?|made|earns?|earned|"
    r"pays?|paid|spends?|spent|needs?|costs?|sells?|sold|totals?|comes\s+to|remains?|"
    r"receives?|saves?|saved|owes?|buys?|bought|uses?|used|takes?|took|covers?|weighs?)\b",
    re.IGNORECASE,
)
# a self-correction: what follows it overrides an earlier answer
_CORRECTION = re.compile(
    r"\b(?:wait|actually|oops|correction|hold\s+on|on\s+second\s+thought|scratch\s+that|my\s+(?:mistake|bad)|"
    r"I\s+(?:made\s+(?:a|an)\s+(?:mistake|error)|forgot|miscalculated|was\s+wrong|dropped|missed)|"
    r"let\s+me\s+(?:redo|recalculate|correct|fix)|"
    r"that(?:'s|\s+is|\s+was)\s+(?:wrong|incorrect|not\s+right))\b",
    re.IGNORECASE,
)
# "either 16 or 18", "\boxed{33} or \boxed{34}": two values offered for one answer
_HEDGE_BEFORE = re.compile(r"[\d}]\s*\$?\s*,?\s+or\s+(?:\\\$|\$)?\s*$")
# what follows a verb that states the result: "is 18", "earns $90", "is $\\frac{5}{12}$", "has about 30"
_VALUE_NEXT = re.compile(
    r"\s*(?:\*\*|\\?\$|\\\(|about\s+|only\s+|exactly\s+|a\s+total\s+of\s+|"
    r"left\s+(?:with\s+)?)*-?(?:\d|\\[a-z])"
)
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\bapprox)\.(?=\s|$)|[!?\n]")
# a bare number opening the answer: "95\n\n…", "$95. He spent…" (not a numbered list "1. First…")
_OPENING = re.compile(
    r"\s*(?:\*\*)?(\\?\$)?(-?\d[\d,]*(?:\.\d+)?)(?:\*\*)?"
    r"(?:[ \t]*(?:\n|$)|\.[ \t]*(?:\n|$)|(\.\s))"
)
# a formula alone on the first line: "$\\frac{3}{5}$\\n\\nExplanation: …"
_OPENING_FORMULA = re.compile(r"\s*(\$\$?[^$\n]+\$\$?|\\\(.+?\\\)|\\\[.+?\\\])[ \t.]*(?:\n|$)")
# "= 360 minutes, or 6 hours", "= 0.25, i.e. 25%": the result restated in the asked unit
_RESTATED = re.compile(r"^[^,;=]*?,?\s+(?:or|i\.e\.|that\s+is|which\s+is)\s+(?=(?:about\s+)?\\?\$?-?\d)")
# the same result in other units closing a sentence: "…, or 3 hours and 20 minutes"
_ALTERNATIVE = re.compile(r",\s+(?:or|i\.e\.|that\s+is)\s+(?=(?:about\s+)?\\?\$?-?\d)")
# in an answer statement only after a comma: "The answer is 1.5 dozen, i.e. 18 eggs" (not "5 or 6")
_RESTATED_AFTER_COMMA = re.compile(
    r"^[^,;=]*?,\s+(?:or|i\.e\.|that\s+is|which\s+is)\s+"
    r"(?=(?:about\s+)?\\?\$?-?\d)"
)
# a number closing its sentence, at most a few unit words after it ("is 35 centimetres.")
_CLOSING_NUMBER = re.compile(r"^(?:\s*(?:%|\\%|[A-Za-z]+\.?|per|of|each|in\s+total)){0,3}\W*$")
_CALC = re.compile(r"<<[^<>]*>>")  # GSM8K calculator annotations: "<<4+5=9>>9"
# a verification ("Check: 2(5) + 3 = 13 ✓", "Plugging back in, …") restates numbers, never concludes
_VERIFICATION = re.compile(
    r"(?:^|(?<=[.!?:])[ \t]+)[ \t]*(?:[-*>#]+\s*)?(?:\*\*)?(?:(?:let(?:'s|\s+us|\s+me)\s+)?(?:double[- ]?)?"
    r"(?:check|checking|verify|verifying|verification)|sanity\s+check|(?:plugging|substituting)\s+(?:back|in)|"
    r"(?=[^\n]*[\u2713\u2714\u2705]))\b",
    re.IGNORECASE | re.MULTILINE,
)
# an aside in parentheses with words in it: "(12 cups sold at $1.50 each)" explains, it does not answer
_ASIDE = re.compile(r"(?<![\\a-zA-Z])\(([^()\n]*)\)")
# "Answer: 7\n\nExplanation: … 3 left over": what the explanation mentions does not replace the answer
_EXPLANATION = re.compile(
    r"^[ \t]*(?:[-*>#]+\s*)?(?:\*\*)?(?:explanation|reasoning|rationale|justification|"
    r"here(?:'s|\s+is)\s+(?:why|how))\b[^\n:]{0,20}:",
    re.IGNORECASE | re.MULTILINE,
)
# a choice label in an AMC-style box: "\boxed{\textbf{(B) } 6}" answers 6
_CHOICE_LABEL = re.compile(
    r"^(?:\\(?:textbf|text|mathrm|mathbf)\s*\{\s*\(?[A-E]\)?\s*\}|\([A-E]\))"
    r"(?:\s|~|\\[ ,;:!])*(?=\S)"
)


@dataclass(frozen=True)
class _Candidate:
    pos: int  # where the answer starts in the text
    rank: int  # 3 boxed, 2 answer statement, 1 concluding clause or the last sentence's result
    kind: str  # "box" | "statement" | "conclusion" | "final"
    value: str


def _boxes(text: str) -> list[tuple[int, str]]:
    """Position and contents of every ``\\boxed{…}`` / ``\\fbox{…}`` (and ``\\boxed 5``), in order."""
    out = []
    for m in _BOX.finditer(text):
        i = m.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            depth, j = 0, i
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if depth == 0:
                out.append((m.start(), text[i + 1 : j].strip()))
        elif i > m.end():  # "\boxed 5": one token up to whitespace or a math delimiter
            tok = re.match(r"[^\s$]+", text[i:])
            if tok:
                out.append((m.start(), tok.group().rstrip(".,;")))
    return [(p, c) for p, c in out if c]


def _boxed_contents(text: str) -> list[str]:
    """The contents of every ``\\boxed{…}`` / ``\\fbox{…}`` (and ``\\boxed 5``), in order."""
    return [c for _, c in _boxes(text)]


_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_PROSE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}\s+[a-zA-Z]{2,}\b")


def _clean_tail(s: str) -> str:
    """Trim an answer phrase: markdown bold, math delimiters, the rest of the sentence."""
    s = s.replace("**", "").strip()
    for opener, closer in _DELIMS:
        if s.startswith(opener):
            end = re.compile(r"(?<!\\)" + re.escape(closer)).search(s, len(opener))
            if end and not (opener == "$" and _PROSE.search(s[1 : end.start()])):  # "$2 in change, since $50"
                return s[len(opener) : end.start()].strip().rstrip(".").strip()
            break
    s = re.split(r"\.(?:\s|$)|\n", s, maxsplit=1)[0]  # the sentence, without cutting "3.5"
    s = s.strip().strip("$").strip().rstrip(".").strip()
    num = re.match(r"^(-?[\d,]*\d(?:\.\d+|/\d+)?)\s*(?:%|\\%)?\s+[A-Za-z(]", s)  # "42 apples" → "42"
    return num.group(1) if num else s


def _numeric(tail: str) -> str | None:
    """A number or formula opening ``tail`` ("18 dollars", "$\\frac{11}{36}$"), else its first number."""
    value = _clean_tail(tail)
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", value):
        return value.replace(",", "")
    if re.match(r"-?(?:\d|\\[a-z]|\(|\[)", value):
        return value
    m = _NUM.search(tail)
    return m.group().replace(",", "") if m else None


def _restated(tail: str) -> str:
    """The value a result is restated as ("= 360 minutes, or 6 hours" → "6 hours"); not a compound
    one ("200 minutes, or 3 hours and 20 minutes" keeps 200)."""
    m = _RESTATED.match(tail)
    return tail[m.end() :] if m and not _compound(tail[m.end() :]) else tail


def _compound(restatement: str) -> bool:
    """Whether a restatement holds several quantities ("3 hours and 20 minutes")."""
    return len(_NUM.findall(restatement[: _sentence_end(restatement, 0)])) > 1


def _masked(text: str, spans) -> str:
    """``text`` with the spans blanked out (positions are kept)."""
    for a, b in spans:
        text = text[:a] + " " * (b - a) + text[b:]
    return text


def _explanatory(text: str) -> str:
    """``text`` without verification sentences and worded asides in parentheses, positions kept."""
    spans = [(m.start(), _sentence_end(text, m.end())) for m in _VERIFICATION.finditer(text)]
    spans += [m.span() for m in _ASIDE.finditer(text) if _PROSE.search(m.group(1))]
    boxes = [p for p, _ in _boxes(text)]
    return _masked(text, [(a, min([b] + [p for p in boxes if a <= p < b])) for a, b in spans])  # a box speaks


def _sentence_end(text: str, start: int) -> int:
    m = _SENTENCE_END.search(text, start)
    return m.start() if m else len(text)


def _statements(text: str, boxes: list[tuple[int, str]]) -> list[_Candidate]:
    found = []
    for m in _ANSWER_IS.finditer(text):
        end = _sentence_end(text, m.end())
        if any(m.end() <= p < end for p, _ in boxes):  # "the answer is $\boxed{5}$": the box speaks
            continue
        clause = text[m.end() : end]
        restated = _RESTATED_AFTER_COMMA.match(clause)
        if restated and not _compound(clause[restated.end() :]):
            found.append(_Candidate(m.end() + restated.end(), 2, "statement", _clean_tail(clause[restated.end() :])))
            continue
        value = _clean_tail(text[m.end() :])
        nums = _NUM.findall(value)
        if _PROSE.search(value) and len(nums) == 1:  # "Carla's download took **160 minutes**"
            value = nums[0].replace(",", "")
        if value:
            found.append(_Candidate(m.end(), 2, "statement", value))
    opening = _OPENING.match(text)
    if opening and (opening.group(1) or not opening.group(3)):
        found.append(_Candidate(opening.start(2), 2, "statement", opening.group(2).replace(",", "")))
    formula = _OPENING_FORMULA.match(text)
    if formula:
        found.append(_Candidate(formula.start(1), 2, "statement", _clean_tail(formula.group(1))))
    return found


def _conclusions(text: str) -> list[_Candidate]:
    found = []
    for m in _CONCLUSION.finditer(text):
        clause = text[m.end() : _sentence_end(text, m.end())]
        if _ANSWER_IS.search(clause):  # "So the final answer is $x = 5$": the statement speaks
            continue
        eq = clause.rfind("=")
        tail = (
            _restated(clause[eq + 1 :])
            if eq >= 0
            else next(
                (clause[v.end() :] for v in _VERB.finditer(clause) if _VALUE_NEXT.match(clause, v.end())),
                clause if _VALUE_NEXT.match(clause) else "",
            )
        )
        value = _numeric(tail) if tail else None
        if value:
            found.append(_Candidate(m.end() + len(clause) - len(tail), 1, "conclusion", value))
    return found


def _final_sentence(text: str, after: int) -> _Candidate | None:
    """The result of the last sentence with a number: after its last "=", else its last number when
    it closes the sentence ("…, leaving him with 10."; not "Note that 5 of the cans were dented.");
    None when that sentence holds a concluding connective (position >= ``after``)."""
    starts = [0] + [m.end() for m in _SENTENCE_END.finditer(text)]
    for a, b in reversed(list(zip(starts, starts[1:] + [len(text)], strict=True))):
        sentence = text[a:b]
        if not re.search(r"\d", sentence):
            continue
        if after >= a:
            return None
        alternative = list(_ALTERNATIVE.finditer(sentence))[-1:]
        if alternative and _compound(sentence[alternative[0].end() :]):  # "200 minutes, or 3 hours and 20…"
            sentence = sentence[: alternative[0].start()]
        eq = sentence.rfind("=")
        if eq >= 0:
            eq = len(sentence) - len(_restated(sentence[eq + 1 :])) - 1
        nums = list(_NUM.finditer(sentence, eq + 1 if eq >= 0 else 0))
        if not nums:
            return None
        num = nums[0] if eq >= 0 else nums[-1]
        if eq < 0 and (
            not _CLOSING_NUMBER.match(sentence[num.end() :]) or _list_marker(text, a + num.start(), a + num.end())
        ):
            return None
        return _Candidate(a + num.start(), 1, "final", num.group().replace(",", ""))
    return None


def _candidates(text: str) -> list[_Candidate]:
    boxes = _boxes(text)
    found = [_Candidate(p, 3, "box", _CHOICE_LABEL.sub("", c)) for p, c in boxes] + _statements(text, boxes)
    conclusions = _conclusions(text)
    final = _final_sentence(text, max((m.start() for m in _CONCLUSION.finditer(text)), default=-1))
    found += conclusions + ([final] if final else [])
    return sorted(found, key=lambda c: c.pos)


def _overrides(later: _Candidate, current: _Candidate, text: str) -> bool:
    """Whether a later candidate replaces the current one: as strong or stronger; a concluding clause
    after an answer statement; anything after a self-correction ("Wait, I forgot the 2 she ate")."""
    if later.rank >= current.rank:
        return True
    corrected = bool(_CORRECTION.search(text, current.pos, later.pos))
    if current.kind == "statement" and _EXPLANATION.search(text, current.pos, later.pos):
        return corrected  # "Answer: 7\n\nExplanation: … so 7 bags and 3 left over"
    if later.kind == "conclusion" and current.kind == "statement":
        return True
    return corrected


def _hedged(text: str, pos: int) -> bool:
    return bool(_HEDGE_BEFORE.search(text[max(0, pos - 40) : pos]))


def extract_math(text: str) -> str | None:
    """The final answer of a math solution as a string, or None.

    Candidates are the ``\\boxed{…}`` contents (nested braces are fine), answer statements ("The
    answer is", "Answer:", "#### 18", a bare number or formula opening the text), concluding clauses
    ("So the total is 18", "…, so 20 - 2 = 18", "The total cost is $38") and the result of the last
    sentence with a number (after its last "=", or a number closing it: "… leaving him with 10.").
    The last candidate wins unless an earlier one is stronger (box > statement > conclusion); a
    concluding clause still overrides an earlier statement, and anything after a self-correction
    ("Wait, I forgot…") overrides what came before. Without candidates: the last number. A value
    offered as one of two ("either 16 or 18") is no answer. Unicode minus signs are read as ``-``;
    a following few-shot "Question: …" is not part of the answer.

    What is not an answer: a verification ("Check: 2(5) + 3 = 13 ✓", "Plugging back in…"); an aside
    in parentheses with words in it ("$18 per day (12 cups at $1.50 each)"); what an "Explanation:"
    after an answer statement mentions; a compound restatement in other units ("200 minutes, or 3
    hours and 20 minutes" answers 200, while "360 minutes, or 6 hours" answers 6). An AMC-style box
    ``\\boxed{\\textbf{(B) } 6}`` answers its value; an answer statement in prose with one number
    ("Answer: Carla's download took **160 minutes**") answers that number.

    >>> extract_math(r"so $x = \\boxed{\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    >>> extract_math("Final Answer: The final answer is $\\\\frac{3}{4}$. I hope it is correct.")
    '\\\\frac{3}{4}'
    >>> extract_math("She pays 1,250 + 30 = 1,280 dollars.")
    '1280'
    >>> extract_math("The answer is 20. Wait, he gave 2 away: 20 - 2 = 18. So the total is 18.")
    '18'
    >>> extract_math("f(−2) = −4"), extract_math("It is either $16 or $18.")
    ('-4', None)
    >>> extract_math("so $x = 5$.\\n\\nCheck: $2(5) + 3 = 13$ ✓")
    '5'
    >>> extract_math("He earns $18 (12 cups at $1.50 each).")
    '18'
    >>> extract_math("It takes 200 minutes, or 3 hours and 20 minutes."), extract_math("= 360 minutes, or 6 hours.")
    ('200', '6')
    >>> extract_math("Answer: 7\\n\\nExplanation: 45 ÷ 6 = 7 r 3, so she fills 7 bags and has 3 left.")
    '7'
    >>> extract_math(r"So the answer is $\\boxed{\\textbf{(B) } 6}$.")
    '6'
    >>> extract_math("The answer is 1.5 dozen, i.e. 18 eggs.")
    '18'
    >>> extract_math("**Answer:** Carla's download took **160 minutes**.")
    '160'
    >>> extract_math("We need to follow these steps:\\n\\n1. **Calculate") is None   # cut off: no answer yet
    True
    """
    if not text:
        return None
    text = _CALC.sub("", _own_answer(text).translate(_UNICODE_MINUS))
    explained = _explanatory(text)
    if re.search(r"\d|\\boxed|\\fbox", explained):  # unless the text is nothing but a check
        text = explained
    chosen = None
    for cand in _candidates(text):
        if chosen is None or _overrides(cand, chosen, text):
            chosen = cand
    if chosen is not None:
        return None if _hedged(text, chosen.pos) else chosen.value
    last = next((m for m in reversed(list(_NUM.finditer(text))) if not _list_marker(text, m.start(), m.end())), None)
    if last is None or _hedged(text, last.start()):
        return None
    return last.group().replace(",", "")


# "1. **Calculate…" / "2) Add…": a numbered step's number, never an answer (a cut-off solution
# often ends in one). At the very end of the text ("…\n2.") it is a step's number only when the line
# before is step n - 1: "18." alone closing a solution is an answer.
_LIST_MARKER = re.compile(r"[ \t]*(\d{1,2})[.)](?:[ \t]+(?=\S)|[ \t]*$)")


def _list_marker(text: str, start: int, end: int) -> bool:
    """Whether the number at ``text[start:end]`` numbers a step of a list."""
    line = text.rfind("\n", 0, start) + 1
    m = _LIST_MARKER.match(text, line)
    if not m or m.start(1) != start or m.end(1) != end:
        return False
    if text[m.end() :].strip():
        return True  # text follows on the step's line
    prev = _LIST_MARKER.match(text[:line].rstrip().rsplit("\n", 1)[-1])
    return prev is not None and int(prev.group(1)) == int(m.group(1)) - 1


# ---------------------------------------------------------------------------------------------
# math comparison

_PLAIN_NUM = re.compile(r"^-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^-?\.\d+$")
_LAYOUT = re.compile(r"\\left|\\right|\\[!,;: ]|\s+")  # sizing and spacing only
_MAX_SYMPY_CHARS = 400
# inputs that make sympy hang: power towers, huge exponents, huge factorials
_DANGEROUS = re.compile(r"(?:\^|\*\*)\s*[{(]?\s*(?:\d+\s*(?:\^|\*\*)|\d{5,})|\d{5,}\s*!")


def _normalize_math(s: str) -> str:
    """Drop layout (spaces, ``\\left``, ``\\,``) and dollar signs; ``\\dfrac`` → ``\\frac``."""
    s = _LAYOUT.sub("", s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac"))
    s = s.strip("$").rstrip(".")
    s = s.removeprefix("\\$").strip("$")
    return s


def _plain_number(s: str) -> Decimal | None:
    if not _PLAIN_NUM.match(s):
        return None
    try:
        return Decimal(s.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
        return None


def _fast(a: str, b: str) -> bool | None:
    """True/False when decidable without sympy, else None."""
    na, nb = _normalize_math(a), _normalize_math(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    x, y = _plain_number(na), _plain_number(nb)
    if x is not None and y is not None:
        return x == y
    return None


class _NoTimeoutNotice(logging.Filter):
    """math-verify warns once when its signal-based timeouts are off (worker threads); inputs that
    could hang sympy are kept away from it instead (``_DANGEROUS``, ``_MAX_SYMPY_CHARS``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.grader", "math_verify.parser"):
    logging.getLogger(_name).addFilter(_NoTimeoutNotice())


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@functools.lru_cache(maxsize=65536)
def _parsed(s: str, timeout: bool) -> tuple:
    """math-verify's parse of one answer (cached: one gold meets many answers)."""
    from math_verify import parse

    s = s.strip().strip("$").strip().rstrip(".")
    if not s or len(s) > _MAX_SYMPY_CHARS or _DANGEROUS.search(s):
        return ()
    try:
        return tuple(parse(f"${s}$", parsing_timeout=5 if timeout else None, raise_on_error=False))
    except BaseException as e:  # TimeoutException is a BaseException
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return ()


def _verify(gold: str, answer: str) -> bool:
    from math_verify import verify

    timeout = _in_main_thread()
    g, a = _parsed(gold, timeout), _parsed(answer, timeout)
    if not g or not a:
        return False
    try:
        return bool(verify(list(g), list(a), timeout_seconds=5 if timeout else None, raise_on_error=False))
    except BaseException as e:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return False


def math_equal(answer: str | None, gold: str) -> bool:
    """Whether a model's answer equals the gold answer (math-verify equivalence).

    Plain numbers and identical strings are decided without sympy.

    >>> math_equal("0.5", r"\\frac{1}{2}"), math_equal("1/2", r"\\frac{1}{2}")
    (True, True)
    >>> math_equal("25", "025"), math_equal(r"\\frac{1}{3}", "0.5"), math_equal(None, "1")
    (True, False, False)
    """
    if answer is None or gold is None:
        return False
    try:
        quick = _fast(answer, gold)
        return quick if quick is not None else _verify(gold, answer)
    except Exception:
        return False


def math_equivalent(a: str | None, b: str | None) -> bool:
    """Whether two model answers are the same answer (for majority-vote classes); symmetric.

    >>> math_equivalent(r"\\dfrac{3}{4}", "0.75"), math_equivalent("3", None)
    (True, False)
    """
    if a is None or b is None:
        return False
    try:
        quick = _fast(a, b)
        return quick if quick is not None else (_verify(a, b) or _verify(b, a))
    except Exception:
        return False


# ---------------------------------------------------------------------------------------------
# integers (AIME)

_INT_ANSWER = re.compile(r"^-?\d+(?:\.0*)?$")


def _as_integer(s: str | None) -> int | None:
    if s is None:
        return None
    s = re.sub(r"\\text\{\s*([^{}]*?)\s*\}", r"\1", s)
    s = re.sub(r"\\[$%]|[$%\s]|\\[,!;]|\^\\circ|\^\{\\circ\}|[{}]", "", s).rstrip(".")
    s = s.rpartition("=")[2].replace(",", "")
    if not _INT_ANSWER.match(s):
        return None
    return int(s.split(".")[0])


def extract_integer(text: str) -> str | None:
    """An AIME answer: :func:`extract_math`, then an integer in 0..999 as a canonical string.

    >>> extract_integer(r"The answer is $\\boxed{025}$."), extract_integer("so n = 25.0")
    ('25', '25')
    >>> extract_integer(r"\\boxed{\\frac{1}{2}}") is None
    True
    """
    n = _as_integer(extract_math(text))
    return str(n) if n is not None and 0 <= n <= 999 else None


def integer_equal(answer: str | None, gold: str) -> bool:
    """Integer equality that ignores zero padding and a ``.0``.

    >>> integer_equal("25", "025"), integer_equal("24", "025"), integer_equal(None, "1")
    (True, False, False)
    """
    a, g = _as_integer(answer), _as_integer(gold)
    return a is not None and a == g


# ---------------------------------------------------------------------------------------------
# multiple choice, yes/no

# a letter wrapped in LaTeX, brackets, quotes, backticks or emphasis → "(X)"
_WRAPPED_LETTER = (
    re.compile(
        r"\\\(\s*(?:\\(?:text|textbf|mathrm|mathbf)\s*\{\s*\(?\s*([A-Za-z])\s*\)?\s*\}"
        r"|\(?\s*([A-Z])\s*\)?)\s*\\\)"
    ),
    re.compile(
        r"(?<!\$)\$\s*(?:\\(?:text|textbf|mathrm|mathbf)\s*\{\s*\(?\s*([A-Za-z])\s*\)?\s*\}"
        r"|\(?\s*([A-Z])\s*\)?)\s*\$(?!\$)"
    ),
    re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{\s*\(?\s*([A-Za-z])\s*\)?\s*\}"),
    re.compile(r"\[\s*([A-Za-z])\s*\](?!\()"),
    re.compile(r"(?<![A-Za-z])['\"`‘“]\s*([A-Za-z])\s*['\"`’”](?![A-Za-z])"),
    re.compile(r"(?<!\*)\*([A-Za-z])\*(?!\*)"),
)
_NOUN = r"(?:answer|choice|option|fit|ending|completion|continuation|response)"
_LIKELY = (
    r"(?:likely|plausible|logical|appropriate|reasonable|sensible|natural|accurate|suitable|fitting|"
    r"coherent|consistent|probable|correct)"
)
# what is said of the chosen letter: "B is correct", "Ending C makes the most sense", "D best fits"
_POSITIVE = (
    rf"(?:is|seems|appears|looks|would\s+be|must\s+be)\s+(?:to\s+be\s+)?(?:the\s+|a\s+)?"
    rf"(?:correct|right|true|accurate|answer|(?:most|more|best)\s+(?:{_LIKELY}|{_NOUN})"
    rf"|(?:best|right|correct|{_LIKELY})\s+(?:{_NOUN}|one))\b"
    rf"|makes\s+(?:the\s+most\s+|more\s+|the\s+best\s+|perfect\s+|complete\s+)?sense"
    rf"|stands\s+out\s+as\s+(?:the\s+|a\s+)?(?:only\s+|most\s+)?(?:right|best|true|{_LIKELY})\b"
    rf"|(?:best\s+)?(?:fits|completes|answers|describes|matches|continues)\b"
)
# a statement in a clause that negates or conditions it: "If we choose A", "not A", "why B is wrong"
_NEGATION = re.compile(
    r"\b(?:not|n't|never|if|unless|whether|why|than|instead\s+of|rather\s+than)\b"
    r"[^.,;:!?\n]*$",
    re.IGNORECASE,
)
# the article "A good…" and the pronoun "I think…" are not letters; "A is correct", "I because…" are
_NOT_A_LETTER_AFTER = (
    r"(?!(?<=[AI])(?:\s*['’]|\s+(?!(?:is|because|since|as|and|or|makes|seems|fits|"
    r"best|would|was|describes|completes|matches|answers|continues|appears|looks|must|"
    r"should)\b)[a-z]))"
)


def _bare(up: str, name: str = "") -> str:
    """A capital standing alone as a letter: not in a word, not the article in "A good…" nor the
    pronoun in "I think"."""
    group = f"(?P<{name}>[{up}])" if name else f"[{up}]"
    return rf"(?<![A-Za-z0-9'’]){group}(?![A-Za-z0-9'’]){_NOT_A_LETTER_AFTER}"


@functools.lru_cache(maxsize=32)
def _choice_patterns(letters: str) -> tuple[re.Pattern, ...]:
    up = re.escape("".join(sorted(set(letters.upper()))))
    lo = up.lower()

    def tok(i: int) -> str:  # "(X)"/"(x)" or a bare capital; named groups hold the letter
        return rf"(?:\((?P<w{i}>[{up}{lo}])\)|{_bare(up, f'b{i}')})"

    solo = rf"(?:\([{up}{lo}]\)|{_bare(up)})"
    low_end = rf"(?<![A-Za-z0-9'’])(?P<l0>[{lo}])(?=\s*(?:[.,;:!)]|$))"
    label = r"(?:(?:option|choice|answer|ending|letter)\s*)?"
    pre = r"\s*[:\-–—=]?\s*"
    statement = (
        r"(?:(?:(?:final|correct|right|best|most\s+\w+|my)\s+)?(?:answer|choice|option|ending|"
        r"completion|continuation|response|pick)s?|(?:correct|right|best)\s+one)\s*"
        r"(?:(?:is|are(?!\s*:)|would\s+be|will\s+be|should\s+be|must\s+be)\s*|(?<!s):\s*)"  # not "choices:"
        rf"{pre}{label}"
    )
    verb = (
        r"(?:choose|pick|select|go\s+with|opt\s+for|say|guess|choosing|picking|selecting|going\s+with|"
        r"corresponds?\s+to|corresponding\s+to)\s+" + label
    )
    conclusion = r"(?:therefore|thus|so|hence|overall|in\s+conclusion|in\s+summary)[,:]?\s+(?:the\s+)?" + label
    explicit = re.compile(
        rf"(?i:{statement}|{verb})(?:{tok(1)}|{low_end})"
        rf"|(?i:{conclusion}){tok(2)}(?=\s*(?:[.!,;)]|$))"
        rf"|(?<![A-Za-z])(?i:{label}){tok(3)}\s*(?:[-–—:,]\s*[^.\n]{{0,60}}?\s)?(?i:{_POSITIVE})"
    )
    start = re.compile(
        rf"^\s*(?i:{label})(?:{tok(1)}|(?P<l1>[{lo}])\))"
        rf"(?:(?<=\))\s|(?=\s*(?:[.):\-–—,]\s|[.:)]?\s*(?:\n|$))))"
    )
    end = re.compile(rf"(?:^|\s){tok(1)}[.!]?\s*$")
    bold = re.compile(rf"\*\*\s*(?:\((?P<w1>[{up}])\)|(?P<b1>[{up}])(?:[.:)]|\s*\*\*))")
    hedge_after = re.compile(
        rf"^\s*(?:,\s*(?:and\s+|or\s+)?|\s+(?:and|or|and/or)\s+|\s*[/&]\s*)"
        rf"(?i:{label}){solo}(?!\s+(?:is|was|seems)\b)"
    )
    hedge_before = re.compile(
        rf"(?:\b(?i:either|both|between)\s+(?i:{label})"
        rf"|{solo}\s*(?:,|\s+and|\s+or|/|&)\s*(?i:{label}))$"
    )
    return explicit, start, bold, end, hedge_after, hedge_before


def _letter_group(m: re.Match) -> str:
    return next(k for k, v in m.groupdict().items() if v)


def _wrapped_letter(m: re.Match) -> str:
    assert m.lastindex is not None  # every alternative of _WRAPPED_LETTER captures the letter
    return f"({m.group(m.lastindex)})"


def _unwrap_letters(text: str) -> str:
    text = re.sub(r"\*\*\s*\(?([A-Za-z])\)?\s*\*\*(?=\s*(?:$|[.\n]))", r"(\1)", text)  # "**B**" ending a line
    for pat in _WRAPPED_LETTER:
        text = pat.sub(_wrapped_letter, text)
    return text.replace("**", "").replace("__", "")


def extract_choice(text: str, letters: str = "ABCD") -> str | None:
    """The chosen letter of a multiple-choice answer, or None (no choice, or a hedge).

    Letters may be wrapped: ``(B)``, ``[B]``, ``**B**``, ``'B'``, `` ``B`` ``, ``\\(\\text{B}\\)``,
    ``$B$``, ``\\boxed{B}``. In order: the last ``\\boxed{…}`` holding one letter; the last explicit
    choice ("The answer is (B)", "Answer: B", "I would choose B", "so B is the right choice",
    "B is correct", "Ending C makes the most sense"; not "(A) is incorrect"); a letter opening the
    text ("B\\n\\nExplanation: …", "(B) Paris", "B. Paris"); the last bold ``**B. …**``; a lone
    letter closing it. A choice between letters ("A or B", "Either B or C", "A and B",
    ``\\boxed{B, D}``) is a hedge and extracts None. The article "A" and the pronoun "I" in
    "I think…" are never taken for letters, nor roman-numeral statements ("I and III only").
    "The third one/option" is the third letter; an option line closing the text ("E. bookstore")
    is a choice unless it ends a relisted option list; an answer given before an "Explanation:"
    stands, whatever options the explanation goes on to discuss.

    >>> extract_choice("The answer is (B)."), extract_choice("answer: c"), extract_choice("B) Paris")
    ('B', 'C', 'B')
    >>> extract_choice("B\\n\\nExplanation: London (A) is in England.")
    'B'
    >>> extract_choice("(A) is incorrect, (B) is correct."), extract_choice("so B is the right choice.")
    ('B', 'B')
    >>> extract_choice("I would choose **[C]** because…"), extract_choice(r"Answer: \\(\\text{D}\\)")
    ('C', 'D')
    >>> extract_choice("Either B or C.") is None, extract_choice("A good question.") is None
    (True, True)
    >>> extract_choice("so the best answer is the third one."), extract_choice("Go to a shop.\\n\\nE. shop", "ABCDE")
    ('C', 'E')
    >>> extract_choice("Statements I and III hold, which corresponds to option (C) I and III only.", "ABCDEFGHIJ")
    'C'
    >>> extract_choice("Answer: A\\nExplanation: Option B is wrong, and Option D describes an eclipse.")
    'A'
    >>> extract_choice("Looking at the choices:\\n\\nA. Paris\\nB. Rome\\nC. Oslo") is None
    True
    """
    if not text:
        return None
    valid = set(letters.upper())
    text = _own_answer(text)
    for content in reversed(_boxed_contents(text)):
        c = re.sub(r"\\(?:text|textbf|mathrm)\s*\{([^{}]*)\}", r"\1", content).strip()
        m = re.fullmatch(r"\(?\s*([A-Za-z])\s*\)?(?:[\s.:)\\~,]+[^,]*)?", c)
        if m and m.group(1).upper() in valid and not re.search(r"\b[A-Z]\b.*\b[A-Z]\b", c.replace("\\", " ")):
            return m.group(1).upper()
        if re.fullmatch(r"[\s(]*[A-Za-z][\s)]*(?:(?:,|and|or|&)[\s(]*[A-Za-z][\s)]*)+", c):
            return None  # "\boxed{B, D}"
    head, explanation = _before_explanation(text)
    if explanation is not None and not _CORRECTION.search(explanation):
        answer = extract_choice(head, letters)  # "Answer: A\nExplanation: Option B is wrong because…"
        if answer is not None:
            return answer
    plain = _ordinals_as_letters(_roman_statements_masked(_unwrap_letters(text)), letters)
    explicit, start, bold, end, hedge_after, hedge_before = _choice_patterns(letters)
    found = [m for m in explicit.finditer(plain) if not _NEGATION.search(_clause_before(plain, m.start()))]
    if found:
        return _unless_hedged(plain, found[-1], hedge_after, hedge_before)
    for pat, source in ((start, plain), (bold, text)):
        found = list(pat.finditer(source))
        if found:
            return _unless_hedged(source, found[-1] if pat is bold else found[0], hedge_after, hedge_before)
    closing = _closing_option(plain, letters)
    if closing:
        return closing
    found = list(end.finditer(plain))
    return _unless_hedged(plain, found[0], hedge_after, hedge_before) if found else None


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
_ORDINAL_OPTION = re.compile(rf"\bthe\s+({'|'.join(_ORDINALS)})\s+(?:one|option|choice|answer)\b", re.IGNORECASE)
# roman-numeral statements ("Statements I and III", "I, II and IV only") are not letters
_ROMAN = r"(?:IV|IX|V?I{1,3}|V|X)"
_ROMAN_STATEMENTS = re.compile(
    rf"(?:(?<=\b[Ss]tatement\s)|(?<=\b[Ss]tatements\s)){_ROMAN}\b"
    rf"|\b{_ROMAN}(?:\s*(?:,|and|or|&)\s*{_ROMAN}\b)+"
)


_OPTION_LINE = re.compile(r"^\s*\(?([A-Za-z])\)?[.):]\s+(\S.{0,60})$")


def _closing_option(text: str, letters: str) -> str | None:
    """The letter of an option line closing the text ("…go to a bookstore.\\n\\nE. bookstore"), unless
    the line before is an option line too (a relisted option list)."""
    lines = [line for line in text.splitlines() if line.strip()]
    last = _OPTION_LINE.match(lines[-1]) if lines else None
    if not last or last.group(1) not in letters.upper() or (len(lines) > 1 and _OPTION_LINE.match(lines[-2])):
        return None
    return last.group(1)


def _ordinals_as_letters(text: str, letters: str) -> str:
    """ "the third one/option" → "(C)" (when there is a third letter)."""

    def letter(m: re.Match) -> str:
        i = _ORDINALS.index(m.group(1).lower())
        return f"({letters[i].upper()})" if i < len(letters) else m.group()

    return _ORDINAL_OPTION.sub(letter, text)


def _roman_statements_masked(text: str) -> str:
    return _ROMAN_STATEMENTS.sub(lambda m: "#" * len(m.group()), text)


def _before_explanation(text: str) -> tuple[str, str | None]:
    """The text before an "Explanation:" heading and the explanation (None without one)."""
    m = _EXPLANATION.search(text)
    return (text[: m.start()], text[m.start() :]) if m and m.start() > 0 else (text, None)


def _clause_before(text: str, pos: int) -> str:
    return re.split(r"[.,;:!?\n]", text[max(0, pos - 80) : pos])[-1]


def _unless_hedged(text: str, m: re.Match, after: re.Pattern, before: re.Pattern) -> str | None:
    """The matched letter, or None when another letter is offered with it ("A or B", "either B or C")."""
    start, end = m.span(_letter_group(m))
    if text[end : end + 1] == ")":
        end += 1
    if start and text[start - 1] == "(":
        start -= 1
    if after.search(text[end : end + 40]) or before.search(text[max(0, start - 40) : start]):
        return None
    return m.group(_letter_group(m)).upper()


_YES_NO = {"yes": "yes", "true": "yes", "no": "no", "false": "no", "untrue": "no", "incorrect": "no"}
_YN = r"(?:yes|no|true|false)"
# "the answer is no", "Answer: **Yes**", "…, so yes." (not "so no one…")
# "…, but actually no —": a correction of the opening word
_YN_STATEMENT = re.compile(
    rf"answer\s*(?:is|:)\s*:?[\s*\"'“”‘’]*({_YN})\b"
    rf"|\b(?:so|therefore|thus|hence|in\s+short|in\s+conclusion|overall|ultimately|"
    rf"actually)[,:]?\s+[*\"'“”‘’]*({_YN})\b(?![ \t]+[a-z])",
    re.IGNORECASE,
)
_AFTER_VERDICT = (
    r"(?=\s*(?:[,.!;:?)\]*—–-]|$)"
    r"|\s+(?:it|it's|its|the|this|that|he|she|they|there|you|we|i|not)\b)"
)
# verdict words: "Yes", "Nope", "Absolutely not", "No," (not the determiner in "no mention", "No doubt")
_YN_VERDICT = re.compile(
    rf"\b(?P<no>nope|nah|(?:absolutely|definitely|certainly|of\s+course|surely)\s+not|"
    rf"not\s+(?:really|at\s+all)|"
    rf"no{_AFTER_VERDICT}|I\s+(?:don['’]t|do\s+not)\s+(?:think|believe)\s+so)"
    rf"|\b(?P<yes>yes|yeah|yep|yup|I\s+(?:think|believe)\s+so)\b"
    rf"|^\W*(?:(?P<yes2>absolutely|definitely|certainly|of\s+course|indeed|exactly|true|correct|right|"
    rf"that(?:['’]s|\s+is)\s+(?:correct|right|true|accurate))"
    rf"|(?P<no2>false|incorrect|wrong|that(?:['’]s|\s+is)\s+(?:incorrect|wrong|false|not\s+(?:true|correct|right))))"
    rf"{_AFTER_VERDICT}",
    re.IGNORECASE,
)
_TRUE_FALSE = re.compile(
    r"\b(?P<neg>(?:not|n't|never)\s+(?:\w+\s+)?)?(?P<word>true|false|untrue|incorrect)\b", re.IGNORECASE
)
# "Yes and no", "There's no definitive answer; some sources say yes and others say no", "It depends"
_YN_HEDGE = re.compile(
    r"\b(?:yes\s*(?:and|or|/)\s*no|no\s*(?:and|or|/)\s*yes)\b"
    r"|\bno\s+(?:definitive|definite|clear(?:-cut)?|simple|single|straightforward)\s+"
    r"(?:yes[- ]or[- ]no\s+)?answer\b|^\W*it\s+depends\b"
    r"|\bsay\s+(?:yes|no)\b[^.;!?\n]{0,30}\bothers?\s+(?:say\s+)?(?:yes|no)\b",
    re.IGNORECASE,
)


def extract_yes_no(text: str) -> str | None:
    """BoolQ: "yes" or "no" (True/False map to them), or None.

    In order: the last explicit verdict ("the answer is no", "…, so yes."); the first verdict word
    ("Yes", "No,", "Nope", "Absolutely not", "Not really", a leading "True"/"False") — the
    determiner in "no mention" or "No doubt" is not one; the first true/false, negated by a
    "not" before it ("It is not true that…", and "It's not incorrect" is a yes). A correction
    ("Yes, that's the belief, but actually no") overrides the opening word; agreement ("That's
    correct", "Exactly", "I think so") is a yes, disagreement ("That's wrong", "I don't think so")
    a no. "Yes and no", "There's no definitive answer", "some say yes, others no" and "It depends"
    are hedges and extract None.

    >>> extract_yes_no("Yes, the lake is deep."), extract_yes_no("False."), extract_yes_no("Maybe")
    ('yes', 'no', None)
    >>> extract_yes_no("There is no mention of a sequel, so yes."), extract_yes_no("It is not true.")
    ('yes', 'no')
    >>> extract_yes_no("Nope."), extract_yes_no("Absolutely not."), extract_yes_no("Yes and no.") is None
    ('no', 'no', True)
    >>> extract_yes_no("That's correct."), extract_yes_no("I don't think so."), extract_yes_no("It's not incorrect.")
    ('yes', 'no', 'yes')
    >>> extract_yes_no("Yes, that's the belief, but actually no — it is a myth.")
    'no'
    >>> extract_yes_no("There's no definitive answer; some say yes and others say no.") is None
    True
    """
    if not text:
        return None
    text = _own_answer(text)
    if _YN_HEDGE.search(text):
        return None
    found = list(_YN_STATEMENT.finditer(text))
    if found:
        return _YES_NO[(found[-1].group(1) or found[-1].group(2)).lower()]
    m = _YN_VERDICT.search(text)
    if m:
        return "yes" if (m.group("yes") or m.group("yes2")) else "no"
    m = _TRUE_FALSE.search(text)
    if m:
        value = _YES_NO[m.group("word").lower()]
        return ("no" if value == "yes" else "yes") if m.group("neg") else value
    return None


# ---------------------------------------------------------------------------------------------
# code

_FENCE = re.compile(r"^([ \t]*)```[ \t]*([\w+#.-]*)[^\n]*\n?", re.MULTILINE)
_ALIASES = {"python": {"python", "py", "python3"}}
_DEFINES = re.compile(r"^(?:async\s+)?def\s+(?!test)(\w+)|^class\s+(?!Test)(\w+)", re.MULTILINE)
_READS_STDIN = re.compile(r"\binput\s*\(|\bsys\.stdin\b|\bopen\(\s*0\b")
_CALLS = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\(")
_BUILTINS = frozenset(dir(builtins))


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(tag, body) of every fenced block; an indented fence (in a list) has its indent removed, an
    unterminated final fence (a truncated generation) runs to the end."""
    blocks: list[tuple[str, str]] = []
    pos = 0
    while True:
        m = _FENCE.search(text, pos)
        if not m:
            break
        close = text.find("```", m.end())
        body = text[m.end() :] if close < 0 else text[m.end() : close]
        indent = len(m.group(1).expandtabs())
        if indent:
            body = re.sub(rf"(?m)^[ \t]{{0,{indent}}}", "", body)
            body = body.rstrip(" \t")
        blocks.append((m.group(2).lower(), body))
        if close < 0:
            break
        nl = text.find("\n", close)
        pos = len(text) if nl < 0 else nl + 1
    return blocks


def _defines(body: str, name: str) -> bool:
    return (
        re.search(
            rf"^[ \t]*(?:async\s+)?def\s+{re.escape(name)}\s*\(|^[ \t]*class\s+{re.escape(name)}\b", body, re.MULTILINE
        )
        is not None
    )


def _with_helpers(body: str, others: list[str]) -> str:
    """``body`` preceded by the other blocks that define functions it calls but does not define."""
    defined = {a or b for a, b in _DEFINES.findall(body)}
    missing = {n for n in _CALLS.findall(body) if n not in defined and n not in _BUILTINS}
    helpers = [b for b in others if b is not body and missing & {x or y for x, y in _DEFINES.findall(b)}]
    return "\n".join(helpers + [body])


def extract_code(text: str, language: str = "python", entry_point: str | None = None) -> str:
    """Code from a completion.

    The candidate blocks are the fenced blocks tagged with the language (python/py/python3 for
    Python), else the untagged ones. With ``entry_point`` (the function the tests call): the last
    block that defines it, with the blocks of helpers it calls; otherwise — or when no block
    defines it — the last block that is a program (defines a function or class other than a
    test, or reads stdin), so an "Example usage" block after the solution is not taken; else the
    last candidate block; else, without fences, the text itself when it is code (a plain
    completion) or the definitions in it, without the prose around them. An unterminated final
    fence (a truncated generation) yields what follows it.

    >>> extract_code("Here:\\n```python\\ndef f():\\n    return 1\\n```\\nDone.")
    'def f():\\n    return 1\\n'
    >>> extract_code("```python\\ndef f(x):\\n    return x\\n```\\nUsage:\\n```python\\nprint(f(2))\\n```")
    'def f(x):\\n    return x\\n'
    >>> extract_code("```python\\ndef g(): pass\\n```\\n```python\\ndef f(): pass\\n```", entry_point="g")
    'def g(): pass\\n'
    >>> extract_code("```\\nprint(1)"), extract_code("def f(): pass")
    ('print(1)', 'def f(): pass')
    >>> extract_code("Like this:\\n\\ndef f(x):\\n    return 2 * x\\n\\nFor example, f(2) returns 4.")
    'def f(x):\\n    return 2 * x\\n'
    """
    tags = _ALIASES.get(language.lower(), {language.lower()})
    blocks = _fenced_blocks(text)
    tagged = [body for tag, body in blocks if tag in tags]
    untagged = [body for tag, body in blocks if tag == ""]
    if entry_point:
        code = [body for tag, body in blocks if tag in tags or not tag]
        for body in reversed(code):
            if _defines(body, entry_point):
                return _with_helpers(body, code)
    candidates = tagged or untagged
    for body in reversed(candidates):
        if _DEFINES.search(body) or _READS_STDIN.search(body):
            return body
    return candidates[-1] if candidates else _unfenced_code(text)


# a line that belongs to an unfenced definition: indented, blank, or top-level code that defines or imports
_CODE_LINE = re.compile(r"^(?:[ \t]+\S|\s*$|(?:async\s+def|def|class|import|from|@)\b)")


def _unfenced_code(text: str) -> str:
    """The definitions of an answer without fences: the whole text when it is code (a plain
    completion, or a function body), else the lines from the first top-level ``def``/``class``/
    ``import`` on while they are code ("Here it is:\\n\\ndef f(x):\\n    …\\n\\nFor example, …")."""
    if _parses(text) or not text.strip() or text.lstrip("\n")[:1] in (" ", "\t"):
        return text
    lines = text.splitlines(keepends=True)
    first = next(
        (i for i, line in enumerate(lines) if _DEFINES.match(line) or re.match(r"(?:import|from)\s", line)), None
    )
    if first is None:
        return text
    last = first + 1
    while last < len(lines) and _CODE_LINE.match(lines[last]):
        last += 1
    return "".join(lines[first:last]).rstrip() + "\n"


def _parses(code: str) -> bool:
    try:
        compile(code, "<answer>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# free text

_PUNCT = re.compile(r"[^\w\s]|_")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def normalize_text(text: str) -> str:
    """SQuAD-style normalisation: lowercase, no punctuation, no articles, single spaces.

    >>> normalize_text("  The Eiffel-Tower, in PARIS! ")
    'eiffeltower in paris'
    """
    s = _PUNCT.sub("", text.lower())
    return " ".join(_ARTICLES.sub(" ", s).split())


_scorer = None
_scorer_lock = threading.Lock()


def _rouge_scorer():
    global _scorer
    if _scorer is None:
        with _scorer_lock:
            if _scorer is None:
                from rouge_score.rouge_scorer import RougeScorer

                _scorer = RougeScorer(["rougeL"], use_stemmer=True)
    return _scorer


def rouge_l(prediction: str, references: Sequence[str]) -> float:
    """The best ROUGE-L F-measure of a prediction over its references (stemmed), 0.0 if none.

    >>> rouge_l("the cat sat on the mat", ["a cat sat on a mat", "dogs bark"])
    0.6666666666666666
    >>> rouge_l("anything", [])
    0.0
    """
    if isinstance(references, str):
        references = [references]
    scorer = _rouge_scorer()
    return max((scorer.score(r, prediction)["rougeL"].fmeasure for r in references), default=0.0)
