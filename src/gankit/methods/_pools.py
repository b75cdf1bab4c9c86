"""Image pools that image-to-image methods keep as method state (saved in every checkpoint).

* :class:`InputPool`: the first ``size`` training inputs a run saw (uint8, CPU), so that a
  method conditioned on an image (pix2pix, cyclegan) can sample without given inputs (the
  sample grids during training, distribution metrics on generated samples alone), without
  its data set and the same way after a resume.
* :class:`HistoryPool`: Shrivastava et al.'s (2017) history of generated images, as
  CycleGAN uses it: the discriminator is shown, for each newly generated image, with
  probability 1/2 that image and otherwise one generated earlier (which the new one then
  replaces in the pool), once the pool holds ``size`` images; before that the new images
  are shown and kept. It damps the oscillation of a discriminator that only ever judges
  the generator's latest outputs. Its random choices come from the global random state
  (a fixed number of draws per image, full pool or not), which the checkpoint keeps, and
  its images are part of the checkpoint, so a resumed run is bit-identical.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch

__all__ = ["InputPool", "HistoryPool", "DomainInputs", "to_uint8"]

Tensor = torch.Tensor


def to_uint8(c: Tensor) -> Tensor:
    """Model-space images in [-1, 1] -> uint8 on the CPU (exact for images that came from uint8)."""
    return c.detach().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu().contiguous()


class InputPool:
    """The first ``size`` training inputs (uint8 on the CPU); ``images`` is the pool itself."""

    def __init__(self, size: int, shape):
        self.size = int(size)
        self.images = torch.empty(0, *shape, dtype=torch.uint8)

    def add(self, c: Tensor) -> None:
        """Keep the first of the model-space inputs ``c`` while the pool is not full."""
        if len(self.images) < self.size:
            self.images = torch.cat([self.images, to_uint8(c[:self.size - len(self.images)])])

    def draw(self, n: int, generator: Optional[torch.Generator] = None) -> Optional[Tensor]:
        """``n`` inputs drawn with replacement (model space, CPU); None while the pool is empty."""
        if len(self.images) == 0:
            return None
        idx = torch.randint(len(self.images), (n,), generator=generator)
        return self.images[idx].float().div_(127.5).sub_(1.0)


class HistoryPool:
    """A history of up to ``size`` generated images (``size`` 0: no history); see the module."""

    def __init__(self, size: int):
        self.size = int(size)
        self.images: Optional[Tensor] = None

    def __len__(self) -> int:
        return 0 if self.images is None else len(self.images)

    @torch.no_grad()
    def query(self, fake: Tensor) -> Tensor:
        """What the discriminator is shown in place of the new images ``fake`` (detached)."""
        fake = fake.detach()
        if self.size == 0:
            return fake
        n = len(fake)
        swap = torch.rand(n) < 0.5                  # drawn for every image, full pool or not
        slot = torch.randint(self.size, (n,))
        out = fake.clone()
        for i in range(n):
            if len(self) < self.size:               # filling up: keep it and show it
                img = fake[i:i + 1].float()
                self.images = img.clone() if self.images is None else torch.cat([self.images, img])
            elif bool(swap[i]):                     # show an older one, keep the new one in its place
                j = int(slot[i])
                out[i] = self.images[j].to(out.device, out.dtype)
                self.images[j] = fake[i].float()
        return out

    def state(self) -> Tensor:
        return self.images.clone() if self.images is not None else torch.empty(0)

    def load(self, images: Tensor, device=None) -> None:
        self.images = images.to(device).clone() if len(images) else None


class DomainInputs:
    """What a method that translates pictures between the domains of one data set (``domain``
    labels: stargan, disentangle) keeps and draws: the pool of the first training pictures with
    their domains (``self.inputs``, ``self.sources``, in the checkpoint), sampling conditions
    (uniform target domains, pooled pictures with their own domains as ``source``) and the
    picture of a run (one row per target domain under the same pooled pictures). The class
    sets ``self.n_domains`` and calls :meth:`init_domain_inputs`; ``draws_sources`` False
    leaves ``source`` out of the drawn conditions."""

    draws_sources = True

    def init_domain_inputs(self, size: int, shape) -> None:
        self.inputs = InputPool(size, shape)
        self.sources = torch.empty(0, dtype=torch.long)   # the domain of each pooled picture

    def draw_conditions(self, n: int, generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        """Targets uniform over the domains; ``n`` pictures drawn (with replacement) from the pool
        of training pictures, with their domains, once it holds any."""
        out = {"domain": torch.randint(self.n_domains, (n,), generator=generator)}
        if len(self.inputs.images):
            idx = torch.randint(len(self.inputs.images), (n,), generator=generator)
            out["input"] = self.inputs.images[idx].float().div_(127.5).sub_(1.0)
            if self.draws_sources:
                out["source"] = self.sources[idx]
        return out

    def showcase(self, n: int) -> Tuple[Dict[str, Tensor], Optional[int]]:
        """One row per target domain, under the same pooled pictures (as many as fit in ``n``)."""
        per = min(n // self.n_domains, len(self.inputs.images))
        if per < 1:
            return {}, None
        x = self.inputs.images[:per].float().div(127.5).sub(1.0)
        return {"input": x.repeat(self.n_domains, 1, 1, 1), "source": self.sources[:per].repeat(self.n_domains),
                "domain": torch.arange(self.n_domains).repeat_interleave(per)}, per

    def pool_batch(self, batch) -> None:
        """Keep the first training pictures of ``batch`` and their domains while the pool has room."""
        room = self.inputs.size - len(self.inputs.images)
        if room > 0:
            self.inputs.add(batch["x"])
            self.sources = torch.cat([self.sources, batch["domain"][:room].cpu()])

    def extra_state(self) -> Dict[str, Any]:
        return {"inputs": self.inputs.images.clone(), "sources": self.sources.clone()}

    def load_extra_state(self, state: Dict[str, Any]) -> None:
        if "inputs" in state:
            self.inputs.images = state["inputs"].clone()
            self.sources = state["sources"].clone()
