"""StackGAN (Zhang et al. 2017): a small picture first, then a larger one made from it.

"Conditional Generation by GAN" in the lectures: generate a small image, then a big one.
Stage 1 draws a picture at ``stage1_size`` (default: half the data's side, 14x14 on
Fashion-MNIST) from noise and the condition; stage 2 takes that picture and the condition
(no noise: the randomness is already in the stage-1 picture) and makes the full-size one.
Each stage has its own discriminator that judges (picture, condition) pairs as the
:mod:`cgan <gankit.methods.cgan>` method does (its designs, from
:mod:`gankit.nets.conditional`, and its loss functions): stage 1's judges the real pictures
brought down to the first stage's size by averaging each ``factor x factor`` block, stage 2's
the real pictures themselves. With ``mismatch_weight`` w (the paper's matching-aware
discriminator at w = 1: real pictures with a wrong condition are fakes) each minimises

    [L(real x with its c, G(...) with c) + w L(real x with its c, real x with a wrong c)] / (1 + w).

Conditioning augmentation (:mod:`gankit.nets.stackgan`): the condition's embedding (here the
one-hot code of the class label; the module takes any embedding vector) becomes a Gaussian
N(mu, diag(sigma^2)) from one linear layer, and the generator gets a sample c = mu + sigma *
eps. Each stage has its own (as in the paper), and each generator's loss adds

    kl_weight * KL(N(mu, diag(sigma^2)) || N(0, I)) / cond_dim,

the KL divergence per dimension of c, which is how the authors' released code normalises it
(a mean over the batch and the dimensions) with its weight of 2.0 in every released config,
the default here; the paper's text sets its lambda to 1 without saying how the term is
normalised. The logged ``kl`` and ``kl2`` are the whole divergences (summed over dimensions).

Training (``schedule``): ``sequential`` is the paper's: stage 1 alone until step
``stage2_start`` (default 1,500), then stage 1 (both its networks and their moving average)
frozen while stage 2 trains; ``joint``: both stages every step from ``stage2_start`` (default
0) on, stage 1 alone before it. Either way stage 2 sees the stage-1 picture detached: each
generator learns from its own discriminator only; once stage 1 is frozen, stage 2 trains on
the pictures that sampling will give it (stage 1's moving average when kept, in eval mode).
Every step logs every key, a stage that does not train at that step logging zeros. All of the
noise of one sample (z, the two stages' eps) is one draw of ``z_dim + 2 cond_dim`` numbers,
so a seed gives the same samples however they are taken.

Sampling returns ``x`` (stage 2), ``stage1`` (the first stage's picture at its own size; the
sample grids enlarge it beside x) and ``y``. The metrics ``conditional_accuracy`` (of x, by the
data set's classifier) and ``fid_stage1`` (stage 1 against real pictures averaged down to the
first stage's size, both then enlarged alike for the feature extractor) are added to every
evaluation.
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

import torch
import torch.nn.functional as F

from ..config import Config
from ..data.base import Field
from ..errors import ConfigError
from ..nets.conditional import ConditionalDiscriminator, Design, one_hot
from ..nets.stackgan import Refiner, StageOneGenerator, StageTwoGenerator, kl_divergence
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from .base import Adversarial, Batch, Contract, DataInfo, check_positive, discriminator_logs
from .cgan import judges_mismatch, pair_d_loss, pair_g_loss, realism, wrong_labels
from .gan import regularise_discriminator

__all__ = ["StackGAN", "stage_shape", "downsample"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()
SCHEDULES = ("sequential", "joint")
#: what every training step logs (stage 1's keys, then stage 2's)
LOG_KEYS = ("d_loss", "d_real", "d_fake", "g_loss", "kl", "d_loss2", "d_real2", "d_fake2", "g_loss2", "kl2")
#: stage2_start when the config leaves it unset: sequential (half of the default 3,000 steps), joint
DEFAULT_START = {"sequential": 1500, "joint": 0}


def stage_shape(shape: Tuple[int, ...], stage1_size: Optional[int]) -> Tuple[Tuple[int, int, int], int]:
    """(the first stage's picture shape, the factor from it to ``shape``) for pictures of
    ``shape`` (C, H, W) and a first stage of side ``stage1_size`` (None: half of H); a
    ConfigError for a size that does not divide the picture by a power of two."""
    c, h, w = shape
    size = h // 2 if stage1_size is None else int(stage1_size)
    if size < 1 or h % size:
        fits = [h // f for f in (2, 4, 8) if h % f == 0 and w % f == 0]
        raise ConfigError(f"method.stage1_size={stage1_size} does not divide the pictures' side {h}: stage 2 "
                          f"enlarges stage 1 by a whole factor; choose one of {fits or 'none (resize the data)'}")
    factor = h // size
    if factor < 2 or factor & (factor - 1) or w % factor:
        raise ConfigError(f"method.stage1_size={size}: the pictures ({h}x{w}) must be stage 1's size times 2, 4, "
                          f"8 ... in both sides (a factor of {h / size:g} here); e.g. stage1_size={h // 2}")
    return (c, size, w // factor), factor


def downsample(x: Tensor, factor: int) -> Tensor:
    """Pictures averaged down by ``factor`` (each factor x factor block becomes its mean)."""
    return F.avg_pool2d(x, factor) if factor > 1 else x


class StackGAN(Adversarial):
    contract = Contract(needs=("x", "y"), conditions=("y",),
                        roles={"generator": "generator", "discriminator": "discriminator",
                               "stage2_generator": "generator", "stage2_discriminator": "discriminator"},
                        auto={"stage2_generator": "refiner"},
                        ema=("generator", "stage2_generator"),
                        metrics=("conditional_accuracy", "fid_stage1"),
                        optim={"lr_g": 4e-4, "lr_d": 4e-4}, data_kinds=("image",))
    discriminator_roles = ("discriminator", "stage2_discriminator")

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, stage1_size: Optional[int], cond_dim: int,
                 kl_weight: float, schedule: str, stage2_start: Optional[int], design: str,
                 mismatch_weight: float, ac_weight: float, ac_generated: bool,
                 objective: Union[str, Dict[str, Any]], spectral_norm: bool):
        super().__init__(runtime, info, cfg)
        if info.kind != "image":
            raise ConfigError(f"method stackgan makes pictures in two stages; this data set holds {info.kind} samples")
        k = info.n_classes
        if k < 2:
            raise ConfigError(f"method stackgan needs at least 2 classes of labels; this data set has {k}")
        check_positive("method.cond_dim", cond_dim)
        for key, value in (("kl_weight", kl_weight), ("mismatch_weight", mismatch_weight), ("ac_weight", ac_weight)):
            if not value >= 0:
                raise ConfigError(f"method.{key} must not be negative, got {value}")
        if schedule not in SCHEDULES:
            raise ConfigError(f"method.schedule: {schedule!r} is not a schedule; choose one of {', '.join(SCHEDULES)}")
        start = DEFAULT_START[schedule] if stage2_start is None else int(stage2_start)
        if start < 0:
            raise ConfigError(f"method.stage2_start must not be negative, got {start}")
        if schedule == "sequential" and start == 0:
            raise ConfigError("method.stage2_start=0 with schedule=sequential would freeze stage 1 before it trains; "
                              "give the step at which stage 1 stops and stage 2 starts (e.g. 1500), or use "
                              "schedule=joint")
        self.schedule, self.stage2_start = schedule, start
        self.n_classes, self.cond_dim, self.kl_weight = k, int(cond_dim), float(kl_weight)
        self.design, self.mismatch_weight = design, float(mismatch_weight)
        self.ac_weight, self.ac_generated = float(ac_weight), bool(ac_generated)
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")
        self._step = 0

        shape = tuple(info.shape)
        self.stage1_shape, self.factor = stage_shape(shape, stage1_size)
        if "z_dim" not in cfg.generator:
            raise ConfigError(f"generator '{self.network_name('generator')}' has no z_dim; stackgan's stage 1 "
                              "draws pictures from noise")
        self.z_dim = int(cfg.generator["z_dim"])
        small = info.with_shape(self.stage1_shape)
        try:
            base = self.build_noise_generator("generator", small, z_dim=self.z_dim + self.cond_dim)
            d1_base = self.build_network("discriminator", self._judge_info(small))
        except ConfigError as exc:
            raise ConfigError(f"stage 1 ({self.stage1_shape[1]}x{self.stage1_shape[2]}): {exc}; or choose another "
                              "method.stage1_size") from None
        g1 = StageOneGenerator(base, self.z_dim, k, self.cond_dim)
        d1 = ConditionalDiscriminator(design, d1_base, k, True)

        g2_info = DataInfo("image", shape, 0, {"x": info.fields["x"], "input": Field("image", self.stage1_shape),
                                               "condition": Field("vector", (self.cond_dim,))})
        refine = self.build_network("stage2_generator", g2_info)
        if not isinstance(refine, Refiner):
            raise ConfigError(f"stage2_generator '{self.network_name('stage2_generator')}' cannot refine a stage-1 "
                              "picture given a condition; set stage2_generator.name=auto (refiner)")
        g2 = StageTwoGenerator(refine, k)
        d2 = ConditionalDiscriminator(design, self.build_network("stage2_discriminator", self._judge_info(info)), k,
                                      True)
        for d in (d1, d2):
            regularise_discriminator(d, "none", spectral_norm)
        for role, net in (("generator", g1), ("discriminator", d1), ("stage2_generator", g2),
                          ("stage2_discriminator", d2)):
            self.add_module(role, net)
            self.add_optimizer(role, self.modules[role].parameters())
        self.enable_ema()

    def _judge_info(self, info: DataInfo) -> DataInfo:
        """What a discriminator's network is built for: ``joint`` sees the one-hot code as
        further channels beside the picture's."""
        if self.design != "joint":
            return info
        return info.with_shape((info.shape[0] + self.n_classes,) + tuple(info.shape[1:]))

    # ------------------------------------------------------------------ schedule
    def trains(self, stage: int, step: Optional[int] = None) -> bool:
        """Whether ``stage`` (1 or 2) is trained at ``step`` (default: the current one)."""
        step = self._step if step is None else step
        if stage == 2:
            return step >= self.stage2_start
        return self.schedule == "joint" or step < self.stage2_start

    # ------------------------------------------------------------------ pieces
    def noise(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """z and both stages' eps of ``n`` samples as one draw (N, z_dim + 2 cond_dim)."""
        width = self.z_dim + 2 * self.cond_dim
        if generator is None:
            return self.rt.randn(n, width)
        return torch.randn(n, width, generator=generator).to(self.rt.device)

    def split(self, noise: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(z, stage 1's eps, stage 2's eps) of a :meth:`noise` draw."""
        return noise.split([self.z_dim, self.cond_dim, self.cond_dim], 1)

    def embed(self, y: Tensor) -> Tensor:
        """The condition's embedding that conditioning augmentation reads: the class's one-hot code."""
        return one_hot(y, self.n_classes, torch.float32)

    def stages(self, noise: Tensor, y: Tensor, g1=None, g2=None) -> Dict[str, Tensor]:
        """Both stages' pictures for ``noise`` and labels ``y``, with their Gaussians' parameters."""
        g1 = self.generator if g1 is None else g1
        g2 = self.modules["stage2_generator"] if g2 is None else g2
        z, eps1, eps2 = self.split(noise)
        e = self.embed(y)
        s1, mu1, logvar1 = g1(z, e, eps1)
        x, mu2, logvar2 = g2(s1.detach(), e, eps2)
        return {"stage1": s1, "x": x, "mu1": mu1, "logvar1": logvar1, "mu2": mu2, "logvar2": logvar2}

    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        y = given["y"]
        out = self.stages(z, y, self.for_sampling("generator"), self.for_sampling("stage2_generator"))
        return {"x": out["x"], "stage1": out["stage1"], "y": y}

    # ------------------------------------------------------------------ the two updates
    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        """One iteration; every key is logged at every step (the trainer averages rows of the
        same keys), a stage that does not train at this step logging zeros."""
        self._step = step
        logs = super().train_step(batches, step)
        zero = torch.zeros((), device=self.rt.device)
        return {key: logs.get(key, zero) for key in LOG_KEYS}

    def _judge(self, D, real: Tensor, fake: Tensor, y: Tensor, opt_role: str, suffix: str) -> Dict[str, Tensor]:
        rt = self.rt
        with rt.autocast():
            out_real, out_fake = D(real, y), D(fake, y)
            out_wrong = D(real, wrong_labels(rt, y, self.n_classes)) if judges_mismatch(
                self.design, self.mismatch_weight) else None
        loss = pair_d_loss(self.objective, self.design, out_real, out_fake, out_wrong, y, self.mismatch_weight,
                           self.ac_weight, self.ac_generated)
        rt.step(loss, self.optimizers[opt_role], opt_role)
        return discriminator_logs(self.objective, loss, realism(out_real), realism(out_fake), suffix)

    def first_stage(self, z: Tensor, e: Tensor, eps1: Tensor, grad: bool) -> Tuple[Tensor, Tensor, Tensor]:
        """Stage 1's pictures for training: from the training network while stage 1 trains
        (with a graph when ``grad``); once it is frozen, from the network that sampling uses (its
        moving average when kept) in eval mode, so stage 2 learns on what it will be given."""
        if self.trains(1):
            with torch.set_grad_enabled(grad), self.rt.autocast():
                return self.generator(z, e, eps1)
        g1 = self.for_sampling("generator")
        mode = g1.training
        g1.eval()
        try:
            with torch.no_grad(), self.rt.autocast():
                return g1(z, e, eps1)
        finally:
            g1.train(mode)

    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        x, y = batch["x"], batch["y"]
        z, eps1, eps2 = self.split(self.noise(len(x)))
        e = self.embed(y)
        s1 = self.first_stage(z, e, eps1, grad=False)[0]
        logs: Dict[str, Tensor] = {}
        if self.trains(1):
            logs.update(self._judge(self.discriminator, downsample(x, self.factor), s1, y, "discriminator", ""))
        if self.trains(2):
            with torch.no_grad(), self.rt.autocast():
                fake = self.modules["stage2_generator"](s1, e, eps2)[0]
            logs.update(self._judge(self.modules["stage2_discriminator"], x, fake, y, "stage2_discriminator", "2"))
        return logs

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        rt, obj = self.rt, self.objective
        y = batches[-1]["y"]
        z, eps1, eps2 = self.split(self.noise(len(y)))
        e = self.embed(y)
        one = self.trains(1)
        s1, mu1, logvar1 = self.first_stage(z, e, eps1, grad=one)
        logs: Dict[str, Tensor] = {}
        if one:
            with rt.autocast():
                judged = self.discriminator(s1, y)
            kl = kl_divergence(mu1, logvar1)
            loss = pair_g_loss(obj, self.design, judged, y, self.mismatch_weight, self.ac_weight)
            loss = loss + self.kl_weight * kl / self.cond_dim
            rt.step(loss, self.optimizers["generator"], "generator")
            logs.update({"g_loss": loss.detach(), "kl": kl.detach()})
        if self.trains(2):
            with rt.autocast():
                x, mu2, logvar2 = self.modules["stage2_generator"](s1.detach(), e, eps2)
                judged = self.modules["stage2_discriminator"](x, y)
            kl = kl_divergence(mu2, logvar2)
            loss = pair_g_loss(obj, self.design, judged, y, self.mismatch_weight, self.ac_weight)
            loss = loss + self.kl_weight * kl / self.cond_dim
            rt.step(loss, self.optimizers["stage2_generator"], "stage2_generator")
            logs.update({"g_loss2": loss.detach(), "kl2": kl.detach()})
        return logs

    def step_schedulers(self) -> None:
        """Every role's learning-rate schedule follows the global step, also while its stage
        waits or is frozen (its optimiser has then not stepped, which PyTorch warns about)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            super().step_schedulers()

    @torch.no_grad()
    def update_ema(self) -> None:
        """The moving averages of the stages being trained: a frozen stage's average stays as it
        is, and stage 2's warm-up (see :meth:`Method.ema_decay_now`) counts from ``stage2_start``."""
        if not self.emas:
            return
        t = self.ema_updates
        self.ema_updates += 1
        top = self.cfg.train.ema_decay
        for role, avg in self.emas.items():
            stage = 2 if role.startswith("stage2") else 1
            if not self.trains(stage, t):
                continue
            since = t - (self.stage2_start if stage == 2 else 0)
            decay = min(top, (1.0 + since) / (10.0 + since))
            net = self.modules[role]
            torch._foreach_lerp_(list(avg.parameters()), list(net.parameters()), 1.0 - decay)
            for b_ema, b in zip(avg.buffers(), net.buffers()):
                b_ema.copy_(b)


@METHODS.register("stackgan")
def stackgan(runtime, info, cfg, /, stage1_size: Optional[int] = None, cond_dim: int = 64, kl_weight: float = 2.0,
             schedule: Literal["sequential", "joint"] = "sequential", stage2_start: Optional[int] = None,
             design: Design = "joint", mismatch_weight: float = 1.0, ac_weight: float = 1.0,
             ac_generated: bool = False, objective: ObjectiveSpec = "nonsaturating",
             spectral_norm: bool = False) -> StackGAN:
    """StackGAN on class labels: stage 1 at stage1_size (default half the side), stage 2
    refines it to the full size; conditioning augmentation (cond_dim, kl_weight, 2.0 as the
    authors' code); schedule sequential (the paper's: stage 1 frozen from stage2_start,
    default 1,500) or joint (both from stage2_start, default 0); each stage's discriminator a
    cgan design (joint by default) with the mismatched-pair term (mismatch_weight)."""
    return StackGAN(runtime, info, cfg, stage1_size, cond_dim, kl_weight, schedule, stage2_start, design,
                    mismatch_weight, ac_weight, ac_generated, objective, spectral_norm)


stackgan.contract = StackGAN.contract
