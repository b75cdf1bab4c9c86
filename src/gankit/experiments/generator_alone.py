"""Can a generator learn by itself? As an auto-encoder's decoder it learns the codes it was
shown, and produces poor pictures between them.

The lecture ("GAN as structured learning"): a generator can be trained alone, as the decoder
of an auto-encoder, each training picture giving it a target for the code the encoder gives
that picture. But it only ever sees those codes: a code it was not shown (a random one, or
the midpoint of two codes it knows) is decoded into something that need not be a picture at
all, while a GAN's generator is judged on every code it draws.

Here on Fashion-MNIST (28x28):

* an auto-encoder: gankit's ``vae`` network (DCGAN discriminator body -> code, DCGAN generator
  decoding), its code the encoder's mean alone (no noise, no KL term: a plain auto-encoder),
  trained on the mean squared error for ``--ae-steps`` steps (batch 64, Adam 1e-3);
* its decodes of three kinds of codes for held-out test pictures: the pictures' own codes
  (reconstructions), random codes drawn from a Gaussian fitted to 2,000 training codes (their
  per-dimension mean and standard deviation: the fairest prior an auto-encoder that has none
  can be given), and midpoints of the codes of two random test pictures;
* a GAN (``gankit.train``, the default DCGAN on Fashion-MNIST, ``--gan-steps`` steps; 0 skips
  it) and its samples from random noise.

Each set of 1,000 pictures (``n``) is scored by gankit's shipped Fashion-MNIST classifier: its mean
confidence (mean largest class probability; real test pictures score about 0.9) and the FID
of its features against 1,000 other test pictures (``n``).

    gankit experiment generator-alone --out DIR
    gankit experiment generator-alone --ae-steps 300 --gan-steps 0 --out DIR
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..viz.plots import pyplot, save_figure
from . import write_json

__all__ = ["train_autoencoder", "autoencoder_pictures", "gan_pictures", "score", "run", "table", "main", "NAME"]

NAME = "generator_alone"
N_PICTURES = 1000


def _fashion(split: str) -> torch.Tensor:
    from ..data.images import fashion_mnist

    return fashion_mnist(split=split).x.float() / 127.5 - 1.0        # [-1, 1]


def train_autoencoder(x: torch.Tensor, steps: int, seed: int = 0, batch: int = 64, width: int = 64,
                      z_dim: int = 32) -> torch.nn.Module:
    """A plain auto-encoder (code = the encoder's mean) trained on the squared error."""
    from ..nets.vae import vae_network

    torch.manual_seed(seed)
    net = vae_network(tuple(x.shape[1:]), z_dim=z_dim, width=width)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(steps):
        xb = x[torch.randint(0, len(x), (batch,), generator=gen)]
        loss = F.mse_loss(net.decode(net.encode(xb)[0]), xb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def _codes(net, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([net.encode(x[i:i + 500])[0] for i in range(0, len(x), 500)])


@torch.no_grad()
def autoencoder_pictures(net, train: torch.Tensor, test: torch.Tensor, n: int = N_PICTURES,
                         seed: int = 0) -> Dict[str, torch.Tensor]:
    """Decodes in [0, 1] of the test pictures' codes, random codes and midpoints of two codes."""
    gen = torch.Generator().manual_seed(seed)
    known = _codes(net, train[torch.randperm(len(train), generator=gen)[:2000]])
    mean, std = known.mean(0), known.std(0)
    own = _codes(net, test[:n])
    other = _codes(net, test[n:2 * n])
    random = mean + std * torch.randn(n, known.shape[1], generator=gen)
    mid = (own + other[torch.randperm(n, generator=gen)]) / 2
    out = {"reconstruction": own, "random code": random, "midpoint": mid}
    return {k: (net.decode(z) + 1) / 2 for k, z in out.items()}


def gan_pictures(steps: int, seed: int = 0, n: int = N_PICTURES) -> torch.Tensor:
    """Samples in [0, 1] of the default DCGAN after ``steps`` steps on Fashion-MNIST."""
    import gankit

    cfg = {"method": {"name": "gan"}, "data": {"name": "fashion_mnist"},
           "generator": {"name": "dcgan"}, "discriminator": {"name": "dcgan"},
           "train": {"steps": steps, "batch_size": 64, "seed": seed, "log_every": 100, "sample_every": 0,
                     "checkpoint_every": 0, "progress": "none"}}
    with tempfile.TemporaryDirectory() as tmp:
        run = gankit.train({**cfg, "out": str(Path(tmp) / "gan")})
        return run.sample(n, seed=30_000 + seed)


def score(pictures: torch.Tensor, reference_feats: np.ndarray, classifier) -> Dict[str, float]:
    """Mean classifier confidence and FID (classifier features) of pictures in [0, 1]."""
    from ..metrics import fid

    feats, logits = classifier.features_and_logits(pictures)
    p = torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=1)
    return {"confidence": float(p.max(1).values.mean()), "fid": float(fid(reference_feats, feats))}


def run(ae_steps: int = 1500, gan_steps: int = 1500, seed: int = 0, out: Optional[str] = None,
        width: int = 64, n: int = N_PICTURES, n_train: int = 60_000) -> Dict[str, object]:
    from ..metrics.features import fashion_mnist

    if n < 100 or n_train < 1000:
        raise ConfigError(f"n must be at least 100 and n_train at least 1000, got {n} and {n_train}")
    if ae_steps < 1 or gan_steps < 0:
        raise ConfigError(f"--ae-steps must be at least 1 and --gan-steps at least 0, got {ae_steps} and {gan_steps}")
    t0 = time.perf_counter()
    train, test = _fashion("train")[:n_train], _fashion("test")
    classifier = fashion_mnist()
    reference = classifier.features((test[2 * n:3 * n] + 1) / 2)
    net = train_autoencoder(train, ae_steps, seed, width=width)
    pictures = {"real test pictures": (test[:n] + 1) / 2,
                **{f"auto-encoder: {k}": v for k, v in autoencoder_pictures(net, train, test, n, seed).items()}}
    t_gan = None
    if gan_steps:
        t1 = time.perf_counter()
        pictures["GAN sample"] = gan_pictures(gan_steps, seed, n)
        t_gan = round(time.perf_counter() - t1, 1)
    rows = {k: score(v, reference, classifier) for k, v in pictures.items()}
    res = {"ae_steps": ae_steps, "gan_steps": gan_steps, "width": width, "n_pictures": n, "n_train": n_train,
           "rows": rows,
           "gan_seconds": t_gan, "seconds": round(time.perf_counter() - t0, 1)}
    if out is not None:
        _figure(pictures, rows, write_json(out, NAME, res) / f"{NAME}.png")
    return res


def table(res: Dict[str, object]) -> str:
    lines = [f"| pictures (auto-encoder {res['ae_steps']} steps, GAN {res['gan_steps']} steps) | classifier confidence "
             "| FID (classifier features) |", "|---|---|---|"]
    for k, r in res["rows"].items():
        lines.append(f"| {k} | {r['confidence']:.3f} | {r['fid']:.2f} |")
    return "\n".join(lines)


def _figure(pictures: Dict[str, torch.Tensor], rows, path) -> Path:
    from torchvision.utils import make_grid

    plt = pyplot()
    fig, axes = plt.subplots(1, len(pictures), figsize=(3 * len(pictures), 3.5), squeeze=False)
    for ax, (k, v) in zip(axes.flat, pictures.items()):
        ax.imshow(make_grid(v[:36].clamp(0, 1), nrow=6, padding=1)[0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{k}\nconfidence {rows[k]['confidence']:.2f}, FID {rows[k]['fid']:.1f}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gankit experiment generator-alone", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help=f"folder for {NAME}.json and {NAME}.png")
    p.add_argument("--ae-steps", type=int, default=1500, help="auto-encoder training steps")
    p.add_argument("--gan-steps", type=int, default=1500, help="GAN generator steps (0: no GAN)")
    p.add_argument("--width", type=int, default=64, help="the auto-encoder's width (DCGAN channels)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    res = run(a.ae_steps, a.gan_steps, a.seed, a.out, a.width)
    print(table(res))
    print(f"wrote {a.out}/{NAME}.json and .png ({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
