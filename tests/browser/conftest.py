"""Fixtures for the real-browser tests: one throw-away JupyterLab server per test, Chromium.

Isolation: every test gets its *own* JupyterLab server (``jupyter_lab``, function scope)
with its own root folder, user settings, workspaces folder, runtime folder and cache
(``TRANSFER_NB_CACHE`` from ``tests/conftest.py``), and opens its notebook in a workspace
named after the test. No tab, layout or kernel of one test can be restored into, or
compete for the CPU with, the next one: the server and its kernels are killed (process
group) when the test ends. Each test also gets a fresh browser context (``page``).

The server runs from this interpreter (``sys.executable -m jupyter lab``), token and
password disabled, bound to 127.0.0.1 on a free port, with
``LabApp.expose_app_in_browser`` so that the tests can read the kernel's and the cells'
actual state (``window.jupyterapp``; see :mod:`tests.browser.lab`). The kernel spec
``python3`` resolves to this interpreter's ipykernel.

Failures: a test drives the page through named steps (the ``steps`` fixture). When a test
fails, ``build/browser/<test>.failure.png`` (screenshot), ``<test>.server.log`` (the
server's and kernels' output) and ``<test>.failure.txt`` (the step it was in, the steps
done, the browser console errors) are written, and the step is added to the error.

Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright (Playwright's own browser
download does not work on these machines); without it the tests skip with a reason.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
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
    # a busy machine must not make Chromium throttle the page's timers
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]

SERVER_START_TIMEOUT_S = 120  # a cold start of jupyter-server on a loaded 2-core machine
_REPORTS = pytest.StashKey[dict]()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/api", timeout=5) as r:
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
    if proc.poll() is None:
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


def slug_of(item) -> str:
    """A file- and URL-safe name for a test (its name, parameters included)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name).strip("_")



@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so fixtures can tell that the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f"{CHROMIUM} not found: the real-browser test needs Debian's chromium "
            "(run `bash scripts/install_browser.sh` as root, or `apt-get install chromium`)"
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR


@pytest.fixture
def jupyter_lab(chromium_path, tmp_path, request, screenshot_dir):
    """This test's own JupyterLab; yields a dict with ``url``, ``root``, ``log`` and
    ``workspace`` (a name of this test's own)."""
    root = tmp_path / "root"
    root.mkdir()
    settings = tmp_path / "user-settings"
    workspaces = tmp_path / "workspaces"
    workspaces.mkdir()
    _write_lab_settings(settings)
    env = _server_env(tmp_path)
    log_path = tmp_path / "server.log"
    slug = slug_of(request.node)

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
            "--LabApp.expose_app_in_browser=True",
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
                time.sleep(0.5)  # polling the server's own answer, not waiting blind
            if proc.poll() is None and _api_ready(url):
                try:
                    yield {"url": url, "root": root, "log": log_path,
                           "workspace": slug}
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
    shutil.copyfile(log_path, screenshot_dir / f"{slug}.server.log")
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
def viewport() -> dict:
    """The page's size; a test module overrides this fixture for another screen."""
    return {"width": 1400, "height": 1000}


@pytest.fixture
def page(browser, viewport):
    """A fresh browser context (no storage shared with another test) and its page."""
    context = browser.new_context(viewport=viewport)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
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


class Steps:
    """The named steps of a browser test: ``with steps("open the notebook"): ...``.

    An exception raised inside a step gets a note naming the step (shown under the
    traceback); the fixture writes the failure artefacts after the test.
    """

    def __init__(self, slug: str, artefacts: Path):
        self.slug = slug
        self.artefacts = artefacts
        self.current: str | None = None
        self.failed: str | None = None
        self.done: list[str] = []

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.current = name
        try:
            yield
        except BaseException as exc:
            if self.failed is None:
                self.failed = name
                exc.add_note(
                    f"browser test {self.slug} failed in step: {name!r} (after "
                    f"{len(self.done)} steps done); screenshot, server log and details in "
                    f"{self.artefacts}/{self.slug}.*"
                )
            raise
        finally:
            self.current = None
        self.done.append(name)


def _save_failure(page, lab, steps: Steps, screenshot_dir: Path, report) -> None:
    slug = steps.slug
    try:
        page.screenshot(path=str(screenshot_dir / f"{slug}.failure.png"), timeout=30_000)
    except Exception as exc:  # noqa: BLE001 - the test's own failure matters more
        (screenshot_dir / f"{slug}.failure.png.error").write_text(repr(exc))
    log = Path(lab["log"])
    if log.exists():
        shutil.copyfile(log, screenshot_dir / f"{slug}.server.log")
    errors = "\n".join(getattr(page, "console_errors", [])[-40:])
    step = steps.failed or steps.current or "(after the last step, or before the first)"
    text = (
        f"test: {report.nodeid}\nfailed in step: {step}\n"
        f"steps done: {steps.done}\n\n--- error ---\n{report.longreprtext[-6000:]}\n\n"
        f"--- browser console errors ---\n{errors}\n\n"
        f"--- server log tail ---\n{_log_tail(log, 40)}\n"
    )
    (screenshot_dir / f"{slug}.failure.txt").write_text(text)
    print(f"\n[browser] {slug}: failed in step {step!r}; artefacts in {screenshot_dir}/{slug}.*")


@pytest.fixture
def steps(request, jupyter_lab, page, screenshot_dir):
    """Named steps for this test; on failure, save screenshot + server log + step."""
    slug = slug_of(request.node)
    for old in screenshot_dir.glob(f"{slug}.*"):  # artefacts of an earlier failed run
        old.unlink()
    st = Steps(slug, screenshot_dir)
    yield st
    report = request.node.stash.get(_REPORTS, {}).get("call")
    if report is not None and report.failed:
        _save_failure(page, jupyter_lab, st, screenshot_dir, report)
