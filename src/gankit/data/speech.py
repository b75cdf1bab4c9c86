"""Speech as pictures: synthesised English sentences, noisy and clean, as log-magnitude spectrograms.

"Conditional Generation by GAN" in the lectures: speech enhancement is a conditional GAN whose
generator turns noisy speech into clean speech and whose discriminator sees the noisy input
beside the output (SEGAN, Pascual et al. 2017). The data here gives such a method its pairs.

Utterances. The sentences are quotations of the ``fortunes`` package (the ``quotes`` reader of
:mod:`gankit.data.sequences`), kept when they have ``min_words``..``max_words`` words and only
plain letters and punctuation, distinct, in an order seeded by ``seed``: the first ``n_test``
are the test split's, the next ``n_train`` the train split's, so no sentence is in both.
Sentence i of a split is spoken by espeak-ng (``espeak-ng -v VOICE -s SPEED -w FILE TEXT``, a
subprocess) in voice ``voices[i mod V]`` at speed ``speeds[(i div V) mod S]`` (words per
minute), resampled from espeak's 22,050 Hz to 16 kHz and set to an RMS of ``level`` dBFS. The
test split has voices, speeds and noise types of its own (``test_voices``, ``test_speeds``,
``test_noises``). Clean utterances are synthesised once and cached as one ``.npz`` per split
under ``data.cache`` (default ``$GANKIT_CACHE/speech`` or ``~/.cache/gankit/speech``), its name a
hash of the sentences, voices, speeds, level and espeak-ng's version, written to a temporary
file and renamed. ``data.root`` (a folder of WAV files of clean speech, any rate: resampled)
replaces the synthesised sentences: its files sorted, in an order seeded by ``seed``, the first
``test_fraction`` held out.

Noise. Utterance i gets ``mixtures`` noisy versions; version j is mixture n = i mixtures + j
of the split, with noise type ``noises[n mod K]`` and SNR ``snrs[(n div K) mod M]`` (SEGAN's 0,
5, 10 and 15 dB for training, 2.5, 7.5, 12.5 and 17.5 for testing): every K M consecutive
mixtures hold each (noise, SNR) pair once, so noise type and SNR are independent and a split
of a multiple of K M mixtures has every pair equally often. The noise is drawn by a generator
seeded with (seed, split, i, j); babble sums other utterances of the same split (so the test split's babble is
of held-out talkers). The SNR is exact over the utterance (:func:`gankit.audio.mix`).

Segments. Each (noisy, clean) pair becomes STFTs (``n_fft`` 254: 128 frequency bins, 0 to
8 kHz; hop ``hop`` samples; periodic Hann windows), whose magnitudes in dB are mapped linearly
from [``floor``, ``ceiling``] (default -55..25 dB; clipped outside) onto [-1, 1] and stored as
uint8 1-channel pictures (bins, ``frames``), the lowest frequency at the bottom row, cut every
``stride`` frames (utterances shorter than one segment padded with silence). ``speech`` has
fields ``input`` (noisy) and ``x`` (clean), paired like the image pairs of
:mod:`gankit.data.pairs`, so pix2pix-style methods take it; the phases and waveforms that
resynthesis and the speech metrics need come from :func:`speech_utterances` (the same
utterances, as waveforms) and :func:`spectrogram_settings`.

``voices``: clean utterances of two or more voices (``voices``; voice k speaks sentences k,
k + V, ..., so no sentence is spoken twice) as spectrogram segments ``x`` with the label field
``domain`` (the voice), for stargan and disentangle; the segments are ordered by voice with as
many of each, so with two voices ``data.half=first`` is the first voice and ``half=second`` the
second: cyclegan's two domains are ``data`` and ``data_b`` with those halves. ``data.root`` is
a folder with one subfolder of WAV files per speaker.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import audio
from ..errors import ConfigError, DataError
from ..registries import DATASETS
from .base import Dataset

__all__ = ["Utterance", "SpectrogramSettings", "spectrogram_settings", "sentences", "espeak",
           "speech_utterances", "voice_utterances", "segments", "cache_dir"]

Split = Literal["train", "test"]

#: voices of the train and test splits (espeak-ng names; +f3 a female variant)
TRAIN_VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-us+f3"]
TEST_VOICES = ["en-029", "en-gb-x-rp+f2"]
TRAIN_SPEEDS = [140, 170, 200]
TEST_SPEEDS = [155, 185]
TRAIN_SNRS = [0.0, 5.0, 10.0, 15.0]
TEST_SNRS = [2.5, 7.5, 12.5, 17.5]
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z ,.;:'!?-]*$")


@dataclass
class Utterance:
    """One utterance: its clean waveform, a noisy version (None for clean-only sets) and what
    made them."""
    clean: np.ndarray
    noisy: Optional[np.ndarray]
    text: str
    voice: str
    noise: str = ""
    snr: float = float("nan")


@dataclass(frozen=True)
class SpectrogramSettings:
    """How waveforms become the stored spectrogram pictures, and back."""
    n_fft: int = 254
    hop: int = 127
    frames: int = 64
    floor: float = -55.0
    ceiling: float = 25.0
    level: float = -25.0

    @property
    def scale(self) -> audio.SpectrogramScale:
        return audio.SpectrogramScale(self.floor, self.ceiling)

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def picture(self, wave: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
        """(the whole waveform's spectrogram in [-1, 1], (bins, T) with the lowest frequency in
        the last row, and its phase (bins, T), rows in the STFT's order)."""
        spec = audio.stft(wave, self.n_fft, self.hop)
        return self.scale.to_unit(audio.to_db(spec.abs())).flip(0), torch.angle(spec)

    def wave(self, picture: torch.Tensor, phase: torch.Tensor, length: int) -> np.ndarray:
        """The waveform of a [-1, 1] picture (bins, T) with the given phase."""
        magnitude = audio.from_db(self.scale.from_unit(picture.flip(0)))
        return audio.resynthesise(magnitude, phase, self.n_fft, self.hop, length)


def spectrogram_settings(section: Dict) -> SpectrogramSettings:
    """The spectrogram settings of a data config section (``speech`` or ``voices``; defaults for
    the keys it leaves out)."""
    keys = SpectrogramSettings.__dataclass_fields__
    return SpectrogramSettings(**{k: section[k] for k in keys if k in section and section[k] is not None})


def _check_settings(s: SpectrogramSettings) -> None:
    if s.n_fft < 8 or s.hop < 1 or s.hop > s.n_fft // 2:
        raise ConfigError(f"data.n_fft ({s.n_fft}) must be at least 8 and data.hop ({s.hop}) 1..n_fft/2 "
                          "(windows must overlap by half or more to be inverted)")
    if s.frames < 4:
        raise ConfigError(f"data.frames must be at least 4, got {s.frames}")
    if not s.ceiling > s.floor:
        raise ConfigError(f"data.ceiling ({s.ceiling} dB) must lie above data.floor ({s.floor} dB)")


def cache_dir(cache: Optional[str] = None) -> Path:
    """Where synthesised utterances are kept."""
    if cache:
        return Path(cache).expanduser()
    return Path(os.environ.get("GANKIT_CACHE", Path.home() / ".cache" / "gankit")) / "speech"


# ----------------------------------------------------------------------------- sentences and voices

def sentences(min_words: int = 4, max_words: int = 12, seed: int = 0, root: Optional[str] = None) -> List[str]:
    """The fortunes quotations of ``min_words``..``max_words`` words made only of plain letters
    and punctuation, distinct, in an order seeded by ``seed``."""
    from .sequences import FORTUNES_DIR, QUOTE_FILES, _read, quote_entries

    folder = Path(root or FORTUNES_DIR)
    if not (folder / "wisdom").is_file():
        raise DataError(f"{folder / 'wisdom'} is missing: the sentences are the fortunes quotations; install them "
                        "with `apt-get install -y fortunes` (as root), or give WAV files with data.root=FOLDER")
    found = set()
    for name in QUOTE_FILES:
        if (folder / name).is_file():
            for q in quote_entries(_read(folder / name, "fortunes")):
                if _PLAIN.match(q) and min_words <= len(q.split()) <= max_words:
                    found.add(q)
    ordered = sorted(found)
    order = np.random.default_rng(seed).permutation(len(ordered))
    return [ordered[i] for i in order]


def _espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DataError("espeak-ng is not installed (it speaks the sentences of the speech data sets): install it "
                        "with `apt-get install espeak-ng sox` (as root), or give WAV files with data.root=FOLDER")
    return exe


def _espeak_version() -> str:
    out = subprocess.run([_espeak_binary(), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def espeak(text: str, voice: str, speed: int, rate: int = audio.SAMPLE_RATE) -> np.ndarray:
    """``text`` spoken by espeak-ng in ``voice`` at ``speed`` words per minute, mono float32 at
    ``rate`` Hz."""
    exe = _espeak_binary()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        done = subprocess.run([exe, "-v", voice, "-s", str(int(speed)), "-w", str(out), text],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0 or not out.is_file():
            raise DataError(f"espeak-ng could not speak in voice {voice!r} ({done.stderr.strip()}); "
                            "`espeak-ng --voices=en` lists the English voices")
        return audio.read_wav(out, rate)


def _atomic_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        audio.publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _spoken(items: Sequence[Tuple[str, str, int]], level: float, cache: Optional[str]) -> List[np.ndarray]:
    """The clean waveforms of (text, voice, speed) items, synthesised once and cached."""
    key = hashlib.sha1(json.dumps([list(items), level, audio.SAMPLE_RATE, _espeak_version()]).encode()).hexdigest()
    path = cache_dir(cache) / f"clean-{key[:16]}.npz"
    if path.is_file():
        try:
            with np.load(path) as f:
                wave, ends = f["wave"], f["ends"]
            return np.split(wave, ends[:-1])
        except (OSError, ValueError, KeyError):
            pass                                     # unreadable: synthesised again
    waves = [audio.set_level(espeak(text, voice, speed), level) for text, voice, speed in items]
    _atomic_npz(path, wave=np.concatenate(waves), ends=np.cumsum([len(w) for w in waves]))
    return waves


def _wav_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".wav", ".flac", ".ogg") and p.is_file())


def _check_root(root: str) -> Path:
    p = Path(root).expanduser()
    if not p.is_dir():
        raise DataError(f"data.root: {p} is not a folder; give a folder of WAV files")
    return p


def _held_out(n: int, test_fraction: float, seed: int, split: str) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(n - 1, max(1, int(round(test_fraction * n))))
    return np.sort(order[:n_test] if split == "test" else order[n_test:])


# ----------------------------------------------------------------------------- speech

def speech_utterances(split: Split = "train", n_train: int = 96, n_test: int = 16, mixtures: int = 2,
                      voices: Optional[List[str]] = None, test_voices: Optional[List[str]] = None,
                      speeds: Optional[List[int]] = None, test_speeds: Optional[List[int]] = None,
                      noises: Optional[List[str]] = None, test_noises: Optional[List[str]] = None,
                      snrs: Optional[List[float]] = None, test_snrs: Optional[List[float]] = None,
                      min_words: int = 4, max_words: int = 12, level: float = -25.0, seed: int = 0,
                      root: Optional[str] = None, test_fraction: float = 0.15, cache: Optional[str] = None,
                      **_spectrogram) -> List[Utterance]:
    """The (noisy, clean) utterances of the ``speech`` data set's ``split`` as waveforms (what
    its segments are cut from; the module says how they are made). Takes the data set's
    options, so ``speech_utterances(**run.config.data)`` gives a run's utterances."""
    test = split == "test"
    voices = list((test_voices or TEST_VOICES) if test else (voices or TRAIN_VOICES))
    speeds = list((test_speeds or TEST_SPEEDS) if test else (speeds or TRAIN_SPEEDS))
    kinds = list((test_noises or ["brown", "babble"]) if test else (noises or ["white", "pink", "babble"]))
    levels = list((test_snrs or TEST_SNRS) if test else (snrs or TRAIN_SNRS))
    bad = [k for k in kinds if k not in audio.NOISES]
    if bad:
        raise ConfigError(f"data.{'test_noises' if test else 'noises'}: unknown noise {bad[0]!r}; choose from "
                          f"{', '.join(audio.NOISES)}")
    if mixtures < 1 or n_train < 1 or n_test < 1:
        raise ConfigError(f"data.mixtures ({mixtures}), data.n_train ({n_train}) and data.n_test ({n_test}) must "
                          "be positive")
    if root:
        folder = _check_root(root)
        files = _wav_files(folder)
        if len(files) < 2:
            raise DataError(f"data.root: {folder} holds {len(files)} WAV file(s); give at least two (one is held "
                            "out for the test split)")
        chosen = [files[i] for i in _held_out(len(files), test_fraction, seed, split)]
        cleans = [audio.set_level(audio.read_wav(f), level) for f in chosen]
        texts, spoken_by = [f.name for f in chosen], ["file"] * len(chosen)
    else:
        pool = sentences(min_words, max_words, seed)
        if len(pool) < n_train + n_test:
            raise DataError(f"{len(pool)} sentences of {min_words}..{max_words} words, fewer than data.n_train + "
                            f"data.n_test ({n_train + n_test}); lower them or widen the word range")
        texts = pool[:n_test] if test else pool[n_test:n_test + n_train]
        spoken_by = [voices[i % len(voices)] for i in range(len(texts))]
        items = [(t, spoken_by[i], int(speeds[(i // len(voices)) % len(speeds)])) for i, t in enumerate(texts)]
        cleans = _spoken(items, level, cache)
    out = []
    for i, clean in enumerate(cleans):
        others = [c for k, c in enumerate(cleans) if k != i] or [clean]
        for j in range(mixtures):
            n = i * mixtures + j          # (noise, SNR) over the K x M grid, noise fastest
            kind = kinds[n % len(kinds)]
            snr = float(levels[(n // len(kinds)) % len(levels)])
            rng = np.random.default_rng([seed, int(test), i, j])
            noise = audio.make_noise(kind, len(clean), rng, others)
            out.append(Utterance(clean, audio.mix(clean, noise, snr), texts[i], spoken_by[i], kind, snr))
    return out


def segments(wave: np.ndarray, settings: SpectrogramSettings, stride: int) -> torch.Tensor:
    """A waveform's spectrogram segments as uint8 pictures (K, 1, bins, frames), one every
    ``stride`` frames, the last reaching the end (silence appended to a short one)."""
    picture, _ = settings.picture(wave)
    stored = picture.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    t, f = stored.shape[1], settings.frames
    if t < f:
        stored = torch.cat([stored, torch.zeros(stored.shape[0], f - t, dtype=torch.uint8)], 1)
        t = f
    starts = list(range(0, t - f + 1, stride))
    if starts[-1] != t - f:
        starts.append(t - f)
    return torch.stack([stored[:, s:s + f] for s in starts])[:, None]


def _check_stride(stride: Optional[int], frames: int) -> int:
    stride = frames // 2 if stride is None else stride
    if not 1 <= stride <= frames:
        raise ConfigError(f"data.stride must be 1..data.frames ({frames}), got {stride}")
    return stride


@DATASETS.register("speech")
def speech(split: Split = "train", n_train: int = 96, n_test: int = 16, mixtures: int = 2,
           voices: Optional[List[str]] = None, test_voices: Optional[List[str]] = None,
           speeds: Optional[List[int]] = None, test_speeds: Optional[List[int]] = None,
           noises: Optional[List[str]] = None, test_noises: Optional[List[str]] = None,
           snrs: Optional[List[float]] = None, test_snrs: Optional[List[float]] = None,
           min_words: int = 4, max_words: int = 12, level: float = -25.0, n_fft: int = 254, hop: int = 127,
           frames: int = 64, stride: Optional[int] = None, floor: float = -55.0, ceiling: float = 25.0,
           seed: int = 0, root: Optional[str] = None, test_fraction: float = 0.15,
           cache: Optional[str] = None) -> Dataset:
    """Noisy (input) and clean (x) log-magnitude spectrogram segments of English sentences spoken
    by espeak-ng (or data.root's WAV files) with white/pink/babble noise at 0-15 dB SNR; the test
    split held-out sentences, voices, speeds, brown/babble noise at 2.5-17.5 dB."""
    settings = SpectrogramSettings(n_fft, hop, frames, floor, ceiling, level)
    _check_settings(settings)
    stride = _check_stride(stride, frames)
    utts = speech_utterances(split, n_train, n_test, mixtures, voices, test_voices, speeds, test_speeds, noises,
                             test_noises, snrs, test_snrs, min_words, max_words, level, seed, root, test_fraction,
                             cache)
    x, noisy = [], []
    for u in utts:
        x.append(segments(u.clean, settings, stride))
        noisy.append(segments(u.noisy, settings, stride))
    return Dataset(x=torch.cat(x), kind="image", name="speech", extra={"input": torch.cat(noisy)},
                   extra_kinds={"input": "image"})


# ----------------------------------------------------------------------------- voices

def voice_utterances(split: Split = "train", voices: Optional[List[str]] = None, n_sentences: int = 48,
                     n_test: int = 8, speed: int = 160, min_words: int = 4, max_words: int = 12,
                     level: float = -25.0, seed: int = 0, root: Optional[str] = None, test_fraction: float = 0.15,
                     cache: Optional[str] = None, **_spectrogram) -> Tuple[List[str], List[List[np.ndarray]]]:
    """(the voices' names, each voice's clean utterances) of the ``voices`` data set's ``split``."""
    if root:
        folder = _check_root(root)
        speakers = sorted(p for p in folder.iterdir() if p.is_dir() and _wav_files(p))
        if len(speakers) < 2:
            raise DataError(f"data.root: {folder} needs a subfolder of WAV files per speaker, at least two; found "
                            f"{len(speakers)}")
        waves = []
        for s in speakers:
            files = _wav_files(s)
            keep = _held_out(len(files), test_fraction, seed, split) if len(files) > 1 else [0]
            waves.append([audio.set_level(audio.read_wav(files[i]), level) for i in keep])
        return [s.name for s in speakers], waves
    voices = list(voices or ["en-us", "en-us+f3"])
    if len(voices) < 2 or len(set(voices)) != len(voices):
        raise ConfigError(f"data.voices must name two or more different espeak-ng voices, got {voices}")
    if n_sentences < 1 or n_test < 1:
        raise ConfigError(f"data.n_sentences ({n_sentences}) and data.n_test ({n_test}) must be positive")
    v = len(voices)
    pool = sentences(min_words, max_words, seed)
    need = v * (n_sentences + n_test)
    if len(pool) < need:
        raise DataError(f"{len(pool)} sentences, fewer than the {need} that {v} voices need; lower data.n_sentences")
    texts = pool[:v * n_test] if split == "test" else pool[v * n_test:need]
    items = [(t, voices[i % v], int(speed)) for i, t in enumerate(texts)]
    spoken = _spoken(items, level, cache)
    return voices, [spoken[k::v] for k in range(v)]


@DATASETS.register("voices")
def voices(split: Split = "train", voices: Optional[List[str]] = None, n_sentences: int = 48, n_test: int = 8,
           speed: int = 160, min_words: int = 4, max_words: int = 12, level: float = -25.0, n_fft: int = 254,
           hop: int = 127, frames: int = 64, stride: Optional[int] = None, floor: float = -55.0,
           ceiling: float = 25.0, seed: int = 0, root: Optional[str] = None, test_fraction: float = 0.15,
           cache: Optional[str] = None) -> Dataset:
    """Clean spectrogram segments of two or more espeak-ng voices (or data.root's speaker
    subfolders) with their voice as the label field 'domain', ordered by voice with as many of
    each (data.half=first/second: the first/second of two voices)."""
    settings = SpectrogramSettings(n_fft, hop, frames, floor, ceiling, level)
    _check_settings(settings)
    stride = _check_stride(stride, frames)
    names, waves = voice_utterances(split, voices, n_sentences, n_test, speed, min_words, max_words, level, seed,
                                    root, test_fraction, cache)
    per_voice = [torch.cat([segments(w, settings, stride) for w in ws]) for ws in waves]
    n = min(len(p) for p in per_voice)
    x = torch.cat([p[:n] for p in per_voice])
    domain = torch.arange(len(per_voice)).repeat_interleave(n)
    return Dataset(x=x, kind="image", name="voices", extra={"domain": domain}, extra_kinds={"domain": "label"},
                   extra_classes={"domain": list(names)})
