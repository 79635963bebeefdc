"""The run directory: the one place that knows its files, writes them durably and reads them back.

A complete run lives in ``runs_dir/<run_id>/`` as ``run.json`` (spec, meter, hardware, energy
totals), ``queries.parquet`` (one row per query × sample, columns :data:`QUERY_COLUMNS`),
``power.parquet`` (the sampled trace), ``spec.json``, ``manifest.json`` (sha256 and size of each of
those four) and, for SGLang runs, ``server.log`` (a log, outside the manifest: a shared server may
still be writing it). Every read checks the file against the manifest, and a run is called complete
only when all four match (:func:`damage`). Runs sealed before manifests existed are trusted when
their files parse.

While it runs, each checkpoint is one *segment*: a folder ``<run_id>.partial/segments/<key>/``
holding the segment's queries, power trace and energy window together. It is written as
``<key>.tmp/`` (each file fsynced, with its own manifest), then renamed into place and the parent
fsynced, so a kill leaves either the whole segment or a ``.tmp`` folder that the next reader removes.
The key is content, not a count: the position of the segment's first request in the run's request
order (:func:`segment_key`), so no segment can overwrite another. :func:`seal` writes the run's
files into the partial folder, publishes it as the complete run by one rename, then drops the segments.

One process at a time writes a run: :func:`run_lock` is an advisory lock (``fcntl.flock``) on
``runs_dir/<run_id>.lock``, held for the run's life, whose file names the holder (host, pid, start).

>>> segment_key(42)
'0000042'
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import shutil
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import pandas as pd

from . import hardware

if TYPE_CHECKING:
    from .spec import RunSpec

RUN_JSON, QUERIES_PARQUET, POWER_PARQUET = "run.json", "queries.parquet", "power.parquet"
SPEC_JSON, SERVER_LOG, MANIFEST, WINDOW_JSON = "spec.json", "server.log", "manifest.json", "window.json"
SEALED = (RUN_JSON, QUERIES_PARQUET, POWER_PARQUET, SPEC_JSON)  # what a complete run's manifest covers
DAMAGED = ".damaged"  # runs_dir/.damaged/: runs set aside
OTHER_HARDWARE = ".other-hardware"  # runs_dir/.other-hardware/: another machine's runs

# Where the writer can be killed (TTC_KILL_AT=<point>[:<n>], a test hook): after each step of a
# segment's write and of sealing.
KILL_POINTS = (
    "segment-queries",
    "segment-power",
    "segment-window",
    "segment-manifest",
    "segment-renamed",
    "seal-files",
    "seal-manifest",
    "seal-renamed",
)

QUERY_COLUMNS = [
    "run_id",
    "repetition",
    "query_id",
    "sample",
    "benchmark",
    "category",
    "difficulty",
    "subset",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "finish_reason",
    "text",
    "truncated",
    "answer",
    "answer_class",
    "chosen",
    "follow_up",
    "gold",
    "correct",
    "score",
    "t_start",
    "t_end",
    "segment",
    "energy_j",
    "net_energy_j",
    "meter",
    "t_first_token",
    "prefill_energy_j",
    "decode_energy_j",
    "logprob",
]


class DamagedRun(ValueError):
    """A stored file does not match its manifest or does not parse."""

    def __init__(self, run: Path, name: str, why: str):
        self.run, self.name, self.why = Path(run), name, why
        super().__init__(
            f"{self.run / name}: {why}; the run is damaged: delete {self.run} and `ttc run` measures it again"
        )


# --- complete runs -------------------------------------------------------------------------


def run_dir(spec: RunSpec, runs_dir: str | os.PathLike) -> Path:
    return Path(runs_dir) / spec.run_id


def is_complete(spec: RunSpec, runs_dir: str | os.PathLike) -> bool:
    """Sealed, with every file matching its manifest."""
    d = run_dir(spec, runs_dir)
    return (d / RUN_JSON).exists() and damage(d) is None


def status(spec: RunSpec, runs_dir: str | os.PathLike) -> str:
    """``cached``, ``damaged`` (sealed, a file fails its manifest), ``other hardware`` (measured on
    another machine: measured again here), ``running`` (another process holds its lock) or ``to run``."""
    d = run_dir(spec, runs_dir)
    if (d / RUN_JSON).exists():
        if damage(d) is not None:
            return "damaged"
        return "cached" if measured_on(d) == hardware.this_machine() else "other hardware"
    return "running" if run_lock(runs_dir, spec.run_id).held_elsewhere() else "to run"


def damage(run: Path) -> str | None:
    """Why the complete run ``run`` cannot be trusted (the first bad file, in one line), or None.

    A run with a manifest is checked file by file (size, sha256); one sealed before manifests is
    trusted when its files parse (a torn parquet file has no footer).
    """
    run = Path(run)
    if not (run / MANIFEST).exists():
        for name, parse in (
            (RUN_JSON, json.loads),
            (QUERIES_PARQUET, _parquet_footer),
            (POWER_PARQUET, _parquet_footer),
        ):
            try:
                _load(run, name, parse, None)
            except (DamagedRun, OSError) as e:
                return f"{name}: {getattr(e, 'why', e)}"
        return None
    try:
        files = _manifest(run)
    except DamagedRun as e:
        return f"{MANIFEST}: {e.why}"
    for name in SEALED:
        if name not in files:
            return f"{name}: not in {MANIFEST}"
        try:
            _verified_bytes(run, name, files)
        except (DamagedRun, OSError) as e:
            return f"{name}: {getattr(e, 'why', e)}"
    return None


def measured_on(run: Path) -> str:
    """The hardware a complete run was measured on (:func:`ttclib.hardware.fingerprint`)."""
    return hardware.fingerprint(read_info(run).get("hardware") or {})


def set_aside(run: Path, folder: str = DAMAGED) -> Path:
    """Move a run to ``runs_dir/<folder>/`` (kept for inspection, out of every listing)."""
    dest = run.parent / folder / f"{run.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    dest.parent.mkdir(exist_ok=True)
    os.rename(run, dest)
    _fsync_dir(run.parent)
    return dest


def shared_server_log(runs_dir: str | os.PathLike, first: RunSpec) -> Path:
    """The log of a server that runs share, named after its start and its first run."""
    return Path(runs_dir) / "servers" / f"{time.strftime('%Y%m%d-%H%M%S')}-{first.run_id}.log"


def completed_runs(runs_dir: str | os.PathLike) -> list[Path]:
    """The complete run directories of ``runs_dir``, by run id (not partial or set-aside ones)."""
    return [f.parent for f in sorted(Path(runs_dir).glob(f"*/{RUN_JSON}")) if "." not in f.parent.name]


def read_info(run: Path) -> dict:
    return _load(run, RUN_JSON, json.loads)


def read_queries(run: Path, columns: list[str] | None = None) -> pd.DataFrame:
    return _load(run, QUERIES_PARQUET, lambda b: pd.read_parquet(io.BytesIO(b), columns=columns))


def read_power(run: Path) -> pd.DataFrame:
    return _load(run, POWER_PARQUET, lambda b: pd.read_parquet(io.BytesIO(b)))


def seal(partial: Path, final: Path, queries: pd.DataFrame, power: pd.DataFrame, info: dict) -> None:
    """Write the run's files and their manifest into ``partial``, publish it as ``final`` in one
    rename, then drop the segments (their content is in the run's files now)."""
    files = {
        QUERIES_PARQUET: _parquet_bytes(queries),
        POWER_PARQUET: _parquet_bytes(power),
        RUN_JSON: _json_bytes(info),
        SPEC_JSON: (partial / SPEC_JSON).read_bytes(),
    }
    for name in (QUERIES_PARQUET, POWER_PARQUET, RUN_JSON):
        _write_synced(partial / name, files[name])
    _reached("seal-files")
    _write_synced(partial / MANIFEST, _json_bytes({"files": {n: _digest(b) for n, b in files.items()}}))
    _fsync_dir(partial)
    _reached("seal-manifest")
    os.rename(partial, final)
    _fsync_dir(final.parent)
    _reached("seal-renamed")
    drop_segments(final)


def drop_segments(run: Path) -> None:
    """Remove a sealed run's leftover segments (a kill between :func:`seal`'s rename and clean-up)."""
    shutil.rmtree(segments_dir(run), ignore_errors=True)


# --- a run in progress ---------------------------------------------------------------------


@dataclass
class Segment:
    """One checkpoint: the queries it finished, the power trace and the energy window it spans."""

    key: str
    queries: pd.DataFrame
    power: pd.DataFrame
    window: dict


def partial_dir(spec: RunSpec, runs_dir: str | os.PathLike) -> Path:
    """Where ``spec``'s run is checkpointed until it is complete."""
    final = run_dir(spec, runs_dir)
    return final.with_name(final.name + ".partial")


def segments_dir(partial: Path) -> Path:
    return partial / "segments"


def segment_key(first_request: int) -> str:
    """A segment's name: the position of its first request in the run's request order."""
    return f"{first_request:07d}"


def write_segment(partial: Path, seg: Segment) -> None:
    """Write ``seg`` as one unit: a ``.tmp`` folder of fsynced files renamed into place."""
    parent = segments_dir(partial)
    final, tmp = parent / seg.key, parent / f"{seg.key}.tmp"
    if final.exists():
        raise FileExistsError(f"{final}: segment already written (its requests were measured twice)")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files = {
        QUERIES_PARQUET: _parquet_bytes(seg.queries),
        POWER_PARQUET: _parquet_bytes(seg.power),
        WINDOW_JSON: _json_bytes(seg.window),
    }
    for name, point in (
        (QUERIES_PARQUET, "segment-queries"),
        (POWER_PARQUET, "segment-power"),
        (WINDOW_JSON, "segment-window"),
    ):
        _write_synced(tmp / name, files[name])
        _reached(point)
    _write_synced(tmp / MANIFEST, _json_bytes({"files": {n: _digest(b) for n, b in files.items()}}))
    _fsync_dir(tmp)
    _reached("segment-manifest")
    os.rename(tmp, final)
    _reached("segment-renamed")
    _fsync_dir(parent)


def read_segments(partial: Path) -> list[Segment]:
    """The sound segments of a run in progress, in time order.

    Unfinished writes (``.tmp``) are removed; a segment whose files do not match its manifest (torn,
    truncated, emptied) is removed with one line on stderr, so its requests are measured again.
    Call only while holding the run's lock.
    """
    parent = segments_dir(partial)
    segments = []
    for d in sorted(parent.iterdir()) if parent.is_dir() else []:
        if d.name.endswith(".tmp") or not d.is_dir():
            shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink()
            continue
        try:
            segments.append(_read_segment(d))
        except (DamagedRun, OSError) as e:
            print(
                f"{partial.name}: segment {d.name} is damaged ({getattr(e, 'name', '?')}: "
                f"{getattr(e, 'why', e)}); dropped, its queries are measured again",
                file=sys.stderr,
                flush=True,
            )
            shutil.rmtree(d)
    if segments:
        _fsync_dir(parent)
    return sorted(segments, key=lambda s: s.window["start_s"])


def _read_segment(d: Path) -> Segment:
    files = _manifest(d)
    for name in (QUERIES_PARQUET, POWER_PARQUET, WINDOW_JSON):
        if name not in files:
            raise DamagedRun(d, name, f"not in {MANIFEST}")
    parquet = lambda b: pd.read_parquet(io.BytesIO(b))  # noqa: E731
    return Segment(
        d.name,
        _load(d, QUERIES_PARQUET, parquet, files),
        _load(d, POWER_PARQUET, parquet, files),
        _load(d, WINDOW_JSON, json.loads, files),
    )


# --- the lock ------------------------------------------------------------------------------

HEARTBEAT_S = 30.0  # how often a holder rewrites its record's heartbeat
LEASE_S = 600.0  # a record whose heartbeat is older than this, of a job the scheduler no longer lists, is stale


class RunLock:
    """Who may write a run: an exclusive ``flock`` on ``runs_dir/<run_id>.lock`` (released by the
    kernel when the holder dies, so a kill never leaves it held). The file records the holder's host,
    pid, start, SLURM job (when in one: :func:`ttclib.cluster.job_ids`) and a heartbeat rewritten
    every :data:`HEARTBEAT_S` while held. A record of a dead process on this host is stale, and says so.

    A node that fails can leave a lock held on a shared filesystem whose server has not yet noticed. A
    lock is then **broken** — the file renamed aside, a fresh one taken — only when its holder ran in a
    SLURM job that the scheduler no longer lists and its heartbeat is older than :data:`LEASE_S`: both
    together mean the holder is gone, not slow. Re-entrant within a process (``run_plan`` holds it while
    ``execute`` runs). The file is otherwise never deleted: deleting a lock file lets two processes
    hold locks on two different files of one name.
    """

    def __init__(self, path: Path):
        self.path, self.depth = path, 0
        self._fd: int | None = None  # the locked file, while held
        self._beat: _Heartbeat | None = None  # while held

    def acquire(self, wait: bool = False) -> bool:
        if self.depth:
            self.depth += 1
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = self._flock(wait=False)
        if fd is None and self.stale():
            self.path.replace(self.path.with_name(f"{self.path.name}.broken-{int(time.time())}"))
            fd = self._flock(wait=False)
        if fd is None and wait:
            fd = self._flock(wait=True)
        if fd is None:
            return False
        from .cluster import job_ids

        self._record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            "argv": sys.argv,
            "job": job_ids(),
        }
        self._fd, self.depth = fd, 1
        self._write(time.time())
        self._beat = _Heartbeat(self)
        return True

    def _flock(self, wait: bool) -> int | None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BaseException as e:  # busy, or Ctrl-C while waiting
            os.close(fd)
            if isinstance(e, OSError) and e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        return fd

    def _write(self, heartbeat: float) -> None:
        record = _json_bytes({**self._record, "heartbeat": heartbeat})
        fd = self._fd
        assert fd is not None  # written only while held
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        os.fsync(fd)

    def release(self) -> None:
        if not self.depth:
            return
        self.depth -= 1
        if self.depth == 0:
            assert self._beat is not None and self._fd is not None  # set together by acquire
            self._beat.stop()
            self._beat = None
            os.ftruncate(self._fd, 0)  # an empty file: released cleanly
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def held_elsewhere(self) -> bool:
        """Whether another process holds the lock now (tested with a shared lock, writing nothing)."""
        if self.depth:
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True
            raise
        finally:
            os.close(fd)

    def record(self) -> dict:
        """The holder's record as the file has it ({} when empty or unreadable)."""
        try:
            return json.loads(self.path.read_bytes() or b"{}")
        except (OSError, ValueError):
            return {}

    def stale(self, now: float | None = None, jobs: dict | None = None) -> bool:
        """Whether the record is of a holder that is gone: its SLURM job is not among ``jobs`` (default: what
        ``squeue`` lists now; never stale where squeue cannot be asked) and its heartbeat is older than
        :data:`LEASE_S`."""
        h = self.record()
        job = (h.get("job") or {}).get("job_id")
        if not job or (now or time.time()) - float(h.get("heartbeat", h.get("started", 0))) < LEASE_S:
            return False
        if jobs is None:
            from .cluster import active_jobs

            jobs = active_jobs()
            if jobs is None:
                return False
        task = (h.get("job") or {}).get("array_job_id"), (h.get("job") or {}).get("array_task_id")
        return job not in jobs and (not all(task) or f"{task[0]}_{task[1]}" not in jobs)

    def holder(self) -> str:
        """Who holds the lock, in words (for a message)."""
        h = self.record()
        if not h:
            return "another process"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.get("started", 0)))
        job = (h.get("job") or {}).get("job_id")
        words = f"pid {h.get('pid')} on {h.get('host')}{f' (SLURM job {job})' if job else ''} since {since}"
        if h.get("host") == socket.gethostname() and not _alive(h.get("pid")):
            words += (
                " (that process is dead: the lock is held by a process it left behind, e.g. a server; "
                "stop it to free the run)"
            )
        return words


class _Heartbeat:
    """Rewrites a held lock's heartbeat every :data:`HEARTBEAT_S` from a daemon thread."""

    def __init__(self, lock: RunLock):
        import threading

        self.lock, self.done = lock, threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat {lock.path.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(HEARTBEAT_S):
            try:
                if self.lock._fd is not None:
                    self.lock._write(time.time())
            except OSError:
                pass  # a full disk must not kill the run; the record stays as it was

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)


_LOCKS: dict[Path, RunLock] = {}


def run_lock(runs_dir: str | os.PathLike, run_id: str) -> RunLock:
    """The lock of run ``run_id`` (one object per run and process, so that holding is re-entrant)."""
    path = (Path(runs_dir) / f"{run_id}.lock").absolute()
    return _LOCKS.setdefault(path, RunLock(path))


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True
    return True


# --- durable writes and checked reads -----------------------------------------------------------


def write_json(path: Path, obj: Any) -> None:
    """Write ``path`` atomically and durably (a temporary file, fsynced, renamed into place)."""
    tmp = path.with_name(path.name + ".tmp")
    _write_synced(tmp, _json_bytes(obj))
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, default=str).encode()


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    return df.to_parquet(None, index=False)


def _parquet_footer(data: bytes):
    import pyarrow.parquet as pq

    return pq.read_metadata(io.BytesIO(data))


def _digest(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@overload
def _manifest(folder: Path, required: Literal[True] = ...) -> dict: ...
@overload
def _manifest(folder: Path, required: bool) -> dict | None: ...
def _manifest(folder: Path, required: bool = True) -> dict | None:
    """The manifest's files (name -> sha256, size); None when there is none and none is ``required``
    (a run sealed before manifests)."""
    path = folder / MANIFEST
    if not required and not path.exists():
        return None
    try:
        files = json.loads(path.read_bytes())["files"]
        if not all(isinstance(v, dict) and {"sha256", "size"} <= set(v) for v in files.values()):
            raise ValueError("an entry lacks sha256 or size")
        return files
    except FileNotFoundError:
        raise DamagedRun(folder, MANIFEST, "missing") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise DamagedRun(folder, MANIFEST, f"unreadable ({type(e).__name__})") from None


def _verified_bytes(folder: Path, name: str, files: dict | None) -> bytes:
    try:
        data = (folder / name).read_bytes()
    except FileNotFoundError:
        raise DamagedRun(folder, name, "missing") from None
    if files is not None and name in files:
        want = files[name]
        if len(data) != want["size"]:
            raise DamagedRun(folder, name, f"{len(data)} bytes, {want['size']} when written")
        if hashlib.sha256(data).hexdigest() != want["sha256"]:
            raise DamagedRun(folder, name, "sha256 differs from when it was written")
    return data


def _load(folder: Path, name: str, parse: Callable[[bytes], Any], files: dict | None | Literal[True] = True) -> Any:
    """``folder/name`` checked against the folder's manifest (``files``; read when True), then parsed."""
    files = _manifest(folder, required=False) if files is True else files
    data = _verified_bytes(folder, name, files)
    try:
        return parse(data)
    except Exception as e:  # noqa: BLE001 - pyarrow and json raise many kinds
        raise DamagedRun(folder, name, f"does not parse ({type(e).__name__})") from None


_REACHED: Counter = Counter()


def _reached(point: str) -> None:
    """Test hook: ``TTC_KILL_AT=<point>[:<n>]`` ends the process (``os._exit``, no clean-up, like
    SIGKILL) the n-th time (default first) the writer reaches ``point`` of :data:`KILL_POINTS`."""
    target = os.environ.get("TTC_KILL_AT")
    if not target:
        return
    name, _, nth = target.partition(":")
    _REACHED[point] += 1
    if name == point and _REACHED[point] == int(nth or 1):
        os._exit(137)
