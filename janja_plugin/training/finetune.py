"""Optional fine-tuning: after the head is fit on cached features, train the last Inception blocks too.

The study retrains only the replaced head; unfreezing the last blocks (and the 1x1 element adapter
when there is one) can adapt ImageNet features to geochemical windows, at the cost of a full forward
and backward pass per window (minutes per epoch on a laptop CPU instead of seconds). Batch-norm
statistics stay frozen: a few hundred windows cannot re-estimate them.
"""

import time

import numpy as np
import torch
from torch import nn

from .dataset import resize_windows


def trainable_parameters(clf, blocks):
    params = list(clf.head.parameters())
    for block in clf.trunk.tail_blocks(blocks) if blocks else []:
        params += list(block.parameters())
    if clf.adapter.mix is not None:
        params += list(clf.adapter.mix.parameters())
    return params


def finetune(clf, windows, labels, blocks=1, epochs=1, lr=1e-4, batch=16, input_size=75, seed=0, log=print):
    """Train the head, the last `blocks` Inception blocks and the adapter on (windows, labels); returns losses."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    for p in clf.parameters():
        p.requires_grad_(False)
    params = trainable_parameters(clf, blocks)
    for p in params:
        p.requires_grad_(True)
    clf.eval()  # dropout off and batch-norm statistics frozen
    clf.head.train()  # the head's dropout as when it was fit
    counts = np.bincount(labels, minlength=2).astype(float)
    loss_fn = nn.CrossEntropyLoss(weight=torch.as_tensor(counts.sum() / (2 * np.maximum(counts, 1)),
                                                         dtype=torch.float32))
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(labels))
        total = 0.0
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            x = torch.as_tensor(resize_windows(windows[idx], input_size))
            logits = clf.head(clf.features(x))
            loss = loss_fn(logits, torch.as_tensor(labels[idx], dtype=torch.int64))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.size
        losses.append(total / len(order))
        log(f"  fine-tuning epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f} ({time.perf_counter() - t0:.0f} s)")
    for p in clf.parameters():
        p.requires_grad_(False)
    clf.eval()
    return losses
