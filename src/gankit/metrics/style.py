"""How well a text style transfer run rewrites sentences: style, content kept, fluency.

Unsupervised style transfer has no reference rewrites to compare with, so a rewrite is
judged on three counts, each beside the same count for two baselines (the lecture's and the
literature's usual protocol, e.g. Shen et al. 2017, Li et al. 2018):

* **style accuracy**: the share of rewrites that a sentence classifier puts in the target
  style. The classifier is a bag-of-words logistic regression (each vocabulary word present
  or not, a bias; L2 penalty ``l2``; fit to its optimum by L-BFGS in float64, so it is a
  function of its data alone) trained on the held-out sentences of both styles, which the
  transfer model never saw; its accuracy on the training split's sentences is reported as a
  check of the judge (``style_classifier_check``). On ``sentiment`` data the labels' own
  definition judges too: ``style_vader``, the share of rewrites whose VADER compound score is
  on the target side of the data's threshold.
* **content kept**: BLEU-4 of each rewrite against its own source sentence
  (:func:`~gankit.metrics.sequences.sentence_bleu`, smoothing 1), averaged.
* **fluency**: the perplexity of the rewrites under a word-level LSTM language model trained
  on the training split's sentences (:mod:`gankit.metrics.fluency`).

Baselines: ``_copy``, the source sentence itself (full content, no transfer); ``_real``, a
real sentence of the target style drawn at random (the target style, no content kept): one
of the training split for the classifier and BLEU (a sentence the classifier never saw), one
of the held-out split for the perplexity (a sentence the language model never saw).

The rewrites are the run's outputs for the held-out sentences (evaluation gives a run with
``input``/``source`` conditions the held-out split's sentences with their styles, each
rewritten into the other style); each held-out sentence counts once. Also reported:
``transfer_unchanged`` (the share of rewrites identical to their source) and
``reconstruction_nll`` (the per-token cross-entropy of the held-out sentences rebuilt from
their content codes in their own style, teacher forced).
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch

from ..errors import ConfigError
from ..registries import METRICS
from .sequences import sentence_bleu, token_lists

__all__ = ["bag_of_words", "fit_logistic", "predict_logistic", "content_bleu", "style_transfer_scores"]


def bag_of_words(x: torch.Tensor, vocab: int) -> torch.Tensor:
    """(N, V) float64: 1 where a word occurs in a sentence (its tokens before its end), else 0;
    the padding token 0 never counts."""
    x = torch.as_tensor(x).long()
    alive = (torch.cumsum((x == 0).long(), 1) == 0)
    out = torch.zeros(len(x), vocab, dtype=torch.float64)
    rows = torch.arange(len(x)).unsqueeze(1).expand_as(x)
    out[rows[alive], x[alive]] = 1.0
    return out


def fit_logistic(features: torch.Tensor, labels: torch.Tensor, l2: float = 1.0, iters: int = 500
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weights (D,) and bias () of the logistic regression minimising
    sum_i BCE(w . f_i + b, y_i) + l2 / 2 |w|^2 (the bias unpenalised), by L-BFGS in float64."""
    f = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.float64)
    if f.dim() != 2 or len(f) != len(y) or len(f) < 2:
        raise ConfigError(f"a classifier needs at least 2 labelled samples, got features {tuple(f.shape)} and "
                          f"{len(y)} labels")
    if not l2 > 0:
        raise ConfigError(f"the classifier's l2 penalty must be positive, got {l2}")
    w = torch.zeros(f.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=iters, tolerance_grad=1e-10, tolerance_change=1e-14,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = f @ w[:-1] + w[-1]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum") \
            + 0.5 * l2 * w[:-1].pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    w = w.detach()
    return w[:-1].clone(), w[-1].clone()


def predict_logistic(weights: torch.Tensor, bias: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """The class (0 or 1) of each row of ``features``: 1 where w . f + b > 0."""
    return (torch.as_tensor(features, dtype=torch.float64) @ weights + bias > 0).long()


def content_bleu(outputs, sources, max_n: int = 4) -> float:
    """The mean BLEU-``max_n`` of each output sentence against its own source sentence."""
    hyps, refs = token_lists(outputs), token_lists(sources)
    if len(hyps) != len(refs) or not hyps:
        raise ConfigError(f"content BLEU pairs each output with its source: got {len(hyps)} outputs and "
                          f"{len(refs)} sources")
    return sum(sentence_bleu([r], h, max_n) for h, r in zip(hyps, refs)) / len(hyps)


def _draw_of_style(x: torch.Tensor, styles: torch.Tensor, wanted: torch.Tensor, generator: torch.Generator
                   ) -> torch.Tensor:
    """For each style of ``wanted``, a sentence of ``x`` of that style drawn at random."""
    out = torch.zeros(len(wanted), x.shape[1], dtype=torch.long)
    for k in wanted.unique().tolist():
        have = (styles == k).nonzero().flatten()
        if not len(have):
            raise ConfigError(f"no sentence of style {k} to draw a real sentence of the target style from")
        rows = (wanted == k).nonzero().flatten()
        out[rows] = x[have[torch.randint(len(have), (len(rows),), generator=generator)]]
    return out


def style_transfer_scores(outputs: torch.Tensor, sources: torch.Tensor, source_styles: torch.Tensor,
                          targets: torch.Tensor, train_x: torch.Tensor, train_styles: torch.Tensor,
                          vocabulary: Sequence[str], style_names: Sequence[str], l2: float = 1.0,
                          lm_steps: int = 1500, max_n: int = 4, seed: int = 0, vader_threshold=None
                          ) -> Dict[str, float]:
    """The scores of the module for rewrites ``outputs`` (N, L) of held-out sentences ``sources``
    (each once) of styles ``source_styles`` into styles ``targets``, with the training split's
    sentences ``train_x`` and styles ``train_styles``. ``vader_threshold``: also judge by VADER."""
    from .fluency import language_model, perplexity

    v = len(vocabulary)
    outputs, sources = torch.as_tensor(outputs).long(), torch.as_tensor(sources).long()
    source_styles, targets = torch.as_tensor(source_styles).long(), torch.as_tensor(targets).long()
    train_x, train_styles = torch.as_tensor(train_x).long(), torch.as_tensor(train_styles).long()
    g = torch.Generator().manual_seed(seed)
    real_train = _draw_of_style(train_x, train_styles, targets, g)
    real_heldout = _draw_of_style(sources, source_styles, targets, g)

    w, b = fit_logistic(bag_of_words(sources, v), source_styles, l2)

    def accuracy(x: torch.Tensor, wanted: torch.Tensor) -> float:
        return float((predict_logistic(w, b, bag_of_words(x, v)) == wanted).double().mean())

    lm = language_model(train_x, v, steps=lm_steps, seed=seed)
    out = {
        "style_accuracy": accuracy(outputs, targets),
        "style_accuracy_copy": accuracy(sources, targets),
        "style_accuracy_real": accuracy(real_train, targets),
        "style_classifier_check": accuracy(train_x, train_styles),
        "content_bleu": content_bleu(outputs, sources, max_n),
        "content_bleu_copy": content_bleu(sources, sources, max_n),
        "content_bleu_real": content_bleu(real_train, sources, max_n),
        "perplexity": perplexity(lm, outputs),
        "perplexity_copy": perplexity(lm, sources),
        "perplexity_real": perplexity(lm, real_heldout),
        "transfer_unchanged": sum(a == c for a, c in zip(token_lists(outputs), token_lists(sources))) / len(outputs),
    }
    for k, name in enumerate(style_names):
        rows = targets == k
        if bool(rows.any()):
            out[f"style_accuracy_to_{name}"] = accuracy(outputs[rows], targets[rows])
    if vader_threshold is not None:
        from ..data.sentiment import compound, label_of
        from ..data.sequences import decode_all

        def vader_share(x: torch.Tensor) -> float:
            labels = [label_of(compound(t), vader_threshold) for t in decode_all(x, vocabulary)]
            return sum(int(lab == int(k)) for lab, k in zip(labels, targets.tolist())) / len(labels)

        out.update(style_vader=vader_share(outputs), style_vader_copy=vader_share(sources),
                   style_vader_real=vader_share(real_train))
    return out


@METRICS.register("style_transfer")
def _style_transfer(s, /, l2: float = 1.0, lm_steps: int = 1500, max_n: int = 4, seed: int = 0) -> Dict[str, float]:
    """Text style transfer runs: held-out sentences rewritten into the other style, judged by
    style accuracy (a bag-of-words logistic regression trained on the held-out sentences; on
    sentiment data VADER too), content kept (BLEU-max_n against the source) and perplexity under
    an LSTM language model of the training split, each beside copying the input and a random
    real sentence of the target style."""
    from ..methods.text_style import TextStyle

    method = getattr(s, "method", None)
    if not isinstance(method, TextStyle):
        raise ConfigError("style_transfer scores a text style transfer run (method text_style); evaluate such a run")
    if lm_steps < 1 or max_n < 1:
        raise ConfigError(f"style_transfer: lm_steps and max_n must be positive, got {lm_steps} and {max_n}")
    outputs, inputs = s.fake.long(), s.output("input").long()
    source, target = s.output("source").long(), s.output("domain").long()
    heldout = s.heldout
    m = min(len(heldout), len(outputs))
    if torch.equal(inputs[:m], heldout[:m].long()):    # the held-out sentences in order: each once
        outputs, inputs, source, target = outputs[:m], inputs[:m], source[:m], target[:m]
    section, train = s.train_data
    if "domain" not in train.extra:
        raise ConfigError("style_transfer needs the styles of the training sentences (a label field 'domain')")
    threshold = float(section.get("threshold", 0.3)) if section.get("name") == "sentiment" else None
    out = style_transfer_scores(outputs, inputs, source, target, train.x, train.extra["domain"],
                                method.vocabulary, method.styles, l2, lm_steps, max_n, seed, threshold)
    out["reconstruction_nll"] = method.reconstruction_loss(inputs, source)
    return out
