"""ttclib.site without a browser: offline HTML of a notebook, alt texts, and the report index."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from ttclib import site

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "outputs" / "notebooks"
VERDICT = (
    "Models that ran here: tiny (random weights).\n\n"
    "On Test CPU (meter: estimate (cpu_time_x_tdp)): The claim that X held here: 3.0× (95 % CI 2.1–4.2).\n"
)


def _png(width: int = 6, height: int = 4) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _notebook(path: Path, verdict: str | None = VERDICT, tagged: bool = True) -> Path:
    """A small executed notebook: heading and claim, two figures under their captions, a verdict cell."""
    figure = new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"})
    cells = [
        new_markdown_cell(
            "# Power — mean power per *strategy*\n\n**Claim** (*Paper*, §4): power changes "
            "only `marginally`.\n\nMore text, with $E_o = \\sum_i n_i\\, e_{m_i}$."
        ),
        new_code_cell("x = 1"),
        new_markdown_cell("Mean power ± std per **model**. The verdict is an equivalence test."),
        new_code_cell("fig", outputs=[figure]),
        new_markdown_cell("Figure 5: output tokens of correct and\nincorrect answers."),
        new_code_cell("fig2", outputs=[figure, figure]),
    ]
    if verdict is not None:
        cell = new_code_cell(
            "print(report.models_ran(study.runs))" if not tagged else "print(verdict)",
            outputs=[new_output("stream", name="stdout", text=verdict)],
        )
        if tagged:
            cell.metadata["tags"] = ["verdict"]
        cells += [new_markdown_cell("## Did the claim hold here?"), cell]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells), path)
    return path


@pytest.fixture
def out(tmp_path):
    """An outputs folder with two small notebooks, the second without a verdict cell."""
    _notebook(tmp_path / "notebooks" / "00_first.ipynb")
    _notebook(tmp_path / "notebooks" / "01_second.ipynb", verdict=None)
    return tmp_path


def test_alt_text_is_the_first_sentence_of_the_markdown_above(tmp_path):
    page = BeautifulSoup(site.render_html(_notebook(tmp_path / "n.ipynb")), "html.parser")
    alts = [img["alt"] for img in page.select(".jp-RenderedImage img")]
    assert alts == [
        "Figure: Mean power ± std per model.",
        "Figure 5: output tokens of correct and incorrect answers.",
        "Figure 5: output tokens of correct and incorrect answers.",
    ]
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.select(".jp-RenderedImage img"))
    assert page.title.string == "Power — mean power per strategy"


def test_formulas_are_drawn_offline_with_their_tex_as_alt(tmp_path):
    page = BeautifulSoup(site.render_html(_notebook(tmp_path / "n.ipynb")), "html.parser")
    math = page.select("img.ttc-math")
    assert [m["alt"] for m in math] == [r"E_o = \sum_i n_i\, e_{m_i}"]
    assert math[0]["src"].startswith("data:image/svg+xml;base64,")
    assert "$E_o" not in page.get_text()


def _remote_resources(markup: str) -> list[str]:
    """Every reference a page would fetch (scripts, styles, images, frames, CSS imports) off this machine."""
    page = BeautifulSoup(markup, "html.parser")
    found = [e.get("src") for e in page.find_all(src=True) if not e["src"].startswith("data:")]
    found += [e["href"] for e in page.find_all("link", href=True)]
    found += [
        s
        for style in page.find_all("style")
        for s in re.findall(r"(?:@import\s+(?:url\()?|url\()\s*['\"]?(https?:[^'\")\s]+)", style.get_text())
    ]
    return [f for f in found if f and f.startswith(("http:", "https:", "//"))]


@pytest.mark.parametrize("stem", ["02_power", "04_difficulty"])
def test_committed_notebooks_render_without_remote_resources(stem):
    if not (COMMITTED / f"{stem}.ipynb").is_file():
        pytest.skip("no committed executed notebook")
    markup = site.render_html(COMMITTED / f"{stem}.ipynb")
    page = BeautifulSoup(markup, "html.parser")
    assert _remote_resources(markup) == []
    assert not page.find_all("script", src=True) and "mathjax" not in markup.lower()
    images = page.select(".jp-RenderedImage img")
    assert images and all(i["alt"].startswith("Figure") and i["alt"] != site.PLACEHOLDER_ALT for i in images)
    if stem == "04_difficulty":  # its claim has formulas: drawn here, not left to MathJax
        assert len(page.select("img.ttc-math")) >= 3


def test_remote_resource_finder_finds_what_nbconvert_puts_there():
    """The check above is not vacuous: nbconvert's own lab export loads require.js and MathJax."""
    from nbconvert import HTMLExporter

    markup, _ = HTMLExporter().from_notebook_node(nbformat.v4.new_notebook())
    assert any("require" in r for r in _remote_resources(markup))
    assert any("mathjax" in r for r in _remote_resources(markup))


def test_index_lists_every_section_with_verdict_figures_and_links(out):
    page = BeautifulSoup(site.build_index(out, repo="me/ttc-energy").read_text(), "html.parser")
    sections = page.select("main section")
    assert [s["id"] for s in sections] == ["00_first", "01_second"]
    first, second = sections
    assert first.h2.get_text() == "Power — mean power per strategy"
    assert first.select_one(".claim").get_text().startswith("Claim (Paper, §4): power changes only marginally.")
    assert " ".join(VERDICT.split()) in " ".join(first.select_one(".verdict").get_text().split())
    assert "held" in first.select_one(".outcome").get_text()
    assert second.select_one(".verdict").get_text().strip() == site.NO_VERDICT
    thumbs = first.select(".thumbs img")
    assert [t["src"] for t in thumbs] == [f"html/img/00_first-{k}.png" for k in (1, 2, 3)]
    assert all((out / t["src"]).read_bytes() == base64.b64decode(_png()) for t in thumbs)
    assert thumbs[0]["alt"] == "Figure: Mean power ± std per model."
    links = [a["href"] for a in first.select(".links a")]
    assert links == [
        "html/00_first.html",
        "notebooks/00_first.ipynb",
        "https://nbviewer.org/github/me/ttc-energy/blob/main/outputs/notebooks/00_first.ipynb",
    ]
    assert "Runs measured on: Test CPU (meter: estimate (cpu_time_x_tdp))." in page.header.get_text()


def test_index_without_a_github_remote_says_so_and_links_nowhere(out, monkeypatch):
    monkeypatch.setattr(site, "origin_repo", lambda root=site.ROOT: None)
    markup = site.build_index(out).read_text()
    assert "nbviewer links need a public GitHub remote" in markup
    page = BeautifulSoup(markup, "html.parser")
    assert [a["href"] for a in page.find_all("a", href=True) if a["href"].startswith("http")] == []
    assert _remote_resources(markup) == []
    assert "published/" not in markup
    (out / "published").mkdir()
    assert 'href="published/"' in site.build_index(out).read_text()


def test_stale_thumbnails_are_replaced(out):
    site.build_index(out, repo="a/b")
    (out / "html" / "img" / "00_first-9.png").write_bytes(b"old")
    (out / "notebooks" / "01_second.ipynb").unlink()
    site.build_index(out, repo="a/b")
    assert sorted(p.name for p in (out / "html" / "img").iterdir()) == [f"00_first-{k}.png" for k in (1, 2, 3)]


def test_building_twice_gives_identical_bytes(out):
    def snapshot():
        site.build_site(out, repo="me/ttc-energy")
        return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    first = snapshot()
    assert first == snapshot()
    assert Path("html/00_first.html") in first and Path("index.html") in first


def test_verdict_cell_tag_first_then_the_old_source(tmp_path):
    untagged = nbformat.read(_notebook(tmp_path / "a.ipynb", tagged=False), as_version=4)
    assert site.verdict_text(untagged) == VERDICT.strip()
    both = nbformat.read(_notebook(tmp_path / "b.ipynb", verdict="tagged one"), as_version=4)
    both.cells.insert(
        1, new_code_cell("print(report.models_ran(x))", outputs=[new_output("stream", name="stdout", text="old one")])
    )
    assert site.verdict_text(both) == "tagged one"
    assert site.verdict_text(nbformat.read(_notebook(tmp_path / "c.ipynb", verdict=None), as_version=4)) is None


def test_committed_index_lists_every_committed_section(tmp_path):
    if not list(COMMITTED.glob("*.ipynb")):
        pytest.skip("no committed executed notebooks")
    shutil.copytree(COMMITTED, tmp_path / "notebooks")
    page = BeautifulSoup(site.build_index(tmp_path, repo="me/x").read_text(), "html.parser")
    stems = [p.stem for p in sorted(COMMITTED.glob("*.ipynb"))]
    assert [s["id"] for s in page.select("main section")] == stems
    for s in page.select("main section"):
        verdict = site.verdict_text(nbformat.read(COMMITTED / f"{s['id']}.ipynb", as_version=4))
        assert verdict and " ".join(verdict.split()) in " ".join(s.select_one(".verdict").get_text().split())


@pytest.mark.parametrize(
    "url, repo",
    [
        ("git@github.com:me/ttc-energy.git", "me/ttc-energy"),
        ("https://github.com/me/ttc-energy", "me/ttc-energy"),
        ("https://gitlab.com/me/ttc-energy.git", None),
    ],
)
def test_origin_repo_from_the_git_remote(tmp_path, url, repo):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert site.origin_repo(tmp_path) is None
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", url], check=True)
    assert site.origin_repo(tmp_path) == repo


def test_title_is_the_first_top_level_heading_else_the_file_name(tmp_path):
    nb = new_notebook(cells=[new_markdown_cell("Ratios of energy.\n\n## Did the claim hold here?")])
    nbformat.write(nb, tmp_path / "01_normalized_energy.ipynb")
    assert site.section(tmp_path / "01_normalized_energy.ipynb").title == "01 · normalized energy"
    nb.cells.append(new_markdown_cell("# Normalized energy"))
    nbformat.write(nb, tmp_path / "01_normalized_energy.ipynb")
    assert site.section(tmp_path / "01_normalized_energy.ipynb").title == "Normalized energy"
