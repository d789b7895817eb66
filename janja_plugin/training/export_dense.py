"""The two extra ONNX graphs for janja:prospectivity's shared-trunk ("dense") evaluation.

Windows of neighbouring cells overlap almost entirely, so instead of classifying each window the
plugin can run the convolutional trunk once over the whole (resized) stack and read each window's
features off the resulting feature map (janja_plugin/core/dense.py). That needs the model in two
parts besides the per-window .onnx:

- trunk: N x C x H x W (dynamic H, W) -> N x F x h x w, the element adapter and Inception-v3 up to
  and including Mixed_7c, without the global average pool. Feature cell (i, j) covers the input
  pixels [stride*i, stride*i + footprint) x [stride*j, stride*j + footprint) (Inception: stride 32,
  footprint 75). At 75 px the map is 1 x 1 and is the per-window feature vector; at 149 px it is
  3 x 3 and the per-window model averages it.
- head: N x F -> N x classes, the replaced top with the same final activation as the full model.

    card = export_dense_parts(classifier, "out/model.onnx", card)

writes out/model_trunk.onnx and out/model_head.onnx and returns a copy of the card with the optional
field "dense" filled; the caller writes that card beside / inside the main .onnx as usual.
"""

import copy
import hashlib
from pathlib import Path

import torch
from torch import nn

OPSET = 17
# Inception3 children in forward order up to the last block (AuxLogits is skipped: aux_logits=False).
INCEPTION_BLOCKS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                    "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                    "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")


class TrunkFeatureMap(nn.Module):
    """adapter + Inception-v3 convolutional layers: N x C x H x W -> N x 2048 x h x w (no pooling)."""

    def __init__(self, classifier):
        super().__init__()
        self.adapter = classifier.adapter
        net = classifier.trunk.net
        self.blocks = nn.ModuleList(getattr(net, name) for name in INCEPTION_BLOCKS)

    def forward(self, x):
        x = self.adapter(x)
        for block in self.blocks:
            x = block(x)
        return x


class HeadProbabilities(nn.Module):
    """A head on pooled features, with the classifier's softmax: N x F -> N x classes."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, f):
        return torch.softmax(self.head(f), dim=1)


def feature_geometry(trunk, channels, size):
    """(stride, footprint, features) of the trunk, by probing input sizes.

    stride: input pixels between neighbouring feature cells; footprint: the smallest input mapped to one
    feature cell (the pixels a feature cell covers); at the model input `size` the map has
    (size - footprint) // stride + 1 cells a side, which the per-window model's global pool averages.
    """
    def cells(n):
        try:
            with torch.no_grad():
                out = trunk(torch.zeros(1, channels, n, n))
        except RuntimeError:  # smaller than the trunk's valid chain
            return 0, None
        return out.shape[-1], out.shape[1]

    m, n_features = cells(size)
    if not m:
        raise ValueError(f"the trunk gives no feature cell for a {size} x {size} input")
    steps = cells(size + 64)[0] - m
    if steps < 1 or 64 % steps:
        raise ValueError(f"cannot infer the feature stride: 64 more pixels give {steps} more feature cells")
    stride = 64 // steps
    footprint = size - (m - 1) * stride
    while footprint > 1 and cells(footprint - 1)[0] == 1:
        footprint -= 1
    return stride, footprint, int(n_features)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_dense_parts(classifier, onnx_path, card_dict, head=None, shifts=1, head_output="probabilities"):
    """Write <stem>_trunk.onnx and <stem>_head.onnx beside onnx_path; return card_dict with "dense" filled.

    classifier: a ProspectivityClassifier (janja_plugin/training/classifier.py); it is put in eval mode
    (BatchNorm running statistics, no dropout) and left that way. card_dict: the model card of onnx_path
    (its input channels/height/width are used); it is not modified, a deep copy is returned. Raises
    ValueError when the input is not square or the trunk's geometry cannot be probed.

    head: optional torch module N x F -> N x classes logits to export instead of classifier.head, e.g. one
    fit on the shared-trunk features themselves (core.inference.dense.features_at with the trunk written by a first
    call): at 75 px those differ a lot from the per-window features (a lone window's trunk sees zero
    padding), so the classifier's own head on them gives a different map. The card records which
    ("head_trained_on": "window_features" or "dense_features"). shifts: the trunk passes per axis the head
    was fit with (features_at(..., shifts=)); recorded as the default for inference, since features
    interpolated on a coarser or finer grid are distributed differently. head_output: "probabilities" (the head
    part ends with the classifier's softmax) or "logits" (it is exported as it is, e.g. a linear logistic head
    [0, z]: the engine reads exact log-odds, which float32 probabilities lose where they saturate at 0 or 1).
    """
    if head_output not in ("probabilities", "logits"):
        raise ValueError(f"head_output must be 'probabilities' or 'logits', not {head_output!r}")
    onnx_path = Path(onnx_path)
    inp = card_dict["input"]
    channels, height, width = inp["channels"], inp["height"], inp["width"]
    if height != width:
        raise ValueError(f"dense evaluation needs a square model input, not {height} x {width}")
    classifier = classifier.eval()
    trunk = TrunkFeatureMap(classifier).eval()
    head_net = classifier.head if head is None else head.eval()
    head_module = (HeadProbabilities(head_net) if head_output == "probabilities" else head_net).eval()
    stride, footprint, n_features = feature_geometry(trunk, channels, height)
    if shifts < 1 or stride % shifts:
        raise ValueError(f"shifts must divide the feature stride {stride}, not {shifts}")
    trunk_path = onnx_path.with_name(onnx_path.stem + "_trunk.onnx")
    head_path = onnx_path.with_name(onnx_path.stem + "_head.onnx")
    with torch.no_grad():
        torch.onnx.export(trunk, torch.zeros(1, channels, height + stride, width + stride), str(trunk_path),
                          input_names=["x"], output_names=["features"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}, "features": {0: "N", 2: "h", 3: "w"}})
        torch.onnx.export(head_module, torch.zeros(2, n_features), str(head_path), input_names=["features"],
                          output_names=["y"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"features": {0: "N"}, "y": {0: "N"}})
    card = copy.deepcopy(card_dict)
    card["dense"] = {
        "trunk": trunk_path.name,
        "head": head_path.name,
        "feature_stride": stride,
        "footprint": footprint,
        "features": n_features,
        "trunk_sha256": _sha256(trunk_path),
        "head_sha256": _sha256(head_path),
        "head_trained_on": "window_features" if head is None else "dense_features",
        "shifts": int(shifts),
    }
    if head_output != "probabilities":  # the default is left out: cards written before the field read the same
        card["dense"]["head_output"] = head_output
    return card
