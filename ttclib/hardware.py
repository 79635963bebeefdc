"""What machine a run measured: CPU, memory, GPUs, library versions — recorded in run.json."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

from .energy import cpu_model

LIBRARIES = ("ttc-energy", "torch", "transformers", "sglang", "nvidia-ml-py", "numpy", "pandas",
             "pyarrow", "statsmodels", "papermill", "pydantic")


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
            out.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                        "memory_gib": round(pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**30, 1),
                        "power_limit_w": pynvml.nvmlDeviceGetPowerManagementLimit(h) / 1000})
        return out
    finally:
        pynvml.nvmlShutdown()


def describe() -> dict:
    return {"hostname": platform.node(), "platform": platform.platform(), "cpu": cpu_model(),
            "cpu_count": os.cpu_count(), "memory_gib": memory_gib(), "gpus": gpus(),
            "python": sys.version.split()[0]}


def software_versions() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions
