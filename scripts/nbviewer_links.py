"""Print the nbviewer link of every committed reference notebook (outputs/notebooks/*.ipynb).

nbviewer renders a notebook from its public GitHub address, so the links need the repository's
public name: taken from `git remote get-url origin`, or given with --repo owner/name.

    python scripts/nbviewer_links.py                 # from the origin remote
    python scripts/nbviewer_links.py --repo me/ttc-energy --branch main
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# ttclib/site.py by its path: `make nbviewer` runs this with a Python that cannot import the package
_spec = importlib.util.spec_from_file_location("ttclib_site", ROOT / "ttclib" / "site.py")
site = sys.modules["ttclib_site"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(site)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", help="GitHub owner/name (default: from the origin remote)")
    ap.add_argument("--branch", default="main")
    args = ap.parse_args(argv)
    repo = args.repo or site.origin_repo()
    if not repo:
        print("error: no GitHub origin remote; pass --repo owner/name", file=sys.stderr)
        return 2
    for nb in sorted((ROOT / "outputs" / "notebooks").glob("*.ipynb")):
        print(f"| {nb.stem} | {site.nbviewer_url(repo, f'outputs/notebooks/{nb.name}', args.branch)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
