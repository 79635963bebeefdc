#!/usr/bin/env python
"""Time scoring a 10,000-answer math batch: extract_math + math_equal (math-verify equivalence).

Builds (model text, gold, label) triples from MATH-500's gold answers when the data is present
(--data, default ../shared/data/math500/test.jsonl next to the repository), else from generated
golds (integers, fractions, decimals, surds, tuples). The answers are a mix of

* equal and written identically,
* equal but written differently (``\\frac{1}{2}`` vs ``0.5``, ``\\dfrac``, ``\\left( \\right)``,
  ``1,000`` vs ``1000``, ``2\\sqrt{3}`` vs ``\\sqrt{12}`` …),
* wrong (a perturbed value, or for MATH-500 another problem's differently written gold),

each wrapped in a sentence the way models write it. Prints answers/s, total seconds, the share
decided by the fast path (no sympy), and the comparator's accuracy on the constructed labels;
then scores the same batch again in a thread pool to show it works off the main thread.

    python scripts/bench_scoring.py                 # MATH-500 golds if present
    python scripts/bench_scoring.py --generated     # synthetic golds
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sympy.core.cache import clear_cache  # noqa: E402

from ttclib import answers  # noqa: E402
from ttclib.answers import extract_math, math_equal  # noqa: E402

KINDS = ("identical", "rewritten", "wrong")
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "math500" / "test.jsonl"

TEMPLATES = [
    "Putting it together, the answer is $\\boxed{{{}}}$.",
    "Okay, let me check once more... yes.</think>\n\nTherefore the result is \\[\\boxed{{{}}}\\]",
    "Final Answer: The final answer is ${}$. I hope it is correct.",
    "Step 3: simplify.\n\n**Answer:** ${}$",
]


# --- equal-but-differently-written rewrites ---------------------------------------------------

def _decimal(fr: Fraction) -> str | None:
    d = fr.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        return None
    s = f"{float(fr):.10f}".rstrip("0").rstrip(".")
    return s if Fraction(s) == fr else None


def rewrite(gold: str, rng: random.Random) -> str | None:
    """An equal answer written differently, or None when no safe rewrite applies."""
    g = gold.strip()
    if re.fullmatch(r"-?\d+", g):
        n = int(g)
        return rng.choice([f"{n:,}" if abs(n) >= 1000 else f"{n}.0", f"{n}.0", f"x = {n}"])
    m = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", g) or re.fullmatch(r"(-?)(\d+)/(\d+)", g)
    if m and int(m.group(3)):
        fr = Fraction(int(m.group(2)), int(m.group(3))) * (-1 if m.group(1) else 1)
        options = [f"{fr.numerator}/{fr.denominator}",
                   f"{'-' if fr < 0 else ''}\\dfrac{{{abs(fr.numerator)}}}{{{fr.denominator}}}"]
        if _decimal(fr):
            options.append(_decimal(fr))
        return rng.choice(options)
    if re.fullmatch(r"-?\d+\.\d+", g):
        fr = Fraction(g)
        return f"\\frac{{{fr.numerator}}}{{{fr.denominator}}}" if fr.denominator > 1 else str(fr)
    m = re.fullmatch(r"(\d+)\\sqrt\{(\d+)\}", g)
    if m:
        return f"\\sqrt{{{int(m.group(1)) ** 2 * int(m.group(2))}}}"
    if "\\frac" in g:
        return g.replace("\\frac", "\\dfrac")
    if g.startswith("(") and g.endswith(")") and "," in g:
        return "\\left(" + g[1:-1].replace(",", ", ") + "\\right)"
    if "," in g:
        return g.replace(",", " , ")
    return None


# --- golds ------------------------------------------------------------------------------------

def generated_golds(n: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(n):
        kind = rng.randrange(5)
        if kind == 0:
            out.append(str(rng.randrange(-50, 20000)))
        elif kind == 1:
            a, b = rng.randrange(1, 50), rng.randrange(2, 50)
            fr = Fraction(a, b)
            out.append(f"\\frac{{{fr.numerator}}}{{{fr.denominator}}}" if fr.denominator > 1
                       else str(fr.numerator))
        elif kind == 2:
            out.append(f"{rng.randrange(0, 100)}.{rng.randrange(1, 100):02d}".rstrip("0"))
        elif kind == 3:
            m = rng.choice([2, 3, 5, 6, 7, 10, 11])
            out.append(f"{rng.randrange(2, 9)}\\sqrt{{{m}}}")
        else:
            out.append(f"({rng.randrange(-9, 10)},{rng.randrange(-9, 10)})")
    return out


def perturbed(gold: str, rng: random.Random) -> str | None:
    """A certainly different value, or None when the gold is not one this script can perturb."""
    g = gold.strip()
    if re.fullmatch(r"-?\d+", g):
        return str(int(g) + rng.choice([-2, -1, 1, 10]))
    m = re.fullmatch(r"\\frac\{(\d+)\}\{(\d+)\}", g)
    if m:
        return f"\\frac{{{int(m.group(1)) + 1}}}{{{m.group(2)}}}"
    if re.fullmatch(r"-?\d+\.\d+", g):
        return str(Decimal(g) + Decimal("0.1"))
    m = re.fullmatch(r"(\d+)\\sqrt\{(\d+)\}", g)
    if m:
        return f"{int(m.group(1)) + 1}\\sqrt{{{m.group(2)}}}"
    m = re.fullmatch(r"\((-?\d+),(-?\d+)\)", g)
    if m:
        return f"({m.group(2)},{m.group(1)})" if m.group(1) != m.group(2) else \
            f"({m.group(1)},{int(m.group(2)) + 1})"
    return None


def build(golds: list[str], n: int, rng: random.Random) -> list[tuple[str, str, bool, str]]:
    """(model text, gold, label, kind) triples: ~1/3 identical, ~1/3 rewritten, ~1/3 wrong."""
    # "x=5" and "5" are the same answer (math-verify compares an equation's right-hand side)
    norm = {g: re.sub(r"^[a-zA-Z]=", "", answers._normalize_math(g)) for g in golds}
    items = []
    while len(items) < n:
        gold = rng.choice(golds)
        kind = KINDS[len(items) % 3]
        if kind == "identical":
            ans, label = gold, True
        elif kind == "rewritten":
            ans, label = rewrite(gold, rng), True
            if ans is None:
                continue
        else:
            ans, label = perturbed(gold, rng), False
            if ans is None:  # another problem's gold, written differently when possible
                other = rng.choice(golds)
                if norm[other] == norm[gold]:
                    continue
                ans = rewrite(other, rng) or other
        items.append((rng.choice(TEMPLATES).format(ans), gold, label, kind))
    return items


# --- timing -----------------------------------------------------------------------------------

def score(item: tuple[str, str, bool, str]) -> bool:
    return math_equal(extract_math(item[0]), item[1])


def run(items, threads: int) -> tuple[float, list[bool]]:
    answers._parsed.cache_clear()  # each run parses from scratch
    clear_cache()
    t = time.perf_counter()
    if threads <= 0:
        got = [score(it) for it in items]
    else:
        with ThreadPoolExecutor(threads) as pool:
            got = list(pool.map(score, items, chunksize=64))
    return time.perf_counter() - t, got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="MATH-500 test.jsonl whose gold answers to use (default: %(default)s)")
    ap.add_argument("--generated", action="store_true",
                    help="use generated golds even when the data is present")
    ap.add_argument("-n", "--n", type=int, default=10_000, help="answers to score (%(default)s)")
    ap.add_argument("--threads", type=int, default=2,
                    help="thread-pool size of the second run; 0 skips it (%(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rng = random.Random(args.seed)
    if not args.generated and args.data.exists():
        golds = [json.loads(line)["answer"] for line in args.data.read_text().splitlines()
                 if line.strip()]
        source = f"MATH-500 golds ({args.data})"
    else:
        golds = generated_golds(2000, rng)
        source = "generated golds"
    items = build(golds, args.n, rng)
    fast = sum(answers._fast(extract_math(t) or "", g) is not None for t, g, _, _ in items)

    print(f"{len(items)} answers from {source}: "
          + ", ".join(f"{k} {sum(i[3] == k for i in items)}" for k in KINDS))
    print(f"fast path (no sympy): {fast / len(items):.1%}")
    for item in build(golds, 200, random.Random(args.seed + 1)):  # warm-up: imports, sympy
        score(item)
    runs = [("main thread", 0)]
    if args.threads:
        runs.append((f"{args.threads}-thread pool", args.threads))
    for name, threads in runs:
        secs, got = run(items, threads)
        right = [g == it[2] for g, it in zip(got, items)]
        print(f"{name:>15}: {len(items) / secs:8.0f} answers/s, {secs:6.2f} s total, "
              f"comparator accuracy on the labels {sum(right) / len(right):.2%}")
        for kind in KINDS:
            bad = [it for ok, it in zip(right, items) if not ok and it[3] == kind]
            if bad:
                print(f"{'':>17}{len(bad)} {kind} misjudged, e.g. {bad[0][1]!r} vs {bad[0][0]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
