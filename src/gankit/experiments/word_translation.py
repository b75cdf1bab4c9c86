"""Unsupervised word translation: English -> German fortunes, aligned without a dictionary.

"Improving Sequence Generation by GAN" ends with unsupervised translation: two languages are
two domains. Conneau, Lample et al. (2018) do it for words: embeddings of each language,
trained apart, are aligned by a linear map learnt adversarially, then refined by Procrustes
on the mutual CSLS nearest neighbours (``gankit.translation``).

Both corpora are fortunes (English: the files ``quotes`` reads; German: fortunes-de), one
embedding space each (PPMI + truncated SVD, centred and unit-normalised). The target space is
turned by a seeded random rotation first, so nothing rests on the two SVDs choosing similar
bases (retrieval, Procrustes and CSLS do not change under it; only the adversarial map's
identity start would). The FreeDict English-German dictionary, restricted to words of both
vocabularies, is split by source word: the train half feeds only supervised Procrustes, the
test half scores every row by precision@1/@5 with plain nearest neighbours and with CSLS.

Rows: identity-string (a word translated as itself), random (a random orthogonal map),
adversarial (two starts, the identity and a reflection, since W cannot change the sign of its
determinant; the start and epoch with the best unsupervised criterion), adversarial + refinement,
supervised Procrustes, and a diagnostic: the adversarial game started at the supervised map
(two epochs), which tells a game whose optimum is wrong from one that is not found. The same
rows for the paper's sanity check, two halves of the English
entries as two "languages" (the dictionary: each word is its own translation).

Run ``gankit experiment word-translation --out DIR``; writes ``DIR/word_translation.json`` and
``.png`` (CSLS precision@1 and the criterion over the adversarial epochs). Needs
``apt-get install fortunes fortunes-de dict-freedict-eng-deu``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Set

import numpy as np
import torch

from .. import translation as T
from ..viz.plots import pyplot, save_figure as write_figure
from . import write_json

__all__ = ["evaluate_rows", "run", "main"]

NAME = "word_translation"
ROWS = ("identity-string", "random", "adversarial", "adversarial + refinement", "supervised Procrustes",
        "adversarial from supervised")


def _scores(mapped, tgt, test) -> Dict[str, float]:
    return {f"{m}@{n}": p for m in ("nn", "csls") for n, p in T.precision_at(mapped, tgt, test, m).items()}


def _pairs_of(d: Dict[int, Set[int]]) -> np.ndarray:
    return np.array([(s, t) for s in sorted(d) for t in sorted(d[s])])


def evaluate_rows(src: T.Embeddings, tgt: T.Embeddings, train, test, seed: int, adv: dict, refine_iters: int,
                  log=None) -> Dict[str, object]:
    """Every row of the table for one language pair (tgt already rotated)."""
    xs, yt = src.vectors, tgt.vectors
    rows: Dict[str, Dict[str, float]] = {}
    ident = T.identity_precision(src, tgt, test)
    rows["identity-string"] = {"nn@1": ident, "nn@5": ident, "csls@1": ident, "csls@5": ident}
    rows["random"] = _scores(xs @ T.random_orthogonal(xs.shape[1], seed + 7).T, yt, test)
    t0 = time.perf_counter()
    starts = {}
    for init in ("identity", "reflection"):
        starts[init] = T.adversarial(xs, yt, seed=seed, test=test, log=log, init=init, **adv)
    chosen = max(starts, key=lambda k: max(starts[k].criterion))
    res = starts[chosen]
    adv_seconds = time.perf_counter() - t0
    rows["adversarial"] = _scores(xs @ res.w.T, yt, test)
    w_ref, sizes = T.refine(res.w, xs, yt, refine_iters)
    rows["adversarial + refinement"] = _scores(xs @ w_ref.T, yt, test)
    p = _pairs_of(train)
    w_sup = T.procrustes(xs[p[:, 0]], yt[p[:, 1]])
    rows["supervised Procrustes"] = _scores(xs @ w_sup.T, yt, test)
    # diagnostic: the same adversarial game started at the supervised map (does it stay there?)
    diag = T.adversarial(xs, yt, seed=seed, init=w_sup, **{**adv, "epochs": min(2, adv["epochs"])})
    rows["adversarial from supervised"] = _scores(xs @ diag.w.T, yt, test)
    crit = {"adversarial": res.criterion[res.best_epoch] if res.best_epoch >= 0 else None,
            "adversarial + refinement": T.mean_csls_cosine(xs @ w_ref.T, yt),
            "supervised Procrustes": T.mean_csls_cosine(xs @ w_sup.T, yt),
            "adversarial from supervised": max(diag.criterion), "diagnostic_d_loss": diag.d_loss}
    return {"rows": rows, "criterion": crit, "start": chosen,
            "epochs": {k: {"criterion": r.criterion, "precision": r.precision, "d_loss": r.d_loss,
                           "best": r.best_epoch} for k, r in starts.items()},
            "refinement_dictionary_sizes": sizes, "adversarial_seconds": adv_seconds,
            "vocab_source": len(src), "vocab_target": len(tgt), "train_words": len(train), "test_words": len(test),
            "test_pairs": int(sum(len(v) for v in test.values()))}


def run(out: Optional[str] = None, seed: int = 0, vocab: int = 2000, dim: int = 32, window: int = 1,
        epochs: int = 5, steps: int = 500, most_frequent: int = 1000, refine_iters: int = 5,
        test_fraction: float = 0.5, halves: bool = True, fortunes: Optional[str] = None,
        fortunes_de: Optional[str] = None, dict_dir: Optional[str] = None, verbose: bool = True) -> Dict[str, object]:
    """Build both language pairs and every row; write JSON and figure under ``out`` when given."""
    t0 = time.perf_counter()
    say = print if verbose else (lambda *a, **k: None)
    folder = Path(dict_dir or T.DICT_DIR)
    en = T.english_sentences(fortunes)
    de = T.german_sentences(fortunes_de)
    emb = dict(vocab=vocab, dim=dim, window=window)
    adv = dict(epochs=epochs, steps=steps, most_frequent=most_frequent)
    rot = T.random_orthogonal(dim, seed + 1)
    res: Dict[str, object] = {"settings": {"seed": seed, **emb, **adv, "refine_iters": refine_iters,
                                           "test_fraction": test_fraction, "embeddings": "PPMI + truncated SVD"},
                              "pairs": {}}

    def log(epoch, c, d, p):
        say(f"  epoch {epoch}: criterion {c:.4f}, D loss {d:.3f}" + (f", csls@1 {p['csls@1']:.3f}" if p else ""))

    src, tgt = T.ppmi_svd(en, **emb), T.ppmi_svd(de, **emb)
    tgt.vectors = tgt.vectors @ rot.T
    words = T.parse_dictd(folder / "freedict-eng-deu.index", folder / "freedict-eng-deu.dict.dz", set(src.words))
    train, test = T.test_dictionary(words, src, tgt, test_fraction, seed)
    say(f"en -> de: {len(src)} / {len(tgt)} words, dictionary {len(train)} train / {len(test)} test source words")
    res["pairs"]["en-de"] = evaluate_rows(src, tgt, train, test, seed, adv, refine_iters, log)
    res["pairs"]["en-de"]["corpus_words"] = [sum(map(len, en)), sum(map(len, de))]
    if halves:
        a, b = en[0::2], en[1::2]
        src, tgt = T.ppmi_svd(a, **emb), T.ppmi_svd(b, **emb)
        tgt.vectors = tgt.vectors @ rot.T
        same = {w: {w} for w in src.words}
        train, test = T.test_dictionary(same, src, tgt, test_fraction, seed)
        say(f"en halves: {len(src)} / {len(tgt)} words, {len(train)} train / {len(test)} test words")
        res["pairs"]["en-en halves"] = evaluate_rows(src, tgt, train, test, seed, adv, refine_iters, log)
        res["pairs"]["en-en halves"]["corpus_words"] = [sum(map(len, a)), sum(map(len, b))]
    res["seconds"] = time.perf_counter() - t0
    if out is not None:
        path = write_json(out, NAME, res)
        save_figure(res, path / f"{NAME}.png")
    return res


def table(res: Dict[str, object]) -> str:
    lines = []
    for name, r in res["pairs"].items():
        lines.append(f"{name}: vocabularies {r['vocab_source']} / {r['vocab_target']}, test {r['test_words']} source "
                     f"words ({r['test_pairs']} pairs), train {r['train_words']}")
        lines.append(f"  {'':26s} {'NN P@1':>7s} {'NN P@5':>7s} {'CSLS P@1':>8s} {'CSLS P@5':>8s}")
        for row in ROWS:
            s = r["rows"][row]
            lines.append(f"  {row:26s} {100 * s['nn@1']:7.1f} {100 * s['nn@5']:7.1f} {100 * s['csls@1']:8.1f} "
                         f"{100 * s['csls@5']:8.1f}")
    return "\n".join(lines)


def save_figure(res: Dict[str, object], path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, r in res["pairs"].items():
        for init, ep in r["epochs"].items():
            x = list(range(1, len(ep["criterion"]) + 1))
            style = "-" if init == "identity" else "--"
            axes[0].plot(x, [100 * p["csls@1"] for p in ep["precision"]], style, marker="o", label=f"{name}, {init}")
            axes[1].plot(x, ep["criterion"], style, marker="o", label=f"{name}, {init}",
                         color=axes[0].lines[-1].get_color())
        axes[0].axhline(100 * r["rows"]["supervised Procrustes"]["csls@1"], ls=":", lw=0.8,
                        color=axes[0].lines[-1].get_color())
    axes[0].set_xlabel("adversarial epoch")
    axes[0].set_ylabel("CSLS precision@1 (%); dotted: supervised")
    axes[1].set_xlabel("adversarial epoch")
    axes[1].set_ylabel("mean CSLS cosine (criterion)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return write_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m gankit.experiments.{NAME}",
                                description="Unsupervised word translation English -> German by adversarial "
                                "alignment of word embeddings, refinement and CSLS, against supervised Procrustes.")
    p.add_argument("--out", help=f"folder for {NAME}.json and .png")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vocab", type=int, default=2000, help="words per language (most frequent)")
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--window", type=int, default=1, help="co-occurrence window (words each side)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--steps", type=int, default=500, help="adversarial steps per epoch")
    p.add_argument("--most-frequent", type=int, default=1000, help="words the discriminator sees")
    p.add_argument("--refine", type=int, default=5, help="Procrustes refinement iterations")
    p.add_argument("--no-halves", action="store_true", help="skip the two-halves-of-English sanity check")
    a = p.parse_args(argv)
    for k in ("vocab", "dim", "window", "epochs", "steps", "most_frequent"):
        if getattr(a, k) < 1:
            p.error(f"--{k.replace('_', '-')} must be positive")
    torch.set_num_threads(1)
    res = run(out=a.out, seed=a.seed, vocab=a.vocab, dim=a.dim, window=a.window, epochs=a.epochs, steps=a.steps,
              most_frequent=a.most_frequent, refine_iters=a.refine, halves=not a.no_halves)
    print(table(res))
    if a.out:
        print(f"wrote {Path(a.out) / (NAME + '.json')} and .png ({res['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
