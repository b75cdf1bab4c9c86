"""Evaluate generated samples against real data: the glue behind ``gankit eval`` and the
periodic evaluation during training.

Metrics are registered by name (``gankit list`` shows them). Each metric is a function of an
:class:`EvalSet`, which computes features, class logits and pixel arrays lazily and once,
so asking for FID, KID and precision/recall runs the feature extractor a single time.
Features of the real reference set are cached on disk, keyed by the data set's config, the
split, the number of samples and the extractor's checksum.

Under torchrun (periodic evaluation during a multi-process run) the work is sharded: the
generated samples are cut into whole sampling batches, process r generates (with the same
seeded noise a single process would draw) and extracts features for its contiguous share
only. FID then reduces float64 sufficient statistics across processes (count, sum, sum of
centred outer products; :func:`gankit.metrics.fid.reduced_stats`) and never moves a
feature. Metrics that need every feature or sample (KID, precision/recall,
density/coverage, the Inception Score's splits, the toy and memorisation metrics) gather
the shares onto every process in sample order and compute there, so their values equal the
single-process ones. The real reference features are computed (or read from the cache) by
rank 0 and broadcast. A single process takes none of these paths.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from functools import cached_property
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import ConfigError
from ..registries import METRICS
from ..train import distributed

__all__ = ["METRICS", "EvalSet", "Evaluator", "evaluate", "evaluate_run", "evaluate_paths", "load_samples", "default_metrics", "auto_features",
           "reference_features", "cache_dir", "parse_metric", "LOWER_IS_BETTER"]

#: metric keys where a smaller value is better (for choosing the best checkpoint)
LOWER_IS_BETTER = {"fid", "kid", "reverse_kl", "kl", "near_copies", "intra_fid", "l1", "cycle_error",
                   "masked_l1", "classifier_error", "reconstruction_l1", "content_domain_accuracy",
                   "content_distance"}


#: metrics computed on pixels alone (or with a classifier of their own, translation_accuracy): an
#: evaluation asking only for these loads no feature extractor
PIXEL_METRICS = {"l1", "psnr", "ssim", "sharpness", "cycle_error", "translation_accuracy", "domain_accuracy",
                 "bicubic", "masked_l1", "masked_psnr", "target_accuracy", "linear_probe", "class_kept",
                 "classifier_error", "content_domain_accuracy", "reconstruction_l1", "next_frame",
                 "speech_quality", "voice_conversion"}


def cache_dir() -> Path:
    return Path(os.environ.get("GANKIT_CACHE", Path.home() / ".cache" / "gankit")) / "reference"


class EvalSet:
    """Real and generated samples of one evaluation, with lazily computed views.

    ``real`` and ``fake`` are float tensors in data space: images (N, C, H, W) in [0, 1],
    or vectors (N, D). ``extractor`` is a :class:`~gankit.metrics.features.FeatureExtractor`
    (None for vector data, whose features are the vectors themselves).

    ``sharded=True`` (several processes): ``fake`` is this process's contiguous share of the
    generated samples, in rank order; features are extracted for the share only, FID's
    statistics are reduced across processes, and ``fake``, ``fake_features`` and
    ``fake_probs`` are gathered from every process when a metric asks for them. Every process
    must then evaluate the same metrics in the same order.

    ``fake_labels`` are the classes the generated samples were generated for (a conditional
    run), ``real_labels`` the classes of the real samples; the conditional metrics use them.

    ``fake_targets`` are the targets of the generated samples where they were made from the
    real data's inputs (an image-to-image run): ``fake[i]`` is the output for the input whose
    target is ``fake_targets[i]``, same space (the paired metrics use them).

    ``outputs`` holds the further named outputs of the generated samples (data space: images in
    [0, 1]), such as the ``input`` each was made from and its ``reconstruction`` (an unpaired
    translation run); :meth:`output` gives one of them (gathered when sharded).

    ``method`` is the run's :class:`~gankit.methods.base.Method` (None for two sample sets), for
    metrics that read its networks (``unsupervised_accuracy``: InfoGAN's Q on real pictures).

    ``heldout`` loads the samples of the split the run never trained on (same space as
    ``real``); ``real_in_heldout`` says that ``real`` is the first ``len(real)`` of them, so a
    metric that needs further held-out samples (Parzen's validation set) can take others.
    """

    def __init__(self, real: torch.Tensor, fake: torch.Tensor, kind: str, extractor=None,
                 real_features: Optional[np.ndarray] = None, modes=None, mode_stds=None, log_prob=None,
                 label_scores=None,
                 train: Optional[Callable[[], torch.Tensor]] = None, figures: Optional[Path] = None,
                 sharded: bool = False, heldout: Optional[Callable[[], torch.Tensor]] = None,
                 real_in_heldout: bool = False, fake_labels: Optional[torch.Tensor] = None,
                 real_labels: Optional[torch.Tensor] = None, fake_targets: Optional[torch.Tensor] = None,
                 outputs: Optional[Dict[str, torch.Tensor]] = None,
                 train_data: Optional[Callable[[], Tuple[Dict, object]]] = None,
                 domains: Optional[Callable[[], Tuple[Dict, torch.Tensor, torch.Tensor]]] = None,
                 method=None):
        if real.shape[1:] != fake.shape[1:]:
            raise ValueError(f"real samples have shape {tuple(real.shape[1:])} but generated ones "
                             f"{tuple(fake.shape[1:])}; evaluate samples of the same kind")
        self.real, self.kind, self.extractor = real, kind, extractor
        self.sharded = sharded and distributed.world_size() > 1
        self.fake_local = fake        #: the generated samples this process holds
        if not self.sharded:
            self.fake = fake
        self._real_features = real_features
        self.modes, self.mode_stds, self.log_prob = modes, mode_stds, log_prob
        self.label_scores = label_scores
        self._train = train
        self._heldout, self.real_in_heldout = heldout, bool(real_in_heldout and heldout is not None)
        self.figures = Path(figures) if figures is not None else None  #: where metrics may draw pictures
        self.fake_labels_local = fake_labels   #: the class each generated sample was asked for (conditional runs)
        self.real_labels = real_labels         #: the class of each real sample, where the data has labels
        self.fake_targets_local = fake_targets  #: the target of each generated sample (image-to-image runs)
        self.outputs_local = dict(outputs or {})  #: further named outputs of this process's samples
        self._train_data = train_data          #: () -> (the training data's config section, its Dataset)
        #: () -> (a key, pictures of two domains, their domain 0 or 1): a two-domain run's real training pictures
        self._domains = domains
        self._outputs: Dict[str, torch.Tensor] = {}
        self.method = method                   #: the run's Method (None for two sample sets): metrics that read its networks

    def output(self, name: str) -> torch.Tensor:
        """The generated samples' further output ``name`` (gathered when sharded)."""
        if name not in self.outputs_local:
            have = ", ".join(self.outputs_local) or "none"
            raise ConfigError(f"this metric needs the output '{name}' of each generated sample (a translation run's "
                              f"inputs and reconstructions, e.g. method cyclegan); these samples have {have}")
        if name not in self._outputs:
            local = self.outputs_local[name]
            self._outputs[name] = distributed.all_gather_rows(local) if self.sharded else local
        return self._outputs[name]

    @cached_property
    def fake_targets(self) -> Optional[torch.Tensor]:
        """The target of each generated sample (gathered when sharded), None where there are none."""
        if self.fake_targets_local is None or not self.sharded:
            return self.fake_targets_local
        return distributed.all_gather_rows(self.fake_targets_local)

    @cached_property
    def fake_labels(self) -> torch.Tensor:
        """The class each generated sample was generated for (gathered when sharded)."""
        if self.fake_labels_local is None:
            raise ConfigError("this metric needs samples generated for given classes: evaluate a conditional run "
                              "(e.g. method cgan)")
        if not self.sharded:
            return self.fake_labels_local
        return distributed.all_gather_rows(self.fake_labels_local)

    @cached_property
    def train(self) -> torch.Tensor:
        """Training samples (same space as ``real``), for memorisation checks; loaded only
        when a metric asks."""
        if self._train is None:
            raise ConfigError("this metric needs the training split; evaluate a run (not two sample sets)")
        return self._train()

    @cached_property
    def train_data(self) -> Tuple[Dict, object]:
        """(the training data's config section, the loaded training :class:`Dataset` with all its
        fields), for metrics that learn from the training data (``domain_accuracy``)."""
        if self._train_data is None:
            raise ConfigError("this metric needs the run's training data; evaluate a run (not two sample sets)")
        return self._train_data()

    @cached_property
    def heldout(self) -> torch.Tensor:
        """All samples of the split the run never trained on (same space as ``real``); loaded
        only when a metric asks."""
        if self._heldout is None:
            raise ConfigError("this metric needs held-out data the generator never trained on: evaluate a run "
                              "(not two sample sets) whose data set has a test split")
        return self._heldout()

    def _features(self, x: torch.Tensor) -> np.ndarray:
        if self.kind == "vector" or self.extractor is None:
            return x.reshape(len(x), -1).double().numpy()
        return self.extractor.features(x)

    @cached_property
    def real_features(self) -> np.ndarray:
        return self._real_features if self._real_features is not None else self._features(self.real)

    @cached_property
    def fake(self) -> torch.Tensor:
        """All generated samples (gathered from every process when sharded)."""
        return distributed.all_gather_rows(self.fake_local)

    @cached_property
    def _fake_pass(self):
        """(features, logits or None) of this process's generated samples, from one network pass."""
        x = self.fake_local
        classes = getattr(self.extractor, "num_classes", 0) if self.extractor is not None else 0
        if self.kind == "vector" or self.extractor is None:
            return x.reshape(len(x), math.prod(x.shape[1:])).double().numpy(), None
        if len(x) == 0:  # a process with no share when there are more processes than sampling batches
            feats = np.zeros((0, self.real_features.shape[1]), dtype=np.float32)
            return feats, (np.zeros((0, classes), dtype=np.float32) if classes else None)
        if classes:
            return self.extractor.features_and_logits(x)
        return self.extractor.features(x), None

    @cached_property
    def fake_features(self) -> np.ndarray:
        local = self._fake_pass[0]
        if not self.sharded:
            return local
        return distributed.all_gather_rows(torch.from_numpy(np.ascontiguousarray(local))).numpy()

    @cached_property
    def fake_stats(self):
        """(mean, covariance) of the generated features, float64; reduced across processes when sharded."""
        from .fid import feature_stats, reduced_stats

        if not self.sharded:
            return feature_stats(self.fake_features)
        return reduced_stats(self._fake_pass[0], distributed.all_reduce_sum_np)

    @cached_property
    def fake_probs(self) -> np.ndarray:
        logits = self._fake_pass[1]
        if self.sharded:  # every process takes the same branch: the extractor is the same everywhere
            logits = None if logits is None else distributed.all_gather_rows(
                torch.from_numpy(np.ascontiguousarray(logits))).numpy()
        if logits is None:
            raise ConfigError("the Inception Score needs a classifier: pass --features with a classifier "
                              "(fashion_mnist, mnist or inception)")
        return torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=1).numpy()


# ----------------------------------------------------------------------------------- metrics

@METRICS.register("fid")
def _fid(s: EvalSet, /) -> Dict[str, float]:
    """Frechet distance between Gaussian fits of real and generated features."""
    from .fid import feature_stats, fid, fid_from_stats

    if s.sharded:  # statistics reduced across processes: no feature is gathered
        return {"fid": fid_from_stats(*feature_stats(s.real_features), *s.fake_stats)}
    return {"fid": fid(s.real_features, s.fake_features)}


@METRICS.register("kid")
def _kid(s: EvalSet, /, subsets: int = 100, subset_size: int = 1000) -> Dict[str, float]:
    """Kernel Inception Distance: unbiased MMD^2, cubic polynomial kernel, over random subsets
    of subset_size samples of each set (both sets need at least that many)."""
    from .kid import kid

    if subsets < 1 or subset_size < 2:
        raise ConfigError(f"kid needs subsets >= 1 and subset_size >= 2, got subsets={subsets}, "
                          f"subset_size={subset_size}")
    n_real, n_fake = len(s.real_features), len(s.fake_features)
    smaller = min(n_real, n_fake)
    if smaller < subset_size or (n_real == n_fake == subset_size and subsets > 1):
        problem = ("fewer samples than that" if smaller < subset_size else
                   "exactly that many, so every subset would be the whole of both sets and the standard "
                   "deviation over subsets would be 0")
        hint = f", e.g. --metrics kid:subset_size={max(2, smaller // 2)}" if smaller >= 4 else ""
        raise ConfigError(
            f"KID draws {subsets} random subsets of subset_size={subset_size} samples from each set, but there "
            f"are {n_real} real and {n_fake} generated samples, {problem}. Evaluate more samples (more than "
            f"{subset_size} in each set: --n N, or eval.n in a config) or choose a smaller subset size "
            f"(kid:subset_size=K in --metrics or eval.metrics{hint})")
    mean, std = kid(s.real_features, s.fake_features, subsets=subsets, subset_size=subset_size)
    return {"kid": mean, "kid_std": std}


@METRICS.register("is")
def _is(s: EvalSet, /, splits: int = 10) -> Dict[str, float]:
    """Inception-Score-style classifier score (10 splits)."""
    from .inception_score import inception_score

    mean, std = inception_score(s.fake_probs, splits=splits)
    return {"is": mean, "is_std": std}


@METRICS.register("pr")
def _pr(s: EvalSet, /, k: int = 3) -> Dict[str, float]:
    """Improved precision and recall (k-NN manifolds, k = 3)."""
    from .prdc import precision_recall

    p, r = precision_recall(s.real_features, s.fake_features, k=k)
    return {"precision": p, "recall": r}


@METRICS.register("dc")
def _dc(s: EvalSet, /, k: int = 5) -> Dict[str, float]:
    """Density and coverage (k = 5)."""
    from .prdc import density_coverage

    d, c = density_coverage(s.real_features, s.fake_features, k=k)
    return {"density": d, "coverage": c}


@METRICS.register("modes")
def _modes(s: EvalSet, /, n_sigma: float = 3.0) -> Dict[str, float]:
    """Toy mixtures: modes captured, % high-quality samples, reverse KL (VEEGAN/PacGAN protocol)."""
    from .modes import toy_mode_stats

    if s.modes is None:
        raise ConfigError("the 'modes' metric needs data with known modes (ring8, grid25, gaussian1d, mixture)")
    out = toy_mode_stats(s.fake, s.modes, s.mode_stds, n_sigma=n_sigma)
    return {"modes": float(out["modes_captured"]), "high_quality": float(out["high_quality"]),
            "reverse_kl": float(out["reverse_kl"])}


@METRICS.register("loglik")
def _loglik(s: EvalSet, /) -> Dict[str, float]:
    """Toy data: mean exact data log-density of the generated samples, E log p_data(G(z))."""
    if s.log_prob is None:
        raise ConfigError("the 'loglik' metric needs data with a known density (the toy mixtures)")
    return {"loglik": float(s.log_prob(s.fake.double()).mean())}


@METRICS.register("parzen")
def _parzen(s: EvalSet, /, n_validation: int = 1000) -> Dict[str, float]:
    """Parzen-window log-likelihood of the real samples under a Gaussian KDE of the generated ones
    (Goodfellow et al. 2014): sigma from logspace(-1, 0, 10) chosen on the last n_validation samples
    of the held-out (test) split, which the run never trained on and which are not scored."""
    from .parzen import parzen_evaluate

    if n_validation < 1:
        raise ConfigError(f"parzen.n_validation must be at least 1, got {n_validation}")
    pool = s.heldout
    # the validation rows are the last n_validation held-out samples; when ``real`` comes from the
    # same split, only its rows before them are scored, so no sample both picks sigma and is scored
    n_free = len(pool) - n_validation
    if n_free < (1 if s.real_in_heldout else 0):
        raise ConfigError(f"the held-out split holds {len(pool)} samples, too few to set {n_validation} aside for "
                          f"choosing the Parzen bandwidth and score the rest; choose fewer, e.g. --metrics "
                          f"parzen:n_validation={max(1, len(pool) // 10)}, or hold out more data")
    validation = pool[n_free:]
    test = s.real[:n_free] if s.real_in_heldout else s.real
    flat = lambda x: x.reshape(len(x), -1).double().numpy()  # noqa: E731
    out = parzen_evaluate(flat(s.fake), flat(validation), flat(test))
    return {"parzen": float(out["mean"]), "parzen_stderr": float(out["stderr"]), "parzen_sigma": float(out["sigma"]),
            "parzen_n_test": float(out["n_test"]), "parzen_n_validation": float(out["n_validation"])}


@METRICS.register("conditional_accuracy")
def _conditional_accuracy(s: EvalSet, /) -> Dict[str, float]:
    """Conditional runs: the share of generated samples that the data set's classifier (toy
    data: the nearest mode; data whose labels are computed from the samples, such as photos'
    colour classes: that rule) puts in the class they were generated for."""
    from .modes import conditional_accuracy

    want = s.fake_labels.long().numpy()
    if s.kind == "vector":
        if s.modes is None:
            raise ConfigError("conditional_accuracy on vectors needs data whose modes are its classes (the toy "
                              "mixtures)")
        modes = s.modes.double()
        # the nearest mode is the class: scores = minus the distance to each mode
        return {"conditional_accuracy": conditional_accuracy(s.fake.double(), want,
                                                             lambda x: -torch.cdist(x, modes).numpy())}
    if s.label_scores is not None:      # labels computed from the samples: the data set's own rule judges
        return {"conditional_accuracy": conditional_accuracy(s.fake, want, lambda x: s.label_scores(x).numpy())}
    probs = s.fake_probs
    if probs.shape[1] <= int(want.max()):
        raise ConfigError(f"the classifier has {probs.shape[1]} classes but samples were generated for class "
                          f"{int(want.max())}: use the data set's own classifier (--features)")
    return {"conditional_accuracy": conditional_accuracy(probs, want, lambda p: p)}


@METRICS.register("intra_fid")
def _intra_fid(s: EvalSet, /, min_per_class: int = 50) -> Dict[str, float]:
    """Conditional runs: FID within each class (real samples of class c against samples generated
    for c, in the same features), averaged over the classes (Miyato & Koyama 2018)."""
    from .fid import fid

    if s.real_labels is None:
        raise ConfigError("intra_fid needs real data with labels")
    fake_y = s.fake_labels.long().numpy()
    real_y = s.real_labels.long().numpy()
    scores = []
    for c in np.unique(real_y):
        r, f = s.real_features[real_y == c], s.fake_features[fake_y == c]
        if min(len(r), len(f)) < min_per_class:
            raise ConfigError(f"intra_fid: class {c} has {len(r)} real and {len(f)} generated samples, fewer than "
                              f"min_per_class={min_per_class}; evaluate more samples (--n)")
        scores.append(fid(r, f))
    return {"intra_fid": float(np.mean(scores))}


def _outputs_and_targets(s: EvalSet) -> Tuple[torch.Tensor, torch.Tensor]:
    if s.fake_targets is None:
        raise ConfigError("this metric compares outputs with their targets: evaluate a run of a method given image "
                          "inputs (pix2pix) on paired data (data.pairs), whose held-out inputs it translates")
    return s.fake, s.fake_targets


@METRICS.register("l1")
def _l1(s: EvalSet, /) -> Dict[str, float]:
    """Paired runs: mean absolute error (pixels in [0, 1]) of the outputs for the held-out inputs
    against their targets."""
    from .paired import l1_error

    return {"l1": float(l1_error(*_outputs_and_targets(s)).mean())}


@METRICS.register("psnr")
def _psnr(s: EvalSet, /) -> Dict[str, float]:
    """Paired runs: peak signal-to-noise ratio (dB) of the outputs against their targets, per image, averaged."""
    from .paired import psnr

    return {"psnr": float(psnr(*_outputs_and_targets(s)).mean())}


@METRICS.register("ssim")
def _ssim(s: EvalSet, /) -> Dict[str, float]:
    """Paired runs: structural similarity (11x11 Gaussian window) of the outputs and their targets."""
    from .paired import ssim

    return {"ssim": float(ssim(*_outputs_and_targets(s)).mean())}


@METRICS.register("sharpness")
def _sharpness(s: EvalSet, /) -> Dict[str, float]:
    """Paired runs: the outputs' gradient energy over their targets' (1: as much fine detail as the
    data; below 1: blur, the regressor's average of the possible outputs)."""
    from .paired import gradient_energy

    out, target = _outputs_and_targets(s)
    return {"sharpness": float(gradient_energy(out).mean() / max(gradient_energy(target).mean(), 1e-12))}


@METRICS.register("bicubic")
def _bicubic(s: EvalSet, /) -> Dict[str, float]:
    """Super-resolution runs: the baseline. l1, psnr, ssim and sharpness (bicubic_*) of bicubic
    upsampling of the same held-out low-resolution inputs against the same targets, and its
    FID (bicubic_fid) when the evaluation computes features (another metric needs them)."""
    from .paired import bicubic_upsample, gradient_energy, l1_error, psnr, ssim

    _, target = _outputs_and_targets(s)
    up = bicubic_upsample(s.output("input"), target.shape[-2:])
    out = {"bicubic_l1": float(l1_error(up, target).mean()), "bicubic_psnr": float(psnr(up, target).mean()),
           "bicubic_ssim": float(ssim(up, target).mean()),
           "bicubic_sharpness": float(gradient_energy(up).mean() / max(gradient_energy(target).mean(), 1e-12))}
    if s.extractor is not None:
        from .fid import fid

        out["bicubic_fid"] = fid(s.real_features, s._features(up.float()))
    return out


@METRICS.register("fid_stage1")
def _fid_stage1(s: EvalSet, /) -> Dict[str, float]:
    """Two-stage runs (stackgan): FID of the first stage's pictures (the output ``stage1``)
    against the real pictures averaged down to that size (each block of factor x factor pixels
    to its mean); both are then enlarged alike (nearest neighbour) to the real pictures' size,
    which the feature extractor takes."""
    from .fid import fid

    stage1, real = s.output("stage1"), s.real
    factor = real.shape[-1] // stage1.shape[-1]
    if stage1.dim() != 4 or factor < 1 or tuple(stage1.shape[-2:]) != (real.shape[-2] // factor,
                                                                      real.shape[-1] // factor):
        raise ConfigError(f"fid_stage1: the first stage's pictures ({tuple(stage1.shape[1:])}) are not the real "
                          f"pictures ({tuple(real.shape[1:])}) made smaller by a whole factor")
    size = tuple(real.shape[-2:])

    def up(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x.float(), size=size, mode="nearest")

    small = torch.nn.functional.avg_pool2d(real.float(), factor)
    return {"fid_stage1": fid(s._features(up(small)), s._features(up(stage1)))}


def _completions(s: EvalSet, metric: str) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(completions, targets, masks, inputs) of a completion run's held-out pictures."""
    if s.fake_targets is None or "mask" not in s.outputs_local or "input" not in s.outputs_local:
        raise ConfigError(f"{metric} measures completions inside their masks: evaluate a run of method inpaint (on "
                          "data.pairs=mask, mask_centre or mask_free), which completes the held-out pictures")
    return s.fake, s.fake_targets, s.output("mask"), s.output("input")


@METRICS.register("masked_l1")
def _masked_l1(s: EvalSet, /) -> Dict[str, float]:
    """Completion runs: mean absolute error (pixels in [0, 1]) inside the masks of the held-out
    pictures; masked_l1_fill: the same for the trivial completion that fills each hole with the
    mean of its picture's known pixels (the baseline to beat)."""
    from .paired import masked_l1_error, mean_fill

    out, target, mask, picture = _completions(s, "masked_l1")
    return {"masked_l1": float(masked_l1_error(out, target, mask).mean()),
            "masked_l1_fill": float(masked_l1_error(mean_fill(picture, mask), target, mask).mean())}


@METRICS.register("masked_psnr")
def _masked_psnr(s: EvalSet, /) -> Dict[str, float]:
    """Completion runs: PSNR (dB) inside the masks of the held-out pictures, per image, averaged;
    masked_psnr_fill: the trivial mean-of-known-pixels completion's."""
    from .paired import masked_psnr, mean_fill

    out, target, mask, picture = _completions(s, "masked_psnr")
    return {"masked_psnr": float(masked_psnr(out, target, mask).mean()),
            "masked_psnr_fill": float(masked_psnr(mean_fill(picture, mask), target, mask).mean())}


@METRICS.register("cycle_error")
def _cycle_error(s: EvalSet, /) -> Dict[str, float]:
    """Unpaired translation: mean absolute difference (pixels in [0, 1]) between each held-out
    input and its reconstruction, the translation translated back: mean |a - G_BA(G_AB(a))|."""
    from .paired import l1_error

    return {"cycle_error": float(l1_error(s.output("reconstruction"), s.output("input")).mean())}


@METRICS.register("translation_accuracy")
def _translation_accuracy(s: EvalSet, /, classifier: str = "fashion_mnist") -> Dict[str, float]:
    """Unpaired translation of labelled held-out inputs: the share of translations that the
    classifier (default: the shipped Fashion-MNIST one) puts in their input's class, i.e. the
    content survived the change of style. The classifier takes grey 28x28 pictures: colour
    ones are turned grey by the mean of their channels (and resized), as its extractor does.
    Beside it, the same classifier on the real images of the target domain with their labels
    (translation_accuracy_real: what a translation as recognisable as real target pictures
    scores) and on the inputs themselves (translation_accuracy_input: the identity mapping's)."""
    from .modes import conditional_accuracy

    if s.fake_labels_local is None:
        raise ConfigError("translation_accuracy needs translations of labelled inputs: evaluate a translation run "
                          "(e.g. method cyclegan) whose input domain has labels (fashion_mnist ...)")
    ext = s.extractor
    if ext is None or getattr(ext, "name", None) != classifier or not getattr(ext, "num_classes", 0):
        ext = get_extractor(classifier, "translation_accuracy:classifier")
    want = s.fake_labels.long().numpy()
    if int(want.max(initial=0)) >= ext.num_classes:
        raise ConfigError(f"the classifier '{classifier}' has {ext.num_classes} classes but the inputs have label "
                          f"{int(want.max())}: choose the classifier of the input domain (translation_accuracy:"
                          f"classifier=NAME)")
    score = lambda x, y: conditional_accuracy(ext.logits(x), y, lambda p: p)   # noqa: E731
    out = {"translation_accuracy": score(s.fake, want), "translation_accuracy_input": score(s.output("input"), want)}
    if s.real_labels is not None and len(s.real):
        out["translation_accuracy_real"] = score(s.real, s.real_labels.long().numpy())
    return out


@METRICS.register("domain_accuracy")
def _domain_accuracy(s: EvalSet, /) -> Dict[str, float]:
    """Multi-domain translation (stargan): the share of translations that a classifier of the
    domains, trained on the run's real training pictures (:mod:`gankit.metrics.domain`), puts in
    their target domain (domain_accuracy_real: its accuracy on real pictures it was not trained
    on, the ceiling; domain_accuracy_input: how often the untranslated inputs already are in
    the target domain, the identity mapping's score). Two-domain translation (cyclegan,
    shared_latent: data -> data_b): the classifier of the two domains is trained on real
    training pictures of both (the first 5,000 of each) and the target is domain B."""
    from .domain import accuracy, domain_classifier, match_channels

    if "domain" not in s.outputs_local and s._domains is not None:   # two domains (cyclegan, shared_latent): A -> B
        key, x, domain = s._domains()
        net, real_acc = domain_classifier(key, x, domain, 2, cache_dir())
        target = torch.ones(len(s.fake), dtype=torch.long)
        return {"domain_accuracy": accuracy(net, match_channels(s.fake, x.shape[1]), target),
                "domain_accuracy_real": real_acc,
                "domain_accuracy_input": accuracy(net, match_channels(s.output("input"), x.shape[1]), target)}
    target = s.output("domain")
    section, data = s.train_data
    if "domain" not in data.extra:
        raise ConfigError("domain_accuracy needs training data with a label field 'domain' (e.g. data "
                          "fashion_mnist_styles)")
    k = data.fields()["domain"].n_classes
    net, real_acc = domain_classifier(dict(section), data.x, data.extra["domain"], k, cache_dir())
    return {"domain_accuracy": accuracy(net, s.fake, target), "domain_accuracy_real": real_acc,
            "domain_accuracy_input": accuracy(net, s.output("input"), target)}


@METRICS.register("copies")
def _copies(s: EvalSet, /, distance: str = "shift", max_train: int = 10_000) -> Dict[str, float]:
    """Memorisation: the fraction of generated samples closer to a training sample than 99% of
    held-out real samples are (shift-tolerant pixel distance by default)."""
    from .memorization import memorization_report

    train = s.train[:max_train]
    kw = {"features": s.extractor.features} if distance == "features" and s.extractor is not None else {}
    out = memorization_report(s.fake.numpy(), train.numpy(), heldout=s.real.numpy(), metric=distance, **kw)
    if s.figures is not None and s.kind == "image":
        from .memorization import save_neighbours_figure

        order = np.argsort(out["nn_distances"])  # the closest samples first: the likeliest copies
        save_neighbours_figure(s.fake.numpy()[order], train.numpy(), out["nn_indices"][order], s.figures /
                               "nearest_training_images.png", distances=out["nn_distances"][order],
                               title=f"{len(out['near_copies'])} of {len(s.fake)} samples are near-copies ({distance})")
    return {"near_copies": float(out["fraction"]), "copy_threshold": float(out["threshold"])}


@METRICS.register("birthday")
def _birthday(s: EvalSet, /, trials: int = 100) -> Dict[str, float]:
    """Birthday-paradox support estimate (Arora & Zhang 2017) from near-duplicate collisions."""
    from .birthday import birthday_test

    sizes = tuple(b for b in (10, 20, 50, 100, 200) if b <= min(len(s.fake), len(s.real)))
    out = birthday_test(s.fake.numpy(), s.real.numpy(), batch_sizes=sizes, trials=trials)
    return {"support": float(out["support_estimate"]),
            **{f"collision_p_{b}": float(p) for b, p in zip(out["batch_sizes"], out["collision_prob"])}}


def default_metrics(kind: str, has_modes: bool) -> List[str]:
    if kind == "tokens":   # token sequences: the sequence method's own metrics (gankit.metrics.sequences)
        return []
    if kind == "image":
        return ["fid", "kid", "is", "pr", "dc"]
    return ["modes", "loglik", "fid", "pr"] if has_modes else ["fid", "kid", "pr", "dc"]


def parse_spec(spec: str, registry, key: str, example: str) -> Tuple[str, Dict[str, object]]:
    """``"NAME"`` or ``"NAME:KEY=VALUE[:KEY=VALUE...]"`` -> ``(NAME, {every parameter})``: an entry
    of ``registry`` with its parameters (values read as YAML: 500, 0.5, true), checked against
    the entry's signature, defaults filled in."""
    import yaml

    name, *parts = str(spec).strip().split(":")
    name = name.strip()
    registry.entry(name, key)
    params: Dict[str, object] = {}
    for part in parts:
        k, eq, v = part.partition("=")
        if not eq or not k.strip():
            raise ConfigError(f"{key}: {spec!r}: write parameters as NAME:KEY=VALUE, e.g. {example}")
        try:
            params[k.strip()] = yaml.safe_load(v) if v.strip() else None
        except yaml.YAMLError:
            params[k.strip()] = v.strip()
    return name, registry.resolve_params(name, params, name)


def parse_metric(spec: str, key: str = "--metrics") -> Tuple[str, Dict[str, object]]:
    """``"kid"`` -> ``("kid", {defaults})``; ``"kid:subset_size=500:subsets=50"`` -> ``("kid", {...})``.

    A metric's parameters (``gankit list`` shows them) follow its name, each as ``:key=value``
    (the value read as YAML: 500, 0.5, true); they are checked against the metric's signature.
    """
    return parse_spec(spec, METRICS, key, "kid:subset_size=500")


def metric_names(metrics: Sequence[str]) -> List[str]:
    """The bare metric names of a list of specs (``kid:subset_size=500`` -> ``kid``)."""
    return [str(m).split(":", 1)[0].strip() for m in metrics]


def evaluate(s: EvalSet, metrics: Sequence[str]) -> Dict[str, float]:
    """Every metric of ``metrics`` (names, or specs with parameters: see :func:`parse_metric`) on ``s``."""
    parsed = [parse_metric(spec) for spec in metrics]  # every spec is checked before any work is done
    out: Dict[str, float] = {}
    for name, params in parsed:
        out.update(METRICS.get(name)(s, **params))
    return out


# ----------------------------------------------------------------------------------- references

#: Fashion-MNIST-M's pictures go to the Fashion-MNIST classifier turned grey (the mean of their
#: channels): the one feature space in which translations from Fashion-MNIST can be compared
#: with them offline (Inception needs a weights file)
_AUTO_FEATURES = {"fashion_mnist": "fashion_mnist", "mnist": "mnist", "fashion_mnist_m": "fashion_mnist",
                  "fashion_mnist_styles": "fashion_mnist", "fashion_mnist_text": "fashion_mnist"}


def auto_features(data_cfg: Dict, kind: str) -> Optional[str]:
    """The extractor ``--features auto`` picks: the data set's own classifier, else Inception."""
    if kind != "image":
        return None
    return _AUTO_FEATURES.get(data_cfg["name"], "inception")


def get_extractor(spec: Optional[str], key: str = "--features"):
    """The feature extractor a spec names: ``NAME`` or ``NAME:KEY=VALUE...`` with the
    extractor's parameters (``pixels:image_size=32``, ``mnist:weights=PATH``); None for none."""
    if spec is None or spec == "none":
        return None
    from ..registries import FEATURES
    from .features import get_extractor as _get

    name, params = parse_spec(spec, FEATURES, key, "pixels:image_size=32")
    return _get(name, **params)


def reference_features(data_cfg: Dict, split: str, n: int, extractor, loader: Callable[[], object]) -> np.ndarray:
    """Features of the first ``n`` real samples of a split, cached on disk."""
    key = json.dumps({"data": {k: v for k, v in data_cfg.items() if k != "split"}, "split": split, "n": n,
                      "extractor": extractor.name, "checksum": extractor.checksum}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    path = cache_dir() / f"{data_cfg['name']}-{split}-{extractor.name}-{digest}.npz"
    if path.is_file():
        try:
            with np.load(path) as f:
                if f["key"].item() == key:
                    return f["features"]
        except Exception:
            pass  # a damaged cache file is recomputed
    real = loader()
    feats = extractor.features(real[:n])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}.npz")
        np.savez(tmp, features=feats, key=np.array(key))
        os.replace(tmp, path)
    except OSError:
        pass  # caching is an optimisation; a read-only home must not stop an evaluation
    return feats


def evaluate_run(run, metrics: Optional[Sequence[str]] = None, n: int = 10_000, features: str = "auto",
                 split: str = "test", seed: int = 0, real_data=None, extractor=None,
                 figures: Optional[Path] = None) -> Dict[str, float]:
    """Evaluate a run's generator against the ``split`` of its data set.

    The data set is the one the method's contract names as its ``reference`` (a further
    source: cyclegan's translations are judged against domain B, ``data_b``), else ``data``.
    ``real_data`` (a loaded :class:`~gankit.data.base.Dataset` of that split) and ``extractor``
    may be passed in to avoid reloading them (periodic evaluation does).
    """
    info = run.info
    source = reference_source(run)
    section = data_section(run, source)
    trained_split, heldout_split = _splits(run, source)
    real_split = split
    if real_data is None:
        real_data, real_split = load_reference(run, split)
    elif real_data is _training_data(run, source):  # a data set without splits: the training data
        real_split = trained_split
    if not metrics:   # the distribution metrics, and those the method declares for itself
        # (a method that generates nothing, such as dann's classifier, is judged by its own alone)
        metrics = (default_metrics(info.kind, real_data.modes is not None)
                   if getattr(run.method, "generates", True) else [])
        metrics += [m for m in run.method.contract.metrics if m not in metrics]
        if info.kind == "tokens" and real_data.log_prob is None:   # no oracle behind the data
            metrics = [m for m in metrics if m != "nll_oracle"]
    metrics = list(metrics)
    for spec in metrics:  # a misspelt metric or parameter stops before any sample is drawn
        parse_metric(spec)
    names = metric_names(metrics)
    if extractor is None and info.kind == "image" and not set(names) <= PIXEL_METRICS:
        extractor = get_extractor(auto_features(section, info.kind) if features == "auto" else features)
    sharded = distributed.world_size() > 1
    given, targets = _paired_inputs(run, real_data, n)
    given_inputs, input_labels = _input_conditions(run, n, split)
    given.update(given_inputs)
    if sharded:
        lo, hi = _share_bounds(n)
        generated = _sample_share(run, n, seed, {k: v[lo:hi] for k, v in given.items()})
        targets = targets[lo:hi] if targets is not None else None
        input_labels = input_labels[lo:hi] if input_labels is not None else None
    else:
        generated = run.generate(n, seed=seed, given=given)
    fake = generated["x"]
    n_real = min(n, len(real_data))
    if info.kind == "image":
        real = real_data.x[:n_real].float().div(255.0)
        real_feats = None
        if extractor is not None and any(m in names for m in ("fid", "kid", "pr", "dc")):
            real_feats = distributed.run_on_main(  # rank 0 reads or fills the cache; the others get a copy
                lambda: reference_features(section, split, n_real, extractor, lambda: real))
    else:
        real, real_feats = real_data.x[:n_real], None
    real_is_heldout = heldout_split is not None and real_split == heldout_split
    s = EvalSet(real, fake, info.kind, extractor, real_features=real_feats, modes=real_data.modes,
                mode_stds=real_data.mode_stds, log_prob=real_data.log_prob, label_scores=real_data.label_scores,
                train=lambda: _train_samples(run, source), figures=figures if distributed.is_main() else None,
                sharded=sharded, heldout=lambda: _heldout_samples(run, real_data if real_is_heldout else None, source),
                real_in_heldout=real_is_heldout, fake_labels=generated.get("y", input_labels),
                real_labels=real_data.y[:n_real] if real_data.y is not None else None, fake_targets=targets,
                outputs={k: v for k, v in generated.items() if k not in ("x", "y")},
                train_data=lambda: (data_section(run, source), _training_dataset(run, source)),
                domains=(lambda: _two_domains(run, source)) if source is not None else None,
                method=run.method)
    return evaluate(s, metrics)


def reference_source(run) -> Optional[str]:
    """The further source a run's generated samples are judged against (its method's contract's
    ``reference``), or None for the main data."""
    source = getattr(run.method.contract, "reference", None)
    return source if source and source in run.config.sources else None


def data_section(run, source: Optional[str] = None) -> Dict:
    """The config section of the main data (``data``) or of a further source (``data_SOURCE``)."""
    return run.config.data if source is None else run.config.sources[source]


def _training_data(run, source: Optional[str] = None):
    return run.data if source is None else run.sources.get(source)


def load_reference(run, split: str) -> Tuple[object, str]:
    """(the data set a run's samples are judged against, at ``split`` when it has one, else its
    training data, and the split that is)."""
    from ..data.base import build_data

    source = reference_source(run)
    try:
        return build_data(run.config, split=split, source=source), split
    except ConfigError:
        data = _training_data(run, source)
        return (data if data is not None else build_data(run.config, source=source)), _splits(run, source)[0]


def _input_conditions(run, n: int, split: str) -> Tuple[Dict[str, torch.Tensor], Optional[torch.Tensor]]:
    """For a method whose conditions take samples of a data field (the contract's ``inputs``:
    cyclegan's ``input``, a picture of domain A): that field's samples of the main data's
    ``split`` (its training data when it has no splits) for ``n`` samples (cycling; model
    space), and their labels where it has them. Otherwise ({}, None)."""
    from ..data.base import build_data

    inputs = dict(getattr(run.method.contract, "inputs", None) or {})
    if not inputs:
        return {}, None
    try:
        data = build_data(run.config, split=split)
    except ConfigError:
        data = run.data if run.data is not None else build_data(run.config)
    if len(data) == 0:
        return {}, None
    fields = data.tensors()
    idx = torch.arange(n) % len(data)
    # pictures into model space, labels (stargan's source domain) as they are
    given = {cond: data.to_model({name: fields[name][idx]})[name] for cond, name in inputs.items() if name in fields}
    return given, (data.y[idx] if data.y is not None else None)


def _paired_inputs(run, real_data, n: int) -> Tuple[Dict[str, torch.Tensor], Optional[torch.Tensor]]:
    """For a method conditioned on images that the real data holds (pix2pix on ``data.pairs``
    data): the real data's inputs for ``n`` samples (cycling through it; model space) and their
    targets (data space), so the outputs are judged against what they should have been.
    Otherwise ({}, None): conditions are drawn as in sampling."""
    fields = real_data.tensors()
    names = [k for k in run.method.contract.conditions
             if k in fields and k in run.info.fields and run.info.fields[k].kind == "image"]
    if not names or len(real_data) == 0:
        return {}, None
    idx = torch.arange(n) % len(real_data)
    given = {k: fields[k][idx].float().div(127.5).sub(1.0) for k in names}
    return given, real_data.x[idx].float().div(255.0)


def _splits(run, source: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """(the split the run trained on, the other one or None when its data set (``data``, or
    the further source ``source``) has no splits)."""
    from ..registries import DATASETS

    section = data_section(run, source)
    trained = str(section.get("split", "train"))
    if "split" not in DATASETS.entry(section["name"]).params:
        return trained, None
    return trained, ("test" if trained == "train" else "train")


def _heldout_samples(run, data=None, source: Optional[str] = None) -> torch.Tensor:
    """Every sample of the split ``run`` never trained on (``data`` when it is already loaded)
    of its data (or of the further source ``source``), in data space: images in [0, 1],
    vectors as they are."""
    from ..data.base import build_data
    from ..errors import DataError

    trained, other = _splits(run, source)
    if data is None:
        if other is None:
            raise ConfigError(f"data set '{data_section(run, source)['name']}' has no held-out split, and this metric "
                              f"needs samples the run never trained on")
        try:
            data = build_data(run.config, split=other, source=source)
        except (ConfigError, DataError) as exc:
            raise ConfigError(f"this metric needs samples the run never trained on (the {other} split; it "
                              f"trained on the {trained} split), but they cannot be loaded: {exc}") from None
    return data.x.float().div(255.0) if data.kind == "image" else data.x


def _share_bounds(n: int) -> Tuple[int, int]:
    """The first and stop index of this process's share of ``n`` samples (see :func:`_sample_share`)."""
    from ..methods.base import SAMPLE_BATCH as batch

    n_batches = math.ceil(n / batch)
    r, w = distributed.rank(), distributed.world_size()
    return min(r * n_batches // w * batch, n), min((r + 1) * n_batches // w * batch, n)


def _sample_share(run, n: int, seed: int, given: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
    """This process's contiguous share of the ``n`` samples ``run.generate(n, seed=seed)`` draws
    (every named output).

    The samples are cut at the sampling batches of ``method.sample``; process r takes a
    contiguous run of whole batches, lets the method skip the random draws of the batches
    before it (drawn and dropped: cheap) and generates only its own, so the shares, in rank
    order, are exactly the single-process samples. ``given`` holds this share's conditions.
    """
    from ..methods.base import SAMPLE_BATCH as batch

    n_batches = math.ceil(n / batch)
    r, w = distributed.rank(), distributed.world_size()
    first, stop = r * n_batches // w, (r + 1) * n_batches // w
    g = torch.Generator().manual_seed(seed)
    lo, hi = first * batch, min(stop * batch, n)
    out = run.method.sample(max(hi - lo, 0), given=given, generator=g, batch_size=batch, skip_batches=first)
    return {k: run._to_user(k, v) for k, v in out.items()}


def _training_dataset(run, source: Optional[str] = None):
    from ..data.base import build_data

    data = _training_data(run, source)
    return data if data is not None else build_data(run.config, split="train", source=source)


def _two_domains(run, source: str, per_domain: int = 5000) -> Tuple[Dict, torch.Tensor, torch.Tensor]:
    """(a key of the data, the first ``per_domain`` training pictures of the main data (domain 0)
    and of the further source ``source`` (domain 1) in a seeded shuffled order, their domains),
    for the classifier of a two-domain run's domains."""
    from .domain import two_domains

    x_a, x_b = (_training_dataset(run, s).x for s in (None, source))
    key = {"a": dict(data_section(run)), "b": dict(data_section(run, source)), "per_domain": per_domain}
    return (key, *two_domains(x_a[:per_domain], x_b[:per_domain]))


def _train_samples(run, source: Optional[str] = None) -> torch.Tensor:
    data = _training_dataset(run, source)
    return data.x.float().div(255.0) if data.kind == "image" else data.x


class Evaluator:
    """Periodic evaluation during training: loads the real split and the extractor once."""

    #: metric keys where a smaller value is better (the trainer keeps best.pt by them)
    lower_is_better = LOWER_IS_BETTER

    def __init__(self, run):
        ec = run.config.eval
        self.run, self.cfg = run, ec
        self.real = distributed.local_main_first(lambda: load_reference(run, ec.split)[0],
                                                 "loading the evaluation data")
        self.extractor = None
        if run.info.kind == "image":
            section = data_section(run, reference_source(run))
            self.extractor = get_extractor(auto_features(section, "image") if ec.features == "auto"
                                           else ec.features)
        for spec in ec.metrics:
            parse_metric(spec, "eval.metrics")

    def __call__(self) -> Dict[str, float]:
        ec = self.cfg
        return evaluate_run(self.run, ec.metrics, n=ec.n, features=ec.features, split=ec.split,
                            real_data=self.real, extractor=self.extractor)


def load_samples(path) -> tuple:
    """An image folder, .npz or .npy -> (float tensor, kind): images in [0, 1] or vectors."""
    from ..data.images import array, folder
    from ..errors import DataError

    p = Path(path)
    if p.is_dir():
        ds = folder(root=str(p), image_size=None)
    elif p.suffix.lower() in (".npz", ".npy"):
        ds = array(path=str(p))
    elif not p.exists():
        raise DataError(f"{p} does not exist; give an image folder, an .npz or an .npy file")
    else:
        raise DataError(f"{p} is neither an image folder nor an .npz/.npy file")
    return (ds.x.float().div(255.0), "image") if ds.kind == "image" else (ds.x.double(), "vector")


def evaluate_paths(real_path, fake_path, metrics: Optional[Sequence[str]] = None,
                   features: str = "auto") -> Dict[str, float]:
    """Evaluate two sample sets on disk. 2-D arrays are taken as features as they are;
    images go through the extractor (``auto``: Inception, the field's standard)."""
    real, kind_r = load_samples(real_path)
    fake, kind_f = load_samples(fake_path)
    if kind_r != kind_f:
        raise ConfigError(f"{real_path} holds {kind_r} data but {fake_path} holds {kind_f} data")
    extractor = None
    if kind_r == "image":
        extractor = get_extractor("inception" if features == "auto" else features)
    metrics = list(metrics) if metrics else default_metrics(kind_r, False)
    for spec in metrics:
        parse_metric(spec)
    if kind_r == "vector" and "is" in metric_names(metrics):
        raise ConfigError("the Inception Score needs images and a classifier, not feature arrays")
    return evaluate(EvalSet(real, fake, kind_r, extractor), metrics)



#: metrics that compare a sample set with the real data alone, so the data's own training
#: samples can take the generated samples' place (the reference a perfect generator would get)
REFERENCE_METRICS = ("fid", "kid", "is", "pr", "dc", "modes", "loglik", "conditional_accuracy")


def evaluate_reference(run, metrics: Optional[Sequence[str]] = None, n: int = 10_000, features: str = "auto",
                       split: str = "test", seed: int = 0) -> Dict[str, float]:
    """The real-data reference of an evaluation: ``n`` samples of the training split, drawn in
    a seeded order, scored by ``metrics`` against the same ``split`` as the run's samples are
    (with their labels as the classes they stand for). Only :data:`REFERENCE_METRICS` have a
    reference (the others need what a generator makes: translations, reconstructions); the
    others are left out of the result; ``metrics`` None: those :func:`evaluate_run` evaluates
    by default. Evaluating a run on its training split has no
    reference, since the two sets would be the same samples."""
    source = reference_source(run)
    section = data_section(run, source)
    trained_split, _ = _splits(run, source)
    if split == trained_split:
        raise ConfigError(f"the reference scores the training split ({trained_split}) as if generated, so it "
                          f"needs evaluation against another split; use --split test")
    real_data, _ = load_reference(run, split)
    if not metrics:   # what evaluate_run evaluates by default
        metrics = default_metrics(run.info.kind, real_data.modes is not None) + list(run.method.contract.metrics)
    chosen = [m for m in metrics if parse_metric(m)[0] in REFERENCE_METRICS]
    if not chosen:
        return {}
    train = _training_dataset(run, source)
    order = torch.randperm(len(train.x), generator=torch.Generator().manual_seed(seed))[:n]
    names = metric_names(chosen)
    if "conditional_accuracy" in names and train.y is None:
        chosen = [m for m in chosen if parse_metric(m)[0] != "conditional_accuracy"]
    n_real = min(n, len(real_data))
    extractor = None
    if train.kind == "image":
        real, fake = real_data.x[:n_real].float().div(255.0), train.x[order].float().div(255.0)
        if not set(metric_names(chosen)) <= PIXEL_METRICS:
            extractor = get_extractor(auto_features(section, train.kind) if features == "auto" else features)
    else:
        real, fake = real_data.x[:n_real], train.x[order]
    labels = train.y[order] if train.y is not None and train.y.dim() == 1 else None
    s = EvalSet(real, fake, train.kind, extractor, modes=real_data.modes, mode_stds=real_data.mode_stds,
                log_prob=real_data.log_prob, label_scores=real_data.label_scores, fake_labels=labels,
                real_labels=real_data.y[:n_real] if real_data.y is not None else None)
    return evaluate(s, chosen)
