"""What machine a run measured: CPU, memory, GPUs, library versions — recorded in run.json."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import sys

from .energy import cpu_model

LIBRARIES = (
    "ttc-energy",
    "torch",
    "transformers",
    "sglang",
    "nvidia-ml-py",
    "numpy",
    "pandas",
    "pyarrow",
    "statsmodels",
    "papermill",
    "pydantic",
)


def memory_gib() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        return None


def gpus() -> list[dict]:
    """GPUs NVML sees (empty when there is no NVIDIA driver)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return []
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            out.append(
                {
                    "index": i,
                    "name": name.decode() if isinstance(name, bytes) else name,
                    "memory_gib": round(pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**30, 1),
                    "power_limit_w": pynvml.nvmlDeviceGetPowerManagementLimit(h) / 1000,
                }
            )
        return out
    finally:
        pynvml.nvmlShutdown()


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux reports them (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# CPU instructions that make bf16 matrix products fast (oneDNN uses them); without one of
# them torch emulates bf16 on the CPU, slower than fp32.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def bf16_support(device: str) -> str | None:
    """What would run bf16 natively on ``device``: a CPU flag of :data:`BF16_FLAGS`, ``cuda``, or None."""
    if device.startswith("cuda"):
        import torch

        return "cuda" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else None
    flags = cpu_flags()
    return next((f for f in BF16_FLAGS if f in flags), None)


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto``: bfloat16 where the device computes it natively, else float32; other values unchanged.

    >>> resolve_dtype("float32", "cpu")
    'float32'
    """
    if dtype != "auto":
        return dtype
    return "bfloat16" if bf16_support(device) else "float32"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; a container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def describe() -> dict:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "cpu_bf16": bf16_support("cpu"),
        "memory_gib": memory_gib(),
        "gpus": gpus(),
        "python": sys.version.split()[0],
    }


def fingerprint(info: dict) -> str:
    """What makes two machines' measurements interchangeable, from a run.json's ``hardware``: the CPU
    model and the CPUs a run could use, and the GPUs' models. Not the hostname: identical cluster
    nodes share a run cache; another CPU or GPU model never does.

    >>> fingerprint({"cpu": "AMD EPYC", "usable_cpus": 2, "gpus": [], "hostname": "vm"})
    'AMD EPYC, 2 CPUs'
    >>> fingerprint({"cpu": "Intel Xeon", "usable_cpus": 16, "gpus": [{"name": "NVIDIA H200"}] * 2})
    'Intel Xeon, 16 CPUs, 2x NVIDIA H200'
    """
    gpus = [g.get("name", "?") for g in info.get("gpus") or []]
    parts = [str(info.get("cpu")), f"{info.get('usable_cpus') or info.get('cpu_count')} CPUs"]
    parts += [f"{gpus.count(n)}x {n}" for n in sorted(set(gpus))]
    return ", ".join(parts)


@functools.cache
def this_machine() -> str:
    """:func:`fingerprint` of the machine this process runs on (computed once)."""
    return fingerprint(describe())


def software_versions() -> dict:
    versions: dict[str, str | None] = {}  # None: not installed
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions
