"""scripts/gpu_check.py (plan, fake end to end, failures recorded) and scripts/gpu_wheels.py (the set logic)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from test_nvml_check import FAST  # nvml_check's short timings (about 10 s for steps a-f)

pytestmark = pytest.mark.heavy  # make test-fast leaves this module out

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.py"
NO_PERMISSION = "NVMLError_NoPermission: Insufficient Permissions"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def gpu_check(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    env = {**os.environ, "OUT": str(tmp_path / "OUT")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = tmp_path / "out" / "gpu_check.json"
    return proc, json.loads(summary.read_text()) if summary.is_file() else None


# --- gpu_check -----------------------------------------------------------------------------


def test_dry_run_prints_every_step_a_total_and_each_run(tmp_path):
    proc, summary = gpu_check(tmp_path, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    steps = dict(re.findall(r"^  (meter|runs|collect|total) +~ *([\d.]+) s", proc.stdout, re.M))
    per_run = [float(x) for x in re.findall(r"^    [0-9a-f]{12} +~ *([\d.]+) s", proc.stdout, re.M)]
    assert float(steps["meter"]) == 50.0 and float(steps["collect"]) == 2.0
    assert len(per_run) == 30 and float(steps["runs"]) == pytest.approx(sum(per_run), abs=0.1)
    total = sum(float(steps[k]) for k in ("meter", "runs", "collect"))
    assert float(steps["total"]) == pytest.approx(total, abs=0.5) and total <= 480  # the 8 minutes
    assert "30 runs" in proc.stdout and "budget 480 s" in proc.stdout and summary is None  # nothing run or written


def test_timing_model_reproduces_the_h200_runs():
    """The per-run estimates, fed the ten runs measured on the H200 (warm-up ``true`` then), land near
    their wall times (model load excluded, as the runner's log line excludes it): each within 0.7-1.4x,
    all together within 20 %. The wall times are read from the run log, not typed."""
    gc = load_script("gpu_check")
    from ttclib.spec import RunSpec

    log = (ROOT / "outputs" / "gpu" / "gpu_runs.log").read_text().splitlines()
    ids = [line.split()[0] for line in log if re.match(r"  [0-9a-f]{12}  to run", line)]
    walls = [int(re.search(r", (\d+) s$", line).group(1)) for line in log if line.startswith("measured ")]
    seen: set = set()
    est = []
    for run_id in ids:
        spec = json.loads((ROOT / "outputs" / "gpu" / "runs" / run_id / "run.json").read_text())["spec"]
        est.append(gc.estimate_run_s(RunSpec(**spec), seen))
    assert len(est) == len(walls) == 10
    assert all(0.7 < e / w < 1.4 for e, w in zip(est, walls, strict=True)), list(zip(est, walls, strict=True))
    assert sum(est) / sum(walls) == pytest.approx(1.0, abs=0.2)


def test_estimate_known_answer():
    """Base at batch 16, 32 tokens, 2 repetitions of 16 queries, full warm-up, 1 s idle baseline, on a
    fresh process: each batch 32 decode steps of 30 ms plus a prefill of 16 x 60 tokens (roofline:
    2 x parameters x tokens at half the H200's 989 TFLOPS); two measured batches, the warm-up batch, the
    first pass at the new shape twice over (3x), 5.6 s per run. The same shape again is no first pass."""
    gc = load_script("gpu_check")
    from ttclib import gpu_hours
    from ttclib.spec import RunSpec

    spec = RunSpec(
        model="random:qwen2.5-7b", strategy="base", benchmark="arithmetic", levels=["easy"], per_level=16,
        batch_size=16, max_new_tokens=32, repetitions=2, idle_s=1, warmup="full", dtype="bfloat16", ignore_eos=True,
    )  # fmt: skip
    params = gpu_hours.architecture(spec.model).parameters
    batch = 32 * 0.030 + 2 * params * 16 * 60 / (989e12 * 0.5)
    seen: set = set()
    assert gc.estimate_run_s(spec, seen) == pytest.approx(2 * batch + batch + 2 * batch + 5.6)
    assert gc.estimate_run_s(spec, seen) == pytest.approx(2 * batch + batch + 5.6)
    low = spec.model_copy(update={"sm_clock_mhz": 405, "batch_size": 64, "per_level": 64})
    step = gpu_hours.decode_step_s(
        gpu_hours.architecture(spec.model), gpu_hours.Roofline(gpu_hours.GPUS["h200"]), dtype_bytes=2, batch=64,
        context_tokens=4096,
    ) * 1980 / 405  # fmt: skip
    assert step > 0.030 and gc._decode_step_s(low, 64, 4096) == pytest.approx(step)  # the GPU, not Python, sets it


def test_budget_defers_runs_that_would_end_past_it(monkeypatch):
    gc = load_script("gpu_check")
    a = gc.parse_args(["--budget-s", "100"])
    a.t0, now = 1000.0, [1000.0]
    monkeypatch.setattr(gc.time, "monotonic", lambda: now[0])
    spec = type("Spec", (), {"run_id": "r1"})()
    defer = gc.budget_rule(a, {"r1": 90.0})
    assert defer(spec) is None  # ends at 90 s, inside 100 s less the collect step's 2 s
    now[0] = 1009.0
    assert defer(spec) == "estimated 90 s: would end 99 s in, past --budget-s 100"


def test_fake_runs_deferred_by_the_budget_are_measured_by_the_next_call(tmp_path):
    runs = str(tmp_path / "runs")
    proc, s = gpu_check(tmp_path, "--fake", "--steps", "runs,collect", "--runs-dir", runs, "--budget-s", "3")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    step = s["steps"]["runs"]
    assert step["measured"] == [] and len(step["deferred"]) == 12 and s["runs"] == []
    assert all("past --budget-s 3" in why for why in step["deferred"].values())
    proc, s = gpu_check(tmp_path, "--fake", "--steps", "runs,collect", "--runs-dir", runs)
    assert proc.returncode == 0 and len(s["steps"]["runs"]["measured"]) == 12 and not s["steps"]["runs"]["deferred"]


def test_fake_end_to_end(tmp_path):
    """Clock locking refused and no energy counter: every step ok, the runs measured by integrated power.
    A run of an older plan in the folder stays out of the tar, which replaces the committed set."""
    stale = tmp_path / "runs" / "0123456789ab"
    stale.mkdir(parents=True)
    (stale / "run.json").write_text("{}")
    proc, s = gpu_check(
        tmp_path,
        *FAST,
        "--fake-clock-error",
        "no_permission",
        "--fake-no-energy-counter",
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {k: v["status"] for k, v in s["steps"].items()} == {"meter": "ok", "runs": "ok", "collect": "ok"}
    assert s["profile"] == "smoke" and s["machine"]["gpus"] == ["NVIDIA H100 80GB HBM3"] and s["machine"]["driver"]
    facts = s["meter_facts"]
    assert facts["clock_lock"] == NO_PERMISSION and facts["energy_counter"] == {"gpu0": False}
    assert set(facts["statuses"].values()) == {"ok"} and facts["counter_update_period_s"] is None
    assert len(s["runs"]) == 10 == len(s["steps"]["runs"]["measured"])  # the two at locked clocks skipped:
    skipped = s["steps"]["runs"]["clock_runs_skipped"]
    assert len(skipped["runs"]) == 2 and NO_PERMISSION in skipped["error"] and "CAP_SYS_ADMIN" in skipped["error"]
    assert s["steps"]["collect"]["clock_locks_left"] == []
    for r in s["runs"]:
        assert r["meter"] == "nvml" and r["methods"] == ["power_integration"] and r["energy_j"] > 0
        queries = pd.read_parquet(tmp_path / "runs" / r["run_id"] / "queries.parquet")
        assert queries.energy_j.sum() == pytest.approx(r["energy_j"], rel=1e-9)
        assert r["j_per_token"] == pytest.approx(r["energy_j"] / r["completion_tokens"])
    out = tmp_path / "OUT"
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "gpu_runs.tar.gz", "nvml_check.json"]
    assert json.loads((out / "gpu_check.json").read_text()) == s
    with tarfile.open(out / "gpu_runs.tar.gz") as tar:
        names = set(tar.getnames())
    assert {f"runs/{r['run_id']}/run.json" for r in s["runs"]} <= names and not any("0123456789ab" in n for n in names)


def test_fake_with_clock_locking(tmp_path):
    """Clock locking allowed: the two frequency runs lock, read back their clock within 5 %, split their
    queries into prefill and decode, and leave no lock behind."""
    proc, s = gpu_check(tmp_path, *FAST, "--steps", "runs,collect", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(s["runs"]) == 12 and s["steps"]["runs"]["clock_runs_skipped"] is None
    locked = [r for r in s["runs"] if r["sm_clock_requested_mhz"]]
    assert sorted(r["sm_clock_requested_mhz"] for r in locked) == [600, 1980]
    for r in locked:
        assert r["sm_clock_method"] == "locked" and r["sm_clock_within_5pct"] is True
        assert abs(r["sm_clock_read_mhz"]["median"] - r["sm_clock_set_mhz"]) <= 0.05 * r["sm_clock_set_mhz"]
        assert r["prefill_s"] > 0 and r["decode_s"] > 0 and r["prefill_energy_j"] > 0 and r["decode_energy_j"] > 0
    low, high = sorted(locked, key=lambda r: r["sm_clock_requested_mhz"])
    assert low["energy_j"] / low["measured_s"] < 0.9 * high["energy_j"] / high["measured_s"]  # the toy DVFS power
    assert s["steps"]["collect"]["clock_locks_left"] == []


def test_a_failing_step_is_recorded_and_the_next_runs(tmp_path):
    proc, s = gpu_check(tmp_path, "--fake", "--steps", "runs,collect", "--profile", "nope")
    assert proc.returncode == 1
    assert s["steps"]["runs"]["status"] == "error" and "no such profile" in s["steps"]["runs"]["error"]
    assert s["steps"]["collect"]["status"] == "ok" and s["runs"] == []


def test_runtime():
    gc = load_script("gpu_check")
    assert gc.runtime("6.18.44-fc-v657-gpu", "Linux version 6.18.44-fc-v657-gpu") == "firecracker"
    assert gc.runtime("4.4.0", "Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016") == "gvisor"
    assert gc.runtime("6.8.0-45-generic", "Linux version 6.8.0-45-generic").startswith("unknown")


# --- gpu_wheels: the set, without network -------------------------------------------------------


@pytest.fixture(scope="module")
def gw():
    return load_script("gpu_wheels")


# A fake index: name -> version -> Requires-Dist
INDEX = {
    "app": {
        "1.0": [
            "lib>=2,<2.5",
            "shared",
            "typed>=4.1",
            "tool[cli]",
            "dev-only; extra == 'dev'",
            "old-py; python_version < '3.10'",
            "gpu-vendor",
        ],
        "2.0": [],
    },
    "lib": {"1.0": [], "2.0": [], "2.5": ["shared"]},
    "tool": {"3.0": ["cli-helper; extra == 'cli'", "lib<2.5"]},
    "shared": {"1.0": []},
    "cli-helper": {"0.1": []},
    "typed": {"4.0": [], "4.2": []},
}


def fake_fetch(gw, pins):
    def fetch(need):
        version = pins.get(need.name) or str(max(Version(v) for v in INDEX[need.name] if v in need.spec))
        return gw.Wheel(need.name, version, need.why, INDEX[need.name][version], size=1000)

    return fetch


def test_machine_list(gw, tmp_path):
    (tmp_path / "m.txt").write_text("# header\nShared\nlib==1.0   # run.json\ntyping_Extensions\n\n")
    assert gw.read_machine_list(tmp_path / "m.txt") == {"shared": None, "lib": "1.0", "typing-extensions": None}


def test_wheel_set(gw, tmp_path):
    (tmp_path / "m.txt").write_text("shared\nlib==1.0\ntyped\n")
    machine = gw.read_machine_list(tmp_path / "m.txt")
    needs = [gw.Need("app", SpecifierSet(), "imported in x.py")]
    ws = gw.resolve(
        needs, machine, fake_fetch(gw, {"app": "1.0"}), excluded={"gpu-vendor": "AMD only"}, carry_anyway={}
    )
    # lib: the machine's 1.0 fails >=2, so carried (tool's lib<2.5 is met); cli-helper through tool[cli]
    assert {n: w.version for n, w in ws.wheels.items()} == {
        "app": "1.0",
        "lib": "2.0",
        "tool": "3.0",
        "cli-helper": "0.1",
    }
    assert set(ws.on_machine) == {"shared", "typed"} and set(ws.excluded) == {"gpu-vendor"}
    assert ws.wheels["lib"].why == "app 1.0 requires lib<2.5,>=2" and ws.size == 4000
    assert [n.split(":")[0] for n in ws.notices] == ["typed"]  # unknown version, lower bound: said, not carried
    forced = gw.resolve(
        needs,
        machine,
        fake_fetch(gw, {"app": "1.0"}),
        excluded={"gpu-vendor": ""},
        carry_anyway={"typed": "too old there"},
    )
    assert forced.wheels["typed"].version == "4.2" and "typed" not in forced.on_machine


def test_wheel_set_conflict(gw):
    needs = [gw.Need("lib", SpecifierSet("==2.5"), "root"), gw.Need("tool", SpecifierSet(), "root")]
    with pytest.raises(ValueError, match="tool 3.0 requires lib<2.5"):
        gw.resolve(needs, {}, fake_fetch(gw, {}), excluded={}, carry_anyway={})


def test_imports_split_module_level_and_lazy(gw, tmp_path):
    (tmp_path / "m.py").write_text(
        "import numpy as np\nfrom typing import TYPE_CHECKING\ntry:\n    import yaml\n"
        "except ImportError:\n    pass\nif TYPE_CHECKING:\n    import pandas\n"
        "def f():\n    import torch\n    from zeus.monitor import ZeusMonitor\n"
        "from . import local\n"
    )
    assert gw.imports(tmp_path / "m.py") == ({"numpy", "typing", "yaml"}, {"torch", "zeus"})


def test_roots_of_this_tree(gw):
    """Offline: what the scanned files import and the machine lacks is decided, and carried as expected."""
    machine = gw.read_machine_list(gw.MACHINE_LIST)
    imported = gw.imported_distributions(sorted(p for g in gw.SCANNED for p in ROOT.glob(g)))
    assert gw.undecided(imported, machine) == []
    carried = {
        n.name
        for n in gw.root_needs(imported, gw.project_pins())
        if n.name not in machine and n.name not in gw.EXCLUDED
    }
    assert carried == {"pydantic", "pydantic-core", "math-verify", "zeus-ml"}
