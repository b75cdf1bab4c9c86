"""The ``gankit`` command line: train, resume, sample, list.

Exit status: 0 when a command finishes, 2 for a user error (the message says what to
do), 130 or 143 when training was stopped by SIGINT or SIGTERM after saving a checkpoint.
Under ``torchrun`` every process returns the same status; only rank 0 prints results, and an
error that every process raises alike is printed once.
"""
from __future__ import annotations

import argparse
import inspect
import os
import signal
import sys
from pathlib import Path
from typing import List, Optional

from .errors import GankitError

__all__ = ["main"]

EPILOG_TRAIN = """examples:
  gankit train                                  # DCGAN, non-saturating loss, Fashion-MNIST
  gankit train --data ring8 --steps 2000        # MLP GAN on 8 Gaussians on a ring
  gankit train configs/gan_ring8.yaml --set method.d_steps=5 --set optim.lr_d=1e-4
  gankit train --set method.objective=minimax --out runs/minimax

--set takes dotted keys of the config (see `gankit list` for each entry's parameters):
  method.* data.* generator.* discriminator.* train.* optim.* runtime.* eval.*
  and a method's further network roles (ROLE.*) and data sources (data_SOURCE.*)
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gankit", description="Train, sample and inspect Generative Adversarial "
                                "Networks. Each command has its own --help.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a model from a config (default: DCGAN on Fashion-MNIST)",
                       description="Train a GAN. With no CONFIG the default run is used: the `gan` method "
                       "(non-saturating objective) with DCGAN networks on Fashion-MNIST.",
                       epilog=EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("config", nargs="?", metavar="CONFIG.yaml", help="YAML config; omitted keys take defaults")
    t.add_argument("--method", metavar="NAME", help="method to train (see `gankit list`)")
    t.add_argument("--data", metavar="NAME", help="data set (see `gankit list`)")
    t.add_argument("--steps", type=int, metavar="N", help="training steps (generator updates)")
    t.add_argument("--out", metavar="DIR", help="run directory (default: runs/METHOD-DATA-TIMESTAMP)")
    t.add_argument("--seed", type=int, metavar="S", help="random seed (networks, noise and data order)")
    t.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set optim.lr_g=1e-4 data.root=/data (repeatable)")

    r = sub.add_parser("resume", help="continue a run exactly where it stopped",
                       description="Continue a run from its latest checkpoint: same weights, optimiser "
                       "state, learning-rate schedule, random state and data order.")
    r.add_argument("run_dir", metavar="RUN_DIR")
    r.add_argument("--steps", type=int, metavar="N", help="new total number of steps (to train further)")

    s = sub.add_parser("sample", help="draw samples from a trained run",
                       description="Draw samples from a run's generator (its moving average if kept). "
                       "A .png gets an image grid (a scatter plot for vector data); a .npz gets the raw "
                       "array 'x' (uint8 (N, C, H, W) for images, float32 (N, D) for vectors).")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("--n", type=int, default=64, metavar="N", help="number of samples (default 64)")
    s.add_argument("--out", required=True, metavar="FILE_OR_DIR", help="output: a .png (a picture of every "
                   "sample), an .npz (raw arrays), or a folder (a path without suffix: one PNG per sample)")
    s.add_argument("--seed", type=int, default=0, metavar="S", help="noise seed (default 0)")
    s.add_argument("--label", metavar="L[,L...]", help="class label(s) to generate (conditional runs): --n samples "
                   "of each, one row per label; without it, labels are drawn as often as they occur in the data")
    s.add_argument("--text", metavar="SENTENCE", action="append", help="text-to-image runs (method cgan_text): a "
                   "sentence to draw, e.g. --text 'a pair of sneakers'; --n samples of each, one row per --text (give "
                   "it several times); words the run never read are left out; text style transfer runs (method text_style): "
                   "a sentence to rewrite, with --to STYLE; summarisation runs (method summarize): a document to "
                   "summarise, written with --out FILE.txt")
    s.add_argument("--prefix", metavar="TEXT", action="append", help="sequence runs (methods mle, gumbel): text each "
                   "sample starts with and the generator continues, e.g. --prefix 床前; --n samples of each (give it "
                   "several times); write them with --out FILE.txt")
    s.add_argument("--input", metavar="FILE_OR_FOLDER", help="condition images (runs conditioned on an image): "
                   "an image folder, an image file, .npz or .npy; one output per input; a speech enhancement "
                   "run takes a .wav of noisy speech, a voice conversion run a .wav of the source voice (with --out "
                   "FILE.wav)")
    s.add_argument("--to", metavar="DOMAIN[,DOMAIN...]", help="translation runs: the target domain(s), by name or "
                   "number (stargan: --to inverted,edges, one row per domain under the same inputs; cyclegan: --to B, "
                   "the default, or --to A, which translates --input pictures of domain B back to A; text_style: --to positive "
                   "with --text SENTENCE)")
    s.add_argument("--mask", metavar="X,Y,W,H_OR_FILE", help="completion runs (method inpaint): the region of the "
                   "--input pictures to fill, a rectangle in pixels (left, top, width, height) or a black and white "
                   "picture of the same size (white: fill), or a folder/.npz of one per input")
    s.add_argument("--tile", type=int, metavar="PIXELS", help="image-to-image runs with a fully convolutional "
                   "generator: --input pictures of another size than the training size are translated in tiles of "
                   "this side (default: the training size), stitched with a smooth blend; setting it tiles any size")
    s.add_argument("--overlap", type=int, metavar="PIXELS", help="pixels by which neighbouring tiles overlap "
                   "(default: a quarter of a tile); the blend passes from one tile to the next across them")
    s.add_argument("--dropout", action="store_true", help="keep the generator's dropout on while sampling (pix2pix: "
                   "its noise, so outputs for one input differ); the default is deterministic")
    s.add_argument("--repeat", type=int, default=1, metavar="K", help="translate each --input picture K times, side "
                   "by side (with --dropout: K different outputs each; default 1)")
    s.add_argument("--frames", type=int, default=1, metavar="T", help="video runs: predict T frames after each clip "
                   "of --input past frames, each prediction fed back as the newest past frame (default 1); a folder "
                   "--out gets them in order, clip after clip")
    s.add_argument("--phase", choices=("griffin_lim", "source"), default="griffin_lim", help="voice conversion "
                   "runs (--input source.wav --out converted.wav): the phase of the converted sound, found by "
                   "Griffin-Lim (default) or the source's")

    e = sub.add_parser("eval", help="evaluate a run (or two sample sets) with FID, KID, IS, precision/recall ...",
                       description="Evaluate a run's generator against the held-out split of its data set, or "
                       "two sample sets given as image folders or .npz/.npy arrays (--real, --fake). 2-D arrays "
                       "given to --real/--fake are taken as features as they are.",
                       epilog="metrics: fid, kid, is, pr (precision/recall), dc (density/coverage), modes and "
                       "loglik (toy data); see `gankit list`.\nfeatures: auto (the data set's classifier), "
                       "fashion_mnist, mnist, inception, pixels", formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("run_dir", nargs="?", metavar="RUN_DIR")
    e.add_argument("--real", metavar="PATH", help="real samples: an image folder, .npz or .npy")
    e.add_argument("--fake", metavar="PATH", help="generated samples: an image folder, .npz or .npy")
    e.add_argument("--metrics", metavar="LIST", help="comma-separated metrics, each NAME or NAME:KEY=VALUE[:KEY=VALUE] "
                   "with its parameters, e.g. fid,kid:subset_size=500 (default: all that apply)")
    e.add_argument("--n", type=int, default=10_000, metavar="N", help="generated samples (default 10000)")
    e.add_argument("--features", default="auto", metavar="NAME", help="feature extractor, NAME or NAME:KEY=VALUE "
                   "with its parameters, e.g. pixels:image_size=32 (default auto)")
    e.add_argument("--split", default="test", choices=["train", "test"], help="real data split (default test)")
    e.add_argument("--seed", type=int, default=0, metavar="S", help="noise seed (default 0)")
    e.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    e.add_argument("--figures", metavar="DIR", help="where metrics draw pictures (copies: samples beside their "
                   "nearest training images; default for a run: RUN_DIR/evals/figures)")
    e.add_argument("--reference", action="store_true", help="also score the data's own training samples as if "
                   "generated (fid, kid, is, pr, dc, modes, loglik, conditional_accuracy): what a perfect "
                   "generator would get, printed beside the run's values")

    d = sub.add_parser("edit", help="edit a picture with a trained generator: invert it, move an attribute",
                       description="Photo editing with a gan/cgan run: the picture is inverted into the generator's "
                       "latent space (an encoder trained on the generator's own samples, refined by optimisation), "
                       "moved along an attribute's direction (fitted by regressing a scorer on the latent code) and "
                       "decoded. The encoder and directions are kept in RUN/edit/editor.pt, so a second edit is fast. "
                       "Writes DIR/input.png, inverted.png, edited.png, edit.png (the input, then amounts 0..A) and "
                       "edit.json (the attribute's scores and the feature distances).",
                       epilog="attributes: brightness, ink (object size), contrast, and the class logits of the shipped "
                       "Fashion-MNIST classifier: t_shirt_top, trouser, pullover, dress, coat, sandal, shirt, sneaker, "
                       "bag, ankle_boot")
    d.add_argument("run_dir", metavar="RUN")
    d.add_argument("--input", required=True, metavar="IMG", help="the picture(s) to edit: an image file, an image "
                   "folder, .npz or .npy; other sizes are resized and colour made grey (or grey colour) as the run's")
    d.add_argument("--attr", required=True, metavar="NAME", help="the attribute to move (see below)")
    d.add_argument("--amount", type=float, default=2.0, metavar="A", help="how far to move: the step predicted to "
                   "change the attribute by A standard deviations of its spread over the generator's samples; "
                   "negative lowers it (default 2)")
    d.add_argument("--out", required=True, metavar="DIR", help="folder for the pictures and edit.json")
    d.add_argument("--label", type=int, metavar="L", help="conditional runs (cgan): the class the picture keeps "
                   "(default: the classifier's class where the run's classes are Fashion-MNIST's)")
    d.add_argument("--steps", type=int, default=200, metavar="N", help="optimisation steps refining the inversion "
                   "(default 200)")
    d.add_argument("--encoder-steps", type=int, default=600, metavar="N", help="training steps of the encoder that "
                   "inverts the generator (default 600; kept in RUN/edit/editor.pt with the directions)")
    d.add_argument("--samples", type=int, default=4000, metavar="N", help="generator samples the attribute "
                   "directions are fitted on (default 4000)")

    x = sub.add_parser("experiment", help="run one of the lecture's experiments (writes JSON and PNG)",
                       description="Run an experiment that checks a claim of the lectures with numbers. "
                       "Options after NAME go to the experiment (see `gankit experiment NAME --help`).",
                       epilog="experiments:\n" + _experiment_lines(), formatter_class=argparse.RawDescriptionHelpFormatter)
    x.add_argument("name", metavar="NAME")
    x.add_argument("options", nargs=argparse.REMAINDER, help="the experiment's own options, e.g. --out DIR")

    b = sub.add_parser("bench", help="time training steps: steps/s, images/s, GFLOP/s against the machine's peak",
                       description="Time training steps of a config (default: the default run) beside a plain "
                       "fp32 loop of the same networks. Options after `bench` go to it: see `gankit bench --help`.",
                       add_help=False)
    b.add_argument("options", nargs=argparse.REMAINDER)

    sub.add_parser("list", help="list registered methods, data sets, networks and objectives",
                   description="List every registered part with its config parameters and defaults.")

    rp = sub.add_parser("report", help="write one self-contained HTML page of a run (or several, compared)",
                        description="Write one HTML page that needs no network to view: the config, the sample "
                        "pictures over training behind a slider, interactive loss and metric curves, the "
                        "evaluations of `gankit eval RUN` with the real-data reference, and for 2-D data an "
                        "animation of the samples over the data with the discriminator's surface. Several runs "
                        "get one page with their curves and final values side by side.")
    rp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    rp.add_argument("--out", metavar="FILE.html", help="where the page goes (default RUN_DIR/report.html for one "
                    "run, ./report.html for several)")
    rp.add_argument("--max-frames", type=int, default=60, metavar="N", help="sample steps inlined at most, evenly "
                    "spaced (default 60)")

    sv = sub.add_parser("serve", help="serve the report page live while runs train (this machine only)",
                        description="Serve the page of `gankit report` at http://127.0.0.1:PORT/, read-only and "
                        "reachable from this machine only; the page reloads itself when a run writes a new step.")
    sv.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    sv.add_argument("--port", type=int, default=8000, metavar="P", help="port (default 8000; 0: any free one)")
    sv.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between the page's "
                    "checks for new steps (default 2)")
    return p


def _experiment_lines() -> str:
    from .experiments import EXPERIMENTS

    return "\n".join(f"  {name:<22} {what}" for name, (_, what) in sorted(EXPERIMENTS.items()))


def _version() -> str:
    from . import __version__

    return f"gankit {__version__}"


def cmd_train(args) -> int:
    from .api import train

    overrides: List[str] = []
    if args.method:
        overrides.append(f"method={args.method}")
    if args.data:
        overrides.append(f"data={args.data}")
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    run = train(args.config, overrides + list(args.overrides), out=args.out)
    return _report(run)


def _rank() -> int:
    """torchrun's RANK for this process (0 when started alone)."""
    try:
        return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0
    except ValueError:
        return 0


def _report(run) -> int:
    if run.status == "interrupted":
        return 128 + int(run.stop_signal or signal.SIGINT)  # the shell's convention for "stopped by a signal"
    if _rank() != 0:
        return 0
    if run.status == "time_limit":
        print(f"time limit of {run.config.train.time_limit:g} s reached: run stopped at step {run.step} of "
              f"{run.config.train.steps}: {run.path}")
    else:
        print(f"run finished at step {run.step}: {run.path}")
    print(f"  samples: {run.path / 'samples'}   losses: {run.path / 'loss.png'}")
    return 0


def cmd_resume(args) -> int:
    from .api import resume

    return _report(resume(args.run_dir, steps=args.steps))


def _conditions(run, args):
    """The conditions --label / --input ask for, as ``(given, n, nrow)``; a clear error for a
    run that takes no such condition or values it cannot take."""
    from .errors import ConfigError

    fields = run.method.condition_fields()
    method = run.config.method["name"]
    takes = ", ".join(f"{k} ({f.kind})" for k, f in fields.items()) or "no conditions"
    given, n, nrow = {}, args.n, None
    if args.label is not None:
        name = next((k for k, f in fields.items() if f.kind == "label"), None)
        if name is None:
            raise ConfigError(f"--label: the {method} method of this run takes {takes}")
        try:
            labels = [int(v) for v in str(args.label).split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--label {args.label}: give class numbers, e.g. --label 3 or --label 0,1,2") from None
        if not labels:
            raise ConfigError("--label: give at least one class number")
        given[name] = [lab for lab in labels for _ in range(args.n)]
        n, nrow = args.n * len(labels), args.n
    if getattr(args, "text", None):
        name = next((k for k, f in fields.items() if f.kind == "tokens"), None)
        if name is None:
            raise ConfigError(f"--text: the {method} method of this run takes {takes}; sentences are read by "
                              "text-to-image runs (method cgan_text, e.g. on data fashion_mnist_text)")
        if given:
            raise ConfigError("--text and --label both choose what to draw; give one of them")
        given[name] = [sentence for sentence in args.text for _ in range(args.n)]
        n, nrow = args.n * len(args.text), args.n
    if getattr(args, "prefix", None):
        if "prefix" not in fields:
            raise ConfigError(f"--prefix: the {method} method of this run takes {takes}; sequence runs (methods mle, "
                              "gumbel) continue a prefix")
        if given:
            raise ConfigError("--prefix and --label/--text both choose what to draw; give one of them")
        given["prefix"] = [text for text in args.prefix for _ in range(args.n)]
        n, nrow = args.n * len(args.prefix), args.n
    if getattr(args, "to", None) is not None:
        texts = {k: v[::args.n] for k, v in given.items() if fields[k].kind == "tokens"}   # --text: the sentences
        given, n, nrow = _targets(run, args, fields, takes)
        if texts and "domain" in given:           # every sentence into every target (text style transfer)
            (name, sentences), = texts.items()
            targets = given["domain"][::args.n]
            given = {name: [t for _ in targets for t in sentences for _ in range(args.n)],
                     "domain": [d for d in targets for _ in range(len(sentences) * args.n)]}
            n, nrow = len(given[name]), args.n
    if args.input is not None:
        name = next((k for k, f in fields.items() if f.kind == "image"), None)
        if getattr(args, "to", None) is not None and "input_b" in fields and given.pop("input_b", None) is not None:
            name = "input_b"              # cyclegan --to A: the pictures are of domain B
        if name is None:
            raise ConfigError(f"--input: the {method} method of this run takes {takes}")
        images, kind = _read_images(args.input)
        if kind != "image":
            raise ConfigError(f"--input {args.input}: expected images, got an array of shape {tuple(images.shape)}")
        clips = getattr(run.method, "frames_from_pictures", None)
        if clips is not None:     # past frames of clips (video): a folder of frames or strips of them
            images = clips(images, args.input)
        want = tuple(fields[name].shape)
        if images.shape[1] != want[0]:      # another size is translated in tiles (where the generator allows)
            raise ConfigError(f"--input {args.input}: images of {tuple(images.shape[1:])} (channels, height, width), "
                              f"but this run takes {want}; convert them to {want[0]} channel(s)")
        if getattr(args, "repeat", 1) > 1:      # each picture K times, side by side
            images = images.repeat_interleave(args.repeat, 0)
            nrow = nrow or args.repeat
        if "domain" in given and getattr(args, "to", None) is not None:   # every picture into every target
            k = len(given["domain"]) // args.n
            given["domain"] = [d for d in given["domain"][::args.n] for _ in range(len(images))]
            images = images.repeat(k, 1, 1, 1)
            n, nrow = len(images), len(images) // k
        elif given and n != len(images):
            raise ConfigError(f"--input gives {len(images)} images but --label asks for {n} samples; give as many")
        if "mask" in fields:      # a completion run: the region to fill, filled as its training data was
            images, given["mask"] = _mask_condition(run, args, images, method)
        given[name] = images.mul(2).sub(1)
        n = len(images)
    if args.mask is not None and "mask" not in fields:
        raise ConfigError(f"--mask: the {method} method of this run takes {takes}; --mask marks the region to fill "
                          "for a completion run (method inpaint)")
    if args.mask is not None and args.input is None:
        raise ConfigError("--mask marks the region of the --input pictures to fill: give --input FILE_OR_FOLDER too")
    return given, n, nrow


def _targets(run, args, fields, takes):
    """``--to``: the target domains of a stargan run (names or numbers; --n samples each, one row
    per domain), or the direction of a cyclegan run (B: as without --to; A: the --input
    pictures are of domain B)."""
    from .errors import ConfigError

    method = run.config.method["name"]
    wanted = [v.strip() for v in str(args.to).split(",") if v.strip()]
    if not wanted:
        raise ConfigError("--to: give a target domain, e.g. --to B or --to inverted")
    if "domain" in fields:
        names = list(fields["domain"].classes)
        index = []
        for v in wanted:
            if v in names:
                index.append(names.index(v))
            elif v.isdigit() and int(v) < len(names):
                index.append(int(v))
            else:
                raise ConfigError(f"--to {v}: this run's domains are {', '.join(names)} (or 0..{len(names) - 1})")
        if args.label is not None:
            raise ConfigError("--to and --label both name the target domains; give one of them")
        return {"domain": [d for d in index for _ in range(args.n)]}, args.n * len(index), args.n
    if "input_b" in fields:
        if len(wanted) != 1 or wanted[0] not in ("A", "B"):
            raise ConfigError(f"--to {args.to}: a cyclegan run translates to B (its data_b) or back to A")
        if wanted[0] == "A" and args.input is None:
            raise ConfigError("--to A translates pictures of domain B: give them with --input FILE_OR_FOLDER")
        return ({"input_b": True} if wanted[0] == "A" else {}), args.n, None
    raise ConfigError(f"--to: the {method} method of this run takes {takes}; --to names the target domain of a "
                      "translation run (stargan, cyclegan)")


def _read_images(path) -> tuple:
    """An image folder, one image file, .npz or .npy -> (float tensor, kind) as
    :func:`~gankit.metrics.evaluate.load_samples` reads them (images in [0, 1])."""
    import numpy as np
    import torch

    from .data.images import IMAGE_EXTENSIONS, _is_grey, _open, _to_channels
    from .metrics.evaluate import load_samples

    p = Path(path)
    if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
        from PIL import ImageOps

        from .errors import DataError

        with _open(p) as img:
            try:
                img.load()
                img = _to_channels(ImageOps.exif_transpose(img), 1 if _is_grey(img) else 3)
            except Exception as exc:
                raise DataError(f"cannot read image {p}: {exc}") from exc
        a = np.asarray(img, dtype=np.uint8).reshape(img.size[1], img.size[0], -1)
        return torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float().div(255.0), "image"
    return load_samples(path)


def _mask_condition(run, args, images, method: str):
    """For a completion run: (the pictures with the region of --mask filled with mid-grey, as
    the data's ``input`` is, and the masks in model space: +1 inside, -1 outside)."""
    import re

    import torch

    from .data.pairs import MASK_FILL
    from .errors import ConfigError

    n, _, h, w = images.shape
    spec = args.mask
    if spec is None:
        raise ConfigError(f"--input: this {method} run fills a region of each picture: mark it with --mask X,Y,W,H "
                          "(a rectangle in pixels: left, top, width, height) or --mask FILE (a black and white "
                          "picture of the same size, white where to fill)")
    rect = re.fullmatch(r"\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*", spec)
    if rect is not None:
        x, y, rw, rh = (int(v) for v in rect.groups())
        if rw < 1 or rh < 1 or x < 0 or y < 0 or x + rw > w or y + rh > h:
            raise ConfigError(f"--mask {spec}: the rectangle (left {x}, top {y}, width {rw}, height {rh}) does not lie "
                              f"inside the {w}x{h} pictures; give X,Y,W,H with W, H >= 1, X + W <= {w} and "
                              f"Y + H <= {h}")
        inside = torch.zeros(1, 1, h, w, dtype=torch.bool)
        inside[..., y:y + rh, x:x + rw] = True
    elif "," in spec and not Path(spec).exists():
        raise ConfigError(f"--mask {spec}: give a rectangle as four whole numbers X,Y,W,H (left, top, width, "
                          "height in pixels) or a mask file")
    else:
        masks, kind = _read_images(spec)
        if kind != "image":
            raise ConfigError(f"--mask {spec}: expected a black and white picture, got an array of shape "
                              f"{tuple(masks.shape)}")
        if tuple(masks.shape[2:]) != (h, w):
            raise ConfigError(f"--mask {spec}: a mask of {masks.shape[3]}x{masks.shape[2]} pixels, but the pictures "
                              f"are {w}x{h}; give a mask of the same size")
        if len(masks) not in (1, n):
            raise ConfigError(f"--mask {spec}: {len(masks)} masks for {n} pictures; give one mask, or one per picture")
        inside = masks.mean(1, keepdim=True) > 0.5
        empty = [i for i in range(len(inside)) if not bool(inside[i].any())]
        if empty:
            raise ConfigError(f"--mask {spec}: mask {empty[0]} is black everywhere; white marks the region to fill")
    inside = inside.expand(n, 1, h, w)
    filled = torch.where(inside, torch.tensor(MASK_FILL / 255.0), images)
    return filled, inside.float().mul(2).sub(1)


def cmd_sample(args) -> int:
    import numpy as np
    import torch

    from .api import load_run
    from .errors import ConfigError
    from .viz import save_samples

    out = Path(args.out)
    if out.suffix.lower() == ".wav" or Path(args.input or "").suffix.lower() in SOUND_SUFFIXES:
        return _sample_sound(args, out)
    as_folder = out.is_dir() or not out.suffix
    if not as_folder and out.suffix.lower() not in (".png", ".npz", ".txt"):
        raise ConfigError(f"--out {out}: use a .png (picture) or .npz (raw array) file name, or a folder (a path "
                          "without suffix: one PNG per sample); the samples of a sequence run go to a .txt")
    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, got {args.n}")
    if args.repeat < 1:
        raise ConfigError(f"--repeat must be at least 1, got {args.repeat}")
    if args.repeat > 1 and args.input is None:
        raise ConfigError("--repeat translates each --input picture several times: give --input FILE_OR_FOLDER too")
    if (args.tile is not None or args.overlap is not None) and args.input is None:
        raise ConfigError("--tile and --overlap cut the --input pictures into tiles: give --input FILE_OR_FOLDER too")
    run = load_run(args.run_dir)
    is_text = out.suffix.lower() == ".txt"
    if run.info.kind == "tokens" and not (is_text or out.suffix.lower() == ".npz"):
        raise ConfigError(f"--out {out}: this run writes token sequences: use a .txt (their text, one a line) or "
                          ".npz (the token numbers)")
    if is_text and run.info.kind != "tokens":
        raise ConfigError(f"--out {out}: a .txt takes the text of a sequence run; this run makes {run.info.kind} "
                          "samples: use a .png or .npz")
    given, n, nrow = _conditions(run, args)
    if args.frames != 1:
        samples, n, nrow = _rollout(run, args, given)
    else:
        samples = run.generate(n, seed=args.seed, given=given, dropout=args.dropout, tile=args.tile,
                               overlap=args.overlap)
    if is_text:
        from .data.sequences import write_text

        write_text(samples["x"], run.info.fields["x"].classes, out)
    elif as_folder:
        _save_folder(samples["x"], out)
    elif out.suffix.lower() == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        def stored(v):
            is_image = v.dim() == 4 and v.is_floating_point()
            return (v.mul(255).round().to(torch.uint8) if is_image else v).numpy()
        np.savez(out, **{k: stored(v) for k, v in samples.items()})
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        model = {k: (v.mul(2).sub(1) if v.dim() == 4 and v.is_floating_point() else v) for k, v in samples.items()}
        save_samples(model, run.info, out, nrow=nrow)
    print(f"{n} samples from {run.path} (step {run.step}) -> {out}")
    return 0


def _rollout(run, args, given):
    """``--frames T``: T frames predicted after each --input clip (method video's rollout), as
    samples ``x`` (the clips' frames in order, clip after clip, images in [0, 1]), their number
    and the picture's row length (T)."""
    import torch

    from .errors import ConfigError

    if args.frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {args.frames}")
    rollout = getattr(run.method, "rollout", None)
    if rollout is None:
        raise ConfigError(f"--frames: the {run.config.method['name']} method of this run predicts no frames; "
                          "--frames rolls out a video run (method video)")
    if "input" not in given:
        raise ConfigError("--frames continues clips: give their past frames with --input FRAMES")
    g = torch.Generator().manual_seed(args.seed)
    frames = rollout(torch.as_tensor(given["input"]).float(), args.frames, generator=g, dropout=args.dropout)
    x = frames.reshape(len(frames) * args.frames, -1, *frames.shape[-2:])
    return {"x": run._to_user("x", x)}, len(x), args.frames


SOUND_SUFFIXES = (".wav", ".flac", ".ogg")


def _sample_sound(args, out: Path) -> int:
    """``gankit sample RUN --input noisy.wav --out clean.wav``: a speech enhancement run's
    output for a whole sound file; a voice conversion run's (cyclegan, stargan, disentangle on
    data voices) conversion of it (``--to``/``--label`` the target voice, ``--phase``)."""
    from .api import load_run
    from .errors import ConfigError
    from .methods._voice import convert_file, is_voice_run
    from .methods.speech_enhance import enhance_file

    if args.input is None:
        raise ConfigError(f"--out {out}: a .wav is written by enhancing a sound file: give it with --input FILE.wav")
    if out.suffix.lower() != ".wav":
        raise ConfigError(f"--input {args.input} is a sound file: write the enhanced sound with --out FILE.wav")
    if not Path(args.input).is_file():
        raise ConfigError(f"--input {args.input}: no such file; give a WAV file of noisy speech")
    run = load_run(args.run_dir)
    if is_voice_run(run.config):
        convert_file(run, args.input, out, to=args.to, label=args.label, phase=args.phase, seed=args.seed)
        print(f"{args.input} converted by {run.path} (step {run.step}) -> {out}")
        return 0
    if run.config.data.get("name") not in ("speech",):
        raise ConfigError(f"--input {args.input}: a sound file is enhanced by a speech_enhance run on data speech or "
                          f"converted by a voice run (cyclegan, stargan or disentangle on data voices); this run is "
                          f"{run.config.method['name']} on {run.config.data.get('name')}")
    enhance_file(run, args.input, out, seed=args.seed)
    print(f"{args.input} enhanced by {run.path} (step {run.step}) -> {out}")
    return 0


def _save_folder(x, folder: Path) -> None:
    """One PNG per sample (``x``: images in [0, 1]) in ``folder``: 0000.png, 0001.png ... in the
    order of the samples (of the --input pictures: sorted by path)."""
    from PIL import Image

    from .errors import ConfigError

    if x.dim() != 4:
        raise ConfigError(f"--out {folder}: a folder takes pictures, one PNG each; these samples are vectors: use a "
                          ".png (scatter plot) or .npz")
    folder.mkdir(parents=True, exist_ok=True)
    arrays = x.mul(255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    for i, a in enumerate(arrays):
        Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(folder / f"{i:04d}.png")


#: where each registry's entries and parameters are set, as `gankit list` shows it
LIST_SETTINGS = {
    "methods": "--set method.name=NAME method.PARAM=VALUE",
    "data": "--set data.name=NAME data.PARAM=VALUE; every image data set also takes data.pairs=none|edges|grey|"
            "mask|lowres2|lowres4|mask_centre|mask_free (a paired input field for image-to-image methods), and "
            "every data set data.half=all|first|second (disjoint halves, for unpaired domains)",
    "generators": "--set generator.name=NAME generator.PARAM=VALUE",
    "discriminators": "--set discriminator.name=NAME discriminator.PARAM=VALUE",
    "objectives": "method gan: --set method.objective=NAME method.objective.PARAM=VALUE",
    "features": "--set eval.features=NAME; gankit eval --features NAME",
    "metrics": "--set 'eval.metrics=[NAME, \"NAME:PARAM=VALUE\"]'; gankit eval --metrics NAME,NAME:PARAM=VALUE",
}


def cmd_list(args) -> int:
    from .registries import all_registries

    for title, registry in all_registries().items():
        how = LIST_SETTINGS.get(title)
        print(f"{title}:" + (f"  ({how})" if how else ""))
        for name in registry.names():
            entry = registry.entry(name)
            print(f"  {name:<16} {entry.help}")
            for param in entry.params.values():
                default = "" if param.default is inspect.Parameter.empty else f" = {param.default!r}"
                print(f"      {param.name}: {param.type_name}{default}")
        print()
    print("experiments (gankit experiment NAME):")
    print(_experiment_lines())
    return 0


def cmd_eval(args) -> int:
    import json
    import time

    from .errors import ConfigError
    from .metrics import evaluate as E

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    t0 = time.perf_counter()
    run, reference = None, {}
    if args.real or args.fake:
        if args.run_dir or not (args.real and args.fake):
            raise ConfigError("give either RUN_DIR, or both --real PATH and --fake PATH")
        results, what = E.evaluate_paths(args.real, args.fake, metrics, args.features), f"{args.fake} vs {args.real}"
        header = {"real": args.real, "fake": args.fake}
    elif args.run_dir:
        if args.n < 2:
            raise ConfigError(f"--n must be at least 2, got {args.n}")
        from .api import load_run

        run = load_run(args.run_dir)
        figures = args.figures if args.figures else run.path / "evals" / "figures"
        results = E.evaluate_run(run, metrics, n=args.n, features=args.features, split=args.split, seed=args.seed,
                                 figures=figures)
        if args.reference:
            reference = E.evaluate_reference(run, metrics, n=args.n,
                                             features=args.features, split=args.split, seed=args.seed)
        what = f"{run.path} (step {run.step}), {args.n} samples vs the {args.split} split"
        header = {"run": str(run.path), "step": run.step, "n": args.n, "split": args.split}
    else:
        raise ConfigError("give a RUN_DIR to evaluate, or --real PATH and --fake PATH")
    if args.reference and run is None:
        raise ConfigError("--reference needs a RUN_DIR (its data's training split is the reference)")
    seconds = time.perf_counter() - t0
    print(f"evaluation of {what} ({seconds:.1f} s, features: {args.features})")
    if reference:
        print(f"| {'metric':<14} | {'value':>12} | {'real data':>12} |\n|{'-' * 16}|{'-' * 14}|{'-' * 14}|")
        for key, value in results.items():
            ref = f"{reference[key]:>12.5g}" if key in reference else f"{'-':>12}"
            print(f"| {key:<14} | {value:>12.5g} | {ref} |")
    else:
        print(f"| {'metric':<14} | {'value':>12} |\n|{'-' * 16}|{'-' * 14}|")
        for key, value in results.items():
            print(f"| {key:<14} | {value:>12.5g} |")
    payload = {**header, "features": args.features, "seconds": round(seconds, 2), "metrics": results,
               **({"reference": reference} if reference else {})}
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    if run is not None:   # kept with the run, for `gankit report`
        from .report.page import save_eval

        save_eval(run.path, payload)
    return 0


def cmd_edit(args) -> int:
    import math

    from .api import load_run
    from .editing import Editor, edit_run, save_edit
    from .errors import ConfigError

    if not Path(args.input).exists():
        raise ConfigError(f"--input {args.input}: no such file or folder; give an image file, an image folder, "
                          ".npz or .npy")
    if args.steps < 0:
        raise ConfigError(f"--steps must be 0 or more, got {args.steps}")
    if args.encoder_steps < 1 or args.samples < 2:
        raise ConfigError(f"--encoder-steps must be at least 1 and --samples at least 2, got {args.encoder_steps} and "
                          f"{args.samples}")
    if not math.isfinite(args.amount):
        raise ConfigError(f"--amount must be a finite number, got {args.amount}")
    run = load_run(args.run_dir)
    settings = {"encoder_steps": args.encoder_steps, "n_directions": args.samples}
    Editor(run, **settings).check_attribute(args.attr)   # a typo or a run without a generator: before reading anything
    images, kind = _read_images(args.input)
    if kind != "image":
        raise ConfigError(f"--input {args.input}: expected pictures, got an array of shape {tuple(images.shape)}")
    result = edit_run(run, images, args.attr, args.amount, label=args.label, steps=args.steps,
                      log=lambda m: print(m, file=sys.stderr), **settings)
    for note in result["notes"]:
        print(note, file=sys.stderr)
    paths = save_edit(result, Path(args.out))
    for i, (a, b, c) in enumerate(zip(result["score_input"], result["score_inverted"], result["score_edited"])):
        print(f"picture {i}: {args.attr} input {a:.4g}, inverted {b:.4g}, edited {c:.4g} (change {c - b:+.4g}); "
              f"feature distance edited-inverted {result['feature_distance_edited_inverted'][i]:.3g} "
              f"(random samples: {result['feature_distance_random_inverted'][i]:.3g})")
    print(f"{len(result['input'])} picture(s) edited with {run.path} (step {run.step}"
          f"{', cached editor' if result['cached'] else ''}) -> {paths['edit'].parent}")
    return 0


def cmd_experiment(args) -> int:
    from .experiments import run_experiment

    return run_experiment(args.name, args.options)


def cmd_bench(args) -> int:
    from .bench import main as bench_main

    return bench_main(args.options)


def cmd_report(args) -> int:
    from .errors import ConfigError
    from .report.page import write_report

    if args.max_frames < 2:
        raise ConfigError(f"--max-frames must be at least 2, got {args.max_frames}")
    out = write_report(args.run_dirs, args.out, max_frames=args.max_frames)
    print(f"report: {out}")
    return 0


def cmd_serve(args) -> int:
    from .errors import ConfigError
    from .report.serve import serve

    if not args.interval > 0:
        raise ConfigError(f"--interval must be positive, got {args.interval}")
    return serve(args.run_dirs, port=args.port, interval_ms=int(args.interval * 1000))


COMMANDS = {"report": cmd_report, "serve": cmd_serve, "bench": cmd_bench, "experiment": cmd_experiment, "edit": cmd_edit, "train": cmd_train, "resume": cmd_resume, "sample": cmd_sample, "eval": cmd_eval, "list": cmd_list}


def main(argv: Optional[List[str]] = None) -> int:
    from .train.runtime import prefer_huge_pages

    prefer_huge_pages()  # before the first large tensor: PyTorch reads the switch once
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # all of its options are its own (argparse's REMAINDER drops leading options)
        from .bench import main as bench_main

        return bench_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except GankitError as exc:
        rank = _rank()
        if rank == 0 or not getattr(exc, "on_every_rank", False):
            where = f" (rank {rank})" if rank else ""
            print(f"gankit {args.command}{where}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gankit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
