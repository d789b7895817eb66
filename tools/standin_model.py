"""A stand-in window classifier for the workflow when models/ holds no trained model yet (tests, demo).

NOT a trained model: a logistic score of the window means of standardised log10 Au and Ag, written
with onnx.helper as the plugin's tests build their models, with a valid janja model card. It lets the
workflow, the demo and their tests run end to end before the bundled Inception-v3 lands in models/;
its maps are labelled as coming from a stand-in wherever they are shown. Never copy it into models/.
"""

import json
from pathlib import Path

import numpy as np

# log10 mean and SD of the bundled survey's kriged elements (500 m stack), per element
STATS = {"Au_ppm": (-3.52, 0.32), "Ag_ppm": (-2.74, 0.31), "Cu_ppm": (0.15, 0.34), "Pb_ppm": (-0.04, 0.48),
         "Zn_ppm": (-0.02, 0.58)}
WEIGHTS = {"Au_ppm": 2.0, "Ag_ppm": 1.0}  # logit = 2 z(Au) + 1 z(Ag) - 1.5, on window means
STANDIN_NAME = "STAND-IN (untrained) Au-Ag window score"


def standin_card(cell_size, elements=tuple(STATS), window=5, size=8):
    return {
        "schema_version": 1,
        "name": STANDIN_NAME,
        "model_kind": "supervised_classifier",
        "elements": [{"name": n, "unit": "ppm", "transform": "log10", "mean": STATS.get(n, (0.0, 1.0))[0],
                      "std": STATS.get(n, (0.0, 1.0))[1]} for n in elements],
        "input": {"channels": len(elements), "height": size, "width": size},
        "window_pixels": window,
        "cell_size": float(cell_size),
        "cell_size_tolerance": 0.01,
        "crs": None,
        "class_names": ["background", "prospective"],
        "prospective_class": "prospective",
        "output_kind": "probabilities",
        "training": {"summary": "none: a stand-in with hand-set weights (2 z(Au) + z(Ag) - 1.5 on window means) "
                                "so the workflow runs before the trained model is bundled"},
        "validation": {"method": "none", "metrics": {}},
        "pretrained": {"source": "none (stand-in)"},
        "libraries": {},
        "date": "2026-01-01",
    }


def build_standin_model(path, cell_size, elements=tuple(STATS)):
    """Write <path>.onnx with its card embedded and beside it (<path>.json); return the .onnx path."""
    import onnx
    from onnx import TensorProto, helper

    from janja_plugin.core.inference import model_card as mc

    card = standin_card(cell_size, elements)
    c, h, w = card["input"]["channels"], card["input"]["height"], card["input"]["width"]
    weight = np.zeros((2, c), np.float32)
    for i, name in enumerate(elements):
        weight[1, i] = WEIGHTS.get(name, 0.0)
    bias = np.array([0.0, -1.5], np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "W", "b"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "standin_window_classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, h, w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor("W", TensorProto.FLOAT, weight.shape, weight.ravel()),
         helper.make_tensor("b", TensorProto.FLOAT, bias.shape, bias.ravel())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    mc.embed_card(model, card)
    onnx.checker.check_model(model)
    path = Path(path).with_suffix(".onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    mc.card_path_for(path).write_text(json.dumps(card, indent=2))
    return path
