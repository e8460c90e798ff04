"""Jupyter Lab as an analyst sees it, as PNG files (``make screenshots``' Lab part).

Jupyter Lab runs on a scratch copy of ``notebooks/`` (the stand-ins' variables in its
environment); headless Chromium, driven over the DevTools protocol (websocket-client),
opens each notebook, runs all its cells in Lab's own kernel, saves it, and takes the
whole notebook: the window is made as tall as the notebook's content (up to MAX_HEIGHT),
so nothing is cut. A saved report (untrusted: Lab's sanitizer shows it) can be taken too,
opened without running.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

WIDTH = 1400
MAX_HEIGHT = 20000
RUN_TIMEOUT = 300  # seconds a notebook's Run All may take
# Lab's settings for pictures: no "get notified about news?" toast, no update check; every
# cell in the page and no blank space after the last (the notebook's height is its cells')
_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "scrollPastEnd": False,
        "windowingMode": "none",
    },
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


class DevTools:
    """One Chromium page over the DevTools protocol: commands and their answers."""

    def __init__(self, url: str) -> None:
        import websocket  # websocket-client: only the screenshots need it

        self._ws = websocket.create_connection(url, timeout=RUN_TIMEOUT, suppress_origin=True)
        self._id = 0

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, script: str) -> Any:
        """``script`` (an async function's body) run in the page; what it returns."""
        result = self.send(
            "Runtime.evaluate",
            expression=f"(async () => {{ {script} }})()",
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"in the page: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, script: str, seconds: float = 60) -> Any:
        """Evaluate ``script`` until it gives something true; that."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.evaluate(script)
            if value:
                return value
            time.sleep(0.5)
        raise TimeoutError(f"the page never gave: {script}")

    def close(self) -> None:
        self._ws.close()


@contextmanager
def chromium_page(browser: str) -> Iterator[DevTools]:
    """Headless Chromium with one page, driven over the DevTools protocol."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        proc = subprocess.Popen(
            [
                browser,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={profile}",
                f"--window-size={WIDTH},1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            active = Path(profile) / "DevToolsActivePort"
            for _ in range(120):
                if active.exists() and active.read_text().strip():
                    break
                time.sleep(0.25)
            port = active.read_text().split()[0]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            page = DevTools(pages[0]["webSocketDebuggerUrl"])
            try:
                yield page
            finally:
                page.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@contextmanager
def lab_server(notebook_dir: Path, port: int) -> Iterator[str]:
    """Jupyter Lab on ``notebook_dir`` (its app exposed to the page's scripts); its URL
    with the token."""
    token = secrets.token_hex(16)
    settings = Path(tempfile.mkdtemp(prefix="lab-settings-"))
    for name, values in _SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--no-browser",
        f"--IdentityProvider.token={token}",
        f"--notebook-dir={notebook_dir}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={settings / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    lab = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/status?token={token}", timeout=1
                )
                break
            except OSError:
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/lab?token={token}"
    finally:
        lab.terminate()
        lab.wait(timeout=30)
        shutil.rmtree(settings, ignore_errors=True)


# the open notebook's scrolling box (Lab 4: the windowed panel's outer box), scrolled to
# the top: how much taller its content is than the box
_OVERFLOW = """
const root = window.knackPanel.content.node;
const boxes = [root, ...root.querySelectorAll('.jp-WindowedPanel-outer')];
boxes.forEach(b => { b.scrollTop = 0; });
return Math.max(...boxes.map(b => b.scrollHeight - b.clientHeight));
"""


def open_notebook(page: DevTools, name: str, *, run: bool) -> None:
    """Open ``name`` in Lab; with ``run``, Run All in its kernel (waits for the end), then
    save."""
    page.evaluate(f"""
        const app = window.jupyterapp;
        await app.commands.execute('application:close-all');
        const panel = await app.commands.execute('docmanager:open', {{path: {json.dumps(name)}}});
        await panel.context.ready;
        window.knackPanel = panel;  // the shell's current widget follows focus: none here
        for (const other of Array.from(app.shell.widgets('main'))) {{
            if (other !== panel) other.close();  // the launcher
        }}
        app.shell.activateById(panel.id);
        app.shell.collapseLeft();
        return true;""")
    if not run:
        page.wait_for("return !!window.knackPanel.content.widgets.length")
        return
    page.wait_for(
        "const s = window.knackPanel.sessionContext;"
        " return !!(s.session && s.session.kernel && s.session.kernel.status === 'idle');",
        seconds=120,
    )
    page.evaluate("""
        const panel = window.knackPanel;
        await panel.sessionContext.ready;
        await window.jupyterapp.commands.execute('notebook:run-all-cells');
        return true;""")
    page.wait_for(
        "const s = window.knackPanel.sessionContext;"
        " return s.session.kernel.status === 'idle' && ![...document.querySelectorAll("
        "'.jp-InputPrompt')].some(p => p.textContent.includes('*'));",
        seconds=RUN_TIMEOUT,
    )
    ran = page.evaluate(
        "return window.knackPanel.content.widgets.filter("
        "c => c.model.type === 'code' && c.model.executionCount).length;"
    )
    if not ran:
        raise RuntimeError(f"Run All ran no cell of {name}")
    page.evaluate("await window.knackPanel.context.save(); return true;")


def full_shot(page: DevTools, png: Path) -> int:
    """The current notebook whole: the window grown until the notebook needs no scrolling
    (up to MAX_HEIGHT), then a screenshot; the height taken."""
    height = 1000
    for _ in range(6):  # a taller window lays out (and renders) more cells: measure again
        page.send(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        time.sleep(1.5)
        extra = int(page.evaluate(_OVERFLOW) or 0)
        if extra <= 0 or height >= MAX_HEIGHT:
            break
        height = min(MAX_HEIGHT, height + extra + 20)
    time.sleep(1)  # maps fit their points when their box gets its size
    shot = page.send("Page.captureScreenshot", format="png")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(base64.b64decode(shot["data"]))
    return height


def lab_screenshots(
    browser: str,
    notebooks: list[Path],
    png_dir: Path,
    port: int,
    *,
    start: int = 1,
    reports: tuple[Path, ...] = (),
) -> list[Path]:
    """Lab after Run All on each of ``notebooks`` (copies, in a scratch directory), then each
    of ``reports`` opened as saved; the PNG files, numbered from ``start``."""
    work = Path(tempfile.mkdtemp(prefix="lab-"))
    shots: list[Path] = []
    try:
        for source in [*notebooks, *reports]:
            shutil.copyfile(source, work / source.name)
        with lab_server(work, port) as url, chromium_page(browser) as page:
            page.send("Page.enable")
            page.send("Page.navigate", url=url)
            page.wait_for("return !!(window.jupyterapp && window.jupyterapp.shell)", 120)
            page.evaluate("await window.jupyterapp.started; await window.jupyterapp.restored;")
            for source in [*notebooks, *reports]:
                ran = source in notebooks
                open_notebook(page, source.name, run=ran)
                what = "run-all" if ran else "report"
                png = png_dir / f"{start + len(shots):02d}-lab-{what}-{source.stem}.png"
                height = full_shot(page, png)
                if ran:
                    page.evaluate("await window.knackPanel.sessionContext.shutdown(); return true;")
                shots.append(png)
                print(f"lab    {png} ({height} px)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return shots
