"""What one sandboxed program did (:class:`Execution`), and the error raised when the sandbox
itself cannot be set up (:class:`SandboxError`)."""

from __future__ import annotations

from dataclasses import dataclass


class SandboxError(RuntimeError):
    """The sandbox could not be set up as asked (not: the program failed)."""


@dataclass(frozen=True)
class Execution:
    """What one sandboxed program did."""

    returncode: int | None  # exit status; -N when killed by signal N; None when timed out
    timed_out: bool  # killed by the wall-clock timeout
    stdout: str  # decoded UTF-8 (invalid bytes replaced), at most output_kb KiB
    stderr: str
    wall_s: float  # seconds from start until the program's process tree ended
    isolation: tuple[str, ...]  # protections in force, e.g. ("uid:61003", "netns", "mountns", ...)
    stray_processes: int = 0  # processes still running when the program exited (all killed)
    stdout_matches: bool | None = None  # stdout equals run()'s expected_stdout (None: not given)

    @property
    def ok(self) -> bool:
        """Exited 0 in time and left nothing running behind."""
        return self.returncode == 0 and not self.timed_out and self.stray_processes == 0
