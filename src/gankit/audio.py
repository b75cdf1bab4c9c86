"""Sound for the speech data sets and methods: WAV files, spectrograms, resynthesis, noise.

Everything here is a plain function on 1-D float waveforms (NumPy, float32, in [-1, 1]) or on
spectrograms (torch); nothing depends on the rest of gankit, so voice conversion or any other
use of spectrograms can import it alone.

* Files: :func:`read_wav` (any rate and channel count soundfile reads; channels averaged,
  resampled to :data:`SAMPLE_RATE` by :func:`resample`, a polyphase filter from
  ``scipy.signal.resample_poly``) and :func:`write_wav` (16-bit PCM, written to a temporary
  file and renamed, so a reader never sees half a file).
* Spectrograms: :func:`stft` / :func:`istft` (``torch.stft`` with a periodic Hann window,
  centred frames); :func:`to_db` / :func:`from_db` (20 log10 of the magnitude);
  :class:`SpectrogramScale` maps decibels between ``floor`` and ``ceiling`` linearly onto
  [-1, 1] (and onto 0..255 for storage as a 1-channel picture), and back; :func:`resynthesise`
  puts a magnitude together with a given phase (the noisy phase, in speech enhancement) and
  inverts it; :func:`griffin_lim` finds a phase for a magnitude alone (the fast Griffin-Lim of
  Perraudin et al. 2013: alternate projections with momentum), for spectrograms that have no
  phase of their own (a voice converted from another).
* Noise (NumPy, seeded by a ``numpy.random.Generator``): :func:`white_noise`,
  :func:`coloured_noise` (white noise shaped in the frequency domain to a power spectrum
  1/f^exponent: pink 1, brown 2), :func:`babble_noise` (a sum of other utterances, each at
  the same level, started at random offsets and looped), :func:`make_noise` by name; and
  :func:`mix`, which scales a noise so that clean + noise has a set SNR.
* Measures: :func:`snr` and :func:`segmental_snr` (frames of 20 ms, each frame's SNR clamped
  to [-10, 35] dB, as in Quackenbush et al. and the SEGAN paper's evaluation), and the
  :func:`spectral_subtraction` baseline.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

__all__ = ["SAMPLE_RATE", "NOISES", "read_wav", "write_wav", "publish", "resample", "rms", "set_level", "stft", "istft",
           "to_db", "from_db", "SpectrogramScale", "resynthesise", "griffin_lim", "white_noise",
           "coloured_noise", "babble_noise", "make_noise", "mix", "snr", "segmental_snr", "spectral_subtraction"]

#: the rate every waveform here is at (Hz)
SAMPLE_RATE = 16_000
#: the noise types :func:`make_noise` knows
NOISES = ("white", "pink", "brown", "babble")

PathLike = Union[str, os.PathLike]


# ----------------------------------------------------------------------------- files

def read_wav(path: PathLike, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A sound file as mono float32 at ``rate`` Hz (channels averaged, resampled when the file
    has another rate). A missing or unreadable file is a :class:`~gankit.errors.DataError`."""
    import soundfile

    from .errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such sound file; give a WAV (or FLAC/OGG) file")
    try:
        wave, file_rate = soundfile.read(str(p), dtype="float32", always_2d=True)
    except Exception as e:       # soundfile raises its own LibsndfileError (a RuntimeError)
        raise DataError(f"{p}: cannot read it as sound ({e}); give a WAV file") from None
    if wave.shape[0] == 0:
        raise DataError(f"{p} holds no samples")
    return resample(wave.mean(1), int(file_rate), rate)


def write_wav(path: PathLike, wave: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """``wave`` (1-D, clipped to [-1, 1]) as a 16-bit PCM WAV file, written atomically."""
    import soundfile

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(wave, dtype=np.float32).reshape(-1), -1.0, 1.0)
    fd, tmp = tempfile.mkstemp(suffix=".wav", dir=p.parent)
    os.close(fd)
    try:
        soundfile.write(tmp, data, rate, subtype="PCM_16")
        publish(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def publish(tmp: PathLike, path: PathLike) -> None:
    """Rename a finished temporary file to ``path``, with the permissions a new file gets (a
    temporary file is made readable by its owner alone)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def resample(wave: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``wave`` from ``from_rate`` to ``to_rate`` Hz by a polyphase filter (exact ratio)."""
    from scipy.signal import resample_poly

    wave = np.asarray(wave, dtype=np.float32)
    if from_rate == to_rate:
        return wave.copy()
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} and {to_rate}")
    ratio = Fraction(to_rate, from_rate)
    return resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)


def rms(wave: np.ndarray) -> float:
    """Root mean square of a waveform."""
    w = np.asarray(wave, dtype=np.float64)
    return float(np.sqrt(np.mean(w * w))) if w.size else 0.0


def set_level(wave: np.ndarray, dbfs: float) -> np.ndarray:
    """``wave`` scaled to an RMS of ``dbfs`` dB relative to full scale (silence stays silent)."""
    r = rms(wave)
    return (np.asarray(wave, dtype=np.float32) * (10 ** (dbfs / 20) / r if r > 0 else 1.0)).astype(np.float32)


# ----------------------------------------------------------------------------- spectrograms

def _window(n_fft: int, device=None) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float32, device=device)


def stft(wave, n_fft: int, hop: int) -> torch.Tensor:
    """The complex short-time Fourier transform, (n_fft // 2 + 1, frames) (or batched
    (B, bins, frames) for a (B, samples) input): periodic Hann windows of n_fft samples every
    ``hop`` samples, frames centred (the signal reflected at its ends)."""
    w = torch.as_tensor(np.asarray(wave, dtype=np.float32) if not torch.is_tensor(wave) else wave).float()
    return torch.stft(w, n_fft, hop, window=_window(n_fft, w.device), center=True, return_complex=True)


def istft(spec: torch.Tensor, n_fft: int, hop: int, length: Optional[int] = None) -> torch.Tensor:
    """The inverse of :func:`stft` (least-squares overlap-add); ``length`` samples when given."""
    return torch.istft(spec, n_fft, hop, window=_window(n_fft, spec.device), center=True, length=length)


def to_db(magnitude: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """20 log10 of a magnitude (a floor of ``eps`` keeps silence finite)."""
    return 20.0 * torch.log10(magnitude.abs().clamp_min(eps))


def from_db(db: torch.Tensor) -> torch.Tensor:
    """The magnitude of ``db`` decibels (the inverse of :func:`to_db`)."""
    return torch.pow(10.0, db / 20.0)


@dataclass(frozen=True)
class SpectrogramScale:
    """Decibels between ``floor`` and ``ceiling`` onto [-1, 1] (clipped outside), linearly; a
    stored picture holds ``round((v + 1) * 127.5)``, so one step of 0..255 is
    (ceiling - floor) / 255 dB."""
    floor: float = -60.0
    ceiling: float = 30.0

    def __post_init__(self):
        if not self.ceiling > self.floor:
            raise ValueError(f"the ceiling ({self.ceiling} dB) must lie above the floor ({self.floor} dB)")

    def to_unit(self, db: torch.Tensor) -> torch.Tensor:
        return ((db - self.floor) / (self.ceiling - self.floor) * 2.0 - 1.0).clamp(-1.0, 1.0)

    def from_unit(self, v: torch.Tensor) -> torch.Tensor:
        return (v.float().clamp(-1.0, 1.0) + 1.0) / 2.0 * (self.ceiling - self.floor) + self.floor

    def to_uint8(self, db: torch.Tensor) -> torch.Tensor:
        return self.to_unit(db).add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)

    def from_uint8(self, stored: torch.Tensor) -> torch.Tensor:
        return self.from_unit(stored.float() / 127.5 - 1.0)


def resynthesise(magnitude: torch.Tensor, phase: torch.Tensor, n_fft: int, hop: int,
                 length: Optional[int] = None) -> np.ndarray:
    """A waveform from a magnitude and a given phase (radians), both (bins, frames)."""
    spec = torch.polar(magnitude.float(), phase.float())
    return istft(spec, n_fft, hop, length).numpy().astype(np.float32)


def griffin_lim(magnitude: torch.Tensor, n_fft: int, hop: int, iterations: int = 64, momentum: float = 0.99,
                length: Optional[int] = None, phase: Optional[torch.Tensor] = None,
                seed: int = 0) -> np.ndarray:
    """A waveform whose STFT magnitude is close to ``magnitude`` (bins, frames), by the fast
    Griffin-Lim algorithm: starting from ``phase`` (default: uniform random, seeded), each
    iteration inverts the current complex spectrogram, transforms the waveform again, and keeps
    that phase with the wanted magnitude; ``momentum`` (0: the original Griffin-Lim) adds
    ``momentum`` times the change since the last iteration to the projection, which converges
    much faster."""
    mag = magnitude.float()
    if phase is None:
        g = torch.Generator().manual_seed(seed)
        phase = torch.rand(mag.shape, generator=g) * (2 * math.pi)
    target_len = length if length is not None else hop * (mag.shape[-1] - 1)
    spec = torch.polar(mag, phase.float())
    previous = torch.zeros_like(spec)
    for _ in range(iterations):
        rebuilt = stft(istft(spec, n_fft, hop, target_len), n_fft, hop)
        accelerated = rebuilt + momentum * (rebuilt - previous) if momentum else rebuilt
        previous = rebuilt
        spec = mag * torch.exp(1j * torch.angle(accelerated))
    return istft(spec, n_fft, hop, target_len).numpy().astype(np.float32)


# ----------------------------------------------------------------------------- noise

def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of Gaussian white noise, scaled to unit RMS."""
    x = rng.standard_normal(n)
    return (x / (rms(x) + 1e-12)).astype(np.float32)


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of noise whose power spectrum falls as 1/f^exponent (0 white, 1 pink,
    2 brown): white noise's spectrum scaled by f^(-exponent/2) (the zero frequency removed),
    normalised to unit RMS (its mean is 0: the zero frequency is removed)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    scale = np.zeros_like(f)
    scale[1:] = f[1:] ** (-exponent / 2.0)
    shaped = np.fft.irfft(spectrum * scale, n)
    return (shaped / (rms(shaped) + 1e-12)).astype(np.float32)


def babble_noise(n: int, talkers: Sequence[np.ndarray], rng: np.random.Generator, count: int = 4) -> np.ndarray:
    """``n`` samples of babble: ``count`` utterances drawn from ``talkers`` (with replacement when
    there are fewer), each at unit RMS, looped and started at a random offset, summed, and
    normalised to unit RMS."""
    if not talkers:
        raise ValueError("babble needs other utterances to sum")
    out = np.zeros(n, dtype=np.float64)
    picks = rng.choice(len(talkers), size=count, replace=len(talkers) < count)
    for k in picks:
        t = np.asarray(talkers[k], dtype=np.float64)
        t = t / (rms(t) + 1e-12)
        start = int(rng.integers(0, len(t)))
        out += np.resize(np.roll(t, -start), n)
    return (out / (rms(out) + 1e-12)).astype(np.float32)


def make_noise(kind: str, n: int, rng: np.random.Generator,
               talkers: Optional[Sequence[np.ndarray]] = None) -> np.ndarray:
    """``n`` samples of noise of the named kind (:data:`NOISES`), unit RMS."""
    if kind == "white":
        return white_noise(n, rng)
    if kind == "pink":
        return coloured_noise(n, 1.0, rng)
    if kind == "brown":
        return coloured_noise(n, 2.0, rng)
    if kind == "babble":
        return babble_noise(n, talkers or [], rng)
    raise ValueError(f"unknown noise {kind!r}; one of {', '.join(NOISES)}")


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """clean + g noise with g chosen so that 10 log10(P_clean / P_(g noise)) = ``snr_db``
    (powers: means of squares over the whole signal); ``noise`` as long as ``clean``."""
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)[:len(clean)]
    if len(noise) != len(clean):
        raise ValueError(f"the noise ({len(noise)} samples) is shorter than the signal ({len(clean)})")
    p_clean, p_noise = np.mean(clean ** 2), np.mean(noise ** 2)
    g = math.sqrt(p_clean / (p_noise * 10 ** (snr_db / 10))) if p_noise > 0 else 0.0
    return (clean + g * noise).astype(np.float32)


# ----------------------------------------------------------------------------- measures

def snr(clean: np.ndarray, estimate: np.ndarray) -> float:
    """10 log10(sum clean^2 / sum (clean - estimate)^2), in dB (the estimate cut or the pair
    cut to the shorter)."""
    n = min(len(clean), len(estimate))
    c = np.asarray(clean[:n], dtype=np.float64)
    e = c - np.asarray(estimate[:n], dtype=np.float64)
    return float(10 * np.log10(np.sum(c * c) / max(np.sum(e * e), 1e-20)))


def segmental_snr(clean: np.ndarray, estimate: np.ndarray, rate: int = SAMPLE_RATE, frame_ms: float = 20.0,
                  low: float = -10.0, high: float = 35.0) -> float:
    """The mean over non-overlapping frames of ``frame_ms`` of each frame's SNR, clamped to
    [low, high] dB (so silent frames and perfect ones do not dominate)."""
    n = min(len(clean), len(estimate))
    size = max(1, int(round(rate * frame_ms / 1000)))
    frames = n // size
    if frames == 0:
        raise ValueError(f"a segmental SNR needs at least one frame of {size} samples, got {n}")
    c = np.asarray(clean[:frames * size], dtype=np.float64).reshape(frames, size)
    e = c - np.asarray(estimate[:frames * size], dtype=np.float64).reshape(frames, size)
    per = 10 * np.log10(np.sum(c * c, 1) / np.maximum(np.sum(e * e, 1), 1e-20) + 1e-20)
    return float(np.mean(np.clip(per, low, high)))


def spectral_subtraction(noisy: np.ndarray, n_fft: int = 512, hop: int = 128, noise_fraction: float = 0.1,
                         over: float = 2.0, floor: float = 0.02) -> np.ndarray:
    """The classical enhancer (Berouti et al. 1979): the noise's power spectrum is estimated as the
    mean over the ``noise_fraction`` of frames with the lowest energy (the pauses); each frame's
    power has ``over`` times it subtracted, with a floor of ``floor`` times the noisy power; the
    result keeps the noisy phase."""
    spec = stft(noisy, n_fft, hop)
    power = spec.abs().pow(2)
    energy = power.sum(0)
    k = max(1, int(round(noise_fraction * power.shape[1])))
    quiet = torch.topk(energy, k, largest=False).indices
    noise = power[:, quiet].mean(1, keepdim=True)
    cleaned = torch.maximum(power - over * noise, floor * power)
    out = istft(torch.polar(cleaned.sqrt(), torch.angle(spec)), n_fft, hop, len(noisy))
    return out.numpy().astype(np.float32)
