"""Ways to keep a WGAN critic (roughly) 1-Lipschitz, and related regularisers.

* :func:`clip_weights_`: the original WGAN's weight clipping, every parameter into [-c, c];
* :func:`gradient_penalty`: improved WGAN (WGAN-GP), (||grad_x D(x)|| - 1)^2 on random points
  of the segments between real and generated samples (the "P penalty" distribution);
* :func:`spectral_norm_all`: spectral normalisation (SNGAN) of every linear and conv layer;
* :func:`r1_penalty`: the R1 regulariser, the squared gradient norm on real data;
* :func:`lipschitz_margin_penalty`: the margin term of Loss-sensitive GAN.

The gradient penalties are computed in float32 with autocast switched off, and with
``create_graph=True`` so that the discriminator's loss can be backpropagated through them.
They assume the discriminator treats the samples of a batch independently, as the
per-sample gradient is read off the gradient of the summed outputs: with batch norm in
training mode or minibatch discrimination, sample i's "gradient" also holds how every other
sample's output moves with x_i. :func:`require_independent_samples` refuses such networks.
"""
from __future__ import annotations

import contextlib
from typing import Callable, List, Optional, Tuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import ConfigError
from ..nets.blocks import MinibatchDiscrimination
from ..train.distributed import sharded_rand

__all__ = ["gradient_penalty", "r1_penalty", "clip_weights_", "spectral_norm_all", "lipschitz_margin_penalty",
           "batch_coupling", "require_independent_samples"]

Tensor = torch.Tensor


def _no_autocast(device: torch.device):
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except RuntimeError:  # pragma: no cover - a device type without autocast
        return contextlib.nullcontext()


def _input_gradient(net: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """d(sum of net(x)) / dx in float32, keeping the graph so the result can be differentiated."""
    x = x.detach().float().requires_grad_(True)
    with _no_autocast(x.device):
        out = net(x).float()
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, weight: float = 10.0,
                     center: float = 1.0, generator: Optional[torch.Generator] = None) -> Tensor:
    """WGAN-GP: ``weight * E[(||grad_x D(x_hat)||_2 - center)^2]``, x_hat = eps*real + (1-eps)*fake
    with eps ~ U[0, 1] drawn per sample (from ``generator`` when given)."""
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    real, fake = real.detach().float(), fake.detach().float()
    eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    if generator is None:  # the global RNG; with several processes, this one's slice of the global draw
        eps = sharded_rand(eps_shape, device=real.device)
    else:
        eps = torch.rand(eps_shape, generator=generator, device=generator.device).to(real.device)
    x_hat = eps * real + (1 - eps) * fake
    grad = _input_gradient(critic, x_hat)
    norm = torch.sqrt(grad.pow(2).sum(dim=1) + 1e-12)  # the tiny constant keeps d norm finite at 0
    return weight * (norm - center).pow(2).mean()


def r1_penalty(discriminator: Callable[[Tensor], Tensor], real: Tensor, weight: float = 10.0) -> Tensor:
    """R1 (Mescheder et al. 2018): ``0.5 * weight * E_{x~P}[||grad_x D(x)||^2]`` on real data."""
    grad = _input_gradient(discriminator, real)
    return 0.5 * weight * grad.pow(2).sum(dim=1).mean()


@torch.no_grad()
def clip_weights_(module: nn.Module, c: float) -> None:
    """WGAN weight clipping, in place: every parameter of ``module`` into [-c, c]."""
    if c <= 0:
        raise ValueError(f"the clipping constant c must be positive, got {c}")
    for p in module.parameters():
        p.clamp_(-c, c)


_SN_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)


def spectral_norm_all(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Spectral normalisation (SNGAN) of every Linear and Conv layer of ``module``, in place.

    Each weight W is replaced by W / sigma(W), its largest singular value estimated by power
    iteration (``n_power_iterations`` per forward pass in training mode). Layers that already
    carry a parametrisation of their weight are left alone. Returns ``module``.
    """
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import spectral_norm

    layers = [m for m in module.modules() if isinstance(m, _SN_LAYERS)]
    for layer in layers:
        if parametrize.is_parametrized(layer, "weight"):
            continue
        spectral_norm(layer, n_power_iterations=n_power_iterations)
    return module


def lipschitz_margin_penalty(l_real: Tensor, l_fake: Tensor, real: Tensor, fake: Tensor, p: float = 1.0) -> Tensor:
    """Loss-sensitive GAN's margin term: ``E[relu(Delta(x, G(z)) + L(x) - L(G(z)))]``.

    ``l_real``, ``l_fake`` are the loss function L on real x and paired generated G(z) (L is
    low on real data); Delta is the L_p distance between the pair, so a generated sample only
    needs its loss pushed above the real one's by a margin that shrinks as it gets closer to
    the real sample. The full Loss-sensitive GAN loss for L is E[L(x)] + lambda * this.
    """
    if real.shape[0] != fake.shape[0]:
        raise ValueError("real and fake must pair up: same batch size")
    delta = (real.detach().float() - fake.detach().float()).flatten(1).norm(p=p, dim=1)
    return torch.relu(delta + l_real.float() - l_fake.float()).mean()


def batch_coupling(net: nn.Module) -> List[Tuple[str, str]]:
    """The layers of ``net`` whose output for one sample depends on the other samples of its
    batch, as (qualified name, what): batch norm of any kind (``_BatchNorm``: 1d, 2d, 3d, lazy,
    synchronised), which normalises by the batch's statistics in training mode, and minibatch
    discrimination, which compares each sample with the rest of its batch."""
    found = []
    for name, module in net.named_modules():
        if isinstance(module, _BatchNorm):
            found.append((name or type(module).__name__, "batch norm"))
        elif isinstance(module, MinibatchDiscrimination):
            found.append((name or type(module).__name__, "minibatch discrimination"))
    return found


def require_independent_samples(net: nn.Module, what: str) -> None:
    """Raise :class:`ConfigError` when ``net`` (a discriminator, as built) couples the samples of
    a batch (:func:`batch_coupling`): ``what`` (e.g. ``"method.penalty=gradient"``) takes
    per-sample input gradients, which such a network does not have. The message names the
    settings that remove the coupling."""
    found = batch_coupling(net)
    if not found:
        return
    kinds = sorted({kind for _, kind in found})
    layers = ", ".join(f"{name} ({kind})" for name, kind in found)
    fixes = []
    if "batch norm" in kinds:
        fixes.append("discriminator.norm=layer (layer norm, as Gulrajani et al. use for WGAN-GP) or "
                     "discriminator.norm=none, or a discriminator without batch norm")
    if "minibatch discrimination" in kinds:
        fixes.append("discriminator.minibatch_kernels=0")
    raise ConfigError(
        f"{what} needs the discriminator's gradient at each sample on its own, but the discriminator has "
        f"{' and '.join(kinds)} ({layers}), which mixes the samples of a batch: each sample's gradient would "
        f"depend on the rest of its batch, and the penalty would constrain the wrong function. "
        f"Use {'; and '.join(fixes)}.")
