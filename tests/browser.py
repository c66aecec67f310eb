"""Real parts for browser tests: a JupyterLab server on a free loopback port, headless Debian
Chromium through Playwright, a kernel client attached to the notebook's own kernel, and offline
pages that fail the test on any non-local request."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import pathlib
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import nbformat

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = pathlib.Path(__file__).resolve().parent / "artifacts"
LOCAL_PREFIXES = ("file:", "data:", "blob:", "about:")

# For benchmarks against bqplot: record when a bqplot HeatMap replaces its canvas image (its
# paint), in window.__bqPaints, on the page's clock.
OBSERVE_BQPLOT_PAINTS = """() => {
  window.__bqPaints = [];
  const obs = new MutationObserver((records) => {
    for (const r of records) if (r.attributeName === 'href') window.__bqPaints.push(performance.timeOrigin + performance.now());
  });
  obs.observe(document.querySelector('.bqplot'), { attributes: true, subtree: true, attributeFilter: ['href'] });
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot(page: Any, name: str) -> pathlib.Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class Lab:
    """A JupyterLab server (own process group, killed as a group) serving ``root``."""

    def __init__(self, root: pathlib.Path, *, theme: str = "JupyterLab Light") -> None:
        self.root = root
        settings = root / ".lab-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        # No news pop-up over the views in screenshots; the theme a test asks for.
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false"})
        )
        (settings / "themes.jupyterlab-settings").write_text(json.dumps({"theme": theme}))
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(root / "lab.log", "w")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "lab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                f"--IdentityProvider.token={self.token}",
                "--ServerApp.allow_root=True",
                f"--ServerApp.root_dir={root}",
                "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--ServerApp.iopub_msg_rate_limit=1000000",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={
                **os.environ,
                "JUPYTER_PLATFORM_DIRS": "1",
                "JUPYTERLAB_SETTINGS_DIR": str(root / ".lab-settings"),
            },
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {(root / 'lab.log').read_text()[-2000:]}")
            try:
                self.api("/api/status")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("jupyter lab did not start in 60 s")

    def api(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            body = r.read()
            return json.loads(body) if body else None

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def write_notebook(self, name: str, cells: list[str]) -> pathlib.Path:
        return write_notebook(self.root / name, cells)

    def kernel_client(self) -> Any:
        """A client on the (single) running kernel: run code beside the notebook, read traits."""
        from jupyter_client import BlockingKernelClient
        from jupyter_core.paths import jupyter_runtime_dir

        deadline = time.time() + 60
        while time.time() < deadline:
            kernels = self._kernels()
            if kernels:
                break
            time.sleep(0.3)
        else:
            raise RuntimeError("no kernel started")
        kid = kernels[-1]["id"]
        conn = pathlib.Path(jupyter_runtime_dir()) / f"kernel-{kid}.json"
        client = BlockingKernelClient(connection_file=str(conn))
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        return client

    def _kernels(self) -> list[dict[str, Any]]:
        try:
            return self.api("/api/kernels") or []
        except OSError:  # the server answers 500 while a kernel is half-started
            return []

    def wait_kernel_idle(self, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            kernels = self._kernels()
            if kernels and all(k["execution_state"] == "idle" for k in kernels):
                return
            time.sleep(0.3)
        raise RuntimeError(f"the kernel was not idle within {timeout} s")

    def shutdown_kernels(self) -> None:
        with contextlib.suppress(OSError):
            for k in self.api("/api/kernels"):
                self.api(f"/api/kernels/{k['id']}", method="DELETE")

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def evaluate(client: Any, expr: str, setup: str = "") -> Any:
    """Run ``setup`` then evaluate ``expr`` in the kernel; returns ``json.loads`` of its repr'd JSON."""
    code = setup + f"\nimport json as _j\n__ls_result = _j.dumps({expr})"
    reply = client.execute_interactive(
        code, user_expressions={"r": "__ls_result"}, timeout=120, output_hook=lambda m: None
    )
    content = reply["content"]
    if content["status"] != "ok":
        raise RuntimeError(f"kernel error: {content.get('ename')}: {content.get('evalue')}")
    data = content["user_expressions"]["r"]
    if data.get("status") != "ok":
        raise RuntimeError(f"kernel error: {data}")
    return json.loads(ast.literal_eval(data["data"]["text/plain"]))


def open_notebook(
    page: Any,
    lab: Lab,
    name: str,
    cells: list[str] | None = None,
    *,
    run_all: bool = True,
    timeout: float = 120_000,
) -> None:
    """Open a notebook in Lab (written first from ``cells`` when given) and run all its cells
    through the Run menu, as a user would."""
    if cells is not None:
        lab.write_notebook(name, cells)
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-Notebook", timeout=timeout)
    lab.wait_kernel_idle(timeout / 1000)
    if run_all:
        page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")


@contextlib.contextmanager
def offline_guard(page: Any) -> Iterator[list[str]]:
    """Fail every request that is not local; yields the list of URLs that were attempted.

    The page first leaves what it showed: a JupyterLab page still polls its server, and one of
    its requests would count against the page opened next."""
    attempted: list[str] = []
    page.goto("about:blank")

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(LOCAL_PREFIXES):
            r.continue_()
        else:
            attempted.append(url)
            r.abort()

    page.route("**/*", route)
    yield attempted


def pick_from_lazy_picker(page: Any, selector: str, count: int, shown: str, pick: str) -> Any:
    """A picker of ``count`` entries, past the 500 of js/core/dom.ts's LazySelect: it holds the
    ``shown`` entry alone until used; focused, it lists every entry; then ``pick`` is chosen.
    Returns the picker's locator."""
    picker = page.locator(selector)
    assert picker.evaluate("s => s.options.length") == 1 and picker.input_value() == shown
    picker.focus()
    assert picker.evaluate("s => s.options.length") == count and picker.input_value() == shown
    picker.select_option(pick)
    return picker


def page_state(text: str) -> str:
    """The saved widget state of an exported page, as JSON text (inflated when packed)."""
    import base64
    import gzip

    packed = re.search(r'type="application/vnd\.layerscope\.widget-state\+gzip">([^<]+)<', text)
    assert packed is not None, "no packed state in the page"
    return gzip.decompress(base64.b64decode(packed.group(1))).decode()


def new_notebook(cells: list[str]) -> Any:
    """A notebook of these code cells, on the python3 kernel."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def write_notebook(path: pathlib.Path, cells: list[str]) -> pathlib.Path:
    """Write a notebook of these code cells to ``path``."""
    nbformat.write(new_notebook(cells), path)
    return path
