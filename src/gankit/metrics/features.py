"""Feature extractors: images -> feature vectors (for FID, KID, precision/recall ...) and,
where there is a classifier head, class logits (for Inception-Score-style scores).

Every extractor takes images as a torch tensor or NumPy array (N, C, H, W) (or (N, H, W)
for grey images), either ``uint8`` in 0..255 or floats in [0, 1], converts the channels
(RGB -> grey by the mean, grey -> RGB by repetition) and the size to what its network
takes, and runs the network in eval mode, without gradients, in float32 (no autocast, no
TF32), returning float64 NumPy arrays. Results do not depend on ``batch_size``.

Registered extractors (``get_extractor(name, **params)``, or the ``FEATURES`` registry):

* ``fashion_mnist``: :class:`~gankit.metrics.classifier.SmallCNN` trained by gankit on the
  Fashion-MNIST train split; the weights ship in ``gankit/assets`` and their sha256 is
  checked at load. 128 features (penultimate layer, after ReLU), 10 logits.
* ``mnist``: the same network trained on MNIST. MNIST cannot be shipped with gankit, so the
  weights come from ``weights=PATH``, ``$GANKIT_MNIST_WEIGHTS`` or
  ``gankit/assets/mnist_classifier.pt``; ``scripts/train_classifier.py`` makes them.
* ``inception``: InceptionV3 with the standard FID weights
  (``pt_inception-2015-12-05-6726825d.pth``) as built by the ``pytorch-fid`` package:
  2048 pool features, 1008 logits. Weights from ``weights=PATH``,
  ``$GANKIT_INCEPTION_WEIGHTS`` or torch hub's cache; nothing is downloaded.
* ``pixels``: the pixels themselves, flattened, in [0, 1].

:func:`from_module` wraps any ``nn.Module`` that maps images in [0, 1] to features.
"""
from __future__ import annotations

import abc

import contextlib
import hashlib
import os
import threading
from pathlib import Path
from typing import Any, Dict, Literal, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, DataError, GankitError
from ..registries import FEATURES
from .classifier import FEATURE_DIM, IMAGE_SIZE, NUM_CLASSES, SmallCNN, sha256_file

__all__ = ["FeatureExtractor", "ClassifierExtractor", "InceptionExtractor", "PixelExtractor", "ModuleExtractor",
           "ExtractorError", "WeightsError", "NoClassifierError", "get_extractor", "clear_cache", "from_module",
           "fashion_mnist", "mnist", "inception", "pixels", "ASSET_DIR", "FASHION_MNIST_WEIGHTS",
           "FASHION_MNIST_SHA256", "MNIST_WEIGHTS", "INCEPTION_FILE", "inception_search_paths"]

#: the folder of weight files shipped inside the package
ASSET_DIR = Path(__file__).resolve().parent.parent / "assets"
#: the shipped Fashion-MNIST classifier (see gankit/assets/README.md for how it was made)
FASHION_MNIST_WEIGHTS = ASSET_DIR / "fashion_mnist_classifier.pt"
FASHION_MNIST_SHA256 = "d846f9e9d2a7367d37e3566d223e88244a23bc4489ab0623a2d05cddc47e9f39"
#: where the mnist extractor looks last (gankit cannot ship MNIST weights: see mnist())
MNIST_WEIGHTS = ASSET_DIR / "mnist_classifier.pt"
MNIST_ENV = "GANKIT_MNIST_WEIGHTS"
#: the standard FID Inception weights, ported from TensorFlow by pytorch-fid. Their sha256 is
#: not pinned here (it could not be confirmed offline, and pytorch-fid itself does not check
#: it): any file whose tensors fit the network loads, and ``checksum`` is that file's sha256,
#: so features from different files never share cached reference statistics.
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_ENV = "GANKIT_INCEPTION_WEIGHTS"

_TRAIN_SCRIPT = "python scripts/train_classifier.py"
# the exact command that produced the shipped file (also in gankit/assets/README.md)
_FASHION_MNIST_COMMAND = (f"{_TRAIN_SCRIPT} --data fashion_mnist --epochs 8 --seed 0 --threads 1 --bf16 "
                          f"--out src/gankit/assets/fashion_mnist_classifier.pt")


class ExtractorError(GankitError):
    """A feature extractor cannot be built (a missing package, weights or input problem)."""


class WeightsError(ExtractorError, DataError):
    """A weights file is missing, damaged or not the expected one."""


class NoClassifierError(ExtractorError, ConfigError):
    """Logits were asked of an extractor without a classifier head."""


# ---------------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------------

_RANGE_SLACK = 1e-4   # floats this far outside [0, 1] (rounding) are clamped; further is an error


def _as_tensor(images) -> Tuple[torch.Tensor, bool]:
    """``images`` as a 4-D CPU-or-device tensor (no copy where possible) and whether it holds
    integers in 0..255 (True) or floats in [0, 1] (False). Checks shape, dtype and range."""
    if isinstance(images, np.ndarray):
        if images.dtype == np.bool_ or images.dtype.kind not in "uif":
            raise ExtractorError(f"images of NumPy dtype {images.dtype} are not supported; pass uint8 "
                                 f"(0..255) or floats in [0, 1]")
        if not images.flags.writeable:   # torch.from_numpy warns on read-only arrays
            images = images.copy()
        x = torch.from_numpy(images)
    elif isinstance(images, torch.Tensor):
        x = images.detach()
    else:
        raise ExtractorError(f"images must be a torch tensor or a NumPy array (N, C, H, W), "
                             f"got {type(images).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise ExtractorError(f"images must have shape (N, C, H, W) (or (N, H, W) for grey images), "
                             f"got {tuple(x.shape)}")
    if x.dtype == torch.bool or x.is_complex():
        raise ExtractorError(f"images of dtype {x.dtype} are not supported; pass uint8 (0..255) or floats in [0, 1]")
    if x.numel() == 0:
        return x, x.dtype == torch.uint8
    if x.dtype == torch.uint8:
        return x, True
    lo, hi = float(x.min()), float(x.max())
    if not x.is_floating_point():
        if lo < 0 or hi > 255:
            raise ExtractorError(f"integer images must hold values in 0..255, found {lo:g}..{hi:g}")
        return x, True
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ExtractorError("the images contain NaN or infinite values; check the generator output")
    if lo < -_RANGE_SLACK or hi > 1.0 + _RANGE_SLACK:
        hint = (" They look like images in [-1, 1] (a tanh generator's output): pass (x + 1) / 2."
                if lo >= -1.0 - _RANGE_SLACK and hi <= 1.0 + _RANGE_SLACK else
                " Pass uint8 images (0..255) or floats scaled to [0, 1].")
        raise ExtractorError(f"float images must lie in [0, 1], found values from {lo:g} to {hi:g}.{hint}")
    return x, False


def _convert(x: torch.Tensor, channels: Optional[int], size: Optional[int], antialias: bool) -> torch.Tensor:
    """Float images (N, C, H, W) in [0, 1] -> ``channels`` channels and ``size`` x ``size`` pixels
    (None keeps what there is). Grey -> RGB repeats after resizing (cheaper, same result)."""
    c = x.shape[1]
    if channels is not None and c != channels:
        if c == 3 and channels == 1:
            x = x.mean(dim=1, keepdim=True)
        elif not (c == 1 and channels == 3):
            raise ExtractorError(f"images with {c} channels cannot be fed to a network that takes {channels}: "
                                 f"pass grey (1 channel) or RGB (3 channel) images"
                                 + ("; drop the alpha channel first" if c in (2, 4) else ""))
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)
    if channels is not None and x.shape[1] != channels:
        x = x.expand(-1, channels, -1, -1)
    return x


def _resolve_device(device: Optional[str]) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"features.device: '{device}' is not a device; use cpu, cuda or cuda:N") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"features.device={device}, but CUDA is not available here; use device cpu")
    return dev


@contextlib.contextmanager
def _exact_float32(device: torch.device):
    """Full float32 arithmetic: no autocast from an enclosing context, and no TF32 on CUDA."""
    if device.type != "cuda":
        with torch.autocast(device.type, enabled=False):
            yield
        return
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.autocast("cuda", enabled=False):
            yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


# ---------------------------------------------------------------------------------------------
# the interface
# ---------------------------------------------------------------------------------------------

class FeatureExtractor(abc.ABC):
    """Images -> features (and logits, where there is a classifier head).

    Attributes: ``name`` (the registered name), ``checksum`` (sha256 of the weights, or a fixed
    string for extractors without weights: with ``name`` it identifies the features, e.g. in
    caches of reference statistics), ``dim`` (feature size; None where it depends on the
    input), ``num_classes`` (None without a head), ``channels`` and ``image_size`` (what the
    network takes; None: whatever is given), ``device`` and ``params`` (the factory's).

    Subclasses implement :meth:`_forward`; :meth:`_prepare` may be overridden.
    """

    antialias = True   #: downsizing is antialiased (Inception follows pytorch-fid instead)

    def __init__(self, name: str, checksum: str, dim: Optional[int], *, num_classes: Optional[int] = None,
                 channels: Optional[int] = None, image_size: Optional[int] = None, device="cpu",
                 params: Optional[Dict[str, Any]] = None):
        self.name, self.checksum, self.dim, self.num_classes = name, checksum, dim, num_classes
        self.channels, self.image_size = channels, image_size
        self.device = torch.device(device)
        self.params = dict(params or {})

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, num_classes={self.num_classes}, "
                f"checksum={self.checksum[:16]!r}, device={str(self.device)!r})")

    # -- to override ------------------------------------------------------------------------
    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Float32 images in [0, 1] on the device -> the network's input."""
        return _convert(x, self.channels, self.image_size, self.antialias)

    @abc.abstractmethod
    def _forward(self, x: torch.Tensor, want_logits: bool) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Prepared batch -> (features (B, dim), logits (B, K) or None)."""

    # -- the public methods -----------------------------------------------------------------
    def features(self, images, batch_size: int = 256) -> np.ndarray:
        """Features of ``images``: float64 (N, dim)."""
        return self._run(images, batch_size, want_logits=False)[0]

    def logits(self, images, batch_size: int = 256) -> np.ndarray:
        """Class logits of ``images``: float64 (N, num_classes); an error without a classifier head."""
        self._check_head()
        return self._run(images, batch_size, want_logits=True)[1]

    def features_and_logits(self, images, batch_size: int = 256) -> Tuple[np.ndarray, np.ndarray]:
        """Both from one pass through the network (half the work of calling the two methods)."""
        self._check_head()
        return self._run(images, batch_size, want_logits=True)

    def _check_head(self) -> None:
        if self.num_classes is None:
            raise NoClassifierError(
                f"feature extractor '{self.name}' has no classifier head, so it gives no logits (needed for "
                f"Inception-Score-style scores and for classifying samples); use one with a classifier: "
                f"fashion_mnist, mnist or inception")

    def probs(self, images, batch_size: int = 256) -> np.ndarray:
        """Softmax of :meth:`logits`, computed in float64: (N, num_classes), rows sum to 1."""
        z = torch.from_numpy(self.logits(images, batch_size))
        return torch.softmax(z, dim=1).numpy()

    def classify(self, images, batch_size: int = 256) -> np.ndarray:
        """Predicted class of each image: int64 (N,)."""
        return self.logits(images, batch_size).argmax(axis=1).astype(np.int64)

    __call__ = features

    # -- the loop ---------------------------------------------------------------------------
    def _run(self, images, batch_size: int, want_logits: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        x, integer = _as_tensor(images)
        n = x.shape[0]
        if n == 0:
            return (np.zeros((0, self.dim or 0)), np.zeros((0, self.num_classes or 0)) if want_logits else None)
        feats_out: Optional[np.ndarray] = None
        logits_out: Optional[np.ndarray] = None
        with torch.no_grad(), _exact_float32(self.device):
            for start in range(0, n, int(batch_size)):
                xb = x[start:start + int(batch_size)].to(self.device)
                # out of place: a float32 input on the device must not be modified
                xb = xb.float().div_(255.0) if integer else xb.float().clamp(0.0, 1.0)
                stop = start + xb.shape[0]
                feats, logits = self._forward(self._prepare(xb), want_logits)
                feats = feats.reshape(xb.shape[0], -1)
                if feats_out is None:
                    feats_out = np.empty((n, feats.shape[1]), dtype=np.float64)
                feats_out[start:stop] = feats.to("cpu", torch.float64).numpy()
                if want_logits:
                    if logits_out is None:
                        logits_out = np.empty((n, logits.shape[1]), dtype=np.float64)
                    logits_out[start:stop] = logits.to("cpu", torch.float64).numpy()
        assert feats_out is not None
        return feats_out, logits_out


# ---------------------------------------------------------------------------------------------
# weights files
# ---------------------------------------------------------------------------------------------

def _load_state_dict(path: Path, remedy: str) -> Dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise WeightsError(f"cannot read the weights file {path} ({type(exc).__name__}: {reason}); the file is "
                           f"damaged or incomplete. {remedy}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a state_dict (a dict of tensors saved with torch.save), but a "
                           f"{type(state).__name__}. {remedy}")
    return state


def _fill(net: nn.Module, state: Dict[str, torch.Tensor], path: Path, what: str, remedy: str) -> None:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise WeightsError(f"{path} does not hold {what} weights ({detail}). {remedy}") from exc


# ---------------------------------------------------------------------------------------------
# the classifiers
# ---------------------------------------------------------------------------------------------

class ClassifierExtractor(FeatureExtractor):
    """A :class:`~gankit.metrics.classifier.SmallCNN`: 28x28 grey input, 128 features, 10 logits."""

    def __init__(self, net: SmallCNN, name: str, checksum: str, device="cpu", params=None):
        super().__init__(name, checksum, FEATURE_DIM, num_classes=NUM_CLASSES, channels=1, image_size=IMAGE_SIZE,
                         device=device, params=params)
        self.net = net.to(self.device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def _forward(self, x, want_logits):
        feats = self.net.features(x)
        return feats, (self.net.head(feats) if want_logits else None)


def _load_classifier(path: Path, name: str, checksum: str, remedy: str, device, params) -> ClassifierExtractor:
    state = _load_state_dict(path, remedy)
    net = SmallCNN()
    _fill(net, state, path, "gankit SmallCNN classifier", remedy)
    return ClassifierExtractor(net, name, checksum, device=device, params=params)


@FEATURES.register("fashion_mnist")
def fashion_mnist(weights: Optional[str] = None, device: Optional[str] = None) -> ClassifierExtractor:
    """gankit's Fashion-MNIST classifier (shipped): 128 features, 10 logits."""
    dev = _resolve_device(device)
    params = {"weights": weights, "device": device}
    if weights is not None:
        path = Path(weights).expanduser()
        remedy = (f"Train a classifier with `{_TRAIN_SCRIPT} --data fashion_mnist --out {path}`, or leave weights "
                  f"unset to use the one shipped with gankit.")
        if not path.is_file():
            raise WeightsError(f"features.weights={weights}: no such file. {remedy}")
        return _load_classifier(path, "fashion_mnist", sha256_file(path), remedy, dev, params)

    path = FASHION_MNIST_WEIGHTS
    remedy = (f"Restore the shipped file (reinstall gankit, or `git checkout -- src/gankit/assets/{path.name}` in "
              f"a source checkout), or regenerate it from the gankit source tree with `{_FASHION_MNIST_COMMAND}` "
              f"and put the sha256 it prints into FASHION_MNIST_SHA256 in {Path(__file__).name}; a retrained "
              f"network can also be used as it is with weights=PATH, without the check (its scores are not "
              f"comparable with those of the shipped network).")
    if not path.is_file():
        raise WeightsError(f"the shipped Fashion-MNIST classifier weights are missing: {path} does not exist. "
                           f"{remedy}")
    digest = sha256_file(path)
    if digest != FASHION_MNIST_SHA256:
        raise WeightsError(f"the Fashion-MNIST classifier weights {path} are damaged or were replaced: their "
                           f"sha256 is {digest}, expected {FASHION_MNIST_SHA256}. {remedy}")
    return _load_classifier(path, "fashion_mnist", digest, remedy, dev, params)


def _mnist_instructions(target: str) -> str:
    return (f"gankit cannot ship this classifier because MNIST is not distributed with it. To make it: "
            f"(1) put MNIST's four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, gzipped or not) into a folder DIR; "
            f"(2) from the gankit source tree run `{_TRAIN_SCRIPT} --data mnist --root DIR --out PATH`; "
            f"(3) use it: set {MNIST_ENV}=PATH and pass `--features mnist` to gankit (or call "
            f"get_extractor('mnist', weights=PATH)); with PATH={target} no setting is needed.")


@FEATURES.register("mnist")
def mnist(weights: Optional[str] = None, device: Optional[str] = None) -> ClassifierExtractor:
    """A classifier trained on MNIST by scripts/train_classifier.py: 128 features, 10 logits."""
    dev = _resolve_device(device)
    params = {"weights": weights, "device": device}
    env = os.environ.get(MNIST_ENV)
    if weights is not None:
        path, source = Path(weights).expanduser(), f"features.weights={weights}"
    elif env:
        path, source = Path(env).expanduser(), f"${MNIST_ENV}={env}"
    else:
        path, source = MNIST_WEIGHTS, None
    if not path.is_file():
        where = (f"{source}: no such file" if source else
                 f"looked for weights=PATH (not given), ${MNIST_ENV} (not set) and {MNIST_WEIGHTS} (not there)")
        raise WeightsError(f"the MNIST classifier weights are not available: {where}. "
                           f"{_mnist_instructions(str(MNIST_WEIGHTS))}")
    remedy = "Make it again: " + _mnist_instructions(str(MNIST_WEIGHTS)).split("To make it: ", 1)[1]
    return _load_classifier(path, "mnist", sha256_file(path), remedy, dev, params)


# ---------------------------------------------------------------------------------------------
# Inception (FID)
# ---------------------------------------------------------------------------------------------

_PATCH_LOCK = threading.Lock()


def _pytorch_fid_inception():
    try:
        from pytorch_fid import inception as pfi
    except ImportError as exc:
        raise ExtractorError("the 'inception' feature extractor needs the pytorch-fid package (the reference "
                             "implementation of FID's Inception network): pip install --no-deps pytorch-fid") \
            from exc
    return pfi


def _fid_inception_from_file(path: Path, remedy: str) -> nn.Module:
    """The FID Inception network of pytorch-fid, with its weights read from ``path``.

    pytorch_fid.inception.fid_inception_v3() builds torchvision's Inception3 (1008 classes, no
    aux head, no init), swaps in the FID-patched blocks (TensorFlow-style average pooling
    that ignores padding; max pooling in the last block) and then fetches the weights with
    the module-level name ``load_state_dict_from_url``. Rather than copying that
    construction, we call the library's own function while that one name is temporarily
    bound to a loader of the local file, so the network is exactly the reference one and no
    download can happen; the library's strict load_state_dict then checks that every tensor
    fits. A lock makes the swap safe if two threads build extractors at once.
    """
    pfi = _pytorch_fid_inception()
    state = _load_state_dict(path, remedy)

    def local_file(url, *args, **kwargs):
        return state

    with _PATCH_LOCK:
        original = pfi.load_state_dict_from_url
        pfi.load_state_dict_from_url = local_file
        try:
            net = pfi.fid_inception_v3()
        except RuntimeError as exc:   # load_state_dict: missing/unexpected keys, wrong shapes
            detail = " ".join(str(exc).split())[:300]
            raise WeightsError(f"{path} does not hold the weights of the FID Inception network ({detail}). "
                               f"{remedy}") from exc
        finally:
            pfi.load_state_dict_from_url = original
    return net


def inception_search_paths(weights: Optional[str] = None) -> list:
    """[(description, path)] in the order the inception extractor looks."""
    out = []
    if weights is not None:
        out.append((f"features.weights={weights}", Path(weights).expanduser()))
    env = os.environ.get(INCEPTION_ENV)
    if env:
        out.append((f"${INCEPTION_ENV}={env}", Path(env).expanduser()))
    hub = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    out.append(("torch hub's cache", hub))
    return out


class InceptionExtractor(FeatureExtractor):
    """pytorch-fid's InceptionV3 for FID: 2048 pool features, 1008 logits.

    Input as pytorch-fid feeds it: grey repeated to RGB, resized to 299x299 by bilinear
    interpolation without antialiasing (F.interpolate, align_corners=False), scaled from
    [0, 1] to [-1, 1].
    """

    antialias = False

    def __init__(self, net: nn.Module, checksum: str, device="cpu", params=None, name: str = "inception"):
        super().__init__(name, checksum, 2048, num_classes=1008, channels=3, image_size=299, device=device,
                         params=params)
        self.net = net.to(self.device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self._pool: Optional[torch.Tensor] = None
        # torchvision's Inception3 forward returns the logits; the 2048 pool features are the
        # output of its avgpool module, caught on the way (dropout is inactive in eval mode)
        self.net.avgpool.register_forward_hook(self._catch_pool)

    def _catch_pool(self, module, inputs, output):
        self._pool = output

    def _prepare(self, x):
        if x.shape[1] not in (1, 3):
            _convert(x, 3, None, False)   # raises the error about the number of channels
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = x.expand(-1, 3, -1, -1)       # grey -> RGB (a no-op for RGB)
        return 2.0 * x - 1.0

    def _forward(self, x, want_logits):
        self._pool = None
        logits = self.net(x)
        feats, self._pool = self._pool, None
        return feats.flatten(1), logits


@FEATURES.register("inception")
def inception(weights: Optional[str] = None, device: Optional[str] = None) -> InceptionExtractor:
    """InceptionV3 with the standard FID weights (pytorch-fid): 2048 features, 1008 logits."""
    dev = _resolve_device(device)
    _pytorch_fid_inception()          # the missing package first: without it, weights are no use
    params = {"weights": weights, "device": device}
    looked = inception_search_paths(weights)
    how = (f"Nothing is downloaded: fetch {INCEPTION_FILE} on a machine with internet access (its URL is "
           f"pytorch_fid.inception.FID_WEIGHTS_URL) and copy it to {looked[-1][1]}, or set {INCEPTION_ENV} to "
           f"its path, or pass weights=PATH.")
    path = None
    for what, candidate in looked:
        if candidate.is_file():
            path = candidate
            break
        if what != "torch hub's cache":   # an explicit setting that is wrong is an error, not a fallback
            raise WeightsError(f"the Inception weights are not available: {what}: no such file. {how}")
    if path is None:
        places = "; ".join(f"{what}: {p}" for what, p in looked)
        raise WeightsError(f"the FID Inception weights file {INCEPTION_FILE} was not found; looked in {places}. "
                           f"{how}")
    digest = sha256_file(path)
    net = _fid_inception_from_file(path, f"Replace it with the real {INCEPTION_FILE}. {how}")
    return InceptionExtractor(net, digest, device=dev, params=params)


# ---------------------------------------------------------------------------------------------
# pixels and wrapped modules
# ---------------------------------------------------------------------------------------------

class PixelExtractor(FeatureExtractor):
    """The pixels, flattened, in [0, 1] (optionally resized / converted first)."""

    def _forward(self, x, want_logits):
        return x.flatten(1), None


@FEATURES.register("pixels")
def pixels(image_size: Optional[int] = None, channels: Optional[Literal[1, 3]] = None) -> PixelExtractor:
    """Raw pixels in [0, 1], flattened (optionally resized to image_size, antialiased)."""
    if image_size is not None and image_size < 1:
        raise ConfigError(f"features.image_size must be a positive number of pixels, got {image_size}")
    dim = channels * image_size * image_size if (channels and image_size) else None
    # the defaults keep the fixed checksum; other settings give other features, so they are named
    checksum = "pixels-v1" + (f"-size{image_size}" if image_size else "") + (f"-ch{channels}" if channels else "")
    return PixelExtractor("pixels", checksum, dim, channels=channels, image_size=image_size, device="cpu",
                          params={"image_size": image_size, "channels": channels})


def _module_checksum(module: nn.Module) -> str:
    """sha256 over the module's class name and its state_dict: each key, dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(f"{type(module).__module__}.{type(module).__qualname__}\n".encode())
    for key, value in sorted(module.state_dict().items()):
        t = value.detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class ModuleExtractor(FeatureExtractor):
    """Any ``nn.Module`` mapping images in [0, 1] to features, with an optional logits head."""

    def __init__(self, module: nn.Module, name: str, head: Optional[nn.Module] = None,
                 channels: Optional[int] = None, image_size: Optional[int] = None, dim: Optional[int] = None,
                 num_classes: Optional[int] = None):
        tensors = list(module.parameters()) + list(module.buffers())
        device = tensors[0].device if tensors else torch.device("cpu")
        checksum = _module_checksum(module) if head is None else \
            hashlib.sha256((_module_checksum(module) + _module_checksum(head)).encode()).hexdigest()
        super().__init__(name, checksum, dim, num_classes=num_classes, channels=channels, image_size=image_size,
                         device=device)
        self.module = module.eval()
        self.head = head.eval() if head is not None else None

    def _forward(self, x, want_logits):
        feats = self.module(x)
        if not isinstance(feats, torch.Tensor):
            raise ExtractorError(f"the wrapped module returned a {type(feats).__name__}, not a tensor of features")
        feats = feats.reshape(feats.shape[0], -1)
        if self.dim is None:
            self.dim = int(feats.shape[1])
        logits = None
        if want_logits and self.head is not None:
            logits = self.head(feats)
            if self.num_classes is None:
                self.num_classes = int(logits.shape[1])
        return feats, logits

    def _check_head(self) -> None:
        if self.head is None:
            raise NoClassifierError(f"feature extractor '{self.name}' (a wrapped module) has no classifier head; "
                                    f"pass head=... to from_module to get logits")


def from_module(module: nn.Module, name: str = "custom", *, head: Optional[nn.Module] = None,
                channels: Optional[int] = None, image_size: Optional[int] = None) -> FeatureExtractor:
    """Wrap ``module`` (images (N, C, H, W) float in [0, 1] -> features) as a FeatureExtractor.

    The module is put in eval mode and run without gradients on its own device. Its output is
    flattened to (N, D); ``dim`` is known after the first call. ``head`` (features -> logits)
    adds :meth:`~FeatureExtractor.logits`. ``channels`` / ``image_size`` convert inputs as for
    the registered extractors (None: pass them as they are). ``checksum`` is a sha256 over the
    class names and state_dicts.
    """
    if not isinstance(module, nn.Module):
        raise ExtractorError(f"from_module needs a torch.nn.Module, got {type(module).__name__}")
    if head is not None and not isinstance(head, nn.Module):
        raise ExtractorError(f"from_module: head must be a torch.nn.Module, got {type(head).__name__}")
    return ModuleExtractor(module, name, head=head, channels=channels, image_size=image_size)


# ---------------------------------------------------------------------------------------------
# by name
# ---------------------------------------------------------------------------------------------

_CACHE: Dict[Tuple, FeatureExtractor] = {}
_CACHE_LOCK = threading.Lock()


def _freeze(value):
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def get_extractor(name: str, **params) -> FeatureExtractor:
    """The registered extractor ``name`` built with ``params`` (validated against the factory's
    signature), cached per (name, params) for the life of the process."""
    from ..registries import load_all

    load_all()
    resolved = FEATURES.resolve_params(name, params, "features")
    key = (name, _freeze(resolved))
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = FEATURES.get(name)(**resolved)
        return _CACHE[key]


def clear_cache() -> None:
    """Forget the extractors built by :func:`get_extractor` (e.g. after replacing a weights file)."""
    with _CACHE_LOCK:
        _CACHE.clear()
