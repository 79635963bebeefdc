"""The published pages in a real browser (headless Chromium through Playwright, scripts/browser_check.py).

`make test` sets TTC_REQUIRE_BROWSER=1: there a missing Chromium or Playwright fails these tests
instead of skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ttclib import site

pytestmark = pytest.mark.heavy  # make test-fast leaves this module out

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ROOT / "outputs"
# 4x3 red
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAAFElEQVR4nGM8ISfHAANMDEgAhQMAJtoBCkAAOw8AAAAASUVORK5CYII="


def _load_check():
    spec = importlib.util.spec_from_file_location("browser_check", ROOT / "scripts" / "browser_check.py")
    module = sys.modules["browser_check"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _load_check()


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for the whole module."""
    launched = check.browser()
    try:
        b = launched.__enter__()
    except Exception as e:  # no playwright package, or no browser it can launch
        reason = f"no headless Chromium: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
        if os.environ.get("TTC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TTC_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    yield b
    launched.__exit__(None, None, None)


def _assert_ok(results: dict):
    bad = {str(p): problems for p, problems in results.items() if problems}
    assert not bad, bad


def test_fresh_site_passes(chromium, tmp_path):
    """The committed executed notebooks, rendered anew: every page loads offline and shows its verdict."""
    notebooks = sorted((OUTPUTS / "notebooks").glob("*.ipynb"))
    if not notebooks:
        pytest.skip("no committed executed notebooks")
    shutil.copytree(OUTPUTS / "notebooks", tmp_path / "notebooks")
    (tmp_path / "html").mkdir()
    for nb in sorted((tmp_path / "notebooks").glob("*.ipynb")):
        (tmp_path / "html" / f"{nb.stem}.html").write_text(site.render_html(nb), encoding="utf-8")
    index = site.build_index(tmp_path, repo="me/ttc-energy")
    pages = [index, *sorted((tmp_path / "html").glob("*.html"))]
    assert len(pages) == len(notebooks) + 1
    _assert_ok({p: check.check_page(chromium, p, verdicts=True) for p in pages})


def test_committed_site_passes(chromium):
    pages = [OUTPUTS / "index.html", *sorted((OUTPUTS / "html").glob("*.html"))]
    if not pages[0].is_file():
        pytest.skip("no outputs/index.html")
    _assert_ok({p: check.check_page(chromium, p, verdicts=True) for p in pages})


VERDICT = "Models that ran here: tiny.\n\nOn CPU (meter: estimate (x)): The claim that X held here: 2×."
GOOD_IMAGE = f'<img alt="Figure: a red square." src="data:image/png;base64,{PNG}">'


@pytest.fixture(scope="module")
def bad_site(tmp_path_factory):
    """<out>/notebooks/page.ipynb with a verdict, and <out>/html/<kind>.html pages, each bad in one way."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    out = tmp_path_factory.mktemp("bad")
    (out / "notebooks").mkdir()
    (out / "html").mkdir()
    pages = {
        "good": "",
        "broken_image": '<img alt="Figure: gone." src="img/missing.png">',
        "placeholder_alt": f'<img alt="{site.PLACEHOLDER_ALT}" src="data:image/png;base64,{PNG}">',
        "throws": '<script>throw new Error("boom in page")</script>',
        "console_error": '<script>console.error("logged failure")</script>',
        "dead_link": '<a href="../notebooks/nowhere.ipynb">the notebook</a>',
        "dead_anchor": '<a href="good.html#cell-id=nope">a figure</a>',
        "no_verdict": None,
    }
    for stem, extra in pages.items():
        cell = new_code_cell("print(v)", outputs=[new_output("stream", name="stdout", text=VERDICT)])
        cell.metadata["tags"] = ["verdict"]
        nbformat.write(new_notebook(cells=[cell]), out / "notebooks" / f"{stem}.ipynb")
        body = f"<pre>{VERDICT}</pre>{extra}" if extra is not None else "<p>Verdict forgotten.</p>"
        (out / "html" / f"{stem}.html").write_text(
            f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{stem}</title></head>'
            f"<body>{GOOD_IMAGE}{body}</body></html>",
            encoding="utf-8",
        )
    return out


@pytest.mark.parametrize(
    "page, reasons",
    [
        ("good", []),
        (
            "broken_image",
            [
                "image 2 not loaded: img/missing.png",
                "dead link img/missing.png",
                "failed request: file://",
                "console error: Failed to load resource",
            ],
        ),
        ("placeholder_alt", ["image 2 with placeholder alt"]),
        ("throws", ["page error: boom in page"]),
        ("console_error", ["console error: logged failure"]),
        ("dead_link", ["dead link ../notebooks/nowhere.ipynb"]),
        ("dead_anchor", ["dead anchor good.html#cell-id=nope"]),
        ("no_verdict", ["no_verdict: verdict not shown"]),
    ],
)
def test_bad_pages_fail_for_their_reason(chromium, bad_site, page, reasons):
    problems = check.check_page(chromium, bad_site / "html" / f"{page}.html", verdicts=True)
    assert len(problems) == len(reasons), problems
    for reason in reasons:
        assert any(p.startswith(reason) for p in problems), (reason, problems)


def test_network_resources_are_refused(chromium, tmp_path):
    """A page that needs the network fails: what nbconvert's plain export does with require.js."""
    page = tmp_path / "remote.html"
    page.write_text(f'<html><body><script src="https://cdn.example.org/x.js"></script>{GOOD_IMAGE}</body></html>')
    problems = check.check_page(chromium, page)
    assert any(p.startswith("failed request: https://cdn.example.org/x.js") for p in problems), problems


def test_screenshot(chromium, bad_site, tmp_path):
    shot = tmp_path / "good.png"
    assert check.check_page(chromium, bad_site / "html" / "good.html", verdicts=True, screenshot=shot) == []
    from PIL import Image

    assert Image.open(shot).size == (check.VIEWPORT["width"], check.VIEWPORT["height"])


def test_command_line_exit_status(chromium, bad_site):
    """The script itself (its own browser): one line per page, exit status 1 when one has a problem."""
    run = [
        sys.executable,
        str(ROOT / "scripts" / "browser_check.py"),
        "--verdicts",
        str(bad_site / "html" / "good.html"),
        str(bad_site / "html" / "throws.html"),
    ]
    done = subprocess.run(run, capture_output=True, text=True)
    lines = done.stdout.splitlines()
    assert done.returncode == 1, done.stdout + done.stderr
    assert lines[0].endswith("good.html: OK") and lines[1].endswith("throws.html: page error: boom in page"), lines
