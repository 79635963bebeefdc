"""Params files: the shipped ones validate; bad input gets one clear error naming file and key."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ttclib.params import ParamsError, load_params
from ttclib.spec import RunSpec

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", sorted((ROOT / "params").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_params_validate(path):
    plan = load_params(path, "default")
    runs = {"paper.yaml": ("outputs", "paper", "runs"), "gpu_check.yaml": ("outputs", "gpu", "runs")}.get(
        path.name, ("outputs", "runs"))
    assert plan.specs and plan.runs_dir == ROOT.joinpath(*runs).resolve()
    assert len({s.run_id for s in plan.specs}) == len(plan.specs)


def write(folder: Path, body: str, name: str = "p.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
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
    from ttclib.runner import backend_key
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

    from ttclib import runner

    monkeypatch.delenv("TTC_DATA_DIR", raising=False)
    monkeypatch.setattr(runner, "open_backend", lambda *a, **k: pytest.fail("a model was loaded"))

    def offline(*a, **k):
        raise ConnectionError("Couldn't reach 'open-r1/codeforces' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    path = write(tmp_path, GOOD.replace("benchmark: arithmetic", "benchmark: codeforces"))
    with pytest.raises(ParamsError, match=r"p.yaml: profiles.default: run \w+ \(random:tiny-qwen2, base\): "
                                          r"benchmark 'codeforces': could not load open-r1/codeforces split test "
                                          r"from the Hugging Face hub \(ConnectionError"):
        runner.run_plan(load_params(path), progress=False)
    path = write(tmp_path, GOOD.replace("benchmark: arithmetic", "benchmark: mtbench, subsets: [poetry]"))
    with pytest.raises(ParamsError, match=r"benchmark 'mtbench' has no subset\(s\) \['poetry'\]"):
        runner.run_plan(load_params(path), progress=False)


# --- the paper's study: params/paper.yaml ----------------------------------------------------

PAPER = ROOT / "params" / "paper.yaml"
SIZES = ("1.5B", "7B", "14B", "32B")
INSTRUCT = {f"Qwen/Qwen2.5-{n}-Instruct" for n in SIZES}
DISTILL = {f"deepseek-ai/DeepSeek-R1-Distill-Qwen-{n}" for n in SIZES}
TABLE_1 = {"aime24", "aime25", "gpqa_diamond", "math500", "humaneval", "livecodebench", "mbpp", "codeforces",
           "hellaswag", "mmlu", "gsm8k", "commonsenseqa"}


@pytest.mark.parametrize("profile", ["default", "length_sweep", "batch"])
def test_paper_profiles_are_the_papers_settings(profile):
    plan = load_params(PAPER, profile)
    assert plan.specs and all(isinstance(s, RunSpec) for s in plan.specs)
    assert plan.runs_dir == (ROOT / "outputs" / "paper" / "runs").resolve()
    assert plan.figures_dir == (ROOT / "outputs" / "paper" / "figures").resolve()
    assert len({s.run_id for s in plan.specs}) == len(plan.specs)
    for s in plan.specs:
        assert (s.backend, s.dtype, s.repetitions, s.per_level, s.meter, s.device) == \
            ("sglang", "bfloat16", 10, None, "nvml", "cuda"), s
        # Base and MV ask the Instruct model, RT the distill of the same size
        assert s.model in (DISTILL if s.strategy == "rt" else INSTRUCT), (s.model, s.strategy)
        assert s.server.tp_size == (2 if s.model.endswith(("32B", "32B-Instruct")) else 1), s.model
        assert s.max_new_tokens <= 32768 and s.samples is None and s.budget is None
    assert max(s.max_new_tokens for s in plan.specs) == 32768


def test_paper_default_profile_is_table_1():
    specs = load_params(PAPER).specs
    assert {s.benchmark for s in specs} == TABLE_1
    assert {s.model for s in specs} == INSTRUCT | DISTILL
    assert {(s.strategy, s.model) for s in specs} == ({("base", m) for m in INSTRUCT} | {("mv", m) for m in INSTRUCT}
                                                      | {("rt", m) for m in DISTILL})
    assert len(specs) == 12 * 12 and {(s.batch_size, s.max_new_tokens) for s in specs} == {(16, 32768)}
    assert {s.resolved_strategy.samples for s in specs if s.strategy == "mv"} == {5}


def test_paper_length_sweep_and_batch_profiles():
    sweep = load_params(PAPER, "length_sweep").specs
    assert sorted({s.max_new_tokens for s in sweep}) == [round(32768 * k / 10) for k in range(1, 11)]
    assert sorted({s.max_new_tokens for s in sweep})[:2] == [3277, 6554]
    assert {s.benchmark for s in sweep} == {"math500", "livecodebench"} and {s.strategy for s in sweep} == {"base", "rt"}
    assert {s.model for s in sweep} == INSTRUCT | DISTILL and len(sweep) == 8 * 2 * 10
    batch = load_params(PAPER, "batch").specs
    assert {s.model for s in batch} == {"Qwen/Qwen2.5-32B-Instruct", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"}
    assert sorted({s.batch_size for s in batch}) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert {s.benchmark for s in batch} == {"math500", "livecodebench"} and {s.server.tp_size for s in batch} == {2}
    # the shared points are the same runs, measured once
    default = {s.run_id for s in load_params(PAPER).specs}
    assert len(default & {s.run_id for s in sweep}) == 2 * 8 and len(default & {s.run_id for s in batch}) == 4


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "params").glob("0*.yaml")
                                        if "paper:" in p.read_text()), ids=lambda p: p.name)
def test_section_paper_profiles_are_paper_yaml_runs(path):
    import yaml

    entry = yaml.safe_load(path.read_text())["profiles"]["paper"]
    plan = load_params(path, "paper")
    same = load_params(PAPER, entry.get("profile", "default"))
    assert [s.run_id for s in plan.specs] == [s.run_id for s in same.specs]
    assert (plan.runs_dir, plan.figures_dir) == (same.runs_dir, same.figures_dir)
    assert plan.path == path and plan.uses == (PAPER.parent / "paper.yaml", entry.get("profile", "default"))


# --- `use:` another file's profile ----------------------------------------------------------

SHARED = """
title: shared study
profiles:
  default:
    runs_dir: runs
    figures_dir: figs
    defaults: {benchmark: math500, data: data/test.jsonl, per_level: null}
    grid:
      model: [random:tiny-qwen2]
      strategy: [{strategy: base, max_new_tokens: 8}]
  other:
    runs_dir: other-runs
    defaults: {benchmark: arithmetic, per_level: 1}
    grid:
      model: [random:tiny-qwen2]
      strategy: [base, cot]
"""


@pytest.fixture
def shared(tmp_path):
    """A params file in a sibling folder, with data and folders relative to it."""
    write(tmp_path / "study" / "data", '{"problem": "1+1?", "answer": "2", "level": 1}\n', "test.jsonl")
    return write(tmp_path / "study", SHARED, "shared.yaml")


def test_use_takes_the_other_files_runs_and_folders(tmp_path, shared):
    section = write(tmp_path / "params", """
        title: a section
        profiles:
          default: {use: ../study/shared.yaml}
          second: {use: ../study/shared.yaml, profile: other}
        """, "section.yaml")
    plan = load_params(section)
    direct = load_params(shared)
    assert [s.run_id for s in plan.specs] == [s.run_id for s in direct.specs]
    assert plan.runs_dir == tmp_path / "study" / "runs" and plan.figures_dir == tmp_path / "study" / "figs"
    assert plan.specs[0].data_path == tmp_path / "study" / "data" / "test.jsonl"   # relative to shared.yaml
    assert (plan.path, plan.profile, plan.title) == (section, "default", "a section")
    assert plan.uses == (tmp_path / "params" / "../study/shared.yaml", "default")
    second = load_params(section, "second")
    assert [s.strategy for s in second.specs] == ["base", "cot"] and second.runs_dir == tmp_path / "study" / "other-runs"
    assert second.uses[1] == "other"


def test_use_chains_and_same_file_references(tmp_path, shared):
    middle = write(tmp_path / "params", "profiles:\n  default: {use: ../study/shared.yaml}\n"
                                        "  alias: {use: middle.yaml}\n", "middle.yaml")
    top = write(tmp_path / "params", "profiles:\n  default: {use: middle.yaml, profile: alias}\n", "top.yaml")
    plan = load_params(top)
    assert [s.run_id for s in plan.specs] == [s.run_id for s in load_params(shared).specs]
    assert plan.uses[0].resolve() == shared.resolve() and plan.uses[1] == "default"


@pytest.mark.parametrize("profile, expected", [
    ("{use: ../study/shared.yaml, grid: {model: [random:tiny-qwen2]}}",
     "profiles.default: Value error, `use` takes the runs, runs_dir and figures_dir of another file's profile; "
     "it cannot be combined with grid"),
    ("{use: ../study/shared.yaml, runs_dir: x, defaults: {}}", "cannot be combined with runs_dir, defaults"),
    ("{profile: other, grid: {model: [random:tiny-qwen2]}}",
     "profiles.default: Value error, `profile` names a profile of the file given by `use`, and there is no `use`"),
    ("{use: ../study/nowhere.yaml}", "profiles.default.use: no such params file: "),
    ("{use: ../study/shared.yaml, profile: nope}",
     "profiles.default.profile: {shared} has no profile 'nope' (have: default, other)"),
    ("{use: ../study/shared.yaml, profil: other}", "profiles.default.profil: Extra inputs are not permitted"),
])
def test_bad_use_names_file_and_key(tmp_path, shared, profile, expected):
    section = write(tmp_path / "params", f"profiles:\n  default: {profile}\n", "section.yaml")
    with pytest.raises(ParamsError) as e:
        load_params(section)
    assert str(e.value).startswith(f"{section}: ")
    assert expected.format(shared=tmp_path / "params" / "../study/shared.yaml") in str(e.value)


def test_errors_in_the_used_file_name_that_file(tmp_path, shared):
    shared.write_text(SHARED.replace("per_level: null", "per_levle: null"))
    section = write(tmp_path / "params", "profiles:\n  default: {use: ../study/shared.yaml}\n", "section.yaml")
    with pytest.raises(ParamsError) as e:
        load_params(section)
    used = tmp_path / "params" / "../study/shared.yaml"
    assert str(e.value).startswith(f"{used}: profiles.default.defaults.per_levle: Extra inputs are not permitted")
    shared.write_text("profiles: [1, 2")
    with pytest.raises(ParamsError, match=r"shared\.yaml: not valid YAML"):
        load_params(section)


def test_use_cycles_are_an_error_not_a_recursion(tmp_path):
    a = write(tmp_path, "profiles:\n  default: {use: b.yaml}\n", "a.yaml")
    write(tmp_path, "profiles:\n  default: {use: a.yaml, profile: default}\n", "b.yaml")
    with pytest.raises(ParamsError) as e:
        load_params(a)
    assert "profiles.default.use: profiles use each other in a cycle: a.yaml [default] -> b.yaml [default] -> " \
           "a.yaml [default]" in str(e.value)
    me = write(tmp_path, "profiles:\n  default: {use: me.yaml}\n", "me.yaml")
    with pytest.raises(ParamsError, match=r"me\.yaml: profiles\.default\.use: profiles use each other in a cycle"):
        load_params(me)


def test_cli_dry_run_of_a_used_profile(tmp_path, shared, capsys):
    from ttclib import cli

    section = write(tmp_path / "params", "profiles:\n  default: {use: ../study/shared.yaml}\n", "section.yaml")
    assert cli.main(["run", str(section), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{section} [default]: 1 runs -> {tmp_path / 'study' / 'runs'}")
    assert "(the runs of " in out and "shared.yaml [default])" in out and "data=file" in out
