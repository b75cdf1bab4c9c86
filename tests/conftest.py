import os
import random

#: Under pytest-xdist (``pytest -n N``) the workers share the cores: each test, and every process a
#: test starts (they inherit the environment), runs one torch thread, so no worker's threads spin
#: waiting for a core another worker holds.
XDIST = bool(os.environ.get("PYTEST_XDIST_WORKER"))
if XDIST:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet_threads():
    torch.set_num_threads(1 if XDIST else 2)
    yield


@pytest.fixture
def one_thread():
    """One CPU thread for the test (tiny networks: on a shared machine two threads can be several
    times slower); a module asks for it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def toy_config(out, steps=60, **over):
    """A small, fast MLP GAN on ring8 (fp32), for engine tests."""
    cfg = {
        "data": {"name": "ring8", "n_samples": 4000},
        "generator": {"name": "mlp", "hidden": 32, "layers": 2},
        "discriminator": {"name": "mlp", "hidden": 32, "layers": 2},
        "train": {"steps": steps, "batch_size": 64, "log_every": 10, "sample_every": 0,
                  "checkpoint_every": 20, "progress": "none", "seed": 3},
        "optim": {"lr_g": 1e-3, "lr_d": 1e-3},
        "out": str(out),
    }
    for key, value in over.items():
        section, name = key.split("__")
        cfg.setdefault(section, {})[name] = value
    return cfg


@pytest.fixture
def image_npz(tmp_path):
    """200 random 16x16 RGB uint8 images with a little structure, as an .npz."""
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 16, dtype=np.float64)
    x = (base[None, None, :, None] + rng.normal(0, 30, size=(200, 16, 16, 3))).clip(0, 255).astype(np.uint8)
    path = tmp_path / "images.npz"
    np.savez(path, x=x)
    return path


def ring_before_after(cfg, tmp_path):
    """Train ``cfg`` for one step and in full; for each, the mean distance of 2,500 samples to
    their nearest mode and the mode statistics (plus ``within_0.1``, the share of samples
    within 0.1 of a mode): ((d0, s0), (d1, s1)) and the full run."""
    import gankit
    from gankit.metrics.modes import toy_mode_stats

    untrained = gankit.train({**cfg, "train": {**cfg["train"], "steps": 1}, "out": str(tmp_path / "start")})
    run = gankit.train(cfg)

    def stats(r):
        x = r.sample(2500, seed=0).double()
        nearest = torch.cdist(x, r.data.modes.double()).min(1).values
        stats = toy_mode_stats(x, r.data.modes, r.data.mode_stds)
        stats["within_0.1"] = (nearest < 0.1).double().mean().item()
        return nearest.mean().item(), stats

    return stats(untrained), stats(run), run


def mostly_a_lines(path):
    """A text file of 800 six-word lines, each word 'a' with probability 0.8, else one of twenty
    others: a sequence method that learns from it writes more 'a's."""
    rng = random.Random(0)
    path.write_text("".join(" ".join("a" if rng.random() < 0.8 else f"w{rng.randrange(20)}" for _ in range(6)) + "\n"
                            for _ in range(800)))
    return path


def share_of_a(run, n=1000):
    """The share of 'a' among the words of ``n`` samples of a run trained on :func:`mostly_a_lines`."""
    x = run.generate(n, seed=0)["x"]
    return float((x == run.info.fields["x"].classes.index("a")).double().sum() / (x != 0).sum().clamp_min(1))


def rectangle_pictures(n, size=16, seed=0):
    """Grey uint8 pictures (n, size, size) of a bright rectangle on a dark ground."""
    rng = np.random.default_rng(seed)
    x = np.full((n, size, size), 20, np.uint8)
    for img in x:
        top, left = rng.integers(0, size // 2, size=2)
        h, w = rng.integers(size // 4, size // 2 + 1, size=2)
        img[top:top + h, left:left + w] = rng.integers(160, 256)
    return x


def styled(x, domain):
    """Domains of ``x``: 0 as it is, 1 the negative, 2 half as bright."""
    x = x.copy()
    x[domain == 1] = 255 - x[domain == 1]
    x[domain == 2] //= 2
    return x
