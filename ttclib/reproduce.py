"""Execute the section notebooks with their params: ``python -m ttclib.reproduce`` (``make reproduce``).

Every params file is validated before any notebook starts (so a typo fails in a second, not
after an hour of measuring). Executed notebooks go to ``outputs/notebooks/`` and HTML renderings
to ``outputs/html/`` (for another profile, to ``outputs/<profile>/notebooks`` and ``/html``, so the
committed reference execution is only replaced by the default profile); runs are cached in the
profile's ``runs_dir``, so a second pass only re-plots.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .params import ParamsError, load_params

ROOT = Path(__file__).resolve().parent.parent


def params_for(notebook: Path) -> Path:
    return ROOT / "params" / f"{notebook.stem}.yaml"


def validate(notebooks: list[Path], profile: str) -> dict[Path, dict]:
    """Every notebook's params file under ``profile``, and the notebook parameters it sets (which must
    be parameters of that notebook). Raises ParamsError naming file and key."""
    import papermill as pm

    extra = {}
    for nb in notebooks:
        p = params_for(nb)
        if not p.is_file():
            raise ParamsError(f"{p}: missing (every notebook needs params/<notebook name>.yaml)")
        plan = load_params(p, profile)
        known = set(pm.inspect_notebook(str(nb)))
        unknown = sorted(set(plan.notebook) - known)
        if unknown:
            raise ParamsError(f"{p}: profiles.{profile}.notebook: {', '.join(unknown)} not among the parameters of "
                              f"{nb.name} ({', '.join(sorted(known))})")
        extra[nb] = plan.notebook
    return extra


def execute(notebook: Path, profile: str, out_dir: Path, html_dir: Path, progress: bool = True,
            parameters: dict | None = None) -> Path:
    import papermill as pm
    from nbconvert import HTMLExporter

    out = out_dir / notebook.name
    pm.execute_notebook(str(notebook), str(out), cwd=str(notebook.parent), kernel_name="python3",
                        parameters={"params_file": str(Path("..") / "params" / f"{notebook.stem}.yaml"),
                                    "profile": profile, **(parameters or {})},
                        progress_bar=progress)
    html, _ = HTMLExporter().from_filename(str(out))
    (html_dir / f"{notebook.stem}.html").write_text(html)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ttclib.reproduce", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: notebooks/NN_*.ipynb)")
    ap.add_argument("--profile", default="default", help="params profile (default: default)")
    ap.add_argument("--out", type=Path, help="outputs folder (default: outputs/, or outputs/<profile>/ for "
                                              "a profile other than default)")
    args = ap.parse_args(argv)
    args.out = args.out or (ROOT / "outputs" if args.profile == "default" else ROOT / "outputs" / args.profile)
    os.environ["TTC_PROGRESS"] = "0"  # executed notebooks get one line per run, not progress bars
    notebooks = [nb.resolve() for nb in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    try:
        extra = validate(notebooks, args.profile)
    except ParamsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    (args.out / "notebooks").mkdir(parents=True, exist_ok=True)
    (args.out / "html").mkdir(parents=True, exist_ok=True)
    for nb in notebooks:
        t0 = time.time()
        print(f"== {nb.name} [{args.profile}]", flush=True)
        out = execute(nb, args.profile, args.out / "notebooks", args.out / "html", parameters=extra[nb])
        print(f"   {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}  ({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
