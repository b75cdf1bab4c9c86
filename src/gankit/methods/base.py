"""The Method protocol: a GAN algorithm owns its networks, optimisers and update step.

The trainer only calls :meth:`Method.train_step` with real batches (each a dict of the data
set's fields: ``batch["x"]``, ``batch["y"]`` ...) and logs the dict of scalar tensors it
returns; it knows nothing about losses. Everything a method holds that must survive a
restart is listed in :attr:`modules`, :attr:`optimizers`, :attr:`schedulers`, :attr:`emas`
and :meth:`Method.extra_state` (image pools, baselines, running statistics), so
:meth:`state_dict` is written once, here.

A method declares what it is built from in its :class:`Contract` (the ``contract``
attribute of its class, read through its registered factory): the data fields it trains
on (``needs``), the fields that sampling can be given (``conditions``), the network roles
it builds, the roles whose moving average it keeps, and the metrics that judge it.
Sampling goes through :meth:`Method.sample`, which returns named outputs (``x``, plus what
the method shows: the conditions it used, inputs, reconstructions ...).
"""
from __future__ import annotations

import abc
import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from ..config import Config, OptimConfig
from ..data.base import Batch, Field
from ..errors import CheckpointError, ConfigError
from ..registries import METHODS, network_registry
from ..train.runtime import Runtime

__all__ = ["DataInfo", "Contract", "contract_of", "describe_inputs", "Method", "Adversarial", "resolve_networks", "make_optimizer",
           "build_scheduler", "Samples", "discriminator_logs"]

#: named outputs of sampling: ``x`` (the samples, model space), plus whatever the method shows
Samples = Dict[str, torch.Tensor]

#: samples per sampling batch (the unit that a sharded evaluation cuts the draws into)
SAMPLE_BATCH = 500


@dataclass(frozen=True)
class DataInfo:
    """What a method needs to know about its data: no samples, so sampling needs no data set.

    ``kind`` and ``shape`` describe ``x``; ``fields`` describes every field (kind, shape,
    classes and how often each occurs), ``n_classes`` is the number of classes of ``y``."""
    kind: str                  #: "image" or "vector" (or "tokens")
    shape: Tuple[int, ...]     #: one sample: (C, H, W) or (D,)
    n_classes: int = 0
    fields: Mapping[str, Field] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "x" not in self.fields:
            object.__setattr__(self, "fields", {"x": Field(self.kind, tuple(self.shape)), **self.fields})

    def field(self, name: str) -> Field:
        return self.fields[name]

    def with_shape(self, shape: Tuple[int, ...]) -> "DataInfo":
        """The same data described with another sample shape (a network that sees packed or
        conditioned inputs)."""
        return DataInfo(self.kind, tuple(shape), self.n_classes,
                        {**self.fields, "x": Field(self.kind, tuple(shape))})

    def to_dict(self) -> dict:
        return {"kind": self.kind, "shape": list(self.shape), "n_classes": self.n_classes,
                "fields": {k: f.to_dict() for k, f in self.fields.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "DataInfo":
        fields = {k: Field.from_dict(v) for k, v in (d.get("fields") or {}).items()}
        return cls(kind=d["kind"], shape=tuple(d["shape"]), n_classes=int(d.get("n_classes", 0)), fields=fields)

    @classmethod
    def of(cls, data, sources: Optional[Mapping[str, Any]] = None) -> "DataInfo":
        """The description of a loaded :class:`~gankit.data.base.Dataset` (and of the further
        sources, whose fields are named ``SOURCE.FIELD``)."""
        fields = data.fields()
        for source, other in (sources or {}).items():
            fields.update({f"{source}.{k}": f for k, f in other.fields().items()})
        return cls(kind=data.kind, shape=tuple(data.shape),
                   n_classes=fields["y"].n_classes if "y" in fields else 0, fields=fields)


@dataclass(frozen=True)
class Contract:
    """What a method is built from and what it offers.

    * ``needs``: data fields it trains on (a data set without one is refused before training);
    * ``conditions``: fields that :meth:`Method.sample` can be given (``--label`` gives ``y``);
    * ``roles``: its networks, role -> the network registry that builds it (the config has a
      section of the role's name); ``auto`` picks per role what ``name: auto`` means: a
      network name, or (name, {parameter: value}) for a network with settings of its own
      that the section's values override;
    * ``ema``: roles whose moving average is kept when ``train.ema_decay`` > 0 (sampling uses it);
    * ``metrics``: metrics that judge it, added to the distribution metrics of an evaluation;
    * ``sources``: further data sets it trains on beside ``data`` (two unpaired domains, a
      labelled and an unlabelled set), each given by a config section ``data_SOURCE``; each
      source keeps its own order and position, and its fields reach the method as
      ``SOURCE.FIELD`` (``batch["b.x"]``; ``info.fields["b.x"]``);
    * ``inputs``: conditions that are samples of a data field rather than fields of their own
      (condition -> field; cyclegan: ``{"input": "x"}``, a picture of domain A to translate):
      the run's ``DataInfo`` describes the condition as that field (so sampling, ``gankit
      sample --input`` and pictures know its shape), and evaluation gives it the held-out
      split's samples of that field (with their labels, as the classes the outputs were made
      for);
    * ``reference``: the source whose data the generated ``x`` is judged against (the real
      side of distribution metrics such as FID; cyclegan: ``"b"``, translations are
      compared with domain B's held-out images); None: the main data.
    * ``optim``: the method's own defaults for the ``optim`` section (StarGAN's paper trains
      at 1e-4), used for the keys a config does not set.
    * ``data_kinds``: the kinds of ``x`` the method works on (stackgan: ``("image",)``); empty:
      any. Other data is refused before anything is written.
    """
    needs: Tuple[str, ...] = ("x",)
    conditions: Tuple[str, ...] = ()
    roles: Mapping[str, str] = field(default_factory=lambda: {"generator": "generator",
                                                              "discriminator": "discriminator"})
    auto: Mapping[str, str] = field(default_factory=dict)
    ema: Tuple[str, ...] = ("generator",)
    metrics: Tuple[str, ...] = ()
    sources: Tuple[str, ...] = ()
    inputs: Mapping[str, str] = field(default_factory=dict)
    reference: Optional[str] = None
    optim: Mapping[str, Any] = field(default_factory=dict)
    data_kinds: Tuple[str, ...] = ()


def describe_inputs(info: DataInfo, method_name: str) -> DataInfo:
    """``info`` with a field for each of the method's ``inputs`` conditions, described as the
    data field it takes its samples from (see :class:`Contract`)."""
    inputs = contract_of(method_name).inputs
    if not inputs:
        return info
    extra = {cond: info.fields[name] for cond, name in inputs.items() if name in info.fields}
    return DataInfo(info.kind, info.shape, info.n_classes, {**info.fields, **extra})


def contract_of(method_name: str) -> Contract:
    """The contract of a registered method (its factory's ``contract`` attribute)."""
    factory = METHODS.get(method_name, "method.name")
    contract = getattr(factory, "contract", None)
    if contract is None:
        contract = Contract(auto=getattr(factory, "auto_networks", {}))
    return contract


def check_data(method_name: str, info: DataInfo) -> None:
    """Refuse data that lacks a field the method trains on, with what to do."""
    contract = contract_of(method_name)
    if info.kind == "tokens" and "tokens" not in contract.data_kinds:
        raise ConfigError(f"method {method_name} makes pictures or vectors; this data set holds token sequences: "
                          "train them with a sequence method (--method mle, gumbel)")
    if contract.data_kinds and info.kind not in contract.data_kinds:
        raise ConfigError(f"method {method_name} works on {' or '.join(contract.data_kinds)} data; this data set "
                          f"holds {info.kind} samples (use "
                          + ("poems, quotes, text or oracle)" if "tokens" in contract.data_kinds else
                             "fashion_mnist, mnist, a folder of pictures ...)"))
    for name in contract.needs:
        if name not in info.fields:
            what = "class labels (field y)" if name == "y" else f"a field '{name}'"
            raise ConfigError(f"method {method_name} trains on {what}, which this data set does not have; use a "
                              "data set with labels (fashion_mnist, mnist, ring8 ..., a folder with one subfolder "
                              "per class, an .npz with a 'y' array)" if name == "y" else
                              f"method {method_name} trains on {what}, which this data set does not have"
                              + ("; pair an image data set with data.pairs (edges, grey, mask, lowres2, lowres4), "
                                 "e.g. --set data.pairs=edges, or give an .npz with an 'input' array "
                                 "(data.fields: [input])" if name == "input" else
                                 "; make masked pictures of an image data set with data.pairs=mask (or mask_centre, "
                                 "mask_free), e.g. --set data.pairs=mask" if name == "mask" else
                                 "; sentences come with --data fashion_mnist_text" if name == "text" else
                                 "; documents with short human sentences come with --data documents"
                                 if name == "sentence" else
                                 "; sentences of two styles come with --data sentiment"
                                 if name == "domain" and info.kind == "tokens" else ""))


def resolve_networks(cfg: Config, info: DataInfo) -> None:
    """Replace each network role's ``auto`` by the network that fits the data, in place.

    A method's contract may name the network for a role in ``auto`` (role -> network name,
    e.g. EBGAN's auto-encoder discriminator, or a name and settings: StarGAN's zero-padded
    ResNet); otherwise ``auto`` is DCGAN for images and the MLP for vectors.
    """
    contract = contract_of(cfg.method["name"])
    for role, kind in contract.roles.items():
        spec = dict(cfg.network(role))
        name = spec.pop("name")
        if name == "auto":
            name = contract.auto.get(role) or ("dcgan" if info.kind == "image" else "mlp")
            if not isinstance(name, str):
                name, settings = name
                spec = {**settings, **spec}
        cfg.set_network(role, {"name": name, **network_registry(kind).resolve_params(name, spec, role)})


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
    start = int(cfg.optim.decay_start * total)   # full rate for the first steps, then down to 0 at the last

    def factor(step: int) -> float:
        return 1.0 if step <= start else max(0.0, 1.0 - (step - start) / (total - start))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Method(abc.ABC):
    """Base class. Subclasses build their networks (:meth:`add_module`), optimisers
    (:meth:`add_optimizer`) and implement :meth:`train_step`; a method whose generator takes
    more than noise overrides :meth:`generate` (and :meth:`draw_conditions` for conditions
    that are not class labels)."""

    #: how many real batches one train_step consumes (k of Algorithm 1 for d_steps = k)
    real_batches_per_step: int = 1
    #: what the method is built from and offers (see :class:`Contract`)
    contract: Contract = Contract()

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config):
        self.rt, self.info, self.cfg = runtime, info, cfg
        self.modules: Dict[str, nn.Module] = {}
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}
        self.schedulers: Dict[str, object] = {}
        self.emas: Dict[str, nn.Module] = {}
        self.ema_updates = 0

    # ------------------------------------------------------------------ building
    def add_module(self, name: str, module: nn.Module) -> nn.Module:
        module = self.rt.module(module)
        self.modules[name] = module
        return module

    def lr_for(self, role: str) -> float:
        """The learning rate of ``role``: ``optim.lr.ROLE`` when set, else ``optim.lr_g`` for
        a role built by the generator registry and ``optim.lr_d`` for every other role."""
        lrs = getattr(self.cfg.optim, "lr", None) or {}
        if role in lrs:
            return float(lrs[role])
        kind = self.contract.roles.get(role, role)
        return self.cfg.optim.lr_g if kind == "generator" else self.cfg.optim.lr_d

    def build_network(self, role: str, info: Optional[DataInfo] = None, **params) -> nn.Module:
        """The network of ``role`` from its config section (``params`` override or add
        parameters, e.g. a wider input), built for ``info`` (default: the data's)."""
        spec = dict(self.cfg.network(role))
        name = spec.pop("name")
        kind = self.contract.roles[role]
        return network_registry(kind).build(name, {**spec, **params}, self.info if info is None else info,
                                            section=role)

    def build_noise_generator(self, role: str = "generator", info: Optional[DataInfo] = None, **params) -> nn.Module:
        """:meth:`build_network` for a role that must map noise to samples (it has a ``z_dim``);
        an image-to-image network there is refused with what to pick instead."""
        net = self.build_network(role, info, **params)
        if not getattr(net, "z_dim", 0):
            name = self.network_name(role)
            raise ConfigError(f"{role} '{name}' maps images to images, but method {self.cfg.method['name']} draws "
                              f"its samples from noise: set {role}.name=auto (or dcgan, mlp); {name} is for "
                              "pix2pix and cyclegan")
        return net

    def network_name(self, role: str) -> str:
        return self.cfg.network(role)["name"]

    def add_optimizer(self, name: str, params, lr: Optional[float] = None) -> torch.optim.Optimizer:
        """An optimiser (and its schedule) for the parameters of role ``name``, at the role's
        learning rate (:meth:`lr_for`) unless ``lr`` is given."""
        opt = make_optimizer(params, self.lr_for(name) if lr is None else lr, self.cfg.optim)
        self.optimizers[name] = opt
        self.schedulers[name] = build_scheduler(opt, self.cfg)
        return opt

    def add_pair(self, generator: nn.Module, discriminator: nn.Module) -> Tuple[torch.optim.Optimizer, ...]:
        """The common case: a generator and a discriminator, each with its optimiser, and the
        moving averages of the contract; returns the two optimisers."""
        self.add_module("generator", generator)
        self.add_module("discriminator", discriminator)
        opts = (self.add_optimizer("generator", generator.parameters()),
                self.add_optimizer("discriminator", discriminator.parameters()))
        self.enable_ema()
        return opts

    def enable_ema(self, roles: Optional[Tuple[str, ...]] = None) -> None:
        """Keep an exponential moving average of each of ``roles`` (default: the contract's
        ``ema`` roles) when ``train.ema_decay`` > 0."""
        if self.cfg.train.ema_decay > 0:
            for role in (self.contract.ema if roles is None else roles):
                self.emas[role] = copy.deepcopy(self.modules[role]).requires_grad_(False)
            self.ema_updates = 0

    @property
    def ema(self) -> Optional[nn.Module]:
        """The moving average of the generator, if kept."""
        return self.emas.get("generator")

    def ema_decay_now(self) -> float:
        """The decay of the next update: ``min(ema_decay, (1 + t) / (10 + t))`` after t updates,
        so that the average forgets the random initial weights within the first few hundred
        steps instead of keeping them for thousands (a short run's average is usable)."""
        t = self.ema_updates
        return min(self.cfg.train.ema_decay, (1.0 + t) / (10.0 + t))

    @torch.no_grad()
    def update_ema(self) -> None:
        if not self.emas:
            return
        decay = self.ema_decay_now()
        self.ema_updates += 1
        for role, avg in self.emas.items():
            net = self.modules[role]
            torch._foreach_lerp_(list(avg.parameters()), list(net.parameters()), 1.0 - decay)
            for b_ema, b in zip(avg.buffers(), net.buffers()):
                b_ema.copy_(b)

    def for_sampling(self, role: str = "generator") -> nn.Module:
        """The network of ``role`` that sampling uses: its moving average when kept."""
        return self.emas.get(role, self.modules[role])

    # ------------------------------------------------------------------ the protocol
    @property
    def generator(self) -> nn.Module:
        return self.modules["generator"]

    @property
    def discriminator(self) -> nn.Module:
        return self.modules["discriminator"]

    @torch.no_grad()
    def critic(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        """The discriminator's score of each sample of ``x`` (higher: judged more real), for
        pictures of its surface over 2-D data; None for a method without a discriminator that
        judges samples on their own (one that also takes a condition, or none at all).
        Methods whose discriminator is not a score (an energy, a loss) override it."""
        d = self.modules.get("discriminator")
        if d is None or self.contract.conditions or self.contract.inputs:
            return None
        out = self.judged(d, x)
        return out.reshape(len(x), -1).float().mean(1) if torch.is_tensor(out) else None

    @staticmethod
    def judged(net: nn.Module, x: torch.Tensor, call=None):
        """``net(x)`` (or ``call(x)``, a function of ``net``) in evaluation mode: no batch
        statistics updated and no dropout drawn from the global random state, so looking at a
        network never changes training; then the network's mode back."""
        mode = net.training
        net.eval()
        try:
            return (call or net)(x)
        finally:
            net.train(mode)

    @abc.abstractmethod
    def train_step(self, batches: List[Batch], step: int) -> Dict[str, torch.Tensor]:
        """One training iteration on ``real_batches_per_step`` real batches (dicts of the data
        set's fields, already on the device, in model space: ``batch["x"]``); returns scalar
        tensors to log (synced only at log time)."""

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
    def generated(self, n: int, *conditions: torch.Tensor) -> torch.Tensor:
        """``n`` samples of the training generator for a discriminator's update: fresh noise
        from the global RNG (this process's share, see :meth:`noise`), under autocast, with
        no graph (the update holds the generator fixed)."""
        with self.rt.autocast():
            return self.generator(self.noise(n), *conditions)

    # ------------------------------------------------------------------ sampling
    def draw_conditions(self, n: int, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """Conditions for ``n`` samples drawn from the data's distribution (class labels by
        their frequencies in the training data), on the CPU; with a ``generator``, from it."""
        out = {}
        for name in self.contract.conditions:
            f = self.info.fields.get(name)
            if f is None or f.kind != "label" or not f.frequencies:
                raise ConfigError(f"this {type(self).__name__} run cannot draw its condition '{name}' by itself; "
                                  "give one")
            p = torch.tensor(f.frequencies, dtype=torch.float64)
            out[name] = torch.multinomial(p, n, replacement=True, generator=generator)
        return out

    def condition_fields(self) -> Dict[str, Field]:
        """What sampling can be given, each described by its :class:`Field`: the contract's
        conditions (fields of the data); a method with conditions of its own that are no data
        field (InfoGAN's latent codes) adds them, and ``gankit sample --label`` finds them here."""
        return {name: self.info.fields[name] for name in self.contract.conditions if name in self.info.fields}

    def check_given(self, given: Mapping[str, Any], n: int, any_size: bool = False) -> Dict[str, torch.Tensor]:
        """``given`` conditions as CPU tensors of ``n`` rows each; a clear error for a field the
        method takes no condition on, a label out of range or a wrong shape (``any_size``:
        pictures of any height and width, with the field's channels)."""
        out = {}
        for name, value in given.items():
            if name not in self.contract.conditions:
                takes = ", ".join(self.contract.conditions) or "no conditions"
                raise ConfigError(f"this {type(self).__name__} run takes {takes}; it cannot be given '{name}'")
            f = self.info.fields[name]
            t = torch.as_tensor(value)
            if f.kind == "label":
                t = t.reshape(-1).long()
                if len(t) == 1 and n != 1:
                    t = t.expand(n)
                k = f.n_classes
                if len(t) and (int(t.min()) < 0 or int(t.max()) >= k):
                    bad = int(t.max()) if int(t.max()) >= k else int(t.min())
                    raise ConfigError(f"label {bad} is out of range: this run's data has {k} classes "
                                      f"(0..{k - 1}: {', '.join(f.classes[:12])}{' ...' if k > 12 else ''})")
            elif tuple(t.shape[1:]) != tuple(f.shape) and not (
                    any_size and f.kind == "image" and t.dim() == 4 and t.shape[1] == f.shape[0]):
                raise ConfigError(f"'{name}' must have samples of shape {tuple(f.shape)}, got {tuple(t.shape[1:])}")
            if len(t) != n:
                raise ConfigError(f"{len(t)} values of '{name}' given for {n} samples")
            out[name] = t
        return out

    def showcase(self, n: int) -> Tuple[Dict[str, torch.Tensor], Optional[int]]:
        """Conditions for a picture of ``n`` samples, and its row length: with a class label
        condition of at most ``n`` classes, one row per class (``n // classes`` samples each);
        otherwise none (drawn from the data's distribution)."""
        for name in self.contract.conditions:
            f = self.info.fields.get(name)
            if f is not None and f.kind == "label" and 0 < f.n_classes <= n:
                per = n // f.n_classes
                return {name: torch.arange(f.n_classes).repeat_interleave(per)}, per
        return {}, None

    def generate(self, z: torch.Tensor, given: Dict[str, torch.Tensor]) -> Samples:
        """Named outputs for noise ``z`` and conditions ``given`` (on the device), under
        autocast: ``{"x": G(z)}`` for an unconditional generator."""
        return {"x": self.for_sampling()(z)}

    @torch.no_grad()
    def sample(self, n: int, given: Optional[Mapping[str, Any]] = None, generator: Optional[torch.Generator] = None,
               batch_size: int = SAMPLE_BATCH, skip_batches: int = 0, dropout: bool = False,
               tile=None, overlap=None) -> Samples:
        """``n`` samples as named outputs on the CPU, float32 (``x``: images in [-1, 1]).

        Conditions the method takes but that are not ``given`` are drawn from the data's
        distribution, so every distribution metric works for a conditional method too.
        Networks are used in eval mode (moving averages when kept); pass a seeded
        ``generator`` to leave the global random state untouched. The draws go batch by
        batch (conditions, then noise); ``skip_batches`` draws and drops that many whole
        batches first, so a process can generate its share of a larger draw.

        ``dropout`` keeps the generators' dropout layers active (pix2pix's noise: several
        outputs for one input differ; with a ``generator`` the masks come from it too); a
        generator without dropout is refused. Pictures given at a size other than the training
        size (or with ``tile`` set: pixels on a side, or (height, width)) are translated tile by
        tile and stitched, the tiles ``overlap`` pixels apart (default a quarter of a tile):
        see :mod:`gankit.methods._tiles`; ``tile=False`` takes the pictures as they are.
        """
        from . import _tiles

        given = given or {}
        if tile is not False and _tiles.wants_tiles(self, given, tile):
            return _tiles.sample_tiled(self, n, given, generator, tile, overlap, batch_size, dropout)
        given = self.check_given(given, n, any_size=True) if tile is False else self.check_given(given, n)
        for _ in range(skip_batches):
            self.draw_conditions(batch_size, generator)
            self.noise(batch_size, generator)
        nets = list(self.modules.values()) + list(self.emas.values())
        modes = [net.training for net in nets]
        for net in nets:
            net.eval()
        out: Dict[str, List[torch.Tensor]] = {}
        rng = contextlib.nullcontext()
        try:
            if dropout:
                self._dropout_on()
                if generator is not None:   # the masks from the seeded draw, the global state untouched
                    cuda = self.rt.device.type == "cuda"
                    rng = torch.random.fork_rng(devices=[self.rt.device.index or 0] if cuda else [])
                    rng.__enter__()
                    torch.manual_seed(int(torch.randint(2 ** 62, (1,), generator=generator)))
            for start in range(0, n, batch_size):
                k = min(batch_size, n - start)
                drawn = self.draw_conditions(k, generator) if self.contract.conditions else {}
                cond = {**drawn, **{name: v[start:start + k] for name, v in given.items()}}
                z = self.noise(k, generator)
                with self.rt.autocast():
                    result = self.generate(z, {name: v.to(self.rt.device) for name, v in cond.items()})
                for name, v in result.items():
                    out.setdefault(name, []).append(v.float().cpu() if v.is_floating_point() else v.cpu())
        finally:
            rng.__exit__(None, None, None)
            for net, mode in zip(nets, modes):
                net.train(mode)
        if not out:
            return {"x": torch.empty(0, *self.info.shape)}
        return {name: torch.cat(v) for name, v in out.items()}

    def _dropout_on(self) -> None:
        """Put the dropout layers of the generator roles' sampling networks in training mode;
        a ConfigError when they have none."""
        roles = [r for r, registry in self.contract.roles.items() if registry == "generator"]
        layers = [m for r in roles for m in self.for_sampling(r).modules()
                  if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]
        if not layers:
            names = ", ".join(f"{r} ({self.network_name(r)})" for r in roles)
            raise ConfigError(f"dropout at sampling time: this run's generator {names} has no dropout layers, so its "
                              "output is a function of its input; a pix2pix unet with generator.dropout > 0 has them")
        for m in layers:
            m.train()

    # ------------------------------------------------------------------ state
    def extra_state(self) -> Dict[str, Any]:
        """What the method holds beyond networks and optimisers (image pools, baselines,
        running statistics), as tensors and plain values; saved in every checkpoint and
        restored also when only the networks are loaded (for sampling)."""
        return {}

    def load_extra_state(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def state_dict(self) -> dict:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "emas": {k: m.state_dict() for k, m in self.emas.items()},
            "ema_updates": self.ema_updates if self.emas else 0,
            "extra": self.extra_state(),
            "runtime": self.rt.state_dict(),
        }

    def load_state_dict(self, state: dict, networks_only: bool = False) -> None:
        try:
            for k, m in self.modules.items():
                m.load_state_dict(state["modules"][k])
            saved = dict(state.get("emas") or {})
            if not saved and state.get("ema") is not None:   # older checkpoints: the generator's only
                saved = {"generator": state["ema"]}
            for role, avg in self.emas.items():
                if role in saved:
                    avg.load_state_dict(saved[role])
                else:                                      # a run trained without it: start from the net
                    avg.load_state_dict(self.modules[role].state_dict())
            if self.emas:
                self.ema_updates = int(state.get("ema_updates", 1 << 30))  # older checkpoints: warm-up done
            self.load_extra_state(state.get("extra") or {})   # sampling may use it (pix2pix's pool of inputs)
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


class Adversarial(Method):
    """The alternating skeleton of Algorithm 1, written once: for each real batch of the
    step (``real_batches_per_step`` = k), one update of the discriminator; then, with the
    discriminator held fixed, one update of the generator; then the moving averages and the
    learning-rate schedules. A subclass writes the two updates; what they return is logged
    (the last discriminator update's values for keys several of them return)."""

    #: the roles updated in the discriminator phase (held fixed during the generator's update)
    discriminator_roles: Tuple[str, ...] = ("discriminator",)

    @abc.abstractmethod
    def discriminator_step(self, batch: Batch) -> Dict[str, torch.Tensor]:
        """One update of the discriminator(s) on one real batch."""

    @abc.abstractmethod
    def generator_step(self, batches: List[Batch]) -> Dict[str, torch.Tensor]:
        """One update of the generator (the step's real batches at hand, e.g. for feature
        matching or an unrolled discriminator)."""

    def train_step(self, batches: List[Batch], step: int) -> Dict[str, torch.Tensor]:
        judges = [self.modules[r] for r in self.discriminator_roles]
        logs: Dict[str, torch.Tensor] = {}
        for net in judges:
            net.requires_grad_(True)
        for batch in batches:
            logs.update(self.discriminator_step(batch))
        for net in judges:
            net.requires_grad_(False)
        logs.update(self.generator_step(batches))
        self.update_ema()
        self.step_schedulers()
        return logs


@torch.no_grad()
def discriminator_logs(objective, loss: torch.Tensor, d_real: torch.Tensor, d_fake: torch.Tensor,
                       suffix: str = "") -> Dict[str, torch.Tensor]:
    """What a discriminator update logs: its loss and its mean output on the real and on the
    generated samples (as probabilities where the objective works on logits), with ``suffix``
    after each key for a method with several discriminators."""
    view = torch.sigmoid if objective.output == "logit" else (lambda t: t)
    return {f"d_loss{suffix}": loss.detach(), f"d_real{suffix}": view(d_real.detach().float()).mean(),
            f"d_fake{suffix}": view(d_fake.detach().float()).mean()}


def check_positive(key: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{key} must be at least 1, got {value}")
