"""Offline HTML: one self-contained file that renders widgets with no kernel and no network.

nbconvert's and ipywidgets' own exports load require.js, the html-manager's ``embed-amd.js`` and
each widget's AMD module from CDNs, so offline they render nothing. Here every script is inlined:
require.js and embed-amd.js from our build (``static/vendor/``), and the AMD module of each widget
package the state uses (anywidget, bqplot, ...) from the installed package's
``share/jupyter/nbextensions/<pkg>/index.js``.

A page whose widgets are all anywidgets (every layerscope view, alone or several) needs none of
that: it gets ``offline-page.js`` instead (``js/offline/page.ts``, a few KB), which reads the saved
state and calls each view's own ``render``. One 64x512 heatmap page goes from ~4.5 MB to
~0.26 MB (its baked state).
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
import pathlib
import re
from collections.abc import Iterable
from typing import Any

from jupyter_core.paths import jupyter_path

VENDOR = pathlib.Path(__file__).resolve().parent / "static" / "vendor"

# Those AMD modules call the anonymous form define([...], factory); inlined they need a name.
_NAMED_DEFINE_OPEN_JS = """(function(){var d=window.define;window.__lsDefine=d;
window.define=function(a,b,c){return typeof a==="string"?d(a,b,c):d(%s,a,b);};window.define.amd=d.amd;})();"""
_NAMED_DEFINE_CLOSE_JS = "window.define=window.__lsDefine;"


class ExportError(RuntimeError):
    """Something an offline page needs is not installed."""


def _script(text: str) -> str:
    # Neutralise "</script" inside inlined code so it cannot end the tag early.
    return "<script>" + re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE) + "</script>"


def _vendor(name: str) -> str:
    path = VENDOR / name
    if not path.is_file():
        raise ExportError(
            f"{path} is missing: layerscope's front end was not built. Run `npm install && npm run build` "
            "in the source checkout (or `make demo`), or install layerscope from a wheel."
        )
    return path.read_text(encoding="utf-8")


def amd_module(package: str) -> str:
    """The installed AMD build of a widget package (e.g. "anywidget", "bqplot")."""
    for root in jupyter_path("nbextensions"):
        path = pathlib.Path(root) / package / "index.js"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise ExportError(
        f"the AMD build of the widget package {package!r} was not found under any of "
        f"{jupyter_path('nbextensions')}; install {package!r} in this environment"
    )


def widget_modules(state: dict[str, Any]) -> list[str]:
    """Widget packages (besides the html-manager's built-ins) that a manager state needs."""
    builtin = {"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"}
    found: list[str] = []
    for entry in state.values():
        for key in ("model_module",):
            name = entry.get(key)
            if name and name not in builtin and name not in found:
                found.append(name)
        view = entry.get("state", {}).get("_view_module")
        if view and view not in builtin and view not in found:
            found.append(view)
    return found


# What a page of anywidgets holds besides them: each DOM widget's Layout model (never rendered).
_PAGE_MANAGER_MODELS = {("@jupyter-widgets/base", "LayoutModel")}


def anywidgets_only(state: dict[str, Any]) -> bool:
    """Whether every model in a manager state is an anywidget (or a Layout model of one)."""
    return bool(state) and all(
        entry.get("model_module") == "anywidget"
        or (entry.get("model_module"), entry.get("model_name")) in _PAGE_MANAGER_MODELS
        for entry in state.values()
    )


def page_scripts(state: dict[str, Any]) -> str:
    """The <script> tags an offline page of this widget state needs: the small page manager
    when every widget is an anywidget, else the full stack of ``offline_scripts``."""
    if anywidgets_only(state):
        return "\n".join(
            [
                "<script>window.__layerscopeOffline = true;</script>",
                _script(_vendor("offline-page.js")),
            ]
        )
    return offline_scripts(widget_modules(state))


def offline_scripts(modules: Iterable[str]) -> str:
    """Inline <script> tags: require.js, each widget AMD module under its name, embed-amd.js.

    The scripts travel gzip-compressed in one base64 block (~1.7 MB instead of ~4.2 MB) that the
    page inflates with the browser's ``DecompressionStream`` and runs in that order, each as a
    <script> element (so each runs whole before the next, as inline tags would). embed-amd.js
    renders the widgets at once when the document has loaded by then, else on its load event.
    """
    # The page has no kernel: views read this flag and say what the page holds instead of waiting.
    scripts = [_vendor("require.js")]
    for name in modules:
        scripts += [
            _NAMED_DEFINE_OPEN_JS % json.dumps(name),
            amd_module(name),
            _NAMED_DEFINE_CLOSE_JS,
        ]
    scripts.append(_vendor("embed-amd.js"))
    return "\n".join(
        [
            "<script>window.__layerscopeOffline = true;</script>",
            _PACKED_LOADER % _packed(json.dumps(scripts)),
        ]
    )


STATE_TYPE = "application/vnd.jupyter.widget-state+json"
# The saved state of a page of anywidgets, gzip-compressed and base64-encoded; offline-page.js
# inflates it with the browser's DecompressionStream (the state is most of a page's weight, and
# its base64 buffers and repeated view bundles compress to about half).
PACKED_STATE_TYPE = "application/vnd.layerscope.widget-state+gzip"


def state_script(manager_state: dict[str, Any]) -> str:
    """The <script> tag holding a page's saved widget state: packed when the small page manager
    reads it (every widget an anywidget), else the JSON that embed-amd.js reads."""
    if anywidgets_only(manager_state.get("state", {})):
        text = json.dumps(manager_state)
        packed = base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0))
        return f'<script type="{PACKED_STATE_TYPE}">{packed.decode()}</script>'
    return state_script_json(manager_state)


def state_script_json(manager_state: dict[str, Any]) -> str:
    """The <script> tag of a page's saved widget state as the JSON that embed-amd.js reads."""
    from ipywidgets.embed import escape_script

    return f'<script type="{STATE_TYPE}">\n{escape_script(json.dumps(manager_state))}\n</script>'


@functools.lru_cache(maxsize=4)
def _packed(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)).decode()


# Inflates the packed scripts (a JSON list of sources) and runs them in order. A failure shows
# as a message in the page instead of a blank one.
_PACKED_LOADER = """<script>(function(){var b64="%s";
var bin=atob(b64),bytes=new Uint8Array(bin.length);for(var i=0;i<bin.length;i++)bytes[i]=bin.charCodeAt(i);
new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text().then(function(t){
JSON.parse(t).forEach(function(code){var s=document.createElement("script");s.textContent=code;document.head.appendChild(s);});
}).catch(function(e){var p=document.createElement("pre");p.textContent="This page could not load its widget scripts: "+e;
(document.body||document.documentElement).prepend(p);});})();</script>"""


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 16px; max-width: 1100px; }}</style>
{scripts}
</head>
<body>
{state}
{views}
</body>
</html>
"""


def export_html(
    widget: Any, path: str | pathlib.Path, *, title: str = "layerscope"
) -> pathlib.Path:
    """Write one self-contained HTML file that renders ``widget`` offline (baked state).

    ``widget`` is a layerscope view, any ipywidget, or a list of them. The page holds every script
    it needs; it makes no network request.

    >>> import layerscope as ls, torch
    >>> ls.export_html(ls.heatmap(torch.randn(8, 8)), "page.html")   # doctest: +SKIP
    """
    from ipywidgets import Widget
    from ipywidgets.embed import dependency_state

    widgets = list(widget) if isinstance(widget, (list, tuple)) else [widget]
    for w in widgets:
        if not isinstance(w, Widget):
            raise TypeError(
                f"export_html expects a widget (e.g. ls.heatmap(...)) or a list of them; got {type(w).__name__}"
            )
    from .widgets.heatmap import settle

    settle()  # big heatmaps made just before: their full passes land first
    for w in widgets:
        # A view whose saved state lags its model or its selection (the workspace after
        # training or a click) re-makes it, as it does after each cell.
        if callable(getattr(w, "settle", None)):
            w.settle()
    state = dependency_state(widgets, drop_defaults=False)
    manager_state = {"version_major": 2, "version_minor": 0, "state": state}
    views = "\n".join(
        '<script type="application/vnd.jupyter.widget-view+json">'
        + json.dumps(w.get_view_spec())
        + "</script>"
        for w in widgets
    )
    page = _PAGE.format(
        title=html.escape(title),
        scripts=page_scripts(state),
        state=state_script(manager_state),
        views=views,
    )
    out = pathlib.Path(path)
    out.write_text(page, encoding="utf-8")
    return out


_NOTEBOOK_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}
{{ resources.layerscope_scripts }}
{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block footer %}
{{ resources.layerscope_state }}
</html>
{% endblock footer %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


_SETTLE_CELL = """\
import sys as _layerscope_sys
if "layerscope.widgets.explore" in _layerscope_sys.modules:
    _layerscope_sys.modules["layerscope.widgets.explore"].settle_all()
if "layerscope.widgets.heatmap" in _layerscope_sys.modules:
    _layerscope_sys.modules["layerscope.widgets.heatmap"].resend_settled()
del _layerscope_sys"""


def export_notebook(
    notebook: str | pathlib.Path,
    path: str | pathlib.Path,
    *,
    execute: bool = False,
    timeout: int = 600,
) -> pathlib.Path:
    """Write an offline HTML page of a notebook whose widgets keep working with no network.

    With ``execute=True`` the notebook is run first (nbclient stores the widget state); otherwise
    it must have been saved with its widget state. MathJax and Mermaid are left out (they would
    come from a CDN).

    >>> export_notebook("notebooks/quickstart.ipynb", "demo.html", execute=True)   # doctest: +SKIP
    """
    import tempfile

    import nbformat
    from nbconvert import HTMLExporter

    src = pathlib.Path(notebook)
    nb = nbformat.read(src, as_version=4)
    if execute:
        from nbclient import NotebookClient

        # One more cell, run last and removed after: finishes the workspaces' bakes after the
        # cell (they run in slices between cells), waits for the heatmaps' deferred passes and
        # sends their state again from within a cell, so that nbclient stores the full overviews
        # rather than the previews (it ignores messages sent after their cell has finished).
        nb.cells.append(nbformat.v4.new_code_cell(_SETTLE_CELL))
        try:
            NotebookClient(
                nb,
                timeout=timeout,
                resources={"metadata": {"path": str(src.parent)}},
                store_widget_state=True,
            ).execute()
        finally:
            nb.cells.pop()
    manager_state = nb.metadata.get("widgets", {}).get(STATE_TYPE, {})
    widget_state = manager_state.get("state", {})
    _drop_stale_buffers(widget_state)
    missing = _views_without_state(nb, widget_state)
    if missing:
        raise ExportError(
            f"{src} has {len(missing)} widget view(s) but was saved without their widget state "
            f"(first: {missing[0]}), so the page would show no view. Run it while exporting: "
            f"`python -m layerscope.export {src} -o {path} --execute` (or export_notebook(..., "
            "execute=True)); or in JupyterLab turn on Settings > Save Widget State Automatically, "
            "run all cells and save."
        )
    with tempfile.TemporaryDirectory() as tmp:
        template_dir = pathlib.Path(tmp) / "layerscope_offline"
        template_dir.mkdir()
        (template_dir / "index.html.j2").write_text(_NOTEBOOK_TEMPLATE)
        (template_dir / "conf.json").write_text(
            json.dumps({"base_template": "lab", "mimetypes": {"text/html": True}})
        )
        exporter = HTMLExporter(template_name="layerscope_offline", extra_template_basedirs=[tmp])
        body, _ = exporter.from_notebook_node(
            nb,
            resources={
                "layerscope_scripts": page_scripts(widget_state),
                "layerscope_state": state_script(manager_state) if widget_state else "",
            },
        )
    out = pathlib.Path(path)
    out.write_text(body, encoding="utf-8")
    return out


def _drop_stale_buffers(state: dict[str, Any]) -> None:
    """Drop saved buffers whose path no longer leads into their model's state. nbclient merges
    each state update's buffers into the buffers it stored before, so a key replaced by a
    smaller value (the workspace's bake after another cell) keeps buffers under paths that are
    gone; a page would fail to put them back."""
    for entry in state.values():
        kept = []
        for b in entry.get("buffers", []):
            obj: Any = entry.get("state", {})
            try:
                for key in b["path"][:-1]:
                    obj = obj[key]
            except (KeyError, IndexError, TypeError):
                continue
            if isinstance(obj, (dict, list)):
                kept.append(b)
        if "buffers" in entry:
            entry["buffers"] = kept


def _views_without_state(nb: Any, state: dict[str, Any]) -> list[str]:
    """The text repr of every widget view output whose model is not in the saved state."""
    missing = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            view = data.get("application/vnd.jupyter.widget-view+json")
            if view and view.get("model_id") not in state:
                missing.append(str(data.get("text/plain", view.get("model_id"))))
    return missing


def main(argv: list[str] | None = None) -> None:
    """``python -m layerscope.export NOTEBOOK -o PAGE.html [--execute]``"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m layerscope.export", description=main.__doc__)
    parser.add_argument("notebook")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--execute", action="store_true", help="run the notebook first")
    args = parser.parse_args(argv)
    try:
        out = export_notebook(args.notebook, args.output, execute=args.execute)
    except ExportError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, offline)")


if __name__ == "__main__":
    main()
