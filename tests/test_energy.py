"""Tests of ttclib.energy against a fake pynvml, a fake powercap tree, and this process."""

from __future__ import annotations

import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import fake_pynvml
import numpy as np
import pytest

from ttclib import energy
from ttclib.energy import (
    TRACE_COLUMNS,
    EstimateMeter,
    Measurement,
    NvmlMeter,
    RaplMeter,
    attribute_energy,
    available_meters,
    select_meter,
)


@pytest.fixture
def fake_nvml(monkeypatch):
    """A fresh fake pynvml installed as sys.modules['pynvml']; call .setup([...]) to script GPUs."""
    fake = fake_pynvml.load()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake


def _window(meter, seconds, key="w"):
    meter.begin_window(key)
    time.sleep(seconds)
    return meter.end_window(key)


# ---- (a)-(f) NVML ---------------------------------------------------------------------


def test_nvml_counter_single_gpu(fake_nvml):
    fake_nvml.setup([fake_nvml.FakeGPU(power_w=250.0, update_period_s=0.02)])
    with NvmlMeter(sample_interval_s=0.05, counter_probe_s=0) as meter:
        m = _window(meter, 1.0)
    assert m.meter == "nvml" and m.method == "energy_counter"
    assert m.methods == {"gpu0": "energy_counter"}
    assert set(m.energy_j) == {"gpu0"}
    # counter quantised to 20 ms: error at most 2 * 0.02 s * 250 W = 10 J
    assert m.total_j == pytest.approx(250.0 * m.time_s, abs=11.0)
    assert m.total_j == pytest.approx(250.0, rel=0.06)
    assert m.mean_power_w == pytest.approx(250.0, rel=0.05)
    assert not meter.sampling  # counters need no sampler


def test_nvml_without_counter_integrates_power(fake_nvml):
    gpu = fake_nvml.FakeGPU(power_w=[(0.0, 100.0), (0.3, 300.0)], energy_counter=False)
    fake_nvml.setup([gpu])
    with NvmlMeter(sample_interval_s=0.01, counter_probe_s=0) as meter:
        m = _window(meter, 0.6)
        assert not meter.sampling  # auto-started sampler stops with the last window
        assert meter.describe()["counter_update_period_s"] is None
    assert m.method == "power_integration"
    expected = gpu.energy_between(m.start_s, m.start_s + m.time_s)
    # a step between two 10 ms samples is smeared over one interval: <= 200 W * 0.01 s
    assert m.total_j == pytest.approx(expected, abs=3.0 + 0.02 * expected)


def test_nvml_two_gpus_summed_and_mixed_methods(fake_nvml):
    fake_nvml.setup(
        [
            fake_nvml.FakeGPU(power_w=100.0),
            fake_nvml.FakeGPU(power_w=300.0, name="NVIDIA H100 80GB HBM3"),
            fake_nvml.FakeGPU(power_w=50.0, energy_counter=False, name="Tesla P100"),
        ]
    )
    with NvmlMeter(gpus=[0, 1], sample_interval_s=0.05, counter_probe_s=0) as meter:
        m = _window(meter, 0.5)
    assert set(m.energy_j) == {"gpu0", "gpu1"}
    assert m.energy_j["gpu0"] == pytest.approx(100 * m.time_s, abs=4.5)
    assert m.energy_j["gpu1"] == pytest.approx(300 * m.time_s, abs=12.5)
    assert m.total_j == pytest.approx(400 * m.time_s, rel=0.06)

    with NvmlMeter(sample_interval_s=0.02, counter_probe_s=0) as meter:  # all three
        m = _window(meter, 0.4)
        d = meter.describe()
    assert m.method == "energy_counter+power_integration"
    assert m.methods == {"gpu0": "energy_counter", "gpu1": "energy_counter", "gpu2": "power_integration"}
    assert m.energy_j["gpu2"] == pytest.approx(50 * m.time_s, rel=0.03)
    assert m.total_j == pytest.approx(450 * m.time_s, rel=0.06)
    assert [g["method"] for g in d["devices"]] == ["energy_counter", "energy_counter", "power_integration"]
    assert d["devices"][1]["model"] == "NVIDIA H100 80GB HBM3"
    assert d["devices"][0]["power_limit_w"] == 400.0
    assert d["driver_version"] == "550.54.15"
    json.dumps(d)


def test_nvml_cuda_visible_devices(fake_nvml, monkeypatch):
    fake_nvml.setup([fake_nvml.FakeGPU(power_w=100.0), fake_nvml.FakeGPU(power_w=300.0)])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with NvmlMeter(counter_probe_s=0) as meter:
        assert meter.devices == ["gpu0"]
        assert meter.describe()["devices"][0]["nvml_index"] == 1
        m = _window(meter, 0.3)
    assert m.mean_power_w == pytest.approx(300.0, rel=0.15)


def test_nvml_counter_update_period_measured(fake_nvml):
    fake_nvml.setup([fake_nvml.FakeGPU(power_w=200.0, update_period_s=0.05)])
    with NvmlMeter(counter_probe_s=1.5) as meter:
        period = meter.counter_update_period_s
        assert meter.describe()["counter_update_period_s"] == period
    assert period == pytest.approx(0.05, abs=0.005)


@pytest.mark.heavy
def test_idle_baseline_waits_until_power_settles(fake_nvml):
    """Clocks stay high for a while after warm-up: 300 W for 1.2 s, then 60 W. The baseline is
    taken only once three sub-window means agree, so it is 60 W, not a mix."""
    gpu = fake_nvml.FakeGPU(power_w=[(0.0, 300.0), (1.2, 60.0), (30.0, 260.0)], update_period_s=0.01)
    fake_nvml.setup([gpu])
    with NvmlMeter(counter_probe_s=0) as meter:
        idle = meter.measure_idle(1.0)
        assert meter.idle_power_w == idle == pytest.approx(60.0, rel=0.02)
        assert meter.idle.settled and meter.idle.settle_s >= 1.2 and meter.idle.span_s >= 1.0
        assert meter.idle.std_w < 1.0
        assert meter.describe()["idle"]["rule"].startswith("power is settled")
        m = _window(meter, 0.3)
    assert m.idle_power_w == idle
    assert m.net_j == pytest.approx(m.total_j - idle * m.time_s)
    d = m.to_dict()
    assert d["net_j"] == m.net_j and d["total_j"] == m.total_j and d["methods"] == m.methods
    assert Measurement.from_dict(json.loads(json.dumps(d))) == m
    # idle unknown -> net == total
    plain = Measurement("nvml", "energy_counter", 0.0, 1.0, {"gpu0": 5.0})
    assert plain.net_j == plain.total_j == 5.0


@pytest.mark.heavy
def test_idle_baseline_gives_up_on_unsettled_power(fake_nvml):
    steps = [(k * 0.05, 100.0 + 5.0 * k) for k in range(200)]  # a ramp of 100 W/s never settles
    fake_nvml.setup([fake_nvml.FakeGPU(power_w=steps, update_period_s=0.01)])
    with NvmlMeter(counter_probe_s=0) as meter:
        meter.measure_idle(0.5, settle_timeout_s=1.6)
        assert not meter.idle.settled and meter.idle.settle_s >= 1.5


def test_trace_columns_clocks_and_not_supported(fake_nvml):
    fake_nvml.setup(
        [
            fake_nvml.FakeGPU(power_w=150.0, sm_clock_mhz=1980, mem_clock_mhz=2619, temp_c=61, noise_w=1.0),
            fake_nvml.FakeGPU(
                power_w=80.0,
                unsupported={
                    "nvmlDeviceGetTemperature",
                    "nvmlDeviceGetUtilizationRates",
                    "nvmlDeviceGetCurrentClocksEventReasons",
                },
            ),
        ]
    )
    with NvmlMeter(sample_interval_s=0.02, counter_probe_s=0, slow_every=1) as meter:
        meter.start_sampling()
        meter.start_sampling()  # idempotent
        time.sleep(0.3)
        meter.stop_sampling()
        meter.stop_sampling()
        n = len(meter.trace())
        time.sleep(0.05)
        assert len(meter.trace()) == n  # stopped
        df = meter.trace()
        d = meter.describe()
    assert tuple(df.columns) == TRACE_COLUMNS
    assert str(df["throttle_reasons"].dtype) == "int64"
    g0, g1 = df[df.device == "gpu0"], df[df.device == "gpu1"]
    assert len(g0) >= 8 and len(g1) == len(g0)  # counters move every sweep: no repeats
    assert (g0.sm_clock_mhz == 1980).all() and (g0.mem_clock_mhz == 2619).all()
    assert (g0.temp_c == 61).all() and (g0.util_pct == 87).all() and (g0.mem_util_pct == 41).all()
    assert (abs(g0.power_w - 150.0) < 6).all() and (g0.throttle_reasons == 4).all()
    assert g0.energy_j.is_monotonic_increasing and g0.energy_j.iloc[-1] > 0
    assert g1.temp_c.isna().all() and g1.util_pct.isna().all() and (g1.throttle_reasons == 0).all()
    assert g0.t.is_monotonic_increasing
    assert d["sampler"]["errors"] == 0 and d["sampler"]["samples"] == len(df)
    mid, end = df.t.iloc[len(df) // 2], df.t.iloc[-3]
    part = meter.trace(mid, end)
    expected = df[(df.t >= mid) & (df.t <= end)].reset_index(drop=True)
    assert len(part) < len(df) and part.equals(expected)


def test_sampler_survives_errors_and_unknown_window(fake_nvml):
    fake_nvml.setup([fake_nvml.FakeGPU(power_w=100.0)])
    meter = NvmlMeter(sample_interval_s=0.01, counter_probe_s=0)
    meter._sample = lambda: 1 / 0  # every sample fails
    meter.start_sampling()
    time.sleep(0.1)
    assert meter.sampling
    t0 = time.monotonic()
    meter.stop_sampling()
    assert time.monotonic() - t0 < 0.2
    assert meter.describe()["sampler"]["errors"] >= 3
    assert "ZeroDivisionError" in meter.describe()["sampler"]["last_error"]
    with pytest.raises(KeyError, match="No open measurement window 'nope'"):
        meter.end_window("nope")
    meter.begin_window("a")
    with pytest.raises(ValueError, match="already open"):
        meter.begin_window("a")
    meter.begin_window("b")  # overlapping windows
    b = meter.end_window("b")
    a = meter.end_window("a")
    assert a.time_s >= b.time_s and a.start_s <= b.start_s
    meter.close()
    meter.close()
    assert fake_nvml._initialized == 0  # nvmlShutdown called once


# ---- (g) RAPL -------------------------------------------------------------------------


def _zone(path: Path, name: str, energy_uj: int, max_uj: int) -> Path:
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return path


def test_rapl_counters_and_wraparound(tmp_path):
    max_uj = 262_143_328_850
    pkg = _zone(tmp_path / "intel-rapl:0", "package-0", max_uj - 5_000_000, max_uj)
    dram = _zone(pkg / "intel-rapl:0:0", "dram", 1_000_000, 65_532_610_987)
    _zone(pkg / "intel-rapl:0:1", "core", 7, max_uj)  # not measured: inside the package
    _zone(tmp_path / "intel-rapl:1", "psys", 7, max_uj)  # platform zone: would double count
    (tmp_path / "intel-rapl").mkdir()  # the control-type directory

    with RaplMeter(root=tmp_path, sample_interval_s=0.01) as meter:
        assert meter.devices == ["package-0", "dram-0"]
        meter.begin_window("w")
        assert meter.sampling  # keeps reading so a wrap is never missed
        (pkg / "energy_uj").write_text(f"{15_000_000}\n")  # wrapped: +5 J +15 J
        (dram / "energy_uj").write_text(f"{4_000_000}\n")  # +3 J
        time.sleep(0.05)
        m = meter.end_window("w")
        assert not meter.sampling
        df = meter.trace()
        d = meter.describe()
    assert m.meter == "rapl" and m.method == "rapl_counter"
    assert m.energy_j == pytest.approx({"package-0": 20.0, "dram-0": 3.0})
    assert tuple(df.columns) == TRACE_COLUMNS
    assert df[df.device == "package-0"].energy_j.max() == pytest.approx(20.0)
    assert d["meter"] == "rapl" and any("psys" in s for s in d["skipped"])


def test_rapl_unreadable_raises_clearly(tmp_path):
    with pytest.raises(RuntimeError, match="No readable RAPL zone"):
        RaplMeter(root=tmp_path / "missing")
    z = _zone(tmp_path / "intel-rapl:0", "package-0", 1, 10)
    (z / "energy_uj").unlink()
    (z / "energy_uj").mkdir()  # reading it fails like a permission error would
    with pytest.raises(RuntimeError, match="energy_uj unreadable"):
        RaplMeter(root=tmp_path)


# ---- (h) estimate ---------------------------------------------------------------------


def _busy(seconds):
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        pass


def test_estimate_busy_loop_and_children():
    with EstimateMeter(per_core_w=10.0, sample_interval_s=0.02) as meter:
        cpu0 = time.process_time()
        child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        meter.begin_window("w")
        _busy(0.3)
        subprocess.run(
            [sys.executable, "-c", "import time\nt=time.process_time()\nwhile time.process_time()-t<0.3: pass"],
            check=True,
        )
        m = meter.end_window("w")
        cpu = time.process_time() - cpu0
        child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        child = (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)
        d = meter.describe()
    assert m.meter == "estimate" and m.method == "cpu_time_x_tdp"
    assert child > 0.3
    # the child's last 20 ms before exit may be missed; clock ticks are 10 ms
    assert m.energy_j["cpu"] / 10.0 == pytest.approx(cpu + child, abs=0.08)
    assert d["estimate"] is True and "ESTIMATE" in d["warning"]
    assert d["per_core_w_source"] == "parameter" and d["per_core_w"] == 10.0


def test_estimate_per_core_sources(monkeypatch):
    with EstimateMeter(tdp_w=280.0, cores=64) as m:
        assert m.per_core_w == pytest.approx(4.375) and m.per_core_w_source == "parameter"
    monkeypatch.setattr(energy.cpu_time, "cpu_model", lambda: "AMD EPYC 7763 64-Core Processor")
    with EstimateMeter() as m:
        assert m.per_core_w == pytest.approx(280 / 64)
        assert m.describe()["per_core_w_source"] == "table:EPYC 7763"
    monkeypatch.setattr(energy.cpu_time, "cpu_model", lambda: "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz")
    with EstimateMeter() as m:
        assert m.per_core_w_source == "table:Xeon Gold 6248R"
    monkeypatch.setattr(energy.cpu_time, "cpu_model", lambda: "AMD EPYC")
    with EstimateMeter() as m:
        assert m.per_core_w == energy.DEFAULT_PER_CORE_W and m.per_core_w_source == "default"


# ---- (i) selection --------------------------------------------------------------------


def test_select_meter_auto_on_this_machine():
    avail = available_meters()
    assert avail["estimate"] == "ok"
    if avail["nvml"] == "ok" or avail["rapl"] == "ok":
        pytest.skip(f"this machine has a real meter: {avail}")
    with select_meter("auto", per_core_w=3.0) as meter:
        assert isinstance(meter, EstimateMeter) and meter.per_core_w == 3.0
    with pytest.raises(RuntimeError, match="Meter 'rapl' is unavailable"):
        select_meter("rapl")


def test_select_meter_with_fakes(fake_nvml, tmp_path):
    fake_nvml.setup([])  # pynvml imports and initialises but sees no GPU
    with pytest.raises(RuntimeError, match="unavailable: NVML sees no GPU"):
        select_meter("nvml")
    assert fake_nvml._initialized == 0  # shut down again after the failure
    fake_nvml.setup([], init_error=fake_nvml.NVML_ERROR_DRIVER_NOT_LOADED)
    with pytest.raises(RuntimeError, match="nvmlInit failed: Driver Not Loaded"):
        select_meter("nvml")
    assert available_meters(root=tmp_path)["nvml"].startswith("RuntimeError: nvmlInit failed")
    with select_meter("auto", root=tmp_path / "none") as meter:
        assert meter.name == "estimate"
    _zone(tmp_path / "intel-rapl:0", "package-0", 1, 10**9)
    with select_meter("auto", root=tmp_path) as meter:
        assert meter.name == "rapl"
    fake_nvml.setup([fake_nvml.FakeGPU()])
    with select_meter("auto", root=tmp_path, counter_probe_s=0, per_core_w=1.0) as meter:
        assert meter.name == "nvml"
    with pytest.raises(ValueError, match="Unknown meter 'joulemeter'"):
        select_meter("joulemeter")


# ---- (j) attribution ------------------------------------------------------------------


def test_attribute_two_overlapping_constant_power():
    # power 100 W over [0, 3]; q0 on [0, 2], q1 on [1, 3]: each 1 s alone + 1 s shared
    e = attribute_energy(300.0, [0.0, 3.0], [100.0, 100.0], [(0, 2), (1, 3)])
    assert e == pytest.approx([150.0, 150.0])
    # q0 [0,1] alone, q1 [0,3]: q0 gets half of [0,1] = 50; q1 gets 50 + 200
    e = attribute_energy(300.0, [0.0, 3.0], [100.0, 100.0], [(0, 1), (0, 3)])
    assert e == pytest.approx([50.0, 250.0])


def test_attribute_follows_power_and_sums_to_total():
    # 100 W on [0,1), ramp to 300 W at 2 (linear interpolation), q0 [0,1], q1 [1,2]
    t, p = [0.0, 1.0, 2.0], [100.0, 100.0, 300.0]
    e = attribute_energy(90.0, t, p, [(0, 1), (1, 2)])
    assert e == pytest.approx([30.0, 60.0])  # weights 100 : 200
    # long-format trace of two devices: same times are summed (gpu0 + gpu1)
    t2 = [0.0, 0.0, 2.0, 2.0]
    p2 = [50.0, 50.0, 50.0, 250.0]
    assert attribute_energy(90.0, t2, p2, [(0, 1), (1, 2)]) == pytest.approx([33.75, 56.25])
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 100, 5000)
    iv = np.column_stack([s, s + rng.uniform(0, 5, s.size)])
    tt = np.linspace(-1, 106, 20000)
    e = attribute_energy(1234.5, tt, 200 + 50 * np.sin(tt), iv)
    assert e.sum() == pytest.approx(1234.5) and (e >= 0).all() and e.shape == (5000,)


def test_attribute_edge_cases():
    # zero-length intervals among others get nothing; all zero-length -> equal split
    e = attribute_energy(10.0, [], [], [(0, 1), (0.5, 0.5)])
    assert e == pytest.approx([10.0, 0.0])
    assert attribute_energy(9.0, [], [], [(1, 1), (2, 2), (3, 3)]) == pytest.approx([3.0, 3.0, 3.0])
    # zero power everywhere -> split by interval length
    assert attribute_energy(30.0, [0, 10], [0, 0], [(0, 1), (0, 2)]) == pytest.approx([10.0, 20.0])
    assert attribute_energy(5.0, [], [], []).shape == (0,)
    with pytest.raises(ValueError):
        attribute_energy(1.0, [], [], [(2, 1)])


# ---- measurement core v2: gap-free checkpoints, retries, flags, power source, scope ---------


def test_checkpoints_tile_the_outer_window(fake_nvml):
    """Segments closed by checkpoint() sum to one window over the whole run, to within one
    counter quantum per segment, however much time the caller spends between them."""
    fake_nvml.setup(
        [fake_nvml.FakeGPU(power_w=[(k * 0.07, 100.0 + 37 * (k % 5)) for k in range(40)], update_period_s=0.02)]
    )
    with NvmlMeter(counter_probe_s=0) as meter:
        meter.begin_window("run")
        meter.begin_window("segment")
        segments = []
        for k in range(8):
            time.sleep(0.05 + 0.03 * (k % 3))
            segments.append(meter.checkpoint("segment"))
            time.sleep(0.04)  # "writing files": still inside the next segment
        segments.append(meter.end_window("segment"))
        run = meter.end_window("run")
    for a, b in itertools.pairwise(segments):
        assert b.start_s == a.end_s
    assert sum(s.time_s for s in segments) == pytest.approx(run.time_s, abs=0.01)
    quantum_j = 0.02 * 285.0
    assert abs(sum(s.total_j for s in segments) - run.total_j) <= quantum_j * len(segments)


def test_transient_counter_errors_are_retried(fake_nvml):
    fake_nvml.setup([fake_nvml.FakeGPU(power_w=200.0, update_period_s=0.01)])
    with NvmlMeter(counter_probe_s=0) as meter:
        meter.begin_window("w")
        time.sleep(0.3)
        fake_nvml.fail_next("nvmlDeviceGetTotalEnergyConsumption", n=2)
        m = meter.end_window("w")
        errors = meter.describe()["read_errors"]
    assert m.methods == {"gpu0": "energy_counter"} and not m.flags
    assert m.total_j == pytest.approx(200.0 * m.time_s, abs=5.0)
    assert errors["count"] == 2 and "Unknown" in errors["last"][0]


def test_persistent_counter_error_integrates_power_and_flags(fake_nvml, caplog):
    fake_nvml.setup([fake_nvml.FakeGPU(power_w=150.0, update_period_s=0.01)])
    with NvmlMeter(counter_probe_s=0, sample_interval_s=0.02) as meter:
        meter.start_sampling()
        meter.begin_window("w")
        time.sleep(0.5)
        fake_nvml.fail_next("nvmlDeviceGetTotalEnergyConsumption", n=100)  # the sampler takes some too
        m = meter.end_window("w")
    assert m.methods == {"gpu0": "power_integration"} and m.flags == ("counter_error",)
    assert m.total_j == pytest.approx(150.0 * m.time_s, rel=0.03)
    assert "integrating sampled power" in caplog.text


def test_short_window_is_flagged(fake_nvml, caplog):
    fake_nvml.setup([fake_nvml.FakeGPU(power_w=100.0, update_period_s=0.02)])
    with NvmlMeter(counter_probe_s=1.0) as meter:
        assert meter.counter_update_period_s == pytest.approx(0.02, abs=0.004)
        assert meter.sample_interval_s == pytest.approx(max(0.02, meter.counter_update_period_s))
        short = _window(meter, 0.05)
        long = _window(meter, 0.3)
    assert short.flags == ("short_window",) and not long.flags
    assert "shorter than 10 counter update periods" in caplog.text


def test_hopper_power_is_read_from_the_instant_field(fake_nvml):
    """On Hopper nvmlDeviceGetPowerUsage is a 1 s trailing average; the meter reads the instant
    field instead, so a 100 -> 400 W step shows in the trace at once."""
    fake_nvml.setup([fake_nvml.FakeGPU(profile="hopper", power_w=[(0.0, 100.0), (0.3, 400.0)])])
    with NvmlMeter(counter_probe_s=0, sample_interval_s=0.02) as meter:
        meter.start_sampling()
        time.sleep(0.6)
        meter.stop_sampling()
        dev = meter.describe()["devices"][0]
        tr = meter.trace()
    assert dev["power_source"] == "field_power_instant" and dev["power_averaged"] is False
    t0 = fake_nvml._GPUS[0].t0
    after = tr[tr.t > t0 + 0.35]
    assert (after.power_w == 400.0).all()


def test_hopper_without_instant_field_reports_averaged_usage(fake_nvml):
    hopper = fake_nvml.FakeGPU(
        profile="hopper", power_w=[(0.0, 100.0), (0.2, 400.0)], unsupported_fields={fake_nvml.NVML_FI_DEV_POWER_INSTANT}
    )
    fake_nvml.setup([hopper])
    with NvmlMeter(counter_probe_s=0, sample_interval_s=0.02) as meter:
        meter.start_sampling()
        time.sleep(0.5)
        meter.stop_sampling()
        dev = meter.describe()["devices"][0]
        tr = meter.trace()
    assert dev["power_source"] == "power_usage"
    assert dev["power_averaged"] is True  # Hopper: a 1 s average, by architecture
    assert tr.power_w.iloc[-1] < 300.0  # the 1 s average lags the step
    with pytest.raises(RuntimeError, match="POWER_INSTANT is not available"):
        NvmlMeter(counter_probe_s=0, power_source="instant")


def test_meter_scoped_by_uuid_and_mig(fake_nvml, monkeypatch):
    fake_nvml.setup(
        [
            fake_nvml.FakeGPU(power_w=100.0),
            fake_nvml.FakeGPU(power_w=300.0, mig_devices=2),
            fake_nvml.FakeGPU(power_w=50.0),
        ]
    )
    uuid2 = fake_nvml._GPUS[2].uuid
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{uuid2[:14]},0")  # a unique UUID prefix, then an index
    with NvmlMeter(gpus=[0], counter_probe_s=0, scope="device cuda:0") as meter:
        d = meter.describe()
        m = _window(meter, 0.2)
    assert d["devices"][0]["nvml_index"] == 2 and d["devices"][0]["uuid"] == uuid2
    assert d["scope"] == "device cuda:0" and m.mean_power_w == pytest.approx(50.0, rel=0.2)

    mig = (
        fake_nvml.nvmlDeviceGetUUID(
            fake_nvml.nvmlDeviceGetMigDeviceHandleByIndex(fake_nvml.nvmlDeviceGetHandleByIndex(1), 0)
        )
        if fake_nvml._initialized
        else None
    )
    if mig is None:
        fake_nvml.nvmlInit()
        mig = fake_nvml.nvmlDeviceGetUUID(
            fake_nvml.nvmlDeviceGetMigDeviceHandleByIndex(fake_nvml.nvmlDeviceGetHandleByIndex(1), 0)
        )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", str(mig if isinstance(mig, str) else mig.decode()))
    with NvmlMeter(counter_probe_s=0) as meter:
        dev = meter.describe()["devices"][0]
    assert dev["nvml_index"] == 1 and dev["mig_uuid"].startswith("MIG-") and "whole GPUs" in dev["note"]

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,GPU-nonexistent,2")  # CUDA stops at the bad entry
    with NvmlMeter(counter_probe_s=0) as meter:
        assert meter.devices == ["gpu0"] and "matches no GPU" in meter.describe()["cuda_visible_devices_note"]
    with pytest.raises(RuntimeError, match="out of range"):
        NvmlMeter(gpus=[1], counter_probe_s=0)


def test_gpus_for_device():
    assert energy.gpus_for_device("cuda:1", tp_size=2) == (
        [1, 2],
        "device cuda:1, tp_size 2 x dp_size 1 -> CUDA GPUs 1, 2",
    )
    assert energy.gpus_for_device("cuda", dp_size=2)[0] == [0, 1]
    with pytest.raises(ValueError, match="expected cpu, cuda or cuda:N"):
        energy.gpus_for_device("tpu:0")


def test_trace_drops_repeated_readings_but_keeps_edges(fake_nvml):
    """Sampling faster than the hardware updates reads the same values again: repeats are
    dropped, and the last of each run is kept, so the integral is unchanged."""
    fake_nvml.setup([fake_nvml.FakeGPU(power_w=[(0.0, 100.0), (0.25, 300.0)], update_period_s=10.0)])
    with NvmlMeter(counter_probe_s=0, sample_interval_s=0.01, slow_every=1) as meter:
        meter.start_sampling()
        time.sleep(0.5)
        meter.stop_sampling()
        tr, d = meter.trace(), meter.describe()
    assert d["sampler"]["duplicates_dropped"] > 20 and len(tr) <= 4
    assert sorted(set(tr.power_w)) == [100.0, 300.0]
    last100 = tr[tr.power_w == 100.0].t.max()
    assert last100 > fake_nvml._GPUS[0].t0 + 0.2  # the edge before the step survived


def test_meter_registry():
    assert list(energy.METERS) == ["nvml", "rapl", "estimate"] or set(energy.METERS) == {"nvml", "rapl", "estimate"}
    assert [c.name for c in sorted(energy.METERS.values(), key=lambda c: c.priority)] == ["nvml", "rapl", "estimate"]
    meter = select_meter("auto", exclude=("nvml", "rapl"))
    assert meter.name == "estimate"
    meter.close()
