"""How fast a training step runs, and how close it comes to the machine's limit.

For each case this times whole training steps (warm-up first, then the median of several
timed blocks) and reports steps/s, images/s, the peak memory, the FLOPs of one step counted
with PyTorch's per-operator formulas (``torch.utils.flop_counter``: matrix products and
convolutions, forward and backward) and the achieved GFLOP/s -- beside the fp32 and bf16 matrix-product
peaks measured in the same process (square products of ``--peak-size``, the largest
figure of a few repeats).

Cases:

* ``gankit``: the method's own ``train_step`` on the config given (default: the default
  run, DCGAN + non-saturating GAN on 28x28, batch 64, with its runtime: bf16 autocast and
  channels_last on a CPU that has bf16, and the allocator's huge pages that the ``gankit``
  command switches on, :func:`gankit.train.runtime.prefer_huge_pages`);
* ``plain``: a plain fp32 PyTorch loop over the same networks and the same algorithm
  (one discriminator step on real and fresh generated samples, one generator step on
  fresh noise, Adam with its default implementation, contiguous tensors, no autocast, in a
  process with PyTorch's default allocator settings):
  the baseline the fast path is measured against. It supports the objectives
  ``nonsaturating`` and ``wasserstein`` with an optional gradient penalty.

The real batch is random data of the configured shape: a step's cost does not depend on
what the pixels show, so no data set is needed. Run ``gankit bench --help``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from .train.runtime import HUGE_PAGES, plain_environment, prefer_huge_pages

__all__ = ["matmul_peak", "count_flops", "time_steps", "gankit_case", "plain_case", "run_case", "main"]


# ----------------------------------------------------------------------------------- machine limits

def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """GFLOP/s of one ``size`` x ``size`` matrix product in ``dtype`` (the best of ``repeats``)."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    best = float("inf")
    for _ in range(repeats + 1):  # the first product warms up the kernels
        _sync(device)
        t = time.perf_counter()
        (a @ b).sum().item() if device == "cpu" else a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * size ** 3 / best / 1e9


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def count_flops(step: Callable[[], object]) -> int:
    """FLOPs of one call of ``step`` (matrix products and convolutions, forward and backward),
    by PyTorch's own per-operator FLOP formulas (``torch.utils.flop_counter``).

    A plain dispatch mode rather than ``FlopCounterMode``, whose per-module bookkeeping
    cannot follow ``autograd.grad`` (gradient penalties)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                Counter.total += int(formula(*args, **kwargs, out_val=out))
            return out

    with Counter():
        step()
    return Counter.total


def time_steps(step: Callable[[], object], device: str, warmup: int = 10, steps: int = 30,
               blocks: int = 3) -> float:
    """Median seconds per call of ``step`` over ``blocks`` timed blocks of ``steps`` calls."""
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(blocks):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        times.append((time.perf_counter() - t) / steps)
    return statistics.median(times)


# ----------------------------------------------------------------------------------- the two cases

def _config(config: Optional[str], overrides: Sequence[str]):
    from .api import make_config
    from .registries import load_all

    load_all()
    return make_config(config, overrides)


def _info(cfg):
    from .data.base import Field
    from .methods.base import DataInfo

    spec = cfg.data
    if spec["name"] in ("fashion_mnist", "mnist"):   # their description without reading the files
        from .data.pairs import paired_fields

        size = int(spec.get("image_size", 28))
        shape = (int(spec.get("channels", 1)), size, size)
        classes = tuple(str(i) for i in range(10))
        return DataInfo(kind="image", shape=shape, n_classes=10,
                        fields={"x": Field("image", shape), "y": Field("label", (), classes, (0.1,) * 10),
                                **paired_fields(shape, spec.get("pairs", "none"))})
    from .api import build_data

    return DataInfo.of(build_data(cfg))


def _real_batches(info, n: int, count: int, device) -> List[Dict[str, torch.Tensor]]:
    """``count`` batches of ``n`` random samples of every field of the data (what a step costs
    does not depend on the values): images and vectors uniform in [-1, 1], labels and tokens
    uniform over their classes, multi-labels 0/1."""
    g = torch.Generator().manual_seed(0)

    def field(f):
        if f.kind in ("image", "vector"):
            return torch.rand((n,) + tuple(f.shape), generator=g) * 2 - 1
        if f.kind in ("label", "tokens"):
            return torch.randint(max(f.n_classes, 1), (n,) + tuple(f.shape), generator=g)
        return torch.randint(2, (n,) + tuple(f.shape), generator=g).float()

    return [{name: field(f).to(device) for name, f in info.fields.items()} for _ in range(count)]


def gankit_case(config: Optional[str] = None, overrides: Sequence[str] = ()):
    """(step function, images per step, description) for the method of a config."""
    from .api import _method

    cfg = _config(config, overrides)
    info = _info(cfg)
    runtime, method = _method(cfg, info)
    batches = [runtime.tensor(b) for b in _real_batches(info, cfg.train.batch_size, method.real_batches_per_step,
                                                        runtime.device)]
    counter = iter(range(1 << 62))

    def step():
        return method.train_step(batches, next(counter))

    images = cfg.train.batch_size * method.real_batches_per_step
    return step, images, str(runtime.device), f"gankit ({runtime.describe()})"


def plain_case(config: Optional[str] = None, overrides: Sequence[str] = ()):
    """The same networks and algorithm as a plain fp32 loop: the baseline."""
    from .api import _method

    cfg = _config(config, overrides + ("runtime.precision=fp32", "runtime.channels_last=off"))
    info = _info(cfg)
    _, method = _method(cfg, info)            # only to build the very same networks
    G, D = method.generator, method.discriminator
    device = next(G.parameters()).device
    G, D = G.to(memory_format=torch.contiguous_format), D.to(memory_format=torch.contiguous_format)
    m = dict(cfg.method)
    objective, penalty, k = m.get("objective", "nonsaturating"), m.get("penalty", "none"), m.get("d_steps", 1)
    if objective not in ("nonsaturating", "wasserstein") or penalty not in ("none", "gradient") or m.get("pack", 1) != 1:
        raise ValueError("the plain loop covers the non-saturating and Wasserstein objectives with an optional "
                         "gradient penalty, without packing")
    o = cfg.optim
    opt_g = torch.optim.Adam(G.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2))
    bs, z_dim = cfg.train.batch_size, G.z_dim
    batches = [b["x"] for b in _real_batches(info, bs, k, device)]
    weight = float(m.get("penalty_weight", 10.0))

    def d_loss_of(real, fake):
        if objective == "wasserstein":
            loss = D(fake).mean() - D(real).mean()
        else:
            d_real, d_fake = D(real), D(fake)
            loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                    + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        if penalty == "gradient":
            eps = torch.rand(bs, 1, 1, 1, device=device)
            x = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
            loss = loss + weight * (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
        return loss

    def step():
        for real in batches:
            with torch.no_grad():
                fake = G(torch.randn(bs, z_dim, device=device))
            loss = d_loss_of(real, fake)
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        out = D(G(torch.randn(bs, z_dim, device=device)))
        g_loss = -out.mean() if objective == "wasserstein" else \
            F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)
        return g_loss

    return step, bs * k, str(device), "plain fp32 loop"


CASES = {"gankit": gankit_case, "plain": plain_case}


def _peak_memory_mb(device: str) -> float:
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2 ** 20
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return kb / 1024


def run_case(case: str, config: Optional[str] = None, overrides: Sequence[str] = (), steps: int = 30,
             warmup: int = 10, blocks: int = 3) -> Dict[str, object]:
    """Time one case in this process; returns its row."""
    from .train import distributed

    torch.manual_seed(0)
    step, images, device, what = CASES[case](config, tuple(overrides))
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    flops = count_flops(step)                       # one process's share of the work
    seconds = time_steps(step, device, warmup=warmup, steps=steps, blocks=blocks)
    world = distributed.world_size()
    return {"case": case, "what": what + (f", {world} processes" if world > 1 else ""),
            "config": config or "default", "overrides": list(overrides), "processes": world,
            "steps_per_s": 1 / seconds, "images_per_s": world * images / seconds, "ms_per_step": 1000 * seconds,
            "gflop_per_step": world * flops / 1e9, "gflops": world * flops / seconds / 1e9,
            "peak_memory_mb": _peak_memory_mb(device), "device": device, "threads": torch.get_num_threads(),
            "huge_pages": os.environ.get(HUGE_PAGES) == "1"}


def _in_subprocess(case: str, config: Optional[str], overrides: Sequence[str], args,
                   nproc: int = 1) -> Dict[str, object]:
    """Each case in a fresh process (or ``nproc`` processes under torchrun): peak memory is
    its own, and no case warms another."""
    launch = [sys.executable, "-m", "gankit.bench"]
    if nproc > 1:
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                  "-m", "gankit.bench"]
    cmd = launch + ["--one", case, "--steps", str(args.steps), "--warmup", str(args.warmup),
                    "--blocks", str(args.blocks)]
    if config:
        cmd += ["--config", config]
    for o in overrides:
        cmd += ["--set", o]
    # the plain loop runs as plain PyTorch would: without the allocator setting gankit chooses
    env = plain_environment() if case == "plain" else None
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr.strip()[-3000:]}")
    row = json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
    row["label"] = ", ".join([*overrides, *([f"{nproc} processes"] if nproc > 1 else [])]) or "defaults"
    return row


# ----------------------------------------------------------------------------------- command line

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gankit bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="a config YAML (default: the default run)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, repeatable (e.g. --set train.batch_size=128)")
    p.add_argument("--cases", default="gankit,plain", help="comma-separated: gankit, plain")
    p.add_argument("--steps", type=int, default=30, help="timed steps per block")
    p.add_argument("--blocks", type=int, default=3, help="timed blocks (the median is reported)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    p.add_argument("--repeats", type=int, default=1,
                   help="run every case this many times, in turn (gankit, plain, gankit, ...), and report "
                        "each case's fastest run: on a shared machine, load that comes and goes then "
                        "affects the cases alike")
    p.add_argument("--peak-size", type=int, default=2048, help="matrix size for the peak measurement")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="also time the gankit case at each value of one config key (the others as given), "
                        "e.g. --sweep train.batch_size=32,64,128; repeatable")
    p.add_argument("--nprocs", default="", metavar="N1,N2,...",
                   help="also time the gankit case in N processes under torchrun (per-process batch as "
                        "configured; set runtime.threads so that the processes share the cores)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # run one case here and print its JSON row
    return p


def _table(rows: List[Dict[str, object]], peaks: Dict[str, float]) -> str:
    lines = ["| case | settings | steps/s | images/s | GFLOP/step | GFLOP/s | % of bf16 peak | % of fp32 peak "
             "| peak MB |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r.get('label', '')} | {r['steps_per_s']:.2f} | {r['images_per_s']:.0f} | {r['gflop_per_step']:.3f} "
                     f"| {r['gflops']:.1f} | {100 * r['gflops'] / peaks['bf16']:.0f}% "
                     f"| {100 * r['gflops'] / peaks['fp32']:.0f}% | {r['peak_memory_mb']:.0f} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    for name in ("steps", "blocks", "peak_size", "repeats"):
        if getattr(args, name) < 1:
            raise SystemExit(f"gankit bench: --{name.replace('_', '-')} must be at least 1")
    if args.one:
        from .train import distributed

        with distributed.session():
            row = run_case(args.one, args.config, args.overrides, args.steps, args.warmup, args.blocks)
            if distributed.is_main():
                print(json.dumps(row))
        return 0
    prefer_huge_pages()  # for the gankit cases' processes; the plain loop's go without (_in_subprocess)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise SystemExit(f"gankit bench: unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    device = "cuda" if torch.cuda.is_available() and not any(o.startswith("runtime.device=cpu")
                                                                for o in args.overrides) else "cpu"
    peaks = {"fp32": matmul_peak(torch.float32, args.peak_size, device=device),
             "bf16": matmul_peak(torch.bfloat16, args.peak_size, device=device)}
    jobs = [(c, args.overrides, 1) for c in cases]
    for sweep in args.sweep:
        key, _, values = sweep.partition("=")
        if not values:
            raise SystemExit(f"gankit bench: --sweep {sweep!r}: expected KEY=V1,V2,...")
        jobs += [("gankit", [*args.overrides, f"{key}={v}"], 1) for v in values.split(",")]
    jobs += [("gankit", args.overrides, int(n)) for n in args.nprocs.split(",") if n.strip()]
    tries: List[List[Dict[str, object]]] = [[] for _ in jobs]
    for _ in range(args.repeats):
        for i, (case, overrides, nproc) in enumerate(jobs):
            tries[i].append(_in_subprocess(case, args.config, overrides, args, nproc=nproc))
    rows = [max(t, key=lambda r: r["steps_per_s"]) for t in tries]
    for row, t in zip(rows, tries):
        row["repeats_steps_per_s"] = [r["steps_per_s"] for r in t]
    print(f"date: {time.strftime('%Y-%m-%d')}  machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{torch.cuda.get_device_name() if device == 'cuda' else platform.processor() or 'cpu'}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads"
          + (f"; each case's fastest of {args.repeats} runs" if args.repeats > 1 else ""))
    print(f"matrix-product peak ({args.peak_size}^2): fp32 {peaks['fp32']:.0f} GFLOP/s, "
          f"bf16 {peaks['bf16']:.0f} GFLOP/s")
    print(_table(rows, peaks))
    if cases[:2] == ["gankit", "plain"]:
        print(f"speed-up over the plain fp32 loop: {rows[0]['steps_per_s'] / rows[1]['steps_per_s']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peaks": peaks, "rows": rows, "argv": argv if argv is not None else sys.argv[1:]}, f, indent=2)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
