"""Fine-tuning option: only the head, the chosen last blocks and the 1x1 adapter change."""

import numpy as np
import torch

from janja_plugin.training.classifier import ProspectivityClassifier
from janja_plugin.training.finetune import finetune


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module):
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_finetune_trains_only_the_tail_blocks_adapter_and_head():
    torch.manual_seed(0)
    clf = ProspectivityClassifier(5, pretrained=False).eval()
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(12, 5, 9, 9)).astype(np.float32)
    labels = np.array([0, 1] * 6)
    windows[labels == 1] += 1.0
    net = clf.trunk.net
    frozen = {name: snapshot(getattr(net, name)) for name in ("Conv2d_1a_3x3", "Mixed_5b", "Mixed_7b")}
    tail, head, adapter = snapshot(net.Mixed_7c), snapshot(clf.head), snapshot(clf.adapter)
    losses = finetune(clf, windows, labels, blocks=1, epochs=2, lr=1e-3, batch=6, input_size=75, log=lambda m: None)
    assert len(losses) == 2 and all(np.isfinite(losses))
    for name, before in frozen.items():
        assert not changed(before, getattr(net, name)), name
    assert changed(tail, net.Mixed_7c) and changed(head, clf.head) and changed(adapter, clf.adapter)
    assert not any(p.requires_grad for p in clf.parameters())  # left frozen for export
