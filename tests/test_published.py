"""Runs that travel: the published reference runs are analysed without measuring, and a run measured
on other hardware is never taken for this machine's measurement."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import ttclib
from ttclib import hardware, reproduce, rundir, runner
from ttclib.params import ParamsError, load_params

ROOT = Path(__file__).resolve().parent.parent


def _grid(tmp_path: Path, seeds=(1, 2)) -> Path:
    params = tmp_path / "p.yaml"
    params.write_text(
        textwrap.dedent(f"""
        profiles:
          default:
            runs_dir: runs
            figures_dir: figures
            defaults: {{model: "random:tiny-qwen2", strategy: base, per_level: 1, batch_size: 4,
                       max_new_tokens: 4, ignore_eos: true, idle_s: 0, warmup: false}}
            grid: {{seed: {list(seeds)}}}
    """)
    )
    return params


@pytest.fixture(scope="module")
def measured(tmp_path_factory, tiny_backend):
    """A two-run grid measured here, with the tiny model."""
    tmp = tmp_path_factory.mktemp("measured")
    plan = load_params(_grid(tmp))
    dirs = [runner.execute(s, plan.runs_dir, progress=False, backend=tiny_backend) for s in plan.specs]
    return plan, dirs


def _elsewhere(monkeypatch, name="Intel Xeon Platinum 8480+, 112 CPUs, 8x NVIDIA H100 80GB HBM3"):
    monkeypatch.setattr(hardware, "this_machine", lambda: name)


@pytest.mark.heavy
def test_a_run_from_other_hardware_is_set_aside_and_measured_here(measured, tmp_path, tiny_backend, monkeypatch, capfd):
    plan, dirs = measured
    spec, theirs = plan.specs[0], dirs[0]
    shutil.copytree(theirs, rundir.run_dir(spec, tmp_path))
    assert rundir.status(spec, tmp_path) == "cached"
    _elsewhere(monkeypatch)  # the same files, read on another machine
    assert rundir.status(spec, tmp_path) == "other hardware"
    capfd.readouterr()
    d = runner.execute(spec, tmp_path, progress=False, backend=tiny_backend)
    err = capfd.readouterr().err
    assert f"run {spec.run_id} in {tmp_path} was measured on {rundir.measured_on(theirs)}, not on this" in err, err
    assert "not on this machine (Intel Xeon Platinum 8480+" in err and "measuring it here" in err
    (aside,) = (tmp_path / rundir.OTHER_HARDWARE).iterdir()
    assert (
        json.loads((aside / "run.json").read_text())["started"]
        == json.loads((theirs / "run.json").read_text())["started"]
    )
    assert (
        json.loads((d / "run.json").read_text())["started"] != json.loads((theirs / "run.json").read_text())["started"]
    )


def test_identical_hardware_reuses_the_run(measured, tmp_path, monkeypatch):
    plan, dirs = measured
    mine = load_params(_grid(tmp_path, seeds=(1,)))
    shutil.copytree(dirs[0], rundir.run_dir(mine.specs[0], mine.runs_dir))
    monkeypatch.setattr(runner, "open_backend", lambda *a, **k: pytest.fail("a cached run was measured again"))
    out = runner.measure_plan(mine, progress=False)
    assert out.measured == [] and list(out.dirs) == [mine.specs[0].run_id]


def test_published_runs_are_analysed_without_measuring(measured, tmp_path, monkeypatch):
    plan, dirs = measured
    folder = reproduce.publish([plan], tmp_path / "published")
    readme = (folder / "README.md").read_text()
    assert "2 runs" in readme and " MB." in readme and plan.specs[0].run_id in readme
    for s in plan.specs:
        assert rundir.damage(folder / "runs" / s.run_id) is None
    _elsewhere(monkeypatch)  # a reader on another machine: analysing is fine, measuring is not
    monkeypatch.setattr(runner, "open_backend", lambda *a, **k: pytest.fail("run_grid(runs_dir=...) measured"))
    study = ttclib.run_grid(str(plan.path), runs_dir=str(folder / "runs"))
    expected = pd.concat([pd.read_parquet(d / "queries.parquet") for d in dirs])
    assert len(study.queries) == len(expected) and set(study.runs.run_id) == {s.run_id for s in plan.specs}
    assert study.queries.energy_j.sum() == pytest.approx(expected.energy_j.sum())


def test_a_missing_or_damaged_published_run_is_one_clear_error(measured, tmp_path):
    plan, _ = measured
    folder = reproduce.publish([plan], tmp_path / "published") / "runs"
    shutil.rmtree(folder / plan.specs[1].run_id)
    with pytest.raises(
        ParamsError,
        match=rf"p.yaml: profiles.default: 1 of 2 runs are not in .*{plan.specs[1].run_id} "
        r"\(random:tiny-qwen2, base, arithmetic\)",
    ):
        ttclib.run_grid(str(plan.path), runs_dir=str(folder))
    q = folder / plan.specs[0].run_id / "queries.parquet"
    q.write_bytes(q.read_bytes()[:-50])
    with pytest.raises(ParamsError, match=rf"run {plan.specs[0].run_id} is damaged: queries.parquet"):
        runner.stored_runs(plan, folder)
    with pytest.raises(ParamsError, match="no such folder of runs"):
        runner.stored_runs(plan, tmp_path / "nowhere")


def test_publishing_drops_runs_no_notebook_uses(measured, tmp_path):
    plan, _ = measured
    stale = tmp_path / "published" / "runs" / "0123456789ab"
    stale.mkdir(parents=True)
    reproduce.publish([plan], tmp_path / "published")
    assert sorted(p.name for p in (tmp_path / "published" / "runs").iterdir()) == sorted(s.run_id for s in plan.specs)


def test_a_run_of_an_earlier_spec_version_is_found_by_its_old_id(measured, tmp_path, capsys):
    plan, dirs = measured
    spec = plan.specs[0]
    old = spec.run_id_at(3)
    shutil.copytree(dirs[0], tmp_path / old)
    shutil.copytree(dirs[1], tmp_path / plan.specs[1].run_id)
    found = runner.stored_runs(plan, tmp_path)
    assert found[0].name == old and f"run {spec.run_id}: using {old}" in capsys.readouterr().out


def test_the_notebooks_default_params_path_works_from_the_repository_root(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    assert load_params("../params/00_overview.yaml").path == ROOT / "params" / "00_overview.yaml"
    monkeypatch.chdir(ROOT / "notebooks")
    assert load_params("../params/00_overview.yaml").path.resolve() == ROOT / "params" / "00_overview.yaml"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParamsError, match="nothere.yaml"):
        load_params("../params/nothere.yaml")


def test_fingerprint_ignores_the_hostname_not_the_gpus():
    a = {"cpu": "AMD EPYC", "usable_cpus": 2, "gpus": [], "hostname": "a"}
    assert hardware.fingerprint(a) == hardware.fingerprint({**a, "hostname": "b", "memory_gib": 64})
    assert hardware.fingerprint(a) != hardware.fingerprint({**a, "usable_cpus": 16})
    assert hardware.fingerprint({**a, "gpus": [{"name": "NVIDIA H200"}]}) != hardware.fingerprint(
        {**a, "gpus": [{"name": "NVIDIA H100"}]}
    )


PUBLISHED = ROOT / "outputs" / "published" / "runs"


@pytest.mark.skipif(not PUBLISHED.is_dir(), reason="no published runs in this checkout")
@pytest.mark.heavy
def test_make_report_re_executes_every_notebook_on_the_published_runs(tmp_path, monkeypatch, capsys):
    """What `make report` does on a fresh clone: all six notebooks on the committed runs, nothing measured
    (no backend may open: the kernel would fail loudly), their verdicts the committed ones, and an index."""
    import nbformat
    import papermill as pm

    executed = []
    real = pm.execute_notebook

    def execute(nb, out, **kw):
        assert kw["parameters"]["runs_dir"] == str(PUBLISHED.resolve())
        executed.append(Path(nb).stem)
        return real(nb, out, **kw)

    monkeypatch.setattr(pm, "execute_notebook", execute)
    assert reproduce.main(["--runs", str(PUBLISHED), "--out", str(tmp_path)]) == 0
    assert executed == [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    assert not (tmp_path / "published").exists()  # a report publishes nothing
    from ttclib import site

    for stem in executed:
        ours = site.verdict_text(nbformat.read(tmp_path / "notebooks" / f"{stem}.ipynb", as_version=4))
        committed = site.verdict_text(nbformat.read(ROOT / "outputs" / "notebooks" / f"{stem}.ipynb", as_version=4))
        assert ours == committed, stem
    assert (tmp_path / "index.html").exists() and all((tmp_path / "html" / f"{s}.html").exists() for s in executed)


def test_report_on_a_folder_missing_a_run_fails_before_any_notebook(tmp_path, monkeypatch, capsys):
    import papermill as pm

    monkeypatch.setattr(pm, "execute_notebook", lambda *a, **k: pytest.fail("a notebook started"))
    (tmp_path / "runs").mkdir()
    assert reproduce.main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "00_overview.yaml: profiles.default: 10 of 10 runs are not in" in err
