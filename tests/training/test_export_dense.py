"""export_dense_parts: the trunk and head graphs of a (random-init) classifier, and the card field that names them."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from janja_plugin.core.inference import dense  # noqa: E402
from janja_plugin.core.inference import model_card as mc  # noqa: E402
from janja_plugin.core.inference import windows as wn  # noqa: E402
from janja_plugin.training.classifier import ProspectivityClassifier, make_head  # noqa: E402
from janja_plugin.training.export_dense import export_dense_parts  # noqa: E402

ELEMENTS = ["Au_ppm", "Ag_ppm", "Cu_ppm", "Pb_ppm", "Zn_ppm"]
SIZE, WINDOW = 75, 15


def card():
    return {
        "schema_version": 1, "name": "dense export test", "model_kind": "supervised_classifier",
        "elements": [{"name": n, "unit": "ppm", "transform": "log10", "mean": 0.0, "std": 1.0} for n in ELEMENTS],
        "input": {"channels": len(ELEMENTS), "height": SIZE, "width": SIZE}, "window_pixels": WINDOW,
        "cell_size": 250.0, "crs": None, "class_names": ["background", "prospective"],
        "prospective_class": "prospective", "output_kind": "probabilities",
        "training": {"summary": "random init (test)"}, "validation": {"method": "none", "metrics": {}},
        "pretrained": {"source": "none (test)"}, "libraries": {}, "date": "2026-01-01",
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    clf = ProspectivityClassifier(len(ELEMENTS), pretrained=False)
    with torch.no_grad():  # random-init features are large: a small head keeps the probabilities informative
        clf.head[-1].weight.mul_(1e-3 / clf.head[-1].weight.abs().max())
    folder = tmp_path_factory.mktemp("dense")
    original = card()
    out = export_dense_parts(clf, folder / "m.onnx", original)
    return clf, folder, original, out


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_card_field_is_filled_and_valid(exported):
    _, folder, original, out = exported
    assert "dense" not in original  # the caller's card is not modified
    d = out["dense"]
    assert (d["trunk"], d["head"], d["feature_stride"], d["features"]) == ("m_trunk.onnx", "m_head.onnx", 32, 2048)
    assert d["footprint"] == 75
    assert d["head_trained_on"] == "window_features" and d["shifts"] == 1
    assert (folder / d["trunk"]).is_file() and (folder / d["head"]).is_file()
    parsed = mc.card_from_dict(json.loads(json.dumps(out)))
    assert parsed.dense == d
    assert mc.card_from_dict(original).dense is None  # cards without the field stay valid


def test_parts_reproduce_the_classifier(exported):
    clf, folder, _, out = exported
    x = torch.randn(3, len(ELEMENTS), SIZE, SIZE) * 2
    with torch.no_grad():
        feats, probs = clf.features(x).numpy(), clf(x).numpy()
    trunk, head = session(folder / "m_trunk.onnx"), session(folder / "m_head.onnx")
    fmap = trunk.run(None, {"x": x.numpy()})[0]
    assert fmap.shape == (3, 2048, 1, 1)
    np.testing.assert_allclose(fmap[:, :, 0, 0], feats, rtol=1e-4, atol=1e-5 * np.abs(feats).max())
    np.testing.assert_allclose(head.run(None, {"features": feats})[0], probs, atol=1e-5)
    big = trunk.run(None, {"x": np.zeros((1, len(ELEMENTS), SIZE + 64, SIZE + 32), np.float32)})[0]
    assert big.shape[2:] == (3, 2)  # dynamic H, W; one more feature cell per 32 pixels


def test_another_head_and_the_core_reads_the_parts(exported, tmp_path):
    clf, _, original, _ = exported
    torch.manual_seed(1)
    other = make_head()
    out = export_dense_parts(clf, tmp_path / "m.onnx", original, head=other, shifts=2)
    assert out["dense"]["head_trained_on"] == "dense_features" and out["dense"]["shifts"] == 2
    f = np.random.default_rng(0).normal(size=(4, 2048)).astype(np.float32)
    with torch.no_grad():
        want = torch.softmax(other.eval()(torch.as_tensor(f)), 1).numpy()
    np.testing.assert_allclose(session(tmp_path / "m_head.onnx").run(None, {"features": f})[0], want, atol=1e-5)
    # the plugin's loader accepts the parts (checksums included) and maps a small stack with them
    model = SimpleNamespace(card=mc.card_from_dict(out), path=tmp_path / "m.onnx", threads=1)
    parts = dense.load_parts(model)
    assert (parts.stride, parts.factor) == (32, 5)
    stack = wn.ArrayStack(np.exp(np.random.default_rng(2).normal(size=(5, 9, 11))).astype(np.float32), ELEMENTS)
    p, valid, stats = dense.predict_dense(model, parts, stack, list(range(5)))
    assert valid.all() and np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all() and stats.n_windows == 99


def test_geometry_at_149_px(exported):
    from janja_plugin.training.export_dense import TrunkFeatureMap, feature_geometry

    clf = exported[0]
    assert feature_geometry(TrunkFeatureMap(clf).eval(), len(ELEMENTS), 149) == (32, 75, 2048)  # 3 x 3 cells
