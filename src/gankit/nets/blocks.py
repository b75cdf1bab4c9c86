"""Building blocks shared by the networks."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["MinibatchDiscrimination", "DiscriminatorHead", "shape_of", "add_gaussian_noise"]


def shape_of(info) -> tuple:
    """The sample shape a network factory is built for: from the data's description (a
    :class:`~gankit.methods.base.DataInfo`, whose classes and fields a network may also use)
    or from a bare shape."""
    return tuple(info.shape) if hasattr(info, "shape") and not isinstance(info, (tuple, list)) else tuple(info)


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, section 3.2), as in the lecture's
    remedies for mode collapse: the discriminator also sees how close each sample is to the
    other samples of its batch, so a generator that collapses is easy to spot.

    Features f (N, A) are projected by a learned tensor T to M (N, B, C); for each of the B
    kernels, o_b(x_i) = sum_{j != i} exp(-||M_{i,b} - M_{j,b}||_1); the layer returns
    [f, o] of shape (N, A + B).
    """

    def __init__(self, in_features: int, n_kernels: int, kernel_dim: int = 5):
        super().__init__()
        if n_kernels < 1 or kernel_dim < 1:
            raise ConfigError(f"minibatch discrimination needs n_kernels >= 1 and kernel_dim >= 1, got "
                              f"{n_kernels}, {kernel_dim}")
        self.n_kernels, self.kernel_dim = n_kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, n_kernels * kernel_dim) * 0.1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        m = (f @ self.T).view(len(f), self.n_kernels, self.kernel_dim).transpose(0, 1)  # (B, N, C)
        l1 = torch.cdist(m, m, p=1.0)                        # (B, N, N) L1 distances per kernel
        o = torch.exp(-l1).sum(2).t() - 1.0                  # (N, B), minus the own term exp(0)
        return torch.cat([f, o.to(f.dtype)], dim=1)


class DiscriminatorHead(nn.Module):
    """Penultimate features -> [minibatch discrimination] -> one logit per sample."""

    def __init__(self, in_features: int, minibatch_kernels: int = 0):
        super().__init__()
        self.minibatch = (MinibatchDiscrimination(in_features, minibatch_kernels) if minibatch_kernels
                          else nn.Identity())
        self.out = nn.Linear(in_features + minibatch_kernels, 1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.out(self.minibatch(f)).squeeze(1)


def add_gaussian_noise(net: nn.Module, input_std: float, hidden_std: float) -> list:
    """Gaussian noise on what the weighted layers of ``net`` read, while it trains: the first
    convolution or linear layer (in the order of ``net.modules()``) reads its input plus
    N(0, input_std^2) noise, every later one its input plus N(0, hidden_std^2). This is the
    noise the semi-supervised GANs of Salimans et al. 2016 and Triple-GAN (Li et al. 2017) put
    into their discriminators, which keeps a discriminator with few real samples from learning
    them by heart. In eval mode nothing is added. Returns the hook handles."""
    for key, v in (("input noise", input_std), ("hidden noise", hidden_std)):
        if not v >= 0:
            raise ConfigError(f"{key} must be a standard deviation >= 0, got {v}")
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    if not layers:
        raise ConfigError(f"{type(net).__name__} has no convolution or linear layer to add noise to")

    def hook(std):
        def add(module, args):
            if not module.training or std == 0:
                return None
            x = args[0]
            return (x + std * torch.randn_like(x),) + tuple(args[1:])
        return add

    return [m.register_forward_pre_hook(hook(input_std if i == 0 else hidden_std)) for i, m in enumerate(layers)]
