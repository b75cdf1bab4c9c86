"""Did a voice conversion change the speaker and keep what was said?

"Unsupervised Conditional Generation by GAN" in the lectures: voice conversion is unpaired
translation between speakers, so no converted utterance has a recording to be compared with.
espeak-ng can, however, speak the *same* sentence in both voices, so for held-out sentences a
parallel reference exists, used here for evaluation only (training never sees it). The metric
``voice_conversion`` (added to the evaluation of cyclegan, stargan and disentangle runs on the
``voices`` data set) takes the first ``utterances`` held-out sentences of each source voice
(:func:`gankit.data.speech.voice_utterances`, test split), converts each whole utterance into
its target voice (:func:`gankit.methods._voice.convert_picture`: segment by segment,
overlap-added) and reports:

* **the target speaker recognised**: a speaker classifier (:class:`SpeakerClassifier`, trained
  on the voices' training split by :func:`gankit.metrics.domain.domain_classifier` and cached
  beside the other evaluation caches) labels the segments of the converted spectrograms
  (``speaker_accuracy``: the share it gives the target voice), of the unconverted sources
  (``speaker_accuracy_source``: what doing nothing scores, about 0) and of the target voice's
  own held-out recordings (``speaker_accuracy_real``: the ceiling);
* **the content kept**: the mel-cepstral distortion (:func:`mel_cepstra`,
  :func:`mel_cepstral_distance`, in dB as MCD is usually given) between the converted
  utterance and the target voice speaking the same sentence, after aligning the two by dynamic
  time warping (:func:`dtw`), ``content_distance``; the same for the unconverted source
  (``content_distance_source``: how far apart the two voices are) and between the conversion
  and the target voice speaking *another* held-out sentence (``content_distance_chance``: what
  DTW reaches between unrelated utterances). A conversion that moves towards the target voice
  and keeps the words lies below both.

Everything here below :func:`voice_conversion` is plain NumPy on arrays, tested against
closed forms (``tests/test_voice_conversion.py``).
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..registries import METRICS

__all__ = ["dtw", "dtw_distance", "mel_filterbank", "mel_cepstra", "mel_cepstral_distance", "SpeakerClassifier",
           "speaker_classifier", "voice_conversion", "MCD_SCALE"]

#: the factor of the usual mel-cepstral distortion in dB, 10 sqrt(2) / ln 10
MCD_SCALE = 10.0 * math.sqrt(2.0) / math.log(10.0)


# ----------------------------------------------------------------------------- dynamic time warping

def dtw(cost: np.ndarray) -> Tuple[float, List[Tuple[int, int]]]:
    """The cheapest monotone alignment of two sequences given their local costs ``cost`` (n, m):
    a path from (0, 0) to (n-1, m-1) by steps (1, 0), (0, 1) and (1, 1), its total cost the sum
    of the costs of the cells it visits. Returns (that total, the path as (i, j) pairs).

    Each row is computed at once: with S the running sum of the row's costs,
    D[i, j] = min over k <= j of (min(D[i-1, k], D[i-1, k-1]) + S[j] - S[k-1]), a running
    minimum; the path is traced back from the end, preferring the diagonal on ties."""
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
        raise ValueError(f"dtw needs a 2-D cost matrix with at least one row and column, got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("dtw: the costs must be finite")
    n, m = c.shape
    acc = np.empty((n, m))
    acc[0] = np.cumsum(c[0])
    for i in range(1, n):
        above = acc[i - 1]
        enter = above.copy()                            # from (i-1, j) or (i-1, j-1)
        enter[1:] = np.minimum(above[1:], above[:-1])
        run = np.cumsum(c[i])
        before = np.concatenate([[0.0], run[:-1]])      # S[k-1]
        acc[i] = run + np.minimum.accumulate(enter - before)
    path = [(n - 1, m - 1)]
    i, j = n - 1, m - 1
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
            i, j = min(steps, key=lambda p: acc[p])     # min keeps the first (diagonal) of equals
        path.append((i, j))
    path.reverse()
    return float(acc[-1, -1]), path


def dtw_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The mean Euclidean distance between aligned frames of ``a`` (n, d) and ``b`` (m, d) along
    the cheapest DTW path (its total cost over its length)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    total, path = dtw(np.sqrt(np.maximum(d2, 0.0)))
    return total / len(path)


# ----------------------------------------------------------------------------- mel cepstra

def _mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def _hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, bins: int, rate: int = 16_000) -> np.ndarray:
    """Triangular filters (n_mels, bins) evenly spaced on the mel scale (2595 log10(1 + f/700))
    from 0 Hz to the Nyquist frequency, over the ``bins`` frequencies of an STFT, each peaking
    at 1."""
    if n_mels < 1 or bins < 2:
        raise ValueError(f"a mel filterbank needs n_mels >= 1 and bins >= 2, got {n_mels} and {bins}")
    freqs = np.linspace(0.0, rate / 2.0, bins)
    edges = _hz(np.linspace(0.0, _mel(rate / 2.0), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (freqs[None] - lo) / (mid - lo)
    fall = (hi - freqs[None]) / (hi - mid)
    return np.clip(np.minimum(rise, fall), 0.0, None)


def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II (n, n): row k is the k-th basis vector."""
    k, t = np.arange(n)[:, None], np.arange(n)[None, :]
    m = np.cos(np.pi * k * (2 * t + 1) / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


def mel_cepstra(db: np.ndarray, n_mels: int = 24, n_ceps: int = 13, rate: int = 16_000) -> np.ndarray:
    """Mel cepstra (T, n_ceps) of a log-magnitude spectrogram ``db`` (bins, T) in decibels, the
    lowest frequency in row 0: the magnitudes summed by :func:`mel_filterbank`, natural log,
    orthonormal DCT over the mel bands, coefficients 1..n_ceps (the zeroth, the loudness,
    left out, as in the mel-cepstral distortion)."""
    db = np.asarray(db, np.float64)
    if n_ceps >= n_mels:
        raise ValueError(f"n_ceps ({n_ceps}) must be below n_mels ({n_mels})")
    mag = 10.0 ** (db / 20.0)
    bands = mel_filterbank(n_mels, db.shape[0], rate) @ mag
    logs = np.log(np.maximum(bands, 1e-10))
    return (_dct_matrix(n_mels) @ logs)[1:n_ceps + 1].T


def mel_cepstral_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The mel-cepstral distortion in dB, MCD = (10 / ln 10) sqrt(2 sum_k (a_k - b_k)^2), of
    cepstra ``a`` (n, K) and ``b`` (m, K), averaged over the frames that DTW aligns."""
    return MCD_SCALE * dtw_distance(a, b)


# ----------------------------------------------------------------------------- the speaker classifier

class SpeakerClassifier(nn.Module):
    """Who speaks in a spectrogram segment (1, bins, frames): two strided 3x3 convolutions and
    one more (ReLU), the mean over time (frequencies stay apart: a voice is a spectral
    envelope and a pitch), a linear read-out per speaker. Input: pictures in [0, 1]."""

    def __init__(self, channels: int, n_speakers: int, bins: int, width: int = 16):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, width, 3, 2, 1), nn.ReLU(),
                                  nn.Conv2d(width, 2 * width, 3, 2, 1), nn.ReLU(),
                                  nn.Conv2d(2 * width, 2 * width, 3, 1, 1), nn.ReLU())
        rows = -(-(-(-bins // 2)) // 2)
        self.out = nn.Linear(2 * width * rows, n_speakers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x * 2 - 1).mean(3).flatten(1))


def speaker_classifier(section: Dict, x: torch.Tensor, speaker: torch.Tensor, n_speakers: int):
    """(a :class:`SpeakerClassifier` trained on segments ``x`` (uint8) labelled ``speaker``, its
    accuracy on the last tenth), cached under the evaluation cache by the data section."""
    from .domain import domain_classifier
    from .evaluate import cache_dir

    bins = int(x.shape[2])
    return domain_classifier(dict(section), x, speaker, n_speakers, cache_dir(),
                             build=lambda c, k: SpeakerClassifier(c, k, bins), tag="speakers")


# ----------------------------------------------------------------------------- the metric

def _classify(net, pictures: List[torch.Tensor], frames: int, stride: int) -> torch.Tensor:
    """The classifier's guesses for the segments cut from each spectrogram ([-1, 1], (bins, T))."""
    from .domain import _as_unit

    segs = []
    for p in pictures:
        t = p.shape[1]
        if t < frames:
            p = torch.cat([p, torch.full((p.shape[0], frames - t), -1.0)], 1)
            t = frames
        starts = list(range(0, t - frames + 1, stride))
        if starts[-1] != t - frames:
            starts.append(t - frames)
        segs += [p[:, s:s + frames] for s in starts]
    x = _as_unit(torch.stack(segs)[:, None].add(1).div(2))
    with torch.no_grad():
        return torch.cat([net(x[i:i + 500]).argmax(1) for i in range(0, len(x), 500)])


@METRICS.register("voice_conversion")
def voice_conversion(s, /, utterances: int = 6, n_mels: int = 24, n_ceps: int = 13) -> Dict[str, float]:
    """Voice conversion runs (cyclegan, stargan, disentangle on data voices), on the first
    `utterances` held-out sentences of each source voice: speaker_accuracy (a speaker classifier
    puts the converted segments in the target voice) beside _source (unconverted) and _real (the
    target's recordings); content_distance (mel-cepstral distortion, dB, after DTW, to the target
    voice speaking the same sentence) beside _source and _chance (another sentence)."""
    from ..data.speech import SpectrogramSettings, _spoken, spectrogram_settings, voice_utterances
    from ..methods._voice import convert_picture, voice_plan

    method = getattr(s, "method", None)
    if method is None:
        raise ConfigError("voice_conversion converts held-out utterances: evaluate a run, not two sample sets")
    if utterances < 1:
        raise ConfigError(f"voice_conversion:utterances must be at least 1, got {utterances}")
    plan = voice_plan(method)            # the voices, each direction of conversion, the data section
    section = plan.section
    if section.get("root"):
        raise ConfigError("voice_conversion compares conversions with the target voice speaking the same sentence, "
                          "which espeak-ng voices give; this run's data are WAV files (data.root)")
    settings: SpectrogramSettings = spectrogram_settings(section)
    options = {k: v for k, v in section.items() if k not in ("name", "split", "half", "per_class")}
    names, waves = voice_utterances("test", **options)
    texts = _test_texts(options, names)
    train_data = _training_voices(options)
    net, real_acc = speaker_classifier(options, train_data.x, train_data.extra["domain"], len(names))
    stride = int(section.get("stride") or settings.frames // 2)
    level, speed, cache = options.get("level", -25.0), options.get("speed", 160), options.get("cache")
    rows: Dict[str, List[float]] = {}
    guesses: Dict[str, List[torch.Tensor]] = {"": [], "_source": [], "_real": []}
    wanted: Dict[str, List[torch.Tensor]] = {"": [], "_source": [], "_real": []}
    g = torch.Generator().manual_seed(0)
    for src, dst in plan.directions:
        chosen = list(range(min(utterances, len(waves[src]))))
        if len(chosen) < 2:
            raise ConfigError("voice_conversion needs at least 2 held-out sentences per voice (the chance level "
                              "compares with another sentence); raise data.n_test")
        said = [texts[src][i] for i in chosen]
        parallel = _spoken([(t, names[dst], int(speed)) for t in said], level, cache)
        sources = [settings.picture(waves[src][i])[0] for i in chosen]
        targets = [settings.picture(w)[0] for w in parallel]
        converted = [convert_picture(method, p, plan.given(src, dst), settings.frames, g) for p in sources]
        for key, pics in (("", converted), ("_source", sources), ("_real", targets)):
            guess = _classify(net, pics, settings.frames, stride)
            guesses[key].append(guess)
            wanted[key].append(torch.full_like(guess, dst))
        ceps = lambda p: mel_cepstra(settings.scale.from_unit(p.flip(0)).numpy(), n_mels, n_ceps,  # noqa: E731
                                     16_000)
        c_conv, c_src, c_tgt = [ceps(p) for p in converted], [ceps(p) for p in sources], [ceps(p) for p in targets]
        for i in range(len(chosen)):
            other = (i + 1) % len(chosen)
            rows.setdefault("content_distance", []).append(mel_cepstral_distance(c_conv[i], c_tgt[i]))
            rows.setdefault("content_distance_source", []).append(mel_cepstral_distance(c_src[i], c_tgt[i]))
            rows.setdefault("content_distance_chance", []).append(mel_cepstral_distance(c_conv[i], c_tgt[other]))
    out = {k: float(np.mean(v)) for k, v in rows.items()}
    for key in guesses:
        guess, want = torch.cat(guesses[key]), torch.cat(wanted[key])
        out["speaker_accuracy" + key] = float((guess == want).double().mean())
    out["speaker_classifier_heldout"] = real_acc
    return out


def _test_texts(options: Dict, names: List[str]) -> List[List[str]]:
    """The sentences each voice speaks in the test split of ``voices`` (voice k: sentences k,
    k + V, ...; :func:`gankit.data.speech.voice_utterances`)."""
    from ..data.speech import sentences

    v = len(names)
    pool = sentences(options.get("min_words", 4), options.get("max_words", 12), options.get("seed", 0))
    texts = pool[:v * int(options.get("n_test", 8))]
    return [texts[k::v] for k in range(v)]


def _training_voices(options: Dict):
    """The whole ``voices`` training split (every voice, whatever half a run took)."""
    from ..registries import DATASETS

    return DATASETS.get("voices")(split="train", **options)
