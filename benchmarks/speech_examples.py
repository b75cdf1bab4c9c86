"""Listening examples and a spectrogram picture of a speech enhancement run on held-out speech.

Takes held-out utterance ``--index`` of the run's data (test split: a sentence, voice and noise
type training never heard), enhances it whole with the run (and with ``--baseline RUN``, a
second run such as the L1 regressor), and writes, at 16 kHz, 16-bit:

* ``OUT_AUDIO/speech_K_clean.wav``, ``speech_K_noisy.wav``, ``speech_K_subtraction.wav``
  (spectral subtraction), ``speech_K_gan.wav`` (the run) and ``speech_K_regressor.wav``
  (the baseline run);
* ``OUT_IMAGE``: their log-magnitude spectrograms one above the other, with each one's
  segmental SNR in its title.

    python benchmarks/speech_examples.py runs/speech_gan --baseline runs/speech_l1 --index 0 \\
        --audio docs/audio --image docs/images/speech_enhance.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run")
    p.add_argument("--baseline", help="a second run (the L1 regressor)")
    p.add_argument("--index", type=int, nargs="+", default=[0], help="held-out utterances (default 0)")
    p.add_argument("--seconds", type=float, default=4.0, help="longest example kept (default 4 s)")
    p.add_argument("--audio", default="docs/audio")
    p.add_argument("--image", default="docs/images/speech_enhance.png")
    args = p.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    import gankit
    from gankit import audio
    from gankit.data.speech import spectrogram_settings, speech_utterances
    from gankit.methods.speech_enhance import enhance

    run = gankit.load_run(args.run)
    base = gankit.load_run(args.baseline) if args.baseline else None
    section = {k: v for k, v in run.config.data.items() if k not in ("name", "split")}
    settings = spectrogram_settings(section)
    utts = speech_utterances("test", **section)
    n = int(args.seconds * audio.SAMPLE_RATE)
    panels = []
    for k in args.index:
        u = utts[k]
        clean, noisy = u.clean[:n], u.noisy[:n]
        versions = {"noisy": noisy, "subtraction": audio.spectral_subtraction(noisy)}
        if base is not None:
            versions["regressor"] = enhance(base.method, noisy, settings, torch.Generator().manual_seed(0))
        versions["gan"] = enhance(run.method, noisy, settings, torch.Generator().manual_seed(0))
        versions["clean"] = clean
        for name, wave in versions.items():
            audio.write_wav(Path(args.audio) / f"speech_{k}_{name}.wav", wave)
        panels.append((k, u, versions))
    rows = sum(len(v) for _, _, v in panels)
    fig, axes = plt.subplots(rows, 1, figsize=(7, 1.5 * rows), squeeze=False)
    i = 0
    for k, u, versions in panels:
        for name, wave in versions.items():
            picture, _ = settings.picture(wave)
            ax = axes[i, 0]
            ax.imshow(picture.numpy(), aspect="auto", cmap="magma", vmin=-1, vmax=1,
                      extent=(0, len(wave) / audio.SAMPLE_RATE, 0, audio.SAMPLE_RATE / 2000))
            title = f"utterance {k} ({u.voice}, {u.noise} noise at {u.snr:g} dB): {name}"
            if name != "clean":
                title += f", segSNR {audio.segmental_snr(u.clean[:len(wave)], wave):.1f} dB"
            ax.set_title(title, fontsize=8)
            ax.set_ylabel("kHz", fontsize=7)
            ax.tick_params(labelsize=6)
            i += 1
    axes[-1, 0].set_xlabel("seconds", fontsize=7)
    fig.tight_layout()
    Path(args.image).parent.mkdir(parents=True, exist_ok=True)
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    buffer.seek(0)     # a palette of 96 colours: a fraction of the file size, the same to the eye
    Image.open(buffer).convert("RGB").quantize(96).save(args.image, optimize=True)
    print(f"wrote {rows} WAV files to {args.audio} and {args.image}")


if __name__ == "__main__":
    main()
