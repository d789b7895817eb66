"""The exported classifier: element adapter -> Inception-v3 trunk -> replaced head -> softmax.

Input: N x E x H x W windows already transformed by the model card (per-element log + standardise,
missing values = 0) and resized to H x W by the inference engine. The adapter maps the E elements to
the 3 channels the ImageNet stem expects and squeezes standardised values into the weights' [-1, 1]
range: 1 element is repeated, 3 elements go straight through, any other number passes a 1x1
convolution (initialised from the elements' principal components so it starts meaningful).
"""

import torch
from torch import nn

from .backbone import FEATURES, InceptionTrunk

INPUT_SCALE = 3.0  # z-scores beyond +-3 saturate at the ends of [-1, 1]
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}


class ElementAdapter(nn.Module):
    def __init__(self, n_elements):
        super().__init__()
        self.n_elements = n_elements
        self.mode = "repeat" if n_elements == 1 else "direct" if n_elements == 3 else "conv1x1"
        self.mix = nn.Conv2d(n_elements, 3, kernel_size=1, bias=True) if self.mode == "conv1x1" else None

    def init_from_components(self, components):
        """components: (3, E) rows of unit principal directions of the standardised elements."""
        if self.mix is not None:
            with torch.no_grad():
                w = torch.as_tensor(components, dtype=torch.float32)
                self.mix.weight.copy_(w.reshape(3, self.n_elements, 1, 1))
                self.mix.bias.zero_()

    def forward(self, x):
        if self.mode == "repeat":
            x = x.expand(-1, 3, -1, -1)
        elif self.mix is not None:
            x = self.mix(x)
        return torch.clamp(x / INPUT_SCALE, -1.0, 1.0)


def make_head(layers=1, hidden=256, dropout=0.5, activation="relu", n_classes=2):
    """The replaced top: dropout, `layers` fully connected layers (the last gives the class logits)."""
    act = ACTIVATIONS[activation]
    mods, width = [nn.Dropout(dropout)], FEATURES
    for _ in range(layers - 1):
        mods += [nn.Linear(width, hidden), act(), nn.Dropout(dropout)]
        width = hidden
    mods.append(nn.Linear(width, n_classes))
    return nn.Sequential(*mods)


class ProspectivityClassifier(nn.Module):
    """adapter + trunk + head + softmax: what is exported to ONNX (output N x 2 probabilities)."""

    def __init__(self, n_elements, pretrained=True, head=None):
        super().__init__()
        self.adapter = ElementAdapter(n_elements)
        self.trunk = InceptionTrunk(pretrained=pretrained)
        self.head = head if head is not None else make_head()

    def features(self, x):
        return self.trunk(self.adapter(x))

    def forward(self, x):
        return torch.softmax(self.head(self.features(x)), dim=1)
