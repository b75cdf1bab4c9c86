"""Small runnable experiments that check claims of the GAN lectures with numbers.

Each is a module with ``main(argv)`` (``--out DIR`` writes NAME.json and NAME.png), run by
``gankit experiment NAME [options]`` or ``python -m gankit.experiments.MODULE``.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Dict, List, Optional

from ..errors import ConfigError
from ..registry import closest

__all__ = ["EXPERIMENTS", "run_experiment", "write_json", "overlay_config"]

#: experiment name -> (module, what it shows)
EXPERIMENTS = {
    "likelihood-vs-quality": ("likelihood_vs_quality",
                              "a 99%-noise generator loses only ~log(100) nats of Parzen likelihood; --pixelcnn RUN "
                              "--gan RUN: a PixelCNN's exact bits/dim and samples beside Parzen estimates"),
    "shifted-copies": ("shifted_copies", "pixel nearest neighbours miss copies shifted by 2-3 pixels"),
    "saturation": ("saturation", "the minimax generator loss saturates; the non-saturating one does not"),
    "js-vs-wasserstein": ("js_vs_wasserstein", "JS stays at log 2 on disjoint supports; Wasserstein grows"),
    "lipschitz": ("lipschitz", "weight clipping vs gradient penalty vs spectral norm on a Wasserstein critic"),
    "modes": ("modes", "ring-8 / grid-25: modes captured, % high quality, reverse KL per objective and remedy"),
    "stacked": ("stacked", "stacked Fashion-MNIST: how many of 1,000 modes each remedy covers"),
    "condition-ignored": ("condition_ignored", "a discriminator that sees only x lets G(c, z) ignore c; the "
                          "lecture's mismatched pairs make it obey"),
    "theory1d": ("theory1d", "Goodfellow et al.'s Figure 1, D* = p_data/(p_data+p_g), V = -log 4 + 2 JSD"),
    "cycle-hides": ("cycle_hides", "CycleGAN garments -> two-tone silhouettes: the translation carries the shading "
                    "no silhouette holds; how blur, noise and requantisation of it break the way back"),
    "argmax-gradient": ("argmax_gradient", "D's score has exactly zero gradient w.r.t. G through sampled tokens "
                        "(argmax), and a gradient through Gumbel-softmax"),
    "soft-onehot": ("soft_onehot", "a discriminator over G's softmax outputs tells them from one-hot words within "
                    "a few steps (bce) and drives G to peaked outputs; a WGAN-GP critic keeps G's gradient in scale"),
    "infogan-codes": ("infogan_codes", "an InfoGAN run's latent traversals, and its categorical code as a clustering "
                      "beside k-means on pixels and on classifier features"),
    "word-translation": ("word_translation", "English -> German word translation from fortunes without a dictionary: "
                         "adversarial map + Procrustes refinement + CSLS against supervised Procrustes"),
    "birthday": ("birthday", "the birthday test recovers planted supports of 100-1,600 images"),
    "discriminator-alone": ("discriminator_alone", "x = argmax D(x): hard negatives beat random ones"),
    "generator-alone": ("generator_alone", "an auto-encoder's decoder fails between its codes"),
    "collapse-vs-dropping": ("collapse_vs_dropping", "ring-8: what tells mode collapse from mode dropping"),
}


def run_experiment(name: str, argv: Optional[List[str]] = None) -> int:
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment '{name}'{closest(name, EXPERIMENTS)}; "
                          f"available: {', '.join(sorted(EXPERIMENTS))}")
    module = importlib.import_module(f"{__name__}.{EXPERIMENTS[name][0]}")
    result = module.main(list(argv or []))
    return int(result or 0)


def write_json(out, name: str, res: Dict[str, object]) -> Path:
    """Write an experiment's numbers as ``OUT/NAME.json`` (creating OUT); returns OUT."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(res, indent=2) + "\n")
    return out


def overlay_config(base: dict, overlay: dict) -> dict:
    """``base`` with ``overlay`` laid over it section by section (a new dict; nested
    sections are merged one level deep, other values replaced)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for k, v in overlay.items():
        out[k] = {**out.get(k, {}), **v} if isinstance(v, dict) else v
    return out
