"""What each part of the default run's fast path buys: the same training step with parts
switched off, timed in turn in one process.

Variants (all with bf16 autocast and channels_last, the default run's runtime):

* ``all``: gankit as it is;
* ``no_layout``: the DCGAN networks without their channels_last care (and without the fold,
  which needs it) -- the generator's first
  map left in (C, H, W) order and the discriminator's read-out through a (C, H, W) flatten, so
  that gradients reach ReLU, LeakyReLU and batch norm in the other layout than the one their
  forward saved;
* ``no_fold``: the generator's last layer by the library's transposed convolution instead of
  one matrix product and a fold (``gankit.nets.dcgan.conv_transpose_by_fold``);
* ``no_fused``: Adam with ``foreach`` instead of the fused kernel;
* ``neither``: layout care (and with it the fold) and fused Adam switched off: the step as it
  was before any of the three;
* ``compiled`` (with ``--compile``): ``all`` with both networks wrapped in ``torch.compile``
  (inductor); its compile time is reported apart and left out of the rates.

Every variant trains its own copy of the default networks on the same real Fashion-MNIST
batches. The variants run in turn, ``--rounds`` times, ``--steps`` steps each time, so that
load which comes and goes on a shared machine reaches them alike; the median steps/s of the
rounds is reported.

    python benchmarks/step_ablation.py --rounds 12 --steps 20 [--compile]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

VARIANTS = ("all", "no_fold", "no_layout", "no_fused", "neither")


def build(variant: str, n_batches: int = 8):
    from gankit.api import _method, build_data, make_config
    from gankit.methods.base import DataInfo
    from gankit.registries import load_all

    load_all()
    cfg = make_config(None, ())
    data = build_data(cfg)
    torch.manual_seed(0)
    rt, method = _method(cfg, DataInfo(kind="image", shape=tuple(data.shape)))
    g, d = method.generator, method.discriminator
    if variant in ("no_layout", "neither"):
        g.forward = lambda z: torch.tanh(g.up(g.project_bn(g.project(z).view(len(z), g.ch, g.base, g.base))))
        d.forward = lambda x: d.head(d.body(x).flatten(1))
    if variant == "no_fold":
        g.forward = lambda z: torch.tanh(g.up(g.project_bn(g.project(z).view(len(z), g.ch, g.base, g.base)
                                                           .contiguous(memory_format=torch.channels_last))))
    if variant == "compiled":
        method.modules["generator"] = torch.compile(g)
        method.modules["discriminator"] = torch.compile(d)
    if variant in ("no_fused", "neither"):
        o = cfg.optim
        for name, attr in (("generator", "opt_g"), ("discriminator", "opt_d")):
            opt = torch.optim.Adam(method.modules[name].parameters(), lr=o.lr_g if name == "generator" else o.lr_d,
                                   betas=(o.beta1, o.beta2), foreach=True)
            method.optimizers[name] = opt
            setattr(method, attr, opt)
    bs = cfg.train.batch_size
    images = data.to_model(data.x[: bs * n_batches])
    batches = [rt.tensor(images[i * bs:(i + 1) * bs]) for i in range(n_batches)]
    counter = iter(range(1 << 62))

    def step():
        i = next(counter)
        return method.train_step([batches[i % n_batches]], i)

    return step


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--steps", type=int, default=20, help="steps per variant per round")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--compile", action="store_true", help="add the torch.compile variant")
    args = p.parse_args(argv)
    from gankit.train.runtime import prefer_huge_pages

    prefer_huge_pages()  # as the gankit command does, before the first large tensor
    variants = VARIANTS + (("compiled",) if args.compile else ())
    steps = {v: build(v) for v in variants}
    for v, step in steps.items():
        t = time.perf_counter()
        for _ in range(args.warmup):
            step()
        if v == "compiled":
            print(f"compiled: first {args.warmup} steps (compiling included) took {time.perf_counter() - t:.1f} s")
    rates = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v, step in steps.items():
            t = time.perf_counter()
            for _ in range(args.steps):
                step()
            rates[v].append(args.steps / (time.perf_counter() - t))
    base = statistics.median(rates["neither"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.rounds} rounds "
          f"of {args.steps} steps")
    print("| variant | steps/s (median) | vs neither | rounds (min-max) |")
    print("|---|---:|---:|---|")
    for v in variants:
        r = rates[v]
        print(f"| {v} | {statistics.median(r):.2f} | {statistics.median(r) / base:.2f}x "
              f"| {min(r):.1f}-{max(r):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
