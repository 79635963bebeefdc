"""The papers are named in one place (ttclib.papers) and cited one way everywhere."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ttclib import benchmarks, papers

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "papers"
CITATION = re.compile(r"(\w[\w-]*) et al\. \[(\d{3})\]")


def _tracked_text() -> dict[str, str]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    keep = [n for n in names if n.endswith((".py", ".yaml", ".md", ".ipynb")) or n == "Makefile"]
    return {
        n: (ROOT / n).read_text(errors="replace") for n in keep if not n.startswith("outputs/") and (ROOT / n).exists()
    }


@pytest.fixture(scope="module")
def text() -> dict[str, str]:
    return _tracked_text()


def test_every_citation_names_the_papers_first_author(text):
    found = 0
    for name, body in text.items():
        for author, key in CITATION.findall(body):
            found += 1
            assert key in papers.PAPERS, f"{name}: cites unknown paper [{key}]"
            assert f"{author} et al. [{key}]" == papers.cite(key), f"{name}: {author} et al. [{key}]"
    assert found > 100  # the citations are there to check


def test_no_other_way_of_naming_a_paper_is_left(text):
    # A benchmark's description is hashed into its runs' ids (spec.run_id_at): older wording stays.
    frozen = [benchmarks.get(name).description for name in benchmarks.REGISTRY]
    other = re.compile(r"\bpaper 00\d\b|\b(?:Jin|Wilhelm|Maliakel) et al\.(?! \[\d{3}\])", re.I)
    left = []
    for name, body in text.items():
        if name == "tests/test_papers.py":
            continue
        for description in frozen:
            body = body.replace(description, "")
        left += [f"{name}: {m.group(0)}" for m in other.finditer(body)]
    assert not left, left[:10]


def test_the_readme_lists_every_paper_as_the_registry_does(text):
    readme = text["README.md"]
    for p in papers.PAPERS.values():
        block = readme[readme.index(f"**{p.cite}**") :][:600].replace("\n  ", " ")
        assert p.title in block and all(a in block for a in p.authors) and (p.link in block)
    with pytest.raises(ValueError, match="unknown paper '003'"):
        papers.cite("003")


@pytest.mark.skipif(not SHARED.exists(), reason="no ../shared/papers on this machine")
def test_titles_and_authors_are_the_papers_own():
    for key, p in papers.PAPERS.items():
        (source,) = SHARED.glob(f"{key}_*.txt")
        head = " ".join(source.read_text()[:3000].split())
        assert p.title.lower() in head.lower(), key
        assert all(a.split()[-1].lower() in head.lower() for a in p.authors), key
        if p.link:
            assert p.link.removeprefix("https://doi.org/") in source.read_text()
