"""Where each view's built front-end bundle lies (python/layerscope/static/<name>.js)."""

from __future__ import annotations

import pathlib

STATIC = pathlib.Path(__file__).resolve().parent.parent / "static"


def bundle(name: str) -> pathlib.Path:
    """Path of the esbuild bundle for a view; a clear error if the front end was never built."""
    path = STATIC / f"{name}.js"
    if not path.is_file():
        raise FileNotFoundError(
            f"layerscope's front-end bundle {path} is missing: the JavaScript was not built. "
            "From a source checkout run `npm install && npm run build` (or `make demo`), "
            "or install layerscope from a wheel, which includes the bundles."
        )
    return path
