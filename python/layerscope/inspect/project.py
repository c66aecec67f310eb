"""2-D projections of per-sample representations: PCA in torch, UMAP (umap-learn) and t-SNE
(openTSNE), each as a ``Projector`` that is fitted once and can place other samples in the same
picture (``transform``), and other epochs of the same samples (``follow``: a fixed PCA basis; for
UMAP and t-SNE a short optimisation of that epoch's own neighbour graph that starts from the
neighbouring epoch's positions), so points move smoothly when a view scrubs epochs.

Rows holding NaN/Inf cannot be projected: ``finite_rows`` finds them, and views count and say how
many were left out instead of crashing or dropping them silently.

>>> proj = fit(reps, "pca")                         # doctest: +SKIP
>>> xy = proj.embedding                              # (n, 2) float32
>>> xy_epoch0 = proj.transform(reps_epoch0)          # same axes                      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

METHODS = ("pca", "umap", "tsne")
PACKAGES = {"umap": ("umap", "umap-learn"), "tsne": ("openTSNE", "openTSNE")}
# (fraction done 0..1, words) -> None; called from the thread that fits.
Progress = Callable[[float, str], None]


class MissingPackage(ImportError):
    """The projection method needs a package that is not installed."""


def check_method(method: Any) -> str:
    """The method name, or a clear error (unknown name; its package missing)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    if method in PACKAGES:
        module, package = PACKAGES[method]
        try:
            __import__(module)
        except ImportError as exc:
            raise MissingPackage(
                f"method={method!r} needs the package {package!r}, which is not installed: "
                f"pip install {package}. method='pca' works without it."
            ) from exc
    return method


def finite_rows(x: np.ndarray) -> np.ndarray:
    """Boolean mask of rows with only finite values."""
    return np.isfinite(x).all(axis=1) if x.size else np.ones(len(x), bool)


class Projector:
    """A fitted 2-D projection; ``embedding`` holds the fitted rows, ``transform`` places others."""

    method: str
    embedding: np.ndarray

    def transform(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def follow(self, x: np.ndarray, start: np.ndarray) -> np.ndarray:
        """The same samples at another epoch (``x``, rows as in the fit), starting from their
        positions ``start`` (n, 2) in a neighbouring epoch's picture."""
        return self.transform(x)


class PCA(Projector):
    """The top two principal axes. Up to ``EXACT_LIMIT`` multiply-adds (n x d x d) by an
    eigendecomposition of the covariance (float32 product, float64 d x d eigh); above it by a
    randomized SVD (``torch.svd_lowrank``, 12 directions, 4 power iterations, a fixed seed),
    which finds the top axes of representations, whose spectra decay, to float precision at a
    fifth of the cost (100,000 x 512: 26 G multiply-adds exact, about 5 G randomized).
    ``exact=True``/``False`` forces one way."""

    method = "pca"
    EXACT_LIMIT = 2e9

    def __init__(self, x: np.ndarray, exact: bool | None = None) -> None:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        n, d = t.shape
        self.mean = t.mean(0)
        c = t - self.mean
        if exact is None:
            exact = n * d * d <= self.EXACT_LIMIT or d <= 32
        if exact:
            cov = (c.T @ c).double() / max(1, n - 1)
            evals, evecs = torch.linalg.eigh(cov)
            basis = evecs[:, -2:].flip(1).float() if d >= 2 else torch.eye(d, 2)
            total = float(evals.clamp(min=0).sum())
            top = evals.flip(0)[:2].clamp(min=0)
        else:
            with torch.random.fork_rng():
                torch.manual_seed(0)
                _, sv, v = torch.svd_lowrank(c, q=min(d, 12), niter=4)
            basis = v[:, :2]
            top = (sv[:2].double() ** 2) / max(1, n - 1)
            total = float((c.double() ** 2).sum()) / max(1, n - 1)
        # a deterministic sign: the largest loading of each axis is positive
        signs = torch.sign(basis.gather(0, basis.abs().argmax(0, keepdim=True)))
        self.basis = basis * torch.where(signs == 0, 1.0, signs)
        self.exact = exact
        self.explained = (top / total).tolist() if total > 0 else [0.0, 0.0]
        self.embedding = (c @ self.basis).numpy()

    def transform(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return ((t - self.mean) @ self.basis).numpy()


class UMAP(Projector):
    method = "umap"

    def __init__(self, x: np.ndarray, progress: Progress, seed: int = 0, **kw: Any) -> None:
        import umap

        progress(0.05, "UMAP: building the neighbour graph")
        self.seed, self.kw = seed, kw
        self.model = umap.UMAP(n_components=2, random_state=seed, **kw)
        self.embedding = np.asarray(self.model.fit_transform(np.asarray(x, np.float32)), np.float32)
        progress(1.0, "UMAP done")

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.transform(np.asarray(x, np.float32)), np.float32)

    def follow(self, x: np.ndarray, start: np.ndarray) -> np.ndarray:
        # transform() would place each epoch by its neighbours among the reference epoch's
        # representations, which are not comparable across training (measured on the digits
        # CNN: points jump by 0.3-1.3 spreads an epoch); a short run from the next epoch's
        # positions moves them by ~0.2. umap-learn rescales an initial embedding to [0, 10]
        # per axis: undo that so the frames share one scale.
        import umap

        start = np.asarray(start, np.float64)
        lo, hi = start.min(0), start.max(0)
        params = {**self.kw, "n_epochs": 50, "learning_rate": 0.2}
        model = umap.UMAP(n_components=2, init=start, random_state=self.seed, **params)
        out = np.asarray(model.fit_transform(np.asarray(x, np.float32)), np.float64)
        return (out / 10 * np.where(hi > lo, hi - lo, 1.0) + lo).astype(np.float32)


class TSNE(Projector):
    method = "tsne"

    def __init__(self, x: np.ndarray, progress: Progress, seed: int = 0, **kw: Any) -> None:
        import openTSNE

        total = 750  # openTSNE's defaults: 250 early-exaggeration + 500 iterations
        done = [0]

        def callback(iteration: int, error: float, embedding: Any) -> bool:
            done[0] += 10
            progress(min(0.99, done[0] / total), f"t-SNE: iteration {done[0]} of {total}")
            return False

        progress(0.02, "t-SNE: finding neighbours")
        self.seed = seed
        self.model = openTSNE.TSNE(
            n_components=2, random_state=seed, callbacks=callback, callbacks_every_iters=10, **kw
        )
        self.fitted = self.model.fit(np.asarray(x, np.float64))
        self.embedding = np.asarray(self.fitted, np.float32)
        progress(1.0, "t-SNE done")

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.fitted.transform(np.asarray(x, np.float64)), np.float32)

    def follow(self, x: np.ndarray, start: np.ndarray) -> np.ndarray:
        # openTSNE's prepare_partial/optimize route: this epoch's own affinities, the next
        # epoch's positions as the start, 150 plain iterations (no early exaggeration). On the
        # digits CNN points move ~0.1 spreads an epoch this way, ~0.8 through transform().
        import openTSNE

        aff = openTSNE.affinity.PerplexityBasedNN(
            np.asarray(x, np.float64),
            perplexity=min(self.model.perplexity, max(1.0, (len(x) - 1) / 3)),
            random_state=self.seed,
            verbose=False,
        )
        emb = openTSNE.TSNEEmbedding(
            np.array(start, np.float64), aff, random_state=self.seed, verbose=False
        )
        return np.asarray(emb.optimize(n_iter=150, momentum=0.8), np.float32)


def fit(
    x: np.ndarray, method: str = "pca", progress: Progress | None = None, **kw: Any
) -> Projector:
    """Fit ``method`` on the rows of ``x`` (n, d) (all finite: see ``finite_rows``).

    >>> fit(np.random.rand(100, 8), "pca").embedding.shape
    (100, 2)
    """
    check_method(method)
    x = np.asarray(x)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"a projection needs at least 2 samples of (n, d) data, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("rows with NaN/Inf cannot be projected: drop them (see finite_rows)")
    report = progress or (lambda f, words: None)
    if method == "pca":
        return PCA(x)
    if method == "umap":
        return UMAP(x, report, **kw)
    return TSNE(x, report, **kw)


def recentre(xy: np.ndarray) -> tuple[np.ndarray, list[float], float]:
    """``(xy - centre) / scale`` as float32 with centre and scale (in float64) to undo it: the
    wire and the GPU get coordinates around 0 where float32 is precise. The difference is taken
    in float64 straight into the float32 result (no float64 copy of the points: 1M points are
    3x faster so), then scaled in float32 (half an ulp more, around 0)."""
    xy = np.asarray(xy)
    if len(xy) == 0:
        return np.zeros((0, 2), np.float32), [0.0, 0.0], 1.0
    lo, hi = xy.min(0).astype(np.float64), xy.max(0).astype(np.float64)
    centre = (lo + hi) / 2
    scale = float(max((hi - lo).max() / 2, 1e-12))
    out = np.empty(xy.shape, np.float32)
    np.subtract(xy, centre, out=out, dtype=np.float64, casting="unsafe")
    out *= np.float32(1 / scale)
    return out, [float(c) for c in centre], scale
