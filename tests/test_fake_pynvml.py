"""Known-answer tests of tests/fake_pynvml.py, the scripted stand-in for pynvml.

Most tests read the scripts at exact times through ``setup(..., clock=...)``; the few that
use the wall clock sleep for at most a tenth of a second.
"""

from __future__ import annotations

import ctypes
import importlib
import inspect
import sys
import threading
import time

import fake_pynvml
import pytest

T0 = 1_000_000.0  # unix time of setup() under the manual clock


class ManualClock:
    """A clock for ``setup(clock=...)``: ``at(dt)`` moves it to ``T0 + dt`` seconds."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def at(self, dt: float) -> None:
        self.now = T0 + dt


@pytest.fixture
def nv():
    """A fresh fake module (nothing installed in sys.modules)."""
    return fake_pynvml.load()


@pytest.fixture
def clock():
    return ManualClock()


def _start(nv, gpus, **kwargs):
    """setup() + nvmlInit(); the handles of the GPUs."""
    nv.setup(gpus, **kwargs)
    nv.nvmlInit()
    return [nv.nvmlDeviceGetHandleByIndex(i) for i in range(len(gpus))]


def _fields(nv, handle, ids):
    """``[(nvmlReturn, valueType, value), ...]`` with the value read by its type."""
    member = {nv.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal", nv.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal"}
    return [
        (v.nvmlReturn, v.valueType, getattr(v.value, member[v.valueType]) if v.nvmlReturn == 0 else None)
        for v in nv.nvmlDeviceGetFieldValues(handle, ids)
    ]


# ---- fidelity to the real pynvml -------------------------------------------------------


@pytest.fixture(scope="module")
def real():
    """The real pynvml module (importing it loads no library), leaving sys.modules as it was."""
    saved = sys.modules.pop("pynvml", None)
    try:
        mod = importlib.import_module("pynvml")
    except ImportError:
        pytest.skip("nvidia-ml-py is not installed")
    finally:
        if saved is None:
            sys.modules.pop("pynvml", None)
        else:
            sys.modules["pynvml"] = saved
    return mod


def _public_ints(mod):
    return {
        k: v
        for k, v in vars(mod).items()
        if (k.startswith("NVML_") or k.startswith("nvml")) and isinstance(v, int) and not isinstance(v, bool)
    }


def _layout(ctype):
    """A ctypes type's layout: field names and types, recursively."""
    if hasattr(ctype, "_fields_"):
        return [(name, _layout(t)) for name, t, *_ in ctype._fields_]
    return (ctypes.sizeof(ctype), ctype._type_)


def test_constants_signatures_structs_and_errors_match_real(nv, real):
    consts = _public_ints(nv)
    assert len(consts) > 50
    assert {k: getattr(real, k, None) for k in consts} == consts

    api = {k: v for k, v in vars(nv).items() if k.startswith("nvml") and inspect.isfunction(v)}
    assert len(api) >= 35
    for name, fn in api.items():
        real_params = list(inspect.signature(getattr(real, name)).parameters.values())
        fake_params = list(inspect.signature(fn).parameters.values())
        assert [(p.name, p.default) for p in fake_params] == [(p.name, p.default) for p in real_params], name

    for struct in ("c_nvmlFieldValue_t", "c_nvmlValue_t", "c_nvmlMemory_t", "c_nvmlMemory_v2_t", "c_nvmlUtilization_t"):
        assert _layout(getattr(nv, struct)) == _layout(getattr(real, struct)), struct

    codes = [v for k, v in consts.items() if k.startswith("NVML_ERROR_")]
    assert len(codes) == len([k for k in vars(real) if k.startswith("NVML_ERROR_")])
    for code in codes:
        fake_err, real_err = nv.NVMLError(code), real.NVMLError(code)
        assert type(fake_err).__name__ == type(real_err).__name__
        assert isinstance(fake_err, nv.NVMLError) and fake_err.value == code
    assert nv.NVMLError._errcode_to_string.items() <= real.NVMLError._errcode_to_string.items()


def test_error_hierarchy_and_uninitialized(nv):
    err = nv.NVMLError(nv.NVML_ERROR_NOT_SUPPORTED)
    assert type(err) is nv.NVMLError_NotSupported and str(err) == "Not Supported"
    assert nv.NVMLError_NoPermission().value == nv.NVML_ERROR_NO_PERMISSION
    assert nv.NVMLError_GpuIsLost() == nv.NVMLError(nv.NVML_ERROR_GPU_IS_LOST)
    assert str(nv.NVMLError(nv.NVML_ERROR_IN_USE)) == "NVML Error with code 19"
    nv.setup([nv.FakeGPU()])
    with pytest.raises(nv.NVMLError_Uninitialized):
        nv.nvmlDeviceGetCount()
    with pytest.raises(nv.NVMLError_Uninitialized):
        nv.nvmlShutdown()
    nv.nvmlInit()
    with pytest.raises(nv.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetHandleByIndex(1)
    with pytest.raises(nv.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetName("not a handle")
    assert nv.calls["nvmlDeviceGetCount"] == 1 and nv.calls["nvmlInit"] == 1


# ---- profiles and power ----------------------------------------------------------------


def test_profile_defaults(nv):
    a, h = nv.FakeGPU(), nv.FakeGPU(profile="hopper")
    assert (a.profile, a.name, a.sm_clock_mhz, a.mem_clock_mhz, a.power_limit_w) == (
        "ampere",
        "NVIDIA A100-SXM4-80GB",
        1410,
        1593,
        400.0,
    )
    assert (h.name, h.sm_clock_mhz, h.max_sm_clock_mhz, h.mem_clock_mhz, h.power_limit_w) == (
        "NVIDIA H100 80GB HBM3",
        1980,
        1980,
        2619,
        700.0,
    )
    assert nv.FakeGPU(profile="hopper", name="NVIDIA H100 PCIe").name == "NVIDIA H100 PCIe"
    with pytest.raises(ValueError, match="Unknown profile 'volta'"):
        nv.FakeGPU(profile="volta")
    with pytest.raises(ValueError, match="mig_devices"):
        nv.FakeGPU(mig_devices=8)


def test_hopper_power_usage_is_the_one_second_trailing_average(nv, clock):
    gpu = nv.FakeGPU(profile="hopper", power_w=[(0.0, 100.0), (0.5, 300.0)])
    (h,) = _start(nv, [gpu], clock=clock)
    instant, average = nv.NVML_FI_DEV_POWER_INSTANT, nv.NVML_FI_DEV_POWER_AVERAGE
    # window [t-1, t]: 100 W before the step at 0.5 s, 300 W after it
    for dt, usage_w, instant_w in [
        (0.25, 100, 100),
        (0.5, 100, 300),
        (0.75, 150, 300),
        (1.0, 200, 300),
        (1.25, 250, 300),
        (1.5, 300, 300),
        (3.0, 300, 300),
    ]:
        clock.at(dt)
        assert nv.nvmlDeviceGetPowerUsage(h) == 1000 * usage_w, dt
        assert gpu.average_power(clock()) == pytest.approx(usage_w)
        assert _fields(nv, h, [instant, average]) == [
            (0, nv.NVML_VALUE_TYPE_UNSIGNED_INT, 1000 * instant_w),
            (0, nv.NVML_VALUE_TYPE_UNSIGNED_INT, 1000 * usage_w),
        ], dt


def test_ampere_power_usage_is_instantaneous_and_field_values(nv, clock):
    gpus = [
        nv.FakeGPU(power_w=[(0.0, 100.0), (0.5, 300.0)], update_period_s=0.1),
        nv.FakeGPU(unsupported_fields={nv.NVML_FI_DEV_POWER_INSTANT}, energy_counter=False),
    ]
    h0, h1 = _start(nv, gpus, clock=clock)
    clock.at(0.75)
    assert nv.nvmlDeviceGetPowerUsage(h0) == 300_000
    ids = [
        nv.NVML_FI_DEV_POWER_INSTANT,
        nv.NVML_FI_DEV_POWER_AVERAGE,
        nv.NVML_FI_DEV_ENERGY,
        nv.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION,
        (nv.NVML_FI_DEV_POWER_INSTANT, 1),
        1,
        nv.NVML_FI_MAX,
    ]
    counter = gpus[0].initial_energy_mj + 100 * 500 + 300 * 200  # 0.5 s at 100 W + 0.2 s at 300 W
    ok, uint, ull = nv.NVML_SUCCESS, nv.NVML_VALUE_TYPE_UNSIGNED_INT, nv.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
    unsupported, invalid = nv.NVML_ERROR_NOT_SUPPORTED, nv.NVML_ERROR_INVALID_ARGUMENT
    assert _fields(nv, h0, ids) == [
        (ok, uint, 300_000),
        (unsupported, 0, None),  # GA100 has no 1 s average
        (ok, ull, counter),
        (ok, ull, counter),
        (unsupported, 0, None),  # module scope (Grace Hopper only)
        (unsupported, 0, None),  # a valid id the fake does not model
        (invalid, 0, None),
    ]
    assert [r for r, *_ in _fields(nv, h1, ids[:4])] == [unsupported] * 4
    values = nv.nvmlDeviceGetFieldValues(h0, [(nv.NVML_FI_DEV_POWER_INSTANT, 0)])
    assert isinstance(values[0], nv.c_nvmlFieldValue_t) and len(values) == 1
    v = values[0]
    assert (v.fieldId, v.scopeId, v.timestamp, v.latencyUsec) == (186, 0, int((T0 + 0.75) * 1e6), 0)
    assert "fieldId: 186" in str(v)
    gpus[0].unsupported.add("nvmlDeviceGetFieldValues")
    with pytest.raises(nv.NVMLError_NotSupported):
        nv.nvmlDeviceGetFieldValues(h0, ids)


def test_counter_is_the_exact_integral_quantised_to_the_update_period(nv, clock):
    gpu = nv.FakeGPU(power_w=200.0, update_period_s=0.1, noise_w=20.0)
    (h,) = _start(nv, [gpu], clock=clock)
    for dt, ticks in [(0.05, 0), (0.15, 1), (0.199, 1), (0.25, 2), (0.999, 9), (1.05, 10)]:
        clock.at(dt)
        assert nv.nvmlDeviceGetTotalEnergyConsumption(h) == gpu.initial_energy_mj + ticks * 20_000, dt
    ((r, _, value),) = _fields(nv, h, [nv.NVML_FI_DEV_ENERGY])
    assert r == 0 and value == gpu.initial_energy_mj + 10 * 20_000  # the field is the counter too
    nv.setup([nv.FakeGPU(energy_counter=False)])
    nv.nvmlInit()
    with pytest.raises(nv.NVMLError_NotSupported):
        nv.nvmlDeviceGetTotalEnergyConsumption(nv.nvmlDeviceGetHandleByIndex(0))


def test_wall_clock_by_default(nv):
    gpu = nv.FakeGPU(power_w=250.0, update_period_s=0.01)
    (h,) = _start(nv, [gpu])
    e0, t0 = nv.nvmlDeviceGetTotalEnergyConsumption(h), time.time()
    time.sleep(0.1)
    e1, t1 = nv.nvmlDeviceGetTotalEnergyConsumption(h), time.time()
    assert nv.nvmlDeviceGetPowerUsage(h) == 250_000
    assert (e1 - e0) / 1000 == pytest.approx(250 * (t1 - t0), abs=250 * 0.02 + 0.5)


def test_noise_is_seeded_gaussian_on_power_readings_only(nv, clock):
    gpus = [nv.FakeGPU(power_w=200.0, noise_w=5.0, seed=7), nv.FakeGPU(power_w=10.0, noise_w=50.0)]
    h, low = _start(nv, gpus, clock=clock)
    readings = [nv.nvmlDeviceGetPowerUsage(h) / 1000 for _ in range(4000)]
    mean = sum(readings) / len(readings)
    sd = (sum((r - mean) ** 2 for r in readings) / len(readings)) ** 0.5
    assert mean == pytest.approx(200.0, abs=0.5) and sd == pytest.approx(5.0, rel=0.08)
    ((r, _, inst),) = _fields(nv, h, [nv.NVML_FI_DEV_POWER_INSTANT])
    assert r == 0 and inst != 200_000  # the field is noisy too
    assert min(nv.nvmlDeviceGetPowerUsage(low) for _ in range(200)) == 0  # clipped, never negative
    clock.at(0.5)
    assert nv.nvmlDeviceGetTotalEnergyConsumption(h) == gpus[0].initial_energy_mj + 100_000  # exact
    _start(nv, gpus, clock=clock)  # setup() re-seeds: the same sequence again
    assert [nv.nvmlDeviceGetPowerUsage(h) / 1000 for _ in range(50)] == readings[:50]


def test_call_latency(nv):
    slow, fast = _start(nv, [nv.FakeGPU(call_latency_s=0.02), nv.FakeGPU()])
    t0 = time.perf_counter()
    for _ in range(4):
        nv.nvmlDeviceGetPowerUsage(slow)
    assert time.perf_counter() - t0 >= 0.08
    assert nv.nvmlDeviceGetFieldValues(slow, [nv.NVML_FI_DEV_POWER_INSTANT])[0].latencyUsec == 20_000
    t0 = time.perf_counter()
    for _ in range(50):
        nv.nvmlDeviceGetPowerUsage(fast)
    assert time.perf_counter() - t0 < 0.08  # 50 calls at 20 ms would take a second


# ---- transient errors ------------------------------------------------------------------


def test_transient_errors_fail_exactly_n_times(nv):
    gpus = [nv.FakeGPU(transient_errors={"nvmlDeviceGetPowerUsage": 2}), nv.FakeGPU()]
    h0, h1 = _start(nv, gpus)
    for _ in range(2):
        with pytest.raises(nv.NVMLError_Unknown):
            nv.nvmlDeviceGetPowerUsage(h0)
        nv.nvmlDeviceGetPowerUsage(h1)  # the other GPU is unaffected
    assert nv.nvmlDeviceGetPowerUsage(h0) == 250_000
    assert nv.calls["nvmlDeviceGetPowerUsage"] == 5  # failed calls count too

    nv.fail_next("nvmlDeviceGetTotalEnergyConsumption", n=3, code=nv.NVML_ERROR_TIMEOUT, gpu=1)
    nv.nvmlDeviceGetTotalEnergyConsumption(h0)
    for _ in range(3):
        with pytest.raises(nv.NVMLError_Timeout):
            nv.nvmlDeviceGetTotalEnergyConsumption(h1)
    nv.nvmlDeviceGetTotalEnergyConsumption(h1)

    nv.fail_next("nvmlDeviceGetCount")  # any GPU, or a system call
    with pytest.raises(nv.NVMLError_Unknown):
        nv.nvmlDeviceGetCount()
    assert nv.nvmlDeviceGetCount() == 2
    nv.fail_next("nvmlInit", code=nv.NVML_ERROR_DRIVER_NOT_LOADED)
    with pytest.raises(nv.NVMLError_DriverNotLoaded):
        nv.nvmlInit()
    nv.nvmlInit()

    _start(nv, gpus)  # setup() re-arms the scripted errors and drops the queued ones
    with pytest.raises(nv.NVMLError_Unknown):
        nv.nvmlDeviceGetPowerUsage(h0)
    with pytest.raises(ValueError, match="not a function"):
        nv.fail_next("nvmlDeviceGetPowr")
    with pytest.raises(ValueError, match="not a function"):
        nv.setup([nv.FakeGPU(transient_errors={"GetPowerUsage": 1})])


def test_calls_are_counted_exactly_across_threads(nv):
    (h,) = _start(nv, [nv.FakeGPU(noise_w=1.0)])

    def work():
        for _ in range(500):
            nv.nvmlDeviceGetPowerUsage(h)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert nv.calls["nvmlDeviceGetPowerUsage"] == 2000


# ---- memory, UUIDs, MIG ----------------------------------------------------------------


def test_memory_info(nv):
    (h,) = _start(nv, [nv.FakeGPU(memory_used_mib=1024)])
    mem = nv.nvmlDeviceGetMemoryInfo(h)
    assert isinstance(mem, nv.c_nvmlMemory_t)
    assert (mem.total, mem.used, mem.free) == (81920 * 2**20, 2**30, 80896 * 2**20)
    v2 = nv.nvmlDeviceGetMemoryInfo(h, version=nv.nvmlMemory_v2)
    assert (v2.version, v2.total, v2.reserved, v2.used) == (nv.nvmlMemory_v2, mem.total, 0, mem.used)
    with pytest.raises(nv.NVMLError_ArgumentVersionMismatch):
        nv.nvmlDeviceGetMemoryInfo(h, version=1)


def test_uuid_and_index_lookup(nv):
    gpus = [nv.FakeGPU(), nv.FakeGPU(uuid="GPU-12345678-90ab-cdef-1234-567890abcdef"), nv.FakeGPU()]
    _start(nv, gpus)
    assert gpus[0].uuid == "GPU-fake-0000-0000-0000-0000-000000000000"
    # resolving CUDA_VISIBLE_DEVICES=<uuid>,<uuid> to NVML indices
    visible = f"{gpus[2].uuid},{gpus[1].uuid}"
    assert [nv.nvmlDeviceGetIndex(nv.nvmlDeviceGetHandleByUUID(u)) for u in visible.split(",")] == [2, 1]
    h = nv.nvmlDeviceGetHandleByUUID(gpus[1].uuid.encode())
    assert nv.nvmlDeviceGetUUID(h) == gpus[1].uuid
    with pytest.raises(nv.NVMLError_NotFound):
        nv.nvmlDeviceGetHandleByUUID("GPU-12345678")  # prefixes are CUDA's, not NVML's
    assert nv.calls["nvmlDeviceGetHandleByUUID"] == 4


def test_mig_devices(nv, clock):
    gpus = [nv.FakeGPU(profile="hopper", mig_devices=2, power_w=300.0), nv.FakeGPU()]
    parent, plain = _start(nv, gpus, clock=clock)
    assert nv.nvmlDeviceGetMigMode(plain) == [0, 0] and nv.nvmlDeviceGetMaxMigDeviceCount(plain) == 0
    assert nv.nvmlDeviceGetMigMode(parent) == [nv.NVML_DEVICE_MIG_ENABLE] * 2
    assert nv.nvmlDeviceGetMaxMigDeviceCount(parent) == 7
    migs = [nv.nvmlDeviceGetMigDeviceHandleByIndex(parent, k) for k in range(2)]
    with pytest.raises(nv.NVMLError_NotFound):
        nv.nvmlDeviceGetMigDeviceHandleByIndex(parent, 2)  # an empty slot below the max
    with pytest.raises(nv.NVMLError_NotFound):
        nv.nvmlDeviceGetMigDeviceHandleByIndex(plain, 0)

    uuids = [nv.nvmlDeviceGetUUID(m) for m in migs]
    assert all(u.startswith("MIG-") and len(u) == 40 for u in uuids) and uuids[0] != uuids[1]
    by_uuid = nv.nvmlDeviceGetHandleByUUID(uuids[1])
    assert nv.nvmlDeviceGetIndex(by_uuid) == 1 and nv.nvmlDeviceGetUUID(by_uuid) == uuids[1]
    assert nv.nvmlDeviceIsMigDeviceHandle(by_uuid).value == 1 and not nv.nvmlDeviceIsMigDeviceHandle(parent)
    back = nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(by_uuid)
    assert nv.nvmlDeviceGetIndex(back) == 0 and nv.nvmlDeviceGetUUID(back) == gpus[0].uuid
    with pytest.raises(nv.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(parent)
    assert nv.nvmlDeviceGetName(migs[0]).startswith("NVIDIA H100 80GB HBM3 MIG 3g.")
    assert nv.nvmlDeviceGetMemoryInfo(migs[0]).total == 40960 * 2**20

    # as on real hardware: no energy or power for a MIG device, no utilisation in MIG mode
    for fn in (nv.nvmlDeviceGetTotalEnergyConsumption, nv.nvmlDeviceGetPowerUsage, nv.nvmlDeviceGetMigMode):
        with pytest.raises(nv.NVMLError_NotSupported):
            fn(migs[0])
    assert [r for r, *_ in _fields(nv, migs[0], [nv.NVML_FI_DEV_POWER_INSTANT, nv.NVML_FI_DEV_ENERGY])] == [
        nv.NVML_ERROR_NOT_SUPPORTED
    ] * 2
    with pytest.raises(nv.NVMLError_NotSupported):
        nv.nvmlDeviceGetUtilizationRates(parent)
    clock.at(1.0)
    assert nv.nvmlDeviceGetTotalEnergyConsumption(parent) == gpus[0].initial_energy_mj + 300_000
    nv.setup([nv.FakeGPU()])  # a handle from an older setup() with fewer MIG devices
    nv.nvmlInit()
    with pytest.raises(nv.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetName(migs[0])


# ---- clocks, limits, system ------------------------------------------------------------


def test_clocks_and_locks(nv):
    gpus = [nv.FakeGPU(), nv.FakeGPU(clock_lock_error=nv.NVML_ERROR_NO_PERMISSION)]
    h, denied = _start(nv, gpus)
    assert nv.nvmlDeviceGetSupportedMemoryClocks(h) == [1593]
    graphics = nv.nvmlDeviceGetSupportedGraphicsClocks(h, 1593)
    assert graphics[:3] == [1410, 1395, 1380] and graphics[-1] == 210 and len(graphics) == 81
    with pytest.raises(nv.NVMLError_NotFound):
        nv.nvmlDeviceGetSupportedGraphicsClocks(h, 1215)
    assert nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_SM) == 1410
    assert nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_MEM) == 1593

    nv.nvmlDeviceSetGpuLockedClocks(h, 1005, 1005)
    assert gpus[0].locked_gpu_clocks_mhz == (1005, 1005)
    assert nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM) == 1005
    assert nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_GRAPHICS) == 1005
    nv.nvmlDeviceSetGpuLockedClocks(h, 600, 5000)  # the scripted 1410 MHz fits inside
    assert nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM) == 1410
    nv.nvmlDeviceSetGpuLockedClocks(h, 3000, 5000)  # beyond the supported range: held at the max
    assert nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM) == 1410
    nv.nvmlDeviceSetGpuLockedClocks(h, 100, 150)
    assert nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM) == 210
    with pytest.raises(nv.NVMLError_InvalidArgument):
        nv.nvmlDeviceSetGpuLockedClocks(h, 1200, 1000)
    nv.nvmlDeviceResetGpuLockedClocks(h)
    assert gpus[0].locked_gpu_clocks_mhz is None and nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM) == 1410
    nv.nvmlDeviceSetMemoryLockedClocks(h, 1593, 1593)
    assert gpus[0].locked_mem_clocks_mhz == (1593, 1593)
    assert nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM) == 1593
    nv.nvmlDeviceResetMemoryLockedClocks(h)
    assert gpus[0].locked_mem_clocks_mhz is None

    for fn, args in [
        (nv.nvmlDeviceSetGpuLockedClocks, (1005, 1005)),
        (nv.nvmlDeviceResetGpuLockedClocks, ()),
        (nv.nvmlDeviceSetMemoryLockedClocks, (1593, 1593)),
        (nv.nvmlDeviceResetMemoryLockedClocks, ()),
    ]:
        with pytest.raises(nv.NVMLError_NoPermission, match="Insufficient Permissions"):
            fn(denied, *args)
    assert gpus[1].locked_gpu_clocks_mhz is None and nv.nvmlDeviceGetClockInfo(denied, nv.NVML_CLOCK_SM) == 1410

    _start(nv, gpus)  # setup() clears locks left by an earlier test
    nv.nvmlDeviceSetGpuLockedClocks(h, 1005, 1005)
    _start(nv, gpus)
    assert gpus[0].locked_gpu_clocks_mhz is None


def test_limits_pstate_and_system_versions(nv):
    gpus = [nv.FakeGPU(profile="hopper", pstate=2), nv.FakeGPU(power_limit_w=250.0)]
    h, a = _start(nv, gpus, driver_version="535.161.08", cuda_driver_version=12020)
    assert nv.nvmlDeviceGetPowerManagementLimit(h) == nv.nvmlDeviceGetEnforcedPowerLimit(h) == 700_000
    assert nv.nvmlDeviceGetEnforcedPowerLimit(a) == 250_000
    assert nv.nvmlDeviceGetPerformanceState(h) == 2 and nv.nvmlDeviceGetPerformanceState(a) == 0
    assert nv.nvmlSystemGetDriverVersion() == "535.161.08"
    assert nv.nvmlSystemGetNVMLVersion() == "12.535.161.08"
    assert nv.nvmlSystemGetCudaDriverVersion() == 12020
    _start(nv, gpus)
    assert (nv.nvmlSystemGetNVMLVersion(), nv.nvmlSystemGetCudaDriverVersion()) == ("12.550.54.15", 12040)
