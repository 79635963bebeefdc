"""`make lab`: JupyterLab started by scripts/lab.py (what the target runs) serves the notebooks with the
`ttc-energy` kernel of this environment, and a section notebook's first cells run interactively, without
papermill, through the server's REST and kernel websocket API. A kernel started at the repository root
runs the parameters cell's defaults too."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy  # make test-fast leaves this module out

pytest.importorskip("jupyterlab")
websocket = pytest.importorskip("websocket")  # websocket-client, a dependency of jupyter_server

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "notebooks/00_overview.ipynb"
PUBLISHED_RUNS = ROOT / "outputs" / "published" / "runs"
TOKEN = "ttc-energy-test-" + uuid.uuid4().hex
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _lab():
    """scripts/lab.py as a module."""
    spec = importlib.util.spec_from_file_location("lab", ROOT / "scripts" / "lab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


class Server:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
        return json.loads(text) if text else {}


def _wait_ready(server: Server, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            server.api("GET", "/api/status")
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"JupyterLab not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it shuts its kernels down), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab as `make lab LAB_PORT=<free> LAB_TOKEN=<fixed>` starts it, with Jupyter's per-user config and
    runtime files in a temporary folder; always stopped, on failure too."""
    home = tmp_path_factory.mktemp("jupyter")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    port, log = _free_port(), home / "lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "scripts/lab.py",
                "--port",
                str(port),
                "--token",
                TOKEN,
                "--no-browser",
                "--ServerApp.port_retries=0",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        server = Server(port)
        _wait_ready(server, proc, log)
        server.log = log
        yield server
    finally:
        _stop(proc)


class Kernel:
    """A kernel's channels over the server's websocket, executing code the way JupyterLab's notebook does."""

    def __init__(self, server: Server, kernel_id: str):
        ws_url = server.url.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels?token={TOKEN}"
        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.session = uuid.uuid4().hex

    def execute(self, code: str, timeout: float = 120) -> str:
        """Run ``code``; its text output, once the kernel is idle again. Fails with the traceback on an error."""
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "session": self.session,
            "username": "test",
            "version": "5.3",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        self.ws.send(
            json.dumps(
                {
                    "header": header,
                    "parent_header": {},
                    "metadata": {},
                    "content": content,
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        out, deadline = [], time.monotonic() + timeout
        while True:
            self.ws.settimeout(max(deadline - time.monotonic(), 0.1))
            msg = json.loads(self.ws.recv())
            if msg.get("channel") != "iopub" or msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, c = msg["msg_type"], msg["content"]
            if kind == "error":
                pytest.fail(f"cell failed:\n{code}\n" + ANSI.sub("", "\n".join(c["traceback"])))
            if kind == "stream":
                out.append(c["text"])
            elif kind in ("execute_result", "display_data"):
                out.append(c["data"].get("text/plain", ""))
            elif kind == "status" and c["execution_state"] == "idle":
                return "".join(out)

    def close(self):
        self.ws.close()


def _expected_specs() -> int:
    import ttclib

    return len(ttclib.load_params(ROOT / "params" / "00_overview.yaml", "default").specs)


CHECK = "import os, sys, ttclib; plan = ttclib.load_params(params_file, profile); print(len(plan.specs), os.getcwd())"


def test_make_lab_runs_scripts_lab():
    """The target passes LAB_PORT and LAB_TOKEN to the script the tests start (-o: no env rebuild)."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    cmd = subprocess.run(
        ["make", "-n", "-o", ".venv/.ready", "lab", "LAB_PORT=9123", "LAB_TOKEN=abc"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "scripts/lab.py --port 9123 --token abc" in cmd


def test_server_offers_this_environments_kernel(lab):
    specs = lab.api("GET", "/api/kernelspecs")
    assert specs["default"] == "ttc-energy"
    assert specs["kernelspecs"]["ttc-energy"]["spec"]["argv"][0] == sys.executable
    nb = lab.api("GET", f"/api/contents/{NOTEBOOK}")["content"]
    assert nb["metadata"]["kernelspec"]["name"] == "ttc-energy"


def test_notebook_first_cells_run_interactively(lab):
    """Open 00_overview as JupyterLab does (a session for the notebook, its kernel from its metadata), run its
    parameters cell as it stands, then load its params from the kernel's folder, notebooks/."""
    nb = lab.api("GET", f"/api/contents/{NOTEBOOK}")["content"]
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in cells[0]["metadata"].get("tags", [])
    session = lab.api(
        "POST",
        "/api/sessions",
        {
            "path": NOTEBOOK,
            "name": Path(NOTEBOOK).name,
            "type": "notebook",
            "kernel": {"name": nb["metadata"]["kernelspec"]["name"]},
        },
    )
    kernel = Kernel(lab, session["kernel"]["id"])
    try:
        kernel.execute(cells[0]["source"])
        count, cwd = kernel.execute(CHECK).split()
        assert (int(count), cwd) == (_expected_specs(), str(ROOT / "notebooks"))
        assert kernel.execute("print(sys.executable)").strip() == sys.executable
        if PUBLISHED_RUNS.is_dir():  # the published runs: the analysis cell only loads, measures nothing
            kernel.execute(f"runs_dir = {str(PUBLISHED_RUNS)!r}")
            kernel.execute(cells[1]["source"])
            assert int(kernel.execute("print(len(study.runs))")) > 0
    finally:
        kernel.close()
        lab.api("DELETE", f"/api/sessions/{session['id']}")


def test_parameters_cell_runs_from_the_repository_root(tmp_path, monkeypatch):
    """A kernel whose cwd is the repository root (a notebook opened by a Jupyter started there) loads the
    parameters cell's default params file too."""
    from jupyter_client.manager import start_new_kernel

    _lab().ensure_kernelspec()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    parameters = _code_cells(ROOT / NOTEBOOK)[0]
    km, kc = start_new_kernel(kernel_name="ttc-energy", cwd=str(ROOT), startup_timeout=60)
    try:
        out = []
        for code in (parameters, CHECK):
            reply = kc.execute_interactive(code, timeout=120, output_hook=lambda m: out.append(m))
            assert reply["content"]["status"] == "ok", ANSI.sub("", "\n".join(reply["content"].get("traceback", [])))
        text = "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream")
        assert text.split() == [str(_expected_specs()), str(ROOT)]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_kernelspec_in_the_environment_wins_over_a_stale_user_one(tmp_path, monkeypatch):
    """Another clone's `--user` spec (naming an interpreter that is gone) must not be the kernel Jupyter picks,
    and a stale spec inside the environment is rewritten."""
    from jupyter_client.kernelspec import KernelSpecManager

    lab = _lab()
    stale = {
        "argv": ["/elsewhere/.venv/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ttc-energy",
        "language": "python",
    }
    user = tmp_path / "user" / "kernels" / "ttc-energy"
    user.mkdir(parents=True)
    (user / "kernel.json").write_text(json.dumps(stale))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "user"))
    lab.ensure_kernelspec()
    assert KernelSpecManager().get_kernel_spec("ttc-energy").argv[0] == sys.executable

    prefix = tmp_path / "env"
    lab.kernel_dir(str(prefix)).mkdir(parents=True)
    (lab.kernel_dir(str(prefix)) / "kernel.json").write_text(json.dumps(stale))
    assert json.loads((lab.ensure_kernelspec(str(prefix)) / "kernel.json").read_text())["argv"][0] == sys.executable
