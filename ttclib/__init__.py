"""ttclib — measure what test-time compute costs in energy.

The notebooks call :func:`run_grid` with their params file; it validates the grid, measures
the runs that are not cached yet, and returns the loaded tables.

>>> import ttclib
>>> study = ttclib.run_grid("params/00_overview.yaml")        # doctest: +SKIP
>>> study.runs[["model", "strategy", "accuracy", "energy_per_query_j", "meter"]]  # doctest: +SKIP
"""
from __future__ import annotations

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


def run_grid(params_file: str, profile: str = "default", *, runs_dir: str | None = None,
             progress: bool | None = None) -> Study:
    """Validate ``params_file``, run (or load from cache) every run of ``profile``, load them.

    With ``runs_dir``, nothing is measured: the runs are loaded from that folder of finished runs
    (e.g. the published reference runs, ``outputs/published/runs``), and a run it lacks is an error.
    """
    from .metrics import load_runs
    from .runner import run_plan, stored_runs

    plan = load_params(params_file, profile)
    dirs = run_plan(plan, progress=progress) if runs_dir is None else stored_runs(plan, runs_dir)
    return Study(plan, load_runs(dirs))


__all__ = ["ParamsError", "Plan", "RunSpec", "RunSet", "Study", "execute", "load_params", "load_runs",
           "run_grid", "run_plan", "__version__"]
