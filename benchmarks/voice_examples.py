"""Converted voices to listen to: held-out sentences of a voice run's source voice, converted.

    python benchmarks/voice_examples.py RUN [RUN ...] --index 0 1 [--out docs/audio] [--seconds 2.5]

For each held-out sentence k (``--index``) of the first run's source voice (cyclegan: voice A;
stargan/disentangle: voice 0) writes ``voice_K_source.wav`` (the source voice, as espeak-ng
speaks it), ``voice_K_target.wav`` (the target voice speaking the same sentence: the parallel
reference, which training never sees) and, for each run, ``voice_K_METHOD.wav`` (the source
converted into the target voice through ``gankit sample RUN --input ... --out ...``'s path,
:func:`gankit.methods._voice.convert_file`, Griffin-Lim phase). Each file is cut to
``--seconds``.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from gankit import audio
from gankit.api import load_run
from gankit.data.speech import _spoken
from gankit.methods._voice import convert_file, voice_plan
from gankit.metrics.voice import _test_texts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--index", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", default="docs/audio")
    p.add_argument("--seconds", type=float, default=2.5)
    args = p.parse_args(argv)
    runs = [load_run(r) for r in args.runs]
    plan = voice_plan(runs[0].method)
    src, dst = plan.directions[0]
    options = {k: v for k, v in plan.section.items() if k not in ("name",)}
    texts = _test_texts(options, plan.names)
    keep = int(args.seconds * audio.SAMPLE_RATE)
    out = Path(args.out)
    level, speed = options.get("level", -25.0), int(options.get("speed", 160))
    for k in args.index:
        text = texts[src][k]
        source, target = _spoken([(text, plan.names[src], speed), (text, plan.names[dst], speed)], level,
                                 options.get("cache"))
        audio.write_wav(out / f"voice_{k}_source.wav", source[:keep])
        audio.write_wav(out / f"voice_{k}_target.wav", target[:keep])
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "source.wav"
            audio.write_wav(wav, source[:keep])
            for run in runs:
                name = run.config.method["name"]
                to = plan.names[dst] if name != "cyclegan" else None
                convert_file(run, wav, out / f"voice_{k}_{name}.wav", to=to)
        print(f"{k}: {text!r} ({plan.names[src]} -> {plan.names[dst]}) -> {out}/voice_{k}_*.wav")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
