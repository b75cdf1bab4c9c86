"""Photo editing with a trained generator (the lectures' "Intelligent Photo Editing").

A generator G maps noise z to pictures; editing a given picture x means finding a z with
G(z) ~ x, moving z along a direction that changes one attribute, and decoding again:

1. **An encoder trained to invert G** (:class:`Inverter`): a small convolutional network E
   learns z -> G(z) -> E -> z on G's own samples (squared error in latent space), so it
   needs no data and no labels, and gives a starting z for any picture in one pass.
2. **Refinement by optimisation** (:meth:`Editor.invert`): starting from E(x), z is moved by
   Adam to make G(z) close to x in pixels (mean squared error) and in the features of the
   shipped Fashion-MNIST classifier (:mod:`gankit.metrics.classifier`; the pictures converted
   to 28x28 grey), with a small pull towards the prior (|z|^2 / z_dim) that keeps z where G
   was trained.
3. **Attribute directions** (:meth:`Editor.fit_directions`): many samples z_i, G(z_i) are
   scored by a scorer s (a function of pictures), and s(G(z)) ~ a + w . z is fitted by least
   squares; the direction is w / |w| (unit length, in units of the prior's standard deviation),
   |w| the predicted change of the score for a step of 1 along it and sd the standard
   deviation of the score over G's samples. Scorers
   (:data:`SCORERS` and one per class of the classifier): ``brightness`` (mean intensity in
   [0, 1]), ``ink`` (object size: the share of pixels brighter than mid-grey), ``contrast``
   (the standard deviation of the intensities), and every class logit of the classifier by
   the class name (``trouser``, ``bag``, ``ankle_boot`` ...). Any function of pictures can be
   given to the API (:meth:`Editor.add_scorer`).
4. **The edit**: z' = z + A (sd / |w|) d for the amount A, a step that the fit predicts to
   change the score by A standard deviations (A = 2: as far as from an average sample to one
   of the brightest few percent); the output is G(z'). :meth:`Editor.edit`
   reports what moved: the attribute's score of the input, the inverted picture and the
   edited one, and distances in the classifier's features (identity kept: the edited picture
   stays near the inverted one, compared with how far random samples of G lie from it).

A conditional generator (method ``cgan``) keeps its class: a picture's class is the one given
(``label``) or the one the classifier puts it in when the run's classes are the classifier's,
else the most frequent class; the encoder and the directions learn on samples of every class.

The encoder and the directions depend only on the run's generator, so they are computed once
per checkpoint and kept in the run folder, ``RUN/edit/editor.pt`` (written atomically, like a
checkpoint, and read with ``weights_only=True``); a second edit of the same run loads them.
``gankit edit RUN --input IMG --attr NAME --amount A --out DIR`` is the command line.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

__all__ = ["Editor", "Inverter", "SCORERS", "edit_run", "attribute_names", "EDITOR_FILE"]

Tensor = torch.Tensor

#: where the inverter and the directions are kept, relative to the run folder
EDITOR_FILE = Path("edit") / "editor.pt"
#: bump when what the file holds changes: an older file is then recomputed
FORMAT = 2


def _grey(x: Tensor) -> Tensor:
    """Pictures in [0, 1] (N, C, H, W) -> grey (N, 1, H, W)."""
    return x.mean(1, keepdim=True) if x.shape[1] != 1 else x


def brightness(x: Tensor) -> Tensor:
    """Mean intensity of each picture (N,), pictures in [0, 1]."""
    return x.flatten(1).mean(1)


def ink(x: Tensor) -> Tensor:
    """Object size: the share of pixels brighter than mid-grey (N,) (Fashion-MNIST's garments are
    bright on black)."""
    return (_grey(x) > 0.5).float().flatten(1).mean(1)


def contrast(x: Tensor) -> Tensor:
    """Standard deviation of each picture's intensities (N,)."""
    return _grey(x).flatten(1).std(1)


#: scorers that need no classifier: name -> (function of pictures in [0, 1], what it measures)
SCORERS: Dict[str, Tuple[Callable[[Tensor], Tensor], str]] = {
    "brightness": (brightness, "mean intensity"),
    "ink": (ink, "object size: share of pixels brighter than mid-grey"),
    "contrast": (contrast, "standard deviation of the intensities"),
}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def classifier_classes() -> List[str]:
    """The class names of the shipped Fashion-MNIST classifier, in the order of its logits."""
    from .data.images import _IDX_SETS

    return list(_IDX_SETS["fashion_mnist"].classes)


def attribute_names() -> List[str]:
    """Every attribute an edit can move: the plain scorers, then the classifier's classes."""
    return list(SCORERS) + [_slug(c) for c in classifier_classes()]


class Inverter(nn.Module):
    """Pictures (N, C, H, W) in [-1, 1] -> latent codes (N, z_dim): a 3x3 convolution and three
    strided ones with leaky ReLUs, the map averaged down to 4x4 (where things are matters: the
    code sets the layout) and a linear read-out."""

    def __init__(self, channels: int, z_dim: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width * 2, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width * 2, width * 4, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width * 4, width * 4, 3, 2, 1), nn.LeakyReLU(0.2),
        )
        self.read = nn.Linear(width * 4 * 16, z_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.read(F.adaptive_avg_pool2d(self.body(x), 4).flatten(1))


def check_editable(run) -> None:
    """Refuse a run whose method has no noise-to-image generator, with what to use instead."""
    method, info = run.method, run.info
    name = run.config.method["name"]
    contract = method.contract
    if info.kind != "image":
        raise ConfigError(f"gankit edit edits pictures, but run {run.path} (method {name}) models {info.kind} samples; "
                          "train a gan or cgan on pictures, e.g. `gankit train --data fashion_mnist`")
    gen = method.modules.get("generator")
    if getattr(gen, "autoregressive", False):
        raise ConfigError(f"run {run.path} is a {name} run: it draws pictures pixel by pixel and has no latent space "
                          "to invert a picture into; edit a run trained with gan or cgan")
    if contract.inputs or contract.sources or not getattr(gen, "z_dim", 0):
        raise ConfigError(f"run {run.path} (method {name}) translates pictures rather than drawing them from noise, so "
                          "it has no noise-to-image generator to invert; edit a run trained with gan or cgan")
    bad = [c for c in contract.conditions if info.fields.get(c) is None or info.fields[c].kind != "label"]
    if bad:
        raise ConfigError(f"run {run.path} (method {name}) takes the conditions {', '.join(bad)}, which an edit cannot "
                          "hold fixed; edit a run trained with gan or cgan")


class Editor:
    """The editing machinery of one run: the generator as a differentiable function of z, the
    inverter, the directions and the classifier (see the module). The run's networks are put
    in eval mode and frozen (requires_grad False): only codes and the inverter learn here."""

    def __init__(self, run, encoder_steps: int = 600, n_directions: int = 4000, seed: int = 0):
        check_editable(run)
        self.run, self.method = run, run.method
        self.device = run.runtime.device
        self.shape = tuple(run.info.shape)
        self.z_dim = int(self.method.generator.z_dim)
        self.encoder_steps, self.n_directions, self.seed = int(encoder_steps), int(n_directions), int(seed)
        self.label_field = next((c for c in self.method.contract.conditions), None)
        self.inverter = Inverter(self.shape[0], self.z_dim).to(self.device)
        self.directions: Dict[str, Tensor] = {}      #: attribute -> unit direction (z_dim,)
        self.slopes: Dict[str, float] = {}           #: attribute -> fitted score change per unit step
        self.fits: Dict[str, float] = {}             #: attribute -> R^2 of the linear fit
        self.stds: Dict[str, float] = {}             #: attribute -> standard deviation of the score on G's samples
        self.scorers: Dict[str, Callable[[Tensor], Tensor]] = {k: f for k, (f, _) in SCORERS.items()}
        self.class_index = {_slug(c): i for i, c in enumerate(classifier_classes())}   #: attribute -> logit
        for name, i in self.class_index.items():
            self.scorers[name] = (lambda k: (lambda x: self.class_logits(x)[:, k]))(i)
        self._classifier = None
        self.cached = False                          #: whether prepare() found the run's editor file
        for net in list(self.method.modules.values()) + list(self.method.emas.values()):
            net.eval()
            net.requires_grad_(False)

    # ------------------------------------------------------------------ the parts
    @property
    def classifier(self) -> nn.Module:
        """The shipped Fashion-MNIST classifier (frozen, eval mode)."""
        if self._classifier is None:
            from .metrics.features import get_extractor

            self._classifier = get_extractor("fashion_mnist").net.to(self.device).eval()
        return self._classifier

    def _to_classifier(self, x: Tensor) -> Tensor:
        from .metrics.classifier import IMAGE_SIZE

        x = _grey(x)
        if x.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
            x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False, antialias=True)
        return x

    def features(self, x: Tensor) -> Tensor:
        """The classifier's penultimate features (N, 128) of pictures in [0, 1]; differentiable."""
        return self.classifier.features(self._to_classifier(x))

    def class_logits(self, x: Tensor) -> Tensor:
        """The classifier's class logits (N, 10) of pictures in [0, 1]; differentiable."""
        return self.classifier(self._to_classifier(x))

    def generate(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """G(z) in [0, 1], differentiable in z (the moving average where the run keeps one)."""
        given = {} if self.label_field is None else {self.label_field: labels.to(self.device)}
        x = self.method.generate(z.to(self.device), given)["x"].float()
        return x.add(1.0).div(2.0)

    def draw(self, n: int, generator: torch.Generator) -> Tuple[Tensor, Optional[Tensor]]:
        """``n`` prior codes and (conditional runs) labels drawn from the data's frequencies."""
        labels = None
        if self.label_field is not None:
            labels = self.method.draw_conditions(n, generator)[self.label_field]
        z = torch.randn(n, self.z_dim, generator=generator).to(self.device)
        return z, labels

    def add_scorer(self, name: str, scorer: Callable[[Tensor], Tensor]) -> None:
        """A further attribute: ``scorer`` maps pictures (N, C, H, W) in [0, 1] to scores (N,);
        its direction is fitted by :meth:`fit_directions`."""
        self.scorers[name] = scorer
        self.class_index.pop(name, None)

    # ------------------------------------------------------------------ learning
    def train_inverter(self, steps: Optional[int] = None, batch_size: int = 64, lr: float = 1e-3) -> List[float]:
        """Train E on G's own samples, z -> G(z) -> E -> z (mean squared error in latent space);
        returns the loss of every step."""
        g = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.Adam(self.inverter.parameters(), lr=lr)
        losses = []
        self.inverter.train()
        for _ in range(self.encoder_steps if steps is None else steps):
            z, labels = self.draw(batch_size, g)
            with torch.no_grad():
                x = self.generate(z, labels)
            loss = F.mse_loss(self.inverter(x * 2 - 1), z)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        self.inverter.eval()
        return losses

    @torch.no_grad()
    def fit_directions(self, names: Optional[List[str]] = None, n: Optional[int] = None,
                       batch_size: int = 500) -> None:
        """For each attribute, the least-squares fit score(G(z)) ~ a + w . z over ``n`` prior
        samples (one draw shared by every attribute): its direction w / |w|, slope |w|, R^2 and
        the score's standard deviation."""
        names = list(self.scorers) if names is None else list(names)
        n = self.n_directions if n is None else n
        g = torch.Generator().manual_seed(self.seed + 1)
        zs, scores = [], {k: [] for k in names}
        for start in range(0, n, batch_size):
            z, labels = self.draw(min(batch_size, n - start), g)
            x = self.generate(z, labels)
            zs.append(z.double().cpu())
            logits = self.class_logits(x) if any(k in self.class_index for k in names) else None
            for k in names:   # the class logits from one pass of the classifier
                s = logits[:, self.class_index[k]] if k in self.class_index else self.scorers[k](x)
                scores[k].append(s.double().cpu())
        z = torch.cat(zs)
        design = torch.cat([torch.ones(len(z), 1, dtype=torch.float64), z], 1)
        for k in names:
            s = torch.cat(scores[k])
            coef = torch.linalg.lstsq(design, s.unsqueeze(1)).solution.squeeze(1)
            w = coef[1:]
            residual = s - design @ coef
            total = float(((s - s.mean()) ** 2).sum())
            norm = float(w.norm())
            self.directions[k] = (w / max(norm, 1e-12)).float()
            self.slopes[k] = norm
            self.fits[k] = 1.0 - float((residual ** 2).sum()) / total if total > 0 else 0.0
            self.stds[k] = float(s.std())

    def invert(self, x: Tensor, labels: Optional[Tensor] = None, steps: int = 200, lr: float = 0.05,
               feature_weight: float = 0.1, prior_weight: float = 1e-3) -> Tensor:
        """Codes z (N, z_dim) with G(z) ~ x (pictures in [0, 1]): E(x), then ``steps`` of Adam on
        pixel MSE + feature_weight * feature MSE + prior_weight * |z|^2 / z_dim."""
        x = x.to(self.device).float()
        with torch.no_grad():
            z0 = self.inverter(x * 2 - 1)
            target = self.features(x)
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            out = self.generate(z, labels)
            loss = (F.mse_loss(out, x, reduction="none").flatten(1).mean(1)
                    + feature_weight * F.mse_loss(self.features(out), target, reduction="none").mean(1)
                    + prior_weight * z.square().mean(1)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return z.detach()

    def labels_for(self, x: Tensor, label: Optional[int] = None) -> Optional[Tensor]:
        """The class each picture keeps (conditional runs): ``label`` when given, else the
        classifier's class where the run's classes are Fashion-MNIST's, else the most frequent."""
        if self.label_field is None:
            if label is not None:
                raise ConfigError("--label: this run's generator takes no class (method "
                                  f"{self.run.config.method['name']}); leave it out")
            return None
        f = self.run.info.fields[self.label_field]
        if label is not None:
            if not 0 <= label < f.n_classes:
                raise ConfigError(f"--label {label} is out of range: this run's data has {f.n_classes} classes "
                                  f"(0..{f.n_classes - 1})")
            return torch.full((len(x),), int(label), dtype=torch.long)
        if [_slug(c) for c in f.classes] == [_slug(c) for c in classifier_classes()]:
            with torch.no_grad():
                return self.class_logits(x.to(self.device).float()).argmax(1).cpu()
        return torch.full((len(x),), int(torch.tensor(f.frequencies).argmax()), dtype=torch.long)

    # ------------------------------------------------------------------ the edit
    def check_attribute(self, name: str) -> str:
        if name not in self.scorers:
            from .registry import closest

            raise ConfigError(f"unknown attribute '{name}'{closest(name, list(self.scorers))}; known attributes: "
                              f"{', '.join(self.scorers)}")
        return name

    @torch.no_grad()
    def edit(self, x: Tensor, attr: str, amount: float, label: Optional[int] = None, steps: int = 200,
             amounts: Optional[List[float]] = None, n_random: int = 200) -> Dict[str, object]:
        """Invert pictures ``x`` (N, C, H, W) in [0, 1], move each code along the attribute's
        direction by the step predicted to change the score by ``amount`` standard deviations
        (:meth:`step_for`) and decode. Returns the pictures (``input``, ``inverted``,
        ``edited``, and ``steps``: the decodings at ``amounts``, default 0 .. amount in five
        steps) and the numbers: per picture the attribute's score of the input, the inverted and
        the edited picture, the feature distances edited-inverted and inverted-input, and the
        mean feature distance of ``n_random`` random samples of G to the inverted picture."""
        self.check_attribute(attr)
        if attr not in self.directions:
            self.fit_directions([attr])
        x = x.to(self.device).float()
        labels = self.labels_for(x, label)
        with torch.enable_grad():
            z = self.invert(x, labels, steps=steps)
        d = self.directions[attr].to(self.device) * self.step_for(attr)
        inverted = self.generate(z, labels)
        edited = self.generate(z + amount * d, labels)
        amounts = [amount * k / 4 for k in range(5)] if amounts is None else list(amounts)
        walk = torch.stack([self.generate(z + a * d, labels) for a in amounts], 1)       # (N, K, C, H, W)
        score = self.scorers[attr]
        f_in, f_inv, f_ed = self.features(x), self.features(inverted), self.features(edited)
        g = torch.Generator().manual_seed(self.seed + 2)
        rz, rl = self.draw(n_random, g)
        f_rand = self.features(self.generate(rz, rl))
        random_distance = torch.cdist(f_inv.double(), f_rand.double()).mean(1)
        return {
            "input": x.cpu(), "inverted": inverted.cpu(), "edited": edited.cpu(), "walk": walk.cpu(),
            "amounts": amounts, "labels": None if labels is None else labels.tolist(),
            "attr": attr, "amount": float(amount), "slope": self.slopes[attr], "fit_r2": self.fits[attr],
            "score_sd": self.stds[attr], "latent_step": float(amount) * self.step_for(attr),
            "expected_change": float(amount) * self.stds[attr],
            "score_input": score(x).double().cpu().tolist(),
            "score_inverted": score(inverted).double().cpu().tolist(),
            "score_edited": score(edited).double().cpu().tolist(),
            "feature_distance_edited_inverted": (f_ed - f_inv).double().norm(dim=1).cpu().tolist(),
            "feature_distance_inverted_input": (f_inv - f_in).double().norm(dim=1).cpu().tolist(),
            "feature_distance_edited_input": (f_ed - f_in).double().norm(dim=1).cpu().tolist(),
            "feature_distance_random_inverted": random_distance.cpu().tolist(),
            "pixel_error_inverted": (inverted - x).abs().flatten(1).mean(1).double().cpu().tolist(),
        }

    def step_for(self, attr: str) -> float:
        """The distance in latent space (prior standard deviations) of an amount of 1: the step the
        fit predicts to change the score by one standard deviation, sd / |w|."""
        return self.stds[attr] / max(self.slopes[attr], 1e-12)

    # ------------------------------------------------------------------ the cache
    def _key(self) -> Dict[str, object]:
        return {"format": FORMAT, "step": int(self.run.step), "encoder_steps": self.encoder_steps,
                "n_directions": self.n_directions, "seed": self.seed, "z_dim": self.z_dim,
                "shape": list(self.shape)}

    def save(self, path: Path) -> None:
        from .train.checkpoint import atomic_save

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save({"key": self._key(), "inverter": self.inverter.state_dict(),
                     "directions": dict(self.directions), "slopes": dict(self.slopes), "fits": dict(self.fits),
                     "stds": dict(self.stds)}, path)

    def load(self, path: Path) -> bool:
        """Take the inverter and directions from ``path`` when it was made for this checkpoint and
        these settings; False (nothing taken) otherwise."""
        path = Path(path)
        if not path.is_file():
            return False
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception:      # a damaged or foreign file: recomputed and replaced
            return False
        if not isinstance(state, dict) or state.get("key") != self._key():
            return False
        self.inverter.load_state_dict(state["inverter"])
        self.inverter.eval()
        self.directions = {k: v.float() for k, v in state["directions"].items()}
        self.slopes = {k: float(v) for k, v in state["slopes"].items()}
        self.fits = {k: float(v) for k, v in state["fits"].items()}
        self.stds = {k: float(v) for k, v in state["stds"].items()}
        return True

    def prepare(self, log: Optional[Callable[[str], None]] = None) -> "Editor":
        """Make the inverter and the directions ready: from ``RUN/edit/editor.pt`` when it was
        made for the run's checkpoint and these settings (``self.cached`` True), else trained,
        fitted and written there."""
        path = Path(self.run.path) / EDITOR_FILE
        self.cached = self.load(path)
        if not self.cached:
            if log:
                log(f"training the inverter ({self.encoder_steps} steps) and fitting attribute directions "
                    f"({self.n_directions} samples); kept in {path} for the next edit")
            self.train_inverter()
            self.fit_directions()
            self.save(path)
        return self


def prepare_images(x: Tensor, shape: Tuple[int, ...], source: str = "--input") -> Tuple[Tensor, List[str]]:
    """Pictures in [0, 1] (N, C, H, W) brought to the run's ``shape``: grey <-> colour by the mean
    or by repeating, other sizes resized (antialiased bilinear). Returns them and notes of what
    was done; a non-picture is refused."""
    notes = []
    if x.dim() != 4:
        raise ConfigError(f"{source}: expected pictures, got an array of shape {tuple(x.shape)}")
    c, h, w = shape
    if x.shape[1] not in (1, 3, 4):
        raise ConfigError(f"{source}: pictures with {x.shape[1]} channels; give grey or colour pictures")
    if x.shape[1] == 4:
        x = x[:, :3]
    if x.shape[1] != c:
        notes.append(f"{source}: {'colour' if x.shape[1] == 3 else 'grey'} pictures converted to "
                     f"{'grey' if c == 1 else 'colour'}, as the run's are")
        x = x.mean(1, keepdim=True) if c == 1 else x.expand(-1, 3, -1, -1)
    if tuple(x.shape[2:]) != (h, w):
        notes.append(f"{source}: pictures of {x.shape[3]}x{x.shape[2]} pixels resized to the run's {w}x{h}")
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1).contiguous(), notes


def edit_run(run, images: Tensor, attr: str, amount: float, label: Optional[int] = None, steps: int = 200,
             log: Optional[Callable[[str], None]] = None, **settings) -> Dict[str, object]:
    """:meth:`Editor.edit` of ``images`` (N, C, H, W) in [0, 1] with the run's cached editor; the
    result also says whether the cache was used (``cached``) and what was done to the input
    (``notes``)."""
    editor = Editor(run, **settings)
    editor.check_attribute(attr)           # before any training: a typo costs nothing
    images, notes = prepare_images(images, tuple(run.info.shape))
    editor.labels_for(images, label)       # a label out of range, too
    editor.prepare(log)
    out = editor.edit(images, attr, amount, label=label, steps=steps)
    out["cached"], out["notes"] = editor.cached, notes
    return out


def save_edit(result: Mapping[str, object], out: Path) -> Dict[str, Path]:
    """Write ``input.png``, ``inverted.png``, ``edited.png`` (each picture's grid side by side),
    ``edit.png`` (one row per picture: the input, then the decodings from amount 0 to A) and
    ``edit.json`` (the numbers) into ``out``."""
    import json

    from torchvision.utils import save_image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("input", "inverted", "edited"):
        paths[name] = out / f"{name}.png"
        save_image(result[name], paths[name], nrow=max(1, len(result[name])), padding=1, pad_value=0.5)
    rows = torch.cat([result["input"].unsqueeze(1), result["walk"]], 1)        # (N, 1 + K, C, H, W)
    paths["edit"] = out / "edit.png"
    save_image(rows.flatten(0, 1), paths["edit"], nrow=rows.shape[1], padding=1, pad_value=0.5)
    numbers = {k: v for k, v in result.items() if not torch.is_tensor(v)}
    paths["json"] = out / "edit.json"
    paths["json"].write_text(json.dumps(numbers, indent=2) + "\n")
    return paths
