"""WGAN-GP (Gulrajani et al. 2017) that makes synthetic positive windows to balance the few deposits.

It learns the distribution of the training folds' positive windows in the stack's own units (standardised
elements, window_pixels square), so synthetic windows pass through exactly the preprocessing (resize,
adapter, trunk) real ones do. Small fully connected networks: the windows are tiny and this must train
in seconds on a laptop CPU.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


@dataclass
class GanSettings:
    latent: int = 32
    hidden: int = 256
    steps: int = 600  # generator updates
    critic_steps: int = 5
    penalty: float = 10.0
    lr: float = 1e-4
    batch: int = 64
    seed: int = 0


@dataclass
class GanResult:
    generator: nn.Module
    shape: tuple
    critic_loss: list = field(default_factory=list)  # per generator step (negative Wasserstein estimate + GP)
    generator_loss: list = field(default_factory=list)
    wasserstein: list = field(default_factory=list)
    seconds: float = 0.0

    def sample(self, n, seed=0):
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            z = torch.randn(n, self.generator[0].in_features, generator=g)
            return self.generator(z).reshape(n, *self.shape).numpy().astype(np.float32)


def _mlp(sizes, out_act=None):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
    layers = layers[:-1]
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


def train_wgan_gp(windows, settings=None, progress=None):
    """windows: (n, E, w, w) positives. Returns a GanResult whose sample() gives new windows."""
    import time

    s = settings or GanSettings()
    torch.manual_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    n = len(windows)
    if n < 2:
        raise ValueError("A GAN needs at least two positive windows to learn from.")
    shape = windows.shape[1:]
    dim = int(np.prod(shape))
    real_all = torch.as_tensor(windows.reshape(n, dim), dtype=torch.float32)
    gen = _mlp([s.latent, s.hidden, 2 * s.hidden, dim])
    critic = _mlp([dim, 2 * s.hidden, s.hidden, 1])
    opt_g = torch.optim.Adam(gen.parameters(), lr=s.lr, betas=(0.0, 0.9))
    opt_c = torch.optim.Adam(critic.parameters(), lr=s.lr, betas=(0.0, 0.9))
    result = GanResult(gen, tuple(shape))
    t0 = time.perf_counter()
    for step in range(s.steps):
        for _ in range(s.critic_steps):
            real = real_all[rng.integers(0, n, s.batch)]
            fake = gen(torch.randn(s.batch, s.latent)).detach()
            eps = torch.rand(s.batch, 1)
            mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
            grad = torch.autograd.grad(critic(mix).sum(), mix, create_graph=True)[0]
            gp = ((grad.norm(2, dim=1) - 1) ** 2).mean()
            w_dist = critic(real).mean() - critic(fake).mean()
            loss_c = -w_dist + s.penalty * gp
            opt_c.zero_grad()
            loss_c.backward()
            opt_c.step()
        loss_g = -critic(gen(torch.randn(s.batch, s.latent))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        result.critic_loss.append(float(loss_c))
        result.generator_loss.append(float(loss_g))
        result.wasserstein.append(float(w_dist))
        if progress is not None and step % 50 == 0:
            progress(step / s.steps)
    gen.eval()
    result.seconds = time.perf_counter() - t0
    return result
