"""Speech enhancement by a conditional GAN (SEGAN, Pascual et al. 2017), on spectrograms.

"Conditional Generation by GAN" in the lectures: the generator takes noisy speech and gives
clean speech; a discriminator that saw only outputs would let G ignore its input, so it judges
(noisy input, output) pairs, real when the output is the clean recording; and a term that keeps
the output close to the target stops the GAN from wandering off (SEGAN's L1 term, weight 100).
SEGAN works on waveforms; here G and D are pix2pix's (:mod:`gankit.methods.pix2pix`: a U-Net
and a PatchGAN) on log-magnitude spectrogram segments, the noisy one the condition
(``input``) and the clean one the target (``x``) of the ``speech`` data set
(:mod:`gankit.data.speech`). The generator minimises

    adv_weight * L_G(D(noisy, G(noisy))) + l1_weight * E|clean - G(noisy)|

with L SEGAN's least-squares objective by default (``objective``); ``adv_weight: 0`` is the
supervised regressor (the same U-Net on the L1 term alone; the discriminator is then never
trained), the baseline the GAN is compared with.

Sound out: :func:`enhance` turns a whole waveform of any length into the enhanced waveform:
its spectrogram (the data's settings: :func:`gankit.data.speech.spectrogram_settings` of the
run's data section) goes through G segment by segment, the segments overlapping by half and
blended across the overlaps (:mod:`gankit.methods._tiles`), and the enhanced magnitude is
turned back into sound with the noisy phase. The waveform is first scaled to the data's
level (``data.level`` dBFS) and the output scaled back. ``gankit sample RUN --input
noisy.wav --out clean.wav`` calls it (:func:`enhance_file`). On ``speech`` data, evaluation adds
the metric ``speech_quality`` (:mod:`gankit.metrics.speech`: SNR, segmental SNR, STOI, PESQ
of held-out utterances beside the noisy input and spectral subtraction).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch

from .. import audio
from ..errors import ConfigError
from ..metrics import speech as _speech_metrics  # noqa: F401 - registers speech_quality
from ..registries import METHODS, OBJECTIVES
from .base import Contract
from .pix2pix import Pix2Pix

__all__ = ["SpeechEnhance", "enhance", "enhance_file", "SPEECH_DATA"]

ObjectiveSpec = OBJECTIVES.spec_type()

#: the data sets whose runs are judged by the speech metrics
SPEECH_DATA = ("speech",)


class SpeechEnhance(Pix2Pix):
    contract = Contract(needs=("x", "input"), conditions=("input",),
                        auto={"generator": "unet", "discriminator": "patchgan"},
                        metrics=("l1", "psnr", "ssim", "sharpness"))

    def __init__(self, runtime, info, cfg, objective, l1_weight, adv_weight, d_steps, pool, spectral_norm):
        super().__init__(runtime, info, cfg, objective, l1_weight, adv_weight, d_steps, pool, spectral_norm)
        if cfg.data.get("name") in SPEECH_DATA:   # sound: judged on held-out utterances too
            self.contract = dataclasses.replace(self.contract, metrics=(*self.contract.metrics, "speech_quality"))


def enhance(method, wave: np.ndarray, settings, generator: Optional[torch.Generator] = None) -> np.ndarray:
    """``wave`` (mono float, 16 kHz) enhanced by ``method`` (a run's method trained on
    spectrograms made with ``settings``, a :class:`~gankit.data.speech.SpectrogramSettings`):
    segment by segment, half-overlapping and blended, resynthesised with the noisy phase."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1 or len(wave) < settings.n_fft:
        raise ConfigError(f"a waveform to enhance must be mono and at least {settings.n_fft} samples long, got shape "
                          f"{wave.shape}")
    level = audio.rms(wave)
    gain = 10 ** (settings.level / 20) / level if level > 0 else 1.0
    picture, phase = settings.picture(wave * gain)
    shape = tuple(method.info.fields["input"].shape)
    if picture.shape[0] != shape[1]:
        raise ConfigError(f"this run was trained on spectrograms of {shape[1]} frequency bins; the data settings give "
                          f"{picture.shape[0]}")
    frames = picture.shape[1]
    if frames < shape[2]:       # shorter than one segment: silence appended, cut off again after
        picture = torch.cat([picture, torch.full((picture.shape[0], shape[2] - frames), -1.0)], 1)
    out = method.sample(1, given={"input": picture[None, None]}, generator=generator, tile=shape[1:],
                        overlap=(0, shape[2] // 2))["x"][0, 0, :, :frames]
    return (settings.wave(out, phase, len(wave)) / gain).astype(np.float32)


def enhance_file(run, source: Union[str, Path], target: Union[str, Path], seed: int = 0) -> Path:
    """The WAV file ``source`` (any rate: resampled to 16 kHz; channels averaged) enhanced by the
    run ``run`` and written to ``target`` (16 kHz, 16-bit)."""
    from ..data.speech import spectrogram_settings

    if run.config.data.get("name") not in SPEECH_DATA or "input" not in run.info.fields:
        raise ConfigError(f"--input {source}: a sound file is enhanced by a run trained on spectrograms (method "
                          f"speech_enhance on data speech); this run is {run.config.method['name']} on "
                          f"{run.config.data.get('name')}")
    settings = spectrogram_settings(run.config.data)
    wave = audio.read_wav(source)
    out = enhance(run.method, wave, settings, torch.Generator().manual_seed(seed))
    return audio.write_wav(target, out)


@METHODS.register("speech_enhance")
def speech_enhance(runtime, info, cfg, /, l1_weight: float = 100.0, adv_weight: float = 1.0,
                   objective: ObjectiveSpec = "least_squares", d_steps: int = 1, pool: int = 256,
                   spectral_norm: bool = False) -> SpeechEnhance:
    """Speech enhancement (SEGAN) on noisy/clean spectrograms: U-Net G(noisy), PatchGAN on (noisy,
    output) pairs, least squares; l1_weight (SEGAN: 100); adv_weight 0 is the L1 regressor."""
    return SpeechEnhance(runtime, info, cfg, objective, l1_weight, adv_weight, d_steps, pool, spectral_norm)


speech_enhance.contract = SpeechEnhance.contract
