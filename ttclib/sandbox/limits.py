"""The resource limits of one execution (:class:`Limits`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Resource limits of one execution."""

    wall_s: float = 10.0  # wall-clock timeout, seconds (whole process tree)
    cpu_s: float = 10.0  # RLIMIT_CPU per process, seconds (rounded up)
    memory_mb: int = 1024  # RLIMIT_AS per process, MiB of address space
    processes: int = 32  # RLIMIT_NPROC: processes the program may have at once
    file_mb: int = 16  # RLIMIT_FSIZE: largest file it may write, MiB
    open_files: int = 64  # RLIMIT_NOFILE: open file descriptors per process
    output_kb: int = 256  # stdout and stderr each kept up to this many KiB; rest discarded
    #                             (stdout compared with an expected one: see run())
    disk_mb: int = 64  # MiB of each private tmpfs: /tmp (with the work dir), /var/tmp, /dev/shm


DEFAULT_LIMITS = Limits()  # the default of every function taking limits
