"""Reinforcement learning for sequences with a pluggable reward (REINFORCE with a baseline).

"Improving Sequence Generation by GAN" begins with human feedback: a person reads what the
generator wrote and gives it a score R(x), and the generator follows the policy gradient of
the expected reward, E_x~P_theta[R(x)], estimated on its own samples:
grad ~ (1/N) sum_i (R(x_i) - b) grad log P_theta(x_i). Subtracting a baseline b (a moving
average of the rewards, kept in the checkpoint) makes the rewards positive and negative, as
the lecture asks, without changing the gradient's expectation. SeqGAN then puts a trained
discriminator where the person was; here the reward is any of a small table (``reward``):

* ``tokens``: the share of a sequence's tokens (before its end) that are among ``tokens``
  (words separated by spaces on word-level data, characters on character-level data).
* ``length``: closeness to ``target_length``: 1 - |length - target| / L (0: target L).
* ``classifier``: a sequence classifier's probability that the sequence is real: the
  discriminator of a finished ``seqgan`` or ``gumbel`` run (``classifier=RUN``, the same
  vocabulary and length), read without dropout and never trained here.
* ``ratings``: the lecture's first example, human ratings, as a plain-text file
  (``ratings=FILE``, one ``rating<TAB>text`` a line, ``#`` lines and blank lines skipped).
  A reward model is fit to them once, at the start: ridge regression (``ridge``, the
  penalty; intercept unpenalised) on counts of the token n-grams (n = 1 .. ``ngrams``) that
  occur in the file, in closed form; its prediction for a generated sequence is the reward.

Every token of a sequence gets the sequence's reward. The generator starts from an ``mle``
run (``init``); ``mle_weight`` keeps the maximum-likelihood term on the real batch beside
the policy gradient, and ``kl_weight`` anchors the policy to the generator it started from:
the exact KL divergence KL(P_theta(. | x_<t) || P_start(. | x_<t)) over the vocabulary at
each position of the drawn sequences, averaged over their tokens.

What it logs: ``reward`` (the batch's mean reward), ``baseline``, ``pg_loss`` and, when
weighted, ``nll`` and ``kl``.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Callable, Dict, List, Literal, Optional, Sequence, Tuple

import torch

from ..config import Config
from ..data.sequences import encode, is_char_level, lengths
from ..errors import ConfigError
from ..nets.sequence import alive_mask
from ..registries import METHODS
from ..train.runtime import Runtime
from ._sequences import SEQUENCE_METRICS, Reinforce
from .base import Batch, Contract, DataInfo

__all__ = ["PolicyGradient", "REWARDS", "RatingsModel", "read_ratings", "ngram_counts", "token_share",
           "length_closeness"]

Reward = Callable[[torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------- scorers

def token_share(x: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """The share (N,) of each row's tokens before its end that are in ``wanted`` (token numbers);
    0 for an empty sequence."""
    alive = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths(x).to(x.device).unsqueeze(1)
    hit = torch.isin(x, wanted.to(x.device)) & alive
    return hit.sum(1).float() / alive.sum(1).clamp_min(1).float()


def length_closeness(x: torch.Tensor, target: int) -> torch.Tensor:
    """1 - |length - target| / L for each row (N,) of ``x`` (N, L)."""
    n = lengths(x).to(x.device).float()
    return 1.0 - (n - target).abs() / x.shape[1]


# ----------------------------------------------------------------------------- the ratings' reward model

def read_ratings(path, vocabulary: Sequence[str], length: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(ratings (M,) float64, token numbers (M, length)) from a file of ``rating<TAB>text``
    lines; a line that is not one raises a ConfigError naming it."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"method.ratings: no file {p}; give a text file of rated samples, one "
                          "'rating<TAB>text' a line")
    ratings, rows = [], []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\t" not in line:
            raise ConfigError(f"{p} line {i}: no tab; each line must be 'rating<TAB>text', got {line[:60]!r}")
        head, text_ = line.split("\t", 1)
        try:
            r = float(head)
        except ValueError:
            raise ConfigError(f"{p} line {i}: the rating {head[:30]!r} is not a number; each line must be "
                              "'rating<TAB>text'") from None
        if not math.isfinite(r):
            raise ConfigError(f"{p} line {i}: the rating {head!r} is not finite")
        tokens = encode(text_, vocabulary, length)
        if not tokens or tokens[0] == 0:
            raise ConfigError(f"{p} line {i}: the text after the tab is empty")
        ratings.append(r)
        rows.append(tokens)
    if len(ratings) < 2:
        raise ConfigError(f"{p}: {len(ratings)} rated line(s); a reward model needs at least 2")
    if max(ratings) == min(ratings):
        raise ConfigError(f"{p}: every rating is {ratings[0]}; ratings that never differ reward nothing")
    return torch.tensor(ratings, dtype=torch.float64), torch.tensor(rows, dtype=torch.long)


def _ngram_keys(x: torch.Tensor, n: int, base: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(a number for each window of n tokens (N, L - n + 1), whether the window lies before the
    sequence's end)."""
    L = x.shape[1]
    if n > L:
        return x.new_zeros(len(x), 0), torch.zeros(len(x), 0, dtype=torch.bool, device=x.device)
    keys = torch.zeros(len(x), L - n + 1, dtype=torch.long, device=x.device)
    for j in range(n):
        keys = keys * base + x[:, j:L - n + 1 + j]
    starts = torch.arange(L - n + 1, device=x.device).unsqueeze(0)
    return keys, starts + n <= lengths(x).to(x.device).unsqueeze(1)


def ngram_counts(x: torch.Tensor, tables: List[torch.Tensor], base: int) -> torch.Tensor:
    """Counts (N, F) float64 in each row of ``x`` of the n-grams listed (sorted numbers, one
    table per n = 1, 2, ...) in ``tables``; n-grams in no table are not counted."""
    out = []
    for n, table in enumerate(tables, 1):
        keys, valid = _ngram_keys(x, n, base)
        counts = torch.zeros(len(x), len(table), dtype=torch.float64, device=x.device)
        if len(table) and keys.numel():
            table = table.to(x.device)
            idx = torch.searchsorted(table, keys).clamp_max(len(table) - 1)
            found = valid & (table[idx] == keys)
            counts.scatter_add_(1, torch.where(found, idx, 0), found.double())
        out.append(counts)
    return torch.cat(out, 1)


class RatingsModel:
    """Ridge regression of ratings on n-gram counts, fit in closed form (float64)."""

    def __init__(self, ratings: torch.Tensor, x: torch.Tensor, vocab: int, ngrams: int, ridge: float):
        self.base = vocab + 1
        self.tables = []
        for n in range(1, ngrams + 1):
            keys, valid = _ngram_keys(x, n, self.base)
            self.tables.append(torch.unique(keys[valid]))
        X = ngram_counts(x, self.tables, self.base)
        self.mean_x, self.mean_y = X.mean(0), ratings.mean()
        Xc, yc = X - self.mean_x, ratings - self.mean_y
        m, f = Xc.shape
        if f <= m:     # primal: (X'X + lambda I) w = X'y
            self.w = torch.linalg.solve(Xc.T @ Xc + ridge * torch.eye(f, dtype=torch.float64), Xc.T @ yc)
        else:          # dual: w = X' (XX' + lambda I)^-1 y, the same solution with an m x m system
            self.w = Xc.T @ torch.linalg.solve(Xc @ Xc.T + ridge * torch.eye(m, dtype=torch.float64), yc)
        self.fitted = self.predict(x)
        self.train_r2 = float(1 - ((self.fitted.double().cpu() - ratings) ** 2).sum() / (yc ** 2).sum())

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        X = ngram_counts(x, self.tables, self.base)
        w, mx = self.w.to(X.device), self.mean_x.to(X.device)
        return ((X - mx) @ w + float(self.mean_y)).float()


# ----------------------------------------------------------------------------- the reward table

def _tokens_reward(method: "PolicyGradient", tokens: str = "") -> Reward:
    vocab = method.vocabulary
    items = [c for c in tokens if not c.isspace()] if is_char_level(vocab) else tokens.split()
    if not items:
        raise ConfigError("method.reward=tokens rewards the share of tokens in method.tokens: give them "
                          "(words separated by spaces, or characters for character-level data)")
    unknown = [t for t in items if t not in vocab]
    if unknown:
        raise ConfigError(f"method.tokens: {unknown[:5]} not in this data's vocabulary")
    wanted = torch.tensor(sorted({vocab.index(t) for t in items}), dtype=torch.long)
    return lambda x: token_share(x, wanted)


def _length_reward(method: "PolicyGradient", target_length: int = 0) -> Reward:
    L = int(method.info.shape[0])
    target = target_length or L
    if not 1 <= target <= L:
        raise ConfigError(f"method.target_length must be between 1 and the sequence length {L} "
                          f"(0: {L}), got {target_length}")
    return lambda x: length_closeness(x, target)


def _classifier_reward(method: "PolicyGradient", classifier: Optional[str] = None) -> Reward:
    from ..api import load_run

    if not classifier:
        raise ConfigError("method.reward=classifier needs method.classifier=RUN, a finished seqgan or gumbel "
                          "run on the same data whose discriminator scores the sequences")
    try:
        run = load_run(classifier)
    except Exception as exc:   # noqa: BLE001 - any failure to open it is the user's path
        raise ConfigError(f"method.classifier: cannot open the run {classifier} ({exc})") from None
    D = run.method.modules.get("discriminator")
    if D is None or not hasattr(D, "vocab"):
        raise ConfigError(f"method.classifier: the run {classifier} ({run.config.method['name']}) has no "
                          "discriminator of token sequences; give a seqgan or gumbel run")
    if run.info.fields["x"].classes != method.vocabulary or run.info.shape != method.info.shape:
        raise ConfigError(f"method.classifier: the run {classifier} was trained on another vocabulary or "
                          "sequence length; use a run on the same data (the same data.* settings)")
    D = copy.deepcopy(D).to(method.rt.device).eval().requires_grad_(False)

    def reward(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.sigmoid(D(x).float())
    return reward


def _ratings_reward(method: "PolicyGradient", ratings: Optional[str] = None, ngrams: int = 2,
                    ridge: float = 1.0) -> Reward:
    if not ratings:
        raise ConfigError("method.reward=ratings needs method.ratings=FILE, rated samples one "
                          "'rating<TAB>text' a line")
    if ngrams < 1 or ridge <= 0:
        raise ConfigError(f"method.ngrams must be at least 1 and method.ridge positive, got {ngrams} and {ridge}")
    r, x = read_ratings(ratings, method.vocabulary, int(method.info.shape[0]))
    method.ratings_model = RatingsModel(r, x, len(method.vocabulary), ngrams, ridge)
    return method.ratings_model.predict


#: reward name -> its factory (the method, then its own settings as keyword arguments: config keys of the method)
REWARDS: Dict[str, Callable[..., Reward]] = {
    "tokens": _tokens_reward,
    "length": _length_reward,
    "classifier": _classifier_reward,
    "ratings": _ratings_reward,
}


def _settings(factory) -> Tuple[str, ...]:
    import inspect

    return tuple(list(inspect.signature(factory).parameters)[1:])


# ----------------------------------------------------------------------------- the method

class PolicyGradient(Reinforce):
    contract = Contract(roles={"generator": "generator"}, auto={"generator": "lstm"}, metrics=SEQUENCE_METRICS,
                        optim={"lr_g": 1e-3}, data_kinds=("tokens",))

    def __init__(self, runtime: Runtime, info: DataInfo, cfg: Config, reward: str, settings: Dict[str, object],
                 defaults: Dict[str, object], baseline: float, init: Optional[str], mle_weight: float,
                 kl_weight: float):
        super().__init__(runtime, info, cfg)
        if kl_weight < 0:
            raise ConfigError(f"method.kl_weight must not be negative, got {kl_weight}")
        own = _settings(REWARDS[reward])
        stray = [k for k, v in settings.items() if k not in own and v != defaults[k]]
        if stray:
            users = {k: [n for n, f in REWARDS.items() if k in _settings(f)] for k in stray}
            raise ConfigError("; ".join(f"method.{k} is a setting of reward={'/'.join(users[k])}, not of "
                                        f"reward={reward}" for k in stray))
        G = self.build_sequence_generator()
        if init:
            self.load_pretrained(G, init)
        self.kl_weight = kl_weight
        self.reference = (copy.deepcopy(G).to(runtime.device).requires_grad_(False).eval()
                          if kl_weight > 0 else None)
        self.add_module("generator", G)
        self.opt_g = self.add_optimizer("generator", self.generator.parameters())
        self.enable_ema()
        self.setup_policy(baseline, mle_weight)
        self.reward_name = reward
        self.reward = REWARDS[reward](self, **{k: settings[k] for k in own})

    def anchor(self, x: torch.Tensor, real: Optional[torch.Tensor]):
        term, logs = super().anchor(x, real)
        if self.reference is not None:
            logp = torch.log_softmax(self.generator.logits(x).float(), -1)
            with torch.no_grad():
                ref = torch.log_softmax(self.reference.logits(x).float(), -1)
            mask = alive_mask(x).float()
            kl = ((logp.exp() * (logp - ref)).sum(-1) * mask).sum() / mask.sum().clamp_min(1)
            term = self.kl_weight * kl if term is None else term + self.kl_weight * kl
            logs["kl"] = kl.detach()
        return term, logs

    def train_step(self, batches: List[Batch], step: int) -> Dict[str, torch.Tensor]:
        real = batches[0]["x"]
        x = self.draw(len(real))
        r = self.reward(x).float()
        q = r.unsqueeze(1).expand(-1, x.shape[1])
        logs = self.reinforce_step(x, q, real, mean_reward=r.mean())
        self.update_ema()
        self.step_schedulers()
        return logs


@METHODS.register("pg")
def pg(runtime, info, cfg, /, reward: Literal["tokens", "length", "classifier", "ratings"] = "length",
       tokens: str = "", target_length: int = 0, classifier: Optional[str] = None, ratings: Optional[str] = None,
       ngrams: int = 2, ridge: float = 1.0, baseline: float = 0.9, init: Optional[str] = None,
       mle_weight: float = 0.0, kl_weight: float = 0.0) -> PolicyGradient:
    """Policy gradient (REINFORCE with a moving-average baseline) on a pluggable reward: tokens
    (the share of method.tokens), length (closeness to target_length), classifier (a seqgan/gumbel
    run's D), ratings (ridge regression on n-grams of a 'rating<TAB>text' file); init from an mle
    run; mle_weight and kl_weight anchor it to the data and to its start."""
    settings = {"tokens": tokens, "target_length": target_length, "classifier": classifier, "ratings": ratings,
                "ngrams": ngrams, "ridge": ridge}
    defaults = {"tokens": "", "target_length": 0, "classifier": None, "ratings": None, "ngrams": 2, "ridge": 1.0}
    return PolicyGradient(runtime, info, cfg, reward, settings, defaults, baseline, init, mle_weight, kl_weight)


pg.contract = PolicyGradient.contract
