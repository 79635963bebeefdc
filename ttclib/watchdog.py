"""A watchdog that stops every process of a launched server once its launcher is gone.

``PR_SET_PDEATHSIG`` reaches only the server's first process. The processes it spawns (SGLang's
scheduler and detokenizer, multiprocessing's resource tracker) arm their own only once their
imports are done, so a run SIGKILLed during start-up left them running, holding GPU memory.

The watchdog is a tiny process in a session of its own (a Ctrl-C or a kill of the run's process
group does not reach it) that blocks reading a pipe whose write end only the launching process
holds. The read returns end-of-file however that process ends: :meth:`Watchdog.close`, exit,
exception or SIGKILL. The watchdog then stops every process started with its marker in the
environment, and their descendants, whichever process group or session they have moved to and
whoever became their parent: SIGTERM, then SIGKILL after a grace period.

>>> import subprocess, time
>>> dog = Watchdog(grace_s=2)
>>> tree = subprocess.Popen(["sh", "-c", "setsid sleep 60 & exec sleep 60"], env=dog.env(),
...                         start_new_session=True)
>>> while len(dog.processes()) < 2:         # the shell, then the sleep that left its session
...     time.sleep(0.05)
>>> dog.close()
>>> dog.processes(), tree.wait()
([], -15)
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from typing import IO

import psutil

MARKER = "TTC_WATCHDOG"  # environment variable carrying the watchdog's token


def marked_processes(token: str) -> list[psutil.Process]:
    """Live processes started with ``MARKER=token`` in their environment, and their descendants."""
    procs = {p.pid: p for p in psutil.process_iter(["ppid", "environ", "status"])}
    found = {pid for pid, p in procs.items() if (p.info["environ"] or {}).get(MARKER) == token}
    # A child that cleared its environment is still found through its parent (while that lives).
    while grown := {pid for pid, p in procs.items() if p.info["ppid"] in found} - found:
        found |= grown
    found.discard(os.getpid())
    return [procs[pid] for pid in sorted(found) if procs[pid].info["status"] != psutil.STATUS_ZOMBIE]


def stop_marked(token: str, grace_s: float, log: IO[str] | None = None) -> int:
    """SIGTERM every marked process, SIGKILL what is left after ``grace_s``; returns how many there were.

    Rescans before each signal, so that a process spawned while the others were stopping is
    caught too. (multiprocessing's resource tracker ignores SIGTERM: it exits by itself, after
    its clean-up, once the processes it serves are gone.)
    """
    first = marked_processes(token)
    if first and log:
        print(
            f"watchdog: stopping {len(first)} processes of the server: {' '.join(str(p.pid) for p in first)}",
            file=log,
            flush=True,
        )
    procs = first
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2), (signal.SIGKILL, 2)):
        if not procs:
            break
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=wait_s)
        procs = marked_processes(token)
    return len(first)


class Watchdog:
    """The launching side: start the watchdog, give :meth:`env` to the processes it guards, :meth:`close`."""

    def __init__(self, grace_s: float = 5, log: IO | None = None):
        self.token = f"{os.getpid()}-{secrets.token_hex(8)}"
        self.grace_s = grace_s
        # -P: not the script's directory first on sys.path (this package's modules would shadow others)
        self.process = subprocess.Popen(
            [sys.executable, "-P", __file__, self.token, str(grace_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=log or subprocess.DEVNULL,
            start_new_session=True,
        )

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with the watchdog's marker."""
        return {**(os.environ if base is None else base), MARKER: self.token}

    def processes(self) -> list[psutil.Process]:
        """The guarded processes still alive."""
        return marked_processes(self.token)

    def close(self) -> None:
        """Let the watchdog stop what is left of the guarded processes, and wait until it has."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=self.grace_s + 15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main(token: str, grace_s: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):  # nothing is ever written: this returns at end-of-file
        pass
    stop_marked(token, float(grace_s), log=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:])
