r"""Prompts of exactly N input tokens, for energy-vs-input-length curves (Wilhelm et al. [001], Figure 2).

A run spec's ``input_tokens: N`` makes every prompt exactly N tokens long *as the engine counts them*
(the final text, chat template included, through the model's tokenizer). The question is cut to fit,
or, when it is too short, followed by copies of itself (separated by a blank line) and then cut:
real text of the benchmark, deterministic, and the instructions and answer format the strategy adds
stay whole. Token boundaries do not survive decode → encode exactly (a cut can split a multi-byte
character or let two pieces merge), so the cut point is corrected until the count is exact.

>>> from transformers import AutoTokenizer
>>> from ttclib import models
>>> tok = AutoTokenizer.from_pretrained(models.tokenizer_directory("smollm2-135m-instruct"))
>>> for n in (9, 16):
...     text = fit_question("What is 2 + 2?", lambda q: f"Q: {q}\nA:", tok, n)
...     print(count(tok, text), repr(text))
9 'Q: What is 2\nA:'
16 'Q: What is 2 + 2?\n\nWhat\nA:'
"""

from __future__ import annotations

from collections.abc import Callable

SEPARATOR = "\n\n"
MAX_TRIES = 12  # corrections of one cut
MAX_SHIFT = 16  # later starts tried when every cut from the start jumps over n


class PromptLengthError(ValueError):
    """No prompt of the requested length exists (the template alone is longer) or none was found."""


def count(tokenizer, text: str) -> int:
    """Tokens the engine will see for ``text`` (special tokens added as the backends add them)."""
    return len(tokenizer(text)["input_ids"])


def fit_question(question: str, render: Callable[[str], str], tokenizer, n: int) -> str:
    """The final prompt ``render(q)`` whose token count is exactly ``n``, where ``q`` is ``question``
    cut or repeated. Raises :class:`PromptLengthError` when ``render("")`` alone takes ``n`` tokens or more.

    Where every cut of the question's tokens jumps over ``n`` (whitespace tokens that merge with the
    template's after decoding), the cut starts one token later, and so on up to ``MAX_SHIFT`` tokens."""
    overhead = count(tokenizer, render(""))
    if overhead >= n:
        raise PromptLengthError(
            f"input_tokens {n} leaves no room for the question: the prompt around it "
            f"has {overhead} tokens of template and instructions"
        )
    body = _long_enough(question, tokenizer, n + MAX_SHIFT)
    closest = None
    for shift in range(MAX_SHIFT + 1):
        text, got = _cut(body[shift:], render, tokenizer, n, n - overhead)
        if got == n:
            return text
        closest = got if closest is None or abs(got - n) < abs(closest - n) else closest
    raise PromptLengthError(f"no cut of the question gives exactly {n} prompt tokens (closest: {closest})")


def _cut(body: list[int], render, tokenizer, n: int, k: int) -> tuple[str, int]:
    """Correct the cut ``k`` until ``render(decode(body[:k]))`` has ``n`` tokens; (text, its count) of the
    last try, which is exact unless the count jumps over ``n``."""
    seen: set[int] = set()
    while k not in seen and len(seen) < MAX_TRIES:
        seen.add(k)
        text = render(tokenizer.decode(body[:k]))
        got = count(tokenizer, text)
        if got == n:
            break
        k = max(0, min(len(body), k + n - got))
    return text, got


def _long_enough(question: str, tokenizer, n: int) -> list[int]:
    """Token ids of the question, repeated until they exceed ``n`` (there is always enough to cut)."""
    text = question.strip() or "."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    copies = max(1, -(-(n + 8) // max(1, len(ids))))
    return tokenizer(SEPARATOR.join([text] * copies), add_special_tokens=False)["input_ids"]
