"""Voice conversion: DTW and the mel-cepstral distance against closed forms and an exhaustive
recursion (no espeak-ng needed), overlap-add of converted segments, and, with espeak-ng, a short
cyclegan run between two voices judged by voice_conversion, the WAV round trip through
`gankit sample` and its errors."""
from __future__ import annotations

import functools
import shutil

import numpy as np
import pytest
import soundfile
import torch

import gankit
from gankit import audio
from gankit.cli import main
from gankit.errors import ConfigError
from gankit.methods._voice import convert_picture
from gankit.metrics.voice import (MCD_SCALE, dtw, dtw_distance, mel_cepstra, mel_cepstral_distance,
                                  mel_filterbank)

HAVE_ESPEAK = shutil.which("espeak-ng") is not None


def exhaustive_dtw(c: np.ndarray) -> float:
    """The DTW recursion written out cell by cell (memoised), for comparison."""
    n, m = c.shape

    @functools.lru_cache(maxsize=None)
    def best(i, j):
        if i == 0 and j == 0:
            return c[0, 0]
        before = [best(a, b) for a, b in ((i - 1, j), (i, j - 1), (i - 1, j - 1)) if a >= 0 and b >= 0]
        return c[i, j] + min(before)

    return best(n - 1, m - 1)


def test_dtw_matches_the_recursion_and_returns_a_valid_path():
    rng = np.random.default_rng(0)
    for _ in range(40):
        c = rng.random((int(rng.integers(1, 8)), int(rng.integers(1, 8))))
        total, path = dtw(c)
        assert total == pytest.approx(exhaustive_dtw(c), abs=1e-12)
        assert path[0] == (0, 0) and path[-1] == (c.shape[0] - 1, c.shape[1] - 1)
        steps = {(b[0] - a[0], b[1] - a[1]) for a, b in zip(path, path[1:])}
        assert steps <= {(1, 0), (0, 1), (1, 1)}
        assert sum(c[i, j] for i, j in path) == pytest.approx(total)


def test_dtw_closed_forms():
    # two constant sequences: every cell costs |a - b| and the shortest path has max(n, m) cells
    assert dtw(np.full((5, 9), 3.0))[0] == pytest.approx(27.0)
    assert dtw_distance(np.full(5, 2.0), np.full(9, -1.0)) == pytest.approx(3.0)
    # a sequence against itself slowed down (every frame twice): aligned at no cost
    x = np.random.default_rng(1).standard_normal((30, 4))
    assert dtw_distance(x, np.repeat(x, 2, 0)) == pytest.approx(0.0, abs=1e-6)
    # one frame against many: the path visits the whole row
    row = np.array([[1.0, 2.0, 4.0]])
    assert dtw(row) == (7.0, [(0, 0), (0, 1), (0, 2)])
    with pytest.raises(ValueError, match="finite"):
        dtw(np.array([[np.nan]]))


def test_mel_cepstra_ignore_loudness_and_the_distance_has_its_closed_form():
    fb = mel_filterbank(24, 64)
    assert fb.shape == (24, 64) and (fb.max(1) <= 1).all() and (fb.max(1) > 0).all()
    assert (fb.sum(0)[1:-1] > 0).all()             # every inner frequency is in some band
    db = np.random.default_rng(2).uniform(-50, 20, (64, 40))
    c = mel_cepstra(db)
    assert c.shape == (40, 13)
    assert mel_cepstra(db + 12.0) == pytest.approx(c, abs=1e-9)   # a gain only moves the zeroth coefficient
    assert mel_cepstral_distance(c, c) == pytest.approx(0.0, abs=1e-6)
    d = np.linspace(-1, 1, 13)
    assert mel_cepstral_distance(c, c + d) == pytest.approx(MCD_SCALE * np.linalg.norm(d), rel=1e-9)


class _Echo:
    """A method that returns its input segments unchanged, with the shape of a voice run."""

    def __init__(self):
        self.calls = []

    def sample(self, n, given=None, generator=None):
        self.calls.append(len(given["input"]))
        return {"x": given["input"].clone()}


def test_overlap_add_of_unchanged_segments_gives_the_picture_back():
    pic = torch.rand(16, 45) * 2 - 1
    echo = _Echo()
    out = convert_picture(echo, pic, lambda segs: {"input": segs}, 8)
    assert out == pytest.approx(pic, abs=1e-6)
    assert echo.calls == [len(list(range(0, 45 - 8 + 1, 4))) + 1]     # one call; the last segment ends at the end
    short = torch.rand(16, 5) * 2 - 1                                  # shorter than a segment
    assert convert_picture(_Echo(), short, lambda segs: {"input": segs}, 8) == pytest.approx(short, abs=1e-6)


# ----------------------------------------------------------------------------- with espeak-ng

VOICES = {"name": "voices", "voices": ["en-us", "en-us+f3"], "n_sentences": 12, "n_test": 3,
          "n_fft": 126, "hop": 63, "frames": 32}


@pytest.fixture(scope="module")
def voice_run(tmp_path_factory):
    if not HAVE_ESPEAK:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng sox)")
    root = tmp_path_factory.mktemp("voices")
    data = {**VOICES, "cache": str(root / "cache")}
    cfg = {"method": {"name": "cyclegan", "cycle_weight": 10.0, "identity_weight": 5.0, "pool": 0},
           "data": {**data, "half": "first"}, "data_b": {**data, "half": "second"},
           "generator": {"name": "resnet", "width": 8, "blocks": 1, "norm": "instance"},
           "generator_ba": {"name": "resnet", "width": 8, "blocks": 1, "norm": "instance"},
           "discriminator": {"name": "patchgan", "receptive_field": 16, "width": 8, "norm": "instance"},
           "discriminator_a": {"name": "patchgan", "receptive_field": 16, "width": 8, "norm": "instance"},
           "train": {"steps": 60, "batch_size": 8, "log_every": 20, "sample_every": 0, "checkpoint_every": 60,
                     "progress": "none"},
           "optim": {"lr_g": 1e-3, "lr_d": 5e-4, "beta1": 0.5},
           "runtime": {"threads": 1}}
    return gankit.train(cfg, out=root / "run"), root


def test_a_short_cyclegan_run_converts_the_speaker_and_keeps_the_words(voice_run, monkeypatch):
    from gankit.metrics.evaluate import evaluate_run

    run, root = voice_run
    monkeypatch.setenv("GANKIT_CACHE", str(root / "eval-cache"))
    assert "voice_conversion" in run.method.contract.metrics
    assert "translation_accuracy" not in run.method.contract.metrics
    r = evaluate_run(gankit.load_run(run.path), metrics=["voice_conversion:utterances=3"], n=8)
    assert r["speaker_classifier_heldout"] > 0.9 and r["speaker_accuracy_real"] > 0.9
    assert r["speaker_accuracy_source"] < 0.2
    assert r["speaker_accuracy"] > r["speaker_accuracy_source"] + 0.1, r       # 60 steps: about 0.2 against 0.01
    assert r["content_distance"] < r["content_distance_chance"], r


def test_cli_converts_a_wav_file_and_refuses_bad_input(voice_run, tmp_path):
    from gankit.data.speech import espeak

    run, _ = voice_run
    source = espeak("The river runs past the old mill.", "en-us", 160)
    soundfile.write(tmp_path / "source.wav", audio.resample(source, 16_000, 22_050), 22_050)
    for phase in ("griffin_lim", "source"):
        out = tmp_path / f"converted-{phase}.wav"
        assert main(["sample", str(run.path), "--input", str(tmp_path / "source.wav"), "--out", str(out),
                     "--phase", phase]) == 0
        info = soundfile.info(out)
        assert info.samplerate == 16_000 and abs(info.frames - len(source)) <= 2
        wave = audio.read_wav(out)
        assert np.isfinite(wave).all() and audio.rms(wave) > 0.1 * audio.rms(source)
    assert main(["sample", str(run.path), "--input", str(tmp_path / "source.wav"), "--out",
                 str(tmp_path / "back.wav"), "--to", "A"]) == 0
    # bad input: a missing file, a target the run has not, a label for a two-voice run
    assert main(["sample", str(run.path), "--input", str(tmp_path / "none.wav"), "--out", str(tmp_path / "x.wav")]) == 2
    assert main(["sample", str(run.path), "--input", str(tmp_path / "source.wav"), "--out", str(tmp_path / "x.wav"),
                 "--to", "C"]) == 2
    assert main(["sample", str(run.path), "--input", str(tmp_path / "source.wav"), "--out", str(tmp_path / "x.wav"),
                 "--label", "1"]) == 2
    assert not (tmp_path / "x.wav").exists()


def test_a_run_of_pictures_refuses_a_wav_file(tmp_path, capsys):
    from conftest import toy_config

    run = gankit.train(toy_config(tmp_path / "toy", steps=2))
    audio.write_wav(tmp_path / "a.wav", np.sin(np.arange(8000) * 0.05).astype(np.float32) * 0.3)
    assert main(["sample", str(run.path), "--input", str(tmp_path / "a.wav"), "--out", str(tmp_path / "b.wav")]) == 2
    assert "converted by a voice run" in capsys.readouterr().err
    assert not (tmp_path / "b.wav").exists()
    from gankit.methods._voice import voice_plan
    with pytest.raises(ConfigError, match="not on voices"):
        voice_plan(run.method)


def test_stargan_on_voices_converts_into_the_voice_named(voice_run, tmp_path):
    run, root = voice_run
    data = {**VOICES, "cache": str(root / "cache")}
    star = gankit.train({"method": {"name": "stargan", "d_steps": 1}, "data": data,
                         "generator": {"name": "resnet", "width": 8, "blocks": 1, "padding": "zero"},
                         "discriminator": {"name": "stargan", "width": 8},
                         "train": {"steps": 2, "batch_size": 8, "log_every": 1, "sample_every": 0,
                                   "checkpoint_every": 2, "progress": "none"},
                         "runtime": {"threads": 1}}, out=tmp_path / "star")
    assert "voice_conversion" in star.method.contract.metrics
    audio.write_wav(tmp_path / "s.wav", np.sin(np.arange(6000) * 0.07).astype(np.float32) * 0.1)
    assert main(["sample", str(star.path), "--input", str(tmp_path / "s.wav"), "--out", str(tmp_path / "c.wav"),
                 "--to", "en-us+f3"]) == 0
    assert soundfile.info(tmp_path / "c.wav").frames == 6000
    # a run of many voices needs the target named
    assert main(["sample", str(star.path), "--input", str(tmp_path / "s.wav"), "--out", str(tmp_path / "d.wav")]) == 2
    assert not (tmp_path / "d.wav").exists()
