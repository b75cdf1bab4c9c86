"""Through sampled tokens the discriminator's score has no gradient; through Gumbel-softmax it has.

"Improving Sequence Generation by GAN": a generator that writes tokens samples each one
(argmax, or a draw) from its distribution, and the score D gives the sampled sequence is then
a step function of the generator's parameters theta: a small change of theta changes the
distributions a little but the sampled tokens not at all, so dD/dtheta = 0 wherever it exists,
and gradient descent cannot train G through D. The Gumbel-softmax relaxation replaces each
sampled one-hot vector by softmax((logits + g) / tau), a smooth function of theta, and D's
score gets a gradient.

The experiment, in float64 with a random LSTM generator (``lstm``) and SeqGAN's CNN
discriminator (``seq_cnn``) over a small vocabulary, one batch of Gumbel noise g shared by
both ways of drawing:

* ``argmax``: tokens x_t = argmax(logits_t + g_t) (the Gumbel-max trick: an exact draw from
  p(x_t | x_<t)), each fed back to the generator as its next input; D reads their one-hot
  vectors. S(theta) = mean D score.
* ``gumbel``: y_t = softmax((logits_t + g_t) / tau), fed back as its expected embedding; D reads
  the y_t. S(theta) likewise.

Measured for each: the autograd gradient dS/dtheta (for argmax, autograd finds no
differentiable path: the gradient is exactly 0), and the central finite differences
(S(theta + eps v) - S(theta - eps v)) / (2 eps) along ``directions`` random unit directions v
at several eps. Through argmax every difference is exactly 0.0 (the tokens do not move); through
Gumbel-softmax the differences agree with autograd's v . dS/dtheta (``fd_rel_error``).

Run ``gankit experiment argmax-gradient --out DIR``; writes ``DIR/argmax_gradient.json`` and
``.png``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from ..nets.sequence import LSTMGenerator, SequenceCNN
from ..viz.plots import pyplot, save_figure as write_figure
from . import write_json

__all__ = ["gumbel_max_tokens", "scores", "run", "main"]

NAME = "argmax_gradient"


def gumbel_max_tokens(G, gumbel: torch.Tensor) -> torch.Tensor:
    """Tokens (N, L) drawn by the Gumbel-max trick, x_t = argmax(logits_t + g_t), each fed back as
    the next input."""
    n = len(gumbel)
    tok = torch.full((n,), G.start, dtype=torch.long)
    state, out = None, []
    for t in range(G.length):
        h, state = G._body(G.embed(tok).unsqueeze(1), state)
        tok = (G.head(h[:, 0]) + gumbel[:, t]).argmax(-1)
        out.append(tok)
    return torch.stack(out, 1)


def scores(G, D, gumbel: torch.Tensor, tau: float) -> Dict[str, torch.Tensor]:
    """The mean D score of the batch drawn both ways: ``argmax`` (one-hot of Gumbel-max tokens)
    and ``gumbel`` (the relaxed one-hot vectors at temperature tau)."""
    hard = F.one_hot(gumbel_max_tokens(G, gumbel), G.vocab).to(gumbel.dtype)
    soft = _relaxed(G, gumbel, tau)
    return {"argmax": D(hard).mean(), "gumbel": D(soft).mean()}


def _relaxed(G, gumbel: torch.Tensor, tau: float) -> torch.Tensor:
    """Gumbel-softmax vectors (N, L, V), each fed back as its expected embedding (no end
    handling: every position counts)."""
    n = len(gumbel)
    inp = G.embed(torch.full((n,), G.start, dtype=torch.long)).unsqueeze(1)
    state, out = None, []
    for t in range(G.length):
        h, state = G._body(inp, state)
        y = torch.softmax((G.head(h[:, 0]) + gumbel[:, t]) / tau, -1)
        out.append(y)
        inp = (y @ G.embed.weight[:G.vocab]).unsqueeze(1)
    return torch.stack(out, 1)


def _flat_grad(score: torch.Tensor, params: List[torch.Tensor]) -> torch.Tensor:
    """dS/dtheta as one vector; zeros where S has no differentiable path to theta."""
    if not score.requires_grad:
        return torch.zeros(sum(p.numel() for p in params), dtype=torch.float64)
    grads = torch.autograd.grad(score, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])


@torch.no_grad()
def _shifted(G, D, gumbel, tau, params, v: torch.Tensor, eps: float) -> Dict[str, float]:
    """Central differences of both scores along ``v``."""
    out = {}
    sizes = [p.numel() for p in params]
    step = list(torch.split(v * eps, sizes))
    for p, s in zip(params, step):
        p.add_(s.view_as(p))
    up = {k: float(s) for k, s in scores(G, D, gumbel, tau).items()}
    for p, s in zip(params, step):
        p.sub_(2 * s.view_as(p))
    down = {k: float(s) for k, s in scores(G, D, gumbel, tau).items()}
    for p, s in zip(params, step):
        p.add_(s.view_as(p))
    for k in up:
        out[k] = (up[k] - down[k]) / (2 * eps)
    return out


def run(out: Optional[str] = None, seed: int = 0, vocab: int = 30, length: int = 10, n: int = 64,
        tau: float = 1.0, directions: int = 8, eps: tuple = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)) -> Dict[str, object]:
    """Measure both gradients; write ``argmax_gradient.json``/``.png`` under ``out`` when given."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    G = LSTMGenerator(vocab, length, embed=16, hidden=32).double()
    D = SequenceCNN(vocab, length, embed=16, widths=[2, 3], filters=16, dropout=0.0).double()
    D.requires_grad_(False)
    g = torch.Generator().manual_seed(seed + 1)
    u = torch.rand(n, length, vocab, generator=g, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    gumbel = -torch.log(-torch.log(u))
    params = list(G.parameters())
    s = scores(G, D, gumbel, tau)
    grad = {k: _flat_grad(v, params) for k, v in s.items()}
    dirs = torch.randn(directions, grad["gumbel"].numel(), generator=g, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    fd: Dict[str, List[List[float]]] = {"argmax": [], "gumbel": []}
    for e in eps:
        rows = [_shifted(G, D, gumbel, tau, params, v, e) for v in dirs]
        for k in fd:
            fd[k].append([r[k] for r in rows])
    autograd_dir = (dirs @ grad["gumbel"]).tolist()
    best = min(range(len(eps)), key=lambda i: sum(abs(a - b) for a, b in zip(fd["gumbel"][i], autograd_dir)))
    rel = max(abs(a - b) for a, b in zip(fd["gumbel"][best], autograd_dir)) / max(1e-300, max(map(abs, autograd_dir)))
    res = {
        "score_argmax": float(s["argmax"].detach()), "score_gumbel": float(s["gumbel"].detach()),
        "argmax_has_graph": bool(s["argmax"].requires_grad),
        "grad_norm_argmax": float(grad["argmax"].norm()), "grad_norm_gumbel": float(grad["gumbel"].norm()),
        "fd_max_abs_argmax": max(abs(x) for row in fd["argmax"] for x in row),
        "fd_rel_error_gumbel": rel, "fd_best_eps_gumbel": eps[best],
        "eps": list(eps), "fd_argmax": fd["argmax"], "fd_gumbel": fd["gumbel"], "autograd_directional": autograd_dir,
        "settings": {"seed": seed, "vocab": vocab, "length": length, "n": n, "tau": tau, "directions": directions,
                     "generator": "lstm (embed 16, hidden 32), float64",
                     "discriminator": "seq_cnn (embed 16, widths 2 3, 16 filters), float64"},
    }
    res["seconds"] = time.perf_counter() - t0
    if out is not None:
        folder = write_json(out, NAME, res)
        save_figure(res, folder / f"{NAME}.png")
    return res


def save_figure(res: Dict[str, object], path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    eps = res["eps"]
    for i in range(len(res["autograd_directional"])):
        ax.plot(eps, [row[i] for row in res["fd_gumbel"]], color="tab:blue", alpha=0.6,
                label="Gumbel-softmax: finite difference" if i == 0 else None)
        ax.plot(eps, [row[i] for row in res["fd_argmax"]], color="tab:red", alpha=0.8, marker="o", ms=3,
                label="argmax: finite difference" if i == 0 else None)
        ax.axhline(res["autograd_directional"][i], color="tab:blue", ls=":", lw=0.8,
                   label="Gumbel-softmax: autograd" if i == 0 else None)
    ax.set_xscale("log")
    ax.set_xlabel("eps")
    ax.set_ylabel("directional derivative of mean D score")
    ax.set_title(f"dD/dtheta: argmax {res['grad_norm_argmax']:.1f}, Gumbel-softmax {res['grad_norm_gumbel']:.3g}",
                 fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return write_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m gankit.experiments.{NAME}",
                                description="The gradient of D's score w.r.t. G through argmax sampling (exactly 0) "
                                "and through Gumbel-softmax (not 0).")
    p.add_argument("--out", required=True, help=f"folder for {NAME}.json and .png")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vocab", type=int, default=30)
    p.add_argument("--length", type=int, default=10)
    p.add_argument("--tau", type=float, default=1.0)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    res = run(out=a.out, seed=a.seed, vocab=a.vocab, length=a.length, tau=a.tau)
    print(f"argmax: autograd gradient norm {res['grad_norm_argmax']:.1f} (a graph to theta: "
          f"{res['argmax_has_graph']}), largest finite difference {res['fd_max_abs_argmax']:.1f}")
    print(f"Gumbel-softmax (tau {a.tau}): autograd gradient norm {res['grad_norm_gumbel']:.4g}, finite differences "
          f"agree to {res['fd_rel_error_gumbel']:.1e} (eps {res['fd_best_eps_gumbel']:g})")
    print(f"wrote {Path(a.out) / (NAME + '.json')} and .png ({res['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
