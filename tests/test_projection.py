"""ls.projection kernel side: PCA separates the digits classes on the trained CNN (k-NN accuracy
in 2-D), PCA equals a brute-force SVD, UMAP/t-SNE replace PCA from a background thread, frames
over training are aligned in one basis, hover replies, and bad inputs."""

from __future__ import annotations

import builtins
import sys

import numpy as np
import pytest
import torch
from torch import nn

import digits
import layerscope as ls
from dataset_models import TinyTransformer, tokens, trained_digits
from layerscope.inspect.batches import DatasetError
from layerscope.inspect.project import MissingPackage, fit
from layerscope.wire.codec import decode_array


def knn_accuracy(xy: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-NN accuracy of the 2-D points."""
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nn_idx = np.argsort(d, axis=1)[:, :k]
    votes = labels[nn_idx]
    pred = np.array([np.bincount(v, minlength=10).argmax() for v in votes])
    return float((pred == labels).mean())


def points(view) -> np.ndarray:
    return decode_array(view._points["xy"]).astype(np.float64)


@pytest.fixture(scope="module")
def view():
    model, (x, y, _, _) = trained_digits()
    return ls.projection(model, (x[:500], y[:500]), layer="classifier.2", progress=False)


def test_pca_separates_classes_on_trained_model(view):
    _, (_, y, _, _) = trained_digits()
    acc = knn_accuracy(points(view), y[:500].numpy())
    assert acc > 0.5, acc  # chance is 0.1
    assert view._points["n_drawn"] == view._points["n_total"] == 500
    assert view._points["index"] is None  # every sample, in order: no index buffer needed
    assert abs(points(view)).max() <= 1.0 + 1e-6  # re-centred to [-1, 1] for the wire


def test_pca_equals_svd():
    g = np.random.default_rng(0)
    x = g.normal(size=(300, 12)) @ g.normal(size=(12, 12))
    emb = fit(x, "pca").embedding
    c = x - x.mean(0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    ref = c @ vt[:2].T
    for k in range(2):  # equal up to the sign of each axis
        assert np.allclose(np.abs(np.corrcoef(emb[:, k], ref[:, k])[0, 1]), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.abs(emb), np.abs(ref), rtol=1e-3, atol=1e-3)


def test_colourings_pushed_and_hover_reply(view):
    model, (x, y, _, _) = trained_digits()
    assert set(view._arrays) >= {"label", "prediction", "correct", "loss", "probability"}
    labels = decode_array(view._arrays["label"]["values"])
    np.testing.assert_array_equal(labels, y[:500].numpy())  # classes 0..9 -> codes 0..9
    info, buffers = view.handle_request("sample", {"index": 7})
    assert info["label"] == int(y[7])
    with torch.no_grad():
        assert info["prediction"] == int(model(x[7:8]).argmax())
    assert info["input"]["kind"] == "image" and info["input"]["image"]["shape"] == [8, 8, 1]
    assert len(buffers) == 1 and memoryview(buffers[0]).nbytes == 64
    assert view._thumbs["index"] == {"range": 500}  # samples 0..499, no index buffer
    assert view._thumbs["left_out"] == 0
    with pytest.raises(IndexError, match=r"outside 0\.\.499"):
        view.handle_request("sample", {"index": 500})


def test_selected_set_from_python_round_trips(view):
    view.selected = [3, 10, 42]
    state = view.get_state()
    assert state["selected"] == [3, 10, 42]
    view.set_state({"selected": [5]})
    assert view.selected == [5]
    view.selected = []


def test_nan_rows_counted_and_not_drawn():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(40, 4)
    x[[2, 9]] = float("nan")
    v = ls.projection(model, x, layer="1", progress=False)
    assert v._points["n_drawn"] == 38 and v._points["n_total"] == 40
    idx = decode_array(v._points["index"])
    assert 2 not in idx and 9 not in idx and len(idx) == 38
    # the inputs baked for hovering offline are those of the drawn samples (an index buffer)
    assert decode_array(v._thumbs["index"]).tolist() == idx.tolist()
    assert any("2 samples have NaN/Inf" in n for n in v._notes)


def test_custom_colour_array_and_class_names():
    model, (x, y, _, _) = trained_digits()
    names = [f"digit {i}" for i in range(10)]
    v = ls.projection(
        model,
        (x[:100], y[:100]),
        layer="classifier.2",
        color_by=np.arange(100.0),
        class_names=names,
        progress=False,
    )
    assert v.color_by == "custom" and v._arrays["custom"]["kind"] == "continuous"
    assert v._arrays["label"]["classes"][3] == "digit 3"
    with pytest.raises(DatasetError, match="has 99 entries but the data has 100"):
        ls.projection(model, (x[:100], y[:100]), color_by=np.arange(99.0), progress=False)


def test_bad_inputs(monkeypatch):
    model, (x, y, _, _) = trained_digits()
    with pytest.raises(DatasetError, match="labels have 3 entries but the data has 10"):
        ls.projection(model, x[:10], labels=y[:3], progress=False)
    with pytest.raises(ValueError, match="method must be one of"):
        ls.projection(model, x[:10], method="isomap", progress=False)
    with pytest.raises(KeyError, match="no module at path"):
        ls.projection(model, x[:10], layer="nope", progress=False)
    real_import = builtins.__import__

    def no_umap(name, *args, **kwargs):
        if name == "umap" or name.startswith("umap."):
            raise ImportError("No module named 'umap'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "umap", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_umap)
    with pytest.raises(MissingPackage, match=r"pip install umap-learn\. method='pca' works"):
        ls.projection(model, x[:10], method="umap", progress=False)
    assert ls.projection(model, x[:10], method="pca", progress=False)._points["n_drawn"] == 10


def test_token_model_hover_text():
    torch.manual_seed(0)
    model = TinyTransformer()
    t = tokens(30)
    vocab = [f"w{i}<b>" for i in range(20)]
    v = ls.projection(model, t, layer="mlp.1", decode=vocab, progress=False)
    info, _ = v.handle_request("sample", {"index": 0})
    assert info["input"] == {"kind": "tokens", "tokens": [vocab[i] for i in t[0].tolist()]}
    assert v._thumbs["kind"] == "tokens" and v._thumbs["tokens"][0][0] == vocab[int(t[0, 0])]


def trained_with_recorder(probe: int, train: int, epochs: int):
    """A width-4 digits CNN trained ``epochs`` epochs under a Recorder probing ``probe`` test
    digits at classifier.2: (model, recorder, the probe's labels)."""
    torch.manual_seed(0)
    x_tr, y_tr, x_te, y_te = digits.load()
    model = digits.DigitsCNN(width=4)
    rec = ls.Recorder(model, probe=x_te[:probe], layers=["classifier.2"])
    run = digits.Training(model, (x_tr[:train], y_tr[:train], x_te[:64], y_te[:64]))
    for _ in range(epochs):
        run.epoch(rec)
    return model, rec, y_te[:probe]


def test_over_training_frames_aligned_in_last_basis():
    model, rec, probe_y = trained_with_recorder(120, 400, 3)
    v = ls.projection(model, recorder=rec, layer="classifier.2", labels=probe_y, progress=False)
    f = v._frames
    assert f["epochs"] == [0, 1, 2]
    frames = decode_array(f["xy"]).astype(np.float64) * f["scale"] + np.asarray(f["centre"])
    assert frames.shape == (3, 120, 2)
    # every epoch is in the basis of the last: the last frame is that epoch's PCA itself
    last = rec.activation("classifier.2", 2, exact=True).array
    ref = fit(last, "pca")
    np.testing.assert_allclose(frames[2], ref.embedding, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        frames[0],
        ref.transform(rec.activation("classifier.2", 0, exact=True).array),
        rtol=1e-4,
        atol=1e-4,
    )
    with pytest.raises(ValueError, match=r"no activations of 'features\.0'"):
        ls.projection(model, recorder=rec, layer="features.0", progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_background_method_replaces_pca(method):
    model, (x, y, _, _) = trained_digits()
    v = ls.projection(
        model, (x[:400], y[:400]), layer="classifier.2", method=method, progress=False
    )
    assert v._points["method"] == "pca"  # shown at once, meanwhile
    v.wait(120)
    assert v._status["state"] == "done" and v._points["method"] == method
    acc = knn_accuracy(points(v), y[:400].numpy())
    assert acc > 0.8, acc


def test_randomized_pca_matches_exact_on_decaying_spectrum():
    from layerscope.inspect.project import PCA

    g = np.random.default_rng(1)
    scales = 2.0 ** -np.arange(64)  # representations: a few strong directions
    x = (g.normal(size=(4000, 64)) * scales) @ np.linalg.qr(g.normal(size=(64, 64)))[0]
    exact, fast = PCA(x, exact=True), PCA(x, exact=False)
    assert exact.exact and not fast.exact
    np.testing.assert_allclose(np.abs(fast.basis.numpy()), np.abs(exact.basis.numpy()), atol=1e-4)
    np.testing.assert_allclose(fast.explained, exact.explained, rtol=1e-4)
    np.testing.assert_allclose(np.abs(fast.embedding), np.abs(exact.embedding), atol=1e-4)


def _displacement(frames: np.ndarray) -> float:
    """Mean distance a point moves between consecutive epochs, over the spread of the points."""
    steps = np.linalg.norm(np.diff(frames, axis=0), axis=-1).mean()
    spread = np.sqrt(frames.var(axis=1).sum(-1)).mean()
    return float(steps / spread)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_over_training_nonlinear_aligned_across_epochs(method):
    """With recorder=, UMAP / t-SNE of every epoch land in the last epoch's embedding: points
    move little from epoch to epoch, far less than in independent fits of each epoch."""
    model, rec, probe_y = trained_with_recorder(150, 600, 5)
    v = ls.projection(
        model, recorder=rec, layer="classifier.2", labels=probe_y, method=method, progress=False
    )
    assert v._frames["method"].startswith("pca")  # shown at once, meanwhile
    v.wait(300)
    assert v._status["state"] == "done", v._status
    f = v._frames
    assert f["method"].startswith(method) and f["epochs"] == [0, 1, 2, 3, 4]
    frames = decode_array(f["xy"]).astype(np.float64)
    assert frames.shape == (5, 150, 2) and np.isfinite(frames).all()
    # the live picture (the model is as after the last epoch) is the last frame itself
    live = points(v) * v._points["scale"] + np.asarray(v._points["centre"])
    last = frames[-1] * f["scale"] + np.asarray(f["centre"])
    np.testing.assert_allclose(live, last, rtol=1e-4, atol=1e-4 * np.abs(last).max())
    # the last epoch's picture still separates the classes
    assert knn_accuracy(frames[-1], probe_y.numpy()) > 0.5
    # independent fits of each epoch, for comparison
    indep = np.stack(
        [
            fit(rec.activation("classifier.2", e, exact=True).array, method).embedding
            for e in f["epochs"]
        ]
    )
    aligned_move, indep_move = _displacement(frames), _displacement(indep)
    print(f"{method}: aligned {aligned_move:.3f}, independent {indep_move:.3f}")
    assert aligned_move < 0.35, aligned_move
    assert aligned_move < 0.5 * indep_move, (aligned_move, indep_move)
