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
    (GOOD.replace("per_level: 2", "server: {tp_size: 0}"), "profiles.default.defaults.server.tp_size: Input should be greater than or equal to 1"),
    (GOOD.replace("per_level: 2", "server: {tp: 2}"), "profiles.default.defaults.server.tp: Extra inputs are not permitted"),
    (GOOD.replace("per_level: 2", "data: nowhere/test.jsonl"), "profiles.default.defaults.data: no such file or directory: "),
    (GOOD.replace("benchmark: arithmetic", "benchmark: math5000"), "profiles.default.defaults.benchmark: Value error, unknown benchmark 'math5000'"),
    (GOOD.replace("per_level: 2", "top_p: 1.5"), "profiles.default.defaults.top_p: Input should be less than or equal to 1"),
    (GOOD.replace("per_level: 2", "backend: vllm"), "profiles.default.defaults.backend: Input should be 'auto', 'transformers' or 'sglang'"),
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


def test_data_paths_are_relative_to_the_params_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.jsonl").write_text('{"problem": "1+1?", "answer": "2", "level": 1}\n')
    plan = load_params(write(tmp_path, GOOD.replace("benchmark: arithmetic, per_level: 2",
                                                    "benchmark: math500, data: data/test.jsonl, per_level: null")))
    spec = plan.specs[0]
    assert spec.data_path == tmp_path / "data" / "test.jsonl" and spec.per_level is None
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "data").mkdir()
    (other / "data" / "test.jsonl").write_text((tmp_path / "data" / "test.jsonl").read_text())
    moved = load_params(write(other, GOOD.replace("benchmark: arithmetic, per_level: 2",
                                                  "benchmark: math500, data: data/test.jsonl, per_level: null")))
    assert moved.specs[0].run_id == spec.run_id      # the same study in another checkout: same run ids


def test_where_the_server_runs_does_not_change_the_run_id():
    from ttclib.server import ServerOptions

    a = RunSpec(model="random:tiny-qwen2", strategy="base", backend="sglang")
    attached = RunSpec(model="random:tiny-qwen2", strategy="base", backend="sglang",
                       server=ServerOptions(url="http://gpu-box:30000", python="/opt/sglang/bin/python"))
    assert a.run_id == attached.run_id
    assert a.run_id != RunSpec(model="random:tiny-qwen2", strategy="base", backend="sglang",
                               server=ServerOptions(tp_size=2)).run_id


def test_runs_share_a_server_only_when_its_launch_settings_match():
    from ttclib.experiment import backend_key
    from ttclib.server import ServerOptions

    base = dict(model="random:tiny-qwen2", backend="sglang", device="cpu")
    a, b = RunSpec(strategy="base", **base), RunSpec(strategy="mv", **base)
    assert backend_key(a) == backend_key(b)
    assert backend_key(a) != backend_key(RunSpec(strategy="base", batch_size=8, **base))
    assert backend_key(a) != backend_key(RunSpec(strategy="base", server=ServerOptions(tp_size=2), **base))
    # transformers takes the batch size per call: one loaded model serves every batch size
    t = dict(model="random:tiny-qwen2", backend="transformers", device="cpu", strategy="base")
    assert backend_key(RunSpec(**t)) == backend_key(RunSpec(batch_size=8, **t))


def test_auto_backend_is_transformers_without_a_gpu(monkeypatch):
    from ttclib import hardware, serving

    serving.sglang_usable.cache_clear()
    monkeypatch.setattr(hardware, "gpus", lambda: [])
    assert serving.resolve_backend("auto") == "transformers" and serving.resolve_device("auto") == "cpu"
    serving.sglang_usable.cache_clear()
    monkeypatch.setattr(hardware, "gpus", lambda: [{"index": 0, "name": "H100"}])
    monkeypatch.setenv("TTC_SGLANG_PYTHON", sys.executable)
    assert serving.resolve_backend("auto") == "sglang" and serving.resolve_device("auto") == "cuda"
    serving.sglang_usable.cache_clear()


def test_missing_benchmark_data_stops_before_any_model_loads(tmp_path, monkeypatch):
    import datasets

    from ttclib import experiment

    monkeypatch.delenv("TTC_DATA_DIR", raising=False)
    monkeypatch.setattr(experiment, "open_backend", lambda *a, **k: pytest.fail("a model was loaded"))

    def offline(*a, **k):
        raise ConnectionError("Couldn't reach 'open-r1/codeforces' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    path = write(tmp_path, GOOD.replace("benchmark: arithmetic", "benchmark: codeforces"))
    with pytest.raises(ParamsError, match=r"p.yaml: profiles.default: run \w+ \(random:tiny-qwen2, base\): "
                                          r"benchmark 'codeforces': could not load open-r1/codeforces split test "
                                          r"from the Hugging Face hub \(ConnectionError"):
        experiment.run_plan(load_params(path), progress=False)
    path = write(tmp_path, GOOD.replace("benchmark: arithmetic", "benchmark: mtbench, subsets: [poetry]"))
    with pytest.raises(ParamsError, match=r"benchmark 'mtbench' has no subset\(s\) \['poetry'\]"):
        experiment.run_plan(load_params(path), progress=False)
