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
  :class:`.isolation.Cgroup`) bounding all it holds at once, tmpfs and memfd pages included, to
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
in :mod:`ttclib.sandbox.programs.helper`) sets it up in fresh namespaces and reports back over a
pipe.

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
  float, str, list, tuple, dict, set, bytes, complex, Fraction, Decimal; :mod:`.programs.codec`), so
  T's comparisons never run code of the solution (an object whose ``__eq__`` is always true
  cannot cross; a ``str`` subclass arrives as a plain ``str``); a malformed reply, a value of
  another type, or S ending marks the run failed even if a test swallows the error. T imports
  only from read-only directories (checked), so S cannot plant modules for the tests' imports;
  signals from S can kill or stop T, never make it exit 0. T runs in the helper's interpreter
  after the same limits and privilege drop as any program (capabilities dropped), which saves
  an interpreter start; S is a fresh one, without ``site`` (site-packages on its path, and
  ``exit``/``quit``). ``FORGERIES`` in ``tests/sandbox_probes.py`` holds the attacks this was
  checked against.

The package: :mod:`.launcher` (:func:`run`, :func:`run_many`, one execution's set-up),
:mod:`.process` (the helper's process tree, seen from the caller), :mod:`.isolation` (uids,
memory cgroups, what of the interpreter is visible, the environment), :mod:`.scoring` (the
``passes_*`` verdicts), :mod:`.output` (stdout compared as it arrives), :mod:`.limits` and
:mod:`.execution` (what goes in and comes out), and :mod:`.programs`: the helper, the tests'
and the solution's processes and their value codec, as modules read as text at run time.
"""

from __future__ import annotations

from .execution import Execution, SandboxError
from .isolation import UID_BASE as UID_BASE
from .isolation import UID_SLOTS as UID_SLOTS
from .isolation import WORKDIR as WORKDIR
from .launcher import run, run_many
from .limits import Limits
from .output import OutputComparison, normalize_output
from .scoring import passes_asserts, passes_call, passes_io

__all__ = [
    "Limits",
    "Execution",
    "SandboxError",
    "OutputComparison",
    "run",
    "run_many",
    "passes_asserts",
    "passes_io",
    "passes_call",
    "normalize_output",
]
