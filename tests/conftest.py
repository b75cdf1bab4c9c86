import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _quiet_threads():
    torch.set_num_threads(2)
    yield


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
