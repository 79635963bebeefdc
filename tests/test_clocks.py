"""GPU clocks (issue 19 item 1) on the fake NVML: locking changes the read-back clock, and every way a
run can end gives the clocks back — normal exit, exception, SIGTERM, SIGINT, and a lock file left by a
SIGKILLed process, which the next lock (or ``recover``) resets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import fake_pynvml
import pytest
import yaml

from ttclib import runner
from ttclib.energy import clocks
from ttclib.params import load_params
from ttclib.spec import RunSpec


@pytest.fixture
def gpu(monkeypatch, tmp_path):
    fake = fake_pynvml.load()
    dev = fake.FakeGPU(profile="hopper", sm_clock_mhz=1980)
    fake.setup([dev])
    fake.nvmlInit()  # NVML counts inits: the lock's own init and shutdown nest inside
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake, dev, tmp_path


def _read(fake):
    h = fake.nvmlDeviceGetHandleByIndex(0)
    return fake.nvmlDeviceGetClockInfo(h, fake.NVML_CLOCK_SM)


def test_a_lock_snaps_sets_and_gives_back_the_clock(gpu):
    fake, dev, d = gpu
    with clocks.ClockLock(0, 1001, directory=d) as lock:
        assert lock.achieved["sm_mhz"] in dev.supported_graphics_clocks()
        assert abs(lock.achieved["sm_mhz"] - 1001) <= 7 and _read(fake) == lock.achieved["sm_mhz"]
        assert lock.achieved["method"] == "locked" and len(list(d.glob("gpu0-*.json"))) == 1
    assert _read(fake) == 1980 and dev.locked_gpu_clocks_mhz is None and not list(d.glob("*.json"))


def test_an_exception_resets(gpu):
    fake, dev, d = gpu
    with pytest.raises(ZeroDivisionError):
        with clocks.ClockLock(0, 600, directory=d):
            assert _read(fake) < 1980
            _ = 1 / 0
    assert dev.locked_gpu_clocks_mhz is None and _read(fake) == 1980


@pytest.mark.parametrize("sig, raised", [(signal.SIGTERM, SystemExit), (signal.SIGINT, KeyboardInterrupt)])
def test_sigterm_and_sigint_reset_then_end_the_run(gpu, sig, raised):
    fake, dev, d = gpu
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(raised):
        with clocks.ClockLock(0, 600, directory=d):
            os.kill(os.getpid(), sig)  # the handler runs at the next bytecode boundary
            pytest.fail("the signal must end the block")
    assert dev.locked_gpu_clocks_mhz is None and not list(d.glob("*.json"))
    assert signal.getsignal(signal.SIGTERM) is before  # handlers put back


def test_a_lock_file_of_a_killed_process_is_reset_by_the_next_start(gpu):
    fake, dev, d = gpu
    h = fake.nvmlDeviceGetHandleByIndex(0)
    fake.nvmlDeviceSetGpuLockedClocks(h, 600, 600)  # what the killed run left set
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    (d / f"gpu0-{dead.pid}.json").write_text(
        json.dumps({"pid": dead.pid, "index": 0, "uuid": fake.nvmlDeviceGetUUID(h), "sm_mhz": 600})
    )
    (d / f"gpu0-{os.getppid()}.json").write_text(json.dumps({"pid": os.getppid(), "index": 0, "sm_mhz": 900}))
    assert [i["pid"] for i in clocks.recover(d)] == [dead.pid]
    assert dev.locked_gpu_clocks_mhz is None and _read(fake) == 1980
    assert (d / f"gpu0-{os.getppid()}.json").exists()  # a live process's lock is left alone


def test_no_permission_is_one_clear_error_and_nothing_stays_set(gpu):
    fake, dev, d = gpu
    dev.clock_lock_error = fake.NVML_ERROR_NO_PERMISSION
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(clocks.ClockPermissionError, match="root or CAP_SYS_ADMIN.*nvidia-smi -lgc"):
        with clocks.ClockLock(0, 600, directory=d):
            pytest.fail("the block must not run")
    assert not list(d.glob("*.json")) and signal.getsignal(signal.SIGTERM) is before


def test_a_lock_refused_half_way_still_resets_what_was_set(gpu, monkeypatch):
    fake, dev, d = gpu

    def refuse(*a):
        raise fake.NVMLError(fake.NVML_ERROR_NO_PERMISSION)

    monkeypatch.setattr(fake, "nvmlDeviceSetMemoryLockedClocks", refuse)  # SM locks, memory is refused
    with pytest.raises(clocks.ClockPermissionError):
        with clocks.ClockLock(0, 600, mem_mhz=dev.mem_clock_mhz, directory=d):
            pass
    assert dev.locked_gpu_clocks_mhz is None and _read(fake) == 1980


def test_application_clocks_where_locking_is_not_supported(gpu):
    fake, dev, d = gpu
    dev.clock_lock_error = fake.NVML_ERROR_NOT_SUPPORTED
    with clocks.ClockLock(0, 1200, directory=d) as lock:
        assert lock.achieved["method"] == "applications" and _read(fake) == lock.achieved["sm_mhz"]
    assert dev.application_clocks_mhz is None and _read(fake) == 1980


def test_snap_picks_the_nearest_supported_clock():
    assert clocks.snap(180, [210, 225, 240]) == 210 and clocks.snap(2842, [1410, 1395]) == 1410
    with pytest.raises(clocks.ClockError, match="no supported clocks"):
        clocks.snap(1000, [])


def test_ttc_clocks_reset_gives_back_a_dead_process_lock(gpu, monkeypatch, capsys):
    from ttclib import cli

    fake, dev, d = gpu
    monkeypatch.setattr(clocks, "lock_dir", lambda: d)
    assert cli.main(["clocks", "--reset"]) == 0 and "no clocks left locked" in capsys.readouterr().out
    h = fake.nvmlDeviceGetHandleByIndex(0)
    fake.nvmlDeviceSetGpuLockedClocks(h, 600, 600)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (d / f"gpu0-{dead.pid}.json").write_text(json.dumps({"pid": dead.pid, "index": 0, "sm_mhz": 600}))
    assert cli.main(["clocks"]) == 0 and f'"pid": {dead.pid}' in capsys.readouterr().out
    assert cli.main(["clocks", "--reset"]) == 0
    assert f"reset GPU 0 (left at SM 600 MHz by pid {dead.pid}" in capsys.readouterr().out
    assert dev.locked_gpu_clocks_mhz is None


CHILD = """
import sys, time
import fake_pynvml
fake = fake_pynvml.load()
fake.setup([fake.FakeGPU(profile="hopper", sm_clock_mhz=1980)], state_file=sys.argv[1])
sys.modules["pynvml"] = fake
from ttclib.energy import clocks
with clocks.ClockLock(0, 600, directory=sys.argv[2]) as lock:
    print("locked", lock.achieved["sm_mhz"], flush=True)
    time.sleep(120)
"""


def test_a_sigkilled_run_leaves_its_clocks_locked_and_the_next_start_resets_them(monkeypatch, tmp_path):
    """The fake keeps clock settings in a file shared across processes, as the driver does: a child
    locks the clock and is SIGKILLed (no handler runs), the clock stays locked, and recover() in
    another process finds the dead pid's lock file and resets it."""
    from pathlib import Path

    state, d = tmp_path / "nvml-state.json", tmp_path / "locks"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests")])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(state), str(d)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        line = child.stdout.readline()
        assert line.startswith("locked"), line
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    fake = fake_pynvml.load()
    dev = fake.FakeGPU(profile="hopper", sm_clock_mhz=1980)
    fake.setup([dev], state_file=state)
    fake.nvmlInit()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert _read(fake) == int(line.split()[1]) and (d / f"gpu0-{child.pid}.json").exists()  # left locked
    assert [i["pid"] for i in clocks.recover(d)] == [child.pid]
    assert _read(fake) == 1980 and json.loads(state.read_text())["0"]["locked_gpu_clocks_mhz"] is None


# --- runs at a locked clock (issue 19 items 1, 2, 6) ------------------------------------------
RUN = dict(
    model="random:tiny-qwen2",
    strategy="base",
    benchmark="arithmetic",
    per_level=2,
    max_new_tokens=6,
    batch_size=4,
    backend="transformers",
    device="cpu",
    meter="nvml",
    idle_s=0.2,
    warmup=False,
    seed=5,
)


@pytest.fixture
def nvml_gpu(monkeypatch, tmp_path):
    """One fake Hopper GPU drawing 300 W at its own 1980 MHz, with the toy DVFS power model; clock
    locks write their files under tmp_path."""
    fake = fake_pynvml.load()
    dev = fake.FakeGPU(profile="hopper", power_w=300.0, update_period_s=0.001, sm_clock_mhz=1980)
    fake.setup([dev])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(clocks, "lock_dir", lambda: tmp_path / "clocks")
    return fake, dev


def test_the_clock_is_part_of_the_run_id_only_when_set():
    assert RunSpec(**RUN).run_id == RunSpec(**RUN, sm_clock_mhz=None).run_id
    assert (
        len(
            {
                RunSpec(**RUN).run_id,
                RunSpec(**RUN, sm_clock_mhz=960).run_id,
                RunSpec(**RUN, sm_clock_mhz=960, mem_clock_mhz=2619).run_id,
            }
        )
        == 3
    )


def test_a_clock_needs_a_measured_gpu_and_memory_goes_with_the_sm_clock():
    with pytest.raises(ValueError, match="a run on device cpu with meter 'auto' measures none"):
        RunSpec(**{**RUN, "meter": "auto"}, sm_clock_mhz=960)
    with pytest.raises(ValueError, match="mem_clock_mhz is locked together with sm_clock_mhz"):
        RunSpec(**RUN, mem_clock_mhz=2619)


@pytest.mark.heavy
def test_a_run_at_a_locked_clock_measures_what_the_clock_costs(nvml_gpu, tmp_path, tiny_backend):
    """Known answer: the fake's power at a locked clock is its toy DVFS factor times the power at the
    default clock. The work (CPU) does not slow down, so energy per measured second falls by exactly that
    factor; run.json says which clock was set, what the trace read, and that it is within 5 %."""
    fake, dev = nvml_gpu
    base = runner.execute(RunSpec(**RUN), tmp_path / "runs", progress=False, backend=tiny_backend)
    low = runner.execute(RunSpec(**RUN, sm_clock_mhz=1000), tmp_path / "runs", progress=False, backend=tiny_backend)
    a, b = (json.loads((d / "run.json").read_text()) for d in (base, low))
    set_mhz = b["clocks"]["locks"][0]["sm_mhz"]
    assert set_mhz in dev.supported_graphics_clocks() and abs(set_mhz - 1000) <= 7
    assert b["clocks"]["locks"][0]["method"] == "locked" and b["clocks"]["within_tolerance"] is True
    assert b["clocks"]["sm_mhz"]["median"] == set_mhz and a["clocks"]["sm_mhz"]["median"] == 1980
    assert a["clocks"]["locks"] == [] and a["clocks"]["throttle_reasons"] == {"SwPowerCap": 1.0}
    truth = fake.dvfs_factor(set_mhz, 1980)
    assert b["energy_j"] / b["measured_s"] == pytest.approx(truth * 300.0, rel=0.03)
    assert a["energy_j"] / a["measured_s"] == pytest.approx(300.0, rel=0.03)
    assert dev.locked_gpu_clocks_mhz is None and not list((tmp_path / "clocks").glob("*.json"))  # given back


def _plan(tmp_path: Path, **clock):
    path = tmp_path / "p.yaml"
    path.write_text(
        yaml.safe_dump(
            {"profiles": {"default": {"runs_dir": "runs", "defaults": {**RUN, **clock}, "grid": {"seed": [1, 2]}}}}
        )
    )
    return load_params(path)


def test_a_missing_permission_stops_the_plan_before_any_model_loads(nvml_gpu, tmp_path, monkeypatch):
    fake, dev = nvml_gpu
    dev.clock_lock_error = dev.app_clock_error = fake.NVML_ERROR_NO_PERMISSION
    monkeypatch.setattr(runner, "open_backend", lambda *a, **k: pytest.fail("a model was loaded"))
    plan = _plan(tmp_path, sm_clock_mhz=960)
    with pytest.raises(clocks.ClockPermissionError) as err:
        runner.measure_plan(plan, progress=False)
    msg = str(err.value)
    assert msg.startswith(f"{plan.path}: profiles.default: run {plan.specs[0].run_id}") or msg.startswith(
        f"{plan.path}: profiles.default: run {plan.specs[1].run_id}"
    )
    assert "CAP_SYS_ADMIN" in msg and "nvidia-smi -lgc" in msg and msg.count("\n") == 0
    with pytest.raises(clocks.ClockPermissionError):  # one run alone: the same, before its model
        runner.execute(plan.specs[0], plan.runs_dir, progress=False)
    assert not list(Path(plan.runs_dir).glob("*/run.json"))


@pytest.mark.heavy
def test_a_frequency_grid_measured_end_to_end_gives_table_xi(nvml_gpu, tmp_path, tiny_backend):
    """A grid over three clocks is an ordinary grid: each run locks its clock, and Table XI from the
    measured runs finds the toy model's saving (the CPU's time does not depend on the fake clock, so
    energy per query falls by the power factor, give or take the CPU's own timing noise) and phases
    that add up to each query's latency and energy."""
    from ttclib import dvfs, metrics

    fake, dev = nvml_gpu
    plan = _plan(tmp_path, repetitions=2)
    path = Path(plan.path)
    cfg = yaml.safe_load(path.read_text())
    cfg["profiles"]["default"]["grid"] = {"sm_clock_mhz": [600, 1200, 1980]}
    path.write_text(yaml.safe_dump(cfg))
    plan = load_params(path)
    runner.measure_plan(plan, progress=False)
    data = metrics.load_runs([Path(plan.runs_dir) / s.run_id for s in plan.specs])
    q = data.queries
    assert (q.t_start <= q.t_first_token).all() and (q.t_first_token <= q.t_end).all()
    assert (q.prefill_energy_j + q.decode_energy_j).to_numpy() == pytest.approx(q.energy_j.to_numpy(), rel=1e-9)
    assert sorted(data.runs.sm_clock_set_mhz) == [600, 1200, 1980]
    power = (data.runs.energy_j / data.runs.measured_s).groupby(data.runs.sm_clock_set_mhz).first()
    factor = fake.dvfs_factor(600, 1980)
    assert power[600] / power[1980] == pytest.approx(factor, rel=0.03)  # exact: the power ratio
    (row,) = dvfs.savings(data, low=600).to_dict("records")
    # every query is paired, so the saving is the runs' energy ratio: the power factor times the ratio of
    # the time each run measured (the CPU's own speed, which the fake clock does not change)
    seconds = data.runs.groupby("sm_clock_set_mhz").measured_s.first()
    truth = 100 * (1 - factor * seconds[600] / seconds[1980])
    assert row["base_mhz"] == 1980 and row["energy_saved_pct"] == pytest.approx(truth, abs=3), (row, truth)
    assert dev.locked_gpu_clocks_mhz is None
    # the same runs as a GPU reference panel (what 08 shows from make gpu-check): table, fits, sentence, figure
    from ttclib import reference

    ref = reference.Reference(data.runs, data.queries, data.power, section="dvfs")
    assert reference.select(data.runs, "dvfs") == list(data.runs.run_id) and reference.select(data.runs, "batch") == []
    panel = reference.panel(ref)
    assert list(panel.table.low_mhz) == [600] and "energy falls by more than latency rises" in panel.sentence
    saved = next(p for p in panel.sentence.split("\n\n") if "energy falls by more than latency rises" in p)
    edp = next(p for p in panel.sentence.split("\n\n") if "EDP-optimal clock" in p)
    assert "could not be tested" not in saved + edp and "600 vs 1980 MHz" in saved and "bootstrap" in edp
    fig = reference.figure(ref, panel)
    assert any(ax.get_ylabel() == "SM clock read (MHz)" for ax in fig.axes)
