"""Cached trunk features: the frozen adapter + Inception-v3 trunk run once per window.

With the backbone frozen (the study retrains only the replaced head) every window's 2048 features are
fixed, so they are computed once and every head, fold and hyperparameter reuses them. The trunk is
exported to ONNX and run by onnxruntime: on these CPUs that is ~10x faster than torch's eager mode.
"""

import os
import tempfile
import time

import numpy as np
import torch

from .dataset import resize_windows


def onnx_session(module, n_elements, input_size, output_name, threads=None):
    """An onnxruntime session of a torch module taking (n, n_elements, input_size, input_size) windows: the
    module is exported to a temporary ONNX file (dynamic batch) and opened with `threads` intra-op threads."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "part.onnx")
        torch.onnx.export(module, (torch.zeros(2, n_elements, input_size, input_size),), path, dynamo=False,
                          opset_version=17, input_names=["windows"], output_names=[output_name],
                          dynamic_axes={"windows": {0: "n"}, output_name: {0: "n"}})
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


class FeatureExtractor:
    def __init__(self, classifier, input_size, threads=None, resize_mode="bilinear_half_pixel"):
        self.input_size = input_size
        self.resize_mode = resize_mode
        self.seconds = 0.0
        self.count = 0
        module = torch.nn.Sequential(classifier.adapter, classifier.trunk).eval()
        self.session = onnx_session(module, classifier.adapter.n_elements, input_size, "features", threads)

    def __call__(self, windows, batch=64):
        """(n, E, w, w) source windows -> (n, 2048) float32 features."""
        t0 = time.perf_counter()
        out = np.empty((len(windows), 2048), np.float32)
        for s in range(0, len(windows), batch):
            x = resize_windows(windows[s:s + batch], self.input_size, self.resize_mode)
            out[s:s + batch] = self.session.run(None, {"windows": x})[0]
        self.seconds += time.perf_counter() - t0
        self.count += len(windows)
        return out
