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
      default: {use: 00_overview.yaml}                      # its `default` profile
      paper: {use: paper.yaml, profile: length_sweep}       # path relative to this file

Each grid point is a :class:`~ttclib.spec.RunSpec`; its run lives in ``runs_dir/<run_id>/``
(see :mod:`ttclib.rundir`).
"""
from __future__ import annotations

import dataclasses
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .spec import RunSpec


class ParamsError(ValueError):
    """A params file is wrong; the message names the file and the key."""


class Profile(BaseModel):
    """A grid of its own, or ``use:`` another params file's profile (``profile:``, default ``default``)."""

    model_config = ConfigDict(extra="forbid")
    use: str | None = Field(None, description="params file (relative to this one) whose profile this is")
    profile: str | None = Field(None, description="the profile of `use` (default: default)")
    runs_dir: str = "../outputs/runs"
    figures_dir: str = "../outputs/figures"
    defaults: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}

    OWN: ClassVar[tuple[str, ...]] = ("runs_dir", "figures_dir", "defaults", "grid")

    @model_validator(mode="after")
    def _use_or_own_grid(self) -> "Profile":
        own = [k for k in self.OWN if k in self.model_fields_set]
        if self.use is not None and own:
            raise ValueError(f"`use` takes the runs, runs_dir and figures_dir of another file's profile; it cannot "
                             f"be combined with {', '.join(own)}: keep either `use` (+ `profile`) or this "
                             f"profile's own runs_dir/figures_dir/defaults/grid")
        if self.use is None and self.profile is not None:
            raise ValueError("`profile` names a profile of the file given by `use`, and there is no `use`")
        return self


class ParamsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = ""
    profiles: dict[str, Profile]


@dataclass
class Plan:
    """The runs a params file asks for under one profile."""

    path: Path
    profile: str
    specs: list[RunSpec]
    runs_dir: Path
    figures_dir: Path
    title: str = ""
    uses: tuple[Path, str] | None = None   # (file, profile) that defines the grid, when `profile` says `use:`


def load_params(path: str | os.PathLike, profile: str = "default") -> Plan:
    """Validate a params file and expand its grid. Raises :class:`ParamsError` naming file and key.

    A profile that says ``use: other.yaml`` (``profile: name``) is that file's profile: its runs,
    runs_dir and figures_dir (relative to that file); errors there name that file."""
    return _load(Path(path), profile, chain=())


def _read(path: Path) -> ParamsFile:
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    try:
        return ParamsFile.model_validate(raw)
    except ValidationError as e:
        raise ParamsError(_format_errors(path, e, lambda loc: ".".join(map(str, loc)))) from None


def _load(path: Path, profile: str, chain: tuple[tuple[Path, str], ...], used_by: str | None = None) -> Plan:
    """``chain``: the (file, profile) pairs that led here through `use:`, to stop cycles."""
    params = _read(path)
    if profile not in params.profiles:
        have = ", ".join(params.profiles)
        if used_by:
            raise ParamsError(f"{used_by}.profile: {path} has no profile {profile!r} (have: {have})")
        raise ParamsError(f"{path}: profiles.{profile}: no such profile (have: {have})")
    prof = params.profiles[profile]
    where = f"profiles.{profile}"
    if prof.use is not None:
        used = _load_used(path, where, prof.use, prof.profile or "default", chain + ((path.resolve(), profile),))
        return dataclasses.replace(used, path=path, profile=profile, title=params.title or used.title,
                                   uses=used.uses or (used.path, used.profile))
    specs = [_spec(path, point, prov) for point, prov in _expand(prof.defaults, prof.grid, where)]
    base = path.parent
    return Plan(path, profile, specs, (base / prof.runs_dir).resolve(), (base / prof.figures_dir).resolve(),
                params.title)


def _load_used(path: Path, where: str, use: str, profile: str, chain: tuple[tuple[Path, str], ...]) -> Plan:
    target = Path(use).expanduser()
    target = target if target.is_absolute() else path.parent / target
    if not target.is_file():
        raise ParamsError(f"{path}: {where}.use: no such params file: {target}")
    if (target.resolve(), profile) in chain:
        loop = " -> ".join(f"{p.name} [{name}]" for p, name in (*chain, (target, profile)))
        raise ParamsError(f"{path}: {where}.use: profiles use each other in a cycle: {loop}")
    return _load(target, profile, chain, used_by=f"{path}: {where}")


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
                prov[k] = f"{where}.grid.{axis}[{i}]" + (f".{k}" if isinstance(value, dict) else "")
        yield point, prov


def _spec(path: Path, point: dict, prov: dict) -> RunSpec:
    try:
        spec = RunSpec.model_validate(point).with_base_dir(path.parent)
    except ValidationError as e:
        def key(loc):
            top = str(loc[0]) if loc else ""
            return prov.get(top, f"(missing) {top}") + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                                               for p in loc[1:])
        raise ParamsError(_format_errors(path, e, key)) from None
    if spec.data is not None and not spec.data_path.exists():
        raise ParamsError(f"{path}: {prov.get('data', 'data')}: no such file or directory: {spec.data_path}")
    return spec


def _format_errors(path: Path, e: ValidationError, key) -> str:
    lines = [f"{path}: {key(err['loc']) or '(top level)'}: {err['msg']}" for err in e.errors()]
    return "\n".join(lines)
