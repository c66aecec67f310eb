"""ls.units kernel side on real models: the table equals collect's statistics, a unit's top
examples equal a brute-force argsort, receptive-field crops contain the max position (and equal
the analytic field of 3x3 convs), token contexts centre on the max token, quantile groups,
incoming weights, the data distribution view, baking within a budget, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import layerscope as ls
from dataset_models import TinyTransformer, tokens, trained_digits
from layerscope.inspect.examples import incoming_weights, quantile_groups
from layerscope.inspect.receptive import receptive_field
from layerscope.wire.codec import decode_array


@pytest.fixture(scope="module")
def view():
    model, (x, y, _, _) = trained_digits()
    return ls.units(model, (x[:300], y[:300]), layer="features.3", progress=False)


def test_table_matches_brute_force(view):
    model, (x, _, _, _) = trained_digits()
    out = ls.inspect.capture(model, x[:300], layers=["features.3"])["features.3"].double()
    per_unit = out.transpose(0, 1).reshape(out.shape[1], -1).numpy()
    t = view._table
    assert t["units"] == 16 and t["layout"] == "conv" and t["n"] == 300
    np.testing.assert_allclose(decode_array(t["stats"]["mean"]), per_unit.mean(1), rtol=1e-5)
    np.testing.assert_allclose(
        decode_array(t["stats"]["frac_zero"]), (per_unit == 0).mean(1), rtol=1e-6
    )
    assert decode_array(t["spark"]).shape == (16, 50)


def test_top_examples_and_receptive_crops(view):
    model, (x, _, _, _) = trained_digits()
    out = ls.inspect.capture(model, x[:300], layers=["features.3"])["features.3"]
    for unit in (0, 5):
        view.unit = unit
        top = view._card["top"]
        per_sample = out[:, unit].flatten(1).max(1)
        order = np.argsort(-per_sample.values.numpy(), kind="stable")[:20]
        assert top["index"] == order.tolist()
        np.testing.assert_allclose(top["values"], per_sample.values.numpy()[order], rtol=1e-6)
        for k, (pos, box) in enumerate(zip(top["positions"], top["boxes"], strict=True)):
            h, w = pos
            assert out[top["index"][k], unit, h, w] == per_sample.values[top["index"][k]]
            # two 3x3 convs, padding 1: the field of (h, w) is rows h-2..h+2, cols w-2..w+2
            assert box == [[max(0, h - 2), min(8, h + 3)], [max(0, w - 2), min(8, w + 3)]]
            assert box[0][0] <= h < box[0][1] and box[1][0] <= w < box[1][1]
        maps = decode_array(top["maps"])
        assert maps.shape == (20, 8, 8)
        k0 = top["index"][0]
        assert np.unravel_index(int(maps[0].argmax()), (8, 8)) == tuple(
            np.unravel_index(int(out[k0, unit].argmax()), (8, 8))
        )


def test_receptive_field_through_pool():
    model, _ = trained_digits()
    # after the max-pool, output (r, c) sees input rows 2r-2 .. 2r+3 (two 3x3 convs, pool 2)
    assert receptive_field(model, "features.4", (1, 8, 8), (1, 2)) == ((0, 6), (2, 8))


def test_quantile_groups_and_weights(view):
    view.unit = 2
    groups = view._card["groups"]
    assert len(groups) == 10
    assert sum(g["count"] for g in groups) == 300
    los = [g["lo"] for g in groups]
    assert los == sorted(los)
    for g in groups:
        assert all(g["lo"] <= v <= g["hi"] for v in g["examples"]["values"])
    model, _ = trained_digits()
    w = view._card["weights"]
    assert w["path"] == "features.2.weight[2]" and w["shape"] == [8, 3, 3]
    np.testing.assert_array_equal(
        decode_array(w["data"]), model.features[2].weight[2].detach().reshape(8, 9).numpy()
    )
    q = quantile_groups(np.arange(20.0), np.arange(100, 120), groups=4, per_group=2)
    assert [g["index"] for g in q] == [[100, 104], [105, 109], [110, 114], [115, 119]]


def test_incoming_weights_rules():
    m = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    assert incoming_weights(m, "2", 6)[0] == "0.weight"  # skips the norm's 1-D weights
    assert incoming_weights(m, "3", 2)[0] == "3.weight"
    assert incoming_weights(nn.Sequential(nn.ReLU()), "0", 3) is None


def test_baked_cards_within_budget():
    model, (x, y, _, _) = trained_digits()
    small = ls.units(
        model, (x[:100], y[:100]), layer="features.3", progress=False, bake_budget=6000
    )
    b = small._baked
    assert 0 < len(b["units"]) < 16 and b["left_out"] == 16 - len(b["units"])
    assert b["bytes"] <= 6000
    assert b["units"] == list(range(len(b["units"])))


def test_token_context_centred_on_max():
    torch.manual_seed(0)
    model = TinyTransformer()
    t = tokens(40)
    vocab = [f"<t{i}>" for i in range(20)]
    v = ls.units(model, t, layer="encoder", decode=vocab, progress=False)
    top = v._card["top"]
    assert top["kind"] == "tokens"
    out = ls.inspect.capture(model, t, layers=["encoder"])["encoder"]
    for k, ctx in enumerate(top["contexts"][:5]):
        i = top["index"][k]
        pos = top["positions"][k][0]
        assert int(out[i, :, 0].argmax()) == pos
        assert ctx["tokens"][ctx["focus"]] == vocab[int(t[i, pos])]
        assert max(a for a in ctx["acts"] if a is not None) == pytest.approx(float(out[i, pos, 0]))


def test_data_distribution_view():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g)
    x[17, 3] = 40.0  # an outlier
    x[:, 1] = 0.0  # a constant feature
    v = ls.units(x, progress=False)
    t = v._table
    assert t["data_view"] and t["units"] == 5 and t["layer"] == "the input"
    np.testing.assert_allclose(
        decode_array(t["stats"]["mean"]), x.double().mean(0).numpy(), rtol=1e-5, atol=1e-6
    )
    assert decode_array(t["stats"]["frac_zero"])[1] == 1.0
    v.unit = 3
    assert v._card["top"]["index"][0] == 17 and v._card["top"]["values"][0] == 40.0
    assert "weights" not in v._card


def test_bad_inputs():
    model, (x, _, _, _) = trained_digits()
    with pytest.raises(KeyError, match="no module at path"):
        ls.units(model, x[:10], layer="features.77", progress=False)
    with pytest.raises(TypeError, match="for the data distribution view call units"):
        ls.units("model", x[:10])
    with pytest.raises(TypeError, match="needs data"):
        ls.units(model)
    v = ls.units(model, x[:20], layer="features.1", progress=False)
    v.unit = 99
    assert "unit 99 is outside 0..7" in v._error


def test_field_map_equals_exact_field_everywhere():
    from layerscope.inspect.receptive import FieldMap

    model, _ = trained_digits()
    cases = {
        "features.4": [(r, c) for r in range(4) for c in range(4)],
        "features.3": [(0, 0), (0, 7), (1, 6), (4, 4), (7, 2), (7, 7)],
    }
    for layer, positions in cases.items():
        hw = (4, 4) if layer == "features.4" else (8, 8)
        fields = FieldMap(model, layer, (1, 8, 8), hw)
        for r, c in positions:
            assert fields(r, c) == receptive_field(model, layer, (1, 8, 8), (r, c)), (layer, r, c)


def test_data_view_keeps_labels_without_predicting():
    x = torch.randn(30, 4)
    y = torch.arange(30) % 7  # 7 classes, 4 features: not class scores
    v = ls.units((x, y), progress=False)
    col = v.collected()
    assert col.predictions is None and col.loss is None
    np.testing.assert_array_equal(col.labels, y.numpy())
    assert v._card["top"]["labels"][0] == str(int(y[v._card["top"]["index"][0]]))


def test_units_of_a_collected_equal_the_model_data_path(view, monkeypatch):
    model, (x, y, _, _) = trained_digits()
    col = ls.inspect.collect(
        model, (x[:300], y[:300]), layers=["features.3", "classifier.2"], pool="max", progress=False
    )
    # the view shows the Collected: it never runs a pass over the data of its own
    monkeypatch.setattr("layerscope.widgets.units.collect_into", None)
    monkeypatch.setattr("layerscope.widgets.units.collect_every_layer", None)
    given = ls.units(model, col, layer="features.3")
    for k in ("mean", "std", "frac_zero", "max"):
        np.testing.assert_array_equal(
            decode_array(given._table["stats"][k]), decode_array(view._table["stats"][k])
        )
    assert given._table["n"] == 300 and given._table["units"] == 16
    view.unit = given.unit = 5
    for part in ("index", "values", "positions", "boxes"):
        assert given._card["top"][part] == view._card["top"][part]
    assert [g["count"] for g in given._card["groups"]] == [g["count"] for g in view._card["groups"]]
    assert given._card["weights"]["path"] == "features.2.weight[5]"
    given.layer = "classifier.2"
    assert given._error == "" and given._table["units"] == 128
    given.layer = "features.1"
    assert "'features.1' is not in the Collected" in given._error
    with pytest.raises(KeyError, match="not in the Collected"):
        ls.units(model, col, layer="features.0")


def test_units_of_a_collected_without_model():
    model, (x, y, _, _) = trained_digits()
    col = ls.inspect.collect(
        model, (x[:200], y[:200]), layers=["features.3"], pool="mean", progress=False
    )
    v = ls.units(col)
    assert v.layer == "features.3" and not v._table["data_view"]
    np.testing.assert_array_equal(
        decode_array(v._table["stats"]["mean"]), col["features.3"].stats["mean"].astype(np.float32)
    )
    assert any("no model given" in n for n in v._table["notes"])
    top = v._card["top"]
    assert top["kind"] == "image" and "maps" not in top and "boxes" not in top
    assert top["index"] == [i for i, _, _ in col["features.3"].top(v.unit)]
    assert "no model given" in v._card["weights_note"]
    # the Collected pooled by the mean: the quantile groups say so
    assert "mean over positions" in v._card["groups_note"]
    with pytest.raises(TypeError, match="takes the Collected alone"):
        ls.units(col, x)


def test_one_shot_generator_collects_every_layer_in_its_one_pass(view):
    model, (x, y, _, _) = trained_digits()
    x, y = x[:300], y[:300]
    gen = ((x[i : i + 64], y[i : i + 64]) for i in range(0, 300, 64))
    v = ls.units(model, gen, layer="features.3", progress=False)
    np.testing.assert_allclose(
        decode_array(v._table["stats"]["mean"]),
        decode_array(view._table["stats"]["mean"]),
        rtol=1e-5,
    )
    assert any("one-shot iterable" in n for n in v._table["notes"])
    assert v._card["top"]["kind"] == "none"  # its inputs cannot be read again: said, not blank
    assert "cannot be fetched again" in v._card["top"]["why"]
    # another leaf layer: from the same pass, equal to a pass of its own
    v.layer = "classifier.2"
    assert v._error == ""
    ref = ls.inspect.collect(model, x, layers=["classifier.2"], progress=False)
    np.testing.assert_allclose(
        decode_array(v._table["stats"]["mean"]),
        ref["classifier.2"].stats["mean"].astype(np.float32),
        rtol=1e-5,
    )
    assert v._table["n"] == 300
    # a container is not a leaf: a clear error naming what to pass instead
    v.layer = "features"
    assert "one-shot iterable" in v._error and "a DataLoader or a list of batches" in v._error


def test_explore_with_a_generator_fills_both_dataset_panels():
    model, (x, y, _, _) = trained_digits()
    x, y = x[:200], y[:200]
    gen = ((x[i : i + 50], y[i : i + 50]) for i in range(0, 200, 50))
    ex = ls.explore(model, x[:4], data=gen)
    assert ex.projection.collected().n == 200 and ex.units.collected().n == 200
    assert ex.units._error == "" and ex.projection._error == ""
    ex.selected = "classifier.2"
    assert ex.units.layer == "classifier.2" and ex.units._error == ""
    assert ex.units._table["units"] == 128
