"""GPU clocks (issue 19 item 1) on the fake NVML: locking changes the read-back clock, and every way a
run can end gives the clocks back — normal exit, exception, SIGTERM, SIGINT, and a lock file left by a
SIGKILLed process, which the next lock (or ``recover``) resets."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import fake_pynvml
from ttclib.energy import clocks


@pytest.fixture
def gpu(monkeypatch, tmp_path):
    fake = fake_pynvml.load()
    dev = fake.FakeGPU(profile="hopper", sm_clock_mhz=1980)
    fake.setup([dev])
    fake.nvmlInit()                   # NVML counts inits: the lock's own init and shutdown nest inside
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
            1 / 0
    assert dev.locked_gpu_clocks_mhz is None and _read(fake) == 1980


@pytest.mark.parametrize("sig, raised", [(signal.SIGTERM, SystemExit), (signal.SIGINT, KeyboardInterrupt)])
def test_sigterm_and_sigint_reset_then_end_the_run(gpu, sig, raised):
    fake, dev, d = gpu
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(raised):
        with clocks.ClockLock(0, 600, directory=d):
            os.kill(os.getpid(), sig)        # the handler runs at the next bytecode boundary
            pytest.fail("the signal must end the block")
    assert dev.locked_gpu_clocks_mhz is None and not list(d.glob("*.json"))
    assert signal.getsignal(signal.SIGTERM) is before                 # handlers put back


def test_a_lock_file_of_a_killed_process_is_reset_by_the_next_start(gpu):
    fake, dev, d = gpu
    h = fake.nvmlDeviceGetHandleByIndex(0)
    fake.nvmlDeviceSetGpuLockedClocks(h, 600, 600)                    # what the killed run left set
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()                                                        # a pid that no longer runs
    (d / f"gpu0-{dead.pid}.json").write_text(json.dumps({"pid": dead.pid, "index": 0,
                                                          "uuid": fake.nvmlDeviceGetUUID(h), "sm_mhz": 600}))
    (d / f"gpu0-{os.getppid()}.json").write_text(json.dumps({"pid": os.getppid(), "index": 0, "sm_mhz": 900}))
    assert [i["pid"] for i in clocks.recover(d)] == [dead.pid]
    assert dev.locked_gpu_clocks_mhz is None and _read(fake) == 1980
    assert (d / f"gpu0-{os.getppid()}.json").exists()                 # a live process's lock is left alone


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

    monkeypatch.setattr(fake, "nvmlDeviceSetMemoryLockedClocks", refuse)   # SM locks, memory is refused
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
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(state), str(d)], stdout=subprocess.PIPE, text=True,
                             env=env)
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
    assert _read(fake) == int(line.split()[1]) and (d / f"gpu0-{child.pid}.json").exists()   # left locked
    assert [i["pid"] for i in clocks.recover(d)] == [child.pid]
    assert _read(fake) == 1980 and json.loads(state.read_text())["0"]["locked_gpu_clocks_mhz"] is None
