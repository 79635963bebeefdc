"""Params files: a grid of run specs per profile, validated with errors that name file and key.

A params file (``params/<section>.yaml``) declares a grid per profile::

    profiles:
      default:
        runs_dir: ../outputs/runs          # relative to the params file
        defaults: {benchmark: arithmetic, max_new_tokens: 16, ...}
        grid:                               # cartesian product; a mapping value sets several keys
          model: [smollm2-135m-instruct, gemma3-270m]
          strategy: [{strategy: base}, {strategy: cot, max_new_tokens: 96}]

A profile may instead reuse another file's profile, runs and figures folders included, so that
sections sharing a study measure it once::

    profiles:
      default: {use: 00_overview.yaml}                      # its ``default`` profile
      paper: {use: paper.yaml, profile: length_sweep}       # path relative to this file

Each grid point is a :class:`~ttclib.spec.RunSpec`; its run lives in ``runs_dir/<run_id>/``
(see :mod:`ttclib.rundir`).

Loading validates the whole file, every profile (and every profile of the files they use), not
only the one asked for: a file with an error anywhere is wrong. Every key of ``defaults`` is
checked even where the grid overrides it, and a ``data:`` path is checked against the benchmark's
layout and its first record. Whatever a file holds, :func:`load_params` returns or raises
:class:`ParamsError` naming the file and the key, within a second and before anything loads:
files over :data:`MAX_BYTES`, not UTF-8, with duplicate keys, nested deeper than
:data:`MAX_DEPTH`, with more than :data:`MAX_NODES` YAML nodes or aliases that expand beyond
:data:`MAX_VALUES`, and grids of more than :data:`MAX_RUNS` runs are refused before they expand.

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as folder:
...     p = pathlib.Path(folder) / "x.yaml"
...     _ = p.write_text("profiles:\\n  default:\\n    defaults: {model: random:tiny-qwen2, strategy: base, "
...                      "idle_s: .inf}\\n")
...     try:
...         load_params(p)
...     except ParamsError as e:
...         print(str(e).replace(folder, "params"))
params/x.yaml: profiles.default.defaults.idle_s: Input should be a finite number
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import benchmarks
from .cluster import Cluster
from .spec import PathStr, RunSpec

MAX_BYTES = 1 << 20  # the shipped files are under 5 KB
MAX_NODES = 50_000  # YAML nodes as written (parsing costs ~10 µs each)
MAX_VALUES = 100_000  # values once aliases are expanded (a "billion laughs" file stops here)
MAX_DEPTH = 32  # nesting; the shipped files nest 7 deep
MAX_RUNS = 10_000  # runs of one load: every profile of the file and of the files it uses
MAX_ERRORS = 5  # validation errors shown, one line each

# `defaults` are checked alone, as a partial spec: these stand in for the required keys they may leave to the grid.
PARTIAL = {"model": "random:tiny-qwen2", "strategy": "base"}
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


class ParamsError(ValueError):
    """A params file is wrong; the message names the file and the key."""


class Profile(BaseModel):
    """A grid of its own, or ``use:`` another params file's profile (``profile:``, default ``default``)."""

    model_config = ConfigDict(extra="forbid")
    use: PathStr | None = Field(None, description="params file (relative to this one) whose profile this is")
    profile: str | None = Field(None, description="the profile of `use` (default: default)")
    runs_dir: PathStr = "../outputs/runs"
    figures_dir: PathStr = "../outputs/figures"
    defaults: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    notebook: dict[str, str | int | float | bool | None] = Field(
        {},
        description="parameters this profile sets in the section's notebook (make reproduce passes them to "
        "papermill), e.g. the models the overview compares",
    )
    cluster: Cluster | None = Field(
        None, description="SLURM resources of each job for `ttc run --executor slurm` (ttclib.cluster)"
    )

    OWN: ClassVar[tuple[str, ...]] = ("runs_dir", "figures_dir", "defaults", "grid")

    @model_validator(mode="after")
    def _use_or_own_grid(self) -> Profile:
        own = [k for k in self.OWN if k in self.model_fields_set]
        if self.use is not None and own:
            raise ValueError(
                f"`use` takes the runs, runs_dir and figures_dir of another file's profile; it cannot "
                f"be combined with {', '.join(own)}: keep either `use` (+ `profile`) or this "
                f"profile's own runs_dir/figures_dir/defaults/grid"
            )
        if self.use is None and self.profile is not None:
            raise ValueError("`profile` names a profile of the file given by `use`, and there is no `use`")
        return self


class ParamsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = ""
    profiles: dict[str, Profile] = Field(min_length=1)


@dataclass
class Plan:
    """The runs a params file asks for under one profile."""

    path: Path
    profile: str
    specs: list[RunSpec]
    runs_dir: Path
    figures_dir: Path
    title: str = ""
    uses: tuple[Path, str] | None = None  # (file, profile) that defines the grid, when `profile` says `use:`
    notebook: dict = dataclasses.field(default_factory=dict)  # the profile's notebook parameters (`notebook:`)
    cluster: Cluster | None = None  # the profile's `cluster:` section (ttc run --executor slurm)


def load_params(path: str | os.PathLike, profile: str = "default") -> Plan:
    """Validate a params file and expand its grid. Raises :class:`ParamsError` naming file and key.

    A profile that says ``use: other.yaml`` (``profile: name``) is that file's profile: its runs,
    runs_dir and figures_dir (relative to that file); errors there name that file. The file's
    other profiles, and those of the files it uses, are validated too (errors in ``profile``
    first)."""
    session = _Session()
    plan = session.plan(locate(path), profile, chain=())
    session.validate_the_rest()
    return plan


NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def locate(path: str | os.PathLike) -> Path:
    """``path``, or — when it does not exist from here — the same path from the repository's
    notebooks/ folder, so a notebook's default ``../params/NN.yaml`` also works from a kernel
    started at the repository root."""
    p = Path(path)
    if p.is_absolute() or p.exists() or not (NOTEBOOKS / p).exists():
        return p
    return (NOTEBOOKS / p).resolve()


def sibling(params_file: str | os.PathLike, name: str) -> Path:
    """The params file ``name`` in the same folder as ``params_file`` (a section that reads another
    section's runs, e.g. the MMLU router reading the operating curves)."""
    return locate(params_file).parent / name


# --- reading: bounded, before anything is built ----------------------------------------------


def read_yaml(path: Path) -> Any:
    """The YAML of a params file as Python values, every limit of the module docstring checked first."""
    text = _text(path)
    try:
        _check_events(path, text)
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = "; ".join(filter(None, [e.context, e.problem]))
        raise ParamsError(f"{path}: not valid YAML: {at}{what}") from None
    except yaml.reader.ReaderError as e:  # a control character: said with its line, not its offset
        line = text.count("\n", 0, e.position) + 1 if isinstance(e.position, int) else "?"
        char = chr(e.character) if isinstance(e.character, int) and 0 <= e.character < 0x110000 else e.character
        raise ParamsError(f"{path}: not valid YAML: line {line}: character {char!r}: {e.reason}") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {_clip(' '.join(str(e).split()))}") from None
    if root is None:
        return {}
    constructor = _LOADER("")
    try:
        _check_tree(path, root, constructor)
        return constructor.construct_document(root)
    except ParamsError:
        raise
    except (yaml.YAMLError, ValueError, OverflowError) as e:  # a collection's tag: !!python/object, ...
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = e.problem if isinstance(e, yaml.MarkedYAMLError) else str(e)
        raise ParamsError(f"{path}: not valid YAML: {at}{_clip(what or type(e).__name__)}") from None
    finally:
        constructor.dispose()


def _text(path: Path) -> str:
    try:
        if not path.is_file():
            raise ParamsError(f"{path}: " + ("not a regular file" if path.exists() else "params file not found"))
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ParamsError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_BYTES:
        raise ParamsError(f"{path}: over {MAX_BYTES >> 10} KiB: too large for a params file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ParamsError(f"{path}: not UTF-8 text (byte {raw[e.start]:#04x} on line {line})") from None


class _Open:
    """A collection being parsed: the key or index its next child sits at."""

    def __init__(self, mapping: bool):
        self.mapping, self.at_key, self.key, self.index = mapping, True, "?", 0

    def step(self, scalar: str | None) -> None:
        """A child finished (``scalar``: its value when it was a scalar)."""
        if not self.mapping:
            self.index += 1
        elif self.at_key:
            self.key, self.at_key = "?" if scalar is None else scalar, False
        else:
            self.at_key = True

    def name(self) -> str:
        return f"[{self.index}]" if not self.mapping else f".{self.key}" if not self.at_key else ""


def _check_events(path: Path, text: str) -> None:
    """Depth and size from the parser's events, before any tree is built (libyaml's composer
    recurses in C: a deeply nested file would crash the interpreter, not raise)."""
    stack: list[_Open] = []
    values = 0
    for event in yaml.parse(text, Loader=_LOADER):
        values += isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent))
        if values > MAX_NODES:
            raise ParamsError(
                f"{path}: {_where(stack)}: more than {MAX_NODES:,} YAML nodes "
                f"(line {event.start_mark.line + 1}): too large for a params file"
            )
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise ParamsError(
                    f"{path}: {_where(stack)}: nested deeper than {MAX_DEPTH} levels (line {event.start_mark.line + 1})"
                )
            stack.append(_Open(isinstance(event, yaml.MappingStartEvent)))
        elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionEndEvent)):
            if isinstance(event, yaml.CollectionEndEvent):
                stack.pop()
            if stack:
                stack[-1].step(event.value if isinstance(event, yaml.ScalarEvent) else None)


def _where(stack: list[_Open]) -> str:
    return _clip("".join(o.name() for o in stack).lstrip(".") or "(top level)")


def _check_tree(path: Path, root: yaml.Node, constructor: yaml.constructor.SafeConstructor) -> None:
    """Duplicate keys (YAML says a key is unique; PyYAML keeps the last), alias cycles, the size
    and depth of the tree once aliases are expanded (counted without expanding them), and scalars
    that do not construct (an int of 5000 digits, 2024-13-45), each with its key."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height), expanded
    active: set[int] = set()

    def walk(node: yaml.Node, where: str, depth: int) -> tuple[int, int]:
        where = _clip(where)
        if id(node) in done:
            size, height = done[id(node)]
        elif id(node) in active:
            raise ParamsError(f"{path}: {where or '(top level)'}: an alias inside its own anchor (a cycle)")
        elif isinstance(node, yaml.ScalarNode):
            _construct(path, node, where, constructor)
            size, height = done[id(node)] = 1, 0
        else:
            active.add(id(node))
            size, height = 1, 0
            for child, at in _children(path, node, where):
                s, h = walk(child, at, depth + 1)
                size, height = size + s, max(height, h + 1)
                if size > MAX_VALUES:
                    raise ParamsError(
                        f"{path}: {where or '(top level)'}: aliases expand to more than {MAX_VALUES:,} values"
                    )
            active.discard(id(node))
            done[id(node)] = size, height
        if depth + height > MAX_DEPTH:
            raise ParamsError(
                f"{path}: {where or '(top level)'}: nested deeper than {MAX_DEPTH} levels (through aliases)"
            )
        return size, height

    walk(root, "", 0)


def _construct(path: Path, node: yaml.ScalarNode, where: str, constructor) -> None:
    if node.tag == "tag:yaml.org,2002:str":
        return
    try:
        constructor.construct_object(node)
    except (yaml.YAMLError, ValueError, OverflowError) as e:
        what = e.problem if isinstance(e, yaml.MarkedYAMLError) else str(e)
        raise ParamsError(
            f"{path}: {where or '(top level)'}: not a YAML value: {_clip(what or '')} (line {node.start_mark.line + 1})"
        ) from None


def _clip(text: str, n: int = 200) -> str:
    return text if len(text) <= n else text[:n] + "..."


def _children(path: Path, node: yaml.Node, where: str):
    if isinstance(node, yaml.SequenceNode):
        return [(child, f"{where}[{i}]") for i, child in enumerate(node.value)]
    if not isinstance(node, yaml.MappingNode):
        return []
    children: list[tuple[yaml.Node, str]] = []
    seen: dict[str, int] = {}  # key -> line
    for key, value in node.value:
        if key.tag == _MERGE:  # `<<: *defaults` then overriding a key is not a duplicate
            children.append((value, where))
            continue
        name = key.value if isinstance(key, yaml.ScalarNode) else "?"
        at = f"{where}.{name}" if where else str(name)
        if isinstance(key, yaml.ScalarNode):
            if name in seen:
                raise ParamsError(
                    f"{path}: {at}: duplicate key (lines {seen[name]} and "
                    f"{key.start_mark.line + 1}); YAML keeps only one"
                )
            seen[name] = key.start_mark.line + 1
        children += [(key, at), (value, at)]
    return children


# --- validating and expanding -----------------------------------------------------------------


class _Session:
    """One :func:`load_params`: every file read once, every (file, profile) expanded once."""

    def __init__(self) -> None:
        self.files: dict[Path, tuple[Path, ParamsFile]] = {}  # resolved -> (as first named, contents)
        self.plans: dict[tuple[Path, str], Plan] = {}
        self.data: dict[tuple[str, Path], str | None] = {}  # (benchmark, data) -> what is wrong
        self.runs = 0

    def read(self, path: Path) -> ParamsFile:
        key = _resolved(path)
        if key not in self.files:
            raw = read_yaml(path)
            try:
                self.files[key] = path, ParamsFile.model_validate(raw)
            except ValidationError as e:
                raise ParamsError(_format_errors(path, e, _dotted)) from None
        return self.files[key][1]

    def validate_the_rest(self) -> None:
        """Every profile of every file read, until no ``use:`` brings in another file."""
        while pending := [
            (path, name)
            for key, (path, params) in list(self.files.items())
            for name in params.profiles
            if (key, name) not in self.plans
        ]:
            for path, name in pending:
                self.plan(path, name, chain=())

    def plan(self, path: Path, profile: str, chain: tuple[tuple[Path, str], ...], used_by: str | None = None) -> Plan:
        """``chain``: the (file, profile) pairs that led here through ``use:``, to stop cycles."""
        params = self.read(path)
        if profile not in params.profiles:
            have = ", ".join(params.profiles)
            if used_by:
                raise ParamsError(f"{used_by}.profile: {path} has no profile {profile!r} (have: {have})")
            raise ParamsError(f"{path}: profiles.{profile}: no such profile (have: {have})")
        key = (_resolved(path), profile)
        if key not in self.plans:
            self.plans[key] = self._profile(path, profile, params, chain + (key,))
        return self.plans[key]

    def _profile(self, path: Path, profile: str, params: ParamsFile, chain) -> Plan:
        prof, where = params.profiles[profile], f"profiles.{profile}"
        if prof.use is not None:
            used = self._used(path, where, prof.use, prof.profile or "default", chain)
            return dataclasses.replace(
                used,
                path=path,
                profile=profile,
                title=params.title or used.title,
                uses=used.uses or (used.path, used.profile),
                notebook=dict(prof.notebook),
                cluster=prof.cluster or used.cluster,
            )
        self._check_defaults(path, prof.defaults, where)
        self._count_runs(path, prof.grid, where)
        specs = [self._spec(path, point, prov, where) for point, prov in _expand(prof.defaults, prof.grid, where)]
        return Plan(
            path,
            profile,
            specs,
            self._folder(path, prof.runs_dir, f"{where}.runs_dir"),
            self._folder(path, prof.figures_dir, f"{where}.figures_dir"),
            params.title,
            notebook=dict(prof.notebook),
            cluster=prof.cluster,
        )

    def _used(self, path: Path, where: str, use: str, profile: str, chain) -> Plan:
        from .models import local_path

        target = local_path(use)
        target = target if target.is_absolute() else path.parent / target
        if not _is_file(target):
            raise ParamsError(f"{path}: {where}.use: no such params file: {target}")
        if (_resolved(target), profile) in chain:
            loop = " -> ".join(f"{p.name} [{name}]" for p, name in (*chain, (target, profile)))
            raise ParamsError(f"{path}: {where}.use: profiles use each other in a cycle: {loop}")
        return self.plan(target, profile, chain, used_by=f"{path}: {where}")

    def _check_defaults(self, path: Path, defaults: dict, where: str) -> None:
        """Every default is a RunSpec field with a valid value, even one that every grid point overrides."""
        try:
            partial = RunSpec.model_validate({**PARTIAL, **defaults}, context={"partial": True})
        except ValidationError as e:
            raise ParamsError(_format_errors(path, e, lambda loc: f"{where}.defaults.{_dotted(loc)}")) from None
        data = partial.with_base_dir(path.parent).data_path
        if data is not None and not (_exists(data, Path.is_file) or _exists(data, Path.is_dir)):
            what = "not a regular file or directory" if _exists(data, Path.exists) else "no such file or directory"
            raise ParamsError(f"{path}: {where}.defaults.data: {what}: {data}")

    def _count_runs(self, path: Path, grid: dict[str, list], where: str) -> None:
        """The grid's size from its axes, before expanding it."""
        for axis, values in grid.items():
            if not values:
                raise ParamsError(f"{path}: {where}.grid.{axis}: empty: a grid with an empty axis has no runs")
        n = math.prod(len(v) for v in grid.values())
        if self.runs + n > MAX_RUNS:
            shape = " × ".join(f"{len(v)} {axis}" for axis, v in grid.items())
            others = f", with {self.runs:,} in the other profiles" if self.runs else ""
            raise ParamsError(
                f"{path}: {where}.grid: {shape} = {n:,} runs{others}: more than the "
                f"{MAX_RUNS:,} a params file may ask for"
            )
        self.runs += n

    def _spec(self, path: Path, point: dict, prov: dict, where: str) -> RunSpec:
        try:
            spec = RunSpec.model_validate(point).with_base_dir(path.parent)
        except ValidationError as e:

            def key(loc):
                top = str(loc[0]) if loc else ""
                return prov.get(top, f"{where}.defaults.{top}" if top else where) + _dotted(loc[1:], lead=True)

            raise ParamsError(_format_errors(path, e, key)) from None
        if spec.data is not None and (wrong := self._data_error(spec)):
            raise ParamsError(f"{path}: {prov.get('data', where + '.defaults.data')}: {wrong}")
        return spec

    def _data_error(self, spec: RunSpec) -> str | None:
        """What is wrong with a run's ``data:`` for its benchmark (checked once per benchmark and path)."""
        data = spec.data_path
        assert data is not None  # only runs with a `data:` are checked
        key = (spec.benchmark, data)
        if key not in self.data:
            self.data[key] = None
            try:
                if not _exists(data, Path.exists):
                    self.data[key] = f"no such file or directory: {data}"
                else:
                    benchmarks.get(spec.benchmark).check_data(data)
            except benchmarks.BenchmarkDataError as e:
                self.data[key] = str(e)
            except OSError as e:
                self.data[key] = f"{data}: {e.strerror or e}"
        return self.data[key]

    @staticmethod
    def _folder(path: Path, folder: str, key: str) -> Path:
        from .models import local_path

        resolved = _resolved(path.parent / local_path(folder))
        if _exists(resolved, Path.exists) and not _exists(resolved, Path.is_dir):
            raise ParamsError(f"{path}: {key}: {resolved} exists and is not a directory")
        return resolved


def _expand(defaults: dict, grid: dict[str, list], where: str):
    """Yield (merged spec dict, {key: where it came from}) for each grid point."""
    axes = [[(axis, i, v) for i, v in enumerate(values)] for axis, values in grid.items()]
    for combo in itertools.product(*axes):
        point = dict(defaults)
        prov = {k: f"{where}.defaults.{k}" for k in defaults}
        for axis, i, value in combo:
            updates = value if isinstance(value, dict) else {axis: value}
            for k, v in updates.items():
                point[k] = v
                prov[str(k)] = f"{where}.grid.{axis}[{i}]" + (f".{k}" if isinstance(value, dict) else "")
        yield point, prov


def _dotted(loc, lead: bool = False) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    return text if lead else text.lstrip(".")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a name too long, a symlink loop
        return path.absolute()


def _exists(path: Path, test) -> bool:
    try:
        return test(path)
    except OSError:
        return False


def _is_file(path: Path) -> bool:
    return _exists(path, Path.is_file)


def _format_errors(path: Path, e: ValidationError, key) -> str:
    errors = e.errors()
    lines = [f"{path}: {key(err['loc']) or '(top level)'}: {_clip(err['msg'], 400)}" for err in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        lines.append(f"{path}: ... and {len(errors) - MAX_ERRORS:,} more errors")
    return "\n".join(lines)
