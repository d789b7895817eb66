"""Model card: schema validation, the card inside the .onnx, and every refusal of load_model.

The helpers here (card_dict, build_model) also build the small known-weight models of
test_windows.py and test_prospectivity.py.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import model_card as mc

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def card_dict(elements=(("Au_ppb", "ppb", "log10", 0.5, 0.4),), channels=3, size=8, window=5,
              class_names=("background", "prospective"), output_kind="probabilities", **extra):
    """A valid card; elements are (name, unit, transform, mean, std)."""
    card = {
        "schema_version": 1,
        "name": "test window classifier",
        "model_kind": "supervised_classifier",
        "elements": [{"name": n, "unit": u, "transform": t, "mean": m, "std": s} for n, u, t, m, s in elements],
        "input": {"channels": channels, "height": size, "width": size},
        "window_pixels": window,
        "cell_size": 250.0,
        "cell_size_tolerance": 0.05,
        "crs": None,
        "class_names": list(class_names),
        "prospective_class": class_names[-1],
        "output_kind": output_kind,
        "training": {"summary": "none: weights chosen by the test so probabilities can be computed by hand"},
        "validation": {"method": "none", "metrics": {}},
        "pretrained": {"source": "none (test)"},
        "libraries": {"onnx": onnx.__version__},
        "date": "2025-01-01",
    }
    for key, value in extra.items():
        if key in ("channel_map", "resize"):
            card["input"][key] = value
        else:
            card[key] = value
    return card


def build_model(path, card, weights=None, batch="N", input_shape=None, n_out=None, softmax=True, embed=True,
                write_json=True, pool=False):
    """Write a model: x (N,C,H,W) -> [GlobalAveragePool] -> Flatten -> Gemm(W, b) -> [Softmax]; returns (W, b).

    With pool=True, W is (classes, C) applied to the channel means.
    """
    c, h, w = card["input"]["channels"], card["input"]["height"], card["input"]["width"]
    k = n_out or len(card["class_names"])
    if weights is None:
        rng = np.random.default_rng(1)
        n_in = c if pool else c * h * w
        weights = (rng.normal(size=(k, n_in)) / np.sqrt(n_in)).astype(np.float32), rng.normal(size=k).astype(np.float32)
    weight, bias = weights
    shape = input_shape or [batch, c, h, w]
    nodes, last = [], "x"
    if pool:
        nodes.append(helper.make_node("GlobalAveragePool", ["x"], ["pooled"]))
        last = "pooled"
    nodes.append(helper.make_node("Flatten", [last], ["flat"], axis=1))
    nodes.append(helper.make_node("Gemm", ["flat", "W", "b"], ["logits"], transB=1))
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["y"], axis=1))
    else:
        nodes.append(helper.make_node("Identity", ["logits"], ["y"]))
    graph = helper.make_graph(
        nodes, "window_classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [shape[0], k])],
        [helper.make_tensor("W", TensorProto.FLOAT, weight.shape, weight.ravel()),
         helper.make_tensor("b", TensorProto.FLOAT, bias.shape, bias.ravel())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if embed:
        mc.embed_card(model, card)
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    if write_json:
        mc.card_path_for(path).write_text(json.dumps(card, indent=2))
    return weight, bias


# --- schema ----------------------------------------------------------------------------------------

def test_good_card_is_valid_and_parsed():
    card = mc.card_from_dict(card_dict())
    assert card.element_names == ["Au_ppb"]
    assert card.channel_map == (0, 0, 0)  # one element repeated to three channels
    assert card.prospective_index == 1
    assert card.resize == "bilinear_half_pixel"
    three = mc.card_from_dict(card_dict(elements=[("Au_ppb", "ppb", "log10", 0, 1), ("Cu_ppm", "ppm", "none", 0, 1),
                                                  ("Pb_ppm", "ppm", "ln", 0, 1)]))
    assert three.channel_map == (0, 1, 2)


def test_schema_file_is_valid_json_schema_and_agrees_with_jsonschema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = mc.load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    good = card_dict()
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(good))
    for bad in bad_cards():
        assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad[0])) or bad[2], bad[1]
        assert mc.schema_errors(bad[0], schema) or bad[2], bad[1]


def bad_cards():
    """(card, the field the message must name, whether only the cross-field check catches it)."""
    out = []
    c = card_dict()
    del c["window_pixels"]
    out.append((c, "window_pixels", False))
    c = card_dict()
    c["elements"][0]["std"] = 0
    out.append((c, "card.elements[0].std", False))
    c = card_dict()
    c["elements"][0]["transform"] = "sqrt"
    out.append((c, "card.elements[0].transform", False))
    c = card_dict()
    c["model_kind"] = "classifier"
    out.append((c, "card.model_kind", False))
    c = card_dict()
    c["input"]["height"] = "75"
    out.append((c, "card.input.height", False))
    c = card_dict()
    c["windw_pixels"] = 5
    out.append((c, "windw_pixels", False))
    c = card_dict(window=4)
    out.append((c, "card.window_pixels: must be odd", True))
    c = card_dict(prospective_class="deposit")
    out.append((c, "card.prospective_class", True))
    c = card_dict(elements=[("Au_ppb", "ppb", "log10", 0, 1), ("Cu_ppm", "ppm", "log10", 0, 1)])
    out.append((c, "card.input.channel_map", True))
    c = card_dict(channel_map=[0, 1, 0])
    out.append((c, "element index(es) [1]", True))
    c = card_dict(date="yesterday")
    out.append((c, "card.date", False))
    c = card_dict(dense={"trunk": "m_trunk.onnx", "feature_stride": 32})
    out.append((c, "card.dense: the field 'head' is missing", False))
    c = card_dict(dense={"trunk": "t.onnx", "head": "h.onnx", "feature_stride": 0})
    out.append((c, "card.dense.feature_stride", False))
    c = card_dict(dense={"trunk": "t.onnx", "head": "h.onnx", "feature_stride": 32, "trunk_sha256": "abc"})
    out.append((c, "card.dense.trunk_sha256", False))
    c = card_dict(dense={"trunk": "t.onnx", "head": "h.onnx", "feature_stride": 32, "head_trained_on": "both"})
    out.append((c, "card.dense.head_trained_on", False))
    return out


def test_optional_dense_field_is_parsed_and_old_cards_stay_valid():
    assert mc.card_from_dict(card_dict()).dense is None
    dense = {"trunk": "m_trunk.onnx", "head": "m_head.onnx", "feature_stride": 32, "features": 2048,
             "trunk_sha256": "0" * 64, "head_sha256": "f" * 64, "head_trained_on": "dense_features", "shifts": 2}
    card = mc.card_from_dict(card_dict(dense=dense))
    assert card.dense == dense and card.to_dict()["dense"] == dense


@pytest.mark.parametrize("index", range(15))
def test_invalid_cards_are_refused_naming_the_field(index):
    card, field, _ = bad_cards()[index]
    with pytest.raises(JanjaInputError, match="is not valid") as info:
        mc.card_from_dict(card)
    assert field in str(info.value)


# --- the card in the .onnx and beside it ------------------------------------------------------------

def test_load_model_reads_card_and_deepness_metadata(tmp_path):
    card = card_dict()
    build_model(tmp_path / "m.onnx", card)
    model = mc.load_model(tmp_path / "m.onnx", threads=1)
    assert model.card.element_names == ["Au_ppb"] and model.fixed_batch is None
    assert [n for n in model.notes if "does not record its training data" not in n] == []
    meta = model.session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["janja_model_card"]) == card
    assert meta["model_type"] == "supervised_classifier"
    assert json.loads(meta["class_names"]) == {"0": "background", "1": "prospective"}
    assert float(meta["resolution"]) == 25000.0  # centimetres per pixel, as Deepness reads it
    assert meta["tiles_size"] == "5" and meta["tile_size"] == "5"


def test_card_only_embedded_or_only_beside_loads_with_a_note(tmp_path):
    build_model(tmp_path / "a.onnx", card_dict(), write_json=False)
    assert "inside" in mc.load_model(tmp_path / "a.onnx").notes[0]
    build_model(tmp_path / "b.onnx", card_dict(), embed=False)
    assert "no embedded card" in mc.load_model(tmp_path / "b.onnx").notes[0]


def test_refuses_missing_card(tmp_path):
    build_model(tmp_path / "m.onnx", card_dict(), embed=False, write_json=False)
    with pytest.raises(JanjaInputError, match="has no model card"):
        mc.load_model(tmp_path / "m.onnx")


def test_refuses_card_that_disagrees_with_embedded(tmp_path):
    build_model(tmp_path / "m.onnx", card_dict())
    edited = card_dict()
    edited["elements"][0]["mean"] = 0.7
    (tmp_path / "m.json").write_text(json.dumps(edited))
    with pytest.raises(JanjaInputError, match=r"disagrees with the card inside m.onnx in the field\(s\) \['elements"):
        mc.load_model(tmp_path / "m.onnx")


def test_refuses_tampered_deepness_key(tmp_path):
    card = card_dict()
    build_model(tmp_path / "m.onnx", card, write_json=False)
    model = onnx.load(str(tmp_path / "m.onnx"))
    for p in model.metadata_props:
        if p.key == "tiles_size":
            p.value = "7"
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(JanjaInputError, match="tiles_size"):
        mc.load_model(tmp_path / "m.onnx")


def test_refuses_corrupt_and_missing_files(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"this is not a protobuf \x00\xff" * 20)
    with pytest.raises(JanjaInputError, match="could not be read as an ONNX model"):
        mc.load_model(tmp_path / "bad.onnx")
    build_model(tmp_path / "m.onnx", card_dict())
    data = (tmp_path / "m.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(JanjaInputError, match="damaged or not an ONNX file"):
        mc.load_model(tmp_path / "cut.onnx")
    with pytest.raises(JanjaInputError, match="does not exist"):
        mc.load_model(tmp_path / "none.onnx")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(JanjaInputError, match="could not be read as JSON"):
        mc.load_model(tmp_path / "m.onnx")


@pytest.mark.parametrize("shape, what", [([None, 4, 8, 8], "3 channels"), ([None, 3, 8, 9], "8 width"),
                                         ([None, 3, 10, 8], "8 height")])
def test_refuses_input_shape_that_disagrees_with_card(tmp_path, shape, what):
    card = card_dict()
    fake = dict(card, input=dict(card["input"], channels=shape[1], height=shape[2], width=shape[3]))
    shape = ["N"] + shape[1:]
    build_model(tmp_path / "m.onnx", fake, input_shape=shape, embed=False, write_json=False)
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(JanjaInputError, match=f"expects input .* but its card says {what}"):
        mc.load_model(tmp_path / "m.onnx")


def test_refuses_output_count_that_disagrees_with_card(tmp_path):
    card = card_dict()
    build_model(tmp_path / "m.onnx", card, n_out=3, embed=False)
    with pytest.raises(JanjaInputError, match="gives 3 outputs per window but its card names 2"):
        mc.load_model(tmp_path / "m.onnx")


def test_fixed_batch_axis_is_reported(tmp_path):
    build_model(tmp_path / "m.onnx", card_dict(), batch=4)
    assert mc.load_model(tmp_path / "m.onnx").fixed_batch == 4


# --- stack and grid checks --------------------------------------------------------------------------

def test_match_stack_finds_bands_and_names_missing_elements():
    card = mc.card_from_dict(card_dict(elements=[("Au_ppb", "ppb", "log10", 0, 1), ("Cu_ppm", "ppm", "log10", 0, 1),
                                                 ("As_ppm", "ppm", "log10", 0, 1)]))
    assert mc.match_stack(card, ["cu_ppm", "As_ppm", "Zn_ppm", "Au_ppb"]) == [3, 0, 1]
    with pytest.raises(JanjaInputError) as info:
        mc.match_stack(card, ["Au_ppb", "Zn_ppm", "Pb_ppm"])
    msg = str(info.value)
    assert "lacks Cu_ppm, As_ppm" in msg and "The stack has: Au_ppb, Zn_ppm, Pb_ppm" in msg


def test_check_grid_refuses_other_cell_size_and_crs():
    card = mc.card_from_dict(card_dict(crs="EPSG:28350"))
    mc.check_grid(card, 255.0)  # within 5 %
    with pytest.raises(JanjaInputError, match="cell size is 500 m but .* trained at 250 m.*Resample"):
        mc.check_grid(card, 500.0)
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(28350)
    mc.check_grid(card, 250.0, srs.ExportToWkt())
    srs.ImportFromEPSG(28351)
    with pytest.raises(JanjaInputError, match="requires EPSG:28350"):
        mc.check_grid(card, 250.0, srs.ExportToWkt())
