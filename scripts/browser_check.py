"""Open the published HTML pages in headless Chromium and check that they read offline.

    .venv/bin/python scripts/browser_check.py outputs/index.html outputs/html/*.html [--screenshots outputs/screenshots]

For every page: each <img> loaded (naturalWidth > 0) and has a real alt text (not empty, not
nbconvert's placeholder); no console error, page error or failed request (requests to the network
are refused, so a page that needs one fails here as it would offline); every relative href/src of a
file:// page names an existing file (and an existing id, for a link with a #fragment into a page).
With --verdicts, a section page <out>/html/<stem>.html must show the verdict its executed notebook
<out>/notebooks/<stem>.ipynb printed; an index page <out>/index.html must show every section's.
Prints one line per page, OK or its problems, and exits 1 on any problem.

The browser: $TTC_CHROMIUM, else `chromium` on PATH (Debian's package), else Playwright's own.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ttclib import site  # noqa: E402

VIEWPORT = {"width": 1280, "height": 900}
# every relative reference a page makes: links, images, scripts, stylesheets, frames
REFERENCES_JS = """() => Array.from(document.querySelectorAll('[href], [src]'))
    .map(e => e.getAttribute('href') ?? e.getAttribute('src'))"""
IMAGES_JS = """() => Array.from(document.images).map((i, k) => ({k: k + 1, alt: i.getAttribute('alt'),
    src: (i.getAttribute('src') || '').replace(/^(data:[^;,]*).*/s, '$1 (embedded)').slice(0, 100),
    width: i.naturalWidth}))"""


def chromium_path() -> str | None:
    """$TTC_CHROMIUM, else Debian's ``chromium`` on PATH; None lets Playwright use its own browser."""
    return os.environ.get("TTC_CHROMIUM") or shutil.which("chromium")


@contextmanager
def browser(executable: str | None = None):
    """A headless Chromium (Playwright) for the duration of the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable or chromium_path(), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def expected_verdicts(page: Path) -> dict[str, str | None]:
    """Verdict text per section that ``page`` must show: its own notebook's for <out>/html/<stem>.html,
    every notebook's in <out>/notebooks for <out>/index.html (None: the notebook has no verdict cell)."""
    import nbformat

    if page.name == "index.html":
        notebooks = sorted((page.parent / "notebooks").glob("*.ipynb"))
    else:
        notebooks = [page.parent.parent / "notebooks" / f"{page.stem}.ipynb"]
    return {
        nb.stem: site.verdict_text(nbformat.read(nb, as_version=4)) if nb.is_file() else "(no notebook)"
        for nb in notebooks
    }


def _squash(text: str) -> str:
    return " ".join(text.split())


def dead_references(page: Path, references: list[str]) -> list[str]:
    """The relative references of a file:// page that name no file (or no id in the page they name)."""
    dead = []
    for ref in references:
        parts = urlsplit(ref)
        if parts.scheme or parts.netloc or not parts.path:  # absolute, data:, or a fragment of this page
            continue
        target = (page.parent / unquote(parts.path)).resolve()
        if not target.exists():
            dead.append(f"dead link {ref}")
        elif (
            parts.fragment
            and target.suffix == ".html"
            and f'id="{unquote(parts.fragment)}"' not in target.read_text(encoding="utf-8", errors="replace")
        ):
            dead.append(f"dead anchor {ref}")
    return dead


def image_problems(images: list[dict]) -> list[str]:
    """Images that did not load (naturalWidth 0) or lack a real alt text.

    >>> image_problems([{"k": 1, "src": "a.png", "width": 0, "alt": "Figure: x"},
    ...                 {"k": 2, "src": "b.png", "width": 9, "alt": site.PLACEHOLDER_ALT}])
    ['image 1 not loaded: a.png', 'image 2 with placeholder alt: b.png']
    """
    problems = []
    for i in images:
        if not i["width"]:
            problems.append(f"image {i['k']} not loaded: {i['src']}")
        alt = (i["alt"] or "").strip()
        if not alt:
            problems.append(f"image {i['k']} without alt text: {i['src']}")
        elif alt == site.PLACEHOLDER_ALT:
            problems.append(f"image {i['k']} with placeholder alt: {i['src']}")
    return problems


def verdict_problems(page: Path, text: str) -> list[str]:
    problems, shown = [], _squash(text)
    for stem, verdict in expected_verdicts(page).items():
        if verdict is None or verdict == "(no notebook)":
            problems.append(f"{stem}: {verdict or site.NO_VERDICT} to take the verdict from")
        elif _squash(verdict) not in shown:
            problems.append(f"{stem}: verdict not shown ({_squash(verdict)[:60]}...)")
    return problems


def check_page(b, page: Path, verdicts: bool = False, screenshot: Path | None = None) -> list[str]:
    """The problems of one page opened in browser ``b`` (an empty list: the page is fine)."""
    page = Path(page).resolve()
    context = b.new_context(viewport=VIEWPORT)
    context.route(re.compile(r"^(https?|wss?)://"), lambda route: route.abort("internetdisconnected"))
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    tab.on("requestfailed", lambda r: problems.append(f"failed request: {r.url[:120]} ({r.failure})"))
    try:
        tab.goto(page.as_uri(), wait_until="load", timeout=60_000)
        problems += image_problems(tab.evaluate(IMAGES_JS))
        problems += dead_references(page, tab.evaluate(REFERENCES_JS))
        if verdicts:
            problems += verdict_problems(page, tab.inner_text("body"))
        if screenshot:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(screenshot))
    finally:
        context.close()
    return problems


def check_pages(
    pages: list[Path], screenshots: Path | None = None, verdicts: bool = False, executable: str | None = None
) -> dict[Path, list[str]]:
    """Each page's problems, all pages opened in one browser."""
    with browser(executable) as b:
        return {
            p: check_page(b, p, verdicts, screenshots / f"{Path(p).stem}.png" if screenshots else None) for p in pages
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pages", nargs="+", type=Path)
    ap.add_argument("--screenshots", type=Path, help="write a 1280x900 screenshot of each page here (<stem>.png)")
    ap.add_argument(
        "--verdicts",
        action="store_true",
        help="require each page to show its executed notebook's verdict (the index: every section's)",
    )
    args = ap.parse_args(argv)
    results = check_pages(args.pages, args.screenshots, args.verdicts)
    for page, problems in results.items():
        print(f"{page}: {'OK' if not problems else '; '.join(problems)}")
    return 1 if any(results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
