"""Print the nbviewer link of every committed reference notebook (outputs/notebooks/*.ipynb).

nbviewer renders a notebook from its public GitHub address, so the links need the repository's
public name: taken from `git remote get-url origin`, or given with --repo owner/name.

    python scripts/nbviewer_links.py                 # from the origin remote
    python scripts/nbviewer_links.py --repo me/ttc-energy --branch main
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def origin_repo() -> str | None:
    try:
        url = subprocess.run(["git", "-C", str(ROOT), "remote", "get-url", "origin"], capture_output=True,
                             text=True, check=True).stdout.strip()
    except subprocess.CalledProcessError:
        return None
    m = re.search(r"github\.com[:/](?P<repo>[^/]+/[^/]+?)(?:\.git)?$", url)
    return m and m["repo"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", help="GitHub owner/name (default: from the origin remote)")
    ap.add_argument("--branch", default="main")
    args = ap.parse_args(argv)
    repo = args.repo or origin_repo()
    if not repo:
        print("error: no GitHub origin remote; pass --repo owner/name", file=sys.stderr)
        return 2
    for nb in sorted((ROOT / "outputs" / "notebooks").glob("*.ipynb")):
        print(f"| {nb.stem} | https://nbviewer.org/github/{repo}/blob/{args.branch}/outputs/notebooks/{nb.name} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
