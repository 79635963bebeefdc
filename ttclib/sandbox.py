"""Run untrusted, model-generated Python in a sandbox, and score it.

Code benchmarks (HumanEval, MBPP, LiveCodeBench, CodeForces) execute what a model wrote. Each
program runs in its own process tree with a wall-clock timeout and CPU, memory, process, file
and output limits, without network, in a private scratch directory, and everything it started
is killed when it ends or times out.

>>> from ttclib import sandbox
>>> r = sandbox.run("print(input()[::-1])", stdin="abc\\n", limits=sandbox.Limits(wall_s=5))
>>> r.ok, r.stdout
(True, 'cba\\n')
>>> sandbox.passes_io("print(int(input()) * 2)", [("2\\n", "4"), ("5\\n", "10\\n")])
True
>>> sandbox.passes_call("def add(a, b):\\n    return a + b", "add", [([1, 2], 3)])
True

How it is contained (``Execution.isolation`` lists what was actually in force):

- As root: the program runs as an unprivileged uid of its own (``uid:61000`` and up, one per
  concurrent execution, locked with a file in ``$TTC_SANDBOX_DIR``, default
  ``/var/lib/ttc-energy-sandbox``; no supplementary groups, ``no_new_privs``, no capability), so
  ``RLIMIT_NPROC`` counts only its processes. It gets new network, PID, IPC and mount
  namespaces: no interface but its own loopback, no view of the host's processes, and a file
  system that is read-only everywhere except private, size-capped tmpfs mounts on ``/tmp`` (its
  working directory ``/tmp/work`` is ``$HOME`` and ``$TMPDIR``), ``/var/tmp`` and ``/dev/shm``.
  ``/dev`` holds only null, zero, full, random and urandom; the invoking user's home, ``/run``
  (sockets of system services) and directories the uid could not traverse are hidden, and the
  interpreter's own directories stay visible, read-only. When the program exits, whatever it
  left running dies with its PID namespace and is counted in ``Execution.stray_processes``
  (which makes ``ok`` false); after every run no process of the uid may remain.
  The repository and the virtualenv stay readable (the interpreter and site-packages must be):
  nothing secret may live there.
- In every mode, as the last steps before the program starts: a session keyring of its own
  (``keyring:fresh``: the caller's keys are not in its possession); a seccomp filter
  (``seccomp``; classic BPF written here, as the helper runs without site-packages) that
  refuses ``keyctl``, ``add_key`` and ``request_key`` (so no per-uid keyring can carry data
  from one execution to the next), ``unshare``/``clone`` with ``CLONE_NEWUSER`` (no user
  namespace in which to mount a tmpfs of any size) and ``clone3`` (ENOSYS: libc falls back to
  ``clone``, whose flags the filter can read); Landlock (``landlock:vN``): files may be written,
  created, removed or renamed only below the work directory and the private tmpfs mounts, and
  written in the five devices, so nothing in ``/proc`` (``oom_score_adj``: the OOM killer's first
  choice it stays) or elsewhere, whatever its mode. Every Unix socket bound in the caller's
  network namespace, and every socket mounted on its own, has ``/dev/null`` mounted over it
  (``unixsockets:N covered``: connect() is refused even on read-only mounts); the program's own
  sockets in its work directory and ``socketpair`` work (multiprocessing, Manager included).
  Each execution runs in a memory cgroup (``cgroup:v2:NNNm`` or ``cgroup:v1:NNNm``, see
  :class:`_Cgroup`) bounding all it holds at once, tmpfs and memfd pages included, to
  ``memory_mb + 3 * disk_mb`` MiB; the OOM killer then acts inside it.
  What could not be applied is listed as ``no-cgroup:why``, ``no-landlock:why`` or
  ``no-seccomp:why`` and the rest still applies. Known gaps: as an ordinary user without a
  delegated cgroup (``TTC_SANDBOX_CGROUP``) memfds are bounded only by ``RLIMIT_FSIZE`` per
  memfd times ``RLIMIT_NOFILE``; without Landlock, ``oom_score_adj`` is pinned only where the
  helper holds ``CAP_SYS_RESOURCE``; a socket bound in another network namespace in a visible
  directory that is not itself a mount point, or bound after the execution started, is not
  covered.
- As an ordinary user: the same namespaces inside a user namespace (the program keeps the
  user's uid but holds no capability, cannot write outside its tmpfs, and cannot see or signal
  the user's other processes); supplementary groups cannot be dropped there.
- Where namespaces are unavailable (no user namespaces, a locked-down container), there is no
  network or file-system isolation: :func:`run` refuses with :class:`SandboxError` unless the
  caller passes ``allow_network=True``, and then runs with rlimits, a fresh process group and a
  kill of every descendant it saw (and, as root, a uid of its own).

The program runs as ``sys.executable -I main.py`` (site-packages such as numpy importable) with
a minimal environment: nothing of the caller's (no secrets), one BLAS/OpenMP thread.
Limits are per process except ``wall_s``, ``processes`` and the memory cgroup: a program may
hold at most ``memory_mb + 3 * disk_mb`` MiB in all its processes and files together (without a
cgroup: ``processes * memory_mb`` of address space plus what memfds hold); sandboxed processes
are the OOM killer's first choice (``oom_score_adj`` 1000).

Nothing of the sandbox runs in the caller's process: a small helper (``python -I -S``, source
in ``_HELPER``) sets it up in fresh namespaces and reports back over a pipe.

How a verdict is reached (nothing the solution can read or forge decides it):

- stdin/stdout (:func:`passes_io`): the expected output never enters the sandbox; the caller
  compares stdout with it line by line while it arrives (:class:`OutputComparison`), so outputs
  of any size are compared without being held, and a wrong one is stopped at its first wrong line.
- Tests that call the solution (:func:`passes_asserts`: HumanEval's ``check``, MBPP's asserts;
  :func:`passes_call`: LeetCode-style cases) run in two processes inside the sandbox. The
  tests' process T (trusted code: the tests and the expected values) runs the tests; each name
  that stands for the solution is bound to a call into the solution's process S, which runs the
  untrusted code in a fresh interpreter and answers each call with a value. T passes only if the
  tests run to their end, exiting 0 itself; S's exit status, output and exit tricks
  (``sys.exit(0)``, ``os._exit(0)``, ``atexit``, threads, ``__del__``, ``sys.excepthook``,
  patched ``print``/``os.write``/``builtins``) count for nothing. There is no completion token.

  Why S cannot learn what the tests expect: T starts S (``python -I -S -c`` with two pipes,
  stdin ``/dev/null``) before it reads anything secret, and S runs nothing of the solution
  until T, having made itself non-dumpable (``PR_SET_DUMPABLE`` 0: its memory, descriptors and
  environment are closed to a process of the same uid, and it cannot be ptraced), has read the
  payload from its stdin and sent S the solution alone. So S's memory, argv, environment, files
  and descriptors hold the solution and the arguments of the calls, never the tests or the
  expected values (``sys._getframe``, ``inspect``, ``gc.get_objects()``, ``/proc/self``, the
  source file find nothing), and T writes nothing to the file system. The helper's own memory,
  in reach of S only as an ordinary user without Yama, holds the generic harness, no test.
  Why S cannot forge a pass: what S sends back is decoded by T into exact builtin values (int,
  float, str, list, tuple, dict, set, bytes, complex, Fraction, Decimal; ``_VALUE_CODEC``), so
  T's comparisons never run code of the solution (an object whose ``__eq__`` is always true
  cannot cross; a ``str`` subclass arrives as a plain ``str``); a malformed reply, a value of
  another type, or S ending marks the run failed even if a test swallows the error. T imports
  only from read-only directories (checked), so S cannot plant modules for the tests' imports;
  signals from S can kill or stop T, never make it exit 0. T runs in the helper's interpreter
  after the same limits and privilege drop as any program (capabilities dropped), which saves
  an interpreter start; S is a fresh one, without ``site`` (site-packages on its path, and
  ``exit``/``quit``). ``sandbox_probes.FORGERIES`` holds the attacks this was checked against.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import grp
import pwd
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Limits", "Execution", "SandboxError", "OutputComparison", "run", "run_many",
           "passes_asserts", "passes_io", "passes_call", "normalize_output"]

UID_BASE = 61000          # sandbox uids are UID_BASE + slot (no passwd entry needed)
UID_SLOTS = 64            # at most this many concurrent executions per machine (as root)
WORKDIR = "/tmp/work"     # the program's working directory inside the namespaces


class SandboxError(RuntimeError):
    """The sandbox could not be set up as asked (not: the program failed)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one execution."""

    wall_s: float = 10.0        # wall-clock timeout, seconds (whole process tree)
    cpu_s: float = 10.0         # RLIMIT_CPU per process, seconds (rounded up)
    memory_mb: int = 1024       # RLIMIT_AS per process, MiB of address space
    processes: int = 32         # RLIMIT_NPROC: processes the program may have at once
    file_mb: int = 16           # RLIMIT_FSIZE: largest file it may write, MiB
    open_files: int = 64        # RLIMIT_NOFILE: open file descriptors per process
    output_kb: int = 256        # stdout and stderr each kept up to this many KiB; rest discarded
    #                             (stdout compared with an expected one: see run())
    disk_mb: int = 64           # MiB of each private tmpfs: /tmp (with the work dir), /var/tmp, /dev/shm


@dataclass(frozen=True)
class Execution:
    """What one sandboxed program did."""

    returncode: int | None      # exit status; -N when killed by signal N; None when timed out
    timed_out: bool             # killed by the wall-clock timeout
    stdout: str                 # decoded UTF-8 (invalid bytes replaced), at most output_kb KiB
    stderr: str
    wall_s: float               # seconds from start until the program's process tree ended
    isolation: tuple[str, ...]  # protections in force, e.g. ("uid:61003", "netns", "mountns", ...)
    stray_processes: int = 0    # processes still running when the program exited (all killed)
    stdout_matches: bool | None = None  # stdout equals run()'s expected_stdout (None: not given)

    @property
    def ok(self) -> bool:
        """Exited 0 in time and left nothing running behind."""
        return self.returncode == 0 and not self.timed_out and self.stray_processes == 0


# ---------------------------------------------------------------------------------------------
# Public API


def run(program: str, *, stdin: str = "", limits: Limits = Limits(),
        allow_network: bool = False, expected_stdout: str | None = None) -> Execution:
    """Run Python source ``program`` with ``stdin`` as its standard input.

    With ``expected_stdout``, all of stdout is compared with it while it arrives
    (:class:`OutputComparison`; ``Execution.stdout_matches``), whatever its size: only the
    first ``limits.output_kb`` KiB are kept in ``Execution.stdout``, the program is stopped at
    the first differing line, and it may write at most twice the expected size plus
    ``output_kb`` KiB (room for ignored trailing spaces). The expected text never reaches the
    program.

    Raises :class:`SandboxError` when network isolation cannot be set up, unless
    ``allow_network`` is true (network isolation is still used wherever it can be).
    """
    return _Run(program, stdin, limits, allow_network, expected_stdout).execute()


def run_many(jobs: Sequence[tuple[str, str]], *, limits: Limits = Limits(),
             workers: int | None = None, allow_network: bool = False) -> list[Execution]:
    """Run ``(program, stdin)`` pairs concurrently (``workers`` threads, default one per core);
    results are in the order of ``jobs``."""
    jobs = list(jobs)
    if not jobs:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs), UID_SLOTS))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda job: run(job[0], stdin=job[1], limits=limits,
                                             allow_network=allow_network), jobs))


def passes_asserts(solution: str, tests: str, *, context: str = "",
                   candidates: Sequence[str] | dict[str, str] = (), data=None,
                   limits: Limits = Limits()) -> Execution:
    """Run trusted ``tests`` (asserts, a ``check(candidate)`` call...) against untrusted
    ``solution`` code; ``.ok`` is whether every test passed.

    The tests and the solution run in two processes (see "How a verdict is reached" above):
    the tests' names that stand for the solution are calls into the solution's process, which
    returns plain values only. ``context`` is trusted code run before the tests in their
    process (helpers the tests use, such as HumanEval's prompt); ``candidates`` are names the
    tests use for the solution's functions even though ``context`` or the builtins define
    them (a mapping when the names differ: ``{"candidate": "find_zero"}``); any other name the
    tests use that neither they, ``context`` nor the builtins define is looked up in the
    solution too. ``data`` (a JSON value) is the tests' global ``TEST_DATA``; the solution
    never sees it, nor the tests, nor ``context``.

    >>> tests = "assert add(2, 3) == 5\\nassert abs(add(0.1, 0.2) - 0.3) < 1e-9"
    >>> passes_asserts("def add(a, b):\\n    return a + b", tests).ok
    True
    >>> passes_asserts("def add(a, b):\\n    return a - b", tests).ok
    False
    """
    if not isinstance(candidates, dict):
        candidates = {name: name for name in candidates}
    return _run_tests({"solution": solution, "module": "__main__", "context": context,
                       "tests": tests, "candidates": dict(candidates), "data": data}, limits)


def normalize_output(text: str) -> str:
    """Output as compared by :func:`passes_io`: trailing spaces of each line and trailing empty
    lines removed."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def passes_io(program: str, cases: Sequence[tuple[str, str]], limits: Limits = Limits()) -> bool:
    """Whether ``program`` prints the expected output for every ``(stdin, expected stdout)``
    case; stops at the first failing case. Each case is a separate execution; its stdout is
    compared with the expected text as it arrives (:class:`OutputComparison`), so outputs of
    any size are compared and a wrong one is stopped at its first differing line."""
    for given, expected in cases:
        result = run(program, stdin=given, limits=limits, expected_stdout=expected)
        if not (result.ok and result.stdout_matches):
            return False
    return True


def passes_call(solution: str, func_name: str, cases: Sequence[tuple[list, object]],
                limits: Limits = Limits()) -> bool:
    """LeetCode-style check: call ``Solution().func_name(*args)`` (or the top-level function
    ``func_name`` when there is no such class) for every ``(args, expected)`` case and compare
    the return value with ``expected`` (tuples equal lists). All cases run in one execution, so
    ``limits.wall_s`` covers them together. Arguments and results must be JSON values; the
    expected values stay in the tests' process (:func:`passes_asserts`)."""
    return _run_tests({"solution": "from typing import *\n" + solution, "module": "solution",
                       "context": "", "tests": _CALL_TESTS,
                       "candidates": {"solution_call": "Solution." + func_name},
                       "data": [[list(args), expected] for args, expected in cases]}, limits).ok


def _run_tests(payload: dict, limits: Limits) -> Execution:
    """The two-process harness. T, trusted, runs inline in the sandbox's helper interpreter
    (after the same limits and privilege drop as any program); S is a fresh interpreter
    without ``site`` (which costs more than the rest of its start) that imports from the
    interpreter's own module path."""
    payload["path"] = _module_path(sys.executable)
    limits = dataclasses.replace(limits, processes=limits.processes + 1)    # T is not the solution's
    return _Run(_TEST_HARNESS, json.dumps(payload), limits, False, inline=True).execute()


_CALL_TESTS = '''
def norm(x):
    if isinstance(x, (list, tuple)):
        return [norm(v) for v in x]
    if isinstance(x, dict):
        return {k: norm(v) for k, v in x.items()}
    return x

for i, (args, expected) in enumerate(TEST_DATA):
    got = solution_call(*args)
    if got != expected and norm(got) != norm(expected):
        raise AssertionError("case %d: expected %r, got %r" % (i, expected, got))
'''


class OutputComparison:
    """A program's stdout compared with the expected text while it arrives, with the rule of
    :func:`normalize_output` (trailing spaces of lines and trailing empty lines do not count),
    without holding the output: :meth:`feed` returns False at the first difference.

    >>> c = OutputComparison("1\\n2\\n")
    >>> c.feed(b"1  \\r\\n2"), c.finish()
    (True, True)
    >>> c = OutputComparison("1\\n2\\n")
    >>> c.feed(b"1\\n3\\n"), c.difference
    (False, "line 2: expected '2', got '3'")
    """

    def __init__(self, expected: str):
        text = normalize_output(expected)
        self.expected = (text + "\n").encode("utf-8", "surrogatepass") if text else b""
        self.pos = 0               # offset in ``expected`` of the next line to match
        self.line = 1              # its number
        self.blank = 0             # empty lines seen since, matched once a non-empty one follows
        self.partial = b""         # the output's unfinished last line
        self.difference: str | None = None
        longest = max((len(x) for x in self.expected.split(b"\n")), default=0)
        self.max_line = longest + 65536

    def feed(self, chunk: bytes) -> bool:
        if self.difference is not None:
            return False
        data = self.partial + chunk
        end = data.rfind(b"\n") + 1
        self.partial = data[end:]
        if len(self.partial) > self.max_line:
            return self._differ(f"line {self.line + self.blank}: longer than any expected line")
        complete = data[:end]
        if (not self.blank and complete
                and self.expected.startswith(complete, self.pos)):   # the common, exact case
            self.pos += len(complete)
            self.line += complete.count(b"\n")
            return True
        for raw in complete.split(b"\n")[:-1]:
            if not self._line(raw):
                return False
        return True

    def finish(self) -> bool:
        """Whether the whole output matched (call once the program has ended)."""
        if self.difference is None and self.partial:
            self._line(self.partial)
            self.partial = b""
        if self.difference is None and self.pos < len(self.expected):
            self._differ(f"line {self.line}: expected {self._shown()}, got the end of the output")
        return self.difference is None

    def _line(self, raw: bytes) -> bool:
        text = raw.decode("utf-8", errors="replace").rstrip()
        if not text:
            self.blank += 1
            return True
        for _ in range(self.blank):
            if self._next() != "":
                return self._differ(f"line {self.line}: expected {self._shown()}, got ''")
            self._advance()
        self.blank = 0
        if self._next() != text:
            return self._differ(f"line {self.line}: expected {self._shown()}, got {text[:80]!r}")
        self._advance()
        return True

    def _next(self) -> str | None:
        if self.pos >= len(self.expected):
            return None
        end = self.expected.index(b"\n", self.pos)
        return self.expected[self.pos:end].decode("utf-8", "surrogatepass")

    def _shown(self) -> str:
        line = self._next()
        return "the end of the output" if line is None else repr(line[:80])

    def _advance(self) -> None:
        self.pos = self.expected.index(b"\n", self.pos) + 1
        self.line += 1

    def _differ(self, why: str) -> bool:
        self.difference = why
        return False


# ---------------------------------------------------------------------------------------------
# The verdict of code tests: two processes. The tests' process (T) runs ``_TEST_HARNESS`` as
# the sandboxed program; it starts the solution's process (S) with ``_SOLUTION_RUNNER``.

# Values crossing between T and S: JSON, exact builtin types only, tagged where JSON has none.
# Included in both programs; T decodes what S sends with ``decode``, which builds builtins only.
_VALUE_CODEC = r'''
import json

TAGS = frozenset("tSFdicyYQDIKVERq")
VIEWS = {type({}.keys()): "K", type({}.values()): "V", type({}.items()): "E"}


def encode(x, depth=0):
    if depth > 200:
        raise ValueError("value nested more than 200 deep")
    t, deeper = type(x), depth + 1
    if x is None or t is bool or t is str or t is float:
        return x
    if t is int:
        return x if -2**53 < x < 2**53 else {"i": format(x, "x")}     # hex: no digit limit
    if t is list:
        return [encode(v, deeper) for v in x]
    if t is tuple:
        return {"t": [encode(v, deeper) for v in x]}
    if t is dict:
        return {"d": [[encode(k, deeper), encode(v, deeper)] for k, v in x.items()]}
    if t is set or t is frozenset:
        return {"S" if t is set else "F": [encode(v, deeper) for v in x]}
    if t is complex:
        return {"c": [x.real, x.imag]}
    if t is bytes or t is bytearray:
        return {"y" if t is bytes else "Y": x.hex()}
    if t.__module__ == "fractions" and t.__name__ == "Fraction":
        return {"Q": [encode(x.numerator, deeper), encode(x.denominator, deeper)]}
    if t.__module__ == "decimal" and t.__name__ == "Decimal":
        return {"D": str(x)}
    if t in VIEWS:              # dict views compare as they do in Python (keys like a set)
        if VIEWS[t] == "E":
            return {"E": [[encode(k, deeper), encode(v, deeper)] for k, v in x]}
        return {VIEWS[t]: [encode(v, deeper) for v in x]}
    if t is range:
        return {"R": [encode(x.start, deeper), encode(x.stop, deeper), encode(x.step, deeper)]}
    if t.__module__ == "collections" and t.__name__ == "deque":
        return {"q": [encode(v, deeper) for v in x]}
    import collections.abc
    if isinstance(x, collections.abc.Iterator):     # map, filter, a generator...: what it yields,
        return {"I": [encode(v, deeper) for v in x]}    # arriving as an iterator over it
    return encode(plain(x), deeper)


def plain(x):
    """The builtin value standing for ``x`` (numpy scalars, IntEnum, namedtuple, Counter...)."""
    if type(x).__module__ == "numpy" and getattr(x, "ndim", None) == 0:
        return x.item()
    for base in (bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set,
                 frozenset):
        if isinstance(x, base):
            return base(x)
    raise TypeError("a %s is not a plain value" % type(x).__name__)


def decode(v, depth=0):
    if depth > 250:
        raise ValueError("value nested more than 250 deep")
    t, deeper = type(v), depth + 1
    if v is None or t is bool or t is int or t is float or t is str:
        return v
    if t is list:
        return [decode(e, deeper) for e in v]
    if t is not dict or len(v) != 1:
        raise ValueError("not a value: %.80r" % (v,))
    (tag, p), = v.items()
    if tag not in TAGS:
        raise ValueError("not a value tag: %.20r" % (tag,))
    if tag in "yY":
        return (bytes if tag == "y" else bytearray).fromhex(str_of(p))
    if tag == "i":
        return int(str_of(p), 16)
    if tag == "D":
        import decimal
        return decimal.Decimal(str_of(p))
    items = list_of(p)
    if tag == "c":
        return complex(*(float_of(e) for e in pair_of(items)))
    if tag == "Q":
        import fractions
        return fractions.Fraction(*(int_of(decode(e, deeper)) for e in pair_of(items)))
    if tag in "dE":
        pairs = {decode(k, deeper): decode(e, deeper) for k, e in map(pair_of, items)}
        return pairs if tag == "d" else pairs.items()
    if tag == "R":
        return range(*(int_of(decode(e, deeper)) for e in items))
    values = [decode(e, deeper) for e in items]
    if tag == "K":
        return dict.fromkeys(values).keys()
    if tag == "V":
        return dict(enumerate(values)).values()
    if tag == "I":
        return iter(values)
    if tag == "q":
        import collections
        return collections.deque(values)
    return {"t": tuple, "S": set, "F": frozenset}[tag](values)


def str_of(p):
    if type(p) is not str:
        raise ValueError("not a string: %.80r" % (p,))
    return p


def list_of(p):
    if type(p) is not list:
        raise ValueError("not a list: %.80r" % (p,))
    return p


def pair_of(p):
    if type(p) is not list or len(p) != 2:
        raise ValueError("not a pair: %.80r" % (p,))
    return p


def float_of(p):
    if type(p) is not float and type(p) is not int:
        raise ValueError("not a number: %.80r" % (p,))
    return float(p)


def int_of(p):
    if type(p) is not int:
        raise ValueError("not an integer: %.80r" % (p,))
    return p


def send(fd, message):
    data = json.dumps(message).encode()
    data = len(data).to_bytes(8, "big") + data
    while data:
        data = data[os.write(fd, data):]


def receive(fd, limit=1 << 31):
    """The next message, or None at the end of the stream."""
    head = read_exactly(fd, 8)
    if head is None:
        return None
    size = int.from_bytes(head, "big")
    if size > limit:
        raise ValueError("message of %d bytes" % size)
    body = read_exactly(fd, size)
    if body is None:
        raise EOFError("stream ended inside a message")
    return json.loads(body)


def read_exactly(fd, n):
    parts, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
'''

# S: ``python -I -c _SOLUTION_RUNNER <request fd> <reply fd>``, a fresh interpreter started by T
# before T reads any test; it receives the solution, runs it as module ``__main__`` (LeetCode
# solutions: ``solution``), then answers calls ``{"call": name, "args", "kwargs"}`` with
# ``{"value": v}``, ``{"raised": [type name, message]}`` or ``{"unsupported": why}``.
_SOLUTION_RUNNER = r'''
import builtins, os, sys, types
REQUEST, REPLY = int(sys.argv[1]), int(sys.argv[2])
''' + _VALUE_CODEC + r'''

def target(namespace, name):
    if name.startswith("Solution."):
        method, cls = name[len("Solution."):], namespace.get("Solution")
        if isinstance(cls, type) and hasattr(cls, method):
            return getattr(cls(), method)
        if callable(namespace.get(method)):
            return namespace[method]
        raise NameError("no Solution.%s and no function %s" % (method, method))
    if name in namespace:
        return namespace[name]
    if hasattr(builtins, name):
        return getattr(builtins, name)
    raise NameError("the solution does not define %s" % name)


def serve():
    first = receive(REQUEST)
    sys.path[:] = first["path"]
    import _sitebuiltins            # what site would have added: exit() and quit()
    builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
    builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")
    module = types.ModuleType(first["module"])
    sys.modules[first["module"]] = module
    sys.argv = ["main.py"]
    try:
        exec(compile(first["solution"], "solution.py", "exec"), module.__dict__)
    except Exception as exc:
        import traceback
        traceback.print_exc()
        send(REPLY, {"error": "the solution raised %s" % type(exc).__name__})
        return
    send(REPLY, {"ready": True})
    while True:
        message = receive(REQUEST)
        if message is None:
            return
        try:
            value = target(module.__dict__, message["call"])(*decode(message["args"]),
                                                             **decode(message["kwargs"]))
        except Exception as exc:
            try:
                reply = {"raised": [type(exc).__name__, str(exc)[:2000]]}
            except Exception:
                reply = {"raised": [type(exc).__name__, ""]}
        else:
            try:
                reply = {"value": encode(value)}
            except (TypeError, ValueError, RecursionError) as exc:
                reply = {"unsupported": "%s: %s" % (message["call"], exc)}
        send(REPLY, reply)


serve()
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except Exception:
        pass
os._exit(0)
'''

# T: the sandboxed program. It makes itself non-dumpable (its memory, descriptors and
# environment unreadable to S, which has the same uid), keeps only read-only directories on
# sys.path, reads the payload from stdin, starts S, runs ``context``, then the tests with the
# solution's names bound to calls into S, and exits 0 only if they ran to their end, every
# call got a plain value back, and S kept to the protocol.
_TEST_HARNESS = r'''
import os, sys


def start_solution(runner):
    """S, started first so that its start overlaps with T's: it runs nothing of the solution
    until T sends it, after T has made itself non-dumpable."""
    request_r, request_w = os.pipe()
    reply_r, reply_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.set_inheritable(request_r, True)
            os.set_inheritable(reply_w, True)
            os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", runner,
                                      str(request_r), str(reply_w)])
        finally:
            os._exit(127)
    os.close(request_r)
    os.close(reply_w)
    return pid, request_w, reply_r


PROCESS = start_solution(%r)
import builtins, ctypes, select
''' % _SOLUTION_RUNNER + _VALUE_CODEC + r'''
PR_SET_DUMPABLE = 4
LIBC = ctypes.CDLL(None, use_errno=True)


class SolutionError(Exception):
    """The solution's process broke the protocol, ended, or returned what is not a value."""


def writable(path):
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.access(path, os.W_OK)


class Solution:
    """S, the solution's process, and calls into it."""

    def __init__(self, process, payload):
        self.broken, self.ready = None, False
        self.pid, self.request, self.reply = process
        send(self.request, {key: payload[key] for key in ("solution", "module", "path")})

    def fail(self, why):
        self.broken = self.broken or why
        raise SolutionError(self.broken)

    def load(self):
        """Wait until the solution's module code has run."""
        if not self.ready:
            if self.exchange(None) != {"ready": True}:
                self.fail("the solution did not load")
            self.ready = True

    def exchange(self, message):
        """Send ``message`` (None: nothing) and return the one-key reply."""
        if self.broken:
            raise SolutionError(self.broken)
        if message is not None:
            self.load()
        try:
            if message is not None:
                send(self.request, message)
            reply = receive(self.reply)
        except (EOFError, OSError):
            reply = None
        except Exception as exc:
            self.fail("the solution's process broke the protocol (%r)" % exc)
        if reply is None:
            self.fail("the solution's process ended")
        if type(reply) is not dict or len(reply) != 1:
            self.fail("the solution's process broke the protocol: %.200r" % (reply,))
        return reply

    def proxy(self, name):
        def call(*args, **kwargs):
            try:
                message = {"call": name, "args": encode(list(args)), "kwargs": encode(kwargs)}
            except Exception as exc:
                self.fail("%s: an argument cannot be sent to the solution (%s)" % (name, exc))
            reply = self.exchange(message)
            if "raised" in reply:
                raise self.error(name, reply["raised"])
            if "value" not in reply:
                self.fail("%s returned what is not a plain value: %.200s" % (
                    name, reply.get("unsupported")))
            try:
                return decode(reply["value"])
            except Exception as exc:
                self.fail("%s returned a malformed value (%r)" % (name, exc))
        call.__name__ = call.__qualname__ = name
        return call

    def error(self, name, raised):
        """The builtin exception the solution raised (its type by name), else SolutionError."""
        try:
            kind, text = (str_of(s) for s in pair_of(raised))
        except ValueError as exc:
            self.fail("%s: malformed exception (%r)" % (name, exc))
        error = getattr(builtins, kind, None)
        if not (isinstance(error, type) and issubclass(error, Exception)):
            error = SolutionError
        try:
            return error("%s (%s raised by the solution's %s)" % (text, kind, name))
        except Exception:
            return SolutionError("%s raised by the solution's %s: %s" % (kind, name, text))

    def stop(self):
        """Let S end after its last request (its output flushed), then kill it."""
        os.close(self.request)
        try:
            fd = os.pidfd_open(self.pid)
            select.select([fd], [], [], 0.2)
            os.close(fd)
        except (AttributeError, OSError):
            pass
        try:
            os.kill(self.pid, 9)                # SIGKILL
        except OSError:
            pass
        os.waitpid(self.pid, 0)


class Names(dict):
    """The tests' globals: a name nobody defined is the solution's."""

    def __missing__(self, name):
        if hasattr(builtins, name) or name.startswith("__"):
            raise KeyError(name)
        self[name] = SOLUTION.proxy(name)
        return self[name]


SOURCES = {}


def source(text, filename):
    SOURCES[filename] = text
    return compile(text, filename, "exec")


def print_failure():
    import linecache, traceback
    for filename, text in SOURCES.items():
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    traceback.print_exc()


def run_tests():
    global SOLUTION
    if LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        print("[sandbox] cannot make the tests' process non-dumpable", file=sys.stderr)
        return False
    os.chdir("/")
    payload = json.loads(sys.stdin.buffer.read())
    sys.stdin = open(os.devnull)
    sys.path[:] = [p for p in payload["path"] if os.path.isabs(p)]
    sys.path_importer_cache.clear()
    open_to_writes = [p for p in sys.path if writable(p)]
    if open_to_writes:
        print("[sandbox] the tests could import from writable %s" % open_to_writes,
              file=sys.stderr)
        return False
    SOLUTION = Solution(PROCESS, payload)
    names = Names(__name__="__main__", __builtins__=builtins, TEST_DATA=payload["data"])
    exec(source(payload["context"], "<context>"), names)
    for name, target in payload["candidates"].items():
        names[name] = SOLUTION.proxy(target)
    tests = source(payload["tests"], "<tests>")
    del payload
    SOLUTION.load()
    exec(tests, names)
    if SOLUTION.broken:
        print("[sandbox] %s" % SOLUTION.broken, file=sys.stderr)
        return False
    return True


SOLUTION = None
try:
    passed = run_tests()
except BaseException:
    print_failure()
    passed = False
try:
    if SOLUTION is None:
        SOLUTION = Solution.__new__(Solution)
        SOLUTION.pid, SOLUTION.request, SOLUTION.reply = PROCESS
    SOLUTION.stop()
    sys.stdout.flush()
    sys.stderr.flush()
except BaseException:
    passed = False
os._exit(0 if passed else 1)
'''


# ---------------------------------------------------------------------------------------------
# One execution (parent side)

_state = {"namespaces": None}       # None: untried; False: unavailable here (with the reason)
_state_lock = threading.Lock()
_slots_in_use: set[int] = set()
_interpreters: dict[str, tuple[list[str], list[str]]] = {}


def _minimal_env() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def _program_env(workdir: str) -> dict[str, str]:
    env = _minimal_env()
    env.update(HOME=workdir, TMPDIR=workdir, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               # glibc reserves 64 MiB of address space per malloc arena (about one per thread),
               # which RLIMIT_AS counts: without this a dozen threads exhaust 1 GiB
               MALLOC_ARENA_MAX="2")
    return env


def _interpreter_paths(python: str) -> list[str]:
    """Directories the interpreter needs (prefixes and its ``-I`` sys.path), resolved."""
    return _interpreter(python)[0]


def _module_path(python: str) -> list[str]:
    """The interpreter's ``-I`` sys.path, absolute entries only (what ``-S`` leaves out: the
    site-packages directories, without running their .pth files)."""
    return _interpreter(python)[1]


def _interpreter(python: str) -> tuple[list[str], list[str]]:
    with _state_lock:
        if python in _interpreters:
            return _interpreters[python]
    code = ("import sys, json; print(json.dumps([[sys.prefix, sys.base_prefix, sys.exec_prefix, "
            "sys.base_exec_prefix], sys.path]))")
    out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, check=True,
                         env=_minimal_env(), cwd="/", timeout=60).stdout
    prefixes, sys_path = json.loads(out)
    paths = [os.path.dirname(os.path.realpath(python)), os.path.realpath(os.path.dirname(python))]
    paths += [os.path.realpath(p) for p in prefixes + sys_path if p and os.path.isdir(p)]
    info = (sorted(set(paths)), [p for p in sys_path if os.path.isabs(p)])
    with _state_lock:
        _interpreters[python] = info
    return info


def _state_dir() -> Path:
    """Root-owned directory for uid locks and (without namespaces) work directories."""
    return Path(os.environ.get("TTC_SANDBOX_DIR", "/var/lib/ttc-energy-sandbox"))


def _uid_processes(uid: int) -> list[int]:
    """Pids of processes with ``uid`` as real, effective, saved or file-system uid."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if str(uid) in line.split()[1:]:
                            found.append(int(name))
                        break
        except OSError:
            continue
    return found


def _kill_uid(uid: int, timeout_s: float = 10.0) -> None:
    """SIGKILL every process of ``uid``: ``kill -9 -1`` run as that uid signals exactly the
    processes it may signal, i.e. its own; repeated until none is left."""
    kill = shutil.which("kill", path="/usr/bin:/bin") or "/bin/kill"
    deadline = time.monotonic() + timeout_s
    while _uid_processes(uid):
        if time.monotonic() > deadline:
            raise SandboxError(f"processes of sandbox uid {uid} survive SIGKILL: "
                               f"{_uid_processes(uid)}")
        subprocess.run([kill, "-9", "-1"], user=uid, group=uid, extra_groups=[], env={}, cwd="/",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        time.sleep(0.005)


class _Slot:
    """An unprivileged uid (= gid) for one execution, unique on this machine while held."""

    def __init__(self):
        locks = _state_dir() / "locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
            os.chmod(_state_dir(), 0o711)
            os.chmod(locks, 0o700)
        except OSError as exc:
            raise SandboxError(f"cannot prepare the sandbox state directory ({exc}); set "
                               "TTC_SANDBOX_DIR to a root-owned directory") from exc
        self.lock_fd = None
        with _state_lock:
            for slot in range(UID_SLOTS):
                uid = UID_BASE + slot
                if slot in _slots_in_use or _account_exists(uid):
                    continue
                fd = os.open(locks / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                _slots_in_use.add(slot)
                self.slot, self.uid, self.lock_fd = slot, uid, fd
                break
        if self.lock_fd is None:
            raise SandboxError(f"all {UID_SLOTS} sandbox uids from {UID_BASE} are busy")
        try:
            _kill_uid(self.uid)         # leftovers of a crashed process (should not exist)
        except BaseException:
            self.release()
            raise

    def release(self):
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None
            with _state_lock:
                _slots_in_use.discard(self.slot)


class _Cgroup:
    """A memory cgroup of one execution: a bound on everything it holds at once, tmpfs and
    memfd pages included, which ``RLIMIT_AS`` does not count. cgroup v2 (``memory.max``, no
    swap, the whole group killed on OOM) below the caller's cgroup, or else below
    ``$TTC_SANDBOX_CGROUP`` (a delegated v2 directory) or the v2 root; else the v1 memory
    controller below the caller's memory cgroup. ``tag`` says which, or why there is none."""

    _counter = iter(range(1 << 62))

    def __init__(self, limit_bytes: int):
        self.path: Path | None = None
        self.tag = "no-cgroup"
        try:
            self.path, version = self._create(limit_bytes)
            self.tag = f"cgroup:{version}:{limit_bytes >> 20}m"
        except OSError as exc:
            self.tag = (f"no-cgroup:{exc.strerror or exc} (no memory cgroup this user may "
                        "create; TTC_SANDBOX_CGROUP names a delegated one)")
        except LookupError as exc:
            self.tag = f"no-cgroup:{exc.args[0]}"

    def procs(self) -> str | None:
        return str(self.path / "cgroup.procs") if self.path else None

    def _create(self, limit_bytes: int) -> tuple[Path, str]:
        name = f"ttc-sandbox-{os.getpid()}-{next(self._counter)}"
        mounts, own = _cgroup_mounts(), _own_cgroups()
        errors = []
        if "cgroup2" in mounts:
            root = mounts["cgroup2"]
            parents = [os.environ.get("TTC_SANDBOX_CGROUP"), own.get(""), "/ttc-sandbox"]
            for parent in [p for p in parents if p]:
                base = Path(parent) if parent.startswith(str(root)) else root / parent.lstrip("/")
                try:
                    return self._v2(base, name, limit_bytes), "v2"
                except OSError as exc:
                    errors.append(f"v2 {base}: {exc.strerror or exc}")
        if "memory" in mounts and "memory" in own:
            path = mounts["memory"] / own["memory"].lstrip("/") / name
            path.mkdir(mode=0o755)
            try:
                (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                if (path / "memory.memsw.limit_in_bytes").exists():
                    (path / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
            except OSError:
                _remove_cgroup(path)
                raise
            return path, "v1"
        raise LookupError("; ".join(errors) or "no memory controller mounted")

    @staticmethod
    def _v2(base: Path, name: str, limit_bytes: int) -> Path:
        base.mkdir(mode=0o755, exist_ok=True)
        control = base / "cgroup.subtree_control"
        if "memory" not in control.read_text().split():
            control.write_text("+memory")
        path = base / name
        path.mkdir(mode=0o755)
        try:
            (path / "memory.max").write_text(str(limit_bytes))
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")
            (path / "memory.oom.group").write_text("1")
        except OSError:
            _remove_cgroup(path)
            raise
        return path

    def remove(self) -> None:
        if self.path is not None:
            _remove_cgroup(self.path)
            self.path = None


def _remove_cgroup(path: Path, timeout_s: float = 2.0) -> None:
    """rmdir a cgroup once its processes are gone (their exit is seen a moment later)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return              # left behind empty of processes: harmless, reported nowhere
            time.sleep(0.01)


def _cgroup_mounts() -> dict[str, Path]:
    """{"cgroup2": mount point, controller name: v1 mount point}."""
    found: dict[str, Path] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype == "cgroup2":
                found.setdefault("cgroup2", Path(fields[4]))
            elif fstype == "cgroup":
                for option in fields[-1].split(","):
                    found.setdefault(option, Path(fields[4]))
    return found


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup per v1 controller, and ``""``: its v2 cgroup."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                own[controller] = path
    return own


def _account_exists(uid: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            pass
    return False


class _Run:
    def __init__(self, program: str, stdin: str, limits: Limits, allow_network: bool,
                 expected_stdout: str | None = None, inline: bool = False):
        self.program, self.stdin, self.limits = program, stdin, limits
        self.allow_network, self.expected_stdout = allow_network, expected_stdout
        self.inline = inline
        self.root = os.geteuid() == 0
        self.python = sys.executable

    def execute(self) -> Execution:
        namespaces = _state["namespaces"] is not False
        if not namespaces and not self.allow_network:
            raise _no_network_error(_state.get("reason", ""))
        result = self._attempt(namespaces)
        if isinstance(result, Execution):
            return result
        # the namespaces could not be set up
        with _state_lock:
            _state["namespaces"], _state["reason"] = False, result
        if not self.allow_network:
            raise _no_network_error(result)
        return self._attempt(False)

    def _attempt(self, namespaces: bool) -> Execution | str:
        slot = _Slot() if self.root else None
        workdir = cgroup = None
        try:
            if namespaces:
                workdir = WORKDIR
            else:
                workdir = self._plain_workdir(slot)
            cgroup = _Cgroup((self.limits.memory_mb + 3 * self.limits.disk_mb) * 2**20)
            cfg = self._config(namespaces, slot, workdir, cgroup)
            comparison = (None if self.expected_stdout is None
                          else OutputComparison(self.expected_stdout))
            return _Process(cfg, self.stdin, self.limits, slot, comparison).wait()
        finally:
            try:
                if workdir and not namespaces:
                    shutil.rmtree(workdir, ignore_errors=True)
                if cgroup is not None:
                    cgroup.remove()
            finally:
                if slot is not None:
                    slot.release()

    def _nproc_base(self, namespaces: bool) -> int:
        """RLIMIT_NPROC counts the uid's processes: a sandbox uid has none; in a user namespace
        the helper and the namespace's init count too; without namespaces, as an ordinary user,
        all the user's processes count."""
        if self.root:
            return 0
        return 2 if namespaces else len(_uid_processes(os.getuid()))

    def _plain_workdir(self, slot: _Slot | None) -> str:
        if slot is None:
            workdir = tempfile.mkdtemp(prefix="ttc-sandbox-")
        else:
            _check_reachable(self.python)
            runs = _state_dir() / "runs"
            runs.mkdir(parents=True, exist_ok=True)
            os.chmod(runs, 0o711)
            workdir = tempfile.mkdtemp(prefix=f"{slot.uid}-", dir=runs)
            os.chown(workdir, slot.uid, slot.uid)
        path = os.path.join(workdir, "main.py")
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(self.program)
        if slot is not None:
            os.chown(path, slot.uid, slot.uid)
        return workdir

    def _config(self, namespaces: bool, slot: _Slot | None, workdir: str,
                cgroup: _Cgroup) -> dict:
        home = os.path.realpath(os.path.expanduser("~"))
        hide = [p for p in {home, os.path.realpath("/run"), os.path.realpath("/var/run")}
                if p != "/" and os.path.isdir(p)]
        limits = self.limits
        return {
            "python": self.python,
            "inline": self.inline,
            "program": self.program,
            "namespaces": namespaces,
            "userns": namespaces and not self.root,
            "uid": slot.uid if slot else None,
            "workdir": workdir,
            "env": _program_env(workdir),
            "expose": _interpreter_paths(self.python) if namespaces else [],
            "hide": sorted(hide),
            "disk_mb": limits.disk_mb,
            "cgroup": cgroup.procs(),
            "cgroup_tag": cgroup.tag,
            "rlimits": {
                "CPU": math.ceil(limits.cpu_s),
                "AS": limits.memory_mb * 2**20,
                "NPROC": limits.processes + self._nproc_base(namespaces),
                "FSIZE": limits.file_mb * 2**20,
                "NOFILE": limits.open_files,
            },
        }


def _check_reachable(python: str) -> None:
    """Without a mount namespace the sandbox uid must be able to reach the interpreter."""
    for path in _interpreter_paths(python):
        parts = Path(path).parts
        for i in range(2, len(parts) + 1):
            ancestor = Path(*parts[:i])
            if not ancestor.stat().st_mode & 0o001:
                raise SandboxError(f"the sandbox uid cannot reach the interpreter: {ancestor} is "
                                   "not searchable by other users")


def _no_network_error(reason: str) -> SandboxError:
    return SandboxError(f"cannot isolate the sandbox from the network ({reason}); pass "
                        "allow_network=True to run without network and file-system isolation")


class _Process:
    """The helper process tree of one execution and the parent's event loop around it."""

    def __init__(self, cfg: dict, stdin: str, limits: Limits, slot: _Slot | None,
                 comparison: OutputComparison | None = None):
        self.cfg, self.limits, self.slot = cfg, limits, slot
        self.cap = limits.output_kb * 1024
        self.comparison = comparison
        if comparison is not None:      # total stdout allowed when compared
            self.stdout_cap = 2 * len(comparison.expected) + self.cap
        self.stdout_seen = 0
        self.out = {"stdout": bytearray(), "stderr": bytearray()}
        self.dropped = {"stdout": 0, "stderr": 0}
        self.report = bytearray()
        self.pending = {"cfg": json.dumps(cfg).encode(),
                        "stdin": stdin.encode("utf-8", "surrogatepass")}
        self.proc = None
        self.init_pidfd = None
        self.descendants: dict[int, object] = {}
        self.timed_out = False

    def wait(self) -> Execution | str:
        start = time.monotonic()
        cfg_r, cfg_w = os.pipe()
        rep_r, rep_w = os.pipe()
        self.fds = {cfg_r, cfg_w, rep_r, rep_w}
        h_pidfd = None
        try:
            self.proc = subprocess.Popen(
                [self.cfg["python"], "-I", "-S", "-c", _HELPER, str(cfg_r), str(rep_w),
                 str(os.getpid())],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(cfg_r, rep_w), env=_minimal_env(), cwd="/", start_new_session=True)
            self._close(cfg_r)
            self._close(rep_w)
            if self.cfg["cgroup"]:          # while the helper's interpreter starts
                try:
                    with open(self.cfg["cgroup"], "w") as f:
                        f.write(str(self.proc.pid))
                except OSError:
                    pass                    # the helper tries itself, and fails visibly
            h_pidfd = _pidfd(self.proc.pid)
            if h_pidfd is not None:
                self.fds.add(h_pidfd)
            self._loop(start + self.limits.wall_s, cfg_w, rep_r, h_pidfd)
            wall_s = time.monotonic() - start
            self._stop(h_pidfd)
            self._drain(rep_r)
        finally:
            # also on exceptions and KeyboardInterrupt: nothing of the run may survive it
            self._stop(h_pidfd)
            for fd in list(self.fds):
                self._close(fd)
            streams = (self.proc.stdin, self.proc.stdout, self.proc.stderr) if self.proc else ()
            for stream in streams:
                try:
                    stream.close()
                except OSError:
                    pass
            if self.slot is not None:
                _kill_uid(self.slot.uid)
        return self._result(wall_s)

    def _loop(self, deadline: float, cfg_w: int, rep_r: int, h_pidfd: int | None) -> None:
        sel = selectors.DefaultSelector()
        readers = {self.proc.stdout.fileno(): "stdout", self.proc.stderr.fileno(): "stderr",
                   rep_r: "report"}
        writers = {cfg_w: "cfg", self.proc.stdin.fileno(): "stdin"}
        for fd in list(readers) + list(writers):
            os.set_blocking(fd, False)
        for fd in readers:
            sel.register(fd, selectors.EVENT_READ)
        if h_pidfd is not None:
            sel.register(h_pidfd, selectors.EVENT_READ)
        sel.register(cfg_w, selectors.EVENT_WRITE)   # stdin only after the config
        plain = not self.cfg["namespaces"]
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.timed_out = True
                    return
                tick = min(remaining, 0.1 if plain or h_pidfd is None else remaining)
                for key, _ in sel.select(tick):
                    fd = key.fd
                    if fd == h_pidfd:
                        return
                    if fd in readers:
                        if not self._read(fd, readers[fd]):
                            sel.unregister(fd)
                            del readers[fd]
                        if fd == rep_r:
                            self._watch_init()
                        if self.comparison is not None and self.comparison.difference:
                            return                  # a wrong output: stop the program now
                    elif fd in writers:
                        if not self._write(fd, writers[fd]):
                            sel.unregister(fd)
                            if writers.pop(fd) == "cfg":
                                self._close(cfg_w)
                                stdin_fd = self.proc.stdin.fileno()
                                if stdin_fd in writers:
                                    sel.register(stdin_fd, selectors.EVENT_WRITE)
                            else:
                                self.proc.stdin.close()
                if plain:
                    self._note_descendants()
                if h_pidfd is None and _exited(self.proc.pid):
                    return
        finally:
            sel.close()

    def _read(self, fd: int, name: str) -> bool:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        if name == "report":
            self.report += chunk[: max(0, 1_000_000 - len(self.report))]
            return True
        if name == "stdout" and self.comparison is not None:
            self.stdout_seen += len(chunk)
            if self.stdout_seen > self.stdout_cap:
                self.comparison.difference = (self.comparison.difference or
                                              f"more than {self.stdout_cap} bytes of output")
            else:
                self.comparison.feed(chunk)
        buf = self.out[name]
        keep = max(0, self.cap - len(buf))
        buf += chunk[:keep]
        self.dropped[name] += len(chunk) - min(keep, len(chunk))
        return True

    def _write(self, fd: int, name: str) -> bool:
        data = self.pending[name]
        if not data:
            return False
        try:
            n = os.write(fd, data[:65536])
        except BlockingIOError:
            return True
        except OSError:                      # the reader is gone (EPIPE)
            return False
        self.pending[name] = data[n:]
        return bool(self.pending[name])

    def _messages(self) -> list[dict]:
        messages = []
        for line in bytes(self.report).splitlines():
            try:
                messages.append(json.loads(line))
            except ValueError:
                pass
        return messages

    def _watch_init(self) -> None:
        """Hold a pidfd on the PID namespace's init once the helper has reported it; killing
        init kills everything in the namespace."""
        if self.init_pidfd is not None:
            return
        for message in self._messages():
            if "init_pid" in message:
                pid = message["init_pid"]
                fd = _pidfd(pid)
                # the pid is the helper's child right now, so the pidfd is that child's
                if fd is not None and _parent_of(pid) == self.proc.pid:
                    self.init_pidfd = fd
                    self.fds.add(fd)
                else:
                    _close(fd)
                return

    def _note_descendants(self) -> None:
        try:
            import psutil
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                self.descendants.setdefault(child.pid, child)
        except Exception:
            pass

    def _stop(self, h_pidfd: int | None) -> None:
        """SIGKILL the whole tree and reap the helper (idempotent)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self._watch_init()
        if self.init_pidfd is not None:
            try:
                signal.pidfd_send_signal(self.init_pidfd, signal.SIGKILL)
            except OSError:
                pass
        if not self.cfg["namespaces"]:
            self._note_descendants()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)   # the helper is unreaped: pgid still ours
        except OSError:
            pass
        for child in self.descendants.values():
            try:
                child.kill()                            # psutil checks the pid was not reused
            except Exception:
                pass
        for fd in (self.init_pidfd, h_pidfd):
            if fd is not None:
                selectors_wait(fd, 10.0)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise SandboxError(f"sandbox helper {self.proc.pid} survives SIGKILL") from None

    def _close(self, fd: int) -> None:
        """Close a descriptor of ours exactly once (a second close could hit another thread's)."""
        if fd in self.fds:
            self.fds.discard(fd)
            _close(fd)

    def _drain(self, rep_r: int) -> None:
        """Read what is left in the pipes (every writer is dead by now)."""
        deadline = time.monotonic() + 1.0
        for name, fd in (("stdout", self.proc.stdout.fileno()),
                         ("stderr", self.proc.stderr.fileno()), ("report", rep_r)):
            os.set_blocking(fd, False)
            while time.monotonic() < deadline:
                try:
                    if not self._read(fd, name):
                        break
                except BlockingIOError:
                    break
                if not selectors_wait(fd, max(0.0, deadline - time.monotonic())):
                    break

    def _result(self, wall_s: float) -> Execution | str:
        messages = self._messages()
        tags, status, strays, error = [], None, 0, None
        for m in messages:
            tags += m.get("tags", [])
            if "status" in m:
                status, strays = m["status"], m.get("strays", 0)
            error = error or m.get("error")
        if error and not self.timed_out:
            if any(m.get("stage") == "namespaces" for m in messages):
                return error
            raise SandboxError(f"sandbox setup failed: {error}")
        if self.timed_out:
            returncode = None
        elif status is not None:
            returncode = os.waitstatus_to_exitcode(status)
        else:
            returncode = self.proc.returncode
        tags.append("pgroup")
        text = {}
        for name, buf in self.out.items():
            text[name] = bytes(buf).decode("utf-8", errors="replace")
            if self.dropped[name]:
                text[name] += f"\n[sandbox: {self.dropped[name]} more bytes discarded]\n"
        matches = None
        if self.comparison is not None:
            matches = self.comparison.finish()
            if not matches:
                text["stderr"] += (f"\n[sandbox] stdout differs from the expected output: "
                                   f"{self.comparison.difference}\n")
        return Execution(returncode=returncode, timed_out=self.timed_out, stdout=text["stdout"],
                         stderr=text["stderr"], wall_s=round(wall_s, 4),
                         isolation=tuple(dict.fromkeys(tags)), stray_processes=strays,
                         stdout_matches=matches)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _exited(pid: int) -> bool:
    """Whether child ``pid`` has exited, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def selectors_wait(fd: int, timeout: float) -> bool:
    """Wait until ``fd`` is readable (a pidfd: the process has exited)."""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        return bool(sel.select(timeout))


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# The helper: ``python -I -S -c _HELPER <config fd> <report fd>``, started in a new session.
# It reads its configuration (including the program) from the config pipe and writes JSON lines
# to the report pipe. With namespaces it unshares them, builds the file system, and forks the
# PID namespace's init (I); I mounts /proc, writes the program, forks the program's process (P)
# and, when P exits, reports its status and how many processes P left, then exits, which kills
# them. P sets the rlimits, drops to the sandbox uid and executes the interpreter. Nothing here
# runs in the caller's process: every mount happens in a fresh mount namespace, checked first.

_HELPER = r'''
import ctypes, json, os, signal, sys, time

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 1 << 18, 1 << 21, 1 << 24
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 1, 38, 22, 2
OPTION_FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
                "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}

CFG_FD, REPORT_FD, CALLER = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                       ctypes.c_char_p]
libc.unshare.argtypes = [ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                       ctypes.c_ulong]
STAGE = ["setup"]


def report(**message):
    os.write(REPORT_FD, (json.dumps(message) + "\n").encode())


def check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)),
          "mount %s on %s" % (source or fstype or "", target))


def prctl(option, value):
    check(libc.prctl(option, value, 0, 0, 0), "prctl(%d)" % option)


def unescape(path):
    out, i = "", 0
    while i < len(path):
        if path[i] == "\\" and path[i + 1:i + 4].isdigit():
            out += chr(int(path[i + 1:i + 4], 8))
            i += 4
        else:
            out += path[i]
            i += 1
    return out


def mountinfo():
    """[(mount point, flags to keep on a bind remount)] in mount order."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            flags = 0
            for option in fields[5].split(","):
                flags |= OPTION_FLAGS.get(option, 0)
            if not flags & (MS_NOATIME | MS_RELATIME):
                flags |= MS_STRICTATIME
            mounts.append((unescape(fields[4]), flags))
    return mounts


def under(path, top):
    return path == top or path.startswith(top.rstrip("/") + "/")


def containing_mount(path, mounts):
    best = ("/", 0)
    for point, flags in mounts:
        if under(path, point) and len(point) >= len(best[0]):
            best = (point, flags)
    return best[1]


def remount_ro(target, flags):
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | (flags & ~MS_RDONLY))


def build_filesystem(cfg, tags):
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mounts = mountinfo()
    for point, flags in mounts:                 # everything read-only, in this namespace only
        try:
            remount_ro(point, flags)
        except OSError:
            if not any(under(point, top) for top in ("/proc", "/sys", "/dev")):
                raise
    tags.append("rofs")
    expose = sorted(set(cfg["expose"]))
    expose = [p for p in expose if not any(q != p and under(p, q) for q in expose)]
    hide = set(p for p in cfg["hide"] if not any(under(p, e) for e in expose))
    if not cfg["userns"]:     # directories the sandbox uid could not traverse to the interpreter
        for path in expose:
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                ancestor = "/" + "/".join(parts[:i])
                if not os.stat(ancestor).st_mode & 0o001:
                    hide.add(ancestor)
    hide = sorted(p for p in hide if os.path.isdir(p) and not os.path.islink(p))
    hide = [p for p in hide if not any(q != p and under(p, q) for q in hide)]
    for top in hide:
        cover(top, MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=1024,mode=0755", expose, mounts)
        remount_ro(top, MS_NOSUID | MS_NODEV | MS_RELATIME)
    if hide:
        tags.append("hide:" + ",".join(hide))
    nodes = [n for n in ("null", "zero", "full", "random", "urandom")
             if os.path.exists("/dev/" + n)]
    handles = [(n, os.open("/dev/" + n, os.O_PATH | os.O_CLOEXEC)) for n in nodes]
    cover("/dev", MS_NOSUID | MS_NOEXEC, "size=64k,nr_inodes=64,mode=0755", expose, mounts)
    for name, fd in handles:
        os.close(os.open("/dev/" + name, os.O_CREAT | os.O_WRONLY, 0o666))
        mount("/proc/self/fd/%d" % fd, "/dev/" + name, None, MS_BIND)
        os.close(fd)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, "/dev/" + name)
    os.mkdir("/dev/shm", 0o755)
    tags.append("mindev")
    options = "size=%dm,nr_inodes=4096,mode=1777" % cfg["disk_mb"]
    for path in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(path) and not os.path.islink(path):
            cover(path, MS_NOSUID | MS_NODEV, options, expose, mounts)
    remount_ro("/dev", MS_NOSUID | MS_NOEXEC | MS_RELATIME)
    tags.append("tmpfs:%dm" % cfg["disk_mb"])


def cover(top, flags, options, expose, mounts):
    """Mount a fresh tmpfs on ``top``; the exposed paths below it stay visible, read-only."""
    inside = [p for p in expose if under(p, top) and p != top]
    handles = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)) for p in inside]
    mount("tmpfs", top, "tmpfs", flags, options)
    for path, fd in handles:
        os.makedirs(path, 0o755, exist_ok=True)
        mount("/proc/self/fd/%d" % fd, path, None, MS_BIND | MS_REC)
        remount_ro(path, containing_mount(path, mounts))
        os.close(fd)


# System calls of the filter and of the keyring, by machine (the helper is python -I -S, so a
# library such as libseccomp's bindings is out of reach; the filter is a dozen instructions).
SYSCALLS = {"x86_64": {"keyctl": 250, "add_key": 248, "request_key": 249, "unshare": 272,
                       "clone": 56, "clone3": 435},
            "aarch64": {"keyctl": 219, "add_key": 217, "request_key": 218, "unshare": 97,
                        "clone": 220, "clone3": 435}}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
EPERM, ENOSYS = 1, 38
MACHINE = os.uname().machine


def seccomp_program():
    """Classic BPF: no keyrings (keyctl, add_key, request_key: EPERM), no new user namespace
    (unshare or clone with CLONE_NEWUSER: EPERM; clone3, whose flags a filter cannot read:
    ENOSYS, so that libc falls back to clone), no other system-call ABI (ENOSYS)."""
    nr = SYSCALLS[MACHINE]
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06      # BPF_LD|W|ABS, BPF_JMP|..|K
    ALLOW, ERRNO = 0x7FFF0000, 0x00050000
    code = [(LD, 0, 4), (JEQ, 1, AUDIT_ARCH[MACHINE]), (RET, None, ERRNO | ENOSYS),
            (LD, 0, 0)]
    if MACHINE == "x86_64":
        code += [(JGE, "nosys", 0x40000000)]                      # the x32 ABI
    code += [(JEQ, "deny", nr[name]) for name in ("keyctl", "add_key", "request_key")]
    code += [(JEQ, "nosys", nr["clone3"]), (JEQ, "flags", nr["unshare"]),
             (JEQ, "flags", nr["clone"]), (RET, None, ALLOW),
             "flags", (LD, 0, 16), (JSET, "deny", CLONE_NEWUSER), (RET, None, ALLOW),
             "deny", (RET, None, ERRNO | EPERM), "nosys", (RET, None, ERRNO | ENOSYS)]
    labels, at = {}, 0
    for item in code:
        if isinstance(item, str):
            labels[item] = at
        else:
            at += 1
    out = []
    for item in code:
        if isinstance(item, str):
            continue
        op, target, k = item
        jt = 0
        if op in (JEQ, JGE, JSET):
            jt = target if isinstance(target, int) else labels[target] - len(out) - 1
        out.append((op, jt, 0, k))
    return out


def install_seccomp():
    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    code = seccomp_program()
    filters = (Filter * len(code))(*[Filter(*c) for c in code])
    program = Program(len(code), filters)
    check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(program), 0, 0),
          "prctl(PR_SET_SECCOMP)")


def fresh_session_keyring():
    """Leave the caller's session keyring for an empty one of this execution."""
    keyring = libc.syscall(SYSCALLS[MACHINE]["keyctl"], 1, None)  # KEYCTL_JOIN_SESSION_KEYRING
    if keyring < 0:
        err = ctypes.get_errno()
        raise OSError(err, "keyctl(JOIN_SESSION_KEYRING): %s" % os.strerror(err))


LANDLOCK_WRITE = (2 | 16 | 32 | 64 | 128 | 256 | 512 | 1024 | 2048 | 4096, 8192, 16384)
LANDLOCK_FILE_WRITE = (2, 0, 16384)     # rights a rule on a file (not a directory) may hold


def landlock_writes(writable_dirs, writable_files):
    """Writes (and creating, removing, renaming, truncating) allowed only beneath
    ``writable_dirs`` and to ``writable_files``: /proc (oom_score_adj...) and every other file
    stay read-only whatever its mode. Pipes and sockets are not paths and stay usable."""
    abi = libc.syscall(444, None, 0, 1)             # landlock_create_ruleset(.., VERSION)
    if abi < 1:
        raise OSError(ctypes.get_errno(), "landlock unavailable")
    handled = sum(LANDLOCK_WRITE[:abi])
    file_rights = sum(LANDLOCK_FILE_WRITE[:abi])
    attr = ctypes.c_uint64(handled)
    ruleset = libc.syscall(444, ctypes.byref(attr), ctypes.c_size_t(8), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")

    class Beneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]

    try:
        for path, rights in ([(p, handled) for p in writable_dirs]
                             + [(p, file_rights) for p in writable_files]):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rule = Beneath(rights, fd)
                check(libc.syscall(445, ruleset, 1, ctypes.byref(rule), 0),
                      "landlock_add_rule %s" % path)
            finally:
                os.close(fd)
        check(libc.syscall(446, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def confine(cfg, tags):
    """Landlock and seccomp, the last steps before the program runs (no_new_privs is set).
    Where the kernel lacks one, the tags say so and the rest still applies."""
    writable = [cfg["workdir"]] + [p for p in ("/tmp", "/var/tmp", "/dev/shm")
                                   if cfg["namespaces"]]
    try:
        tags.append("landlock:v%d" % landlock_writes(
            writable, ["/dev/" + n for n in ("null", "zero", "full", "random", "urandom")]))
    except OSError as exc:
        tags.append("no-landlock:%s" % exc)
    if MACHINE not in SYSCALLS:
        tags.append("no-seccomp:unknown machine %s" % MACHINE)
        return
    try:
        install_seccomp()
        tags.append("seccomp")
    except OSError as exc:
        tags.append("no-seccomp:%s" % exc)


def host_unix_sockets():
    """Paths of the Unix sockets bound in this (still the caller's) network namespace."""
    paths = set()
    try:
        with open("/proc/self/net/unix") as f:
            next(f, None)
            for line in f:
                fields = line.split(None, 7)
                if len(fields) == 8 and fields[7].startswith("/"):
                    paths.add(fields[7].rstrip("\n"))
    except OSError:
        pass
    return paths


def cover_sockets(paths, tags):
    """Bind /dev/null over every socket still in sight (connect() then fails with
    ECONNREFUSED): those of this host's namespace and sockets bind-mounted into it."""
    import stat
    paths = set(paths) | set(point for point, _ in mountinfo())
    covered = 0
    for path in sorted(paths):
        try:
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                continue
        except OSError:
            continue
        mount("/dev/null", path, None, MS_BIND)
        covered += 1
    tags.append("unixsockets:%d covered" % covered)


def join_cgroup(cfg, tags):
    """Be in the execution's cgroup before starting anything (the caller moves the helper
    there while it starts; a move costs an RCU grace period, so it is not done twice)."""
    if cfg["cgroup"]:
        name = "/" + os.path.basename(os.path.dirname(cfg["cgroup"]))
        with open("/proc/self/cgroup") as f:
            inside = any(line.rstrip("\n").endswith(name) for line in f)
        if not inside:
            with open(cfg["cgroup"], "w") as f:
                f.write("0")
    tags.append(cfg["cgroup_tag"])


def loopback_up():
    import fcntl, socket, struct
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, request))[1]     # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))          # SIOCSIFFLAGS


def close_stdio():
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def exec_program(cfg, tags):
    """Limits, privileges, exec: the program's own process."""
    import resource
    STAGE[0] = "program"
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, value in cfg["rlimits"].items():
        if name == "CPU":
            value = (value, value + 1)          # SIGXCPU, then SIGKILL a second later
        else:
            value = (value, value)
        resource.setrlimit(getattr(resource, "RLIMIT_" + name), value)
    tags.append("rlimits")
    fresh_session_keyring()
    tags.append("keyring:fresh")
    uid = cfg["uid"]
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        tags.append("uid:%d" % uid)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)     # after the uid change, which clears it
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    tags.append("nonewprivs")
    os.chdir(cfg["workdir"])
    confine(cfg, tags)
    report(tags=tags)
    os.set_inheritable(REPORT_FD, False)
    if cfg["inline"]:       # trusted code (the tests' harness): runs in this interpreter
        os.close(REPORT_FD)
        drop_capabilities()     # held in a user namespace until an exec, which this skips
        os.environ.clear()
        os.environ.update(cfg["env"])
        try:
            exec(compile(cfg["program"], cfg["workdir"] + "/main.py", "exec"),
                 {"__name__": "__main__", "__builtins__": __builtins__})
        finally:
            os._exit(1)         # it must end with its own os._exit(0) to pass
    os.execve(cfg["python"], [cfg["python"], "-I", "main.py"], cfg["env"])


def drop_capabilities():
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)          # _LINUX_CAPABILITY_VERSION_3
    check(libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")


def count_live():
    """Reap what has exited; count the rest (this namespace's /proc, without init)."""
    live = 0
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    for name in os.listdir("/proc"):
        if name.isdigit() and name != "1":
            try:
                with open("/proc/%s/stat" % name) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        live += 1
            except (OSError, IndexError):
                pass
    return live


def parent_pid():
    """The parent's pid as the (still original) /proc sees it; getppid() says 0 in a new PID
    namespace."""
    with open("/proc/self/status") as f:
        return int([line for line in f if line.startswith("PPid:")][0].split()[1])


def init(cfg, helper):
    """PID 1 of the new PID namespace."""
    STAGE[0] = "init"
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent_pid() != helper:                  # the helper died before the line above
        os._exit(125)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    work, uid = cfg["workdir"], cfg["uid"]
    os.mkdir(work, 0o700)
    fd = os.open(work + "/main.py", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, cfg["program"].encode("utf-8", "surrogatepass"))
    os.close(fd)
    if uid is not None:
        os.chown(work, uid, uid)
        os.chown(work + "/main.py", uid, uid)
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    pid = os.fork()
    if pid == 0:
        try:
            exec_program(cfg, ["oomfirst"])
        except BaseException as exc:
            report(error="%s: %r" % (STAGE[0], exc), stage=STAGE[0])
        os._exit(125)
    close_stdio()
    while True:
        child, status = os.waitpid(-1, 0)
        if child == pid:
            break
    live, deadline = count_live(), time.monotonic() + 0.05
    while live and time.monotonic() < deadline:
        time.sleep(0.005)
        live = count_live()
    report(status=status, strays=live)
    os._exit(0)


def main():
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != CALLER:                  # the caller died before the line above
        os._exit(125)
    data = b""
    while True:
        chunk = os.read(CFG_FD, 1 << 20)
        if not chunk:
            break
        data += chunk
    os.close(CFG_FD)
    cfg = json.loads(data)
    os.umask(0o022)
    STAGE[0] = "cgroup"
    tags = []
    join_cgroup(cfg, tags)
    if not cfg["namespaces"]:
        os.chdir(cfg["workdir"])
        exec_program(cfg, tags)
    STAGE[0] = "namespaces"
    sockets = host_unix_sockets()
    before = os.readlink("/proc/self/ns/mnt")
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC
    if cfg["userns"]:
        uid, gid = os.getuid(), os.getgid()
        check(libc.unshare(flags | CLONE_NEWUSER), "unshare")
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write("%d %d 1" % (uid, uid))
        with open("/proc/self/gid_map", "w") as f:
            f.write("%d %d 1" % (gid, gid))
        tags.append("userns")
    else:
        check(libc.unshare(flags), "unshare")
    if os.readlink("/proc/self/ns/mnt") == before:
        raise OSError("unshare(CLONE_NEWNS) left the mount namespace unchanged")
    tags += ["netns", "pidns", "ipcns", "mountns"]
    try:
        loopback_up()
    except OSError:
        pass
    build_filesystem(cfg, tags)
    cover_sockets(sockets, tags)
    report(tags=tags)
    STAGE[0] = "fork"
    helper = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            init(cfg, helper)
        except BaseException as exc:
            report(error="%s: %r" % (STAGE[0], exc), stage=STAGE[0])
        os._exit(125)
    report(init_pid=pid)
    close_stdio()
    os.waitpid(pid, 0)
    os._exit(0)


try:
    main()
except BaseException as exc:
    report(error="%s: %r" % (STAGE[0], exc), stage=STAGE[0])
    os._exit(125)
'''
