"""The SGLang backend against a real SGLang server on this CPU (tiny model; SmolLM2 when slow)."""

from __future__ import annotations

import json
import os
import signal
import urllib.request

import pandas as pd
import pytest

from ttclib.rundir import partial_dir, read_segments
from ttclib.runner import _Execution, execute
from ttclib.server import SGLANG_VERSION, ServerOptions, SGLangServer, SGLangServerError, group_processes
from ttclib.serving import Request, SamplingParams, SGLangBackend, TransformersBackend, render_prompt
from ttclib.spec import RunSpec

pytestmark = pytest.mark.sglang

PROMPTS = [f"Question {i}: what is {i} plus {2 * i}? Answer:" for i in range(8)]


def test_health_and_server_snapshot(sglang_tiny):
    with urllib.request.urlopen(sglang_tiny.server.url + "/health_generate", timeout=30) as r:
        assert r.status == 200
    info = sglang_tiny.describe()
    snap = info["server"]
    assert info["backend"] == "sglang" and info["mode"] == "launch"
    # the model's size, counted from its config: the same as the weights transformers loads
    assert info["parameters"] == TransformersBackend(sglang_tiny.model_name).describe()["parameters"] > 0
    assert snap["version"] == SGLANG_VERSION and snap["device"] == "cpu" and snap["cpu_kernel_standin"]
    assert snap["max_running_requests"] == 16 and snap["max_total_num_tokens"] == 32768
    assert snap["disable_radix_cache"] is True and snap["attention_backend"] == "torch_native"
    assert snap["sleep_on_idle"] is True  # an idle CPU scheduler would otherwise spin a whole core


def test_idle_server_leaves_the_cpu_alone(sglang_tiny):
    import time

    import psutil

    procs = [psutil.Process(p) for p in group_processes(sglang_tiny.server.process.pid)]
    before = sum(sum(p.cpu_times()[:2]) for p in procs)
    time.sleep(3)
    assert sum(sum(p.cpu_times()[:2]) for p in procs) - before < 0.5  # CPU seconds in 3 s


def test_token_counts_agree_with_the_tokenizer(sglang_tiny):
    tok = sglang_tiny.tokenizer
    fixed = sglang_tiny.generate(
        [Request(f"f{i}", p, SamplingParams(max_new_tokens=7, ignore_eos=True)) for i, p in enumerate(PROMPTS)]
    )
    for c, p in zip(fixed, PROMPTS, strict=True):
        assert c.prompt_tokens == len(tok(p).input_ids)
        assert c.completion_tokens == 7 and c.finish_reason == "length"
        assert c.t_start <= c.t_end and c.cached_tokens == 0


def test_greedy_output_identical_to_transformers(sglang_tiny, tiny_model_dir):
    reqs = [Request(f"g{i}", p, SamplingParams(max_new_tokens=16)) for i, p in enumerate(PROMPTS)]
    ours = sglang_tiny.generate(reqs)
    ref = TransformersBackend(tiny_model_dir, batch_size=4).generate(reqs)
    assert [c.text for c in ours] == [c.text for c in ref]
    assert [c.completion_tokens for c in ours] == [c.completion_tokens for c in ref]
    assert [c.finish_reason for c in ours] == [c.finish_reason for c in ref]


def test_first_token_times_split_each_request(sglang_tiny):
    """The engine says when each request's first token came out (meta_info request_received_ts +
    first_token_latency): inside the request's own start and end, so its prefill and decode are known."""
    reqs = [Request(f"f{i}", p, SamplingParams(max_new_tokens=16, ignore_eos=True)) for i, p in enumerate(PROMPTS)]
    for c in sglang_tiny.generate(reqs):
        assert c.t_first_token is not None and c.t_start <= c.t_first_token <= c.t_end, c
        assert c.t_end - c.t_first_token > 0  # fifteen decode steps after the first token


def test_loglikelihood_equals_transformers(sglang_tiny, tiny_model_dir):
    """Log-likelihood scoring through SGLang's return_logprob (no token generated) gives the sums the
    transformers backend computes on the same weights, for options that share a context (the server may
    serve the context from its prefix cache; the scored tokens are always computed)."""
    pairs = [(p, x) for p in PROMPTS[:3] for x in (" 3", " 12", " twelve and more")]
    reqs = [Request(f"l{i}", c, SamplingParams(max_new_tokens=1), continuation=x) for i, (c, x) in enumerate(pairs)]
    ours, ref = sglang_tiny.generate(reqs), TransformersBackend(tiny_model_dir, batch_size=4).generate(reqs)
    for a, b in zip(ours, ref, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=2e-3, rel=1e-3), (a, b)
        assert a.completion_tokens == 0 and a.finish_reason == "loglikelihood" and a.prompt_tokens == b.prompt_tokens


def test_batch_of_32_is_scheduled_by_the_server(sglang_tiny):
    reqs = [Request(f"b{i}", f"Item {i}:", SamplingParams(max_new_tokens=24, ignore_eos=True)) for i in range(32)]
    out = list(sglang_tiny.stream(reqs))
    assert sorted(c.request_id for c in out) == sorted(r.id for r in reqs)
    # Engine-side intervals: the server ran many at once but never more than max_running_requests.
    # (Counted at each request's midpoint: a finish is stamped a few ms after its slot is reused.)
    mids = [(c.t_start + c.t_end) / 2 for c in out]
    peak = max(sum(d.t_start <= m <= d.t_end for d in out) for m in mids)
    assert 8 <= peak <= 16


def test_samples_and_stop_strings(sglang_tiny):
    greedy = sglang_tiny.generate([Request("s", PROMPTS[0], SamplingParams(max_new_tokens=12))])[0]
    assert len(greedy.text) > 2
    stop = greedy.text[1:3]
    out = sglang_tiny.generate([Request("s", PROMPTS[0], SamplingParams(max_new_tokens=12, stop=(stop,), n=3))])
    assert [c.sample for c in out] == [0, 1, 2]
    assert all(stop not in c.text and c.finish_reason == "stop" for c in out)


def test_attach_mode_leaves_the_server_running(sglang_tiny, tiny_model_dir):
    attached = SGLangBackend(tiny_model_dir, options=ServerOptions(url=sglang_tiny.server.url))
    assert attached.describe()["mode"] == "attach"
    c = attached.generate([Request("a", PROMPTS[1], SamplingParams(max_new_tokens=5, ignore_eos=True))])[0]
    assert c.completion_tokens == 5
    attached.close()
    sglang_tiny.server.check_alive()
    assert sglang_tiny.generate([Request("b", PROMPTS[1], SamplingParams(max_new_tokens=2))])


def test_estimate_meter_refuses_an_attached_server(sglang_tiny, tiny_model_dir, tmp_path):
    spec = RunSpec(
        model=tiny_model_dir,
        strategy="base",
        backend="sglang",
        meter="estimate",
        per_level=1,
        server=ServerOptions(url=sglang_tiny.server.url),
        idle_s=0,
        warmup=False,
    )
    with pytest.raises(ValueError, match="attached server at http://127.0.0.1:[0-9]+ is neither"):
        execute(spec, tmp_path, progress=False)
    sglang_tiny.server.check_alive()  # and left it running


def test_bad_model_path_fails_with_the_server_log(sglang_python, tmp_path):
    (tmp_path / "bogus").mkdir()
    (tmp_path / "bogus" / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    with pytest.raises(SGLangServerError) as e:
        SGLangServer.launch(
            str(tmp_path / "bogus"),
            device="cpu",
            dtype="float32",
            max_running_requests=2,
            options=ServerOptions(startup_timeout_s=240),
            log_path=tmp_path / "server.log",
        )
    msg = str(e.value)
    assert "exited with code" in msg and "last lines of" in msg and str(tmp_path / "server.log") in msg


def test_missing_sglang_is_a_clear_error(monkeypatch, tmp_path):
    import ttclib.server as server

    monkeypatch.setattr(server, "sglang_python", lambda options=None: None)
    with pytest.raises(SGLangServerError, match="SGLang is not installed"):
        SGLangServer.launch(
            "x",
            device="cpu",
            dtype="float32",
            max_running_requests=1,
            options=ServerOptions(),
            log_path=tmp_path / "log",
        )


def test_killed_server_gives_a_clear_error_and_a_resumable_run(sglang_python, tiny_model_dir, tmp_path, monkeypatch):
    spec = RunSpec(
        model=tiny_model_dir,
        strategy="base",
        backend="sglang",
        device="cpu",
        per_level=6,
        batch_size=4,
        max_new_tokens=24,
        ignore_eos=True,
        idle_s=0,
        warmup=False,
    )
    original = _Execution._checkpoint
    servers = []

    def crash_after_first(self, *args):
        out = original(self, *args)
        proc = self.backend.server.process
        if not servers:
            servers.append(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)  # the server crashes mid-run
        return out

    def record(self, *args):
        servers.append(self.backend.server.process.pid)
        return original(self, *args)

    monkeypatch.setattr(_Execution, "_checkpoint", crash_after_first)
    with pytest.raises(SGLangServerError) as e:
        execute(spec, tmp_path, progress=False)
    assert "last lines of" in str(e.value) and ("exited with code" in str(e.value) or "failed" in str(e.value))
    assert group_processes(servers[0]) == []  # nothing left behind after the crash
    partial = partial_dir(spec, tmp_path)
    kept = pd.concat(seg.queries for seg in read_segments(partial))
    assert len(kept) >= 4 and (partial / "server.log").stat().st_size > 0

    monkeypatch.setattr(_Execution, "_checkpoint", record)
    d = execute(spec, tmp_path, progress=False)
    assert group_processes(servers[-1]) == []  # and nothing after success
    info = json.loads((d / "run.json").read_text())
    q = pd.read_parquet(d / "queries.parquet")
    assert info["resumed"] and len(q) == 18 and q.query_id.is_unique and (q.completion_tokens == 24).all()
    assert info["backend"]["backend"] == "sglang" and info["backend"]["server_log"] == "server.log"
    assert info["backend"]["server"]["max_running_requests"] == 4
    assert "Prefill batch" in (d / "server.log").read_text()


def _server_group(marker: str, timeout_s: float = 120) -> int | None:
    """Process group of the SGLang server whose command line mentions ``marker``."""
    import time

    import psutil

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if "sglang.launch_server" in cmd and marker in cmd:
                return os.getpgid(p.info["pid"])
        time.sleep(0.2)
    return None


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGKILL, -9)], ids=["SIGTERM", "SIGKILL"])
def test_stopping_ttc_run_stops_its_server(sglang_python, tiny_model_dir, tmp_path, sig, code):
    """SIGTERM: ttc stops the server itself. SIGKILL: the kernel kills it (parent-death signal)."""
    import subprocess
    import sys
    import time

    model = tmp_path / "model"  # a path of its own, to find this run's server among the session's
    model.symlink_to(tiny_model_dir)
    params = tmp_path / "p.yaml"
    params.write_text(
        json.dumps(
            {
                "profiles": {
                    "default": {
                        "runs_dir": "runs",
                        "defaults": dict(
                            model=str(model),
                            backend="sglang",
                            device="cpu",
                            strategy="base",
                            per_level=40,
                            batch_size=2,
                            max_new_tokens=64,
                            ignore_eos=True,
                            idle_s=0,
                            warmup=False,
                        ),
                    }
                }
            }
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "ttclib.cli", "run", str(params), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    pgid = _server_group(str(model))
    assert pgid is not None, proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no server"
    deadline = time.time() + 180
    first_segment = "runs/*.partial/segments/[0-9]*[0-9]"  # a finished segment (named by its first request)
    while not list(tmp_path.glob(first_segment)) and time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.1)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == code
    deadline = time.time() + 30
    while group_processes(pgid) and time.time() < deadline:
        time.sleep(0.2)
    assert group_processes(pgid) == []
    assert list(tmp_path.glob(first_segment))


# A stand-in for `ttc`: launches a server through ttclib, says when it is healthy, then waits.
LAUNCHER = """
import sys
from ttclib.server import SGLangServer, ServerOptions
SGLangServer.launch(sys.argv[1], device="cpu", dtype="float32", max_running_requests=2,
                    options=ServerOptions(startup_timeout_s=600), log_path=sys.argv[2])
print("healthy", flush=True)
sys.stdin.read()
"""


def _server_processes(ttc, marker: str) -> dict:
    """Every process of the server launched by ``ttc`` now: its children, their descendants, and
    every process in the session of the launch_server whose command line mentions ``marker``."""
    import psutil

    found = {}
    try:
        found.update((p.pid, p) for p in psutil.Process(ttc.pid).children(recursive=True))
    except psutil.NoSuchProcess:
        pass
    sessions = {os.getsid(p.pid) for p in found.values() if marker in " ".join(_cmdline(p))}
    # A child caught between fork and exec still shows the launcher's command line (which names the
    # model) in the launcher's session, this test's own: that session is never the server's.
    sessions.discard(os.getsid(0))
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) in sessions:
                found[p.pid] = p
                found.update((c.pid, c) for c in p.children(recursive=True))
        except (OSError, psutil.Error):
            pass
    return found


def _cmdline(p) -> list[str]:
    import psutil

    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _alive(procs) -> list[str]:
    import psutil

    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{p.pid} {' '.join(_cmdline(p))[:80]}")
        except psutil.Error:
            pass
    return alive


@pytest.mark.parametrize("stage", ["starting", "healthy"])
def test_sigkilled_ttc_leaves_no_process_of_its_server(sglang_python, tiny_model_dir, tmp_path, stage):
    """SIGKILL the launching process once the engine processes are spawned, while they still import
    (they arm their own parent-death signal only after that, and the launcher's reaches only the
    launcher), or once the server is healthy: within seconds, nothing of the server is left."""
    import select
    import subprocess
    import sys
    import time

    model = tmp_path / "model"  # a path of its own, to find this server among the session's
    model.symlink_to(tiny_model_dir)
    ttc = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(model), str(tmp_path / "server.log")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TTC_SGLANG_PYTHON": sglang_python},
    )
    seen, deadline = {}, time.time() + 600
    while time.time() < deadline and ttc.poll() is None:
        seen.update(_server_processes(ttc, str(model)))
        importing = [p.pid for p in seen.values() if "spawn_main" in " ".join(_cmdline(p))]
        ready = select.select([ttc.stdout], [], [], 0)[0]
        if (stage == "starting" and len(importing) == 2) or (stage == "healthy" and ready):
            break  # "starting": the scheduler and the detokenizer, not yet named sglang::...
        time.sleep(0.05)
    assert ttc.poll() is None, ttc.stderr.read().decode()[-2000:]
    seen.update(_server_processes(ttc, str(model)))
    before = _alive(seen.values())
    ttc.kill()
    ttc.wait()
    assert (ttc.stdout.read() == b"healthy\n") == (stage == "healthy")  # killed before it was, or after
    if stage == "healthy":
        assert sum("sglang::" in p for p in before) == 2, before  # the scheduler and the detokenizer
    assert len(before) >= 4, before  # and the launcher, the resource tracker (+ ttclib's own)
    t0 = time.time()
    while _alive(seen.values()) and time.time() < t0 + 20:
        time.sleep(0.2)
    assert _alive(seen.values()) == [], (tmp_path / "server.log").read_text()[-3000:]
    assert time.time() - t0 < 10


@pytest.mark.slow
def test_smollm2_greedy_identical_to_transformers(sglang_python, tmp_path):
    from ttclib import benchmarks, strategies

    model = "smollm2-135m-instruct"
    ref = TransformersBackend(model, batch_size=8)
    bench, strat = benchmarks.get("arithmetic"), strategies.get("base")
    prompts = [
        render_prompt(ref.tokenizer, strat.messages(p, bench.answer_format), True)
        for p in bench.load(per_level=3, seed=3)
    ]
    reqs = [Request(str(i), p, SamplingParams(max_new_tokens=24)) for i, p in enumerate(prompts)]
    expected = ref.generate(reqs)
    backend = SGLangBackend(model, device="cpu", dtype="float32", batch_size=8, log_path=tmp_path / "server.log")
    try:
        got = backend.generate(reqs)
        pgid = backend.server.process.pid
    finally:
        backend.close()
    assert group_processes(pgid) == []
    assert [c.prompt_tokens for c in got] == [len(ref.tokenizer(p).input_ids) for p in prompts]
    assert [c.text for c in got] == [c.text for c in expected]
    assert [c.completion_tokens for c in got] == [c.completion_tokens for c in expected]
