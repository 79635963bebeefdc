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
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Sequence

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
    return (s[len(_OPEN):] if s.startswith(_OPEN) else s).strip()


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
_ANSWER_IS = re.compile(r"answer\s*(?:is\b|:|would\s+be\b|will\s+be\b|should\s+be\b|must\s+be\b|=)\s*:?"
                        r"|^#{4}(?!#)", re.IGNORECASE | re.MULTILINE)
# a number: thousands-separated or plain, optional decimals or a simple fraction; a minus sign
# only where it cannot be a binary minus ("16-3" gives 3, not -3)
_NUM = re.compile(r"(?<![\w)\]}.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+|/\d+)?(?!\d)")
_UNICODE_MINUS = str.maketrans({"\u2212": "-", "\ufe63": "-", "\uff0d": "-"})
# a concluding clause: "So the total is 18", "…, so 20 - 2 = 18", "Therefore, she earns $90"
_CONCLUSION = re.compile(
    r"(?:^|(?<=[.!?;:,—]))[ \t]*(?:[-*#>]+\s*)?(?:and\s+)?"
    r"(?:so(?!\s+(?:that|far|on|much|many|long|if)\b)|therefore|thus|hence|in\s+total|altogether|overall|"
    r"in\s+all|finally|in\s+conclusion|consequently|the\s+(?:total|final|overall|combined)\b)\b[,:]?",
    re.IGNORECASE | re.MULTILINE)
_VERB = re.compile(r"\b(?:is|are|was|were|be|equals?|has|have|had|gets?|got|makes?|made|earns?|earned|"
                   r"pays?|paid|spends?|spent|needs?|costs?|sells?|sold|totals?|comes\s+to|remains?|"
                   r"receives?|saves?|saved|owes?|buys?|bought|uses?|used|takes?|took|covers?|weighs?)\b",
                   re.IGNORECASE)
# a self-correction: what follows it overrides an earlier answer
_CORRECTION = re.compile(
    r"\b(?:wait|actually|oops|correction|hold\s+on|on\s+second\s+thought|scratch\s+that|my\s+(?:mistake|bad)|"
    r"I\s+(?:made\s+(?:a|an)\s+(?:mistake|error)|forgot|miscalculated|was\s+wrong|dropped|missed)|"
    r"let\s+me\s+(?:redo|recalculate|correct|fix)|"
    r"that(?:'s|\s+is|\s+was)\s+(?:wrong|incorrect|not\s+right))\b",
    re.IGNORECASE)
# "either 16 or 18", "\boxed{33} or \boxed{34}": two values offered for one answer
_HEDGE_BEFORE = re.compile(r"[\d}]\s*\$?\s*,?\s+or\s+(?:\\\$|\$)?\s*$")
# what follows a verb that states the result: "is 18", "earns $90", "is $\\frac{5}{12}$", "has about 30"
_VALUE_NEXT = re.compile(r"\s*(?:\*\*|\\?\$|\\\(|about\s+|only\s+|exactly\s+|a\s+total\s+of\s+|"
                         r"left\s+(?:with\s+)?)*-?(?:\d|\\[a-z])")
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\bapprox)\.(?=\s|$)|[!?\n]")
# a bare number opening the answer: "95\n\n…", "$95. He spent…" (not a numbered list "1. First…")
_OPENING = re.compile(r"\s*(?:\*\*)?(\\?\$)?(-?\d[\d,]*(?:\.\d+)?)(?:\*\*)?"
                      r"(?:[ \t]*(?:\n|$)|\.[ \t]*(?:\n|$)|(\.\s))")
# a formula alone on the first line: "$\\frac{3}{5}$\\n\\nExplanation: …"
_OPENING_FORMULA = re.compile(r"\s*(\$\$?[^$\n]+\$\$?|\\\(.+?\\\)|\\\[.+?\\\])[ \t.]*(?:\n|$)")
# "= 360 minutes, or 6 hours", "= 0.25, i.e. 25%": the result restated in the asked unit
_RESTATED = re.compile(r"^[^,;=]*?,?\s+(?:or|i\.e\.|that\s+is|which\s+is)\s+(?=(?:about\s+)?\\?\$?-?\d)")
# a number closing its sentence, at most a few unit words after it ("is 35 centimetres.")
_CLOSING_NUMBER = re.compile(r"^(?:\s*(?:%|\\%|[A-Za-z]+\.?|per|of|each|in\s+total)){0,3}\W*$")
_CALC = re.compile(r"<<[^<>]*>>")  # GSM8K calculator annotations: "<<4+5=9>>9"


@dataclass(frozen=True)
class _Candidate:
    pos: int    # where the answer starts in the text
    rank: int   # 3 boxed, 2 answer statement, 1 concluding clause or the last sentence's result
    kind: str   # "box" | "statement" | "conclusion" | "final"
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
                out.append((m.start(), text[i + 1:j].strip()))
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
            if end and not (opener == "$" and _PROSE.search(s[1:end.start()])):  # "$2 in change, since $50"
                return s[len(opener):end.start()].strip().rstrip(".").strip()
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
    m = _RESTATED.match(tail)
    return tail[m.end():] if m else tail


def _sentence_end(text: str, start: int) -> int:
    m = _SENTENCE_END.search(text, start)
    return m.start() if m else len(text)


def _statements(text: str, boxes: list[tuple[int, str]]) -> list[_Candidate]:
    found = []
    for m in _ANSWER_IS.finditer(text):
        end = _sentence_end(text, m.end())
        if any(m.end() <= p < end for p, _ in boxes):  # "the answer is $\boxed{5}$": the box speaks
            continue
        value = _clean_tail(text[m.end():])
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
        clause = text[m.end():_sentence_end(text, m.end())]
        if _ANSWER_IS.search(clause):  # "So the final answer is $x = 5$": the statement speaks
            continue
        eq = clause.rfind("=")
        tail = _restated(clause[eq + 1:]) if eq >= 0 else next(
            (clause[v.end():] for v in _VERB.finditer(clause) if _VALUE_NEXT.match(clause, v.end())),
            clause if _VALUE_NEXT.match(clause) else "")
        value = _numeric(tail) if tail else None
        if value:
            found.append(_Candidate(m.end() + len(clause) - len(tail), 1, "conclusion", value))
    return found


def _final_sentence(text: str, after: int) -> _Candidate | None:
    """The result of the last sentence with a number: after its last "=", else its last number when
    it closes the sentence ("…, leaving him with 10."; not "Note that 5 of the cans were dented.");
    None when that sentence holds a concluding connective (position >= ``after``)."""
    starts = [0] + [m.end() for m in _SENTENCE_END.finditer(text)]
    for a, b in reversed(list(zip(starts, starts[1:] + [len(text)]))):
        sentence = text[a:b]
        if not re.search(r"\d", sentence):
            continue
        if after >= a:
            return None
        eq = sentence.rfind("=")
        if eq >= 0:
            eq = len(sentence) - len(_restated(sentence[eq + 1:])) - 1
        nums = list(_NUM.finditer(sentence, eq + 1 if eq >= 0 else 0))
        if not nums:
            return None
        num = nums[0] if eq >= 0 else nums[-1]
        if eq < 0 and not _CLOSING_NUMBER.match(sentence[num.end():]):
            return None
        return _Candidate(a + num.start(), 1, "final", num.group().replace(",", ""))
    return None


def _candidates(text: str) -> list[_Candidate]:
    boxes = _boxes(text)
    found = [_Candidate(p, 3, "box", c) for p, c in boxes] + _statements(text, boxes)
    conclusions = _conclusions(text)
    final = _final_sentence(text, max((m.start() for m in _CONCLUSION.finditer(text)), default=-1))
    found += conclusions + ([final] if final else [])
    return sorted(found, key=lambda c: c.pos)


def _overrides(later: _Candidate, current: _Candidate, text: str) -> bool:
    """Whether a later candidate replaces the current one: as strong or stronger; a concluding clause
    after an answer statement; anything after a self-correction ("Wait, I forgot the 2 she ate")."""
    if later.rank >= current.rank:
        return True
    if later.kind == "conclusion" and current.kind == "statement":
        return True
    return bool(_CORRECTION.search(text, current.pos, later.pos))


def _hedged(text: str, pos: int) -> bool:
    return bool(_HEDGE_BEFORE.search(text[max(0, pos - 40):pos]))


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
    """
    if not text:
        return None
    text = _CALC.sub("", _own_answer(text).translate(_UNICODE_MINUS))
    chosen = None
    for cand in _candidates(text):
        if chosen is None or _overrides(cand, chosen, text):
            chosen = cand
    if chosen is not None:
        return None if _hedged(text, chosen.pos) else chosen.value
    nums = list(_NUM.finditer(text))
    if not nums or _hedged(text, nums[-1].start()):
        return None
    return nums[-1].group().replace(",", "")


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
        return bool(verify(list(g), list(a), timeout_seconds=5 if timeout else None,
                           raise_on_error=False))
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
    re.compile(r"\\\(\s*(?:\\(?:text|textbf|mathrm|mathbf)\s*\{\s*\(?\s*([A-Za-z])\s*\)?\s*\}"
               r"|\(?\s*([A-Z])\s*\)?)\s*\\\)"),
    re.compile(r"(?<!\$)\$\s*(?:\\(?:text|textbf|mathrm|mathbf)\s*\{\s*\(?\s*([A-Za-z])\s*\)?\s*\}"
               r"|\(?\s*([A-Z])\s*\)?)\s*\$(?!\$)"),
    re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{\s*\(?\s*([A-Za-z])\s*\)?\s*\}"),
    re.compile(r"\[\s*([A-Za-z])\s*\](?!\()"),
    re.compile(r"(?<![A-Za-z])['\"`‘“]\s*([A-Za-z])\s*['\"`’”](?![A-Za-z])"),
    re.compile(r"(?<!\*)\*([A-Za-z])\*(?!\*)"),
)
_NOUN = r"(?:answer|choice|option|fit|ending|completion|continuation|response)"
_LIKELY = (r"(?:likely|plausible|logical|appropriate|reasonable|sensible|natural|accurate|suitable|fitting|"
           r"coherent|consistent|probable|correct)")
# what is said of the chosen letter: "B is correct", "Ending C makes the most sense", "D best fits"
_POSITIVE = (rf"(?:is|seems|appears|looks|would\s+be|must\s+be)\s+(?:to\s+be\s+)?(?:the\s+|a\s+)?"
             rf"(?:correct|right|true|accurate|answer|(?:most|more|best)\s+(?:{_LIKELY}|{_NOUN})"
             rf"|(?:best|right|correct|{_LIKELY})\s+(?:{_NOUN}|one))\b"
             rf"|makes\s+(?:the\s+most\s+|more\s+|the\s+best\s+|perfect\s+|complete\s+)?sense"
             rf"|stands\s+out\s+as\s+(?:the\s+|a\s+)?(?:only\s+|most\s+)?(?:right|best|true|{_LIKELY})\b"
             rf"|(?:best\s+)?(?:fits|completes|answers|describes|matches|continues)\b")
# a statement in a clause that negates or conditions it: "If we choose A", "not A", "why B is wrong"
_NEGATION = re.compile(r"\b(?:not|n't|never|if|unless|whether|why|than|instead\s+of|rather\s+than)\b"
                       r"[^.,;:!?\n]*$", re.IGNORECASE)
# the article "A good…" and the pronoun "I think…" are not letters; "A is correct", "I because…" are
_NOT_A_LETTER_AFTER = (r"(?!(?<=[AI])(?:\s*['’]|\s+(?!(?:is|because|since|as|and|or|makes|seems|fits|"
                       r"best|would|was|describes|completes|matches|answers|continues|appears|looks|must|"
                       r"should)\b)[a-z]))")


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
    statement = (r"(?:(?:(?:final|correct|right|best|most\s+\w+|my)\s+)?(?:answer|choice|option|ending|"
                 r"completion|continuation|response|pick)s?|(?:correct|right|best)\s+one)\s*"
                 r"(?:(?:is|are|would\s+be|will\s+be|should\s+be|must\s+be)\s*|:\s*)"
                 rf"{pre}{label}")
    verb = (r"(?:choose|pick|select|go\s+with|opt\s+for|say|guess|choosing|picking|selecting|going\s+with)\s+"
            + label)
    conclusion = (r"(?:therefore|thus|so|hence|overall|in\s+conclusion|in\s+summary)[,:]?\s+(?:the\s+)?"
                  + label)
    explicit = re.compile(
        rf"(?i:{statement}|{verb})(?:{tok(1)}|{low_end})"
        rf"|(?i:{conclusion}){tok(2)}(?=\s*(?:[.!,;)]|$))"
        rf"|(?<![A-Za-z])(?i:{label}){tok(3)}\s*(?:[-–—:,]\s*[^.\n]{{0,60}}?\s)?(?i:{_POSITIVE})")
    start = re.compile(rf"^\s*(?i:{label})(?:{tok(1)}|(?P<l1>[{lo}])\))"
                       rf"(?:(?<=\))\s|(?=\s*(?:[.):\-–—,]\s|[.:)]?\s*(?:\n|$))))")
    end = re.compile(rf"(?:^|\s){tok(1)}[.!]?\s*$")
    bold = re.compile(rf"\*\*\s*(?:\((?P<w1>[{up}])\)|(?P<b1>[{up}])(?:[.:)]|\s*\*\*))")
    hedge_after = re.compile(rf"^\s*(?:,\s*(?:and\s+|or\s+)?|\s+(?:and|or|and/or)\s+|\s*[/&]\s*)"
                             rf"(?i:{label}){solo}(?!\s+(?:is|was|seems)\b)")
    hedge_before = re.compile(rf"(?:\b(?i:either|both|between)\s+(?i:{label})"
                              rf"|{solo}\s*(?:,|\s+and|\s+or|/|&)\s*(?i:{label}))$")
    return explicit, start, bold, end, hedge_after, hedge_before


def _letter_group(m: re.Match) -> str:
    return next(k for k, v in m.groupdict().items() if v)


def _unwrap_letters(text: str) -> str:
    text = re.sub(r"\*\*\s*\(?([A-Za-z])\)?\s*\*\*(?=\s*(?:$|[.\n]))", r"(\1)", text)  # "**B**" ending a line
    for pat in _WRAPPED_LETTER:
        text = pat.sub(lambda m: f"({m.group(m.lastindex)})", text)
    return text.replace("**", "").replace("__", "")


def extract_choice(text: str, letters: str = "ABCD") -> str | None:
    """The chosen letter of a multiple-choice answer, or None (no choice, or a hedge).

    Letters may be wrapped: ``(B)``, ``[B]``, ``**B**``, ``'B'``, `` `B` ``, ``\\(\\text{B}\\)``,
    ``$B$``, ``\\boxed{B}``. In order: the last ``\\boxed{…}`` holding one letter; the last explicit
    choice ("The answer is (B)", "Answer: B", "I would choose B", "so B is the right choice",
    "B is correct", "Ending C makes the most sense"; not "(A) is incorrect"); a letter opening the
    text ("B\\n\\nExplanation: …", "(B) Paris", "B. Paris"); the last bold ``**B. …**``; a lone
    letter closing it. A choice between letters ("A or B", "Either B or C", "A and B",
    ``\\boxed{B, D}``) is a hedge and extracts None. The article "A" and the pronoun "I" in
    "I think…" are never taken for letters.

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
    plain = _unwrap_letters(text)
    explicit, start, bold, end, hedge_after, hedge_before = _choice_patterns(letters)
    found = [m for m in explicit.finditer(plain) if not _NEGATION.search(_clause_before(plain, m.start()))]
    if found:
        return _unless_hedged(plain, found[-1], hedge_after, hedge_before)
    for pat, source in ((start, plain), (bold, text), (end, plain)):
        found = list(pat.finditer(source))
        if found:
            return _unless_hedged(source, found[-1] if pat is bold else found[0], hedge_after, hedge_before)
    return None


def _clause_before(text: str, pos: int) -> str:
    return re.split(r"[.,;:!?\n]", text[max(0, pos - 80):pos])[-1]


def _unless_hedged(text: str, m: re.Match, after: re.Pattern, before: re.Pattern) -> str | None:
    """The matched letter, or None when another letter is offered with it ("A or B", "either B or C")."""
    start, end = m.span(_letter_group(m))
    if text[end:end + 1] == ")":
        end += 1
    if start and text[start - 1] == "(":
        start -= 1
    if after.search(text[end:end + 40]) or before.search(text[max(0, start - 40):start]):
        return None
    return m.group(_letter_group(m)).upper()


_YES_NO = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}
_YN = r"(?:yes|no|true|false)"
# "the answer is no", "Answer: **Yes**", "…, so yes." (not "so no one…")
_YN_STATEMENT = re.compile(rf"answer\s*(?:is|:)\s*:?[\s*\"'“”‘’]*({_YN})\b"
                           rf"|\b(?:so|therefore|thus|hence|in\s+short|in\s+conclusion|overall|ultimately)"
                           rf"[,:]?\s+[*\"'“”‘’]*({_YN})\b(?![ \t]+[a-z])", re.IGNORECASE)
_AFTER_VERDICT = (r"(?=\s*(?:[,.!;:?)\]*—–-]|$)"
                  r"|\s+(?:it|it's|its|the|this|that|he|she|they|there|you|we|i|not)\b)")
# verdict words: "Yes", "Nope", "Absolutely not", "No," (not the determiner in "no mention", "No doubt")
_YN_VERDICT = re.compile(
    rf"\b(?P<no>nope|nah|(?:absolutely|definitely|certainly|of\s+course|surely)\s+not|"
    rf"not\s+(?:really|at\s+all)|"
    rf"no{_AFTER_VERDICT})|\b(?P<yes>yes|yeah|yep|yup)\b"
    rf"|^\W*(?:(?P<yes2>absolutely|definitely|certainly|of\s+course|indeed|true|correct)"
    rf"|(?P<no2>false|incorrect)){_AFTER_VERDICT}",
    re.IGNORECASE)
_TRUE_FALSE = re.compile(r"\b(?P<neg>(?:not|n't|never)\s+(?:\w+\s+)?)?(?P<word>true|false)\b", re.IGNORECASE)
_YN_HEDGE = re.compile(r"\b(?:yes\s*(?:and|or|/)\s*no|no\s*(?:and|or|/)\s*yes)\b", re.IGNORECASE)


def extract_yes_no(text: str) -> str | None:
    """BoolQ: "yes" or "no" (True/False map to them), or None.

    In order: the last explicit verdict ("the answer is no", "…, so yes."); the first verdict word
    ("Yes", "No,", "Nope", "Absolutely not", "Not really", a leading "True"/"False") — the
    determiner in "no mention" or "No doubt" is not one; the first true/false, negated by a
    "not" before it ("It is not true that…"). "Yes and no" is a hedge and extracts None.

    >>> extract_yes_no("Yes, the lake is deep."), extract_yes_no("False."), extract_yes_no("Maybe")
    ('yes', 'no', None)
    >>> extract_yes_no("There is no mention of a sequel, so yes."), extract_yes_no("It is not true.")
    ('yes', 'no')
    >>> extract_yes_no("Nope."), extract_yes_no("Absolutely not."), extract_yes_no("Yes and no.") is None
    ('no', 'no', True)
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
        body = text[m.end():] if close < 0 else text[m.end():close]
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
    return re.search(rf"^[ \t]*(?:async\s+)?def\s+{re.escape(name)}\s*\(|^[ \t]*class\s+{re.escape(name)}\b",
                     body, re.MULTILINE) is not None


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
    last candidate block; else the text itself (a plain completion). An unterminated final fence
    (a truncated generation) yields what follows it.

    >>> extract_code("Here:\\n```python\\ndef f():\\n    return 1\\n```\\nDone.")
    'def f():\\n    return 1\\n'
    >>> extract_code("```python\\ndef f(x):\\n    return x\\n```\\nUsage:\\n```python\\nprint(f(2))\\n```")
    'def f(x):\\n    return x\\n'
    >>> extract_code("```python\\ndef g(): pass\\n```\\n```python\\ndef f(): pass\\n```", entry_point="g")
    'def g(): pass\\n'
    >>> extract_code("```\\nprint(1)"), extract_code("def f(): pass")
    ('print(1)', 'def f(): pass')
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
    return candidates[-1] if candidates else text


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
