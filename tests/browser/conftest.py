"""Fixtures for the real-browser tests: a throw-away JupyterLab server and a Chromium page.

The server runs from this interpreter (``sys.executable -m jupyter lab``) in a temporary
root directory, with token and password disabled, bound to 127.0.0.1 on a free port.
Every Jupyter directory (config, data, runtime, user settings, workspaces) points into
the temporary directory, so the user's own JupyterLab state cannot leak into the test,
and the kernel spec ``python3`` resolves to this interpreter's ipykernel (its argv
starts with ``python``, which jupyter_client replaces by the server's ``sys.executable``).

Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright (Playwright's own browser
download does not work on these machines); without it the tests skip with a reason.
"""
from __future__ import annotations

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

import pytest

# Debian's Chromium; TRANSFER_NB_CHROMIUM overrides the path (e.g. to check the skip).
CHROMIUM = os.environ.get("TRANSFER_NB_CHROMIUM", "/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "build" / "browser"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

SERVER_START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/api", timeout=2) as r:
            return r.status == 200 and "version" in json.loads(r.read().decode())
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _log_tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no server log)"


def _write_lab_settings(settings_dir: Path) -> None:
    """Quiet JupyterLab: no news/update toasts that could cover the notebook."""
    target = settings_dir / "@jupyterlab" / "apputils-extension"
    target.mkdir(parents=True, exist_ok=True)
    (target / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


def _server_env(tmp: Path) -> dict:
    env = dict(os.environ)
    for name in ("config", "data", "runtime", "ipython"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    env["JUPYTER_CONFIG_DIR"] = str(tmp / "config")
    env["JUPYTER_DATA_DIR"] = str(tmp / "data")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
    env["IPYTHONDIR"] = str(tmp / "ipython")
    # Kernel specs, lab extensions (jupyterlab_widgets' manager) from this environment.
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    env.pop("JUPYTER_PREFER_ENV_PATH", None)
    # The kernel must import this checkout's `widgets` and `transfer_nb`.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env.setdefault("TRANSFER_NB_FAST", "1")
    # Let ipykernel choose its inline backend (an inherited MPLBACKEND=Agg would hide figures).
    env.pop("MPLBACKEND", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop the server and its kernels (same process group); escalate to SIGKILL."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    # Kernels may outlive the server by a moment; clear the group of any leftovers.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f"{CHROMIUM} not found: the real-browser test needs Debian's chromium "
            "(run `bash scripts/install_browser.sh` as root, or `apt-get install chromium`)"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def jupyter_lab(chromium_path, tmp_path_factory):
    """A running JupyterLab; yields a dict with ``url``, ``root`` (its root dir) and ``log``."""
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = tmp / "root"
    root.mkdir()
    settings = tmp / "user-settings"
    workspaces = tmp / "workspaces"
    workspaces.mkdir()
    _write_lab_settings(settings)
    env = _server_env(tmp)
    log_path = tmp / "server.log"

    last_error = ""
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [
            sys.executable, "-m", "jupyter", "lab",
            "--no-browser",
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.root_dir={root}",
            "--allow-root",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.terminals_enabled=False",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={workspaces}",
        ]
        log = open(log_path, "ab")
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while time.monotonic() < deadline and proc.poll() is None:
                if _api_ready(url):
                    break
                time.sleep(0.5)
            if proc.poll() is None and _api_ready(url):
                try:
                    yield {"url": url, "root": root, "log": log_path, "env": env}
                finally:
                    _kill_group(proc)
                    log.close()
                return
            last_error = (
                f"JupyterLab did not answer on {url}/api within {SERVER_START_TIMEOUT_S}s "
                f"(exit code {proc.poll()})"
            )
        finally:
            _kill_group(proc)
            if not log.closed:
                log.close()
    pytest.fail(f"{last_error}\n--- server log ---\n{_log_tail(log_path)}")


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.console_errors = []  # type: ignore[attr-defined]
    pg.on(
        "console",
        lambda msg: pg.console_errors.append(msg.text) if msg.type == "error" else None,
    )
    pg.on("pageerror", lambda exc: pg.console_errors.append(f"pageerror: {exc}"))
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR
