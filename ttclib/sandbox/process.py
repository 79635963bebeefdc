"""The helper's process tree of one execution, seen from the caller (:class:`HelperProcess`).

The caller starts the helper (:mod:`ttclib.sandbox.programs.helper`, ``python -I -S -c``) in a
new session, feeds it its configuration and the program's stdin, collects stdout, stderr and
the helper's reports while the wall clock runs, compares stdout with the expected text as it
arrives, and kills the whole tree at the end (the PID namespace's init through a pidfd, the
process group, every descendant seen without namespaces, every process of the sandbox uid).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from typing import IO, Any

from . import programs
from .execution import Execution, SandboxError
from .isolation import Slot, kill_uid, minimal_env
from .limits import Limits
from .output import OutputComparison


class HelperProcess:
    """The helper process tree of one execution and the parent's event loop around it."""

    def __init__(
        self, cfg: dict, stdin: str, limits: Limits, slot: Slot | None, comparison: OutputComparison | None = None
    ) -> None:
        self.cfg, self.limits, self.slot = cfg, limits, slot
        self.cap = limits.output_kb * 1024
        self.comparison = comparison
        if comparison is not None:  # total stdout allowed when compared
            self.stdout_cap = 2 * len(comparison.expected) + self.cap
        self.stdout_seen = 0
        self.out = {"stdout": bytearray(), "stderr": bytearray()}
        self.dropped = {"stdout": 0, "stderr": 0}
        self.report = bytearray()
        self.pending = {"cfg": json.dumps(cfg).encode(), "stdin": stdin.encode("utf-8", "surrogatepass")}
        self.proc: subprocess.Popen[bytes] | None = None
        self.fds: set[int] = set()  # descriptors of ours still open
        self.init_pidfd: int | None = None
        self.descendants: dict[int, Any] = {}  # psutil.Process of each process seen (without namespaces)
        self.timed_out = False

    @property
    def helper(self) -> subprocess.Popen[bytes]:
        """The helper's process, once :meth:`wait` has started it."""
        assert self.proc is not None, "the helper has not started"
        return self.proc

    def wait(self) -> Execution | str:
        start = time.monotonic()
        cfg_r, cfg_w = os.pipe()
        rep_r, rep_w = os.pipe()
        self.fds = {cfg_r, cfg_w, rep_r, rep_w}
        h_pidfd = None
        try:
            self.proc = subprocess.Popen(
                [self.cfg["python"], "-I", "-S", "-c", programs.helper(), str(cfg_r), str(rep_w), str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(cfg_r, rep_w),
                env=minimal_env(),
                cwd="/",
                start_new_session=True,
            )
            self._close(cfg_r)
            self._close(rep_w)
            if self.cfg["cgroup"]:  # while the helper's interpreter starts
                try:
                    with open(self.cfg["cgroup"], "w") as f:
                        f.write(str(self.proc.pid))
                except OSError:
                    pass  # the helper tries itself, and fails visibly
            h_pidfd = _pidfd(self.proc.pid)
            if h_pidfd is not None:
                self.fds.add(h_pidfd)
            self._loop(start + self.limits.wall_s, cfg_w, rep_r, h_pidfd)
            wall_s = time.monotonic() - start
            self._stop(h_pidfd)
            self._drain(rep_r)
        finally:
            # also on exceptions and KeyboardInterrupt: nothing of the run may survive it
            self._stop(h_pidfd)
            for fd in list(self.fds):
                self._close(fd)
            streams = (self.proc.stdin, self.proc.stdout, self.proc.stderr) if self.proc else ()
            for stream in streams:
                try:
                    _pipe(stream).close()
                except OSError:
                    pass
            if self.slot is not None:
                kill_uid(self.slot.uid)
        return self._result(wall_s)

    def _loop(self, deadline: float, cfg_w: int, rep_r: int, h_pidfd: int | None) -> None:
        sel = selectors.DefaultSelector()
        stdin, stdout, stderr = _pipe(self.helper.stdin), _pipe(self.helper.stdout), _pipe(self.helper.stderr)
        readers = {stdout.fileno(): "stdout", stderr.fileno(): "stderr", rep_r: "report"}
        writers = {cfg_w: "cfg", stdin.fileno(): "stdin"}
        for fd in list(readers) + list(writers):
            os.set_blocking(fd, False)
        for fd in readers:
            sel.register(fd, selectors.EVENT_READ)
        if h_pidfd is not None:
            sel.register(h_pidfd, selectors.EVENT_READ)
        sel.register(cfg_w, selectors.EVENT_WRITE)  # stdin only after the config
        plain = not self.cfg["namespaces"]
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.timed_out = True
                    return
                tick = min(remaining, 0.1 if plain or h_pidfd is None else remaining)
                for key, _ in sel.select(tick):
                    fd = key.fd
                    if fd == h_pidfd:
                        return
                    if fd in readers:
                        if not self._read(fd, readers[fd]):
                            sel.unregister(fd)
                            del readers[fd]
                        if fd == rep_r:
                            self._watch_init()
                        if self.comparison is not None and self.comparison.difference:
                            return  # a wrong output: stop the program now
                    elif fd in writers:
                        if not self._write(fd, writers[fd]):
                            sel.unregister(fd)
                            if writers.pop(fd) == "cfg":
                                self._close(cfg_w)
                                stdin_fd = stdin.fileno()
                                if stdin_fd in writers:
                                    sel.register(stdin_fd, selectors.EVENT_WRITE)
                            else:
                                stdin.close()
                if plain:
                    self._note_descendants()
                if h_pidfd is None and _exited(self.helper.pid):
                    return
        finally:
            sel.close()

    def _read(self, fd: int, name: str) -> bool:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        if name == "report":
            self.report += chunk[: max(0, 1_000_000 - len(self.report))]
            return True
        if name == "stdout" and self.comparison is not None:
            self.stdout_seen += len(chunk)
            if self.stdout_seen > self.stdout_cap:
                self.comparison.difference = (
                    self.comparison.difference or f"more than {self.stdout_cap} bytes of output"
                )
            else:
                self.comparison.feed(chunk)
        buf = self.out[name]
        keep = max(0, self.cap - len(buf))
        buf += chunk[:keep]
        self.dropped[name] += len(chunk) - min(keep, len(chunk))
        return True

    def _write(self, fd: int, name: str) -> bool:
        data = self.pending[name]
        if not data:
            return False
        try:
            n = os.write(fd, data[:65536])
        except BlockingIOError:
            return True
        except OSError:  # the reader is gone (EPIPE)
            return False
        self.pending[name] = data[n:]
        return bool(self.pending[name])

    def _messages(self) -> list[dict]:
        messages = []
        for line in bytes(self.report).splitlines():
            try:
                messages.append(json.loads(line))
            except ValueError:
                pass
        return messages

    def _watch_init(self) -> None:
        """Hold a pidfd on the PID namespace's init once the helper has reported it; killing
        init kills everything in the namespace."""
        if self.init_pidfd is not None:
            return
        for message in self._messages():
            if "init_pid" in message:
                pid = message["init_pid"]
                fd = _pidfd(pid)
                # the pid is the helper's child right now, so the pidfd is that child's
                if fd is not None and _parent_of(pid) == self.helper.pid:
                    self.init_pidfd = fd
                    self.fds.add(fd)
                else:
                    _close(fd)
                return

    def _note_descendants(self) -> None:
        try:
            import psutil

            for child in psutil.Process(self.helper.pid).children(recursive=True):
                self.descendants.setdefault(child.pid, child)
        except Exception:
            pass

    def _stop(self, h_pidfd: int | None) -> None:
        """SIGKILL the whole tree and reap the helper (idempotent)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self._watch_init()
        if self.init_pidfd is not None:
            try:
                signal.pidfd_send_signal(self.init_pidfd, signal.SIGKILL)
            except OSError:
                pass
        if not self.cfg["namespaces"]:
            self._note_descendants()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the helper is unreaped: pgid still ours
        except OSError:
            pass
        for child in self.descendants.values():
            try:
                child.kill()  # psutil checks the pid was not reused
            except Exception:
                pass
        for fd in (self.init_pidfd, h_pidfd):
            if fd is not None:
                _wait_readable(fd, 10.0)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise SandboxError(f"sandbox helper {self.proc.pid} survives SIGKILL") from None

    def _close(self, fd: int) -> None:
        """Close a descriptor of ours exactly once (a second close could hit another thread's)."""
        if fd in self.fds:
            self.fds.discard(fd)
            _close(fd)

    def _drain(self, rep_r: int) -> None:
        """Read what is left in the pipes (every writer is dead by now)."""
        deadline = time.monotonic() + 1.0
        for name, fd in (
            ("stdout", _pipe(self.helper.stdout).fileno()),
            ("stderr", _pipe(self.helper.stderr).fileno()),
            ("report", rep_r),
        ):
            os.set_blocking(fd, False)
            while time.monotonic() < deadline:
                try:
                    if not self._read(fd, name):
                        break
                except BlockingIOError:
                    break
                if not _wait_readable(fd, max(0.0, deadline - time.monotonic())):
                    break

    def _result(self, wall_s: float) -> Execution | str:
        messages = self._messages()
        tags, status, strays, error = [], None, 0, None
        for m in messages:
            tags += m.get("tags", [])
            if "status" in m:
                status, strays = m["status"], m.get("strays", 0)
            error = error or m.get("error")
        if error and not self.timed_out:
            if any(m.get("stage") == "namespaces" for m in messages):
                return error
            raise SandboxError(f"sandbox setup failed: {error}")
        if self.timed_out:
            returncode = None
        elif status is not None:
            returncode = os.waitstatus_to_exitcode(status)
        else:
            returncode = self.helper.returncode
        tags.append("pgroup")
        text = {}
        for name, buf in self.out.items():
            text[name] = bytes(buf).decode("utf-8", errors="replace")
            if self.dropped[name]:
                text[name] += f"\n[sandbox: {self.dropped[name]} more bytes discarded]\n"
        matches = None
        if self.comparison is not None:
            matches = self.comparison.finish()
            if not matches:
                text["stderr"] += f"\n[sandbox] stdout differs from the expected output: {self.comparison.difference}\n"
        return Execution(
            returncode=returncode,
            timed_out=self.timed_out,
            stdout=text["stdout"],
            stderr=text["stderr"],
            wall_s=round(wall_s, 4),
            isolation=tuple(dict.fromkeys(tags)),
            stray_processes=strays,
            stdout_matches=matches,
        )


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _exited(pid: int) -> bool:
    """Whether child ``pid`` has exited, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _wait_readable(fd: int, timeout: float) -> bool:
    """Wait until ``fd`` is readable (a pidfd: the process has exited)."""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        return bool(sel.select(timeout))


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    """A pipe to or from the helper (all three are pipes: never None once it started)."""
    assert stream is not None, "not a pipe"
    return stream
