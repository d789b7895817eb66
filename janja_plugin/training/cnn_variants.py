"""CNN variants of the study's classifier: the 8 symmetries of the square, a split trunk, tail fine-tuning.

The Inception-v3 trunk is split after Mixed_7a. The stem (adapter .. Mixed_7a) stays frozen in every
variant, so its output is computed once per window, orientation and window size and cached on disk
(keyed by the windows' own bytes, so a changed window size, element list or orientation can never read
a stale cache). The tail (Mixed_7b, Mixed_7c, global pool) is cheap on that cache: at 75 px input
Mixed_7a's map is 1 x 1, so the frozen 2048 features are one tail pass, and fine-tuning the two last
blocks with the head runs on CPU in seconds per epoch instead of a full forward and backward pass.
"""

import copy
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .dataset import resize_windows
from .features import onnx_session
from .head import HeadFit

STEM_LAYERS = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
               "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
               "Mixed_6e", "Mixed_7a"]
D4 = 8


def d4(windows, k):
    """Orientation k (0..7) of (..., w, w) windows: k % 4 quarter turns, after a transpose when k >= 4."""
    x = np.swapaxes(windows, -1, -2) if k >= 4 else windows
    return np.ascontiguousarray(np.rot90(x, k % 4, axes=(-2, -1)))


def d4_mean(score, windows):
    """Test-time symmetrisation: the mean of score() over the 8 orientations (invariant under any of them)."""
    return np.mean([score(d4(windows, k)) for k in range(D4)], axis=0)


class Stem(nn.Module):
    """Element adapter + Inception-v3 up to Mixed_7a (frozen in every variant)."""

    def __init__(self, classifier):
        super().__init__()
        self.adapter = classifier.adapter
        self.layers = nn.Sequential(*[getattr(classifier.trunk.net, n) for n in STEM_LAYERS])

    def forward(self, x):
        return self.layers(self.adapter(x))


class Tail(nn.Module):
    """Mixed_7b + Mixed_7c + global average pool: Mixed_7a's output -> the 2048 trunk features."""

    def __init__(self, classifier):
        super().__init__()
        net = classifier.trunk.net
        self.mixed_7b, self.mixed_7c = net.Mixed_7b, net.Mixed_7c

    def forward(self, a):
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.mixed_7c(self.mixed_7b(a)), 1), 1)


def tail_features(tail, acts, batch=256):
    """(n, 1280, s, s) Mixed_7a activations -> (n, 2048) features, no gradients."""
    tail.eval()
    out = np.empty((len(acts), 2048), np.float32)
    with torch.no_grad():
        for s in range(0, len(acts), batch):
            out[s:s + batch] = tail(torch.as_tensor(acts[s:s + batch])).numpy()
    return out


class StemExtractor:
    """The stem run by onnxruntime (as training.features does for the whole trunk: ~10x torch eager here)."""

    def __init__(self, classifier, input_size, threads=None, tag="stem"):
        self.input_size, self.tag, self.seconds, self.count = input_size, tag, 0.0, 0
        self.session = onnx_session(Stem(classifier).eval(), classifier.adapter.n_elements, input_size, "mixed_7a",
                                    threads)

    def __call__(self, windows, batch=64):
        """(n, E, w, w) source windows -> (n, 1280, s, s) Mixed_7a activations (float32)."""
        t0 = time.perf_counter()
        parts = [self.session.run(None, {"windows": resize_windows(windows[s:s + batch], self.input_size)})[0]
                 for s in range(0, len(windows), batch)]
        self.seconds += time.perf_counter() - t0
        self.count += len(windows)
        return np.concatenate(parts).astype(np.float32)


def cache_key(windows, extractor):
    """Digest of the windows' shape and bytes, the model input size and the stem's identity."""
    h = hashlib.sha1()
    w = np.ascontiguousarray(windows, dtype=np.float32)
    h.update(repr((w.shape, extractor.input_size, extractor.tag)).encode())
    h.update(w.tobytes())
    return h.hexdigest()


def cached_stem(extractor, windows, folder, name="acts"):
    """Mixed_7a activations of `windows`, read from folder when the very same windows were run before."""
    key = cache_key(windows, extractor)
    path = Path(folder) / f"{name}_w{windows.shape[-1]}_{key[:20]}.npz"
    if path.is_file():
        with np.load(path) as z:
            if str(z["key"]) == key:
                return z["acts"]
    acts = extractor(windows)
    Path(folder).mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, acts=acts, key=key)
    os.replace(tmp, path)  # complete files only
    return acts


def finetune_tail(tail, fit, acts, y, epochs=3, lr=1e-4, batch=32, seed=0):
    """Copies of tail (Mixed_7b, Mixed_7c) and head trained together on cached Mixed_7a activations.

    Starts from a head already fit on the frozen features (fit), keeps its feature standardisation, and
    keeps batch-norm statistics frozen (a few thousand windows cannot re-estimate them); classes balanced.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tail, head = copy.deepcopy(tail), copy.deepcopy(fit.head)
    params = list(tail.parameters()) + list(head.parameters())
    for p in params:
        p.requires_grad_(True)
    tail.eval()
    head.train()
    mean = torch.as_tensor(fit.mean, dtype=torch.float32)
    std = torch.as_tensor(fit.std, dtype=torch.float32)
    counts = np.bincount(y, minlength=2).astype(float)
    loss_fn = nn.CrossEntropyLoss(weight=torch.as_tensor(counts.sum() / (2 * np.maximum(counts, 1)),
                                                         dtype=torch.float32))
    opt = torch.optim.Adam(params, lr=lr)
    yt = torch.as_tensor(y, dtype=torch.int64)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(y))
        total = 0.0
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            logits = head((tail(torch.as_tensor(acts[idx])) - mean) / std)
            loss = loss_fn(logits, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.size
        losses.append(total / len(y))
    for p in params:
        p.requires_grad_(False)
    tail.eval()
    head.eval()
    return tail, HeadFit(head, fit.mean, fit.std, {"finetune_loss": losses})
