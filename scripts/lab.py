"""Start JupyterLab on this repository with the `ttc-energy` kernel (what `make lab` runs).

The kernel spec is installed into the running environment (``ipykernel install --sys-prefix``), so the
kernel is this interpreter, this clone's .venv, even when another clone installed a ``--user``
`ttc-energy` spec: inside a virtualenv Jupyter looks in the environment's data directory first.
JupyterLab serves the whole repository and opens notebooks/; a notebook's kernel starts in the
notebook's folder, as under papermill. Jupyter prints the URL (with its token) to open.

    .venv/bin/python scripts/lab.py                          # port 8888, or the next free one
    .venv/bin/python scripts/lab.py --port 9000 --token s3cret --no-browser
    .venv/bin/python scripts/lab.py --install-kernel         # only (re)install the kernel spec

Arguments it does not know are passed on to ``jupyter lab`` (e.g. ``--ServerApp.port_retries=0``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "ttc-energy"


def kernel_dir(prefix: str = sys.prefix) -> Path:
    return Path(prefix) / "share" / "jupyter" / "kernels" / KERNEL


def ensure_kernelspec(prefix: str = sys.prefix) -> Path:
    """Install the `ttc-energy` kernel spec under ``prefix`` unless the one there already runs this Python
    (a copied or moved clone has one naming the old interpreter)."""
    spec = kernel_dir(prefix) / "kernel.json"
    if spec.exists() and json.loads(spec.read_text())["argv"][0] == sys.executable:
        return spec.parent
    from ipykernel.kernelspec import install

    return Path(install(kernel_name=KERNEL, display_name=KERNEL, prefix=prefix))


def has_display() -> bool:
    """Whether a browser can be opened here (no X/Wayland display on Linux means a headless machine)."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def lab_command(port: int, browser: bool, extra: list[str]) -> list[str]:
    """The ``jupyter lab`` command line, run by this interpreter (so JupyterLab is this environment's)."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={ROOT}",
        "--LabApp.default_url=/lab/tree/notebooks",
        f"--MappingKernelManager.default_kernel_name={KERNEL}",
        f"--ServerApp.port={port}",
        f"--ServerApp.open_browser={browser}",
    ]
    if getattr(os, "geteuid", lambda: 1)() == 0:  # containers run as root, which Jupyter refuses by default
        cmd.append("--ServerApp.allow_root=True")
    return cmd + extra


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8888, help="port to serve on; taken: Jupyter tries the next ones")
    ap.add_argument("--token", default="", help="access token (default: Jupyter draws a random one)")
    ap.add_argument("--no-browser", action="store_true", help="do not open a browser (the default without a display)")
    ap.add_argument("--install-kernel", action="store_true", help="only install the kernel spec, then exit")
    args, extra = ap.parse_known_args(argv)
    spec = ensure_kernelspec()
    if args.install_kernel:
        print(f"kernel {KERNEL}: {spec}")
        return 0
    os.environ["JUPYTER_PREFER_ENV_PATH"] = "1"  # this environment's kernel spec before any --user one
    if args.token:  # through the environment, so the token stays out of the process list
        os.environ["JUPYTER_TOKEN"] = args.token
    cmd = lab_command(args.port, has_display() and not args.no_browser, extra)
    print(
        f"JupyterLab on {ROOT} with kernel {KERNEL} ({sys.executable}); open the URL printed below, "
        "Ctrl-C twice to stop",
        flush=True,
    )
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    sys.exit(main())
