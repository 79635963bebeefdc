"""One execution from the caller's side: :func:`run`, :func:`run_many`, and :class:`Run`, which
takes a uid, prepares the work directory, cgroup and helper configuration, and falls back to
running without namespaces (only when the caller allows it) where they cannot be set up."""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .execution import Execution, SandboxError
from .isolation import (
    UID_SLOTS,
    WORKDIR,
    Cgroup,
    Slot,
    check_reachable,
    interpreter_paths,
    program_env,
    state_dir,
    uid_processes,
)
from .limits import DEFAULT_LIMITS, Limits
from .output import OutputComparison
from .process import HelperProcess


@dataclass
class Namespaces:
    """Whether this machine lets the sandbox set up its namespaces, learnt once."""

    usable: bool | None = None  # None: untried; False: unavailable here (``reason`` says why)
    reason: str = ""


NAMESPACES = Namespaces()
_lock = threading.Lock()


def run(
    program: str,
    *,
    stdin: str = "",
    limits: Limits = DEFAULT_LIMITS,
    allow_network: bool = False,
    expected_stdout: str | None = None,
) -> Execution:
    """Run Python source ``program`` with ``stdin`` as its standard input.

    With ``expected_stdout``, all of stdout is compared with it while it arrives
    (:class:`OutputComparison`; ``Execution.stdout_matches``), whatever its size: only the
    first ``limits.output_kb`` KiB are kept in ``Execution.stdout``, the program is stopped at
    the first differing line, and it may write at most twice the expected size plus
    ``output_kb`` KiB (room for ignored trailing spaces). The expected text never reaches the
    program.

    Raises :class:`SandboxError` when network isolation cannot be set up, unless
    ``allow_network`` is true (network isolation is still used wherever it can be).
    """
    return Run(program, stdin, limits, allow_network, expected_stdout).execute()


def run_many(
    jobs: Sequence[tuple[str, str]],
    *,
    limits: Limits = DEFAULT_LIMITS,
    workers: int | None = None,
    allow_network: bool = False,
) -> list[Execution]:
    """Run ``(program, stdin)`` pairs concurrently (``workers`` threads, default one per core);
    results are in the order of ``jobs``."""
    jobs = list(jobs)
    if not jobs:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs), UID_SLOTS))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda job: run(job[0], stdin=job[1], limits=limits, allow_network=allow_network), jobs))


class Run:
    """One execution, on the caller's side: its uid, work directory, cgroup and helper
    configuration; with ``inline``, ``program`` is trusted and runs in the helper's interpreter
    (the tests' harness)."""

    def __init__(
        self,
        program: str,
        stdin: str,
        limits: Limits,
        allow_network: bool,
        expected_stdout: str | None = None,
        inline: bool = False,
    ) -> None:
        self.program, self.stdin, self.limits = program, stdin, limits
        self.allow_network, self.expected_stdout = allow_network, expected_stdout
        self.inline = inline
        self.root = os.geteuid() == 0
        self.python = sys.executable

    def execute(self) -> Execution:
        namespaces = NAMESPACES.usable is not False
        if not namespaces and not self.allow_network:
            raise _no_network_error(NAMESPACES.reason)
        result = self._attempt(namespaces)
        if isinstance(result, Execution):
            return result
        # the namespaces could not be set up
        with _lock:
            NAMESPACES.usable, NAMESPACES.reason = False, result
        if not self.allow_network:
            raise _no_network_error(result)
        result = self._attempt(False)
        if isinstance(result, str):  # a reason comes only from the namespaces' set-up, not tried here
            raise SandboxError(f"sandbox setup failed: {result}")
        return result

    def _attempt(self, namespaces: bool) -> Execution | str:
        slot = Slot() if self.root else None
        workdir: str | None = None
        cgroup: Cgroup | None = None
        try:
            if namespaces:
                workdir = WORKDIR
            else:
                workdir = self._plain_workdir(slot)
            cgroup = Cgroup((self.limits.memory_mb + 3 * self.limits.disk_mb) * 2**20)
            cfg = self._config(namespaces, slot, workdir, cgroup)
            comparison = None if self.expected_stdout is None else OutputComparison(self.expected_stdout)
            return HelperProcess(cfg, self.stdin, self.limits, slot, comparison).wait()
        finally:
            try:
                if workdir and not namespaces:
                    shutil.rmtree(workdir, ignore_errors=True)
                if cgroup is not None:
                    cgroup.remove()
            finally:
                if slot is not None:
                    slot.release()

    def _nproc_base(self, namespaces: bool) -> int:
        """RLIMIT_NPROC counts the uid's processes: a sandbox uid has none; in a user namespace
        the helper and the namespace's init count too; without namespaces, as an ordinary user,
        all the user's processes count."""
        if self.root:
            return 0
        return 2 if namespaces else len(uid_processes(os.getuid()))

    def _plain_workdir(self, slot: Slot | None) -> str:
        if slot is None:
            workdir = tempfile.mkdtemp(prefix="ttc-sandbox-")
        else:
            check_reachable(self.python)
            runs = state_dir() / "runs"
            runs.mkdir(parents=True, exist_ok=True)
            os.chmod(runs, 0o711)
            workdir = tempfile.mkdtemp(prefix=f"{slot.uid}-", dir=runs)
            os.chown(workdir, slot.uid, slot.uid)
        path = os.path.join(workdir, "main.py")
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(self.program)
        if slot is not None:
            os.chown(path, slot.uid, slot.uid)
        return workdir

    def _config(self, namespaces: bool, slot: Slot | None, workdir: str, cgroup: Cgroup) -> dict:
        home = os.path.realpath(os.path.expanduser("~"))
        hide = [
            p for p in {home, os.path.realpath("/run"), os.path.realpath("/var/run")} if p != "/" and os.path.isdir(p)
        ]
        limits = self.limits
        return {
            "python": self.python,
            "inline": self.inline,
            "program": self.program,
            "namespaces": namespaces,
            "userns": namespaces and not self.root,
            "uid": slot.uid if slot else None,
            "workdir": workdir,
            "env": program_env(workdir),
            "expose": interpreter_paths(self.python) if namespaces else [],
            "hide": sorted(hide),
            "disk_mb": limits.disk_mb,
            "cgroup": cgroup.procs(),
            "cgroup_tag": cgroup.tag,
            "rlimits": {
                "CPU": math.ceil(limits.cpu_s),
                "AS": limits.memory_mb * 2**20,
                "NPROC": limits.processes + self._nproc_base(namespaces),
                "FSIZE": limits.file_mb * 2**20,
                "NOFILE": limits.open_files,
            },
        }


def _no_network_error(reason: str) -> SandboxError:
    return SandboxError(
        f"cannot isolate the sandbox from the network ({reason}); pass "
        "allow_network=True to run without network and file-system isolation"
    )
