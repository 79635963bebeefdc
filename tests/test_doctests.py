"""The runnable examples in the library's docstrings run and hold."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["ttclib.answers", "ttclib.benchmarks", "ttclib.strategies", "ttclib.metrics", "ttclib.routing", "ttclib.fits",
           "ttclib.sandbox", "ttclib.spec", "ttclib.rundir", "ttclib.gpu_hours", "ttclib.report",
           "ttclib.reference", "ttclib.verdicts", "ttclib.params", "ttclib.models", "ttclib.plots",
           "ttclib.watchdog", "ttclib.site", "ttclib.footprint", "ttclib.tradeoff", "ttclib.prompts",
           "ttclib.energy.clocks", "ttclib.energy.attribution", "ttclib.dvfs", "ttclib.serving",
           "ttclib.benchmarks.knowledge", "ttclib.features", "ttclib.policies", "ttclib.cluster"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
