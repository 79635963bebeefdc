"""ttclib — measure what test-time compute costs in energy.

The notebooks call :func:`run_grid` with their params file; it validates the grid, measures
the runs that are not cached yet, and returns the loaded tables.

>>> import ttclib
>>> study = ttclib.run_grid("params/00_overview.yaml")        # doctest: +SKIP
>>> study.runs[["model", "strategy", "accuracy", "energy_per_query_j", "meter"]]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .params import ParamsError, Plan, load_params
from .spec import RunSpec

if TYPE_CHECKING:
    from .metrics import RunSet

# pandas and the runner load on first use, so `ttc run --dry-run` answers a bad params file fast
_LAZY = {"RunSet": "metrics", "load_runs": "metrics", "execute": "runner", "run_plan": "runner"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.1.0"


@dataclass
class Study:
    """A plan and its measured runs."""

    plan: Plan
    data: RunSet

    @property
    def runs(self):
        return self.data.runs

    @property
    def queries(self):
        return self.data.queries

    @property
    def results(self):
        return self.data.results

    @property
    def power(self):
        return self.data.power


def run_grid(
    params_file: str, profile: str = "default", *, runs_dir: str | None = None, progress: bool | None = None
) -> Study:
    """Validate ``params_file``, run (or load from cache) every run of ``profile``, load them.

    With ``runs_dir``, nothing is measured: the runs are loaded from that folder of finished runs
    (e.g. the published reference runs, ``outputs/published/runs``), and a run it lacks is an error.

    With the environment variable ``TTC_MEASURE=0`` (a notebook opened on a cluster's login node while
    the grid's jobs run, ``ttc run --executor slurm``), nothing is measured either: the complete runs of
    the profile's own ``runs_dir`` are analysed, and one line says which runs are still missing.
    """
    from .metrics import load_runs
    from .runner import run_plan, stored_runs

    plan = load_params(params_file, profile)
    if runs_dir is None and os.environ.get("TTC_MEASURE", "1") == "0":
        plan, dirs = _complete_only(plan)
    else:
        dirs = run_plan(plan, progress=progress) if runs_dir is None else stored_runs(plan, runs_dir)
    return Study(plan, load_runs(dirs))


def _complete_only(plan: Plan):
    """The plan narrowed to its complete runs (printing what is missing) and their directories."""
    import dataclasses

    from .rundir import is_complete, run_dir

    done = [s for s in plan.specs if is_complete(s, plan.runs_dir)]
    missing = [s for s in plan.specs if s not in done]
    if not done:
        raise ParamsError(
            f"{plan.path}: profiles.{plan.profile}: none of its {len(plan.specs)} runs is complete in "
            f"{plan.runs_dir} yet (TTC_MEASURE=0 measures nothing; `ttc status` says where they are)"
        )
    if missing:
        print(
            f"TTC_MEASURE=0: analysing {len(done)} of {len(plan.specs)} runs; not measured yet: "
            + "; ".join(f"{s.run_id} ({s.model}, {s.strategy}, {s.benchmark})" for s in missing[:8])
            + (" ..." if len(missing) > 8 else "")
            + " — the figures and verdicts below lack them",
            flush=True,
        )
    return dataclasses.replace(plan, specs=done), [run_dir(s, plan.runs_dir) for s in done]


__all__ = [
    "ParamsError",
    "Plan",
    "RunSpec",
    "RunSet",
    "Study",
    "execute",
    "load_params",
    "load_runs",
    "run_grid",
    "run_plan",
    "__version__",
]
