"""The Python API, mirrored by the command line: train, resume, load_run, Run.sample.

:func:`train` and :func:`resume` also run under ``torchrun``: they join the process group
its environment describes (see :mod:`gankit.train.distributed`), build the same model on
every process from the same seed and broadcast rank 0's weights, give each process its
slice of every global batch (``train.batch_size`` is the per-process batch), let only
rank 0 create the run directory and write into it, and leave the group when done.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Union

import torch

from . import config as C
from .data.base import Dataset, build_data, build_sources
from .data.stream import Sources
from .errors import ConfigError, RunDirError
from .methods.base import DataInfo, Method, check_data, describe_inputs, resolve_networks
from .registries import METHODS, load_all
from .train import distributed
from .train.checkpoint import CheckpointManager, set_rng_state
from .train.runtime import Runtime
from .train.trainer import Trainer

__all__ = ["Run", "train", "resume", "load_run", "make_config", "build_data"]

ConfigLike = Union[C.Config, Dict[str, Any], str, os.PathLike, None]

# keys that may differ between a checkpoint and the config that resumes it
_RESUMABLE_CHANGES = ("train.steps", "train.log_every", "train.sample_every", "train.checkpoint_every",
                      "train.keep_checkpoints", "train.progress", "train.n_samples", "runtime.threads",
                      "runtime.device", "eval", "out")


@dataclass
class Run:
    """A run directory opened for use: its config, networks and (when training) data."""
    path: Path
    config: C.Config
    info: DataInfo
    runtime: Runtime
    method: Method
    step: int = 0
    data: Optional[Dataset] = None
    sources: Dict[str, Dataset] = field(default_factory=dict)   #: further data sources (when training)
    status: str = ""                 #: "finished", "time_limit" or "interrupted" after training
    stop_signal: Optional[int] = None  #: the signal that interrupted training

    @property
    def generator(self) -> torch.nn.Module:
        return self.method.generator

    @property
    def discriminator(self) -> torch.nn.Module:
        return self.method.discriminator

    def generate(self, n: int, seed: Optional[int] = None, given: Optional[Dict[str, Any]] = None,
                 dropout: bool = False, tile=None, overlap=None) -> Dict[str, torch.Tensor]:
        """``n`` samples as the method's named outputs, float tensors on the CPU: ``x`` (images
        (N, C, H, W) in [0, 1], vectors (N, D)), the conditions used (``y``: class labels) and
        whatever else the method shows. ``given`` sets conditions (``{"y": 3}`` or one label
        per sample); those not given are drawn from the data's distribution. The
        moving-average networks are used where the run keeps them.

        ``dropout=True`` keeps the generator's dropout on (pix2pix: the paper's noise, so
        outputs for one input differ; the default is deterministic). Pictures given at another
        size than the training size are translated in overlapping tiles of the training size
        (``tile``: pixels on a side or (height, width); ``overlap``: pixels, default a quarter
        of a tile) and stitched with a smooth blend, for fully convolutional generators.
        """
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        out = self.method.sample(n, given=given, generator=g, dropout=dropout, tile=tile, overlap=overlap)
        return {k: self._to_user(k, v) for k, v in out.items()}

    def sample(self, n: int, seed: Optional[int] = None, given: Optional[Dict[str, Any]] = None,
               dropout: bool = False, tile=None, overlap=None) -> torch.Tensor:
        """``n`` samples as a float tensor on the CPU: images (N, C, H, W) in [0, 1], vectors
        (N, D); ``generate(n, seed, given, dropout, tile, overlap)["x"]``."""
        return self.generate(n, seed, given, dropout=dropout, tile=tile, overlap=overlap)["x"]

    def _to_user(self, name: str, v: torch.Tensor) -> torch.Tensor:
        f = self.info.fields.get(name)
        is_image = (f.kind == "image") if f is not None else (v.dim() == 4 and v.is_floating_point())
        return Dataset.image_to_unit(v) if is_image else v


# ----------------------------------------------------------------------------------- building

def make_config(config: ConfigLike = None, overrides: Sequence[str] = ()) -> C.Config:
    """A validated config from a Config, a dict, a YAML path or nothing (the default run)."""
    if isinstance(config, C.Config):
        raw = C.to_dict(config)
    elif isinstance(config, dict):
        raw = config
    elif config is None:
        raw = {}
    else:
        raw = C.load_yaml(config)
    return C.build_config(C.apply_overrides(raw, overrides))


def _info(data: Dataset, cfg: C.Config, sources: Dict[str, Dataset]) -> DataInfo:
    info = DataInfo.of(data, sources)
    check_data(cfg.method["name"], info)
    return describe_inputs(info, cfg.method["name"])   # conditions that take a data field's samples


def _load(cfg: C.Config) -> tuple:
    """The data set and the further sources of a config, loaded by one process per node first."""
    return distributed.local_main_first(lambda: (build_data(cfg), build_sources(cfg)), "loading the data")


def _method(cfg: C.Config, info: DataInfo) -> tuple:
    resolve_networks(cfg, info)
    runtime = Runtime(cfg.runtime, info.kind)
    torch.manual_seed(cfg.train.seed)
    spec = dict(cfg.method)
    name = spec.pop("name")
    method = METHODS.build(name, spec, runtime, info, cfg, section="method")
    distributed.broadcast_modules_(method)   # several processes: all start from rank 0's weights
    return runtime, method


def _default_out(cfg: C.Config) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.method['name']}-{cfg.data['name']}-{stamp}"


# what a run writes into its directory; a run that never reached its first checkpoint is
# cleared of these before a new run starts there
_RUN_ENTRIES = ("config.yaml", "metrics.jsonl", "loss.png", "events", "samples", "checkpoints")


def _has_checkpoint(path: Path) -> bool:
    ckpts = CheckpointManager(path / "checkpoints")
    return bool(ckpts.list()) or (ckpts.dir / "best.pt").exists()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _prepare_dir(path: Path) -> Callable[[], None]:
    """Create (or take over) the run directory; returns the undo for a start that fails
    before its first checkpoint: it removes the directory when this call created it, else
    only the entries that appeared in it since."""
    if (path / "config.yaml").exists():
        if _has_checkpoint(path):
            raise RunDirError(f"{path} already holds a run. Continue it with `gankit resume {path}`, "
                              "or pass another --out.")
        for name in _RUN_ENTRIES:   # a run that stopped before its first checkpoint: nothing to resume
            _remove(path / name)
    existed = path.is_dir()
    try:
        before = set(os.listdir(path)) if existed else set()
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"cannot write to the run directory {path}: {exc.strerror or exc}. "
                          "Choose a writable --out.") from None

    def undo() -> None:
        if not existed:
            shutil.rmtree(path, ignore_errors=True)
            return
        for name in set(os.listdir(path)) - before:
            _remove(path / name)

    return undo


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------- entry points

def train(config: ConfigLike = None, overrides: Sequence[str] = (), out: Optional[Union[str, Path]] = None) -> Run:
    """Train from a config (Config, dict, YAML path, or None for the default run).

    Returns the :class:`Run`; ``run.path`` is the run directory. Raises
    :class:`gankit.errors.GankitError` subclasses with a message for the user.
    """
    load_all()
    cfg = make_config(config, overrides)
    if out is not None:
        cfg.out = str(out)
    with distributed.session(cfg.runtime.device):
        data, sources = _load(cfg)
        info = _info(data, cfg, sources)
        runtime, method = _method(cfg, info)
        path = distributed.broadcast_object(Path(cfg.out) if cfg.out else _default_out(cfg))  # one time stamp
        cfg.out = str(path)
        run = Run(path=path, config=cfg, info=info, runtime=runtime, method=method, data=data, sources=sources)
        # everything that can refuse the config comes before the directory exists
        evaluator = _evaluator(run)   # a missing extractor creates nothing
        stream = _stream(run)

        created = {}   # rank 0's undo (a closure: it stays on the process that made the directory)

        def create():
            created["undo"] = _prepare_dir(path)
            _write_text_atomic(path / "config.yaml", C.dump_yaml(cfg))

        distributed.run_on_main(create)
        trainer = Trainer(run, stream, evaluator=evaluator)
        try:
            return _fit(run, trainer)
        except BaseException:
            # a start that fails before its first checkpoint leaves nothing to resume: take away
            # what it wrote, so that the same command (corrected) can run again
            if "undo" in created and trainer.last_checkpoint is None and not _has_checkpoint(path):
                created["undo"]()
            raise


def _stream(run: Run) -> Sources:
    """Real batches of train.batch_size per process, each process its slice of every global batch
    (of every data source)."""
    try:
        return Sources({"": run.data, **run.sources}, run.config.train.batch_size, seed=run.config.train.seed,
                       rank=run.runtime.rank, world_size=run.runtime.world_size)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _evaluator(run: Run):
    if not run.config.eval.every:
        return None
    from .metrics.evaluate import Evaluator

    return Evaluator(run)


def _fit(run: Run, trainer: Trainer) -> Run:
    status = trainer.fit()
    run.step = trainer.step
    run.status = status
    run.stop_signal = trainer.stop_signal
    return run


def _resolved(raw: Dict[str, Any]) -> Dict[str, Any]:
    """A checkpoint's config with today's defaults filled in, so that a key added to gankit
    after the run was written (and left at its default) does not count as a change."""
    try:
        return C.to_dict(C.build_config(raw, origin="the checkpoint's config"))
    except ConfigError:
        return raw


def _open(run_dir: Union[str, Path], steps: Optional[int] = None, with_data: bool = False):
    load_all()
    path = Path(run_dir)
    if not (path / "config.yaml").is_file():
        raise RunDirError(f"{path} is not a run directory (no config.yaml). Start a run with `gankit train`.")
    cfg = C.build_config(C.load_yaml(path / "config.yaml"), origin=str(path / "config.yaml"))
    if steps is not None:
        cfg.train = C.TrainConfig(**{**asdict(cfg.train), "steps": steps})
        C._check_ranges("train", cfg.train)
    state = CheckpointManager(path / "checkpoints").latest()
    if state is None:
        raise RunDirError(f"{path} has no readable checkpoint in {path / 'checkpoints'}; "
                          f"start it again with `gankit train {path / 'config.yaml'} --out NEW_DIR`.")
    changed = [k for k in C.diff(_resolved(state["config"]), C.to_dict(cfg))
               if not any(k == r or k.startswith(r + ".") for r in _RESUMABLE_CHANGES)]
    if changed:
        raise RunDirError(
            f"{path / 'config.yaml'} no longer matches the config its checkpoint was written with "
            f"(changed: {', '.join(changed)}). Restore those keys, or start a new run with "
            f"`gankit train {path / 'config.yaml'} --out NEW_DIR`.")
    info = DataInfo.from_dict(state["info"])
    data, sources = _load(cfg) if with_data else (None, {})
    if data is not None:
        now = DataInfo.of(data, sources)
        for name, f in info.fields.items():
            if name in now.fields and tuple(now.fields[name].shape) != tuple(f.shape):
                section = "data" if "." not in name else C.source_section(name.split(".")[0])
                raise RunDirError(f"the data now has samples of shape {tuple(now.fields[name].shape)} in field "
                                  f"'{name}', but the run was trained on {tuple(f.shape)}; check {section}.root")
    runtime, method = _method(cfg, info)
    method.load_state_dict(state["method"], networks_only=not with_data)
    distributed.broadcast_modules_(method)
    run = Run(path=path, config=cfg, info=info, runtime=runtime, method=method, step=state["step"], data=data,
              sources=sources)
    return run, state


def resume(run_dir: Union[str, Path], steps: Optional[int] = None) -> Run:
    """Continue a run exactly where its latest checkpoint left it; ``steps`` sets a new total.

    Under torchrun every process loads the same checkpoint; the run must be resumed with as
    many processes as wrote it (the data order counts global batches).
    """
    with distributed.session(_peek_device(run_dir)):
        run, state = _open(run_dir, steps, with_data=True)
        if run.step >= run.config.train.steps:
            raise RunDirError(f"{run.path} already finished at step {run.step}; pass --steps N with N > {run.step} "
                              "to train further.")
        stream = _stream(run)
        try:
            stream.load_state_dict(state["data"])
        except ValueError as exc:
            raise RunDirError(f"{run.path}: {exc}") from None
        if steps is not None:
            distributed.run_on_main(lambda: _write_text_atomic(run.path / "config.yaml", C.dump_yaml(run.config)))
        set_rng_state(state["rng"])
        trainer = Trainer(run, stream, start_step=state["step"], elapsed=state.get("elapsed", 0.0),
                          evaluator=_evaluator(run), best=state.get("best"))
        trainer.last_checkpoint = Path(state["path"])
        return _fit(run, trainer)


def _peek_device(run_dir: Union[str, Path]) -> str:
    """runtime.device of a run directory's config (the process group's backend depends on it);
    "auto" when unreadable: opening the run then reports what is wrong."""
    try:
        device = C.load_yaml(Path(run_dir) / "config.yaml").get("runtime", {}).get("device", "auto")
    except Exception:
        return "auto"
    return device if isinstance(device, str) else "auto"


def load_run(run_dir: Union[str, Path]) -> Run:
    """Open a run directory for sampling and evaluation (networks from the latest checkpoint)."""
    run, _ = _open(run_dir)
    for m in run.method.modules.values():
        m.eval()
    return run
