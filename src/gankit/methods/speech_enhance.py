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

What G's output means (``output``), g in [-1, 1] per bin, pictures in model space (dB mapped
linearly from [floor, ceiling] onto [-1, 1], so 1 unit is (ceiling - floor) / 2 dB):

* ``direct``: G(noisy) = g is the clean spectrogram, rebuilt whole;
* ``mask`` (the default; it scored best of the three in a short measured comparison, see
  benchmarks/README.md): g is a gain mask m = (g + 1) / 2 in [0, 1] applied in dB with a bounded
  attenuation, enhanced_db = noisy_db - max_attenuation (1 - m), floored at the scale's
  floor: never louder than the noisy bin, the noisy input itself where m = 1 (speech
  enhancement's usual formulation). The last bias of G starts at atanh(0.9) so training
  starts near the identity (m about 0.95);
* ``residual``: enhanced = noisy + g (clipped to the picture range): G learns a correction,
  and its output near 0 at initialisation is the identity.

The discriminator judges (noisy, enhanced) whichever way the enhanced spectrogram is made.

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
import math
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from .. import audio
from ..errors import ConfigError
from ..metrics import speech as _speech_metrics  # noqa: F401 - registers speech_quality
from ..registries import METHODS, OBJECTIVES
from .base import Contract
from .pix2pix import Pix2Pix

__all__ = ["SpeechEnhance", "combine", "enhance", "enhance_file", "SPEECH_DATA", "OUTPUTS"]

ObjectiveSpec = OBJECTIVES.spec_type()

#: the data sets whose runs are judged by the speech metrics
SPEECH_DATA = ("speech",)
#: what G's output means (method.output)
OUTPUTS = ("direct", "mask", "residual")
#: ceiling - floor (dB) of pictures that are not speech data's spectrograms: the speech default
_DB_SPAN = 80.0


class SpeechEnhance(Pix2Pix):
    contract = Contract(needs=("x", "input"), conditions=("input",),
                        auto={"generator": "unet", "discriminator": "patchgan"},
                        metrics=("l1", "psnr", "ssim", "sharpness"))

    def __init__(self, runtime, info, cfg, objective, l1_weight, adv_weight, d_steps, pool, spectral_norm,
                 output: str = "mask", max_attenuation: float = 60.0):
        if output not in OUTPUTS:
            raise ConfigError(f"method.output must be one of {', '.join(OUTPUTS)} (what G's output means), got "
                              f"{output!r}")
        if not max_attenuation > 0:
            raise ConfigError(f"method.max_attenuation (dB) must be positive, got {max_attenuation}")
        super().__init__(runtime, info, cfg, objective, l1_weight, adv_weight, d_steps, pool, spectral_norm)
        self.output = output
        span = _DB_SPAN
        if cfg.data.get("name") in SPEECH_DATA:
            from ..data.speech import spectrogram_settings
            s = spectrogram_settings(cfg.data)
            span = s.ceiling - s.floor
        self.attenuation = 2.0 * float(max_attenuation) / span      # the largest attenuation in model units
        if output == "mask":      # start near the identity: m = (tanh(b) + 1) / 2 = 0.95 (and its moving average)
            for net in (self.generator, *([self.emas["generator"]] if "generator" in self.emas else [])):
                last = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
                        and m.bias is not None]
                if last:
                    with torch.no_grad():
                        last[-1].bias.add_(math.atanh(0.9))
        if cfg.data.get("name") in SPEECH_DATA:   # sound: judged on held-out utterances too
            self.contract = dataclasses.replace(self.contract, metrics=(*self.contract.metrics, "speech_quality"))

    def translate(self, net, c: torch.Tensor) -> torch.Tensor:
        return combine(self.output, c, net(c), self.attenuation)


def combine(output: str, noisy: torch.Tensor, g: torch.Tensor, attenuation: float) -> torch.Tensor:
    """The enhanced spectrogram (model space) from the noisy one and G's output ``g`` in
    [-1, 1] (``output``: direct, mask or residual, as the module says); ``attenuation`` is
    the mask's largest attenuation in model units (2 max_attenuation / (ceiling - floor))."""
    if output == "direct":
        return g
    noisy = noisy.to(g.dtype)
    if output == "mask":
        return (noisy - attenuation * (1 - g) / 2).clamp(min=-1.0)
    return (noisy + g).clamp(-1.0, 1.0)


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
                   spectral_norm: bool = False, output: str = "mask",
                   max_attenuation: float = 60.0) -> SpeechEnhance:
    """Speech enhancement (SEGAN) on noisy/clean spectrograms: U-Net G(noisy), PatchGAN on (noisy,
    output) pairs, least squares; l1_weight (SEGAN: 100); adv_weight 0 is the L1 regressor;
    output: direct (G gives the spectrogram), mask (a gain mask, at most max_attenuation dB, on
    the noisy one) or residual (noisy + G's correction)."""
    return SpeechEnhance(runtime, info, cfg, objective, l1_weight, adv_weight, d_steps, pool, spectral_norm,
                         output, max_attenuation)


speech_enhance.contract = SpeechEnhance.contract
