"""What isolates one execution on the caller's side: its uid, its memory cgroup, the
interpreter's directories it may see, and its environment.

- As root, each execution holds a uid of its own (:class:`Slot`: ``UID_BASE`` and up, locked with
  a file in :func:`state_dir`); every process of that uid is killed before and after it
  (:func:`kill_uid`).
- :class:`Cgroup`: the memory cgroup bounding all an execution holds at once.
- :func:`interpreter_paths` and :func:`module_path`: what of the interpreter stays visible in
  the namespaces, and what the programs import from.
- :func:`program_env`: the program's whole environment (nothing of the caller's).

The namespaces, mounts, rlimits, Landlock and seccomp are set up in the helper
(:mod:`ttclib.sandbox.programs.helper`), never in the caller's process.
"""

from __future__ import annotations

import fcntl
import grp
import json
import os
import pwd
import shutil
import subprocess
import threading
import time
from pathlib import Path

from .execution import SandboxError

UID_BASE = 61000  # sandbox uids are UID_BASE + slot (no passwd entry needed)
UID_SLOTS = 64  # at most this many concurrent executions per machine (as root)
WORKDIR = "/tmp/work"  # the program's working directory inside the namespaces

_lock = threading.Lock()
slots_in_use: set[int] = set()  # slots held by this process
_interpreters: dict[str, tuple[list[str], list[str]]] = {}


def minimal_env() -> dict[str, str]:
    """The environment of the helper and of the interpreter probe: nothing of the caller's."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def program_env(workdir: str) -> dict[str, str]:
    """The program's whole environment: its work directory as home, one BLAS/OpenMP thread."""
    env = minimal_env()
    env.update(
        HOME=workdir,
        TMPDIR=workdir,
        PYTHONDONTWRITEBYTECODE="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        # glibc reserves 64 MiB of address space per malloc arena (about one per thread),
        # which RLIMIT_AS counts: without this a dozen threads exhaust 1 GiB
        MALLOC_ARENA_MAX="2",
    )
    return env


def interpreter_paths(python: str) -> list[str]:
    """Directories the interpreter needs (prefixes and its ``-I`` sys.path), resolved."""
    return _interpreter(python)[0]


def module_path(python: str) -> list[str]:
    """The interpreter's ``-I`` sys.path, absolute entries only (what ``-S`` leaves out: the
    site-packages directories, without running their .pth files)."""
    return _interpreter(python)[1]


def _interpreter(python: str) -> tuple[list[str], list[str]]:
    with _lock:
        if python in _interpreters:
            return _interpreters[python]
    code = (
        "import sys, json; print(json.dumps([[sys.prefix, sys.base_prefix, sys.exec_prefix, "
        "sys.base_exec_prefix], sys.path]))"
    )
    out = subprocess.run(
        [python, "-I", "-c", code], capture_output=True, text=True, check=True, env=minimal_env(), cwd="/", timeout=60
    ).stdout
    prefixes, sys_path = json.loads(out)
    paths = [os.path.dirname(os.path.realpath(python)), os.path.realpath(os.path.dirname(python))]
    paths += [os.path.realpath(p) for p in prefixes + sys_path if p and os.path.isdir(p)]
    info = (sorted(set(paths)), [p for p in sys_path if os.path.isabs(p)])
    with _lock:
        _interpreters[python] = info
    return info


def state_dir() -> Path:
    """Root-owned directory for uid locks and (without namespaces) work directories."""
    return Path(os.environ.get("TTC_SANDBOX_DIR", "/var/lib/ttc-energy-sandbox"))


def uid_processes(uid: int) -> list[int]:
    """Pids of processes with ``uid`` as real, effective, saved or file-system uid."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if str(uid) in line.split()[1:]:
                            found.append(int(name))
                        break
        except OSError:
            continue
    return found


def kill_uid(uid: int, timeout_s: float = 10.0) -> None:
    """SIGKILL every process of ``uid``: ``kill -9 -1`` run as that uid signals exactly the
    processes it may signal, i.e. its own; repeated until none is left."""
    kill = shutil.which("kill", path="/usr/bin:/bin") or "/bin/kill"
    deadline = time.monotonic() + timeout_s
    while uid_processes(uid):
        if time.monotonic() > deadline:
            raise SandboxError(f"processes of sandbox uid {uid} survive SIGKILL: {uid_processes(uid)}")
        subprocess.run(
            [kill, "-9", "-1"],
            user=uid,
            group=uid,
            extra_groups=[],
            env={},
            cwd="/",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
        )
        time.sleep(0.005)


class Slot:
    """An unprivileged uid (= gid) for one execution, unique on this machine while held."""

    def __init__(self) -> None:
        locks = state_dir() / "locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
            os.chmod(state_dir(), 0o711)
            os.chmod(locks, 0o700)
        except OSError as exc:
            raise SandboxError(
                f"cannot prepare the sandbox state directory ({exc}); set TTC_SANDBOX_DIR to a root-owned directory"
            ) from exc
        self.lock_fd: int | None = None
        with _lock:
            for slot in range(UID_SLOTS):
                uid = UID_BASE + slot
                if slot in slots_in_use or _account_exists(uid):
                    continue
                fd = os.open(locks / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                slots_in_use.add(slot)
                self.slot, self.uid, self.lock_fd = slot, uid, fd
                break
        if self.lock_fd is None:
            raise SandboxError(f"all {UID_SLOTS} sandbox uids from {UID_BASE} are busy")
        try:
            kill_uid(self.uid)  # leftovers of a crashed process (should not exist)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None
            with _lock:
                slots_in_use.discard(self.slot)


class Cgroup:
    """A memory cgroup of one execution: a bound on everything it holds at once, tmpfs and
    memfd pages included, which ``RLIMIT_AS`` does not count. cgroup v2 (``memory.max``, no
    swap, the whole group killed on OOM) below the caller's cgroup, or else below
    ``$TTC_SANDBOX_CGROUP`` (a delegated v2 directory) or the v2 root; else the v1 memory
    controller below the caller's memory cgroup. ``tag`` says which, or why there is none."""

    _counter = iter(range(1 << 62))

    def __init__(self, limit_bytes: int):
        self.path: Path | None = None
        self.tag = "no-cgroup"
        try:
            self.path, version = self._create(limit_bytes)
            self.tag = f"cgroup:{version}:{limit_bytes >> 20}m"
        except OSError as exc:
            self.tag = (
                f"no-cgroup:{exc.strerror or exc} (no memory cgroup this user may "
                "create; TTC_SANDBOX_CGROUP names a delegated one)"
            )
        except LookupError as exc:
            self.tag = f"no-cgroup:{exc.args[0]}"

    def procs(self) -> str | None:
        return str(self.path / "cgroup.procs") if self.path else None

    def _create(self, limit_bytes: int) -> tuple[Path, str]:
        name = f"ttc-sandbox-{os.getpid()}-{next(self._counter)}"
        mounts, own = cgroup_mounts(), own_cgroups()
        errors = []
        if "cgroup2" in mounts:
            root = mounts["cgroup2"]
            parents = [os.environ.get("TTC_SANDBOX_CGROUP"), own.get(""), "/ttc-sandbox"]
            for parent in [p for p in parents if p]:
                base = Path(parent) if parent.startswith(str(root)) else root / parent.lstrip("/")
                try:
                    return self._v2(base, name, limit_bytes), "v2"
                except OSError as exc:
                    errors.append(f"v2 {base}: {exc.strerror or exc}")
        if "memory" in mounts and "memory" in own:
            path = mounts["memory"] / own["memory"].lstrip("/") / name
            path.mkdir(mode=0o755)
            try:
                (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                if (path / "memory.memsw.limit_in_bytes").exists():
                    (path / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
            except OSError:
                _remove_cgroup(path)
                raise
            return path, "v1"
        raise LookupError("; ".join(errors) or "no memory controller mounted")

    @staticmethod
    def _v2(base: Path, name: str, limit_bytes: int) -> Path:
        base.mkdir(mode=0o755, exist_ok=True)
        control = base / "cgroup.subtree_control"
        if "memory" not in control.read_text().split():
            control.write_text("+memory")
        path = base / name
        path.mkdir(mode=0o755)
        try:
            (path / "memory.max").write_text(str(limit_bytes))
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")
            (path / "memory.oom.group").write_text("1")
        except OSError:
            _remove_cgroup(path)
            raise
        return path

    def remove(self) -> None:
        if self.path is not None:
            _remove_cgroup(self.path)
            self.path = None


def _remove_cgroup(path: Path, timeout_s: float = 2.0) -> None:
    """rmdir a cgroup once its processes are gone (their exit is seen a moment later)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return  # left behind empty of processes: harmless, reported nowhere
            time.sleep(0.01)


def cgroup_mounts() -> dict[str, Path]:
    """{"cgroup2": mount point, controller name: v1 mount point}."""
    found: dict[str, Path] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype == "cgroup2":
                found.setdefault("cgroup2", Path(fields[4]))
            elif fstype == "cgroup":
                for option in fields[-1].split(","):
                    found.setdefault(option, Path(fields[4]))
    return found


def own_cgroups() -> dict[str, str]:
    """This process's cgroup per v1 controller, and ``""``: its v2 cgroup."""
    own: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                own[controller] = path
    return own


def _account_exists(uid: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            pass
    return False


def check_reachable(python: str) -> None:
    """Without a mount namespace the sandbox uid must be able to reach the interpreter."""
    for path in interpreter_paths(python):
        parts = Path(path).parts
        for i in range(2, len(parts) + 1):
            ancestor = Path(*parts[:i])
            if not ancestor.stat().st_mode & 0o001:
                raise SandboxError(
                    f"the sandbox uid cannot reach the interpreter: {ancestor} is not searchable by other users"
                )
