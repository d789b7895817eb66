"""ONNX export of the whole classifier: onnxruntime equals torch, fp16 stays within 1e-3, the plugin loads it."""

import json

import numpy as np
import onnx
import torch

from janja_plugin.core.inference import model_card
from janja_plugin.training.classifier import ProspectivityClassifier
from janja_plugin.training.export import FP16_TOLERANCE, export_onnx, max_abs_diff, pick_precision


def model_of(clf, tmp_path):
    return export_onnx(clf, 5, 75, tmp_path / "m_small_head.onnx")


def test_onnx_equals_torch_and_loads_in_the_plugin(tmp_path):
    torch.manual_seed(1)
    clf = ProspectivityClassifier(5, pretrained=True).eval()  # 5 elements: the learned 1x1 adapter is in the graph
    with torch.no_grad():
        for p in clf.head.parameters():
            p.mul_(20.0)  # a head whose outputs spread over (0, 1), so the comparison means something
    batch = np.random.default_rng(0).normal(size=(6, 5, 75, 75)).astype(np.float32)
    with torch.no_grad():
        p = clf(torch.as_tensor(batch)).numpy()[:, 1]
    assert p.min() < 0.45 and p.max() > 0.55, p
    model = export_onnx(clf, 5, 75, tmp_path / "m.onnx")
    assert model.opset_import[0].version == 17
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch
    assert max_abs_diff(model, clf, batch) <= 1e-4
    chosen, is_fp16, diff16 = pick_precision(model, clf, batch)
    assert (diff16 <= FP16_TOLERANCE) == is_fp16  # fp16 only when it keeps the 1e-3 agreement
    assert max_abs_diff(chosen, clf, batch) <= (FP16_TOLERANCE if is_fp16 else 1e-4)
    with torch.no_grad():  # a head of ordinary scale: fp16 keeps the agreement and halves the file
        for p_ in clf.head.parameters():
            p_.div_(20.0)
    half, is_fp16, diff16 = pick_precision(model_of(clf, tmp_path), clf, batch)
    assert is_fp16 and diff16 <= FP16_TOLERANCE
    assert half.ByteSize() < 0.6 * model.ByteSize()  # 87 MB -> under 50 MB
    card = json.loads((model_card.SCHEMA_PATH.parent / "model_card.schema.json").read_text())  # schema exists
    assert card["title"]
    card = {"schema_version": 1, "name": "export-test", "model_kind": "supervised_classifier",
            "elements": [{"name": f"E{i}_ppm", "unit": "ppm", "transform": "log10", "mean": 0.0, "std": 1.0}
                         for i in range(5)],
            "input": {"channels": 5, "height": 75, "width": 75}, "window_pixels": 15, "cell_size": 250.0,
            "class_names": ["background", "deposit"], "prospective_class": "deposit",
            "output_kind": "probabilities", "training": {"summary": "test"},
            "validation": {"method": "none", "metrics": {}}, "pretrained": {"source": "test"}, "libraries": {},
            "date": "2026-11-28"}
    model_card.embed_card(half, card)
    with torch.no_grad():
        p = clf(torch.as_tensor(batch)).numpy()[:, 1]
    onnx.save(half, str(tmp_path / "m16.onnx"))
    loaded = model_card.load_model(tmp_path / "m16.onnx")  # card only inside the file: accepted
    got = loaded.session.run(None, {loaded.input_name: batch})[0][:, 1]
    np.testing.assert_allclose(got, p, atol=1e-3)
