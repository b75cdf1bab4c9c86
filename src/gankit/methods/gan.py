"""The GAN of Goodfellow et al. (2014), Algorithm 1, with the lecture's stabilisers.

Each training iteration takes ``d_steps`` (the paper's k; WGAN's n_critic) discriminator
steps, each on a fresh minibatch of m real samples and m generated ones, then one generator
step on m new noise samples. The objective (``minimax``, ``nonsaturating``, ``wasserstein``,
``least_squares``, ``hinge``, ``fgan_*``: any registered one) is a pair of pure loss
functions, see :mod:`gankit.objectives`. Keeping the discriminator smooth is a choice of
``clip`` (WGAN weight clipping), ``penalty`` (WGAN-GP gradient penalty or R1) and
``spectral_norm`` (SNGAN). Against mode collapse, ``pack`` (PacGAN) lets the discriminator
judge ``pack`` samples at once, concatenated along channels (or features), and
``generator_loss: feature_matching`` (Salimans et al. 2016) trains the generator to match
the mean of the discriminator's penultimate features on real data; minibatch
discrimination is a discriminator option (``discriminator.minibatch_kernels``).

``unroll`` = k > 0 gives the unrolled GAN (Metz et al. 2017): the generator's loss is the
surrogate f_K(theta_G, theta_D) = f(theta_G, theta_D^K) with theta_D^0 = theta_D, the
discriminator as it stands before its update of this iteration, and theta_D^{j+1} one
optimiser update of theta_D^j; the generator is differentiated through those k updates, so
it is penalised for moves the discriminator can answer quickly (such as collapsing onto one
mode). The discriminator's own update is theta_D^1: its real step and the first unrolled
step are the same update, from the same parameters on the same real batch and the same
generated samples (which the generator's loss is evaluated on too), and all k unrolled
updates use that one minibatch, as in the paper's reference code. So unroll = k looks k
discriminator updates ahead, the first of which the discriminator then takes. With
``d_steps`` = n > 1, the first n - 1 discriminator steps of an iteration are ordinary ones
(each on a fresh real batch and fresh samples) and the unroll starts before the n-th, which
is its first step. See :meth:`GAN.unrolled_discriminator`.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Literal, Optional, Tuple, Union

import torch
from torch import nn
from torch.func import functional_call

from ..config import Config
from ..errors import ConfigError
from ..nets.autoencoder import is_autoencoder
from ..objectives.penalties import (clip_weights_, gradient_penalty, r1_penalty, require_independent_samples,
                                    spectral_norm_all)
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Batch, DataInfo, Method, check_positive

__all__ = ["GAN", "PENALTIES", "surrogate_step", "regularise_discriminator"]

Tensor = torch.Tensor

#: ``method.objective``: an objective's name, or a mapping with its parameters
#: (``{name: fgan_kl, generator: alternative}``)
ObjectiveSpec = OBJECTIVES.spec_type()

#: discriminator regularisers by name: (D, real, fake, weight) -> scalar added to the D loss
PENALTIES = {
    "gradient": lambda D, real, fake, w: gradient_penalty(D, real, fake, weight=w),   # WGAN-GP
    "r1": lambda D, real, fake, w: r1_penalty(D, real, weight=w),                      # R1
}


def surrogate_step(optimizer: torch.optim.Optimizer, group: dict, theta: Tensor, grad: Optional[Tensor],
                   state: Dict[str, Tensor], t: int) -> Tuple[Tensor, Dict[str, Tensor]]:
    """One differentiable update of ``theta`` by the rule of ``optimizer``: Adam or RMSprop
    with the learning rate, betas/alpha, eps and weight decay of its param ``group``, as
    ``torch.optim`` computes them.

    ``state`` holds the running averages so far (``m``, ``v``; starting from the optimiser's
    own), ``t`` counts the updates including this one. Nothing is changed in place: the
    new parameter and state are new tensors, differentiable with respect to ``grad`` (whose
    graph the caller keeps with ``create_graph=True``) and ``theta``.
    """
    if grad is None:                              # the loss does not depend on this parameter
        grad = torch.zeros_like(theta)
    if group.get("weight_decay", 0.0):
        grad = grad + group["weight_decay"] * theta
    lr, eps = group["lr"], group["eps"]
    v_old = state.get("v", torch.zeros_like(theta))
    if isinstance(optimizer, torch.optim.RMSprop):
        if group.get("momentum", 0.0) or group.get("centered", False):
            raise ConfigError("method.unroll supports RMSprop without momentum and centering only")
        alpha = group["alpha"]
        v = alpha * v_old + (1 - alpha) * grad * grad
        # clamp: sqrt has an infinite slope at 0, where the state is still empty
        return theta - lr * grad / (v.clamp_min(1e-30).sqrt() + eps), {"v": v}
    if not isinstance(optimizer, torch.optim.Adam) or group.get("amsgrad", False):
        raise ConfigError(f"method.unroll supports the adam and rmsprop optimisers, got {type(optimizer).__name__}")
    beta1, beta2 = group["betas"]
    m = beta1 * state.get("m", torch.zeros_like(theta)) + (1 - beta1) * grad
    v = beta2 * v_old + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1 ** t)
    denom = (v.clamp_min(1e-30) / (1 - beta2 ** t)).sqrt() + eps
    return theta - lr * m_hat / denom, {"m": m, "v": v}


def _optimizer_state(optimizer: torch.optim.Optimizer, param: Tensor) -> Tuple[Dict[str, Tensor], int]:
    """The running averages of ``param`` in ``optimizer`` (detached copies) and its step count."""
    state = optimizer.state.get(param, {})
    out = {}
    for ours, theirs in (("m", "exp_avg"), ("v", "exp_avg_sq"), ("v", "square_avg")):
        if theirs in state:
            out[ours] = state[theirs].detach().clone()
    step = state.get("step", 0)
    return out, int(step.item() if torch.is_tensor(step) else step)


def regularise_discriminator(d: nn.Module, penalty: str, spectral_norm: bool) -> None:
    """Refuse a gradient penalty on a discriminator whose samples are coupled across the batch
    (both penalties read each sample's gradient off the gradient of the summed outputs), and
    apply spectral normalisation when asked, in place."""
    if penalty != "none":
        what = {"gradient": "the WGAN-GP gradient penalty", "r1": "the R1 penalty"}[penalty]
        require_independent_samples(d, f"method.penalty={penalty} ({what})")
    if spectral_norm:
        spectral_norm_all(d)


class _Features(nn.Module):
    """``forward`` = the wrapped discriminator's ``features``, so functional_call can reach it."""

    def __init__(self, d: nn.Module):
        super().__init__()
        self.d = d

    def forward(self, x: Tensor) -> Tensor:
        return self.d.features(x)


class GAN(Method):
    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, d_steps: int,
                 objective: Union[str, Dict[str, Any]],
                 penalty: str = "none", penalty_weight: float = 10.0, clip: float = 0.0,
                 spectral_norm: bool = False, pack: int = 1, generator_loss: str = "objective",
                 unroll: int = 0):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        if clip < 0 or penalty_weight < 0:
            raise ConfigError(f"method.clip and method.penalty_weight must not be negative, got {clip}, "
                              f"{penalty_weight}")
        if unroll < 0:
            raise ConfigError(f"method.unroll must not be negative, got {unroll}")
        self.unroll = unroll
        self.d_steps = self.real_batches_per_step = d_steps
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")
        check_positive("method.pack", pack)
        if cfg.train.batch_size % pack:
            raise ConfigError(f"train.batch_size ({cfg.train.batch_size}) must be a multiple of method.pack ({pack})")
        self.penalty, self.penalty_weight, self.clip = penalty, penalty_weight, clip
        self.pack, self.generator_loss = pack, generator_loss
        g = self.build_noise_generator()
        packed_shape = (info.shape[0] * pack,) + tuple(info.shape[1:])
        d_name = self.network_name("discriminator")
        d = self.build_network("discriminator", info.with_shape(packed_shape))
        if is_autoencoder(d):
            raise ConfigError(f"discriminator '{d_name}' is an auto-encoder, which scores samples by their "
                              "reconstruction error; use it with method.name=ebgan, or pick discriminator.name=auto "
                              "for method 'gan'")
        regularise_discriminator(d, penalty, spectral_norm)
        self.opt_g, self.opt_d = self.add_pair(g, d)

    def critic(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        """D's score of each sample; with ``pack`` the score of a pack of copies of it."""
        if self.pack == 1:
            return super().critic(x)
        with torch.no_grad():
            out = self.judged(self.discriminator, self.packed(x.repeat_interleave(self.pack, 0)))
        return out.reshape(len(x), -1).float().mean(1)

    def packed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, ...) -> (N / pack, pack * C, ...): PacGAN's joint samples."""
        if self.pack == 1:
            return x
        return x.reshape(len(x) // self.pack, self.pack * x.shape[1], *x.shape[2:])

    def _generator_loss(self, D, real: torch.Tensor, generated: torch.Tensor,
                        features: Optional[Callable[[Tensor], Tensor]] = None) -> torch.Tensor:
        if self.generator_loss == "feature_matching":  # Salimans et al. 2016, section 3.1
            features = features or D.features
            return (features(real).float().mean(0) - features(generated).float().mean(0)).pow(2).sum()
        return self.objective.g_loss(D(generated))

    def _d_loss(self, D, real: Tensor, fake: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """The discriminator's loss (with its penalty) on packed batches, and D(real), D(fake)."""
        with self.rt.autocast():
            d_real, d_fake = D(real), D(fake)
        d_loss = self.objective.d_loss(d_real, d_fake)
        if self.penalty != "none":
            d_loss = d_loss + PENALTIES[self.penalty](D, real, fake, self.penalty_weight)
        return d_loss, d_real, d_fake

    def unrolled_discriminator(self, real: Tensor, fake: Tensor, steps: Optional[int] = None
                               ) -> Tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
        """The discriminator after ``steps`` (default ``unroll``) differentiable updates,
        as the functions (D_k, features of D_k): theta_D^0 is the current discriminator's
        parameters and theta_D^{j+1} is theta_D^j after one update, so D_1 is the discriminator
        that one real step on the same data gives.

        The updates start from copies of the current discriminator's parameters and buffers
        (the discriminator and its optimiser are left untouched) and follow the rule of its
        optimiser, Adam or RMSprop with its current learning rate, continuing its running
        averages (:func:`surrogate_step`), as Metz et al. unroll the actual optimiser. Every
        update minimises the discriminator's loss (objective, penalty, clipping) on the same
        minibatch: the real batch ``real`` (in model space; packed here) and ``fake``, the
        generator's packed batch. The gradients are kept with ``create_graph=True``, so D_k
        depends on the generator both through ``fake`` and through the unrolled parameters,
        and a loss on D_k backpropagates through all k updates. torch.func.functional_call
        evaluates the discriminator with the unrolled parameters; its buffers (batch-norm
        statistics, spectral norm's power-iteration vectors) are copied too, so the unroll
        leaves them as they were. Autocast stays as configured: double backward works under
        bf16 autocast.
        """
        D, opt = self.discriminator, self.opt_d
        steps = self.unroll if steps is None else steps
        real = self.packed(real)
        named = list(D.named_parameters())
        params = {n: p.detach().clone().requires_grad_(True) for n, p in named}
        buffers = {n: b.detach().clone() for n, b in D.named_buffers()}
        states = {n: _optimizer_state(opt, p) for n, p in named}
        groups = {id(p): g for g in opt.param_groups for p in g["params"]}

        def at(p: Dict[str, Tensor]) -> Callable[[Tensor], Tensor]:
            return lambda x: functional_call(D, (p, buffers), (x,))

        for _ in range(steps):
            d_loss, _, _ = self._d_loss(at(params), real, fake)
            grads = torch.autograd.grad(d_loss, list(params.values()), create_graph=True, allow_unused=True)
            new = {}
            for (n, p), g in zip(named, grads):
                state, t = states[n]
                new[n], state = surrogate_step(opt, groups[id(p)], params[n], g, state, t + 1)
                states[n] = (state, t + 1)
                if self.clip:
                    new[n] = new[n].clamp(-self.clip, self.clip)
            params = new
        features = _Features(D)
        wrapped = {"d." + n: p for n, p in params.items()}
        wrapped_buffers = {"d." + n: b for n, b in buffers.items()}
        return at(params), lambda x: functional_call(features, (wrapped, wrapped_buffers), (x,))

    def train_step(self, batches: List[Batch], step: int) -> Dict[str, torch.Tensor]:
        batches = [b["x"] for b in batches]      # the samples; nothing else of the data is used
        G, D, rt = self.generator, self.discriminator, self.rt
        m = len(batches[0])

        def d_step(real: Tensor, fake: Tensor) -> Tuple[Tensor, Tensor, Tensor]:   # packed batches
            D.requires_grad_(True)
            out = self._d_loss(D, real, fake)
            rt.step(out[0], self.opt_d, "discriminator")
            if self.clip:
                clip_weights_(D, self.clip)
            D.requires_grad_(False)
            return out

        # k discriminator steps; with unrolling, the last of them is the first unrolled step (below)
        for real in batches[:-1] if self.unroll else batches:
            fake = self.generated(m)
            real = self.packed(real)
            d_loss, d_real, d_fake = d_step(real, self.packed(fake))
        if not self.unroll:                        # one generator step; D is held fixed
            with rt.autocast():
                g_loss = self._generator_loss(D, real, self.packed(G(self.noise(m))))
            rt.step(g_loss, self.opt_g, "generator")
        else:
            # the generator's loss at theta_D^k, unrolled from D before its last step; the
            # generated samples are the ones that step sees too
            real = batches[-1]
            with rt.autocast():
                generated = self.packed(G(self.noise(m)))
            cuda = [rt.device] if rt.device.type == "cuda" else []
            rng = (torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in cuda])
            D_k, features_k = self.unrolled_discriminator(real, generated)
            real = self.packed(real)
            with rt.autocast():
                g_loss = self._generator_loss(D_k, real, generated, features_k)
            rt.step(g_loss, self.opt_g, "generator")
            # D's own step is theta_D^1: the same loss at the same parameters, on the same batch
            # and samples, and with the random draws of the first unrolled step (the gradient
            # penalty's interpolation); the random state after the unroll comes back after it
            with torch.random.fork_rng(devices=cuda):
                torch.set_rng_state(rng[0])
                for d, state in zip(cuda, rng[1]):
                    torch.cuda.set_rng_state(state, d)
                d_loss, d_real, d_fake = d_step(real, generated.detach())
        self.update_ema()
        self.step_schedulers()
        with torch.no_grad():
            # D(x) as a probability for logit outputs; the raw critic score otherwise
            view = torch.sigmoid if self.objective.output == "logit" else (lambda t: t)
            return {
                "d_loss": d_loss.detach(),
                "g_loss": g_loss.detach(),
                "d_real": view(d_real.detach().float()).mean(),
                "d_fake": view(d_fake.detach().float()).mean(),
            }


@METHODS.register("gan")
def gan(runtime, info, cfg, /, d_steps: int = 1, objective: ObjectiveSpec = "nonsaturating",
        penalty: Literal["none", "gradient", "r1"] = "none", penalty_weight: float = 10.0, clip: float = 0.0,
        spectral_norm: bool = False, pack: int = 1,
        generator_loss: Literal["objective", "feature_matching"] = "objective", unroll: int = 0) -> GAN:
    """Goodfellow et al. 2014: k = d_steps discriminator steps per generator step; with any
    objective, weight clipping (WGAN), a gradient penalty (WGAN-GP, R1), spectral norm (SNGAN),
    packing (PacGAN), feature matching or unrolling (unrolled GAN).

    ``objective`` is a registered objective's name, or a mapping with its parameters, e.g.
    ``{name: fgan_gan, generator: alternative}`` (``--set method.objective.generator=alternative``)."""
    return GAN(runtime, info, cfg, d_steps, objective, penalty, penalty_weight, clip, spectral_norm, pack,
               generator_loss, unroll)
