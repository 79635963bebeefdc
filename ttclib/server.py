"""An SGLang server: launched as a subprocess for a run, or attached to by URL.

The launched server lives in its own process group on 127.0.0.1 and a free port, writes its
log to a file, and is stopped by process group (SIGTERM, then SIGKILL after a grace period)
however the run ends; a :class:`~ttclib.watchdog.Watchdog` stops every process it spawned,
wherever they moved, once the run is gone (even SIGKILLed during the server's start-up). On a
machine without a GPU it runs SGLang's CPU engine with the pure-torch kernel stand-ins of
:mod:`ttclib.sglang_cpu` first on its PYTHONPATH.

>>> from ttclib.server import SGLangServer, ServerOptions
>>> with SGLangServer.launch("/models/Qwen2.5-7B-Instruct", device="cuda", dtype="bfloat16",
...                          max_running_requests=16, options=ServerOptions(),
...                          log_path="run/server.log") as server:           # doctest: +SKIP
...     server.snapshot()["max_running_requests"]
16
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .sglang_cpu import SGLANG_VERSION, STANDIN_PATH
from .watchdog import Watchdog

# Keys of GET /server_info recorded in run.json: what the server actually used.
SNAPSHOT_KEYS = (
    "version",
    "model_path",
    "tp_size",
    "dp_size",
    "device",
    "dtype",
    "attention_backend",
    "max_running_requests",
    "max_total_num_tokens",
    "max_total_tokens",
    "context_length",
    "chunked_prefill_size",
    "mem_fraction_static",
    "disable_radix_cache",
    "random_seed",
    "schedule_policy",
    "cuda_graph_max_bs",
    "cuda_graph_max_bs_decode",
    "disable_cuda_graph",
    "enable_deterministic_inference",
    "sleep_on_idle",
    "load_format",
    "max_req_input_len",
)
CPU_MAX_TOTAL_TOKENS = 32768  # SGLang otherwise sizes the KV pool from memory (~15 GB on this VM)
WEEK_S = 7 * 24 * 3600  # no wait is longer (and urllib takes no infinite timeout)


class ServerOptions(BaseModel):
    """How to launch (or where to find) the SGLang server. Part of a run spec as ``server:``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    url: str | None = Field(default=None, description="attach to this running server instead of launching one")
    python: str | None = Field(
        default=None, description="interpreter with sglang installed (default: $TTC_SGLANG_PYTHON, else this one)"
    )
    tp_size: int = Field(default=1, ge=1, le=64, description="tensor parallel GPUs")
    dp_size: int = Field(default=1, ge=1, le=64, description="data parallel replicas")
    context_length: int | None = Field(default=None, ge=1, le=2**21, description="max prompt + output tokens")
    mem_fraction_static: float | None = Field(default=None, gt=0, lt=1, description="GPU memory for weights + KV")
    max_total_tokens: int | None = Field(
        default=None, ge=1, le=2**31, description="KV pool size in tokens (CPU default 32768)"
    )
    chunked_prefill_size: int | None = Field(
        default=None, ge=-1, le=2**31, description="tokens per prefill chunk (-1 disables)"
    )
    disable_radix_cache: bool = Field(
        default=True, description="no prefix reuse: every sample pays its prefill, as in the paper"
    )
    attention_backend: str | None = Field(default=None, description="default: SGLang's choice; torch_native on CPU")
    sleep_on_idle: bool | None = Field(
        default=None,
        description="--sleep-on-idle; default on CPU only, where the idle "
        "scheduler would otherwise spin a core the run is measured on",
    )
    deterministic: bool = Field(
        default=False, description="--enable-deterministic-inference; honours per-request seeds"
    )
    extra_args: list[str] = Field(default=[], description="more launch_server arguments, verbatim")
    startup_timeout_s: float = Field(default=900, gt=0, le=WEEK_S, description="wait this long for /health_generate")
    request_timeout_s: float = Field(
        default=4 * 3600,
        gt=0,
        le=WEEK_S,
        description="one request's limit, its wait in the server's queue included (a hang detector)",
    )
    max_in_flight: int | None = Field(
        default=None,
        ge=1,
        le=2**20,
        description="requests open at once; the rest follow as they finish (default 4 x batch size, at least 64)",
    )

    # Where the server is or how long to wait does not change what is measured.
    NOT_MEASURED: ClassVar[tuple[str, ...]] = (
        "url",
        "python",
        "startup_timeout_s",
        "request_timeout_s",
        "max_in_flight",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            parts = urlsplit(v)
            parts.port  # noqa: B018 (raises on a port that is not one)
        except ValueError as e:
            raise ValueError(f"not a URL: {e}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or not v.isprintable():
            raise ValueError("should be http(s)://host[:port] of a running SGLang server")
        return v

    @field_validator("python")
    @classmethod
    def _executable(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            ok = (
                bool(v)
                and v.isprintable()
                and os.path.isfile(os.path.expanduser(v))
                and os.access(os.path.expanduser(v), os.X_OK)
            )
        except (OSError, ValueError, RuntimeError):
            ok = False
        if not ok:
            raise ValueError(f"no executable interpreter at {v!r}")
        return v

    @field_validator("chunked_prefill_size")
    @classmethod
    def _chunk_or_off(cls, v: int | None) -> int | None:
        if v == 0:
            raise ValueError("should be a positive number of tokens, or -1 to disable chunked prefill")
        return v

    @field_validator("extra_args")
    @classmethod
    def _printable_args(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if "\x00" in a]
        if bad:
            raise ValueError(f"argument {bad[0]!r} holds a NUL byte")
        return v


class SGLangServerError(RuntimeError):
    """The server failed to start, died, timed out or answered with an error."""


def sglang_python(options: ServerOptions | None = None) -> str | None:
    """The interpreter that has SGLang: the option, ``$TTC_SGLANG_PYTHON``, or this one (None if none)."""
    explicit = (options.python if options else None) or os.environ.get("TTC_SGLANG_PYTHON")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return sys.executable if importlib.util.find_spec("sglang") else None


def _not_installed(options: ServerOptions) -> SGLangServerError:
    configured = options.python or os.environ.get("TTC_SGLANG_PYTHON")
    where = f" ({configured} does not exist)" if configured else ""
    return SGLangServerError(
        f"SGLang is not installed{where}: pip install sglang=={SGLANG_VERSION} (or `make sglang-env`), "
        "or point TTC_SGLANG_PYTHON / server.python at an interpreter that has it"
    )


def engine_args(
    model_path: str,
    *,
    device: str,
    dtype: str,
    max_running_requests: int,
    options: ServerOptions,
    seed: int = 0,
    load_format: str | None = None,
) -> list[str]:
    """SGLang engine arguments for a run (shared by ``launch_server`` and SGLang's benchmarks)."""
    cpu = device == "cpu"
    args = [
        "--model-path",
        str(model_path),
        "--dtype",
        dtype,
        "--tp-size",
        str(options.tp_size),
        "--dp-size",
        str(options.dp_size),
        "--max-running-requests",
        str(max_running_requests),
        "--random-seed",
        str(seed),
    ]
    for flag, value in [
        ("--context-length", options.context_length),
        ("--mem-fraction-static", options.mem_fraction_static),
        ("--max-total-tokens", options.max_total_tokens or (CPU_MAX_TOTAL_TOKENS if cpu else None)),
        ("--chunked-prefill-size", options.chunked_prefill_size),
        ("--attention-backend", options.attention_backend or ("torch_native" if cpu else None)),
        ("--load-format", load_format),
    ]:
        if value is not None:
            args += [flag, str(value)]
    if cpu:
        args += ["--device", "cpu"]
    if options.disable_radix_cache:
        args.append("--disable-radix-cache")
    if options.sleep_on_idle if options.sleep_on_idle is not None else cpu:
        args.append("--sleep-on-idle")
    if options.deterministic:
        args.append("--enable-deterministic-inference")
    return args + list(options.extra_args)


def engine_env(device: str) -> dict[str, str]:
    """The environment for an SGLang process: on CPU, its CPU engine and the kernel stand-ins."""
    env = dict(os.environ)
    if device == "cpu":
        env["SGLANG_USE_CPU_ENGINE"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(STANDIN_PATH), env.get("PYTHONPATH")]))
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent(parent: int) -> None:
    # If the run is SIGKILLed, the kernel SIGKILLs the server's first process (Linux prctl
    # PR_SET_PDEATHSIG); the processes it spawned are the watchdog's.
    os.setsid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass
    if os.getppid() != parent:  # the run died before the prctl
        os._exit(1)


class SGLangServer:
    """A running SGLang server; use :meth:`launch` or :meth:`attach`."""

    def __init__(
        self,
        url: str,
        *,
        process: subprocess.Popen | None = None,
        log_path: Path | None = None,
        command: list[str] | None = None,
        cpu_standin: bool = False,
        watchdog: Watchdog | None = None,
    ):
        self.url = url.rstrip("/")
        self.process, self.log_path, self.command, self.cpu_standin = process, log_path, command, cpu_standin
        self.watchdog = watchdog
        self.startup_s: float | None = None

    @property
    def launched(self) -> bool:
        return self.process is not None

    # --- starting -----------------------------------------------------------------------
    @classmethod
    def attach(cls, url: str, timeout_s: float = 30) -> SGLangServer:
        server = cls(url)
        server.wait_ready(timeout_s)
        return server

    @classmethod
    def launch(
        cls,
        model_path: str,
        *,
        device: str,
        dtype: str,
        max_running_requests: int,
        options: ServerOptions,
        log_path: str | os.PathLike,
        seed: int = 0,
        load_format: str | None = None,
    ) -> SGLangServer:
        python = sglang_python(options)
        if python is None:
            raise _not_installed(options)
        port = free_port()
        cmd = [
            python,
            "-m",
            "sglang.launch_server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--enable-metrics",
            "--log-level",
            "info",
            *engine_args(
                model_path,
                device=device,
                dtype=dtype,
                max_running_requests=max_running_requests,
                options=options,
                seed=seed,
                load_format=load_format,
            ),
        ]
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            watchdog = Watchdog(log=log)  # first: no process of the server exists unwatched
            parent = os.getpid()
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=watchdog.env(engine_env(device)),
                    preexec_fn=lambda: _die_with_parent(parent),
                )
            except BaseException:
                watchdog.close()
                raise
        server = cls(
            f"http://127.0.0.1:{port}",
            process=proc,
            log_path=log_path,
            command=cmd,
            cpu_standin=device == "cpu",
            watchdog=watchdog,
        )
        atexit.register(server.stop)
        t0 = time.time()
        try:
            server.wait_ready(options.startup_timeout_s)
        except BaseException:
            server.stop()
            raise
        server.startup_s = time.time() - t0
        return server

    def wait_ready(self, timeout_s: float) -> None:
        """Poll ``/health_generate`` (a real one-token generation) until it answers 200."""
        deadline = time.time() + timeout_s
        while True:
            self.check_alive("while starting")
            try:
                with urllib.request.urlopen(self.url + "/health_generate", timeout=10) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.time() > deadline:
                raise self.error(f"did not become healthy within {timeout_s:.0f} s")
            time.sleep(0.5)

    # --- state ----------------------------------------------------------------------------
    def check_alive(self, doing: str = "") -> None:
        if self.process is not None and self.process.poll() is not None:
            raise self.error(f"exited with code {self.process.returncode} {doing}".strip())

    def error(self, what: str) -> SGLangServerError:
        who = f"SGLang server at {self.url}" + (f" (pid {self.process.pid})" if self.process else "")
        msg = f"{who} {what}"
        if self.log_path:
            msg += f"\n--- last lines of {self.log_path} ---\n{self.log_tail()}"
        return SGLangServerError(msg)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path or not Path(self.log_path).exists():
            return "(no log)"
        with open(self.log_path, "rb") as f:
            f.seek(max(0, os.path.getsize(self.log_path) - 64_000))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])

    def get_json(self, path: str, timeout_s: float = 30) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=timeout_s) as r:
            return json.loads(r.read())

    def snapshot(self) -> dict:
        """The effective settings from ``GET /server_info`` (the scheduler's own values win)."""
        info = self.get_json("/server_info")
        internal = (info.get("internal_states") or [{}])[0] or {}
        snap = {k: internal.get(k, info.get(k)) for k in SNAPSHOT_KEYS if k in info or k in internal}
        snap["url"], snap["launched"] = self.url, self.launched
        if self.launched:
            snap["command"], snap["cpu_kernel_standin"] = self.command, self.cpu_standin
            snap["startup_s"] = round(self.startup_s or 0.0, 1)
        return snap

    # --- stopping ---------------------------------------------------------------------------
    def stop(self, grace_s: float = 20) -> None:
        """Stop a launched server: its process group, then (by the watchdog) any process of it that
        left the group. Attached servers are left alone."""
        proc = self.process
        if proc is None or getattr(self, "_stopped", False):
            return
        self._stopped = True
        pgid = proc.pid  # the server leads its own process group (setsid)
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            if _group_gone(pgid, proc, wait_s):
                break
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self.watchdog is not None:
            self.watchdog.close()
        atexit.unregister(self.stop)

    def __enter__(self) -> SGLangServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _group_gone(pgid: int, proc: subprocess.Popen, wait_s: float) -> bool:
    deadline = time.time() + wait_s
    while time.time() < deadline:
        proc.poll()  # reap our own child so it does not linger as a zombie
        if not group_processes(pgid):
            return True
        time.sleep(0.2)
    return False


def group_processes(pgid: int) -> list[int]:
    """PIDs still alive in a process group (for checking that nothing is left behind)."""
    import psutil

    alive = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return alive
