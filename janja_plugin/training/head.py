"""Train the replaced head (dropout + dense layers + softmax) on cached trunk features."""

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ..core.evaluation.evaluate import auc_mann_whitney
from .classifier import make_head


@dataclass(frozen=True)
class HeadParams:
    layers: int = 1
    dropout: float = 0.5
    lr: float = 1e-3
    optimizer: str = "adam"
    activation: str = "relu"
    batch: int = 32
    hidden: int = 256
    epochs: int = 40

    def as_dict(self):
        return asdict(self)


@dataclass
class HeadFit:
    head: nn.Module
    mean: np.ndarray  # feature standardisation folded into the head's first linear layer on export
    std: np.ndarray
    curves: dict = field(default_factory=dict)  # per epoch: train_loss, train_acc, val_loss, val_acc, val_auc


def metrics(p, y):
    """Accuracy (0.5 cut), cross-entropy and ROC-AUC of prospective-class probabilities p for labels y."""
    p = np.clip(np.asarray(p, float), 1e-7, 1 - 1e-7)
    y = np.asarray(y)
    ce = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    acc = float(np.mean((p >= 0.5) == (y == 1)))
    auc = auc_mann_whitney(p[y == 1], p[y == 0]) if (y == 1).any() and (y == 0).any() else float("nan")
    return {"accuracy": acc, "cross_entropy": ce, "auc": float(auc)}


def _standardised_head(fit):
    """The head with the feature standardisation folded into its first linear layer (for export)."""
    head = fit.head
    lin = next(m for m in head if isinstance(m, nn.Linear))
    with torch.no_grad():
        scale = torch.as_tensor(1.0 / fit.std, dtype=torch.float32)
        shift = torch.as_tensor(fit.mean / fit.std, dtype=torch.float32)
        lin.bias -= lin.weight @ shift
        lin.weight *= scale[None, :]
    return head


def train_head(x, y, params, x_val=None, y_val=None, seed=0, class_balance=True):
    """Fit a head on features x (n, 2048) and labels y; curves on the validation set when given."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    xt = torch.as_tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    xv = torch.as_tensor((x_val - mean) / std, dtype=torch.float32) if x_val is not None else None
    head = make_head(params.layers, params.hidden, params.dropout, params.activation)
    if params.optimizer == "adam":
        opt = torch.optim.Adam(head.parameters(), lr=params.lr, weight_decay=1e-4)
    else:
        opt = torch.optim.SGD(head.parameters(), lr=params.lr, momentum=0.9, weight_decay=1e-4)
    counts = np.bincount(y, minlength=2).astype(float)
    weight = torch.as_tensor(counts.sum() / (2 * np.maximum(counts, 1)) if class_balance else np.ones(2),
                             dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    curves = {k: [] for k in ("train_loss", "train_acc", "val_loss", "val_acc", "val_auc")}
    n = len(y)
    for _ in range(params.epochs):
        head.train()
        order = rng.permutation(n)
        total, correct = 0.0, 0
        for s in range(0, n, params.batch):
            idx = order[s:s + params.batch]
            logits = head(xt[idx])
            loss = loss_fn(logits, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * idx.size
            correct += int((logits.argmax(1) == yt[idx]).sum())
        curves["train_loss"].append(total / n)
        curves["train_acc"].append(correct / n)
        if xv is not None:
            head.eval()
            with torch.no_grad():
                p = torch.softmax(head(xv), 1)[:, 1].numpy()
            m = metrics(p, y_val)
            curves["val_loss"].append(m["cross_entropy"])
            curves["val_acc"].append(m["accuracy"])
            curves["val_auc"].append(m["auc"])
    head.eval()
    return HeadFit(head, mean, std, curves)


def predict(fit, x):
    with torch.no_grad():
        xt = torch.as_tensor((x - fit.mean) / fit.std, dtype=torch.float32)
        return torch.softmax(fit.head(xt), 1)[:, 1].numpy()


def exportable_head(fit):
    """A copy of the head that takes raw features (standardisation folded in)."""
    import copy

    return _standardised_head(HeadFit(copy.deepcopy(fit.head), fit.mean, fit.std))
