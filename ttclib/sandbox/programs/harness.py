"""T, the tests' process: the sandboxed program of :func:`ttclib.sandbox.passes_asserts` and
:func:`ttclib.sandbox.passes_call`, run inline in the helper's interpreter (trusted code).

It starts the solution's process S (:mod:`.solution`) first, makes itself non-dumpable (its
memory, descriptors and environment unreadable to S, which has the same uid), keeps only
read-only directories on sys.path, reads the payload from stdin, runs ``context``, then the
tests with the solution's names bound to calls into S, and exits 0 only if they ran to their
end, every call got a plain value back, and S kept to the protocol.

Its text is ``SOLUTION_RUNNER = <S's program>``, the codec's text (:mod:`.codec`), then this
module's (see :mod:`ttclib.sandbox.programs`).
"""

import json
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # at run time the codec's text comes first, in the same module
    from .codec import decode, encode, pair_of, receive, send, str_of

    SOLUTION_RUNNER = ""  # S's program, assigned by the first line of this program


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
            os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", runner, str(request_r), str(reply_w)])
        finally:
            os._exit(127)
    os.close(request_r)
    os.close(reply_w)
    return pid, request_w, reply_r


if __name__ == "__main__":
    PROCESS = start_solution(SOLUTION_RUNNER)

import builtins  # noqa: E402 (after S started: its start overlaps with the rest of T's)
import ctypes  # noqa: E402
import select  # noqa: E402

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
            self.fail(f"the solution's process broke the protocol ({exc!r})")
        if reply is None:
            self.fail("the solution's process ended")
        if type(reply) is not dict or len(reply) != 1:
            self.fail(f"the solution's process broke the protocol: {reply!r:.200}")
        return reply

    def proxy(self, name):
        def call(*args, **kwargs):
            try:
                message = {"call": name, "args": encode(list(args)), "kwargs": encode(kwargs)}
            except Exception as exc:
                self.fail(f"{name}: an argument cannot be sent to the solution ({exc!s})")
            reply = self.exchange(message)
            if "raised" in reply:
                raise self.error(name, reply["raised"])
            if "value" not in reply:
                self.fail(f"{name} returned what is not a plain value: {reply.get('unsupported')!s:.200}")
            try:
                return decode(reply["value"])
            except Exception as exc:
                self.fail(f"{name} returned a malformed value ({exc!r})")

        call.__name__ = call.__qualname__ = name
        return call

    def error(self, name, raised):
        """The builtin exception the solution raised (its type by name), else SolutionError."""
        try:
            kind, text = (str_of(s) for s in pair_of(raised))
        except ValueError as exc:
            self.fail(f"{name}: malformed exception ({exc!r})")
        error = getattr(builtins, kind, None)
        if not (isinstance(error, type) and issubclass(error, Exception)):
            error = SolutionError
        try:
            return error(f"{text} ({kind} raised by the solution's {name})")
        except Exception:
            return SolutionError(f"{kind} raised by the solution's {name}: {text}")

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
            os.kill(self.pid, 9)  # SIGKILL
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


SOURCES: dict[str, str] = {}


def source(text, filename):
    SOURCES[filename] = text
    return compile(text, filename, "exec")


def print_failure():
    import linecache
    import traceback

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
        print(f"[sandbox] the tests could import from writable {open_to_writes}", file=sys.stderr)
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
        print(f"[sandbox] {SOLUTION.broken}", file=sys.stderr)
        return False
    return True


SOLUTION: Solution | None = None

if __name__ == "__main__":
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
