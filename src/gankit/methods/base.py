"""The Method protocol: a GAN algorithm owns its networks, optimisers and update step.

The trainer only calls :meth:`Method.train_step` with real batches and logs the dict of
scalar tensors it returns; it knows nothing about losses. Everything a method holds that
must survive a restart is listed in :attr:`modules`, :attr:`optimizers` and
:attr:`schedulers`, so :meth:`state_dict` is written once, here.
"""
from __future__ import annotations

import abc
import copy
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ..config import Config, OptimConfig
from ..errors import CheckpointError, ConfigError
from ..registries import DISCRIMINATORS, GENERATORS, METHODS
from ..train.runtime import Runtime

__all__ = ["DataInfo", "Method", "resolve_networks", "make_optimizer", "build_scheduler"]


@dataclass(frozen=True)
class DataInfo:
    """What a method needs to know about its data: no samples, so sampling needs no data set."""
    kind: str                  #: "image" or "vector"
    shape: Tuple[int, ...]     #: one sample: (C, H, W) or (D,)
    n_classes: int = 0


def resolve_networks(cfg: Config, info: DataInfo) -> None:
    """Replace generator/discriminator ``auto`` by the network that fits the data, in place.

    A method factory may name the networks it needs in an ``auto_networks`` attribute
    (section -> network name, e.g. EBGAN's auto-encoder discriminator); otherwise ``auto``
    is DCGAN for images and the MLP for vectors.
    """
    preferred = getattr(METHODS.get(cfg.method["name"], "method.name"), "auto_networks", {})
    for section, registry in (("generator", GENERATORS), ("discriminator", DISCRIMINATORS)):
        spec = dict(getattr(cfg, section))
        name = spec.pop("name")
        if name == "auto":
            name = preferred.get(section) or ("dcgan" if info.kind == "image" else "mlp")
        setattr(cfg, section, {"name": name, **registry.resolve_params(name, spec, section)})


def make_optimizer(params, lr: float, optim: OptimConfig) -> torch.optim.Optimizer:
    """The configured optimiser. Adam runs fused (one kernel over all parameters) where PyTorch
    has a fused kernel for the parameters' device and dtype (CPU and CUDA floating point),
    and as ``foreach`` otherwise."""
    params = list(params)
    if optim.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=optim.weight_decay, foreach=True)
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, betas=(optim.beta1, optim.beta2), weight_decay=optim.weight_decay,
                            **({"fused": True} if fused else {"foreach": True}))


def build_scheduler(optimizer, cfg: Config):
    if cfg.optim.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    total = cfg.train.steps
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / total))


class Method(abc.ABC):
    """Base class. Subclasses set :attr:`generator`, :attr:`discriminator`, the optimisers,
    and implement :meth:`train_step`."""

    #: how many real batches one train_step consumes (k of Algorithm 1 for d_steps = k)
    real_batches_per_step: int = 1

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config):
        self.rt, self.info, self.cfg = runtime, info, cfg
        self.modules: Dict[str, nn.Module] = {}
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}
        self.schedulers: Dict[str, object] = {}
        self.ema: Optional[nn.Module] = None

    # ------------------------------------------------------------------ building
    def add_module(self, name: str, module: nn.Module) -> nn.Module:
        module = self.rt.module(module)
        self.modules[name] = module
        return module

    def add_optimizer(self, name: str, params, lr: float) -> torch.optim.Optimizer:
        opt = make_optimizer(params, lr, self.cfg.optim)
        self.optimizers[name] = opt
        self.schedulers[name] = build_scheduler(opt, self.cfg)
        return opt

    def enable_ema(self) -> None:
        """Keep an exponential moving average of the generator when ``train.ema_decay`` > 0."""
        if self.cfg.train.ema_decay > 0:
            self.ema = copy.deepcopy(self.modules["generator"]).requires_grad_(False)
            self.ema_updates = 0

    def ema_decay_now(self) -> float:
        """The decay of the next update: ``min(ema_decay, (1 + t) / (10 + t))`` after t updates,
        so that the average forgets the random initial weights within the first few hundred
        steps instead of keeping them for thousands (a short run's average is usable)."""
        t = self.ema_updates
        return min(self.cfg.train.ema_decay, (1.0 + t) / (10.0 + t))

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.ema is None:
            return
        g = self.modules["generator"]
        decay = self.ema_decay_now()
        self.ema_updates += 1
        torch._foreach_lerp_(list(self.ema.parameters()), list(g.parameters()), 1.0 - decay)
        for b_ema, b in zip(self.ema.buffers(), g.buffers()):
            b_ema.copy_(b)

    # ------------------------------------------------------------------ the protocol
    @property
    def generator(self) -> nn.Module:
        return self.modules["generator"]

    @property
    def discriminator(self) -> nn.Module:
        return self.modules["discriminator"]

    @abc.abstractmethod
    def train_step(self, batches: List[torch.Tensor], step: int) -> Dict[str, torch.Tensor]:
        """One training iteration on ``real_batches_per_step`` real batches (already on the
        device, in model space); returns scalar tensors to log (synced only at log time)."""

    def step_schedulers(self) -> None:
        for s in self.schedulers.values():
            s.step()

    def noise(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` noise vectors on the device. Without ``generator`` they come from the global RNG
        through :meth:`Runtime.randn`: with several processes, ``n`` is this process's share and
        the rows are its slice of the noise drawn for the global batch, so the processes
        together use exactly the noise one process with the global batch would. With a
        ``generator`` (sampling, evaluation) the draw is the same on every process, unsliced."""
        z_dim = self.generator.z_dim
        if generator is None:
            return self.rt.randn(n, z_dim)
        return torch.randn(n, z_dim, generator=generator).to(self.rt.device)

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None, batch_size: int = 500) -> torch.Tensor:
        """``n`` samples in model space (images in [-1, 1]) on the CPU, float32.

        Uses the moving-average generator when there is one, in eval mode; pass a seeded
        ``generator`` to leave the global random state untouched.
        """
        net = self.ema if self.ema is not None else self.generator
        was_training = net.training
        net.eval()
        out = []
        try:
            for start in range(0, n, batch_size):
                z = self.noise(min(batch_size, n - start), generator)
                with self.rt.autocast():
                    out.append(net(z).float().cpu())
        finally:
            net.train(was_training)
        return torch.cat(out) if out else torch.empty(0, *self.info.shape)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "ema_updates": self.ema_updates if self.ema is not None else 0,
            "runtime": self.rt.state_dict(),
        }

    def load_state_dict(self, state: dict, networks_only: bool = False) -> None:
        try:
            for k, m in self.modules.items():
                m.load_state_dict(state["modules"][k])
            if self.ema is not None and state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
                self.ema_updates = int(state.get("ema_updates", 1 << 30))  # older checkpoints: warm-up done
            elif self.ema is not None:
                self.ema.load_state_dict(self.generator.state_dict())
            if networks_only:
                return
            for k, o in self.optimizers.items():
                o.load_state_dict(state["optimizers"][k])
            for k, s in self.schedulers.items():
                s.load_state_dict(state["schedulers"][k])
            self.rt.load_state_dict(state.get("runtime"))
        except (KeyError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"the checkpoint does not fit the networks built from this config ({first}); "
                "the config was changed after the checkpoint was written") from None


def check_positive(key: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{key} must be at least 1, got {value}")
