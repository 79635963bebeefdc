"""ttclib.sandbox: containment first on harmless probes, then the hostile set, then scoring.

The hostile programs (tests/sandbox_probes.py) only run after a bounded preflight showed that
processes and network are limited, so a broken sandbox cannot take the machine down.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
import sandbox_probes  # tests/sandbox_probes.py: pytest puts tests/ on sys.path

from ttclib import sandbox
from ttclib.sandbox import Execution, Limits, isolation, launcher, programs

FAST = Limits(wall_s=5.0, cpu_s=3.0, memory_mb=512, processes=16, output_kb=64)
ROOT = os.geteuid() == 0


@pytest.fixture(scope="module", autouse=True)
def namespaces_available():
    try:
        sandbox.run("pass", limits=FAST)
    except sandbox.SandboxError as exc:
        pytest.skip(f"no isolating sandbox on this machine: {exc}")


def run(program: str, **kw) -> Execution:
    kw.setdefault("limits", FAST)
    return sandbox.run(program, **kw)


def inside(program: str, **kw) -> dict:
    """Run a probe that prints one JSON object; return it."""
    result = run(program, **kw)
    assert result.ok, result
    return json.loads(result.stdout)


def sandbox_uid(result: Execution) -> int | None:
    return next((int(t[4:]) for t in result.isolation if t.startswith("uid:")), None)


# --- harmless probes: is the containment in place? -----------------------------------------------


def test_runs_and_reports_isolation():
    result = run("print(input()[::-1])", stdin="abc\n")
    assert result.ok and result.stdout == "cba\n" and result.stderr == ""
    assert result.returncode == 0 and not result.timed_out and result.wall_s < 5
    for tag in ("netns", "pidns", "mountns", "rofs", "rlimits", "pgroup", "nonewprivs"):
        assert tag in result.isolation
    if ROOT:
        assert sandbox_uid(result) >= sandbox.UID_BASE
    else:
        assert "userns" in result.isolation


def test_identity_limits_and_capabilities():
    seen = inside("""
import json, os, resource
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "groups": os.getgroups(),
                  "nproc": resource.getrlimit(resource.RLIMIT_NPROC),
                  "as": resource.getrlimit(resource.RLIMIT_AS)[0],
                  "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                  "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[0],
                  "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
                  "capeff": status["CapEff"].strip(), "nonewprivs": status["NoNewPrivs"].strip(),
                  "cwd": os.getcwd(), "env": sorted(os.environ), "pid": os.getpid()}))
""")
    assert seen["uid"] != 0 and seen["euid"] != 0
    assert int(seen["capeff"], 16) == 0 and seen["nonewprivs"] == "1"
    expected_nproc = FAST.processes if ROOT else FAST.processes + 2
    assert seen["nproc"] == [expected_nproc, expected_nproc]
    assert seen["as"] == FAST.memory_mb * 2**20 and seen["nofile"] == FAST.open_files
    assert seen["fsize"] == FAST.file_mb * 2**20 and seen["cpu"] == 3
    if ROOT:
        assert seen["uid"] >= sandbox.UID_BASE and seen["groups"] == []
    assert seen["cwd"] == sandbox.WORKDIR and seen["pid"] == 2  # pid 1 is the namespace's init
    assert set(seen["env"]) <= {
        "PATH",
        "LANG",
        "HOME",
        "TMPDIR",
        "PYTHONDONTWRITEBYTECODE",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "MALLOC_ARENA_MAX",
    }


def test_forking_children_that_exit_is_fine():
    result = run("""
import os
for _ in range(100):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print("forked 100")
""")
    assert result.ok and result.stdout == "forked 100\n" and result.stray_processes == 0


def test_bounded_fork_bomb_hits_the_process_limit():
    # at most 2**10 processes even without any limit; with it, forks fail early
    result = run("""
import os, time
me, failures = os.getpid(), 0
for _ in range(10):
    try:
        os.fork()
    except OSError:
        failures += 1
time.sleep(0.5)
if os.getpid() == me:
    print("failures", failures, flush=True)
""")
    assert not result.timed_out
    assert int(result.stdout.split()[1]) > 0
    if ROOT:
        assert not isolation.uid_processes(sandbox_uid(result))


def test_no_network_to_a_local_listener():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = run(f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=1)
    print("connected")
except OSError as exc:
    print("refused", exc)
""")
        assert result.ok and result.stdout.startswith("refused"), result
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_writes_land_in_private_tmpfs_only(tmp_path):
    name = f"ttc-probe-{uuid.uuid4().hex}"
    seen = inside(
        """
import json, os
for d in ("/tmp", "/var/tmp", "/dev/shm", os.environ["HOME"]):
    with open(os.path.join(d, "NAME"), "w") as f:
        f.write("x")
mounts = [line.split() for line in open("/proc/self/mountinfo")]
point = {m[0]: m[4] for m in mounts}
# a mount is out of reach when another is mounted on top of it, and so is all below it
covered = {m[1] for m in mounts if point.get(m[1]) == m[4]}
while True:
    more = {m[0] for m in mounts if m[1] in covered and m[4] != point[m[1]]} - covered
    if not more:
        break
    covered |= more
print(json.dumps([[m[4], m[m.index("-") + 1]] for m in mounts
                  if m[0] not in covered and "rw" in m[5].split(",")]))
""".replace("NAME", name)
    )
    for directory in ("/tmp", "/var/tmp", "/dev/shm", str(tmp_path)):
        assert not os.path.exists(os.path.join(directory, name))
    # nothing is writable but the fresh tmpfs mounts and the namespace's own /proc
    assert sorted(seen) == [["/dev/shm", "tmpfs"], ["/proc", "proc"], ["/tmp", "tmpfs"], ["/var/tmp", "tmpfs"]]


def test_host_processes_invisible_and_secret_absent(monkeypatch):
    secret = uuid.uuid4().hex
    monkeypatch.setenv("TTC_TEST_SECRET", secret)
    result = run(f"""
import os
print(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
print(dict(os.environ))
for path in ("/proc/{os.getpid()}/environ", "/proc/1/environ"):
    try:
        print(open(path, "rb").read())
    except OSError as exc:
        print("blocked", exc)
""")
    assert result.ok
    assert json.loads(result.stdout.splitlines()[0]) == [1, 2]
    assert secret not in result.stdout + result.stderr


def test_threads_fit_in_the_memory_limit():
    result = run("""
import threading, time
threads = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(12)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("ok")
""")
    assert result.ok, result


def test_numpy_imports_within_default_limits():
    result = sandbox.run("import numpy as np; print(int(np.arange(5).sum()))", limits=Limits(wall_s=20))
    assert result.ok and result.stdout == "10\n", result


# --- kernel-side confinement: seccomp, Landlock, keyrings, memory cgroup, Unix sockets ----------


def _has_cgroup(result: Execution) -> bool:
    return any(t.startswith("cgroup:") for t in result.isolation)


def test_confinement_is_listed():
    tags = run("pass").isolation
    assert "seccomp" in tags and "keyring:fresh" in tags
    assert any(t.startswith("landlock:v") for t in tags)
    assert any(t.startswith(("cgroup:v", "no-cgroup:")) for t in tags)
    assert any(t.startswith("unixsockets:") for t in tags)


def test_processes_threads_and_own_unix_sockets_still_work():
    seen = inside("""
import json, multiprocessing as mp, socket, subprocess, threading
from concurrent.futures import ProcessPoolExecutor

def square(x):
    return x * x

out = {}
with mp.Pool(2) as pool:
    out["pool"] = pool.map(square, range(4))
with ProcessPoolExecutor(2) as executor:
    out["executor"] = list(executor.map(square, range(3)))
with mp.Manager() as manager:                 # an AF_UNIX listener in the work directory
    shared = manager.dict()
    shared["k"] = 1
    out["manager"] = dict(shared)
a, b = socket.socketpair()
a.sendall(b"x")
out["socketpair"] = b.recv(1).decode()
thread = threading.Thread(target=out.setdefault, args=("thread", True))
thread.start()
thread.join()
out["subprocess"] = subprocess.run(["true"]).returncode
print(json.dumps(out))
""")
    assert seen == {
        "pool": [0, 1, 4, 9],
        "executor": [0, 1, 4],
        "manager": {"k": 1},
        "socketpair": "x",
        "thread": True,
        "subprocess": 0,
    }


def test_caller_keys_out_of_sight():
    name = f"ttc-test-{uuid.uuid4().hex}"
    key = sandbox_probes._Keyring.plant(name, "payload")
    if key is None:
        pytest.skip("no keyrings here")
    try:
        seen = inside(
            """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
keyctl = {"x86_64": 250, "aarch64": 219}[os.uname().machine]
found = libc.syscall(keyctl, 10, ctypes.c_long(-3), b"user", b"NAME", 0)   # KEYCTL_SEARCH
print(json.dumps([open("/proc/keys").read(), found, ctypes.get_errno()]))
""".replace("NAME", name)
        )
        assert sandbox_probes._Keyring.intact(key, "payload")
    finally:
        sandbox_probes._Keyring.remove(key)
    keys, found, errno = seen
    assert name not in keys  # a session keyring of its own: nothing possessed
    assert found == -1 and errno == 1  # and keyctl itself refused (EPERM)


def test_oom_preference_cannot_be_lowered():
    seen = inside("""
import json
try:
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("999")
    error = None
except OSError as exc:
    error = type(exc).__name__
print(json.dumps([int(open("/proc/self/oom_score_adj").read()), error]))
""")
    assert seen == [1000, "PermissionError"]


MEMFD_HOLD = """
import os
fds = []
for _ in range(MIB // 16):
    fds.append(os.memfd_create("held"))
    for _ in range(2):
        os.write(fds[-1], b"x" * (8 << 20))
print("held", MIB)
"""


def test_memory_cgroup_bounds_what_rlimits_do_not_count():
    if not _has_cgroup(run("pass")):
        pytest.skip("no memory cgroup here (the isolation list says why)")
    cap = FAST.memory_mb + 3 * FAST.disk_mb  # MiB for the whole execution
    under = run(MEMFD_HOLD.replace("MIB", str(cap - 160)))  # RLIMIT_AS 512 MiB: no bound
    assert under.ok and under.stdout == f"held {cap - 160}\n", under
    over = run(MEMFD_HOLD.replace("MIB", str(cap + 32)))
    assert not over.ok and over.returncode == -signal.SIGKILL and over.stdout == ""


def test_runs_without_a_memory_cgroup_and_says_so(monkeypatch):
    monkeypatch.setattr(isolation, "cgroup_mounts", lambda: {})
    result = run("print(1)")
    assert result.ok and result.stdout == "1\n"
    assert "no-cgroup:no memory controller mounted" in result.isolation


def test_execution_cgroups_are_removed():
    run_many = sandbox.run_many([("print(1)", "")] * 4, limits=FAST, workers=2)
    assert all(r.ok for r in run_many)
    mounts, own = isolation.cgroup_mounts(), isolation.own_cgroups()
    tops = [mounts[c] / own[c].lstrip("/") for c in ("memory",) if c in mounts and c in own]
    if "cgroup2" in mounts:
        tops += [mounts["cgroup2"] / own.get("", "/").lstrip("/"), mounts["cgroup2"] / "ttc-sandbox"]
    prefix = f"ttc-sandbox-{os.getpid()}-"
    assert not [p for top in tops if top.is_dir() for p in top.iterdir() if p.name.startswith(prefix)]


def test_unix_socket_of_the_caller_unreachable():
    parent = sandbox_probes.visible_canary_parent()
    if parent is None:
        pytest.skip("no directory both sides see (set TTC_PROBE_CANARY_DIR)")
    path = parent / f"ttc-test-{uuid.uuid4().hex[:8]}.sock"
    server = sandbox_probes._unix_listener(path)
    try:
        result = run(f"""
import os, socket
print(oct(os.lstat({str(path)!r}).st_mode))
s = socket.socket(socket.AF_UNIX)
try:
    s.connect({str(path)!r})
    print("connected")
except OSError as exc:
    print(type(exc).__name__)
""")
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
        path.unlink()
    assert result.ok and result.stdout.split()[1] == "ConnectionRefusedError", result


# --- the hostile set --------------------------------------------------------------------------

_outcomes: dict[str, sandbox_probes.Outcome] = {}


@pytest.fixture(scope="module")
def preflight():
    try:
        return sandbox_probes.preflight()
    except sandbox_probes.PreflightError as exc:
        pytest.fail(f"containment preflight failed, hostile programs not run: {exc}")


def _needs_missing_cgroup(outcome: sandbox_probes.Outcome) -> bool:
    execution = outcome.execution
    return outcome.name == "memfd_hoard" and execution is not None and not _has_cgroup(execution)


def _outcome(name, canary_dir) -> sandbox_probes.Outcome:
    if name not in _outcomes:
        _outcomes[name] = sandbox_probes.check_contained(name, canary_dir=canary_dir)
    return _outcomes[name]


@pytest.mark.parametrize("name", list(sandbox_probes.HOSTILE_PROGRAMS))
@pytest.mark.heavy
def test_hostile_program_is_contained(name, preflight, tmp_path):
    outcome = _outcome(name, tmp_path)
    if _needs_missing_cgroup(outcome):
        pytest.skip("memfd pages are bounded by a memory cgroup only, unavailable here")
    assert outcome.contained, (outcome.problems, outcome.execution)
    execution = outcome.execution
    assert not execution.ok
    if name in ("fork_bomb", "infinite_loop", "stdout_flood"):
        assert execution.timed_out or execution.returncode < 0  # wall or CPU limit
        assert execution.wall_s < sandbox_probes.PROBE_LIMITS.wall_s + 2
    if name == "stdout_flood":
        assert "more bytes discarded" in execution.stdout
    if name == "daemon":
        assert execution.returncode == 0 and execution.stray_processes >= 2


@pytest.mark.heavy
def test_hostile_summary(preflight, tmp_path):
    for name in sandbox_probes.HOSTILE_PROGRAMS:
        _outcome(name, tmp_path)
    lines = [f"{o.name:15s} {'contained' if o.contained else 'ESCAPED'} {o.wall_s:6.2f}s" for o in _outcomes.values()]
    assert all(o.contained or _needs_missing_cgroup(o) for o in _outcomes.values()), "\n".join(lines)
    assert len(_outcomes) == len(sandbox_probes.HOSTILE_PROGRAMS) >= 14
    if ROOT:
        for slot in range(sandbox.UID_SLOTS):
            assert not isolation.uid_processes(sandbox.UID_BASE + slot)
    assert not [p for p in os.listdir("/tmp") if p.startswith("ttc-escape-")]


def test_probe_checker_flags_escapes(monkeypatch, tmp_path):
    """The checker itself: the same probes run *outside* the sandbox must be reported."""

    def unsandboxed(program, **kw):
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30)
        return Execution(done.returncode, False, done.stdout, done.stderr, 0.0, ())

    monkeypatch.setattr(sandbox, "run", unsandboxed)
    leak = sandbox_probes.check_contained("read_secrets", canary_dir=tmp_path)
    assert not leak.contained and "secret leaked" in leak.problems
    escape = sandbox_probes.check_contained("write_outside", canary_dir=tmp_path)
    assert not escape.contained and any(p.startswith("wrote ") for p in escape.problems)
    assert any("new files in canary" in p for p in escape.problems)


# --- limits and cleanup -----------------------------------------------------------------------


def test_wall_clock_timeout():
    start = time.monotonic()
    result = sandbox.run("import time; time.sleep(60)", limits=Limits(wall_s=1.0))
    assert result.timed_out and result.returncode is None and not result.ok
    assert 1.0 <= result.wall_s < 3.0 and time.monotonic() - start < 4.0


def test_program_that_never_reads_stdin_with_big_input():
    result = run("print('done')", stdin="x" * (4 * 2**20))
    assert result.ok and result.stdout == "done\n"


def test_output_cap_keeps_the_head():
    result = run("import sys; sys.stdout.write('a' * 300_000); sys.stderr.write('b' * 300_000)")
    assert result.ok
    assert result.stdout.startswith("a" * (64 * 1024)) and "more bytes discarded" in result.stdout
    assert len(result.stderr) < 64 * 1024 + 100


def test_failure_and_signal_statuses():
    assert run("raise SystemExit(3)").returncode == 3
    crashed = run("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert crashed.returncode == -signal.SIGSEGV and not crashed.ok
    error = run("1/0")
    assert error.returncode == 1 and "ZeroDivisionError" in error.stderr


def test_interrupt_leaves_nothing_behind():
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            sandbox.run("import os, time\nfor _ in range(4): os.fork()\ntime.sleep(60)", limits=Limits(wall_s=30))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if ROOT:
        for slot in range(sandbox.UID_SLOTS):
            assert not isolation.uid_processes(sandbox.UID_BASE + slot)
    assert not isolation.slots_in_use


def test_refuses_without_network_isolation(monkeypatch):
    monkeypatch.setattr(launcher.NAMESPACES, "usable", False)
    monkeypatch.setattr(launcher.NAMESPACES, "reason", "unshare: Operation not permitted")
    with pytest.raises(sandbox.SandboxError, match="allow_network=True"):
        sandbox.run("print(1)")


def test_run_many_keeps_order_and_uses_distinct_uids():
    jobs = [(f"import time; time.sleep({0.3 if i % 2 == 0 else 0}); print(input() * 2)", str(i)) for i in range(6)]
    results = sandbox.run_many(jobs, limits=FAST, workers=2)
    assert [r.stdout for r in results] == [f"{i}{i}\n" for i in range(6)]
    if ROOT:
        assert len({sandbox_uid(r) for r in results}) >= 2


# --- scoring helpers --------------------------------------------------------------------------


def test_passes_asserts():
    good = "def add(a, b):\n    return a + b\n"
    tests = "assert add(1, 2) == 3\nassert add('a', 'b') == 'ab'\n"
    assert sandbox.passes_asserts(good, tests, limits=FAST).ok
    assert not sandbox.passes_asserts(good.replace("a + b", "a - b"), tests, limits=FAST).ok
    early = "import sys\ndef add(a, b):\n    return a - b\nsys.exit(0)\n"
    assert not sandbox.passes_asserts(early, tests, limits=FAST).ok
    assert not sandbox.passes_asserts(
        "def add(a, b):\n    while True: pass\n", tests, limits=Limits(wall_s=1, cpu_s=1)
    ).ok
    # a solution that does not load fails even when the tests call nothing
    assert not sandbox.passes_asserts("def add(a, b) return a", "pass", limits=FAST).ok
    assert not sandbox.passes_asserts("raise ValueError('at import')", "pass", limits=FAST).ok


HONEST = {
    # prints to stdout while it works (the output is the solution's; it decides nothing)
    "prints": ("def add(a, b):\n    print('adding', a, b)\n    return a + b\n", "assert add(2, 3) == 5\n"),
    # floats compared approximately, as HumanEval and MBPP tests do
    "floats": (
        "def mean(xs):\n    return sum(xs) / len(xs)\n",
        "import math\nassert abs(mean([0.1, 0.2, 0.3]) - 0.2) < 1e-9\n"
        "assert math.isclose(mean([1e-3, 2e-3]), 1.5e-3, rel_tol=1e-6)\n",
    ),
    # the exception the tests expect, by its builtin type
    "raises": (
        "def parse(s):\n    return int(s)\n",
        "try:\n    parse('x')\n    raise AssertionError('no error')\nexcept ValueError:\n    pass\n",
    ),
    # numpy scalars, IntEnum, namedtuple, Counter and defaultdict become builtins
    "builtin_like": (
        "import numpy as np, collections, enum\nclass C(enum.IntEnum):\n    A = 3\n"
        "P = collections.namedtuple('P', 'x y')\n"
        "def f():\n    return [np.int64(2), np.float64(0.5), np.bool_(True), C.A, P(1, 2),\n"
        "            collections.Counter('aab'), collections.defaultdict(int, k=1)]\n",
        "assert f() == [2, 0.5, True, 3, (1, 2), {'a': 2, 'b': 1}, {'k': 1}]\n"
        "assert type(f()[4]) is tuple and type(f()[0]) is int\n",
    ),
    # iterators and views, wrapped by the tests as MBPP's are (set(...), sorted(...), list(...))
    "iterators": (
        "def common(a, b):\n    return filter(set(b).__contains__, a)\n"
        "def keys(d):\n    return d.keys()\n"
        "def squares(n):\n    return (i * i for i in range(n))\n",
        "assert set(common([1, 2, 3], [3, 2])) == {2, 3}\n"
        "assert sorted(keys({'b': 1, 'a': 2})) == ['a', 'b'] and keys({1: 0}) == {1}\n"
        "assert list(squares(3)) == [0, 1, 4] and squares(3) != [0, 1, 4]\n",
    ),
    # state kept between calls, in a function that shadows a builtin (MBPP 126 defines sum)
    "state_and_builtin_name": (
        "calls = []\ndef sum(a, b):\n    calls.append(1)\n    return len(calls) + a + b\n",
        "assert sum(1, 1) == 3\nassert sum(1, 1) == 4\n",
    ),
}


@pytest.mark.parametrize("name", list(HONEST))
def test_honest_solutions_pass(name):
    solution, tests = HONEST[name]
    candidates = ["sum"] if name == "state_and_builtin_name" else ()
    result = sandbox.passes_asserts(solution, tests, candidates=candidates, limits=Limits(wall_s=20))
    assert result.ok, result
    if name == "prints":
        assert "adding 2 3" in result.stdout


def test_tests_keep_their_own_helpers_and_data():
    """HumanEval's prompt defines helpers the tests use (``poly``); they stay the tests' own
    even when the solution redefines them, and ``TEST_DATA`` reaches only the tests."""
    context = "def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\ndef find_zero(xs):\n    pass\n"
    solver = (
        "def find_zero(xs):\n    import scipy.optimize\n"
        "    return scipy.optimize.brentq(lambda x: poly(xs, x), -100, 100)\n"
    )
    tests = (
        "def check(candidate):\n    for xs in TEST_DATA:\n"
        "        assert abs(poly(xs, candidate(xs))) < 1e-6\n\ncheck(find_zero)\n"
    )
    cases = [[1, 2], [-6, 11, -6, 1]]
    limits = Limits(wall_s=20)
    assert sandbox.passes_asserts(
        context + solver, tests, context=context, candidates=["find_zero"], data=cases, limits=limits
    ).ok
    # a solution whose own poly is wrong (a root of 2 + 2x, not 1 + 2x) fails the tests' poly
    skewed = context.replace("return sum", "return 1 + sum") + solver
    assert not sandbox.passes_asserts(
        skewed, tests, context=context, candidates=["find_zero"], data=cases, limits=limits
    ).ok


def _codec() -> dict:
    """The codec as the tests' and the solution's processes run it: its text, executed."""
    namespace: dict = {}
    exec(programs.source("codec"), namespace)
    return namespace


def test_values_cross_exactly_and_only_as_builtins():
    from decimal import Decimal
    from fractions import Fraction

    codec = _codec()
    values = [
        None,
        True,
        0,
        -7,
        2**200,
        -(3**5000),
        0.1,
        -0.0,
        float("inf"),
        1e308,
        "é\ud800",
        b"\x00\xff",
        bytearray(b"ab"),
        1 + 2j,
        Fraction(1, 3),
        Decimal("1.10"),
        [1, [2, (3, frozenset({4}))]],
        (),
        {(1, 2): {"a": {1, 2}}, 5: None},
    ]
    for value in values:
        back = codec["decode"](json.loads(json.dumps(codec["encode"](value))))
        assert back == value and type(back) is type(value), value
    nan = codec["decode"](json.loads(json.dumps(codec["encode"](float("nan")))))
    assert nan != nan
    # what honest solutions return in place of lists: the same kind of thing arrives
    import collections

    d = {"a": 1, "b": 2}
    for make in (
        d.keys,
        d.values,
        d.items,
        lambda: range(2, 10, 3),
        lambda: collections.deque([1, 2]),
        lambda: map(str, [1, 2]),
        lambda: (x * x for x in range(3)),
        lambda: zip("ab", [1, 2], strict=True),
    ):
        value = make()
        back = codec["decode"](json.loads(json.dumps(codec["encode"](value))))
        if iter(value) is value:  # an iterator: one over the values
            assert iter(back) is back and list(back) == list(make())
        else:
            assert type(back) is type(value) and list(back) == list(value)
    assert codec["decode"](codec["encode"](d.keys())) == {"a", "b"}  # as in Python
    for hostile in (
        {"t": [1], "extra": 1},
        {"x": []},
        {"d": [[1]]},
        {"i": 5},
        {"c": ["1", 2]},
        {"S": [[1]]},
        {"Q": [1.5, 2]},
        {"t": "ab"},
        {"d": [[[1], 2]]},
    ):
        with pytest.raises((ValueError, TypeError)):
            codec["decode"](hostile)

    class Anything:
        def __eq__(self, other):
            return True

    with pytest.raises(TypeError):
        codec["encode"](Anything())
    deep: list = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(ValueError):
        codec["encode"](deep)


# --- forged verdicts ----------------------------------------------------------------------------


def _single_process_passes(solution: str, tests: str, limits: Limits) -> bool:
    """The design the attack report was about: solution, tests and a completion token that the
    program prints after its last test, all in one program."""
    token = uuid.uuid4().hex
    program = f"{solution}\n\n{tests}\nimport os as _o, sys as _s\n_s.stdout.flush()\n_o.write(1, b'\\n{token}\\n')\n"
    result = sandbox.run(program, limits=limits)
    return result.returncode == 0 and not result.timed_out and token in result.stdout


@pytest.mark.parametrize("name", sandbox_probes.CLASSIC_FORGERIES)
def test_forgeries_are_real_attacks(name):
    """Each classic forgery does pass a single-process harness: the probes test something."""
    tests = sandbox_probes.FORGERY_TESTS.replace("@SECRET@", sandbox_probes.forgery_secret())
    assert _single_process_passes(sandbox_probes.FORGERIES[name], tests, sandbox_probes.FORGERY_LIMITS)


@pytest.mark.parametrize("harness", ["asserts", "call"])
@pytest.mark.parametrize("name", list(sandbox_probes.FORGERIES))
def test_forged_verdict_does_not_pass(name, harness):
    verdict = sandbox_probes.check_forgery(name, harness)
    assert not verdict.passed, verdict
    if verdict.execution is not None:
        assert not verdict.execution.timed_out
        assert "planted" not in verdict.execution.stdout


def test_the_tests_process_is_closed_to_the_solution():
    """What the forgeries rely on, checked directly from the solution's side."""
    probe = """
import json, os
seen = {}
for what in ("mem", "environ", "fd/0", "maps"):
    try:
        with open("/proc/%d/%s" % (os.getppid(), what), "rb") as f:
            f.read(1)
        seen[what] = "read"
    except OSError as exc:
        seen[what] = exc.errno

def report():
    return json.dumps([seen, sorted(os.listdir("/proc/self/fd")), open("/proc/self/cmdline").read()])
"""
    result = sandbox.passes_asserts(probe, "print(report())\nassert False\n", limits=FAST)
    assert not result.ok
    seen, fds, cmdline = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(seen.values()) <= {1, 13}, seen  # EPERM / EACCES: nothing read
    assert len(fds) == 6, fds  # stdio, the two pipes, listdir's own
    assert "ttcsecret" not in result.stdout and "-S\x00-c" in cmdline


# --- stdout compared while it arrives -------------------------------------------------------------


def test_output_comparison_follows_normalize_output():
    import random

    rng = random.Random(7)
    pieces = ["1", "2", " ", "\n", "\r\n", "", "x", "\t", "é"]
    for _ in range(3000):
        expected = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        actual = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        data = actual.encode()
        comparison = sandbox.OutputComparison(expected)
        cut = rng.randint(0, len(data))
        comparison.feed(data[:cut])
        comparison.feed(data[cut:])
        same = sandbox.normalize_output(actual) == sandbox.normalize_output(expected)
        assert comparison.finish() == same, (expected, actual)


@pytest.mark.heavy
def test_big_output_compared_streaming():
    lines = 1_000_000  # 8 MiB, 32 times the 256 KiB cap
    expected = "".join(f"{i:7d}\n" for i in range(lines))
    program = "import sys\nn = int(input())\nsys.stdout.write(''.join(f'{i:7d}\\n' for i in range(n)))\n"
    limits = Limits(wall_s=30, memory_mb=1024)
    assert sandbox.passes_io(program, [(f"{lines}\n", expected)], limits)
    result = sandbox.run(program, stdin=f"{lines}\n", limits=limits, expected_stdout=expected)
    assert result.ok and result.stdout_matches
    assert len(result.stdout) < limits.output_kb * 1024 + 100  # only the head is kept
    # trailing spaces on every line still compare equal (and fit in the cap)
    spaced = program.replace("\\n' for", " \\n' for")
    assert sandbox.passes_io(spaced, [(f"{lines}\n", expected)], limits)
    # one wrong line near the end, a missing last line, an extra line
    wrong = expected.replace(" 999990\n", " 999991\n")
    assert not sandbox.passes_io(program, [(f"{lines}\n", wrong)], limits)
    assert not sandbox.passes_io(program, [(f"{lines - 1}\n", expected)], limits)
    assert not sandbox.passes_io(program, [(f"{lines + 1}\n", expected)], limits)


def test_wrong_output_is_stopped_at_its_first_difference():
    program = "print('wrong', flush=True)\nimport time\ntime.sleep(20)\n"
    start = time.monotonic()
    result = sandbox.run(program, expected_stdout="right\n", limits=Limits(wall_s=25))
    assert result.stdout_matches is False and not result.timed_out
    assert time.monotonic() - start < 5
    assert "line 1: expected 'right', got 'wrong'" in result.stderr
    flood = "while True:\n    print('1')\n"  # never stops: capped, not held
    result = sandbox.run(flood, expected_stdout="1\n" * 1000, limits=Limits(wall_s=10))
    assert result.stdout_matches is False and not result.timed_out


def test_passes_io():
    program = "n = int(input())\nfor i in range(n):\n    print(i, ' ')\n"
    assert sandbox.passes_io(program, [("2\n", "0\n1"), ("3\n", "0\n1\n2\n\n")], FAST)
    assert not sandbox.passes_io(program, [("2\n", "0\n1\n"), ("3\n", "0\n1\n")], FAST)
    # stops at the first failure: the slow second case never runs
    slow = "import time\nx = input()\nif x == 'slow': time.sleep(20)\nprint(x)"
    start = time.monotonic()
    assert not sandbox.passes_io(slow, [("a", "b"), ("slow", "slow")], Limits(wall_s=10))
    assert time.monotonic() - start < 5
    assert not sandbox.passes_io("import time; time.sleep(10)", [("", "")], Limits(wall_s=1))


def test_passes_call():
    leetcode = """
class Solution:
    def twoSum(self, nums: List[int], target: int) -> List[int]:
        seen = {}
        for i, x in enumerate(nums):
            if target - x in seen:
                return (seen[target - x], i)
            seen[x] = i
"""
    cases = [([[2, 7, 11, 15], 9], [0, 1]), ([[3, 2, 4], 6], [1, 2])]
    assert sandbox.passes_call(leetcode, "twoSum", cases, FAST)
    assert not sandbox.passes_call(leetcode, "twoSum", [([[3, 2, 4], 6], [0, 2])], FAST)
    function = "def square(x):\n    return x * x\n"
    assert sandbox.passes_call(function, "square", [([3], 9), ([-2], 4)], FAST)
    assert not sandbox.passes_call(function, "cube", [([3], 27)], FAST)
    assert not sandbox.passes_call("def square(x):\n    raise ValueError\n", "square", [([3], 9)], FAST)
    assert not sandbox.passes_call("import sys\nsys.exit(0)\n", "square", [([3], 9)], FAST)
    assert not sandbox.passes_call("import os\nos._exit(0)\n", "square", [([3], 9)], FAST)
    assert not sandbox.passes_call(
        "def square(x):\n    while True: pass\n", "square", [([3], 9)], Limits(wall_s=1, cpu_s=1)
    )
