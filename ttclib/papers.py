"""The three papers ttc-energy reproduces, named once.

Code, params files, notebooks and the README cite a paper the same way, as :attr:`Paper.cite` gives it:
``Jin et al. [000]``, ``Wilhelm et al. [001]``, ``Maliakel et al. [002]`` (the key is the paper's file
in ``shared/papers``). The full reference is :attr:`Paper.reference`; the README's "Papers" section lists
all three. A year, venue or identifier is given only where the paper's own text states it.

>>> cite("002")
'Maliakel et al. [002]'
>>> PAPERS["001"].year, PAPERS["001"].link
(2025, 'https://doi.org/10.1145/3721146.3721953')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    key: str  # "000", "001", "002"
    authors: tuple[str, ...]
    title: str
    venue: str  # as the text states it; "" where it states none
    year: int | None  # None: the text states none
    link: str = ""  # DOI or arXiv address, where the text gives one
    sections: str = ""  # the notebooks that reproduce it

    @property
    def cite(self) -> str:
        return f"{self.authors[0].split()[-1]} et al. [{self.key}]"

    @property
    def reference(self) -> str:
        names = ", ".join(self.authors[:-1]) + " and " + self.authors[-1]
        where = ", ".join(str(x) for x in (self.venue, self.year) if x)
        return " ".join(
            part for part in (f"{names}.", f"{self.title}.", f"{where}." if where else "", self.link) if part
        )


PAPERS: dict[str, Paper] = {
    p.key: p
    for p in (
        Paper(
            "000",
            ("Yunho Jin", "Gu-Yeon Wei", "David Brooks"),
            "The Energy Cost of Reasoning: Analyzing Energy Usage in LLMs with Test-time Compute",
            "",
            None,
            sections="notebooks 00-05",
        ),
        Paper(
            "001",
            ("Patrick Wilhelm", "Thorsten Wittkopp", "Odej Kao"),
            "Beyond Test-Time Compute Strategies: Advocating Energy-per-Token in LLM Inference",
            "EuroMLSys '25 (5th Workshop on Machine Learning and Systems), Rotterdam",
            2025,
            "https://doi.org/10.1145/3721146.3721953",
            sections="notebooks 06-07",
        ),
        Paper(
            "002",
            ("Paul Joe Maliakel", "Shashikant Ilager", "Ivona Brandic"),
            "Characterizing LLM Inference Energy-Performance Tradeoffs across Workloads and GPU Scaling",
            "",
            None,
            sections="notebooks 08-10",
        ),
    )
}


def cite(key: str) -> str:
    """How code and prose cite the paper ``key``."""
    try:
        return PAPERS[key].cite
    except KeyError:
        raise ValueError(f"unknown paper {key!r}; known: {', '.join(PAPERS)}") from None
