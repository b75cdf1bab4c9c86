"""Gradient penalties need a discriminator that treats the samples of a batch independently:
batch norm (in training mode) and minibatch discrimination are refused with a penalty."""
import pytest
import torch
from torch import nn

import gankit
from gankit.cli import main
from gankit.errors import ConfigError
from gankit.nets.blocks import MinibatchDiscrimination
from gankit.objectives.penalties import batch_coupling, require_independent_samples

from conftest import toy_config


def _images(image_npz, *extra):
    """Train arguments for a tiny DCGAN on 16x16 RGB images (the DCGAN discriminator: batch norm)."""
    return ["--data", "array", "--steps", "2", "--set", f"data.path={image_npz}", "generator.width=4",
            "discriminator.width=4", "train.batch_size=8", "train.progress=none", "train.checkpoint_every=0",
            "train.sample_every=0", "runtime.device=cpu", *extra]


def _toy(*extra):
    return ["--data", "ring8", "--steps", "2", "--set", "data.n_samples=500", "generator.hidden=8",
            "discriminator.hidden=8", "train.batch_size=16", "train.progress=none", "train.checkpoint_every=0",
            "train.sample_every=0", *extra]


@pytest.mark.parametrize("method", [
    ["method.objective=wasserstein", "method.penalty=gradient"],
    ["method.penalty=r1"],
    ["method.name=loss_sensitive", "method.penalty_weight=1.0"],
], ids=["gradient", "r1", "loss_sensitive"])
def test_a_penalty_on_a_batch_norm_discriminator_is_refused(tmp_path, capsys, image_npz, method):
    out = tmp_path / "run"
    assert main(["train", *_images(image_npz, *method), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "batch norm" in err and "mixes the samples of a batch" in err
    assert "discriminator.norm=layer" in err and "discriminator.norm=none" in err
    assert "minibatch_kernels" not in err
    assert ("method.penalty=" in err) if "penalty=" in method[-1] else ("method.penalty_weight=1" in err)
    assert not out.exists()                     # refused before the run directory is made


@pytest.mark.parametrize("method", [
    ["method.objective=wasserstein", "method.penalty=gradient"],
    ["method.penalty=r1"],
    ["method.name=loss_sensitive", "method.penalty_weight=1.0"],
], ids=["gradient", "r1", "loss_sensitive"])
def test_a_penalty_with_minibatch_discrimination_is_refused(tmp_path, capsys, method):
    out = tmp_path / "run"
    assert main(["train", *_toy(*method, "discriminator.minibatch_kernels=4"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "minibatch discrimination" in err and "discriminator.minibatch_kernels=0" in err
    assert "discriminator.norm" not in err      # an MLP has no batch norm to remove
    assert not out.exists()


def test_both_couplings_are_named(tmp_path, capsys, image_npz):
    assert main(["train", *_images(image_npz, "method.penalty=r1", "discriminator.minibatch_kernels=3"),
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "discriminator.norm=layer" in err and "discriminator.minibatch_kernels=0" in err


@pytest.mark.parametrize("norm", ["layer", "none"])
@pytest.mark.parametrize("method", [
    ["method.objective=wasserstein", "method.penalty=gradient"],
    ["method.penalty=r1", "method.unroll=1"],
    ["method.name=loss_sensitive", "method.penalty_weight=1.0"],
], ids=["gradient", "r1-unrolled", "loss_sensitive"])
def test_layer_norm_or_no_norm_trains_with_a_penalty(tmp_path, image_npz, norm, method):
    out = tmp_path / "run"
    assert main(["train", *_images(image_npz, *method, f"discriminator.norm={norm}"), "--out", str(out)]) == 0
    run = gankit.load_run(out)
    assert run.step == 2 and not batch_coupling(run.discriminator)


def test_without_a_penalty_batch_norm_and_minibatch_discrimination_are_fine(tmp_path, image_npz):
    # spectral norm is not a gradient penalty, and a penalty-free GAN has no per-sample gradient to spoil
    assert main(["train", *_images(image_npz, "method.spectral_norm=true", "discriminator.minibatch_kernels=3"),
                 "--out", str(tmp_path / "a")]) == 0
    # batch norm in the generator does not matter
    run = gankit.train(toy_config(tmp_path / "b", steps=2, method__penalty="gradient", generator__batch_norm=True))
    assert run.step == 2


def test_the_python_api_refuses_too(tmp_path):
    with pytest.raises(ConfigError, match=r"discriminator\.minibatch_kernels=0"):
        gankit.train(toy_config(tmp_path / "x", steps=2, method__penalty="gradient",
                                discriminator__minibatch_kernels=2))
    assert not (tmp_path / "x").exists()


def test_coupling_is_found_by_module_type_in_any_network():
    assert batch_coupling(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))) == []
    assert batch_coupling(nn.Sequential(nn.Conv2d(1, 2, 3), nn.GroupNorm(1, 2), nn.InstanceNorm2d(2))) == []
    net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Sequential(nn.LazyBatchNorm1d()),
                        MinibatchDiscrimination(4, 2))
    assert batch_coupling(net) == [("1", "batch norm"), ("2.0", "batch norm"), ("3", "minibatch discrimination")]
    assert batch_coupling(nn.SyncBatchNorm(3)) == [("SyncBatchNorm", "batch norm")]
    with pytest.raises(ConfigError, match=r"my penalty needs the discriminator's gradient at each sample on its own"):
        require_independent_samples(net, "my penalty")
    require_independent_samples(nn.Linear(2, 1), "my penalty")   # nothing to refuse


def test_why_batch_norm_spoils_the_per_sample_gradient():
    # with batch norm, the "gradient at sample i" read off the summed outputs depends on the other samples
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 1))
    x = torch.randn(6, 2)

    def grad_at_first(batch):
        batch = batch.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(net(batch).sum(), batch)
        return g[0]

    other = x.clone()
    other[1:] = torch.randn(5, 2) * 3
    assert not torch.allclose(grad_at_first(x), grad_at_first(other))
    # without batch norm, sample i's gradient is the same whatever the rest of the batch
    plain = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    g1 = torch.autograd.grad(plain(x.requires_grad_(True)).sum(), x)[0][0]
    x2 = other.clone().requires_grad_(True)
    g2 = torch.autograd.grad(plain(x2).sum(), x2)[0][0]
    torch.testing.assert_close(g1, g2)
