"""A classifier of domains trained on real pictures: did a translation change the style?

Multi-domain translation (StarGAN) is judged by two questions: is the content kept (the
Fashion-MNIST classifier still recognises the garment, ``translation_accuracy``) and did
the picture move into the target domain. No shipped network knows the domains of a data set
the user composes, so :func:`domain_classifier` trains one on the run's own real training
pictures and their ``domain`` labels: a small convolutional network (two strided 3x3
convolutions with ReLU, global average pooling, a linear read-out), Adam for 400 batches of
128 or 20 passes over the pictures, whichever is fewer, seeded, in float32 on the CPU, on all but the last tenth of the pictures,
whose accuracy it reports as the ceiling (``domain_accuracy_real``: how often it recognises
the domain of real pictures it never saw). The trained weights are cached on disk under
the evaluation cache, keyed by the data's config section, so periodic evaluation trains it
once.

Two-domain translation (cyclegan, shared_latent) has no ``domain`` field: its two data sets
are the two domains. :func:`two_domains` puts their pictures together (domain 0: the main
data, 1: the further source), one channel repeated to three where the domains differ, in a
seeded shuffled order, so the held-out tenth holds both domains.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Tuple

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["DomainClassifier", "train_domain_classifier", "domain_classifier", "two_domains", "match_channels"]

#: bumped when the classifier or its training changes, so old cache files are not used
VERSION = 1


class DomainClassifier(nn.Module):
    def __init__(self, channels: int, n_domains: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, width, 3, 2, 1), nn.ReLU(),
                                  nn.Conv2d(width, 2 * width, 3, 2, 1), nn.ReLU(),
                                  nn.Conv2d(2 * width, 2 * width, 3, 1, 1), nn.ReLU())
        self.out = nn.Linear(2 * width, n_domains)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for images in [0, 1] (N, C, H, W)."""
        return self.out(self.body(x * 2 - 1).mean((2, 3)))


def _as_unit(x: torch.Tensor) -> torch.Tensor:
    return x.float().div(255.0) if x.dtype == torch.uint8 else x.float()


def train_domain_classifier(x: torch.Tensor, domain: torch.Tensor, n_domains: int, steps: int = 400,
                            epochs: int = 20, seed: int = 0, build=None) -> Tuple[nn.Module, float]:
    """(a classifier of ``domain`` from pictures ``x`` (uint8, or floats in [0, 1]), its accuracy
    on the last tenth of them, which it is not trained on): ``steps`` batches of 128 or
    ``epochs`` passes over the pictures, whichever is fewer. ``build(channels, n_domains)``
    makes another network than :class:`DomainClassifier` (the speaker classifier of
    :mod:`gankit.metrics.voice`)."""
    n = len(x)
    n_test = max(1, n // 10)
    if n - n_test < 2:
        raise ValueError(f"a domain classifier needs more pictures, got {n}")
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = (build or DomainClassifier)(x.shape[1], n_domains)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    train_x, train_d = x[:n - n_test], domain[:n - n_test].long()
    batch = min(128, len(train_x))
    for _ in range(min(steps, -(-epochs * len(train_x) // batch))):
        idx = torch.randint(len(train_x), (batch,), generator=g)
        loss = F.cross_entropy(net(_as_unit(train_x[idx])), train_d[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    return net, accuracy(net, x[n - n_test:], domain[n - n_test:])


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Pictures ``x`` (N, C, H, W) with ``channels`` channels: one channel repeated, or as they are."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] != 1:
        raise ValueError(f"cannot give pictures of {x.shape[1]} channels {channels}")
    return x.expand(-1, channels, -1, -1)


def two_domains(x_a: torch.Tensor, x_b: torch.Tensor, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """(the pictures of domains A and B together, in an order shuffled by ``seed``, their domains:
    0 for A, 1 for B); a grey domain beside a colour one is repeated to three channels."""
    c = max(x_a.shape[1], x_b.shape[1])
    x = torch.cat([match_channels(x_a, c), match_channels(x_b, c)])
    domain = torch.cat([torch.zeros(len(x_a), dtype=torch.long), torch.ones(len(x_b), dtype=torch.long)])
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[order], domain[order]


@torch.no_grad()
def accuracy(net: DomainClassifier, x: torch.Tensor, domain: torch.Tensor, batch: int = 1000) -> float:
    """The share of pictures ``x`` whose domain ``net`` predicts as ``domain``."""
    right = 0
    for start in range(0, len(x), batch):
        right += int((net(_as_unit(x[start:start + batch])).argmax(1) == domain[start:start + batch].long()).sum())
    return right / max(1, len(x))


def domain_classifier(data_cfg: Dict, x: torch.Tensor, domain: torch.Tensor, n_domains: int,
                      cache: Path, build=None, tag: str = "domains") -> Tuple[nn.Module, float]:
    """:func:`train_domain_classifier` on a run's training pictures, cached in ``cache`` by the
    data's config section (a damaged or stale cache file is retrained); ``build`` another
    network, cached under the name ``tag``."""
    key = json.dumps({"data": data_cfg, "n": len(x), "n_domains": n_domains, "version": VERSION,
                      **({"tag": tag} if tag != "domains" else {})}, sort_keys=True, default=str)
    path = cache / f"{tag}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved["key"] == key:
                net = (build or DomainClassifier)(x.shape[1], n_domains)
                net.load_state_dict(saved["weights"])
                return net.eval(), float(saved["accuracy"])
        except Exception:
            pass   # retrained below
    net, acc = train_domain_classifier(x, domain, n_domains, build=build)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        torch.save({"key": key, "weights": net.state_dict(), "accuracy": acc}, tmp)
        os.replace(tmp, path)
    except OSError:
        pass   # caching is an optimisation
    return net, acc
