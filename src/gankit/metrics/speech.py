"""How good enhanced speech is: SNR, segmental SNR, STOI and PESQ of held-out utterances.

The metric ``speech_quality`` (added to every evaluation of a ``speech_enhance`` run on the
``speech`` data set) takes the first ``utterances`` held-out utterances of the run's data
(:func:`gankit.data.speech.speech_utterances`, test split: sentences, voices and noise types
training never heard), enhances each whole (:func:`gankit.methods.speech_enhance.enhance`:
segment by segment, resynthesised with the noisy phase) and scores against the clean
recording:

* the enhanced output (``segsnr``, ``snr``, ``stoi``, ``pesq``),
* the noisy input itself (``*_noisy``), and
* spectral subtraction (``*_subtraction``, :func:`gankit.audio.spectral_subtraction`: the
  noise's spectrum from the quietest tenth of the frames, subtracted twice over, a floor of
  2% of the noisy power), the classical enhancer a learnt one must beat;

and ``segsnr_gain``, the output's segmental SNR minus the input's. SNR and segmental SNR are
:func:`gankit.audio.snr` and :func:`gankit.audio.segmental_snr` (20 ms frames, clamped to
[-10, 35] dB); STOI is pystoi's (Taal et al. 2011, 0..1); PESQ is the ``pesq`` package's
wide-band ITU-T P.862.2 at 16 kHz (about 1..4.6). Each is the mean over utterances. When
``pesq`` does not import, the PESQ entries are left out with a note on stderr; an utterance
PESQ cannot score (no speech found) is left out of its mean.
"""
from __future__ import annotations

import sys
from typing import Dict, List, Optional

import numpy as np

from .. import audio
from ..errors import ConfigError
from ..registries import METRICS
from .evaluate import EvalSet

__all__ = ["stoi", "pesq_wb", "speech_scores", "speech_quality"]


def stoi(clean: np.ndarray, estimate: np.ndarray, rate: int = audio.SAMPLE_RATE) -> float:
    """Short-time objective intelligibility (pystoi), 0..1."""
    from pystoi import stoi as _stoi

    n = min(len(clean), len(estimate))
    return float(_stoi(np.asarray(clean[:n], np.float64), np.asarray(estimate[:n], np.float64), rate, extended=False))


def pesq_wb(clean: np.ndarray, estimate: np.ndarray, rate: int = audio.SAMPLE_RATE) -> Optional[float]:
    """Wide-band PESQ (ITU-T P.862.2) of ``estimate`` against ``clean``; None when the ``pesq``
    package is missing or it finds no speech to score."""
    try:
        from pesq import pesq
    except ImportError:
        return None
    n = min(len(clean), len(estimate))
    try:
        return float(pesq(rate, np.asarray(clean[:n], np.float32), np.asarray(estimate[:n], np.float32), "wb"))
    except Exception:      # the package raises its own errors for utterances it cannot score
        return None


def speech_scores(clean: np.ndarray, estimate: np.ndarray, with_pesq: bool = True) -> Dict[str, float]:
    """snr, segsnr, stoi and (where it can be had) pesq of one estimate of ``clean``."""
    out = {"snr": audio.snr(clean, estimate), "segsnr": audio.segmental_snr(clean, estimate),
           "stoi": stoi(clean, estimate)}
    if with_pesq:
        p = pesq_wb(clean, estimate)
        if p is not None:
            out["pesq"] = p
    return out


def _pesq_available() -> bool:
    try:
        import pesq  # noqa: F401
    except ImportError:
        return False
    return True


@METRICS.register("speech_quality")
def speech_quality(s: EvalSet, /, utterances: int = 8, pesq: bool = True) -> Dict[str, float]:
    """Speech enhancement runs: SNR, segmental SNR, STOI and wide-band PESQ of the first
    `utterances` held-out utterances enhanced whole (noisy phase), beside the noisy input
    (_noisy) and spectral subtraction (_subtraction); segsnr_gain = output - input."""
    from ..data.speech import spectrogram_settings, speech_utterances
    from ..methods.speech_enhance import SPEECH_DATA, enhance
    import torch

    method = s.method
    if method is None or method.cfg.data.get("name") not in SPEECH_DATA or "input" not in method.info.fields:
        raise ConfigError("speech_quality enhances held-out utterances: evaluate a run of method speech_enhance "
                          "trained on data speech")
    if utterances < 1:
        raise ConfigError(f"speech_quality:utterances must be at least 1, got {utterances}")
    section = dict(method.cfg.data)
    section.pop("split", None)
    utts = speech_utterances("test", **{k: v for k, v in section.items() if k != "name"})[:utterances]
    settings = spectrogram_settings(section)
    with_pesq = bool(pesq) and _pesq_available()
    if pesq and not with_pesq:
        print("speech_quality: the pesq package does not import; PESQ left out (pip install pesq)", file=sys.stderr)
    rows: Dict[str, List[float]] = {}
    g = torch.Generator().manual_seed(0)
    for u in utts:
        enhanced = enhance(method, u.noisy, settings, g)
        subtracted = audio.spectral_subtraction(u.noisy)
        for suffix, est in (("", enhanced), ("_noisy", u.noisy), ("_subtraction", subtracted)):
            for k, v in speech_scores(u.clean, est, with_pesq).items():
                rows.setdefault(k + suffix, []).append(v)
    out = {k: float(np.mean(v)) for k, v in rows.items()}
    out["segsnr_gain"] = out["segsnr"] - out["segsnr_noisy"]
    return out
