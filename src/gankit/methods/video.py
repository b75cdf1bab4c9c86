"""Next-frame video prediction by a conditional GAN: given k past frames, draw the next one.

"Conditional Generation by GAN" in the lectures, video: a network trained to regress the next
frame meets clips whose past is the same and whose futures differ (a car that may turn left
or right) and answers with their average, two faint half-cars; a generator judged by a
discriminator must give something that looks like a frame, so it picks one of the futures.
The data's ``input`` field holds the past frames stacked along the channels (oldest first,
``moving_fashion``'s ``input``), ``x`` is the next frame.

The generator is pix2pix's U-Net (:mod:`gankit.nets.pix2pix`) given the past frames and
``z_dim`` noise maps: a noise vector z ~ N(0, I) of ``z_dim`` numbers, each spread over a
whole map of the frames' size beside them (``z_dim: 0``: no noise vector, the U-Net's dropout
alone, as in pix2pix). The discriminator (a PatchGAN by default) judges (past frames, frame)
stacked along the channels, so it learns what a plausible next frame is *for these past
frames*. The generator minimises

    adv_weight * L_G(D(c, G(c, z))) + recon_weight * R(G(c, z), x) + diversity_weight / (m + 1e-5)

with R the mean absolute (``reconstruction: l1``) or squared (``l2``) error to the true next
frame. ``adv_weight: 0`` is the regressor of the same network (the discriminator is then not
trained): with L2 its best answer is the mean of the possible futures, the blend; with L1
every frame between the futures costs the same, pixel by pixel, so it never pushes a GAN's
sharp choice back toward the blend. ``m`` is the mode-seeking ratio of Mao et al. (2019),
mean |G(c, z1) - G(c, z2)| / mean |z1 - z2| for a second noise draw z2: with a weight above 0
two noise vectors that give the same frame cost the generator more, which keeps it from
ignoring its noise (always choosing the same side). The discriminator minimises
L_D(D(c, x), D(c, G(c, z))) / 2 with any objective of ``gan`` (``objective``), averaged over
its patches.

Sampling: ``given={"input": past}`` (``gankit sample --input FRAMES``) gives one next frame
for each clip; outputs ``input`` and ``x``, the prediction. Without inputs the clips are drawn
from a pool of the first ``pool`` training clips (past and next frame, kept in the
checkpoint), and the true next frame comes back as ``next`` beside the prediction, so the
run's sample pictures show past | predicted | true. :meth:`Video.rollout` predicts several
frames by feeding each prediction back as the newest past frame.
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Mapping, Optional, Union

import torch

from ..config import Config
from ..data.base import Field
from ..errors import ConfigError
from ..metrics import video as _video_metrics  # noqa: F401 - registers next_frame
from ..registries import METHODS, OBJECTIVES
from ..train.runtime import Runtime
from ._paired import Paired, image_fields
from ._pools import InputPool
from .base import Batch, Contract, DataInfo, check_positive, discriminator_logs
from .gan import regularise_discriminator

__all__ = ["Video"]

Tensor = torch.Tensor
ObjectiveSpec = OBJECTIVES.spec_type()


class Video(Paired):
    contract = Contract(needs=("x", "input"), conditions=("input",),
                        auto={"generator": "unet", "discriminator": "patchgan"},
                        metrics=("next_frame",))

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, objective: Union[str, Dict[str, Any]],
                 adv_weight: float, recon_weight: float, reconstruction: str, z_dim: int, diversity_weight: float,
                 d_steps: int, pool: int, spectral_norm: bool):
        super().__init__(runtime, info, cfg)
        check_positive("method.d_steps", d_steps)
        check_positive("method.pool", pool)
        self.d_steps = self.real_batches_per_step = d_steps
        for key, value in (("adv_weight", adv_weight), ("recon_weight", recon_weight),
                           ("diversity_weight", diversity_weight), ("z_dim", z_dim)):
            if not value >= 0:
                raise ConfigError(f"method.{key} must not be negative, got {value}")
        if adv_weight == 0 and recon_weight == 0:
            raise ConfigError("method.adv_weight and method.recon_weight are both 0: the generator would learn "
                              "nothing; set recon_weight (the regressor), adv_weight (the GAN) or both")
        if reconstruction not in ("l1", "l2"):
            raise ConfigError(f"method.reconstruction must be l1 or l2, got {reconstruction!r}")
        if diversity_weight > 0 and z_dim == 0:
            raise ConfigError("method.diversity_weight keeps outputs for different noise apart, but method.z_dim is 0 "
                              "(no noise vector): set z_dim (e.g. 8) or diversity_weight=0")
        self.adv_weight, self.recon_weight = float(adv_weight), float(recon_weight)
        self.reconstruction, self.z_dim, self.diversity_weight = reconstruction, int(z_dim), float(diversity_weight)
        self.objective = OBJECTIVES.build_spec(objective, key="method.objective")

        f_in, f_x = image_fields(info, "video", "predicts frames from frames",
                                 "predicts the next frame from past frames in a field 'input': use --data "
                                 "moving_fashion (or data with an 'input' image field)")
        (c_in, h_in, w_in), (c_x, h, w) = f_in.shape, f_x.shape
        if (h_in, w_in) != (h, w):
            raise ConfigError(f"method video needs past frames of the next frame's size ({h}x{w}), got {h_in}x{w_in}")
        self.past_channels, self.frame_channels, self.size = c_in, c_x, (h, w)
        g_info = DataInfo(info.kind, info.shape, info.n_classes,
                          {**info.fields, "input": Field("image", (c_in + self.z_dim, h, w))})
        g = self.build_network("generator", g_info)
        if getattr(g, "z_dim", 0):
            raise ConfigError(f"generator '{self.network_name('generator')}' maps noise to images; method video needs "
                              "an image-to-image generator: set generator.name=unet (or auto)")
        if getattr(g, "in_channels", c_in + self.z_dim) != c_in + self.z_dim:
            raise ConfigError(f"generator '{self.network_name('generator')}' takes {g.in_channels} channels but the "
                              f"past frames and noise maps have {c_in + self.z_dim}")
        d = self.build_network("discriminator", info.with_shape((c_in + c_x, h, w)))
        regularise_discriminator(d, "none", spectral_norm)
        self.opt_g, self.opt_d = self.add_pair(g, d)
        # the pool keeps past and next frame together, so pictures drawn from it show the true frame
        self.inputs = InputPool(pool, (c_in + c_x, h, w))
        self._pending = None    # (batch, c, z, G(c, z)) of the last discriminator update, for the generator's

    # ------------------------------------------------------------------ pieces
    def noise(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` noise vectors of ``z_dim`` numbers (see :meth:`Method.noise`)."""
        if generator is None:
            return self.rt.randn(n, self.z_dim)
        return torch.randn(n, self.z_dim, generator=generator).to(self.rt.device)

    def predict(self, net, c: Tensor, z: Tensor) -> Tensor:
        """``net``'s next frame for past frames ``c`` and noise ``z`` (its maps beside them)."""
        if self.z_dim:
            maps = z.to(c.dtype)[:, :, None, None].expand(-1, -1, *c.shape[-2:])
            c = torch.cat([c, maps], 1)
        return net(c)

    def pair(self, c: Tensor, x: Tensor) -> Tensor:
        """What the discriminator judges: the past frames and a next frame along the channels."""
        return torch.cat([c.to(x.dtype), x], 1)

    def error(self, fake: Tensor, x: Tensor) -> Tensor:
        d = fake.float() - x.float()
        return d.abs().mean() if self.reconstruction == "l1" else d.pow(2).mean()

    # ------------------------------------------------------------------ sampling
    def draw_conditions(self, n: int, generator=None) -> Dict[str, Tensor]:
        """Clips drawn from the pool: past frames with the true next frame behind them."""
        drawn = self.inputs.draw(n, generator)
        return {} if drawn is None else {"input": drawn}

    def generate(self, z: Tensor, given: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if "input" not in given:
            raise ConfigError("this video run has no past frames to continue: give them (gankit sample --input "
                              "FRAMES, or given={'input': frames}); runs draw their own only after training has begun")
        c = given["input"]
        out = {}
        if c.shape[1] == self.past_channels + self.frame_channels:      # drawn from the pool: the true frame too
            c, out["next"] = c[:, :self.past_channels], c[:, self.past_channels:]
        return {"input": c, "x": self.predict(self.for_sampling(), c, z), **out}

    @torch.no_grad()
    def sample(self, n: int, given: Optional[Mapping[str, Any]] = None, generator: Optional[torch.Generator] = None,
               tile=None, overlap=None, **kwargs):
        """:meth:`Method.sample`; past frames must be of the training size (no tiles: each tile
        would choose its own future)."""
        frames = (given or {}).get("input")
        if tile not in (None, False) or overlap is not None:
            raise ConfigError("method video predicts whole frames: tiles (--tile, --overlap) do not apply")
        if frames is not None and tuple(torch.as_tensor(frames).shape[-2:]) != tuple(self.size):
            shape = tuple(torch.as_tensor(frames).shape[-2:])
            raise ConfigError(f"past frames of {shape[1]}x{shape[0]} pixels given, but this run predicts "
                              f"{self.size[1]}x{self.size[0]} frames; give frames of that size")
        return super().sample(n, given=given, generator=generator, tile=tile, overlap=overlap, **kwargs)

    def frames_from_pictures(self, pictures: Tensor, source: str = "--input") -> Tensor:
        """Pictures read from ``source`` (images in [0, 1], (m, C, H, W), in the order of their
        paths) -> clips of past frames (m', C_in, H, W): k frames of the training size (k
        files, or a multiple of k: several clips one after another), or strips of k frames
        side by side (k W x H, one clip each); an .npz/.npy may hold clips with their frames
        already stacked. Colour frames of a grey run are made grey (the mean of their
        channels). A ConfigError says what fits."""
        cf, (h, w) = self.frame_channels, self.size
        k = self.past_channels // cf
        pictures = torch.as_tensor(pictures).float()
        m, c, ph, pw = pictures.shape
        if str(source).lower().endswith((".npz", ".npy")) and c == k * cf and (ph, pw) == (h, w):
            return pictures                                    # an array of clips, frames already stacked
        if c != cf:
            if cf == 1 and c in (3, 4):
                pictures = pictures[:, :3].mean(1, keepdim=True)
            else:
                raise ConfigError(f"{source}: frames of {c} channel(s), but this run's frames have {cf}")
        if ph == h and pw == k * w and k > 1:                 # strips: k frames side by side
            return torch.cat(pictures.split(w, 3), 1)
        if (ph, pw) != (h, w):
            raise ConfigError(f"{source}: pictures of {pw}x{ph} pixels, but this run predicts {w}x{h} frames from "
                              f"{k} past frame(s): give {k} frames of {w}x{h} (oldest first, in the order of "
                              f"their file names) or one strip of {k * w}x{h} holding them side by side")
        if m % k:
            raise ConfigError(f"{source}: {m} frame(s), but this run predicts from {k} past frames: give {k} frames "
                              f"(or {k} for each clip, clip after clip)")
        return pictures.reshape(m // k, k * cf, h, w)

    @torch.no_grad()
    def rollout(self, past: Tensor, frames: int, generator: Optional[torch.Generator] = None,
                dropout: bool = False) -> Tensor:
        """``frames`` frames after the past frames ``past`` (model space, (n, C_in, H, W)), each
        predicted from the newest past frames with the previous prediction as the newest:
        (n, frames * C_x, H, W), model space, on the CPU."""
        check_positive("frames", frames)
        if self.past_channels % self.frame_channels:
            raise ConfigError(f"a rollout feeds predicted frames back as past frames, but this run's past has "
                              f"{self.past_channels} channels and a frame {self.frame_channels}")
        window = torch.as_tensor(past).float()
        out = []
        for _ in range(frames):
            nxt = self.sample(len(window), given={"input": window}, generator=generator, dropout=dropout)["x"]
            out.append(nxt)
            window = torch.cat([window[:, self.frame_channels:], nxt], 1)
        return torch.cat(out, 1)

    # ------------------------------------------------------------------ training
    def train_step(self, batches: List[Batch], step: int) -> Dict[str, Tensor]:
        self.inputs.add(torch.cat([batches[0]["input"], batches[0]["x"]], 1))
        try:
            return super(Paired, self).train_step(batches, step)
        finally:
            self._pending = None

    def discriminator_step(self, batch: Batch) -> Dict[str, Tensor]:
        if self.adv_weight == 0:       # the regressor: the discriminator plays no part
            return {}
        G, D, rt, obj = self.generator, self.discriminator, self.rt, self.objective
        c, x = batch["input"], batch["x"]
        z = self.noise(len(x))
        with rt.autocast():
            fake = self.predict(G, c, z)
            d_real = D(self.pair(c, x)).flatten()
            d_fake = D(self.pair(c, fake.detach())).flatten()
        loss = 0.5 * obj.d_loss(d_real, d_fake)
        rt.step(loss, self.opt_d, "discriminator")
        self._pending = (batch, c, z, fake)
        return discriminator_logs(obj, loss, d_real, d_fake)

    def generator_step(self, batches: List[Batch]) -> Dict[str, Tensor]:
        G, D, rt = self.generator, self.discriminator, self.rt
        batch = batches[-1]
        x = batch["x"]
        if self._pending is not None and self._pending[0] is batch:
            _, c, z, fake = self._pending
        else:
            c, z = batch["input"], self.noise(len(x))
            with rt.autocast():
                fake = self.predict(G, c, z)
        recon = self.error(fake, x)
        loss = self.recon_weight * recon
        logs = {self.reconstruction: recon.detach()}
        if self.adv_weight:
            with rt.autocast():
                adv = self.objective.g_loss(D(self.pair(c, fake)).flatten())
            loss = loss + self.adv_weight * adv
            logs["g_loss"] = adv.detach()
        if self.diversity_weight:
            z2 = self.noise(len(x))
            with rt.autocast():
                other = self.predict(G, c, z2)
            ratio = (fake.float() - other.float()).abs().mean() / (z.float() - z2.float()).abs().mean()
            loss = loss + self.diversity_weight / (ratio + 1e-5)
            logs["mode_seeking"] = ratio.detach()
        rt.step(loss, self.opt_g, "generator")
        return logs


@METHODS.register("video")
def video(runtime, info, cfg, /, adv_weight: float = 1.0, recon_weight: float = 10.0,
          reconstruction: Literal["l1", "l2"] = "l1", z_dim: int = 8, diversity_weight: float = 0.0,
          objective: ObjectiveSpec = "nonsaturating", d_steps: int = 1, pool: int = 256,
          spectral_norm: bool = False) -> Video:
    """Next-frame prediction: U-Net G(past frames, noise maps) and a PatchGAN on (past, frame);
    adv_weight 0 is the regressor of the same network (reconstruction l1 or l2, recon_weight);
    z_dim noise numbers; diversity_weight: mode seeking; pool: training clips kept for
    sampling without given frames."""
    return Video(runtime, info, cfg, objective, adv_weight, recon_weight, reconstruction, z_dim, diversity_weight,
                 d_steps, pool, spectral_norm)


video.contract = Video.contract
