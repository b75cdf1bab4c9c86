"""Speech enhancement: the audio maths against closed forms (no espeak-ng needed), the speech
data sets' SNRs, noise pairing and splits, the enhancer's outputs (mask, residual, direct), a
short speech_enhance run that beats its noisy input on held-out segments, and `gankit sample
RUN --input noisy.wav --out clean.wav`."""
import math
import shutil
from collections import Counter

import numpy as np
import pytest
import soundfile
import torch

import gankit
from gankit import audio
from gankit.cli import main
from gankit.errors import ConfigError, DataError

HAVE_ESPEAK = shutil.which("espeak-ng") is not None
needs_espeak = pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng is not installed (apt-get install espeak-ng sox)")
RATE = audio.SAMPLE_RATE


def bursts(seconds=2.0, seed=0):
    """Tone bursts (a few harmonics) with silent gaps between them: speech-like on/off energy."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220, 440, 660, 1100), 1))
    gate = (np.sin(2 * np.pi * 1.5 * t) > 0.2).astype(float)
    return (0.1 * tone * gate).astype(np.float32)


# ----------------------------------------------------------------------------- audio maths

@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 7.5, 20.0])
def test_mix_sets_the_snr_exactly(snr_db):
    rng = np.random.default_rng(1)
    clean = bursts()
    noise = audio.make_noise("pink", len(clean), rng)
    noisy = audio.mix(clean, noise, snr_db)
    # 10 log10(P_clean / P_noise) with P the mean square: the set value
    assert audio.snr(clean, noisy) == pytest.approx(snr_db, abs=1e-4)


def test_segmental_snr_against_closed_forms():
    n = RATE                                        # 50 frames of 20 ms
    clean = np.cos(2 * np.pi * 500 * np.arange(n) / RATE).astype(np.float64)    # each frame: power 1/2
    error = np.sign(np.sin(2 * np.pi * 50 * np.arange(n) / RATE + 0.1)) * 0.05  # each frame: power 0.0025
    # every frame has SNR 10 log10(0.5 / 0.0025) = 23.01 dB, so the mean is that too
    assert audio.segmental_snr(clean, clean + error) == pytest.approx(10 * math.log10(0.5 / 0.0025), abs=0.05)
    assert audio.segmental_snr(clean, clean) == pytest.approx(35.0)            # clamped from above
    assert audio.segmental_snr(clean, -clean) == pytest.approx(-6.0206, abs=1e-3)  # error 2x: -20 log10 2
    assert audio.segmental_snr(clean, np.zeros(n)) == pytest.approx(0.0, abs=1e-9)
    half = clean.copy()
    half[n // 2:] = 0.0           # silent second half, estimate zero there: those frames clamp to -10
    assert audio.segmental_snr(half, np.where(np.arange(n) < n // 2, half, 1.0)) == pytest.approx(
        (35.0 + -10.0) / 2, abs=1e-6)


@pytest.mark.parametrize("kind,slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_noise_colours_have_their_spectral_slope(kind, slope):
    rng = np.random.default_rng(0)
    x = audio.make_noise(kind, 2 ** 18, rng)
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    from scipy.signal import welch

    f, p = welch(x, fs=RATE, nperseg=4096)
    band = (f > 50) & (f < 4000)
    fitted = np.polyfit(np.log10(f[band]), np.log10(p[band]), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.1)


def test_babble_is_a_sum_of_talkers_at_unit_level():
    rng = np.random.default_rng(0)
    talkers = [bursts(1.0) * (k + 1) for k in range(3)]
    b = audio.babble_noise(RATE * 2, talkers, rng, count=4)
    assert len(b) == RATE * 2 and audio.rms(b) == pytest.approx(1.0, rel=1e-4)
    with pytest.raises(ValueError, match="other utterances"):
        audio.babble_noise(100, [], rng)


def test_stft_round_trip_and_resynthesis_with_own_phase():
    wave = bursts(1.0)
    for n_fft, hop in ((254, 127), (512, 128)):
        spec = audio.stft(wave, n_fft, hop)
        assert spec.shape[0] == n_fft // 2 + 1
        back = audio.istft(spec, n_fft, hop, len(wave)).numpy()
        assert np.abs(back - wave).max() < 1e-5
        again = audio.resynthesise(spec.abs(), torch.angle(spec), n_fft, hop, len(wave))
        assert np.abs(again - wave).max() < 1e-5


def test_griffin_lim_finds_a_consistent_phase():
    wave = bursts(1.0)
    n_fft, hop = 254, 64
    mag = audio.stft(wave, n_fft, hop).abs()

    def inconsistency(w):           # spectral convergence: how far the result's magnitude is from the target
        return float((audio.stft(w, n_fft, hop).abs() - mag).norm() / mag.norm())

    g = torch.Generator().manual_seed(0)
    random_phase = audio.resynthesise(mag, torch.rand(mag.shape, generator=g) * 2 * math.pi, n_fft, hop, len(wave))
    found = audio.griffin_lim(mag, n_fft, hop, iterations=40, length=len(wave))
    assert inconsistency(found) < 0.15 < inconsistency(random_phase)
    plain = audio.griffin_lim(mag, n_fft, hop, iterations=40, momentum=0.0, length=len(wave))
    assert inconsistency(found) < inconsistency(plain)      # the momentum converges faster


def test_spectrogram_scale_round_trip():
    scale = audio.SpectrogramScale(-55.0, 25.0)
    db = torch.linspace(-80, 40, 1001)
    back = scale.from_uint8(scale.to_uint8(db))
    inside = (db >= -55) & (db <= 25)
    assert (back[inside] - db[inside]).abs().max() <= 80 / 255 / 2 + 1e-4   # half a step of 0..255
    assert back[db < -55].eq(-55).all() and back[db > 25].eq(25).all()       # clipped
    assert scale.to_unit(torch.tensor([-55.0, 25.0])).tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError, match="ceiling"):
        audio.SpectrogramScale(0.0, -1.0)


def test_wav_files_are_resampled_to_16khz(tmp_path):
    t = np.arange(44100) / 44100
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 1000 * t)] * 2, 1)
    soundfile.write(tmp_path / "a.wav", stereo, 44100)
    w = audio.read_wav(tmp_path / "a.wav")
    assert w.dtype == np.float32 and len(w) == RATE
    spectrum = np.abs(np.fft.rfft(w))
    assert np.argmax(spectrum) * RATE / len(w) == pytest.approx(1000, abs=2)      # the tone kept its pitch
    audio.write_wav(tmp_path / "b.wav", w)
    info = soundfile.info(tmp_path / "b.wav")
    assert info.samplerate == RATE and info.frames == RATE
    assert np.abs(audio.read_wav(tmp_path / "b.wav") - w).max() < 1e-4          # 16-bit quantisation
    with pytest.raises(DataError, match="no such sound file"):
        audio.read_wav(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not a sound")
    with pytest.raises(DataError, match="cannot read"):
        audio.read_wav(tmp_path / "junk.wav")


def test_spectral_subtraction_beats_the_noisy_input_on_stationary_noise():
    clean = bursts(2.0)
    noisy = audio.mix(clean, audio.white_noise(len(clean), np.random.default_rng(3)), 5.0)
    cleaned = audio.spectral_subtraction(noisy)
    assert audio.segmental_snr(clean, cleaned) > audio.segmental_snr(clean, noisy) + 3.0


def test_missing_espeak_is_a_data_error_naming_the_install(monkeypatch):
    from gankit.data import speech

    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="apt-get install espeak-ng sox"):
        speech.espeak("hello", "en-us", 160)


def test_speech_from_a_folder_of_wav_files(tmp_path):
    from gankit.data.speech import speech, speech_utterances

    for k in range(4):
        audio.write_wav(tmp_path / "wavs" / f"{k}.wav", bursts(1.0 + 0.2 * k, seed=k))
    train = speech_utterances("train", root=str(tmp_path / "wavs"), mixtures=1, test_fraction=0.25)
    test = speech_utterances("test", root=str(tmp_path / "wavs"), mixtures=1, test_fraction=0.25)
    assert len(train) == 3 and len(test) == 1
    assert {u.text for u in train}.isdisjoint({u.text for u in test})
    for u in train + test:
        assert audio.snr(u.clean, u.noisy) == pytest.approx(u.snr, abs=1e-3)
    # noise type and SNR independent: 3 files x 4 mixtures = every (noise, SNR) pair of 3 x 4 once
    grid = speech_utterances("train", root=str(tmp_path / "wavs"), mixtures=4, test_fraction=0.25)
    assert Counter((u.noise, u.snr) for u in grid) == {(k, s): 1 for k in ("white", "pink", "babble")
                                                       for s in (0.0, 5.0, 10.0, 15.0)}
    held = speech_utterances("test", root=str(tmp_path / "wavs"), mixtures=4, test_fraction=0.25)
    assert [(u.noise, u.snr) for u in held] == [("brown", 2.5), ("babble", 2.5), ("brown", 7.5), ("babble", 7.5)]
    again = speech_utterances("train", root=str(tmp_path / "wavs"), mixtures=4, test_fraction=0.25)
    assert all(np.array_equal(a.noisy, b.noisy) for a, b in zip(grid, again))   # a function of (seed, split, i, j)
    d = speech(root=str(tmp_path / "wavs"), mixtures=1, test_fraction=0.25)
    assert d.x.shape[1:] == (1, 128, 64) and d.extra["input"].shape == d.x.shape and d.x.dtype == torch.uint8
    with pytest.raises(DataError, match="not a folder"):
        speech(root=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="unknown noise"):
        speech(root=str(tmp_path / "wavs"), noises=["purple"])


# ----------------------------------------------------------------------------- what G's output means

def test_output_mask_residual_and_direct_against_closed_forms():
    from gankit.methods.speech_enhance import combine

    gen = torch.Generator().manual_seed(0)
    noisy = torch.rand(2, 1, 16, 8, generator=gen) * 2 - 1
    g = torch.rand(2, 1, 16, 8, generator=gen) * 2 - 1
    # 60 dB at most on an 80 dB scale: 1.5 model units (1 unit = 40 dB)
    mask = combine("mask", noisy, g, 1.5)
    assert (mask <= noisy + 1e-7).all() and (mask >= -1).all()          # never louder than the noisy bin
    torch.testing.assert_close(mask, (noisy - 1.5 * (1 - g) / 2).clamp(min=-1))
    assert torch.equal(combine("mask", noisy, torch.ones_like(g), 1.5), noisy)   # no attenuation: the input
    # 0.5 is 5 dB on -55..25 dB; m = 0.5 takes 30 dB off: -25 dB, which is -0.25
    half = combine("mask", torch.full((1,), 0.5), torch.zeros(1), 1.5)
    assert float(half) == pytest.approx(-0.25)
    assert torch.equal(combine("residual", noisy, torch.zeros_like(g), 1.5), noisy)
    torch.testing.assert_close(combine("residual", noisy, g, 1.5), (noisy + g).clamp(-1, 1))
    assert torch.equal(combine("direct", noisy, g, 1.5), g)


def test_mask_output_starts_near_the_identity_and_bad_outputs_are_refused(tmp_path):
    for k in range(4):
        audio.write_wav(tmp_path / "wavs" / f"{k}.wav", bursts(1.0 + 0.2 * k, seed=k))
    base = {"data": {"name": "speech", "root": str(tmp_path / "wavs"), "mixtures": 1, "test_fraction": 0.25,
                     "n_fft": 126, "hop": 63, "frames": 32},
            "generator": {"name": "unet", "width": 8, "depth": 3, "dropout": 0.0},
            "discriminator": {"name": "patchgan", "receptive_field": 16, "width": 8},
            "train": {"steps": 1, "batch_size": 4, "sample_every": 1, "checkpoint_every": 1, "progress": "none",
                      "ema_decay": 0.999},     # sampling uses the moving average, which starts near the identity too
            "optim": {"lr_g": 1e-6, "lr_d": 1e-6}, "runtime": {"threads": 1}}
    from gankit.data.base import build_data

    change = {}
    for output in ("mask", "direct"):
        run = gankit.train({**base, "method": {"name": "speech_enhance", "output": output,
                                               "max_attenuation": 40.0}}, out=tmp_path / output)
        assert run.method.attenuation == pytest.approx(1.0)              # 40 dB of the 80 dB scale
        noisy = build_data(run.config).extra["input"][:8].float() / 127.5 - 1
        out = run.generate(len(noisy), seed=0, given={"input": noisy})["x"] * 2 - 1
        change[output] = float((out - noisy).abs().mean())
        if output == "mask":
            assert (out <= noisy + 1e-5).all()
    # G starts at m ~ 0.95: a few dB below the input, where a rebuilt spectrogram starts far off
    assert change["mask"] < 0.1 < change["direct"], change
    with pytest.raises(ConfigError, match="method.output"):
        gankit.train({**base, "method": {"name": "speech_enhance", "output": "gain"}}, out=tmp_path / "bad")
    with pytest.raises(ConfigError, match="max_attenuation"):
        gankit.train({**base, "method": {"name": "speech_enhance", "output": "mask", "max_attenuation": 0}},
                     out=tmp_path / "bad2")


# ----------------------------------------------------------------------------- synthesised data

TINY = {"n_train": 8, "n_test": 3, "mixtures": 1, "n_fft": 126, "hop": 63, "frames": 32}
#: the short run's data: stationary noise at low SNRs, which a tiny U-Net learns to remove in a few steps
ENHANCE = {**TINY, "mixtures": 2, "noises": ["white", "pink"], "test_noises": ["white", "pink"],
           "snrs": [0.0, 5.0], "test_snrs": [2.5, 7.5]}


@needs_espeak
def test_speech_data_snr_splits_and_segments(tmp_path):
    from gankit.data.speech import speech, speech_utterances

    cache = str(tmp_path / "cache")
    train = speech_utterances("train", cache=cache, **{k: v for k, v in TINY.items() if k in ("n_train", "n_test")},
                              mixtures=2)
    test = speech_utterances("test", cache=cache, n_train=8, n_test=3, mixtures=2)
    assert len(train) == 16 and len(test) == 6
    assert {u.text for u in train}.isdisjoint({u.text for u in test})        # held-out sentences
    assert {u.voice for u in train}.isdisjoint({u.voice for u in test})      # and voices
    assert {u.noise for u in test} == {"brown", "babble"} and "brown" not in {u.noise for u in train}
    for u in train + test:                                                   # the SNR is as set
        assert audio.snr(u.clean, u.noisy) == pytest.approx(u.snr, abs=1e-3)
        assert 20 * np.log10(audio.rms(u.clean)) == pytest.approx(-25.0, abs=0.01)
    # the first K x M mixtures hold every (noise, SNR) pair once: type and SNR independent
    assert len({(u.noise, u.snr) for u in train[:12]}) == 12
    assert Counter((u.noise, u.snr) for u in test) == {(k, s): 1 for k in ("brown", "babble") for s in (2.5, 7.5, 12.5)}
    files = list((tmp_path / "cache").glob("clean-*.npz"))
    assert len(files) == 2                                                   # cached once per split
    d = speech(cache=cache, **TINY)
    assert d.x.shape[1:] == (1, 64, 32) and d.extra["input"].shape == d.x.shape
    assert (d.x.float() - d.extra["input"].float()).abs().mean() > 1      # noise changed the pictures
    again = speech(cache=cache, **TINY)
    assert torch.equal(again.x, d.x) and torch.equal(again.extra["input"], d.extra["input"])


@needs_espeak
def test_voices_data_gives_balanced_domains_and_halves(tmp_path):
    from gankit.data.base import build_data
    from gankit.api import make_config

    cfg = make_config({"method": {"name": "stargan"},
                       "data": {"name": "voices", "n_sentences": 4, "n_test": 2, "cache": str(tmp_path),
                                "n_fft": 126, "hop": 63, "frames": 32}})
    d = build_data(cfg)
    counts = torch.bincount(d.extra["domain"])
    assert counts.tolist() == [len(d) // 2] * 2 and d.fields()["domain"].classes == ("en-us", "en-us+f3")
    first = build_data(make_config({"method": {"name": "cyclegan"}, "data": {**cfg.data, "half": "first"},
                                    "data_b": {**cfg.data, "half": "second"}}))
    assert first.extra["domain"].eq(0).all() and len(first) == len(d) // 2
    with pytest.raises(ConfigError, match="two or more"):
        build_data(make_config({"data": {"name": "voices", "voices": ["en-us"], "cache": str(tmp_path)}}))


@pytest.fixture(scope="module")
def enhancer(tmp_path_factory):
    if not HAVE_ESPEAK:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng sox)")
    root = tmp_path_factory.mktemp("speech")
    cfg = {"method": {"name": "speech_enhance", "adv_weight": 1.0, "output": "mask"},
           "data": {"name": "speech", "cache": str(root / "cache"), **ENHANCE},
           "generator": {"name": "unet", "width": 8, "depth": 3, "dropout": 0.0},
           "discriminator": {"name": "patchgan", "receptive_field": 16, "width": 8},
           "train": {"steps": 100, "batch_size": 16, "log_every": 20, "sample_every": 100,
                     "checkpoint_every": 100, "progress": "none"},
           "optim": {"lr_g": 1e-3, "lr_d": 2e-4, "beta1": 0.5},
           "runtime": {"threads": 1}}
    return gankit.train(cfg, out=root / "run"), root


def test_a_short_run_beats_the_noisy_input_on_held_out_segments(enhancer):
    from gankit.data.base import build_data

    run, _ = enhancer
    test = build_data(run.config, split="test")
    noisy = test.extra["input"].float() / 127.5 - 1
    clean = test.x.float() / 127.5 - 1
    out = run.generate(len(test), seed=0, given={"input": noisy})["x"] * 2 - 1
    before, after = (noisy - clean).abs().mean(), (out - clean).abs().mean()
    assert after < 0.6 * before, (float(before), float(after))
    assert (out <= noisy + 1e-5).all()            # the mask only attenuates
    assert "speech_quality" in run.method.contract.metrics     # judged on sound too
    assert (run.path / "samples" / "step_00000100.png").is_file()


def test_speech_quality_reports_the_enhancer_beside_its_baselines(enhancer):
    from gankit.metrics.evaluate import evaluate_run

    run, _ = enhancer
    loaded = gankit.load_run(run.path)
    r = evaluate_run(loaded, metrics=["speech_quality:utterances=2:pesq=false"], n=16)
    for key in ("segsnr", "segsnr_noisy", "segsnr_subtraction", "stoi", "stoi_noisy", "snr_noisy"):
        assert np.isfinite(r[key])
    assert r["snr_noisy"] == pytest.approx(2.5, abs=1e-3)      # the first two mixtures: both noises at 2.5 dB
    assert r["segsnr_gain"] == pytest.approx(r["segsnr"] - r["segsnr_noisy"])
    assert "pesq" not in r


def test_cli_enhances_a_wav_file(enhancer, tmp_path):
    from gankit.data.speech import espeak

    run, _ = enhancer
    clean = espeak("A quiet voice says hello to the room.", "en-gb", 150)
    noisy = audio.mix(clean, audio.make_noise("white", len(clean), np.random.default_rng(0)), 5.0)
    # at 22.05 kHz and stereo: resampled and mixed down on the way in
    soundfile.write(tmp_path / "noisy.wav", np.stack([audio.resample(noisy, RATE, 22050)] * 2, 1), 22050)
    assert main(["sample", str(run.path), "--input", str(tmp_path / "noisy.wav"),
                 "--out", str(tmp_path / "clean.wav")]) == 0
    info = soundfile.info(tmp_path / "clean.wav")
    assert info.samplerate == RATE and abs(info.frames - len(noisy)) <= 2
    enhanced = audio.read_wav(tmp_path / "clean.wav")
    assert np.isfinite(enhanced).all() and audio.rms(enhanced) > 0
    # bad input: a missing file, a picture name for a sound, a sound for a run of pictures
    assert main(["sample", str(run.path), "--input", str(tmp_path / "none.wav"),
                 "--out", str(tmp_path / "x.wav")]) == 2
    assert main(["sample", str(run.path), "--input", str(tmp_path / "noisy.wav"),
                 "--out", str(tmp_path / "x.png")]) == 2
    assert main(["sample", str(run.path), "--out", str(tmp_path / "x.wav")]) == 2


def test_a_sound_file_is_refused_by_a_run_of_pictures(tmp_path):
    from types import SimpleNamespace

    from gankit.methods.speech_enhance import enhance_file

    audio.write_wav(tmp_path / "a.wav", bursts(0.5))
    pictures = SimpleNamespace(config=SimpleNamespace(data={"name": "array"}, method={"name": "pix2pix"}),
                               info=SimpleNamespace(fields={}))
    with pytest.raises(ConfigError, match="speech_enhance on data speech"):
        enhance_file(pictures, tmp_path / "a.wav", tmp_path / "b.wav")
    assert not (tmp_path / "b.wav").exists()


def test_enhance_keeps_the_length_of_any_waveform(enhancer):
    from gankit.data.speech import spectrogram_settings
    from gankit.methods.speech_enhance import enhance

    run, _ = enhancer
    settings = spectrogram_settings(run.config.data)
    for seconds in (0.05, 0.3, 1.37):          # shorter than one segment (0.13 s here), a few, many
        wave = bursts(seconds)
        out = enhance(run.method, wave, settings)
        assert out.shape == wave.shape and np.isfinite(out).all()
    with pytest.raises(ConfigError, match="mono"):
        enhance(run.method, np.zeros((2, 4000), np.float32), settings)
