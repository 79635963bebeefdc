"""Params files: the shipped ones validate; bad input gets one clear error naming file and key."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ttclib.experiment import ParamsError, RunSpec, load_params

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", sorted((ROOT / "params").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_params_validate(path):
    plan = load_params(path, "default")
    assert plan.specs and plan.runs_dir == (ROOT / "outputs" / "runs").resolve()
    assert len({s.run_id for s in plan.specs}) == len(plan.specs)


def write(tmp_path, body: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(textwrap.dedent(body))
    return p


GOOD = """
profiles:
  default:
    defaults: {benchmark: arithmetic, per_level: 2}
    grid:
      model: [random:tiny-qwen2]
      strategy: [{strategy: base, max_new_tokens: 8}, {strategy: cot, max_new_tokens: 16}]
"""


def test_grid_expands_mappings_and_scalars(tmp_path):
    plan = load_params(write(tmp_path, GOOD))
    assert [(s.strategy, s.max_new_tokens) for s in plan.specs] == [("base", 8), ("cot", 16)]
    assert plan.runs_dir == (tmp_path / "../outputs/runs").resolve()


@pytest.mark.parametrize("bad, expected", [
    (GOOD.replace("per_level: 2", "per_levle: 2"), "profiles.default.defaults.per_levle: Extra inputs are not permitted"),
    (GOOD.replace("max_new_tokens: 16", "max_new_tokens: many"), "profiles.default.grid.strategy[1].max_new_tokens:"),
    (GOOD.replace("strategy: cot", "strategy: tree"), "profiles.default.grid.strategy[1].strategy: Value error, unknown strategy 'tree'"),
    (GOOD.replace("per_level: 2", "per_level: 0"), "profiles.default.defaults.per_level: Input should be greater than or equal to 1"),
    (GOOD.replace("random:tiny-qwen2", "random:qwen9"), "profiles.default.grid.model[0]: Value error, model 'random:qwen9': no config"),
    (GOOD.replace("per_level: 2", "levels: [easy, impossible]"), "levels ['impossible'] not in benchmark"),
    (GOOD.replace("  default:", "  defualt:"), "profiles.default: no such profile (have: defualt)"),
    (GOOD + "extra_top: 1\n", "extra_top: Extra inputs are not permitted"),
    ("profiles: [1, 2", "not valid YAML"),
])
def test_bad_params_name_file_and_key(tmp_path, bad, expected):
    path = write(tmp_path, bad)
    with pytest.raises(ParamsError) as e:
        load_params(path)
    assert str(path) in str(e.value) and expected in str(e.value)


def test_cli_reports_bad_params_without_traceback(tmp_path):
    path = write(tmp_path, GOOD.replace("per_level: 2", "per_levle: 2"))
    r = subprocess.run([sys.executable, "-m", "ttclib.cli", "run", str(path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().startswith(f"error: {path}: profiles.default.defaults.per_levle")
    assert "Traceback" not in r.stderr


def test_cli_dry_run_lists_runs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ttclib.cli", "run", str(write(tmp_path, GOOD)), "--dry-run"],
                       capture_output=True, text=True, check=True)
    assert r.stdout.count("to run") == 2


def test_run_id_is_a_hash_of_everything_that_matters():
    a = RunSpec(model="random:tiny-qwen2", strategy="base")
    assert a.run_id == RunSpec(model="random:tiny-qwen2", strategy="base").run_id
    assert a.run_id != RunSpec(model="random:tiny-qwen2", strategy="base", max_new_tokens=64).run_id
    assert a.run_id != RunSpec(model="random:tiny-qwen2", strategy="mv").run_id
    assert a.run_id != RunSpec(model="random:tiny-qwen2", strategy="base", samples=2).run_id
