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
# math extraction

_BOX = re.compile(r"\\(?:boxed|fbox)\b")
_ANSWER_IS = re.compile(r"answer\s*(?:is\b|:)\s*:?", re.IGNORECASE)
# a number: thousands-separated or plain, optional decimals or a simple fraction; a minus sign
# only where it cannot be a binary minus ("16-3" gives 3, not -3)
_NUM = re.compile(r"(?<![\w)\]}.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+|/\d+)?(?!\d)")


def _boxed_contents(text: str) -> list[str]:
    """The contents of every ``\\boxed{…}`` / ``\\fbox{…}`` (and ``\\boxed 5``), in order."""
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
                out.append(text[i + 1:j].strip())
        elif i > m.end():  # "\boxed 5": one token up to whitespace or a math delimiter
            tok = re.match(r"[^\s$]+", text[i:])
            if tok:
                out.append(tok.group().rstrip(".,;"))
    return [c for c in out if c]


_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def _clean_tail(s: str) -> str:
    """Trim an answer phrase: markdown bold, math delimiters, the rest of the sentence."""
    s = s.replace("**", "").strip()
    for opener, closer in _DELIMS:
        if s.startswith(opener):
            end = re.compile(r"(?<!\\)" + re.escape(closer)).search(s, len(opener))
            if end:
                return s[len(opener):end.start()].strip().rstrip(".").strip()
            break
    s = re.split(r"\.(?:\s|$)|\n", s, maxsplit=1)[0]  # the sentence, without cutting "3.5"
    s = s.strip().strip("$").strip().rstrip(".").strip()
    num = re.match(r"^(-?[\d,]*\d(?:\.\d+|/\d+)?)\s+[A-Za-z]", s)  # "42 apples" → "42"
    return num.group(1) if num else s


def extract_math(text: str) -> str | None:
    """The final answer of a math solution as a string, or None.

    The last ``\\boxed{…}`` (nested braces are fine), else what follows the last "answer is" /
    "Answer:", else the last number in the text.

    >>> extract_math(r"so $x = \\boxed{\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    >>> extract_math("Final Answer: The final answer is $\\\\frac{3}{4}$. I hope it is correct.")
    '\\\\frac{3}{4}'
    >>> extract_math("She pays 1,250 + 30 = 1,280 dollars.")
    '1280'
    """
    if not text:
        return None
    boxed = _boxed_contents(text)
    if boxed:
        return boxed[-1]
    anchors = list(_ANSWER_IS.finditer(text))
    for m in reversed(anchors):
        ans = _clean_tail(text[m.end():])
        if ans:
            return ans
    return _last_number(text)


_CALC = re.compile(r"<<[^<>]*>>")  # GSM8K calculator annotations: "<<4+5=9>>9"


def _last_number(text: str) -> str | None:
    """The result of the last equation on the last line ("… 4 + 5 = 9 points in 40 minutes"
    gives 9), else the last number in the text."""
    text = _CALC.sub("", text)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and "=" in lines[-1]:
        after = _NUM.search(lines[-1].rpartition("=")[2].lstrip(" $\\"))
        if after:
            return after.group().replace(",", "")
    nums = _NUM.findall(text)
    return nums[-1].replace(",", "") if nums else None


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


@functools.lru_cache(maxsize=32)
def _choice_patterns(letters: str) -> tuple[re.Pattern, ...]:
    up = re.escape("".join(sorted(set(letters.upper()))))
    lo = up.lower()
    # an uppercase letter token, or a lowercase one that ends the statement
    tok = rf"(?:\\text\{{)?\(?\s*(?P<L>[{up}])\s*\)?\}}?(?![A-Za-z0-9])" \
          rf"|\(?(?P<l>[{lo}])\)?(?=\s*(?:[.,;:!)*]|$))"
    pre = r"\s*[:\-]?\s*(?:\*\*)?\s*\$?\s*"
    statement = re.compile(
        r"(?i:(?:(?:final|correct|right|best)\s+)?(?:answer|choice|option)\s*"
        r"(?:(?:is|would\s+be|will\s+be|should\s+be)\s*|:\s*)(?:(?:option|choice)\s+)?)"
        + pre + rf"(?:{tok})")
    mention = re.compile(rf"\b(?:[Oo]ption|[Cc]hoice)\s+\(?(?P<L>[{up}])\)?(?![A-Za-z0-9])")
    bold = re.compile(rf"\*\*\s*\(?(?P<L>[{up}])\)?[.:]?\s*\*\*")
    start = re.compile(rf"^\s*(?:\((?P<L>[{up}])\)|(?P<L2>[{up}])[.):](?=\s|$)|(?P<L3>[{up}])\s*$)")
    end = re.compile(rf"(?:^|\s)\(?(?P<L>[{up}])\)?[.!]?\s*$")
    return statement, mention, bold, start, end


def _group(m: re.Match) -> str:
    d = m.groupdict()
    for k in ("L", "l", "L2", "L3"):
        if d.get(k):
            return d[k].upper()
    raise AssertionError  # pragma: no cover


def extract_choice(text: str, letters: str = "ABCD") -> str | None:
    """The chosen letter of a multiple-choice answer, or None.

    In order: the last ``\\boxed{…}`` holding a letter; the last explicit statement ("The answer
    is (B)", "Answer: B", "The correct option is C"); the last "Option C" mention; the last
    ``**B**``; a letter opening the text ("(B) Paris", "B) Paris", "B. Paris", a bare "C");
    a lone letter closing it. The article "A" in "A good answer is…" is never taken.

    >>> extract_choice("The answer is (B)."), extract_choice("answer: c"), extract_choice("B) Paris")
    ('B', 'C', 'B')
    >>> extract_choice("A good question. I pick E.", letters="ABCDE")
    'E'
    >>> extract_choice("A good question.") is None
    True
    """
    if not text:
        return None
    valid = set(letters.upper())
    for content in reversed(_boxed_contents(text)):
        c = re.sub(r"\\text(?:bf)?\{([^{}]*)\}", r"\1", content).strip().strip("()").strip()
        if len(c) == 1 and c.upper() in valid:
            return c.upper()
    statement, mention, bold, start, end = _choice_patterns(letters)
    for pat in (statement, mention, bold):
        found = list(pat.finditer(text))
        if found:
            return _group(found[-1])
    for pat in (start, end):
        m = pat.search(text)
        if m:
            return _group(m)
    return None


_YES_NO = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}
_YN_STATEMENT = re.compile(r"answer\s*(?:is|:)\s*\**\s*(yes|no|true|false)\b", re.IGNORECASE)
_YN_WORD = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)


def extract_yes_no(text: str) -> str | None:
    """BoolQ: "yes" or "no" (True/False map to them), or None.

    The last explicit "answer is yes/no" wins, else the first yes/no/true/false word.

    >>> extract_yes_no("Yes, the lake is deep."), extract_yes_no("False."), extract_yes_no("Maybe")
    ('yes', 'no', None)
    """
    if not text:
        return None
    found = _YN_STATEMENT.findall(text)
    if found:
        return _YES_NO[found[-1].lower()]
    m = _YN_WORD.search(text)
    return _YES_NO[m.group(1).lower()] if m else None


# ---------------------------------------------------------------------------------------------
# code

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n?", re.MULTILINE)
_ALIASES = {"python": {"python", "py", "python3"}}


def extract_code(text: str, language: str = "python") -> str:
    """Code from a completion.

    The last fenced block tagged with the language (python/py/python3 for Python), else the
    last untagged fenced block, else the text itself (a plain completion). An unterminated
    final fence (a truncated generation) yields what follows it.

    >>> extract_code("Here:\\n```python\\ndef f():\\n    return 1\\n```\\nDone.")
    'def f():\\n    return 1\\n'
    >>> extract_code("```\\nprint(1)")
    'print(1)'
    >>> extract_code("def f(): pass")
    'def f(): pass'
    """
    tags = _ALIASES.get(language.lower(), {language.lower()})
    blocks: list[tuple[str, str]] = []
    pos = 0
    while True:
        m = _FENCE.search(text, pos)
        if not m:
            break
        close = text.find("```", m.end())
        body = text[m.end():] if close < 0 else text[m.end():close]
        blocks.append((m.group(1).lower(), body))
        if close < 0:
            break
        nl = text.find("\n", close)
        pos = len(text) if nl < 0 else nl + 1
    for wanted in (lambda t: t in tags, lambda t: t == ""):
        for tag, body in reversed(blocks):
            if wanted(tag):
                return body
    return text


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
