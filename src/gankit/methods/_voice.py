"""Voice conversion with the translation methods: whole utterances through cyclegan, stargan or disentangle.

"Unsupervised Conditional Generation by GAN" in the lectures: voice conversion is translation
between speakers without parallel recordings. The ``voices`` data set
(:mod:`gankit.data.speech`) gives log-magnitude spectrogram segments of two or more espeak-ng
voices, each speaking sentences of its own. Three methods take it as they take pictures:

* ``cyclegan`` between two voices: ``data`` and ``data_b`` are the same ``voices`` section cut by
  ``half: first`` / ``half: second`` (the first and second voice); A -> B is the generator,
  B -> A ``generator_ba`` (configs/voice_cyclegan.yaml);
* ``stargan`` and ``disentangle`` on all the voices at once, the voice the label field
  ``domain`` (configs/voice_disentangle.yaml); disentangle's content encoder is the lectures'
  phonetic encoder trained against a speaker classifier, its factor code the speaker code.

:func:`convert_picture` turns a whole spectrogram (any number of frames) into the target voice:
segments of the training width every half segment, the last one ending at the last frame,
all sent through :meth:`~gankit.methods.base.Method.sample` in one call, and overlap-added with
triangular weights normalised by their sum. :func:`convert` does it for a waveform (scaled to the
data's level and back) and finds a phase by Griffin-Lim (:func:`gankit.audio.griffin_lim`) or
takes the source's (``phase="source"``: keeps the source's timing and pitch harmonics, which
pulls the result back towards the source voice). ``gankit sample RUN --input source.wav --out
converted.wav`` calls :func:`convert_file` (cyclegan: ``--to B``, the default, or ``--to A``;
stargan and disentangle: ``--to VOICE`` or ``--label K``; ``--phase source``).

On ``voices`` data these methods' contracts trade ``translation_accuracy`` (which reads garments)
for ``voice_conversion`` (:mod:`gankit.metrics.voice`): :func:`voice_contract`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from .. import audio
from ..errors import ConfigError
from ..metrics import voice as _voice_metrics  # noqa: F401 - registers voice_conversion

__all__ = ["VOICE_DATA", "voice_contract", "is_voice_run", "VoicePlan", "voice_plan", "convert_picture", "convert",
           "convert_file", "PHASES"]

#: the data sets of speakers whose runs are voice conversion
VOICE_DATA = ("voices",)
#: where the phase of a converted spectrogram comes from
PHASES = ("griffin_lim", "source")


def _sources(cfg) -> Dict:
    return getattr(cfg, "sources", None) or {}


def is_voice_run(cfg) -> bool:
    """Whether a run's config translates voices: data ``voices`` (and, for two-domain methods, a
    ``data_b`` of ``voices`` too)."""
    if cfg.data.get("name") not in VOICE_DATA:
        return False
    b = _sources(cfg).get("b")
    return b is None or b.get("name") in VOICE_DATA


def voice_contract(contract, cfg):
    """``contract`` with ``voice_conversion`` in place of ``translation_accuracy`` for a run on
    voices; as it is otherwise."""
    if not is_voice_run(cfg):
        return contract
    metrics = tuple(m for m in contract.metrics if m != "translation_accuracy")
    return dataclasses.replace(contract, metrics=(*metrics, "voice_conversion"))


@dataclasses.dataclass
class VoicePlan:
    """What a voice run converts: ``names`` (every voice of the data section ``section``, without
    its half), ``directions`` ((source voice, target voice) pairs the metric scores) and
    ``two_domains`` (cyclegan's A and B, the voice numbers ``a`` and ``b``)."""
    names: List[str]
    section: Dict
    directions: List[Tuple[int, int]]
    two_domains: bool
    a: int = 0
    b: int = 1

    def given(self, src: Optional[int], dst: int) -> Callable[[torch.Tensor], Dict[str, torch.Tensor]]:
        """The conditions of :meth:`Method.sample` that turn segments of voice ``src`` into ``dst``."""
        if self.two_domains:
            if dst == self.b:
                return lambda segs: {"input": segs}
            return lambda segs: {"input_b": segs}
        return lambda segs: {"input": segs, "domain": torch.full((len(segs),), int(dst), dtype=torch.long)}


def _voice_names(section: Dict) -> List[str]:
    from ..data.speech import voice_utterances
    import inspect

    if section.get("root"):
        return sorted(p.name for p in Path(section["root"]).expanduser().iterdir() if p.is_dir())
    default = inspect.signature(voice_utterances).parameters["voices"].default
    return list(section.get("voices") or default or ["en-us", "en-us+f3"])


def voice_plan(method) -> VoicePlan:
    """The :class:`VoicePlan` of a run's method; a ConfigError for a run that is no voice run."""
    cfg = method.cfg
    name = cfg.method.get("name")
    if not is_voice_run(cfg):
        raise ConfigError(f"this {name} run was trained on {cfg.data.get('name')}, not on voices: voice conversion "
                          "takes a run of cyclegan, stargan or disentangle on data voices "
                          "(configs/voice_cyclegan.yaml, configs/voice_disentangle.yaml)")
    section = {k: v for k, v in cfg.data.items() if k not in ("half", "per_class", "split")}
    names = _voice_names(section)
    if "b.x" in method.info.fields:         # two domains: data (A) and data_b (B), halves of one voices section
        b_section = dict(_sources(cfg)["b"])
        halves = (cfg.data.get("half", "all"), b_section.pop("half", "all"))
        b_section = {k: v for k, v in b_section.items() if k not in ("per_class", "split")}
        if len(names) != 2 or set(halves) != {"first", "second"} or b_section != section:
            raise ConfigError("a cyclegan voice run converts between two voices: give data and data_b the same voices "
                              "section with two voices, data.half=first and data_b.half=second (see "
                              "configs/voice_cyclegan.yaml)")
        a = 0 if halves[0] == "first" else 1
        return VoicePlan(names, section, [(a, 1 - a)], True, a, 1 - a)
    field = method.info.fields.get("domain")
    if field is None:
        raise ConfigError(f"method {name} does not convert voices: use cyclegan, stargan or disentangle")
    v = len(names)
    return VoicePlan(names, section, [(k, (k + 1) % v) for k in range(v)], False)


def _starts(t: int, frames: int, stride: int) -> List[int]:
    starts = list(range(0, t - frames + 1, stride))
    if starts[-1] != t - frames:
        starts.append(t - frames)
    return starts


def convert_picture(method, picture: torch.Tensor, given: Callable[[torch.Tensor], Dict[str, torch.Tensor]],
                    frames: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A whole spectrogram ``picture`` ([-1, 1], (bins, T)) converted by ``method``: segments of
    ``frames`` every ``frames // 2``, the conditions ``given(segments)``, overlap-added with
    triangular weights; (bins, T)."""
    bins, t = picture.shape
    padded = picture if t >= frames else torch.cat([picture, torch.full((bins, frames - t), -1.0)], 1)
    starts = _starts(padded.shape[1], frames, max(1, frames // 2))
    segs = torch.stack([padded[:, s:s + frames] for s in starts])[:, None]
    out = method.sample(len(segs), given=given(segs), generator=generator)["x"][:, 0].float()
    weight = torch.minimum(torch.arange(1, frames + 1), torch.arange(frames, 0, -1)).float()
    total = torch.zeros(bins, padded.shape[1])
    norm = torch.zeros(padded.shape[1])
    for s, seg in zip(starts, out):
        total[:, s:s + frames] += seg * weight
        norm[s:s + frames] += weight
    return (total / norm).clamp(-1.0, 1.0)[:, :t]


def convert(method, wave: np.ndarray, settings, given: Callable[[torch.Tensor], Dict[str, torch.Tensor]],
            phase: str = "griffin_lim", iterations: int = 64, seed: int = 0) -> np.ndarray:
    """``wave`` (mono float, 16 kHz) converted by ``method`` (trained on spectrograms made with
    ``settings``) with the conditions ``given``: scaled to the data's level, converted by
    :func:`convert_picture`, resynthesised with a Griffin-Lim phase (``iterations``) or the
    source's, and scaled back."""
    if phase not in PHASES:
        raise ConfigError(f"--phase {phase}: choose {' or '.join(PHASES)}")
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1 or len(wave) < settings.n_fft:
        raise ConfigError(f"a waveform to convert must be mono and at least {settings.n_fft} samples long, got "
                          f"shape {wave.shape}")
    shape = tuple(method.info.fields["x"].shape)
    level = audio.rms(wave)
    gain = 10 ** (settings.level / 20) / level if level > 0 else 1.0
    picture, source_phase = settings.picture(wave * gain)
    if picture.shape[0] != shape[1]:
        raise ConfigError(f"this run was trained on spectrograms of {shape[1]} frequency bins; the data settings give "
                          f"{picture.shape[0]}")
    out = convert_picture(method, picture, given, shape[2], torch.Generator().manual_seed(seed))
    magnitude = audio.from_db(settings.scale.from_unit(out.flip(0)))
    if phase == "source":
        result = audio.resynthesise(magnitude, source_phase, settings.n_fft, settings.hop, len(wave))
    else:
        result = audio.griffin_lim(magnitude, settings.n_fft, settings.hop, iterations, length=len(wave), seed=seed)
    return (result / gain).astype(np.float32)


def _target(plan: VoicePlan, method_name: str, to: Optional[str], label: Optional[str]) -> Tuple[Optional[int], int]:
    """(source voice when known, target voice) that ``--to`` / ``--label`` name."""
    if plan.two_domains:
        if label is not None:
            raise ConfigError("--label: a cyclegan voice run converts A -> B (the default, --to B) or B -> A (--to A)")
        if to in (None, "B", plan.names[plan.b]):
            return plan.a, plan.b
        if to in ("A", plan.names[plan.a]):
            return plan.b, plan.a
        raise ConfigError(f"--to {to}: a cyclegan voice run converts to B ({plan.names[plan.b]}, the default) or back "
                          f"to A ({plan.names[plan.a]})")
    wanted = to if to is not None else label
    if wanted is None:
        raise ConfigError(f"this {method_name} run converts into any of its voices: name the target with --to VOICE "
                          f"({', '.join(plan.names)}) or --label 0..{len(plan.names) - 1}")
    if to is not None and label is not None:
        raise ConfigError("--to and --label both name the target voice; give one of them")
    wanted = str(wanted).strip()
    if wanted in plan.names:
        return None, plan.names.index(wanted)
    if wanted.isdigit() and int(wanted) < len(plan.names):
        return None, int(wanted)
    raise ConfigError(f"--to/--label {wanted}: this run's voices are {', '.join(plan.names)} "
                      f"(or 0..{len(plan.names) - 1})")


def convert_file(run, source: Union[str, Path], target: Union[str, Path], to: Optional[str] = None,
                 label: Optional[str] = None, phase: str = "griffin_lim", seed: int = 0) -> Path:
    """The WAV file ``source`` (any rate: resampled to 16 kHz; channels averaged) converted by the
    voice run ``run`` into the voice ``to``/``label`` names and written to ``target``."""
    from ..data.speech import spectrogram_settings

    plan = voice_plan(run.method)
    src, dst = _target(plan, run.config.method["name"], to, label)
    settings = spectrogram_settings(plan.section)
    out = convert(run.method, audio.read_wav(source), settings, plan.given(src, dst), phase, seed=seed)
    return audio.write_wav(target, out)
