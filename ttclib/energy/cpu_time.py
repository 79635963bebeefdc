"""ESTIMATE, NOT A MEASUREMENT: CPU seconds of a process tree times watts per core from the CPU's TDP.

The last-resort meter, registered as ``estimate`` and labelled as such everywhere it appears.
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Any

from .measurement import NAN
from .meter import Meter, register_meter
from .rapl import cpu_model

#: CPU model substring -> (TDP watts, physical cores), vendors' published figures. Matched
#: case-insensitively against the model name without "(R)"/"(TM)", longer keys first. Apple publishes no
#: TDP: its entries are approximate peak CPU-cluster power.
CPU_TDP: dict[str, tuple[float, int]] = {
    "EPYC 7742": (225.0, 64),
    "EPYC 7763": (280.0, 64),
    "EPYC 7543": (225.0, 32),
    "EPYC 9554": (360.0, 64),
    "EPYC 9654": (360.0, 96),
    "Xeon Platinum 8380": (270.0, 40),
    "Xeon Platinum 8480": (350.0, 56),  # 8480+ and 8480C
    "Xeon Platinum 8358": (250.0, 32),
    "Xeon Gold 6248R": (205.0, 24),
    "Xeon Gold 6248": (150.0, 20),
    "Core i9-13900K": (125.0, 24),
    "Ryzen 9 7950X": (170.0, 16),
    "Apple M1": (20.0, 8),
    "Apple M2": (22.0, 8),
}

#: Watts per busy core when neither a parameter nor the table gives one.
DEFAULT_PER_CORE_W = 5.0


def _per_core_w(
    tdp_w: float | None, cores: int | None, per_core_w: float | None, model: str
) -> tuple[float, str, float | None, int | None]:
    """(watts per core, source, tdp_w, cores) from the parameters, the table, or the default."""
    if per_core_w is not None:
        return float(per_core_w), "parameter", tdp_w, cores
    if tdp_w is not None:
        cores = cores or _physical_cores()
        return float(tdp_w) / cores, "parameter", float(tdp_w), cores
    plain = " ".join(re.sub(r"\((?:R|TM)\)", " ", model, flags=re.IGNORECASE).split()).lower()
    for key in sorted(CPU_TDP, key=len, reverse=True):  # "Gold 6248R" before "Gold 6248"
        if key.lower() in plain:
            tdp, n = CPU_TDP[key]
            return tdp / n, f"table:{key}", tdp, n
    return DEFAULT_PER_CORE_W, "default", None, cores


def _physical_cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


class _ProcessTree:
    """CPU seconds (user + system) of a process and all its descendants, ever.

    The last value seen per descendant is remembered, so children that exited keep their
    time; a child that starts and exits between two reads is missed (the sampler reads every
    ``sample_interval_s``), as are grandchildren re-parented away from the tree. On Linux it
    walks ``/proc/<pid>/task/<tid>/children`` (cheap); elsewhere it uses psutil.
    """

    _TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._seen: dict[tuple[int, int], float] = {}  # (pid, start time) -> cpu seconds
        self._lock = threading.Lock()
        self.source = "procfs" if os.path.exists(f"/proc/{pid}/task/{pid}/children") else "psutil"

    def cpu_s(self) -> float:
        """Total CPU seconds of the tree, including descendants that have exited."""
        found = self._walk_procfs() if self.source == "procfs" else self._walk_psutil()
        with self._lock:
            self._seen.update(found)
            return sum(self._seen.values())

    def _walk_procfs(self) -> dict[tuple[int, int], float]:
        found, stack = {}, [self.pid]
        while stack:
            pid = stack.pop()
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                # after "pid (comm)": state=0 ... utime=11 stime=12 ... starttime=19
                found[(pid, int(fields[19]))] = (int(fields[11]) + int(fields[12])) / self._TICK
            except (OSError, IndexError, ValueError):
                if pid == self.pid:
                    raise ProcessLookupError(f"process {pid} is gone") from None
                continue  # exited meanwhile: its last seen value is kept
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{tid}/children") as f:
                        stack.extend(int(c) for c in f.read().split())
            except (OSError, ValueError):
                continue
        return found

    def _walk_psutil(self) -> dict[tuple[int, int], float]:
        import psutil

        root = psutil.Process(self.pid)
        found = {}
        for p in [root, *root.children(recursive=True)]:
            try:
                ct = p.cpu_times()
                found[(p.pid, int(p.create_time() * 100))] = ct.user + ct.system
            except psutil.Error:
                if p.pid == self.pid:
                    raise
        return found


@register_meter("estimate", priority=2)
class EstimateMeter(Meter):
    """ESTIMATE, NOT A MEASUREMENT: CPU seconds of a process tree × watts per core.

    Energy = (user + system CPU seconds of the process ``pid`` and all its descendants)
    × ``per_core_w``. Watts per core come from ``per_core_w``, else ``tdp_w / cores``,
    else the table ``CPU_TDP`` (by CPU model), else ``DEFAULT_PER_CORE_W`` (5 W);
    ``describe()["per_core_w_source"]`` says which. It ignores idle/uncore/DRAM power,
    frequency and SMT, and other processes; use it only where neither NVML nor RAPL
    is available, and report it as an estimate.

    Example:
        >>> from ttclib.energy import EstimateMeter
        >>> meter = EstimateMeter(per_core_w=10.0)
        >>> meter.begin_window("x"); _ = sum(range(10**6)); m = meter.end_window("x")
        >>> m.method, m.energy_j["cpu"] >= 0
        ('cpu_time_x_tdp', True)
        >>> meter.describe()["estimate"]
        True
        >>> meter.close()
    """

    counter_method = "cpu_time_x_tdp"
    WARNING = (
        "ESTIMATE, not a measurement: CPU seconds of the process tree x per-core power from "
        "TDP; ignores idle, uncore, DRAM, frequency and other processes"
    )

    def __init__(
        self,
        tdp_w: float | None = None,
        cores: int | None = None,
        per_core_w: float | None = None,
        pid: int | None = None,
        sample_interval_s: float = 0.1,
    ) -> None:
        """Resolve the watts per core and start counting CPU time of the tree of ``pid``.

        Args:
            tdp_w: CPU TDP, watts (with ``cores``: physical cores it covers; default all).
            cores: Cores the TDP covers.
            per_core_w: Watts per busy core; overrides ``tdp_w``.
            pid: Root of the process tree; default this process.
            sample_interval_s: Period of the background sampler, seconds.
        """
        super().__init__(sample_interval_s)
        self.cpu_model = cpu_model()
        self.per_core_w, self.per_core_w_source, self.tdp_w, self.cores = _per_core_w(
            tdp_w, cores, per_core_w, self.cpu_model
        )
        self.pid = os.getpid() if pid is None else int(pid)
        self._tree = _ProcessTree(self.pid)
        self._cpu0 = self._tree.cpu_s()
        self.devices = ["cpu"]
        self._last_sample = (time.time(), 0.0)
        self._ncpu = os.cpu_count() or 1

    def _needs_sampler(self) -> bool:
        return True  # catch children that exit inside the window

    def cpu_seconds(self) -> float:
        """CPU seconds of the process tree since the meter started."""
        return self._tree.cpu_s() - self._cpu0

    def _read_energy(self) -> dict[str, float | None]:
        return {"cpu": self.cpu_seconds() * self.per_core_w}

    def _sample(self) -> list[tuple]:
        t, cpu = time.time(), self.cpu_seconds()
        t_prev, cpu_prev = self._last_sample
        self._last_sample = (t, cpu)
        busy = (cpu - cpu_prev) / (t - t_prev) if t > t_prev else NAN
        return [
            ("cpu", busy * self.per_core_w, cpu * self.per_core_w, NAN, NAN, NAN, 100.0 * busy / self._ncpu, NAN, 0)
        ]

    def _describe_devices(self) -> list[dict[str, Any]]:
        return [{"name": "cpu", "index": 0, "model": self.cpu_model, "logical_cpus": self._ncpu}]

    def _describe_extra(self) -> dict[str, Any]:
        return {
            "estimate": True,
            "warning": self.WARNING,
            "cpu_model": self.cpu_model,
            "tdp_w": self.tdp_w,
            "cores": self.cores,
            "per_core_w": self.per_core_w,
            "per_core_w_source": self.per_core_w_source,
            "pid": self.pid,
            "process_tree_source": self._tree.source,
        }
