"""The published report: each executed notebook as offline HTML, and ``index.html`` listing the sections.

``render_html`` exports an executed notebook with nbconvert's lab template, minus every remote
script (require.js, MathJax, mermaid: our pages have no widgets or diagrams, and their few formulas
are drawn here with matplotlib's mathtext), and gives every figure an alt text taken from the
markdown cell above it. ``build_index`` writes ``<out>/index.html`` from ``<out>/notebooks/*.ipynb``:
per section its title, claim, verdict, figure thumbnails and links. Both are deterministic (no
timestamps), so re-running leaves committed files unchanged, and both read offline as file://.

    python -m ttclib.site [outputs] [--repo owner/name]   # re-render outputs/html/*.html and outputs/index.html

Only the standard library is imported at module level: ``scripts/nbviewer_links.py`` loads this file
with a Python that has none of the package's dependencies.
"""

from __future__ import annotations

import argparse
import base64
import functools
import html
import io
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERDICT_TAG = "verdict"
VERDICT_SOURCE = "print(report.models_ran("  # the verdict cell of notebooks executed before the tag existed
NO_VERDICT = "(no verdict cell)"
PLACEHOLDER_ALT = "No description has been provided for this image"  # what nbconvert puts on images without one
NBVIEWER = "https://nbviewer.org/github/{repo}/blob/{branch}/{path}"
# verdicts.Verdict.__str__: 'The claim that ... <outcome phrase> here', after 'On <benchmark>: ' when there are several
OUTCOME = re.compile(
    r"(?:On (?P<part>[\w.-]+): )?The claim that (?:(?!The claim that).)*? "
    r"(?P<outcome>held|did not hold|was inconclusive at this sample size|could not be tested) here",
    re.S,
)
# report._where: '<hardware> (meter: <name> (<method>)[, ...])', which starts every verdict sentence
WHERE = re.compile(r"\bOn (?P<where>[^;:]+? \(meter: [^()]*(?:\([^()]*\)[^()]*)*\))")


# --- where the notebooks are published ------------------------------------------------------------


def origin_repo(root: Path = ROOT) -> str | None:
    """``owner/name`` of the git origin remote when it is on GitHub, else None."""
    try:
        url = subprocess.run(
            ["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    m = re.search(r"github\.com[:/](?P<repo>[^/]+/[^/]+?)(?:\.git)?/?$", url)
    return m and m["repo"]


def nbviewer_url(repo: str, path: str, branch: str = "main") -> str:
    """The nbviewer page of a notebook committed at ``path`` in a public GitHub repository.

    >>> nbviewer_url("me/ttc-energy", "outputs/notebooks/00_overview.ipynb")
    'https://nbviewer.org/github/me/ttc-energy/blob/main/outputs/notebooks/00_overview.ipynb'
    """
    return NBVIEWER.format(repo=repo, branch=branch, path=path)


# --- what a notebook says ---------------------------------------------------------------------------


@functools.cache
def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False})  # raw HTML in a cell is shown, never injected


def _blocks(tokens: list) -> list[list]:
    """markdown-it's token stream cut into its top-level blocks (a paragraph, a list, a heading...)."""
    blocks: list[list] = []
    depth = 0
    for t in tokens:
        if depth == 0:
            blocks.append([])
        blocks[-1].append(t)
        depth += t.nesting
    return blocks


def _text(block: list) -> str:
    """The plain text of a markdown block, whitespace collapsed."""
    md = _markdown()
    inline = [t for t in block if t.type == "inline"]
    return " ".join(
        " ".join(md.renderer.renderInlineAsText(t.children, md.options, {}).split()) for t in inline
    ).strip()


def markdown_text(source: str) -> str:
    """The text of the first block of a markdown cell, without markup.

    >>> markdown_text("## Did the claim hold *here*?\\n\\nMore.")
    'Did the claim hold here?'
    >>> markdown_text("Energy per ``query``, see [the paper](x.pdf);\\nsecond line.\\n\\nNext paragraph.")
    'Energy per query, see the paper; second line.'
    """
    blocks = _blocks(_markdown().parse(source))
    return _text(blocks[0]) if blocks else ""


def first_sentence(text: str) -> str:
    """
    >>> first_sentence("Mean power per strategy. The verdict is an equivalence test.")
    'Mean power per strategy.'
    """
    return re.split(r"(?<=[.!?])\s+(?=[A-Z(])", text, maxsplit=1)[0]


def figure_alt(cells: list, index: int) -> str:
    """Alt text of the figures of code cell ``index``: the first sentence of the nearest markdown cell
    above it, as "Figure: ..." (a caption that already starts "Figure 4: ..." is kept as it is)."""
    for cell in reversed(cells[:index]):
        if cell.cell_type == "markdown" and (text := first_sentence(markdown_text(cell.source))):
            return text if re.match(r"Figure \d+\b", text) else f"Figure: {text}"
    return "Figure: output of the code cell " + " ".join(cells[index].source.split())[:80]


def title(nb) -> str | None:
    """The text of the notebook's first top-level (``#``) heading."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for block in _blocks(_markdown().parse(cell.source)):
                if block[0].type == "heading_open" and block[0].tag == "h1":
                    return _text(block)
    return None


def stem_title(stem: str) -> str:
    """
    >>> stem_title("01_normalized_energy")
    '01 · normalized energy'
    """
    return re.sub(r"^(\d+)_", r"\1 · ", stem).replace("_", " ")


def claim_html(nb) -> str | None:
    """The notebook's **Claim** (or **Claims**) paragraph as HTML, with the list it introduces."""
    md = _markdown()
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        blocks = _blocks(md.parse(cell.source))
        for i, block in enumerate(blocks):
            if block[0].type == "paragraph_open" and block[1].content.startswith("**Claim"):
                chosen = block
                if (
                    block[1].content.rstrip().endswith(":")
                    and i + 1 < len(blocks)
                    and blocks[i + 1][0].type.endswith("list_open")
                ):
                    chosen = block + blocks[i + 1]
                return md.renderer.render(chosen, md.options, {})
    return None


def verdict_cell(nb):
    """The code cell that prints the verdict: tagged ``verdict``, or (executed before the tag existed)
    the one whose source starts with ``print(report.models_ran(``; None when there is neither."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    return next((c for c in code if VERDICT_TAG in c.metadata.get("tags", [])), None) or next(
        (c for c in code if c.source.startswith(VERDICT_SOURCE)), None
    )


def verdict_text(nb) -> str | None:
    """What the verdict cell printed (the models that ran, then the verdict sentences), or None."""
    cell = verdict_cell(nb)
    if cell is None:
        return None
    return "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream").strip() or None


@dataclass
class Figure:
    png: bytes
    alt: str
    cell_id: str | None


@dataclass
class Section:
    """One executed notebook as the index shows it."""

    stem: str
    title: str
    claim_html: str | None
    verdict: str | None
    figures: list[Figure] = field(default_factory=list)

    @property
    def where(self) -> list[str]:
        """The hardware and meter the verdict names ('AMD EPYC (2 cores) (meter: estimate (...))')."""
        return sorted({m["where"] for m in WHERE.finditer(self.verdict or "")})


def outcomes(verdict: str | None) -> list[tuple[str | None, str]]:
    """(part, outcome) of each claim a verdict text decides, in order.

    >>> outcomes("On code: The claim that X was inconclusive at this sample size here: n = 3. "
    ...          "On math: The claim that X did not hold here: 99 %.")
    [('code', 'was inconclusive at this sample size'), ('math', 'did not hold')]
    """
    return [(m["part"], m["outcome"]) for m in OUTCOME.finditer(verdict or "")]


def figures(nb) -> list[Figure]:
    """The PNG outputs of the notebook in order, each with the alt text of its cell."""
    out = []
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if "image/png" in o.get("data", {}):
                out.append(Figure(base64.b64decode(o.data["image/png"]), figure_alt(nb.cells, i), cell.get("id")))
    return out


def section(notebook: Path) -> Section:
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    return Section(notebook.stem, title(nb) or stem_title(notebook.stem), claim_html(nb), verdict_text(nb), figures(nb))


# --- one notebook as HTML ---------------------------------------------------------------------------

# The lab template without its remote scripts, and with an alt text on every image output
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<style>img.ttc-math { display: inline; margin: 0 0.1em; }</style>{%- endblock extra_css -%}
{% block data_png scoped %}{{ super() | replace('<img ', '<img alt="'
    ~ (cell.metadata.get('ttc_alt', '') | e) ~ '" ', 1) }}{% endblock data_png %}
{% block data_jpg scoped %}{{ super() | replace('<img ', '<img alt="'
    ~ (cell.metadata.get('ttc_alt', '') | e) ~ '" ', 1) }}{% endblock data_jpg %}
{% block data_svg scoped %}{{ super() | replace('<img ', '<img alt="'
    ~ (cell.metadata.get('ttc_alt', '') | e) ~ '" ', 1) }}{% endblock data_svg %}
"""


def math_img(tex: str, display: bool = False) -> str:
    """A TeX formula drawn by matplotlib's mathtext as an embedded SVG ``<img>`` whose alt is the TeX;
    a formula mathtext cannot draw stays as its TeX in ``<code>``."""
    import matplotlib
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    prop = FontProperties(size=13 if display else 11)
    s = f"${tex.strip()}$"
    try:
        width, height, depth, _, _ = MathTextParser("path").parse(s, dpi=72, prop=prop)
    except ValueError:
        return f"<code>{html.escape(s)}</code>"
    fig = MplFigure(figsize=(width / 72, height / 72))
    fig.text(0, depth / height, s, fontproperties=prop)
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "ttc-energy", "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, transparent=True)
    src = "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    img = (
        f'<img class="ttc-math" alt="{html.escape(tex.strip())}" src="{src}" '
        f'style="height:{height:.1f}pt;vertical-align:-{depth:.1f}pt">'
    )
    return f'<span style="display:block;text-align:center">{img}</span>' if display else img


def _exporter():
    """nbconvert's HTMLExporter (lab template) with our template and formulas drawn offline."""
    import jinja2
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class MathRenderer(IPythonRenderer):
        def block_math(self, body: str) -> str:
            return math_img(body, display=True)

        def inline_math(self, body: str) -> str:
            return math_img(body)

    class OfflineHTMLExporter(HTMLExporter):
        @jinja2.pass_context
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            renderer = MathRenderer(
                escape=False,
                attachments=cell.get("attachments", {}),
                embed_images=self.embed_images,
                path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                anchor_link_text=self.anchor_link_text,
                exclude_anchor_links=self.exclude_anchor_links,
                **self.lexer_options,
            )
            return MarkdownWithMath(renderer=renderer).render(source)

    return OfflineHTMLExporter(
        template_name="lab",
        template_file="ttc_offline.html.j2",
        extra_loaders=[jinja2.DictLoader({"ttc_offline.html.j2": _TEMPLATE})],
    )


def render_html(notebook_path: Path | str) -> str:
    """The HTML of one executed notebook, readable offline: no remote scripts or styles, images
    embedded as data URIs, each with the alt text of ``figure_alt``, the page titled by the
    notebook's first heading."""
    import nbformat

    path = Path(notebook_path)
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.metadata["ttc_alt"] = figure_alt(nb.cells, i)
    nb.metadata["title"] = title(nb) or stem_title(path.stem)
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": path.stem, "path": str(path.parent)}})
    return body


# --- the index --------------------------------------------------------------------------------------

_CSS = """
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       max-width: 62rem; margin: 0 auto; padding: 1.5rem; background: #fff; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
header p { margin: 0.3rem 0; color: #444; }
section { border-top: 1px solid #ddd; padding: 1rem 0 1.2rem; }
h2 { font-size: 1.25rem; margin: 0.2rem 0 0.6rem; }
h2 a { color: inherit; }
.claim { background: #f5f7fa; border-left: 4px solid #8aa4c8; padding: 0.3rem 0.9rem; font-size: 0.95rem; }
.claim p { margin: 0.4rem 0; }
.verdict { border-left: 4px solid #c8a24a; padding: 0.1rem 0.9rem; font-size: 0.95rem; }
.verdict p { margin: 0.5rem 0; }
.verdict p.models { color: #555; font-size: 0.88rem; }
.thumbs { display: flex; flex-wrap: wrap; gap: 0.6rem; margin: 0.8rem 0; }
.outcome { margin: 0.7rem 0 0.4rem; }
.thumbs img { width: 300px; height: auto; border: 1px solid #ccc; background: #fff; }
.links a { margin-right: 1.2rem; }
.note { color: #666; font-size: 0.9rem; }
code { font-size: 0.9em; }
"""


def _verdict_html(text: str | None) -> str:
    if text is None:
        return f"<p>{NO_VERDICT}</p>"
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    models = ' class="models"'  # the first paragraph: which weights ran
    return "\n".join(f"<p{models if p.startswith('Models that ran here') else ''}>{html.escape(p)}</p>" for p in paras)


def _outcome_html(verdict: str | None) -> str:
    found = outcomes(verdict)
    if not found:
        return ""
    parts = " · ".join(f"<strong>{html.escape(o)}</strong>" + (f" ({html.escape(p)})" if p else "") for p, o in found)
    return f'<p class="outcome">Here the claim: {parts}</p>'


def _section_html(s: Section, repo: str | None, published_path: str, branch: str) -> str:
    page = f"html/{s.stem}.html"
    thumbs = "\n".join(
        f'<a href="{page}{"#cell-id=" + f.cell_id if f.cell_id else ""}">'
        f'<img src="html/img/{s.stem}-{k}.png" alt="{html.escape(f.alt)}"></a>'
        for k, f in enumerate(s.figures, 1)
    )
    links = [
        f'<a href="{page}">Section page (HTML)</a>',
        f'<a href="notebooks/{s.stem}.ipynb">Executed notebook (.ipynb)</a>',
    ]
    if repo:
        links.append(
            f'<a href="{html.escape(nbviewer_url(repo, f"{published_path}/notebooks/{s.stem}.ipynb", branch))}">'
            "On nbviewer</a>"
        )
    claim = f'<div class="claim">{s.claim_html}</div>' if s.claim_html else ""
    return (
        f'<section id="{s.stem}">\n<h2><a href="{page}">{html.escape(s.title)}</a></h2>\n{claim}\n'
        f'{_outcome_html(s.verdict)}\n<div class="verdict">\n{_verdict_html(s.verdict)}\n</div>\n'
        f'<div class="thumbs">\n{thumbs}\n</div>\n<p class="links">{" ".join(links)}</p>\n</section>'
    )


def _published_path(out_dir: Path) -> str:
    """Where ``out_dir`` sits in the repository (``outputs`` for the reference execution)."""
    try:
        return out_dir.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return "outputs"


def index_html(
    sections: list[Section], repo: str | None, published: bool, published_path: str = "outputs", branch: str = "main"
) -> str:
    """The index page for these sections (deterministic: the same sections give the same bytes)."""
    where = sorted({w for s in sections for w in s.where})
    header = [
        "<h1>ttc-energy — what test-time compute costs in energy</h1>",
        "<p>The paper's claims re-measured here, one section per notebook: the claim, what this "
        "execution found, its figures, and the full executed notebook.</p>",
    ]
    if where:
        header.append(f"<p>Runs measured on: {html.escape('; '.join(where))}.</p>")
    if published:
        header.append('<p>The measured runs behind these pages: <a href="published/">published/</a>.</p>')
    if not repo:
        header.append(
            '<p class="note">nbviewer links need a public GitHub remote (git origin on github.com, '
            "or <code>--repo owner/name</code>).</p>"
        )
    body = "\n".join(_section_html(s, repo, published_path, branch) for s in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>ttc-energy — report</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header>\n{chr(10).join(header)}\n</header>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def build_index(out_dir: Path, repo: str | None = None, branch: str = "main") -> Path:
    """Write ``out_dir/index.html`` from ``out_dir/notebooks/*.ipynb`` (sections in file order) and each
    section's figure thumbnails to ``out_dir/html/img/<stem>-<k>.png``. ``repo`` (``owner/name``, else the
    GitHub origin remote) adds the nbviewer links."""
    out_dir = Path(out_dir)
    sections = [section(nb) for nb in sorted((out_dir / "notebooks").glob("*.ipynb"))]
    img = out_dir / "html" / "img"
    img.mkdir(parents=True, exist_ok=True)
    thumbs = {img / f"{s.stem}-{k}.png": f.png for s in sections for k, f in enumerate(s.figures, 1)}
    for stale in set(img.glob("*.png")) - set(thumbs):  # html/img holds only these thumbnails
        stale.unlink()
    for path, png in thumbs.items():
        path.write_bytes(png)
    page = out_dir / "index.html"
    page.write_text(
        index_html(sections, repo or origin_repo(), (out_dir / "published").is_dir(), _published_path(out_dir), branch),
        encoding="utf-8",
    )
    return page


def build_site(out_dir: Path, repo: str | None = None, branch: str = "main") -> Path:
    """Render ``out_dir/html/<stem>.html`` for every ``out_dir/notebooks/*.ipynb``, then the index."""
    out_dir = Path(out_dir)
    (out_dir / "html").mkdir(parents=True, exist_ok=True)
    for nb in sorted((out_dir / "notebooks").glob("*.ipynb")):
        (out_dir / "html" / f"{nb.stem}.html").write_text(render_html(nb), encoding="utf-8")
    return build_index(out_dir, repo, branch)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ttclib.site", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out", nargs="?", type=Path, default=ROOT / "outputs", help="outputs folder (default: outputs/)")
    ap.add_argument("--repo", help="GitHub owner/name for the nbviewer links (default: from the origin remote)")
    ap.add_argument("--branch", default="main")
    ap.add_argument("--index-only", action="store_true", help="only rewrite index.html and its thumbnails")
    args = ap.parse_args(argv)
    page = (build_index if args.index_only else build_site)(args.out, args.repo, args.branch)
    print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
