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
        path.name, ("outputs", "runs")
    )
    assert plan.specs and plan.runs_dir == ROOT.joinpath(*runs).resolve()
    assert len({s.run_id for s in plan.specs}) == len(plan.specs)


def shipped_profiles():
    import yaml

    return [
        (path, name)
        for path in sorted((ROOT / "params").glob("*.yaml"))
        for name in yaml.safe_load(path.read_text())["profiles"]
    ]


@pytest.mark.parametrize("path, profile", shipped_profiles(), ids=lambda x: getattr(x, "name", x))
def test_every_shipped_profile_validates(path, profile):
    plan = load_params(path, profile)
    assert plan.specs and len({s.run_id for s in plan.specs}) == len(plan.specs)


@pytest.mark.parametrize("profile", ["default", "length_sweep", "batch"])
def test_readme_dry_run_of_each_paper_profile(profile, capsys, monkeypatch):
    from ttclib import cli

    monkeypatch.delenv("TTC_DATA_DIR", raising=False)
    assert cli.main(["run", str(ROOT / "params" / "paper.yaml"), "--profile", profile, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"paper.yaml [{profile}]: " in out and "Estimated total: " in out


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


@pytest.mark.parametrize(
    "bad, expected",
    [
        (
            GOOD.replace("per_level: 2", "per_levle: 2"),
            "profiles.default.defaults.per_levle: Extra inputs are not permitted",
        ),
        (
            GOOD.replace("max_new_tokens: 16", "max_new_tokens: many"),
            "profiles.default.grid.strategy[1].max_new_tokens:",
        ),
        (
            GOOD.replace("strategy: cot", "strategy: tree"),
            "profiles.default.grid.strategy[1].strategy: Value error, unknown strategy 'tree'",
        ),
        (
            GOOD.replace("per_level: 2", "per_level: 0"),
            "profiles.default.defaults.per_level: Input should be greater than or equal to 1",
        ),
        (
            GOOD.replace("random:tiny-qwen2", "random:qwen9"),
            "profiles.default.grid.model[0]: Value error, model 'random:qwen9': no config",
        ),
        (GOOD.replace("per_level: 2", "levels: [easy, impossible]"), "levels ['impossible'] not in benchmark"),
        (GOOD.replace("  default:", "  defualt:"), "profiles.default: no such profile (have: defualt)"),
        (GOOD + "extra_top: 1\n", "extra_top: Extra inputs are not permitted"),
        ("profiles: [1, 2", "not valid YAML"),
        (
            GOOD.replace("per_level: 2", "server: {tp_size: 0}"),
            "profiles.default.defaults.server.tp_size: Input should be greater than or equal to 1",
        ),
        (
            GOOD.replace("per_level: 2", "server: {tp: 2}"),
            "profiles.default.defaults.server.tp: Extra inputs are not permitted",
        ),
        (
            GOOD.replace("per_level: 2", "data: nowhere/test.jsonl"),
            "profiles.default.defaults.data: no such file or directory: ",
        ),
        (
            GOOD.replace("benchmark: arithmetic", "benchmark: math5000"),
            "profiles.default.defaults.benchmark: Value error, unknown benchmark 'math5000'",
        ),
        (
            GOOD.replace("per_level: 2", "top_p: 1.5"),
            "profiles.default.defaults.top_p: Input should be less than or equal to 1",
        ),
        (
            GOOD.replace("per_level: 2", "backend: vllm"),
            "profiles.default.defaults.backend: Input should be 'auto', 'transformers' or 'sglang'",
        ),
    ],
)
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
    r = subprocess.run(
        [sys.executable, "-m", "ttclib.cli", "run", str(write(tmp_path, GOOD)), "--dry-run"],
        capture_output=True,
        text=True,
        check=True,
    )
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
    plan = load_params(
        write(
            tmp_path,
            GOOD.replace(
                "benchmark: arithmetic, per_level: 2", "benchmark: math500, data: data/test.jsonl, per_level: null"
            ),
        )
    )
    spec = plan.specs[0]
    assert spec.data_path == tmp_path / "data" / "test.jsonl" and spec.per_level is None
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "data").mkdir()
    (other / "data" / "test.jsonl").write_text((tmp_path / "data" / "test.jsonl").read_text())
    moved = load_params(
        write(
            other,
            GOOD.replace(
                "benchmark: arithmetic, per_level: 2", "benchmark: math500, data: data/test.jsonl, per_level: null"
            ),
        )
    )
    assert moved.specs[0].run_id == spec.run_id  # the same study in another checkout: same run ids


def test_where_the_server_runs_does_not_change_the_run_id():
    from ttclib.server import ServerOptions

    a = RunSpec(model="random:tiny-qwen2", strategy="base", backend="sglang")
    attached = RunSpec(
        model="random:tiny-qwen2",
        strategy="base",
        backend="sglang",
        server=ServerOptions(url="http://gpu-box:30000", python=sys.executable),
    )
    assert a.run_id == attached.run_id
    assert (
        a.run_id
        != RunSpec(model="random:tiny-qwen2", strategy="base", backend="sglang", server=ServerOptions(tp_size=2)).run_id
    )


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
    with pytest.raises(
        ParamsError,
        match=r"p.yaml: profiles.default: run \w+ \(random:tiny-qwen2, base\): "
        r"benchmark 'codeforces': could not load open-r1/codeforces split test "
        r"from the Hugging Face hub \(ConnectionError",
    ):
        runner.run_plan(load_params(path), progress=False)
    path = write(tmp_path, GOOD.replace("benchmark: arithmetic", "benchmark: mtbench, subsets: [poetry]"))
    with pytest.raises(ParamsError, match=r"benchmark 'mtbench' has no subset\(s\) \['poetry'\]"):
        runner.run_plan(load_params(path), progress=False)


# --- the paper's study: params/paper.yaml ----------------------------------------------------

PAPER = ROOT / "params" / "paper.yaml"
SIZES = ("1.5B", "7B", "14B", "32B")
INSTRUCT = {f"Qwen/Qwen2.5-{n}-Instruct" for n in SIZES}
DISTILL = {f"deepseek-ai/DeepSeek-R1-Distill-Qwen-{n}" for n in SIZES}
TABLE_1 = {
    "aime24",
    "aime25",
    "gpqa_diamond",
    "math500",
    "humaneval",
    "livecodebench",
    "mbpp",
    "codeforces",
    "hellaswag",
    "mmlu",
    "gsm8k",
    "commonsenseqa",
}


@pytest.mark.parametrize("profile", ["default", "length_sweep", "batch"])
def test_paper_profiles_are_the_papers_settings(profile):
    plan = load_params(PAPER, profile)
    assert plan.specs and all(isinstance(s, RunSpec) for s in plan.specs)
    assert plan.runs_dir == (ROOT / "outputs" / "paper" / "runs").resolve()
    assert plan.figures_dir == (ROOT / "outputs" / "paper" / "figures").resolve()
    assert len({s.run_id for s in plan.specs}) == len(plan.specs)
    for s in plan.specs:
        assert (s.backend, s.dtype, s.repetitions, s.per_level, s.meter, s.device) == (
            "sglang",
            "bfloat16",
            10,
            None,
            "nvml",
            "cuda",
        ), s
        # Base and MV ask the Instruct model, RT the distill of the same size
        assert s.model in (DISTILL if s.strategy == "rt" else INSTRUCT), (s.model, s.strategy)
        assert s.server.tp_size == (2 if s.model.endswith(("32B", "32B-Instruct")) else 1), s.model
        assert s.max_new_tokens <= 32768 and s.samples is None and s.budget is None
    assert max(s.max_new_tokens for s in plan.specs) == 32768


def test_paper_default_profile_is_table_1():
    specs = load_params(PAPER).specs
    assert {s.benchmark for s in specs} == TABLE_1
    assert {s.model for s in specs} == INSTRUCT | DISTILL
    assert {(s.strategy, s.model) for s in specs} == (
        {("base", m) for m in INSTRUCT} | {("mv", m) for m in INSTRUCT} | {("rt", m) for m in DISTILL}
    )
    assert len(specs) == 12 * 12 and {(s.batch_size, s.max_new_tokens) for s in specs} == {(16, 32768)}
    assert {s.resolved_strategy.samples for s in specs if s.strategy == "mv"} == {5}


def test_paper_length_sweep_and_batch_profiles():
    sweep = load_params(PAPER, "length_sweep").specs
    assert sorted({s.max_new_tokens for s in sweep}) == [round(32768 * k / 10) for k in range(1, 11)]
    assert sorted({s.max_new_tokens for s in sweep})[:2] == [3277, 6554]
    assert {s.benchmark for s in sweep} == {"math500", "livecodebench"} and {s.strategy for s in sweep} == {
        "base",
        "rt",
    }
    assert {s.model for s in sweep} == INSTRUCT | DISTILL and len(sweep) == 8 * 2 * 10
    batch = load_params(PAPER, "batch").specs
    assert {s.model for s in batch} == {"Qwen/Qwen2.5-32B-Instruct", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"}
    assert sorted({s.batch_size for s in batch}) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert {s.benchmark for s in batch} == {"math500", "livecodebench"} and {s.server.tp_size for s in batch} == {2}
    # the shared points are the same runs, measured once
    default = {s.run_id for s in load_params(PAPER).specs}
    assert len(default & {s.run_id for s in sweep}) == 2 * 8 and len(default & {s.run_id for s in batch}) == 4


def _uses_paper_yaml(path: Path) -> bool:
    """Sections of Jin et al. [000] reuse params/paper.yaml's profiles; Wilhelm et al. [001]'s (06, 07) have
    their own grid."""
    import yaml

    return "use" in (yaml.safe_load(path.read_text())["profiles"].get("paper") or {})


@pytest.mark.parametrize(
    "path", sorted(p for p in (ROOT / "params").glob("0*.yaml") if _uses_paper_yaml(p)), ids=lambda p: p.name
)
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
    section = write(
        tmp_path / "params",
        """
        title: a section
        profiles:
          default: {use: ../study/shared.yaml}
          second: {use: ../study/shared.yaml, profile: other}
        """,
        "section.yaml",
    )
    plan = load_params(section)
    direct = load_params(shared)
    assert [s.run_id for s in plan.specs] == [s.run_id for s in direct.specs]
    assert plan.runs_dir == tmp_path / "study" / "runs" and plan.figures_dir == tmp_path / "study" / "figs"
    assert plan.specs[0].data_path == tmp_path / "study" / "data" / "test.jsonl"  # relative to shared.yaml
    assert (plan.path, plan.profile, plan.title) == (section, "default", "a section")
    assert plan.uses == (tmp_path / "params" / "../study/shared.yaml", "default")
    second = load_params(section, "second")
    assert [s.strategy for s in second.specs] == [
        "base",
        "cot",
    ] and second.runs_dir == tmp_path / "study" / "other-runs"
    assert second.uses[1] == "other"


def test_use_chains_and_same_file_references(tmp_path, shared):
    write(
        tmp_path / "params",
        "profiles:\n  default: {use: ../study/shared.yaml}\n  alias: {use: middle.yaml}\n",
        "middle.yaml",
    )
    top = write(tmp_path / "params", "profiles:\n  default: {use: middle.yaml, profile: alias}\n", "top.yaml")
    plan = load_params(top)
    assert [s.run_id for s in plan.specs] == [s.run_id for s in load_params(shared).specs]
    assert plan.uses[0].resolve() == shared.resolve() and plan.uses[1] == "default"


@pytest.mark.parametrize(
    "profile, expected",
    [
        (
            "{use: ../study/shared.yaml, grid: {model: [random:tiny-qwen2]}}",
            "profiles.default: Value error, `use` takes the runs, runs_dir and figures_dir of another file's profile; "
            "it cannot be combined with grid",
        ),
        ("{use: ../study/shared.yaml, runs_dir: x, defaults: {}}", "cannot be combined with runs_dir, defaults"),
        (
            "{profile: other, grid: {model: [random:tiny-qwen2]}}",
            "profiles.default: Value error, `profile` names a profile of the file given by `use`, "
            "and there is no `use`",
        ),
        ("{use: ../study/nowhere.yaml}", "profiles.default.use: no such params file: "),
        (
            "{use: ../study/shared.yaml, profile: nope}",
            "profiles.default.profile: {shared} has no profile 'nope' (have: default, other)",
        ),
        ("{use: ../study/shared.yaml, profil: other}", "profiles.default.profil: Extra inputs are not permitted"),
    ],
)
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
    assert (
        "profiles.default.use: profiles use each other in a cycle: a.yaml [default] -> b.yaml [default] -> "
        "a.yaml [default]" in str(e.value)
    )
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


# --- malformed files, by kind: one line naming file and key, fast, never a traceback ------------
# The kinds an outside fuzz of 415 malformed params files found: tracebacks, hangs and files
# accepted although wrong. Each is written by `write(folder)`, which returns the params file.

BASE = (
    "profiles:\n  default:\n"
    "    defaults: {model: random:tiny-qwen2, strategy: base, benchmark: arithmetic, per_level: 2%s}\n"
)


def base(extra: str = "", grid: str = "") -> str:
    return BASE % (", " + extra if extra else "") + (f"    grid: {grid}\n" if grid else "")


def laughs(depth: int = 9) -> str:
    """A billion-laughs bomb inside `levels`: each anchor is ten of the previous one (10^9 strings)."""
    anchors = ["&l0 [easy, easy, easy, easy, easy, easy, easy, easy, easy, easy]"]
    anchors += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, depth)]
    return base(f"levels: [{', '.join(anchors)}]")


def in_folder(name: str, body: str | bytes, **aux: str | bytes):
    """A writer: `aux` files (name -> contents) beside the params file; `<folder>` in text is its folder;
    a callable body is made when written (large files are not built at collection)."""

    def write_all(folder: Path) -> Path:
        for aux_name, content in {**aux, name: body() if callable(body) else body}.items():
            target = folder / aux_name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                content = content.replace("<folder>", str(folder)).encode()
            target.write_bytes(content)
        return folder / name

    return write_all


GSM8K_RECORD = '{"question": "Tom has 3 apples and buys 2. How many?", "answer": "3+2=<<3+2=5>>5\\n#### 5"}\n'
MATH500 = "benchmark: math500, per_level: null"

# (id, writer, file the error names, key, what it says, isolated: run through the CLI in a subprocess)
KINDS = [
    # tracebacks
    (
        "non-utf8",
        in_folder("p.yaml", base().encode() + b"title: caf\xe9\n"),
        "p.yaml",
        "",
        "not UTF-8 text (byte 0xe9 on line 4)",
        False,
    ),
    (
        "non-utf8 use target",
        in_folder("p.yaml", "profiles:\n  default: {use: t.yaml}\n", **{"t.yaml": b"title: \xff\n"}),
        "t.yaml",
        "",
        "not UTF-8 text (byte 0xff on line 1)",
        False,
    ),
    (
        "deep nesting",
        in_folder("p.yaml", lambda: base("levels: " + "[" * 100_000 + "]" * 100_000)),
        "p.yaml",
        "profiles.default.defaults.levels[0][0]",
        "nested deeper than 32 levels",
        True,
    ),
    (
        "random: config not JSON",
        in_folder(
            "p.yaml", base().replace("random:tiny-qwen2", "random:<folder>/cfg.json"), **{"cfg.json": "not json {"}
        ),
        "p.yaml",
        "profiles.default.defaults.model",
        "cfg.json is not a JSON config",
        False,
    ),
    (
        "random: config without sizes",
        in_folder(
            "p.yaml",
            base().replace("random:tiny-qwen2", "random:<folder>/cfg.json"),
            **{"cfg.json": '{"model_type": "qwen2", "hidden_size": 64}'},
        ),
        "p.yaml",
        "profiles.default.defaults.model",
        "config key num_attention_heads: missing",
        False,
    ),
    (
        "data of another benchmark",
        in_folder(
            "p.yaml",
            base().replace("benchmark: arithmetic, per_level: 2", MATH500 + ", data: gsm8k.jsonl"),
            **{"gsm8k.jsonl": GSM8K_RECORD},
        ),
        "p.yaml",
        "profiles.default.defaults.data",
        "record 0 is not a 'math500' record (KeyError: 'problem')",
        False,
    ),
    (
        "integer of 5000 digits",
        in_folder("p.yaml", base().replace("per_level: 2", "per_level: " + "9" * 5000)),
        "p.yaml",
        "profiles.default.defaults.per_level",
        "not a YAML value",
        False,
    ),
    # hangs
    (
        "per_level 10**8 on a generated benchmark",
        in_folder("p.yaml", base().replace("per_level: 2", "per_level: 100000000")),
        "p.yaml",
        "profiles.default.defaults.per_level",
        "less than or equal to 100000",
        True,
    ),
    (
        "grid of a million runs",
        in_folder("p.yaml", base(grid="{" + ", ".join(f"a{k}: [{', '.join(['{}'] * 100)}]" for k in range(3)) + "}")),
        "p.yaml",
        "profiles.default.grid",
        "100 a0 × 100 a1 × 100 a2 = 1,000,000 runs",
        True,
    ),
    (
        "billion laughs through levels",
        in_folder("p.yaml", laughs()),
        "p.yaml",
        "profiles.default.defaults.levels[",
        "aliases expand to more than 100,000 values",
        True,
    ),
    (
        "10 MB of unknown keys",
        in_folder("p.yaml", lambda: base() + "".join(f"k{i}: {i}\n" for i in range(1_000_000))),
        "p.yaml",
        "",
        "over 1024 KiB: too large for a params file",
        True,
    ),
    (
        "60,000 unknown keys under 1 MiB",
        in_folder("p.yaml", lambda: "".join(f"k{i}: 1\n" for i in range(60_000)) + base()),
        "p.yaml",
        "k",
        "more than 50,000 YAML nodes",
        True,
    ),
    # accepted although wrong
    (
        "duplicate key",
        in_folder("p.yaml", base() + "    defaults: {}\n"),
        "p.yaml",
        "profiles.default.defaults",
        "duplicate key (lines 3 and 4)",
        False,
    ),
    (
        "grid with zero runs",
        in_folder("p.yaml", base(grid="{strategy: [base], model: []}")),
        "p.yaml",
        "profiles.default.grid.model",
        "empty: a grid with an empty axis has no runs",
        False,
    ),
    (
        "error in another profile",
        in_folder(
            "p.yaml", base() + "  smoke:\n    defaults: {model: random:tiny-qwen2, strategy: base, idle_s: .inf}\n"
        ),
        "p.yaml",
        "profiles.smoke.defaults.idle_s",
        "Input should be a finite number",
        False,
    ),
    (
        "default every grid point overrides",
        in_folder("p.yaml", base("idle_s: -1", grid="{idle_s: [1, 2]}")),
        "p.yaml",
        "profiles.default.defaults.idle_s",
        "Input should be greater than or equal to 0",
        False,
    ),
    (
        "infinite",
        in_folder("p.yaml", base("idle_s: .inf")),
        "p.yaml",
        "profiles.default.defaults.idle_s",
        "Input should be a finite number",
        False,
    ),
    (
        "not a number",
        in_folder("p.yaml", base("temperature: .nan")),
        "p.yaml",
        "profiles.default.defaults.temperature",
        "Input should be a finite number",
        False,
    ),
    (
        "absurd repetitions",
        in_folder("p.yaml", base("repetitions: 100000000000000000000")),
        "p.yaml",
        "profiles.default.defaults.repetitions",
        "Input should be less than or equal to 100",
        False,
    ),
    (
        "device banana",
        in_folder("p.yaml", base("device: banana")),
        "p.yaml",
        "profiles.default.defaults.device",
        "Input should be 'auto', 'cpu', 'cuda' or 'cuda:N' (N >= 0)",
        False,
    ),
    (
        "device cuda:-1",
        in_folder("p.yaml", base("device: 'cuda:-1'")),
        "p.yaml",
        "profiles.default.defaults.device",
        "Input should be 'auto', 'cpu', 'cuda' or 'cuda:N' (N >= 0)",
        False,
    ),
    (
        "model empty",
        in_folder("p.yaml", base().replace("random:tiny-qwen2", "''")),
        "p.yaml",
        "profiles.default.defaults.model",
        "String should have at least 1 character",
        False,
    ),
    (
        "model banana",
        in_folder("p.yaml", base().replace("random:tiny-qwen2", "banana")),
        "p.yaml",
        "profiles.default.defaults.model",
        "model 'banana': not an embedded model",
        False,
    ),
    (
        "server.python missing",
        in_folder("p.yaml", base("server: {python: /nowhere/bin/python}")),
        "p.yaml",
        "profiles.default.defaults.server.python",
        "no executable interpreter at '/nowhere/bin/python'",
        False,
    ),
    (
        "data /dev/zero",
        in_folder("p.yaml", base().replace("benchmark: arithmetic, per_level: 2", MATH500 + ", data: /dev/zero")),
        "p.yaml",
        "profiles.default.defaults.data",
        "not a regular file or directory: /dev/zero",
        False,
    ),
    (
        "data folder not in the layout",
        in_folder(
            "p.yaml",
            base().replace("benchmark: arithmetic, per_level: 2", MATH500 + ", data: data"),
            **{"data/readme.txt": "not here"},
        ),
        "p.yaml",
        "profiles.default.defaults.data",
        "no data for benchmark 'math500' there",
        False,
    ),
    (
        "data file empty",
        in_folder(
            "p.yaml",
            base().replace("benchmark: arithmetic, per_level: 2", MATH500 + ", data: test.jsonl"),
            **{"test.jsonl": ""},
        ),
        "p.yaml",
        "profiles.default.defaults.data",
        "test.jsonl: no records",
        False,
    ),
    (
        "data for a generated benchmark",
        in_folder("p.yaml", base("data: gsm8k.jsonl"), **{"gsm8k.jsonl": GSM8K_RECORD}),
        "p.yaml",
        "profiles.default.defaults.data",
        "benchmark 'arithmetic' is generated: it takes no data",
        False,
    ),
    (
        "runs_dir a device",
        in_folder("p.yaml", base().replace("  default:\n", "  default:\n    runs_dir: /dev/null\n")),
        "p.yaml",
        "profiles.default.runs_dir",
        "/dev/null exists and is not a directory",
        False,
    ),
]


@pytest.mark.parametrize("kind", [k for k in KINDS if not k[5]], ids=lambda k: k[0])
def test_malformed_kind_is_one_line_naming_file_and_key(tmp_path, kind):
    _, writer, named, key, says, _ = kind
    path = writer(tmp_path)
    with pytest.raises(ParamsError) as e:
        load_params(path)
    message = str(e.value)
    assert message.startswith(f"{tmp_path / named}: {key}"), message
    assert says in message and "\n" not in message, message


@pytest.mark.parametrize("kind", [k for k in KINDS if k[5]], ids=lambda k: k[0])
def test_malformed_kind_that_hung_or_crashed_fails_fast_in_the_cli(tmp_path, kind):
    _, writer, named, key, says, _ = kind
    path = writer(tmp_path)
    try:
        r = subprocess.run(
            [sys.executable, "-m", "ttclib.cli", "run", str(path), "--dry-run"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{kind[0]}: `ttc run --dry-run` still running after 10 s")
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert r.stderr.startswith(f"error: {tmp_path / named}: {key}") and says in r.stderr, r.stderr[-2000:]
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and not r.stdout


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = write(
        tmp_path,
        """
        profiles:
          default:
            defaults: &common {model: random:tiny-qwen2, strategy: base, per_level: 1}
          cot:
            defaults:
              <<: *common
              strategy: cot
        """,
    )
    assert [s.strategy for s in load_params(path, "cot").specs] == ["cot"]


def test_errors_in_several_keys_are_listed_one_line_each(tmp_path):
    path = write(tmp_path, base("idle_s: .inf, device: banana, junk1: 1, junk2: 2, junk3: 3, junk4: 4"))
    with pytest.raises(ParamsError) as e:
        load_params(path)
    lines = str(e.value).splitlines()
    assert len(lines) == 6 and all(line.startswith(f"{path}: ") for line in lines)
    assert lines[-1] == f"{path}: ... and 1 more errors"


def test_grids_count_their_runs_over_every_profile(tmp_path, monkeypatch):
    from ttclib import params

    monkeypatch.setattr(params, "MAX_RUNS", 5)
    grid = "{strategy: [base, cot, mv]}"
    path = write(
        tmp_path,
        base(grid=grid) + f"  more:\n    defaults: {{model: random:tiny-qwen2, per_level: 1}}\n    grid: {grid}\n",
    )
    with pytest.raises(
        ParamsError,
        match=r"profiles\.more\.grid: 3 strategy = 3 runs, with 3 in the other profiles: "
        r"more than the 5 a params file may ask for",
    ):
        load_params(path)


def test_data_in_the_layout_passes_the_first_record_check(tmp_path):
    record = '{"problem": "1+1?", "answer": "2", "level": "Level 1", "unique_id": "x"}\n'
    path = in_folder(
        "p.yaml",
        base().replace("benchmark: arithmetic, per_level: 2", MATH500 + ", data: data"),
        **{"data/math500/test.jsonl": record * 3},
    )(tmp_path)
    assert load_params(path).specs[0].data_path == tmp_path / "data"


# --- fuzz: the shipped files, mutated ----------------------------------------------------------

JUNK = [
    None,
    "",
    "banana",
    "cuda:-1",
    "/dev/zero",
    "~nobody/x",
    "random:/etc/hostname",
    "a\x00b",
    "é" * 3,
    -1,
    0,
    1,
    10**20,
    2**63,
    1e308,
    float("inf"),
    float("nan"),
    True,
    [],
    {},
    [[]],
    {"x": 1},
    [None],
    "/",
    ".",
    "../outputs/runs",
    "paper.yaml",
    "00_overview.yaml",
    "default",
    "base",
    "arithmetic",
    "math500",
    "easy",
]
KEYS = list(RunSpec.model_fields) + [
    "use",
    "profile",
    "defaults",
    "grid",
    "runs_dir",
    "figures_dir",
    "junk",
    "profiles",
    "title",
    "server",
    "python",
    "tp_size",
]
YAML_BITS = [
    ":",
    "[",
    "]",
    "{",
    "}",
    "&a ",
    "*a",
    "*b",
    "!!python/object:os.system ",
    "\t",
    "- ",
    "'",
    '"',
    "#",
    "<<: ",
    "\n  ",
    "---\n",
    "\xff",
    "\x00",
    "?",
]


def _places(doc, out, seen=None):
    """(container, key) of every value in a loaded params file (a value swapped into its own
    container makes a cycle, which YAML writes as an alias inside its anchor: kept, visited once)."""
    seen = set() if seen is None else seen
    if id(doc) in seen:
        return out
    seen.add(id(doc))
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for k, v in list(items):
        out.append((doc, k))
        _places(v, out, seen)
    return out


def _mutate_value(rng, doc) -> None:
    places = _places(doc, [])
    if not places:
        return
    parent, key = rng.choice(places)
    op = rng.randrange(5)
    if op == 0:  # delete a key or an element
        del parent[key]
    elif op == 1:  # junk value
        parent[key] = rng.choice(JUNK)
    elif op == 2:  # another value of the same file
        other_parent, other_key = rng.choice(places)
        parent[key] = other_parent[other_key]
    elif op == 3:  # another type
        v = parent[key]
        parent[key] = list(v.values()) if isinstance(v, dict) else v[0] if isinstance(v, list) and v else [v]
    else:  # a new key
        maps = [v for c, k in places if isinstance(v := c[k], dict)] or [doc]
        rng.choice(maps)[rng.choice(KEYS)] = rng.choice(JUNK)


def _mutate_text(rng, text: bytes) -> bytes:
    lines = text.split(b"\n")
    op = rng.randrange(4)
    i = rng.randrange(len(lines))
    if op == 0:
        return text[: rng.randrange(len(text) + 1)]  # truncated
    if op == 1:
        return b"\n".join(lines[:i] + [lines[i]] + lines[i:])  # a line twice: duplicate keys
    if op == 2:
        return b"\n".join(lines[:i] + lines[i + 1 :])  # a line missing
    j = rng.randrange(len(text) + 1)
    return text[:j] + rng.choice(YAML_BITS).encode("utf-8", "surrogateescape") + text[j:]


def fuzz_case(rng, original: str) -> bytes:
    import copy

    import yaml

    doc = copy.deepcopy(yaml.safe_load(original))
    for _ in range(rng.randint(1, 3)):
        _mutate_value(rng, doc)
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode()
    if rng.random() < 0.5:
        text = original.encode()
    for _ in range(rng.randint(0, 2) if text != original.encode() else rng.randint(1, 2)):
        text = _mutate_text(rng, text)
    return text


class _Hung(Exception):
    pass


@pytest.mark.heavy
def test_fuzzed_shipped_params_validate_or_raise_params_error(tmp_path, monkeypatch, capsys):
    """Mutated copies of the shipped files (keys deleted, types and values swapped, junk inserted,
    text cut and spliced): `ttc run --dry-run` either lists and estimates the runs (exit 0) or
    reports a ParamsError (exit 2); never another exception, never a hang."""
    import random
    import shutil
    import signal

    from ttclib import cli, gpu_hours

    monkeypatch.delenv("TTC_DATA_DIR", raising=False)
    folder = tmp_path / "params"
    shutil.copytree(ROOT / "params", folder)
    files = sorted(folder.glob("*.yaml"))
    originals = {p: p.read_text() for p in files}

    def hung(*_):
        raise _Hung

    previous = signal.signal(signal.SIGALRM, hung)
    outcomes = {0: 0, 2: 0}
    try:
        for case in range(300):
            rng = random.Random(case)
            path = rng.choice(files)
            path.write_bytes(fuzz_case(rng, originals[path]))
            profile = rng.choice(["default", "smoke", "paper", "length_sweep", "batch"])
            signal.alarm(10)
            try:
                code = cli.main(["run", str(path), "--profile", profile, "--dry-run"])
            except _Hung:
                pytest.fail(f"case {case} ({path.name} [{profile}]) still running after 10 s")
            finally:
                signal.alarm(0)
                path.write_text(originals[path])
                gpu_hours._count_local.cache_clear()
            err = capsys.readouterr().err
            assert code in (0, 2), (case, code)
            if code == 2:
                assert err.startswith(f"error: {folder}/") and "Traceback" not in err, (case, err)
            outcomes[code] += 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert outcomes[0] > 10 and outcomes[2] > 100, outcomes  # the fuzz reaches both outcomes


def test_profile_notebook_parameters_reach_the_notebook_and_are_checked(tmp_path, monkeypatch):
    """The paper profile compares Base 1.5B -> 7B in the overview (the paper's §4.1 slopes); a `notebook:`
    key that is not a parameter of the notebook is an error naming file and key, before anything runs."""
    from ttclib import reproduce

    overview = ROOT / "notebooks" / "00_overview.ipynb"
    extra = reproduce.validate([overview], "paper")[overview]
    assert extra == {
        "small_model": "Qwen/Qwen2.5-1.5B-Instruct",
        "large_model": "Qwen/Qwen2.5-7B-Instruct",
        "ttc_model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
    }
    assert reproduce.validate([overview], "default")[overview] == {}
    params = tmp_path / "params"
    params.mkdir()
    (params / "00_overview.yaml").write_text(
        "profiles:\n  default:\n    defaults: {model: 'random:tiny-qwen2', strategy: base}\n"
        "    notebook: {smal_model: x}\n"
    )
    nb = tmp_path / "notebooks" / "00_overview.ipynb"
    nb.parent.mkdir()
    nb.write_text(overview.read_text())
    monkeypatch.setattr(reproduce, "ROOT", tmp_path)
    with pytest.raises(ParamsError, match=r"00_overview.yaml: profiles.default.notebook: smal_model not among"):
        reproduce.validate([nb], "default")
