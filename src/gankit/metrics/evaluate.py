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
LOWER_IS_BETTER = {"fid", "kid", "reverse_kl", "kl", "near_copies", "intra_fid"}


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

    ``heldout`` loads the samples of the split the run never trained on (same space as
    ``real``); ``real_in_heldout`` says that ``real`` is the first ``len(real)`` of them, so a
    metric that needs further held-out samples (Parzen's validation set) can take others.
    """

    def __init__(self, real: torch.Tensor, fake: torch.Tensor, kind: str, extractor=None,
                 real_features: Optional[np.ndarray] = None, modes=None, mode_stds=None, log_prob=None,
                 train: Optional[Callable[[], torch.Tensor]] = None, figures: Optional[Path] = None,
                 sharded: bool = False, heldout: Optional[Callable[[], torch.Tensor]] = None,
                 real_in_heldout: bool = False, fake_labels: Optional[torch.Tensor] = None,
                 real_labels: Optional[torch.Tensor] = None):
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
        self._train = train
        self._heldout, self.real_in_heldout = heldout, bool(real_in_heldout and heldout is not None)
        self.figures = Path(figures) if figures is not None else None  #: where metrics may draw pictures
        self.fake_labels_local = fake_labels   #: the class each generated sample was asked for (conditional runs)
        self.real_labels = real_labels         #: the class of each real sample, where the data has labels

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
    data: the nearest mode) puts in the class they were generated for."""
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

_AUTO_FEATURES = {"fashion_mnist": "fashion_mnist", "mnist": "mnist"}


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

    ``real_data`` (a loaded :class:`~gankit.data.base.Dataset` of that split) and ``extractor``
    may be passed in to avoid reloading them (periodic evaluation does).
    """
    from ..data.base import build_data

    info = run.info
    trained_split, heldout_split = _splits(run)
    real_split = split
    if real_data is None:
        try:
            real_data = build_data(run.config, split=split)
        except ConfigError:
            real_data, real_split = build_data(run.config), trained_split
    elif run.data is not None and real_data is run.data:  # a data set without splits: the training data
        real_split = trained_split
    if extractor is None and info.kind == "image":
        extractor = get_extractor(auto_features(run.config.data, info.kind) if features == "auto" else features)
    if not metrics:   # the distribution metrics, and those the method declares for itself
        metrics = default_metrics(info.kind, real_data.modes is not None)
        metrics += [m for m in run.method.contract.metrics if m not in metrics]
    metrics = list(metrics)
    for spec in metrics:  # a misspelt metric or parameter stops before any sample is drawn
        parse_metric(spec)
    names = metric_names(metrics)
    sharded = distributed.world_size() > 1
    generated = _sample_share(run, n, seed) if sharded else run.generate(n, seed=seed)
    fake = generated["x"]
    n_real = min(n, len(real_data))
    if info.kind == "image":
        real = real_data.x[:n_real].float().div(255.0)
        real_feats = None
        if extractor is not None and any(m in names for m in ("fid", "kid", "pr", "dc")):
            real_feats = distributed.run_on_main(  # rank 0 reads or fills the cache; the others get a copy
                lambda: reference_features(run.config.data, split, n_real, extractor, lambda: real))
    else:
        real, real_feats = real_data.x[:n_real], None
    real_is_heldout = heldout_split is not None and real_split == heldout_split
    s = EvalSet(real, fake, info.kind, extractor, real_features=real_feats, modes=real_data.modes,
                mode_stds=real_data.mode_stds, log_prob=real_data.log_prob,
                train=lambda: _train_samples(run), figures=figures if distributed.is_main() else None,
                sharded=sharded, heldout=lambda: _heldout_samples(run, real_data if real_is_heldout else None),
                real_in_heldout=real_is_heldout, fake_labels=generated.get("y"),
                real_labels=real_data.y[:n_real] if real_data.y is not None else None)
    return evaluate(s, metrics)


def _splits(run) -> Tuple[str, Optional[str]]:
    """(the split the run trained on, the other one or None when its data set has no splits)."""
    from ..registries import DATASETS

    trained = str(run.config.data.get("split", "train"))
    if "split" not in DATASETS.entry(run.config.data["name"]).params:
        return trained, None
    return trained, ("test" if trained == "train" else "train")


def _heldout_samples(run, data=None) -> torch.Tensor:
    """Every sample of the split ``run`` never trained on (``data`` when it is already loaded),
    in data space: images in [0, 1], vectors as they are."""
    from ..data.base import build_data
    from ..errors import DataError

    trained, other = _splits(run)
    if data is None:
        if other is None:
            raise ConfigError(f"data set '{run.config.data['name']}' has no held-out split, and this metric needs "
                              f"samples the run never trained on")
        try:
            data = build_data(run.config, split=other)
        except (ConfigError, DataError) as exc:
            raise ConfigError(f"this metric needs samples the run never trained on (the {other} split; it "
                              f"trained on the {trained} split), but they cannot be loaded: {exc}") from None
    return data.x.float().div(255.0) if data.kind == "image" else data.x


def _sample_share(run, n: int, seed: int) -> Dict[str, torch.Tensor]:
    """This process's contiguous share of the ``n`` samples ``run.generate(n, seed=seed)`` draws
    (every named output).

    The samples are cut at the sampling batches of ``method.sample``; process r takes a
    contiguous run of whole batches, lets the method skip the random draws of the batches
    before it (drawn and dropped: cheap) and generates only its own, so the shares, in rank
    order, are exactly the single-process samples.
    """
    from ..methods.base import SAMPLE_BATCH as batch

    n_batches = math.ceil(n / batch)
    r, w = distributed.rank(), distributed.world_size()
    first, stop = r * n_batches // w, (r + 1) * n_batches // w
    g = torch.Generator().manual_seed(seed)
    lo, hi = first * batch, min(stop * batch, n)
    out = run.method.sample(max(hi - lo, 0), generator=g, batch_size=batch, skip_batches=first)
    return {k: run._to_user(k, v) for k, v in out.items()}


def _train_samples(run) -> torch.Tensor:
    from ..data.base import build_data

    data = run.data if run.data is not None else build_data(run.config, split="train")
    return data.x.float().div(255.0) if data.kind == "image" else data.x


class Evaluator:
    """Periodic evaluation during training: loads the real split and the extractor once."""

    #: metric keys where a smaller value is better (the trainer keeps best.pt by them)
    lower_is_better = LOWER_IS_BETTER

    def __init__(self, run):
        from ..data.base import build_data

        ec = run.config.eval
        self.run, self.cfg = run, ec

        def load():
            try:
                return build_data(run.config, split=ec.split)
            except ConfigError:
                return run.data

        self.real = distributed.local_main_first(load, "loading the evaluation data")
        self.extractor = None
        if run.info.kind == "image":
            self.extractor = get_extractor(auto_features(run.config.data, "image") if ec.features == "auto"
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
