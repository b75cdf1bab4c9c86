"""Pixel-space nearest neighbours miss copies that were moved by a few pixels.

The lecture (GAN Evaluation, "We don't want memory GAN") shows that an image moved by two
or three pixels is closer, in pixel L2, to other images of the database than to itself, so
a generator that copied its training set after a small shift would pass a pixel-space
nearest-neighbour check.  This experiment measures it on Fashion-MNIST:

* ``n_train`` training images (a seeded random subset of the training split, pixels in
  [0, 1]) form the database;
* ``n_copies`` of them (seeded, distinct) are copied and translated by (dy, dx), drawn
  uniformly among the integer shifts with ``min_shift <= max(|dy|, |dx|) <= max_shift``
  (default 2..3 pixels), uncovered pixels set to 0 (the background);
* each copy's nearest training image is found with the plain pixel L2 distance and with the
  shift-tolerant distance of :func:`gankit.metrics.memorization.nearest_neighbours`
  (``metric="shift"``, translations up to ``search_shift`` pixels, compared on the overlap);
* a *hit* is a nearest neighbour that is the copy's source.  Reported: both hit rates, the
  hit rates per shift size, and the median L2 distances from the copies to their sources
  and to their L2 nearest neighbours.

Run ``python -m gankit.experiments.shifted_copies --out DIR`` (about 10 s on 2 cores with the
defaults); it writes ``DIR/shifted_copies.json`` and ``DIR/shifted_copies.png``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from ..metrics.memorization import nearest_neighbours, shift_images
from ..viz.plots import pyplot, save_figure as write_figure

__all__ = ["shifted_copies", "main"]


def shifted_copies(n_train: int = 10000, n_copies: int = 200, min_shift: int = 2, max_shift: int = 3,
                   search_shift: int = 3, seed: int = 0, data_root: Optional[str] = None,
                   train_images: Optional[np.ndarray] = None, return_arrays: bool = False) -> Dict[str, object]:
    """Run the experiment; returns a dict of numbers (see the module docstring).

    ``train_images`` (uint8 (N, 1, H, W)) replaces the Fashion-MNIST training split when
    given.  Keys: ``l2_hit_rate``, ``shift_hit_rate``, ``hit_rate_by_shift`` ({size:
    {"l2", "shift", "n"}}), ``undo_shift_found`` (fraction of the shift-tolerant hits whose
    best translation is exactly the inverse of the applied shift), ``median_l2_to_source``, ``median_l2_to_l2_nn``,
    ``median_shift_distance_to_nn``, sizes and ``seconds``.
    """
    if not 0 <= min_shift <= max_shift:
        raise ValueError(f"need 0 <= min_shift <= max_shift, got {min_shift} and {max_shift}")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    if train_images is None:
        from ..data.images import fashion_mnist

        train_images = fashion_mnist(root=data_root, split="train").x.numpy()
    all_u8 = np.asarray(train_images)
    if n_train > len(all_u8) or n_copies > n_train:
        raise ValueError(f"need n_copies <= n_train <= {len(all_u8)}, got {n_copies} and {n_train}")
    train = all_u8[rng.choice(len(all_u8), n_train, replace=False)].astype(np.float64) / 255.0
    sources = rng.choice(n_train, n_copies, replace=False)
    choices = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)
               if min_shift <= max(abs(dy), abs(dx))]
    shifts = np.array([choices[i] for i in rng.integers(0, len(choices), n_copies)], dtype=np.int64)
    copies = np.concatenate([shift_images(train[i:i + 1], int(dy), int(dx))
                             for i, (dy, dx) in zip(sources, shifts)])
    l2_idx, l2_d = nearest_neighbours(copies, train, "l2")
    sh_idx, sh_d, found = nearest_neighbours(copies, train, "shift", max_shift=search_shift, return_shifts=True)
    l2_hit = l2_idx[:, 0] == sources
    sh_hit = sh_idx[:, 0] == sources
    to_source = np.sqrt(((copies - train[sources]) ** 2).reshape(n_copies, -1).sum(axis=1))
    size = np.abs(shifts).max(axis=1)
    by_shift = {int(s): {"l2": float(l2_hit[size == s].mean()), "shift": float(sh_hit[size == s].mean()),
                         "n": int((size == s).sum())} for s in np.unique(size)}
    out: Dict[str, object] = {
        "l2_hit_rate": float(l2_hit.mean()),
        "shift_hit_rate": float(sh_hit.mean()),
        "hit_rate_by_shift": by_shift,
        "undo_shift_found": float(np.mean(np.all(found[:, 0] == -shifts, axis=1)[sh_hit])) if sh_hit.any() else 0.0,
        "median_l2_to_source": float(np.median(to_source)),
        "median_l2_to_l2_nn": float(np.median(l2_d[:, 0])),
        "median_shift_distance_to_nn": float(np.median(sh_d[:, 0])),
        "n_train": n_train, "n_copies": n_copies, "min_shift": min_shift, "max_shift": max_shift,
        "search_shift": search_shift, "seed": seed,
        "seconds": time.perf_counter() - t0,
    }
    if return_arrays:
        out["_arrays"] = {"copies": copies[:8], "sources": train[sources[:8]], "l2_nn": train[l2_idx[:8, 0]],
                          "shift_nn": train[sh_idx[:8, 0]], "shifts": shifts[:8],
                          "l2_hit": l2_hit[:8], "shift_hit": sh_hit[:8]}
    return out


def save_figure(res: Dict[str, object], path) -> Path:
    """The PNG: per row a shifted copy, its source, its L2 nearest neighbour, its shift-tolerant one."""
    plt = pyplot()

    a = res["_arrays"]
    rows = len(a["copies"])
    cols = [("shifted copy", a["copies"]), ("source", a["sources"]), ("L2 nearest", a["l2_nn"]),
            ("shift-tolerant nearest", a["shift_nn"])]
    fig, axes = plt.subplots(rows, 4, figsize=(6, 1.5 * rows + 0.6), squeeze=False)
    for r in range(rows):
        for c, (name, imgs) in enumerate(cols):
            ax = axes[r, c]
            ax.imshow(imgs[r, 0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                dy, dx = a["shifts"][r]
                ax.set_ylabel(f"dy={dy} dx={dx}", fontsize=7)
            if c >= 2:
                hit = a["l2_hit"][r] if c == 2 else a["shift_hit"][r]
                for s in ax.spines.values():
                    s.set_edgecolor("tab:green" if hit else "tab:red")
                    s.set_linewidth(2)
            if r == 0:
                ax.set_title(name, fontsize=8)
    fig.suptitle(f"hit rate (nearest = source): L2 {res['l2_hit_rate']:.2f}, "
                 f"shift-tolerant {res['shift_hit_rate']:.2f}  ({res['n_copies']} copies, "
                 f"{res['n_train']} training images)", fontsize=8)
    fig.tight_layout()
    return write_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gankit.experiments.shifted_copies",
                                description="Do pixel-space nearest neighbours find training images moved by "
                                            "2-3 pixels?")
    p.add_argument("--out", required=True, help="folder for shifted_copies.json and .png")
    p.add_argument("--n-train", type=int, default=10000, help="training images searched")
    p.add_argument("--n-copies", type=int, default=200, help="shifted copies of training images")
    p.add_argument("--min-shift", type=int, default=2)
    p.add_argument("--max-shift", type=int, default=3)
    p.add_argument("--search-shift", type=int, default=3, help="max_shift of the shift-tolerant distance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=None, help="folder with the Fashion-MNIST IDX files")
    a = p.parse_args(argv)
    res = shifted_copies(n_train=a.n_train, n_copies=a.n_copies, min_shift=a.min_shift, max_shift=a.max_shift,
                         search_shift=a.search_shift, seed=a.seed, data_root=a.data_root, return_arrays=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    save_figure(res, out / "shifted_copies.png")
    res.pop("_arrays", None)
    (out / "shifted_copies.json").write_text(json.dumps(res, indent=2))
    print(f"nearest training image is the source: L2 {res['l2_hit_rate']:.3f}, "
          f"shift-tolerant {res['shift_hit_rate']:.3f}  ({res['n_copies']} copies, {res['n_train']} train)")
    for s, v in res["hit_rate_by_shift"].items():
        print(f"  shift {s} px: L2 {v['l2']:.3f}  shift-tolerant {v['shift']:.3f}  (n={v['n']})")
    print(f"median L2 copy->source {res['median_l2_to_source']:.2f}, copy->L2 nearest {res['median_l2_to_l2_nn']:.2f}")
    print(f"wrote {out / 'shifted_copies.json'} and {out / 'shifted_copies.png'} ({res['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
