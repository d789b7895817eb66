"""The Inception-v3 trunk rebuilt from the fid-helper weights equals the original TorchScript module."""

import torch

from janja_plugin.training.backbone import WEIGHTS_SHA1, InceptionTrunk, load_reference_module, sha1_of, weights_path


def test_weights_file_is_the_documented_one():
    assert sha1_of(weights_path()) == WEIGHTS_SHA1


def test_features_equal_the_torchscript_original():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        ref = load_reference_module()(x)
        ours = InceptionTrunk(pretrained=True).eval()(x)
    assert ours.shape == (2, 2048)
    assert float((ref - ours).abs().max()) <= 1e-5


def test_without_the_pool_patches_features_differ():
    """The patches matter: torchvision's stock pooling gives different features (so the test above can fail)."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 299, 299) * 2 - 1
    net = InceptionTrunk(pretrained=True).eval()
    with torch.no_grad():
        patched = net(x)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7b",
                     "Mixed_7c"):
            del getattr(net.net, name)._forward  # back to torchvision's class method
        stock = net(x)
    assert float((patched - stock).abs().max()) > 1e-3
