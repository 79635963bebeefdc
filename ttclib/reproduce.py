"""Execute the section notebooks with their params: ``python -m ttclib.reproduce`` (``make reproduce``).

Every params file is validated before any notebook starts (so a typo fails in a second, not
after an hour of measuring). Executed notebooks go to ``outputs/notebooks/`` and HTML renderings
to ``outputs/html/`` (for another profile, to ``outputs/<profile>/notebooks`` and ``/html``, so the
committed reference execution is only replaced by the default profile); runs are cached in the
profile's ``runs_dir``, so a second pass only re-plots. The runs behind the notebooks are then
published with them (``<out>/published/runs``: run.json, queries and power per run) and
``<out>/index.html`` lists the sections.

``--runs FOLDER`` measures nothing: the notebooks analyse the runs in FOLDER (``make report``
re-executes them on the published reference runs into ``outputs/report/``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from . import site
from .params import ParamsError, Plan, load_params

ROOT = Path(__file__).resolve().parent.parent


def params_for(notebook: Path) -> Path:
    return ROOT / "params" / f"{notebook.stem}.yaml"


def validate(notebooks: list[Path], profile: str) -> dict[Path, dict]:
    """Every notebook's params file under ``profile``, and the notebook parameters it sets (which must
    be parameters of that notebook). Raises ParamsError naming file and key."""
    return {nb: plan.notebook for nb, plan in plans(notebooks, profile).items()}


def plans(notebooks: list[Path], profile: str) -> dict[Path, Plan]:
    """Every notebook's validated plan under ``profile`` (see :func:`validate`)."""
    import papermill as pm

    found = {}
    for nb in notebooks:
        p = params_for(nb)
        if not p.is_file():
            raise ParamsError(f"{p}: missing (every notebook needs params/<notebook name>.yaml)")
        plan = load_params(p, profile)
        known = set(pm.inspect_notebook(str(nb)))
        unknown = sorted(set(plan.notebook) - known)
        if unknown:
            raise ParamsError(
                f"{p}: profiles.{profile}.notebook: {', '.join(unknown)} not among the parameters of "
                f"{nb.name} ({', '.join(sorted(known))})"
            )
        found[nb] = plan
    return found


def publish(plans: list[Plan], dest: Path) -> Path:
    """Copy the sealed files of every run of ``plans`` to ``dest/runs/<run_id>/`` (runs no plan uses
    are removed) and describe them in ``dest/README.md``; returns ``dest``. Another machine's
    ``make report`` analyses these; its ``make reproduce`` never takes them for its own
    (:func:`ttclib.runner.cached` checks the hardware)."""
    from . import hardware, rundir

    runs = {s.run_id: rundir.run_dir(s, p.runs_dir) for p in plans for s in p.specs}
    out = dest / "runs"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.name not in runs:
            shutil.rmtree(old)
    rows = []
    for run_id, src in sorted(runs.items()):
        why = rundir.damage(src)
        if why is not None:
            raise RuntimeError(f"{src}: damaged or incomplete, not published: {why}")
        (out / run_id).mkdir(exist_ok=True)
        for name in (*rundir.SEALED, rundir.MANIFEST):
            shutil.copy2(src / name, out / run_id / name)
        info = rundir.read_info(src)
        rows.append(
            f"| {run_id} | {info['spec']['model']} | {info['strategy']} | {info['benchmark']} | "
            f"{info['n_queries']} | {info['energy_j']:.0f} | {info['meter_name']} | "
            f"{hardware.fingerprint(info['hardware'])} |"
        )
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    (dest / "README.md").write_text(
        "# Published runs\n\nThe measured runs behind the executed notebooks in `../notebooks/`: per run its "
        "`run.json` (spec, meter, hardware, windows), `queries.parquet` (one row per query: text, answer, tokens, "
        "times, energy), `power.parquet` (the power trace), `spec.json` and `manifest.json` (sha256 of each). "
        f"{len(runs)} runs, {size / 1e6:.1f} MB.\n\n"
        "`make report` re-executes every notebook on these runs without measuring. `make reproduce` measures "
        "afresh on your machine: a run measured on other hardware is never reused as yours.\n\n"
        "| run | model | strategy | benchmark | queries | energy (J) | meter | hardware |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    return dest


def execute(
    notebook: Path, profile: str, out_dir: Path, html_dir: Path, progress: bool = True, parameters: dict | None = None
) -> Path:
    import papermill as pm

    out = out_dir / notebook.name
    pm.execute_notebook(
        str(notebook),
        str(out),
        cwd=str(notebook.parent),
        kernel_name="python3",
        parameters={
            "params_file": str(Path("..") / "params" / f"{notebook.stem}.yaml"),
            "profile": profile,
            **(parameters or {}),
        },
        progress_bar=progress,
    )
    (html_dir / f"{notebook.stem}.html").write_text(site.render_html(out), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ttclib.reproduce", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="notebooks to run (default: notebooks/NN_*.ipynb; the runs are published only when all run)",
    )
    ap.add_argument("--profile", default="default", help="params profile (default: default)")
    ap.add_argument(
        "--out",
        type=Path,
        help="outputs folder (default: outputs/, or outputs/<profile>/ for a profile other than default)",
    )
    ap.add_argument(
        "--runs",
        type=Path,
        metavar="FOLDER",
        help="analyse the finished runs in FOLDER instead of measuring (make report: outputs/published/runs)",
    )
    args = ap.parse_args(argv)
    args.out = args.out or (ROOT / "outputs" if args.profile == "default" else ROOT / "outputs" / args.profile)
    os.environ["TTC_PROGRESS"] = "0"  # executed notebooks get one line per run, not progress bars
    every = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    notebooks = [nb.resolve() for nb in args.notebooks] or every
    try:
        grids = plans(notebooks, args.profile)
        if args.runs is not None:
            from .runner import stored_runs

            for plan in grids.values():
                stored_runs(plan, args.runs)  # every run present before any notebook starts
    except ParamsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    (args.out / "notebooks").mkdir(parents=True, exist_ok=True)
    (args.out / "html").mkdir(parents=True, exist_ok=True)
    given = {} if args.runs is None else {"runs_dir": str(args.runs.resolve())}
    for nb in notebooks:
        t0 = time.time()
        print(f"== {nb.name} [{args.profile}]", flush=True)
        out = execute(
            nb, args.profile, args.out / "notebooks", args.out / "html", parameters={**grids[nb].notebook, **given}
        )
        print(f"   {_shown(out)}  ({time.time() - t0:.0f} s)", flush=True)
    if args.runs is None and sorted(notebooks) == every:
        print(f"   {_shown(publish(list(grids.values()), args.out / 'published'))}: the runs behind them", flush=True)
    print(f"   {_shown(site.build_index(args.out))}: the index of the sections", flush=True)
    return 0


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


if __name__ == "__main__":
    sys.exit(main())
