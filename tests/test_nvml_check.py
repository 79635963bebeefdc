"""scripts/nvml_check.py end to end on tests/fake_pynvml.py (one "hopper" GPU), and its pure helpers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.heavy  # make test-fast leaves this module out (its fixture runs the check)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "nvml_check.py"
# Short steps: the whole fake run takes about 10 s.
FAST = [
    "--fake",
    "--seconds",
    "2",
    "--probe-seconds",
    "0.3",
    "--settle-seconds",
    "0.1",
    "--step-before",
    "0.3",
    "--step-after",
    "1.6",
    "--idle-seconds",
    "1",
    "--ramp-seconds",
    "1.1",
    "--clock-seconds",
    "0.2",
]


def run_script(tmp_path: Path, *args: str) -> dict:
    env = {**os.environ, "OUT": str(tmp_path / "OUT")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "out" / "nvml_check.json").read_text())
    assert json.loads((tmp_path / "OUT" / "nvml_check.json").read_text()) == data  # copied to $OUT
    return data


@pytest.fixture(scope="module")
def nc():
    """The script as a module (for its helpers)."""
    spec = importlib.util.spec_from_file_location("nvml_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["nvml_check"] = mod
    spec.loader.exec_module(mod)
    yield mod
    del sys.modules["nvml_check"]


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory) -> dict:
    """Every step on the fake GPU, clock locking refused as in a container, --ttc-run asked for."""
    return run_script(tmp_path_factory.mktemp("nc"), *FAST, "--fake-clock-error", "no_permission", "--ttc-run")


@pytest.mark.heavy
def test_every_step_recorded(fake_run):
    steps = fake_run["steps"]
    assert list(steps) == ["support", "periods", "step", "idle", "window", "clocks", "ttc"]
    assert {k: v["status"] for k, v in steps.items() if k != "ttc"} == dict.fromkeys(list(steps)[:-1], "ok")
    assert steps["ttc"]["status"] == "skipped" and "--fake" in steps["ttc"]["reason"]
    assert all(v["seconds"] >= 0 for v in steps.values())
    assert [p["step"] for p in fake_run["plan"]] == list(steps)
    assert fake_run["summary"]["statuses"] == {k: v["status"] for k, v in steps.items()}


def test_support_matrix(fake_run):
    gpu = fake_run["steps"]["support"]["gpus"]["gpu0"]
    assert gpu["Name"]["value"] == "NVIDIA H100 80GB HBM3"
    assert gpu["FieldValues_POWER_INSTANT"]["ok"] and gpu["FieldValues_POWER_AVERAGE"]["ok"]
    assert gpu["FieldValues_POWER_INSTANT"]["value_w"] == pytest.approx(75.0, abs=5)
    assert gpu["SupportedGraphicsClocks"]["value"]["max"] == 1980
    assert all(set(v) >= {"ok"} for v in gpu.values())


def test_fake_numbers_recovered(fake_run):
    s = fake_run["steps"]
    assert s["periods"]["counter_update_period_s"] == pytest.approx(0.02, rel=0.25)  # FakeGPU.update_period_s
    step = s["step"]
    assert step["power_usage_averaged"] is True and step["instant_averaged"] is False  # hopper: 1 s average
    assert step["signals"]["usage"]["rise_s"] == pytest.approx(0.8, abs=0.1)  # 10-90 % of a 1 s mean
    assert step["signals"]["instant"]["after_w"] == pytest.approx(640, abs=5)
    assert s["idle"]["idle_power_w"] == pytest.approx(75.0, abs=1) and s["idle"]["settled"]
    w = s["window"]["per_gpu"]["gpu0"]
    assert w["ratio_counter_over_integrated_instant"] == pytest.approx(1, abs=0.02)
    assert w["ratio_counter_over_integrated_usage"] == pytest.approx(1, abs=0.02)
    assert w["mean_power_w"] == pytest.approx(640, rel=0.02)
    assert w["checks"]["segments_within_one_quantum"] and w["segments"] >= 2
    assert w["zeus_j"] is None and any("zeus" in n.lower() for n in s["window"]["notes"])
    assert s["window"]["meters"][0]["power_source"] == ["field_power_instant"]
    assert s["window"]["meters"][1]["power_source"] == ["power_usage"]


def test_clock_lock_refused_is_recorded(fake_run):
    c = fake_run["steps"]["clocks"]
    assert c["status"] == "ok" and c["lock_ok"] is False and c["levels"] == []
    assert c["lock_error"] == "NVMLError_NoPermission: Insufficient Permissions"
    assert c["reset"].startswith("NVMLError_NoPermission")  # reset attempted anyway, its refusal recorded
    assert fake_run["summary"]["clock_lock"] == c["lock_error"]


def test_clock_levels_when_allowed(tmp_path):
    c = run_script(tmp_path, "--fake", "--steps", "clocks", "--clock-seconds", "0.2")["steps"]["clocks"]
    assert c["lock_ok"] and c["reset"] == "ok"
    assert c["targets_mhz"] == [405, 1200, 1980]  # lowest >= 400, middle, highest of 1980..345 step 15
    assert [round(lv["mean_sm_clock_mhz"]) for lv in c["levels"]] == c["targets_mhz"]


def test_dry_run_prints_plan_only(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--ttc-run", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "ttc" in proc.stdout and "total" in proc.stdout
    assert not (tmp_path / "nvml_check.json").exists()


def test_rise_time_and_verdict(nc):
    t = np.arange(0, 3.5, 0.005)
    instant = np.where(t < 1, 100.0, 600.0)
    usage = np.interp(t, [0, 1, 2, 3.5], [100, 100, 600, 600])  # a 1 s moving average of the step
    u, i = nc.rise_time(t, usage, 1.0), nc.rise_time(t, instant, 1.0)
    assert u["rise_s"] == pytest.approx(0.8, abs=0.01) and i["rise_s"] < 0.01
    assert nc.verdict(u, i)[0] is True and "~1 s average" in nc.verdict(u, i)[1]
    assert nc.verdict(i, i)[0] is False
    assert nc.rise_time(t, np.full_like(t, 100.0), 1.0)["rise_s"] is None


def test_pick_clocks(nc):
    assert nc.pick_clocks([210, 300, 405, 800, 1410], 400) == [405, 800, 1410]
    assert nc.pick_clocks([1980], 400) == [1980]


def test_pending_clock_reset(nc):
    done = []
    nc._PENDING_RESETS[1] = lambda: done.append(1)
    nc._PENDING_RESETS[2] = lambda: 1 / 0  # a failing reset does not stop the others
    nc.reset_pending_clocks()
    assert done == [1] and nc._PENDING_RESETS == {}


def test_summarize_run(nc, tmp_path):
    info = {
        "energy_j": 10.0,
        "net_energy_j": 4.0,
        "measured_s": 2.0,
        "meter_name": "nvml",
        "n_queries": 2,
        "n_completions": 2,
        "completion_tokens": 128,
        "windows": [{"flags": ["short_window"]}, {"flags": []}],
        "meter": {"idle_power_w": 3.0, "devices": [{"name": "gpu0", "power_source": "field_power_instant"}]},
    }
    (tmp_path / "run.json").write_text(json.dumps(info))
    pd.DataFrame({"energy_j": [4.0, 6.0]}).to_parquet(tmp_path / "queries.parquet")
    s = nc.summarize_run(tmp_path)
    assert s["queries_sum_over_energy_j"] == 1.0 and s["flags"] == ["short_window"]
    assert s["devices"][0]["power_source"] == "field_power_instant" and s["n_completions"] == 2
