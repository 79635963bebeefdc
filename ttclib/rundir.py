"""The run directory: the one place that knows its files, writes them atomically and reads them back.

A complete run lives in ``runs_dir/<run_id>/`` as ``run.json`` (spec, meter, hardware, energy
totals), ``queries.parquet`` (one row per query × sample, columns :data:`QUERY_COLUMNS`),
``power.parquet`` (the sampled trace), ``spec.json`` and, for SGLang runs, ``server.log``. While it
runs, each finished batch is a segment under ``<run_id>.partial/segments/``: its queries
(``00000.parquet``), its power trace (``00000.power.parquet``) and its energy window
(``00000.json``); :func:`seal` turns the partial directory into the complete one by one atomic rename.

>>> segment_file(Path("abc.partial"), 3, SEGMENT_POWER).as_posix()
'abc.partial/segments/00003.power.parquet'
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from .spec import RunSpec

RUN_JSON, QUERIES_PARQUET, POWER_PARQUET = "run.json", "queries.parquet", "power.parquet"
SPEC_JSON, SERVER_LOG = "spec.json", "server.log"
SEGMENT_QUERIES, SEGMENT_POWER, SEGMENT_WINDOW = ".parquet", ".power.parquet", ".json"   # after the number

QUERY_COLUMNS = ["run_id", "repetition", "query_id", "sample", "benchmark", "category", "difficulty", "subset",
                 "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "finish_reason",
                 "text", "truncated", "answer", "answer_class", "gold", "correct", "score", "t_start", "t_end",
                 "segment", "energy_j", "net_energy_j", "meter"]


# --- complete runs -------------------------------------------------------------------------

def run_dir(spec: RunSpec, runs_dir: str | os.PathLike) -> Path:
    return Path(runs_dir) / spec.run_id


def is_complete(spec: RunSpec, runs_dir: str | os.PathLike) -> bool:
    return (run_dir(spec, runs_dir) / RUN_JSON).exists()


def shared_server_log(runs_dir: str | os.PathLike, first: RunSpec) -> Path:
    """The log of a server that runs share, named after its start and its first run."""
    return Path(runs_dir) / "servers" / f"{time.strftime('%Y%m%d-%H%M%S')}-{first.run_id}.log"


def completed_runs(runs_dir: str | os.PathLike) -> list[Path]:
    """The complete run directories of ``runs_dir``, by run id."""
    return [f.parent for f in sorted(Path(runs_dir).glob(f"*/{RUN_JSON}"))]


def read_info(run: Path) -> dict:
    return json.loads((run / RUN_JSON).read_text())


def read_queries(run: Path, columns: list[str] | None = None) -> pd.DataFrame:
    return pd.read_parquet(run / QUERIES_PARQUET, columns=columns)


def read_power(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / POWER_PARQUET)


# --- a run in progress ---------------------------------------------------------------------

def partial_dir(spec: RunSpec, runs_dir: str | os.PathLike) -> Path:
    """Where ``spec``'s run is checkpointed until it is complete."""
    final = run_dir(spec, runs_dir)
    return final.with_name(final.name + ".partial")


def segments_dir(partial: Path) -> Path:
    return partial / "segments"


def segment_file(partial: Path, segment: int, kind: str) -> Path:
    """Segment ``segment``'s file of ``kind``: ``SEGMENT_QUERIES``, ``SEGMENT_POWER`` or ``SEGMENT_WINDOW``."""
    return segments_dir(partial) / f"{segment:05d}{kind}"


def segment_files(partial: Path, kind: str = SEGMENT_QUERIES) -> list[Path]:
    """Every segment's file of ``kind``, in segment order."""
    return sorted(p for p in segments_dir(partial).glob(f"*{kind}") if p.name[p.name.index("."):] == kind)


def read_segments(partial: Path, kind: str, columns: list[str] | None = None) -> pd.DataFrame:
    """The segments' queries or power traces as one table (empty when there are none)."""
    files = segment_files(partial, kind)
    return (pd.concat([pd.read_parquet(f, columns=columns) for f in files], ignore_index=True) if files
            else pd.DataFrame())


def read_windows(partial: Path) -> list[dict]:
    """The segments' energy windows, in segment order."""
    return [json.loads(f.read_text()) for f in segment_files(partial, SEGMENT_WINDOW)]


def seal(partial: Path, final: Path) -> None:
    """Drop the segments (their content is in the run's files now) and publish the run in one rename."""
    shutil.rmtree(segments_dir(partial))
    os.replace(partial, final)


# --- atomic writes -------------------------------------------------------------------------

def write_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)
