"""What an InfoGAN run's codes learnt: latent traversals and the categorical code as a clustering.

"Feature Extraction by GAN" in the lectures: the dimensions called c come to stand for
something because Q must recover them; on MNIST the categorical code becomes the digit and
the continuous codes its slant and stroke width (Chen et al. 2016, Figure 2). For a trained
``infogan`` run this experiment

* draws the latent traversal grid of each continuous code (one row per category of the
  categorical code, the continuous code swept from -2 to 2 across the columns, the other
  continuous codes at 0, one noise vector for the whole grid; the training prior is [-1, 1],
  so the outer columns extrapolate) and puts the panels side by side in ``DIR/infogan_codes.png``;
* scores the categorical code as an unsupervised classifier under the best one-to-one
  matching of categories to classes (the ``unsupervised_accuracy`` metric: Q's category of
  each held-out real picture against its label, and the code of each generated picture
  against the class the data set's classifier gives it);
* beside it, the baselines: k-means with as many clusters on the same held-out pictures'
  pixels and on the shipped classifier's penultimate features (a network trained with the
  labels, so an upper reference rather than an unsupervised rival), scored the same way.

Run ``gankit experiment infogan-codes --run RUN --out DIR [--n 10000] [--steps 9]``; writes
``DIR/infogan_codes.json`` and ``DIR/infogan_codes.png``. ``--no-baselines`` skips k-means.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

from . import write_json

__all__ = ["traversal_picture", "baselines", "run", "main"]

NAME = "infogan_codes"


def traversal_picture(method, path: Path, steps: int = 9, low: float = -2.0, high: float = 2.0, seed: int = 0
                      ) -> Path:
    """The traversal grid of every continuous code of an InfoGAN ``method``, side by side, as a PNG."""
    from torchvision.utils import make_grid, save_image

    if not method.n_continuous:
        raise ValueError("this InfoGAN run has no continuous code to traverse")
    panels = []
    for code in range(method.n_continuous):
        x, per_row = method.traversal(code=code, steps=steps, low=low, high=high, seed=seed)
        panels.append(make_grid(x.add(1).div(2).clamp(0, 1), nrow=per_row, padding=2, pad_value=1.0))
    gap = torch.ones(panels[0].shape[0], panels[0].shape[1], 12)
    picture = torch.cat([p if i == 0 else torch.cat([gap, p], 2) for i, p in enumerate(panels)], 2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(picture, path)
    return path


def baselines(x: torch.Tensor, y: torch.Tensor, k: int, features: Optional[str] = "fashion_mnist",
              seed: int = 0) -> Dict[str, float]:
    """Matched accuracy of k-means (``k`` clusters) on the pixels of ``x`` (images in [0, 1]) and
    on the penultimate features of the ``features`` extractor, against the labels ``y``."""
    from ..metrics.evaluate import get_extractor
    from ..metrics.matching import kmeans, matched_accuracy

    labels = y.long().numpy()
    n_classes = int(labels.max()) + 1
    out = {}
    spaces = {"pixels": lambda: x.reshape(len(x), -1).double().numpy()}
    if features:
        spaces["classifier_features"] = lambda: get_extractor(features).features(x)
    for name, space in spaces.items():
        clusters = kmeans(space(), k, seed=seed)[0]
        out[f"kmeans_{name}"] = matched_accuracy(clusters, labels, k, n_classes)[0]
    return out


def run(run_dir: Path, out: Path, n: int = 10_000, steps: int = 9, with_baselines: bool = True,
        features: str = "auto") -> Dict[str, object]:
    import gankit
    from ..errors import ConfigError
    from ..metrics.evaluate import auto_features, evaluate_run, load_reference
    from ..methods.infogan import InfoGAN

    loaded = gankit.load_run(run_dir)
    method = loaded.method
    if not isinstance(method, InfoGAN):
        raise ConfigError(f"{run_dir} is a run of method {loaded.config.method['name']}; this experiment reads an "
                          "infogan run's codes")
    res: Dict[str, object] = {"run": str(run_dir), "step": loaded.step, "categorical": list(method.categories),
                              "continuous": method.n_continuous, "n": n}
    if method.n_continuous and loaded.info.kind == "image":
        traversal_picture(method, Path(out) / f"{NAME}.png", steps=steps)
    t0 = time.time()
    extractor = auto_features(loaded.config.data, loaded.info.kind) if features == "auto" else features
    res.update(evaluate_run(loaded, metrics=["unsupervised_accuracy"], n=n, features=extractor or "none"))
    if with_baselines and method.categories:
        data, split = load_reference(loaded, "test")
        m = min(n, len(data))
        x = data.x[:m].float().div(255.0) if data.kind == "image" else data.x[:m]
        feats = extractor if data.kind == "image" else None
        res.update(baselines(x, data.y[:m], method.categories[0], feats))
        res["baseline_split"] = split
    res["seconds"] = round(time.time() - t0, 1)
    write_json(out, NAME, res)
    return res


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="gankit experiment infogan-codes", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a trained infogan run directory")
    p.add_argument("--out", required=True, help="folder for infogan_codes.json and .png")
    p.add_argument("--n", type=int, default=10_000, help="generated and held-out samples to score (10000)")
    p.add_argument("--steps", type=int, default=9, help="columns of each traversal, from -2 to 2 (9)")
    p.add_argument("--features", default="auto", help="the classifier that judges generated pictures and whose "
                   "features the second k-means baseline clusters (auto: the data set's own)")
    p.add_argument("--no-baselines", action="store_true", help="skip the k-means baselines")
    a = p.parse_args(argv)
    res = run(Path(a.run), Path(a.out), a.n, a.steps, not a.no_baselines, a.features)
    for key, value in res.items():
        print(f"{key:34s} {value:.4f}" if isinstance(value, float) else f"{key:34s} {value}")
    return 0
