"""CPU package and DRAM energy from the Linux powercap (RAPL) counters."""

from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .measurement import NAN
from .meter import Meter, register_meter


@dataclass
class _RaplZone:
    device: str
    path: Path
    max_uj: int
    last_uj: int
    acc_uj: int = 0  # accumulated since the meter started, wraparound unfolded

    def read(self) -> float:
        """Unfold wraparound and return joules since the meter started."""
        raw = int((self.path / "energy_uj").read_text())
        delta = raw - self.last_uj
        if delta < 0:  # the counter wrapped at max_energy_range_uj
            delta += self.max_uj
        self.acc_uj += delta
        self.last_uj = raw
        return self.acc_uj / 1e6


@register_meter("rapl", priority=1)
class RaplMeter(Meter):
    """CPU package and DRAM energy from the Linux powercap RAPL counters.

    Reads ``<root>/intel-rapl:N/energy_uj`` (device ``package-N``) and its ``dram``
    subzone (device ``dram-N``) wherever readable; AMD CPUs expose the same interface.
    Counter wraparound at ``max_energy_range_uj`` is unfolded; the sampler (started by
    ``begin_window``) keeps reading so that no more than one wrap happens between reads.
    On recent kernels ``energy_uj`` is readable by root only.

    Example:
        ```python
        from ttclib.energy import RaplMeter
        with RaplMeter() as meter:
            meter.begin_window("x")
            work()
            print(meter.end_window("x").energy_j)   # {'package-0': ..., 'dram-0': ...}
        ```
    """

    counter_method = "rapl_counter"

    def __init__(self, root: str | os.PathLike = "/sys/class/powercap", sample_interval_s: float = 0.1) -> None:
        """Find the readable RAPL zones under ``root``.

        Raises:
            RuntimeError: No readable RAPL zone (missing, or permission denied).
        """
        super().__init__(sample_interval_s)
        self.root = Path(root)
        self._zones, self._skipped = self._discover()
        if not self._zones:
            why = "; ".join(self._skipped) or f"no intel-rapl:N zone under {self.root}"
            raise RuntimeError(f"No readable RAPL zone: {why}")
        self.devices = [z.device for z in self._zones]
        self._last_sample: dict[str, tuple[float, float]] = {}

    def _discover(self) -> tuple[list[_RaplZone], list[str]]:
        zones: list[_RaplZone] = []
        skipped: list[str] = []
        if not self.root.is_dir():
            return zones, [f"{self.root} does not exist"]
        pkgs = sorted(
            (p for p in self.root.iterdir() if re.fullmatch(r"intel-rapl:\d+", p.name)),
            key=lambda p: int(p.name.split(":")[1]),
        )
        for pkg in pkgs:
            n = pkg.name.split(":")[1]
            name = _read_text(pkg / "name") or f"package-{n}"
            if not name.startswith("package"):  # e.g. "psys" (platform) would double count
                skipped.append(f"{pkg.name} ({name}) is not a package zone")
                continue
            candidates = [(name, pkg)]
            candidates += [
                (f"dram-{n}", sub)
                for sub in sorted(pkg.glob(f"intel-rapl:{n}:*"))
                if _read_text(sub / "name") == "dram"
            ]
            for dev, path in candidates:
                zone = self._open_zone(dev, path, skipped)
                if zone is not None:
                    zones.append(zone)
        return zones, skipped

    @staticmethod
    def _open_zone(dev: str, path: Path, skipped: list[str]) -> _RaplZone | None:
        try:
            raw = int((path / "energy_uj").read_text())
        except (OSError, ValueError) as err:
            skipped.append(f"{path}/energy_uj unreadable ({type(err).__name__}: {err})")
            return None
        max_uj = _read_text(path / "max_energy_range_uj")
        return _RaplZone(dev, path, int(max_uj) if max_uj else 2**32, raw)

    def _needs_sampler(self) -> bool:
        return True  # keep reading so a wraparound is never missed

    def _read_energy(self) -> dict[str, float | None]:
        with self._lock:
            return {z.device: z.read() for z in self._zones}

    def _sample(self) -> list[tuple]:
        t, rows = time.time(), []
        for dev, e in self._read_energy().items():
            assert e is not None  # every RAPL zone has a counter (_RaplZone.read returns a float)
            t_prev, e_prev = self._last_sample.get(dev, (NAN, NAN))
            power = (e - e_prev) / (t - t_prev) if t > t_prev else NAN
            self._last_sample[dev] = (t, e)
            rows.append((dev, power, e, NAN, NAN, NAN, NAN, NAN, 0))
        return rows

    def _describe_devices(self) -> list[dict[str, Any]]:
        return [
            {"name": z.device, "index": i, "path": str(z.path), "max_energy_range_uj": z.max_uj}
            for i, z in enumerate(self._zones)
        ]

    def _describe_extra(self) -> dict[str, Any]:
        return {"root": str(self.root), "cpu_model": cpu_model(), "skipped": self._skipped}


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` 'model name', else ``platform.processor()``)."""
    text = _read_text(Path("/proc/cpuinfo")) or ""
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return m.group(1).strip() if m else (platform.processor() or "unknown")
