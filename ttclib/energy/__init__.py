"""Measure the energy of a block of code: GPU (NVML), CPU package (RAPL), or an estimate.

Three meters share one API, modelled on Zeus's ``ZeusMonitor``: open a named window with
``begin_window``, close it with ``end_window`` (or close and reopen it at one reading with
``checkpoint``), and get a :class:`~ttclib.energy.Measurement` back. Windows may
overlap and nest.

- ``nvml`` — :class:`~ttclib.energy.NvmlMeter` (``nvml.py``): NVIDIA GPUs, exactly the ones a run uses.
- ``rapl`` — :class:`~ttclib.energy.RaplMeter` (``rapl.py``): CPU package and DRAM counters.
- ``estimate`` — :class:`~ttclib.energy.EstimateMeter` (``cpu_time.py``): **not a
  measurement**; CPU seconds of this process tree times a per-core power from the CPU's TDP.

The rest of the package: ``measurement.py`` (what a window yields), ``meter.py`` (windows,
checkpoints, idle baseline, sampler, the registry behind
:func:`~ttclib.energy.select_meter`), ``trace.py`` (the power trace) and
``attribution.py`` (a run's windows split over its requests; steady-state J/token).
A new meter is one new module with a ``@register_meter(name, priority)`` class, imported below.

Example:
    >>> import time
    >>> from ttclib.energy import EstimateMeter
    >>> with EstimateMeter(per_core_w=10.0, sample_interval_s=0.05) as meter:
    ...     meter.begin_window("work")
    ...     _ = sum(i * i for i in range(200_000))
    ...     m = meter.end_window("work")
    >>> m.meter, m.method
    ('estimate', 'cpu_time_x_tdp')
    >>> m.total_j >= 0.0
    True
"""

from . import clocks  # noqa: F401  (energy.clocks: GPU clock locks)
from .attribution import (
    PhaseShares,
    SteadyState,
    attribute_energy,
    attribute_phases,
    attribute_windows,
    full_spans,
    steady_state,
)
from .cpu_time import CPU_TDP, DEFAULT_PER_CORE_W, EstimateMeter, cpu_model
from .measurement import COUNTER_ERROR, SHORT_WINDOW, Measurement
from .meter import METERS, IdleBaseline, Meter, available_meters, register_meter, select_meter
from .nvml import NvmlMeter, gpus_for_device
from .rapl import RaplMeter
from .trace import TRACE_COLUMNS, Trace, integrate_power

__all__ = [
    "CPU_TDP",
    "COUNTER_ERROR",
    "DEFAULT_PER_CORE_W",
    "METERS",
    "SHORT_WINDOW",
    "TRACE_COLUMNS",
    "EstimateMeter",
    "IdleBaseline",
    "Measurement",
    "Meter",
    "NvmlMeter",
    "PhaseShares",
    "RaplMeter",
    "SteadyState",
    "Trace",
    "attribute_energy",
    "attribute_phases",
    "attribute_windows",
    "available_meters",
    "cpu_model",
    "full_spans",
    "gpus_for_device",
    "integrate_power",
    "register_meter",
    "select_meter",
    "steady_state",
]
