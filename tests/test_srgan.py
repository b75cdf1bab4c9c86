"""srgan: the SRResNet generator enlarges by the data's factor (2 or 4) and SRGAN's
discriminator judges the image alone; the pixel-only network learns (PSNR far above its
start and above bicubic upsampling) and the adversarial term makes the outputs sharper than
the pixel-only network's; the feature loss on the shipped classifier stays frozen; wrong
pairings and impossible settings are refused with what to do; sampling given inputs and from
the pool; evaluation of the held-out inputs and the bicubic baseline; exact resume."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.data.base import Field
from gankit.errors import ConfigError
from gankit.methods.base import DataInfo
from gankit.metrics import paired
from gankit.metrics.evaluate import evaluate_run
from gankit.nets.srresnet import SRDiscriminator, srgan_discriminator, srresnet

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def pictures(path, n=400, size=16, channels=1, seed=0):
    """``n`` size x size pictures of a bright rectangle (random place, size and brightness) on a
    dark ground, as an .npz; with 3 channels each rectangle has a colour of its own."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    x = np.full((n, channels, size, size), 10, np.uint8)
    for img in x:
        top, left = rng.integers(0, size // 2, size=2)
        h, w = rng.integers(size // 4, size // 2 + 1, size=2)
        img[:, top:top + h, left:left + w] = (rng.integers(160, 256) if channels == 1 else
                                              rng.integers(120, 256, size=(channels, 1, 1)))
    np.savez(path, x=x[:, 0] if channels == 1 else x.transpose(0, 2, 3, 1))
    return path


def sr_config(tmp_path, name="run", steps=100, pairs="lowres4", size=16, channels=1, seed=1, **method):
    data = pictures(tmp_path / f"pictures{size}x{channels}.npz", size=size, channels=channels)
    return {
        "method": {"name": "srgan", **method},
        "data": {"name": "array", "path": str(data), "test_fraction": 0.25, "pairs": pairs},
        "generator": {"name": "srresnet", "width": 16, "blocks": 2},
        "discriminator": {"name": "srgan", "width": 8, "dense": 32},
        "train": {"steps": steps, "batch_size": 32, "log_every": 10, "sample_every": 0, "checkpoint_every": 0,
                  "progress": "none", "seed": seed},
        "optim": {"lr_g": 1e-3, "lr_d": 2e-4},
        "runtime": {"threads": 1, "precision": "fp32"},
        "out": str(tmp_path / name),
    }


PIXEL_ONLY = {"adv_weight": 0.0, "perceptual_weight": 0.0}


def _info(c, h, w, h_in, w_in, c_in=None):
    return DataInfo("image", (c, h, w), fields={"input": Field("image", (c_in or c, h_in, w_in))})


def _logs(run):
    import json

    return [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------------- networks

@pytest.mark.parametrize("shape,small", [((1, 28, 28), 14), ((1, 28, 28), 7), ((3, 64, 64), 32),
                                         ((3, 64, 64), 16), ((1, 20, 36), 10)])
def test_srresnet_enlarges_the_low_resolution_input_by_the_datas_factor(shape, small):
    c, h, w = shape
    factor = h // small
    g = srresnet(_info(c, h, w, small, w // factor), width=8, blocks=2)
    assert (g.factor, g.in_channels, g.out_channels, g.z_dim) == (factor, c, c, 0)
    assert sum(isinstance(m, torch.nn.PixelShuffle) for m in g.modules()) == {2: 1, 4: 2}[factor]
    out = g(torch.randn(3, c, small, w // factor))
    assert out.shape == (3, c, h, w) and float(out.detach().abs().max()) <= 1.0
    assert len(srresnet(_info(c, h, w, small, w // factor), width=8, blocks=5).blocks) == 5


def test_srresnet_refuses_data_that_is_not_a_low_resolution_pairing():
    with pytest.raises(ConfigError, match="as large as x.*lowres2 or lowres4"):
        srresnet(_info(1, 28, 28, 28, 28))                       # edges, grey, mask: the same size
    with pytest.raises(ConfigError, match="enlarges by 2 or 4.*lowres2 or lowres4"):
        srresnet(_info(1, 24, 24, 8, 8))                         # x3
    with pytest.raises(ConfigError, match="field 'input'.*lowres2 or lowres4"):
        srresnet(DataInfo("image", (1, 28, 28)))
    with pytest.raises(ConfigError, match="generator.width must be at least 1"):
        srresnet(_info(1, 28, 28, 14, 14), width=0)


def test_the_srgan_discriminator_judges_the_image_alone_with_one_logit():
    torch.manual_seed(0)
    d = srgan_discriminator(DataInfo("image", (1, 28, 28)), width=4, dense=8)
    assert sum(c.stride == (2, 2) for c in d.modules() if isinstance(c, torch.nn.Conv2d)) == 3   # 28->14->7->4
    x = torch.randn(5, 1, 28, 28)
    assert d(x).shape == (5,) and d.features(x).shape == (5, 32 * 4 * 4)
    big = srgan_discriminator(DataInfo("image", (3, 96, 96)), width=4, max_width=16, dense=8)
    assert sum(c.stride == (2, 2) for c in big.modules() if isinstance(c, torch.nn.Conv2d)) == 4   # the paper's
    assert isinstance(big, SRDiscriminator) and big(torch.randn(2, 3, 96, 96)).shape == (2,)
    with pytest.raises(ConfigError, match="stages=6 halves 28x28 images below one pixel"):
        srgan_discriminator(DataInfo("image", (1, 28, 28)), stages=6)


# ----------------------------------------------------------------------------------- learning

def test_srgan_learns_beats_bicubic_and_the_adversarial_term_sharpens(tmp_path):
    """x4 (4x4 -> 16x16): the pixel-only SRResNet's held-out PSNR rises far above its start and
    above bicubic upsampling's; with the adversarial term the outputs are sharper than the
    pixel-only network's (measured over seeds 1-6, 100 steps: PSNR 7.0-7.4 dB at the start,
    18.4-19.0 pixel-only, bicubic 16.1; sharpness 0.41-0.46 pixel-only, 0.56-0.72 with
    adv_weight 0.01, whose PSNR was lower in all six: the trade-off)."""
    metrics = ["psnr", "ssim", "sharpness", "bicubic"]
    start = evaluate_run(gankit.train(sr_config(tmp_path, "start", steps=1, **PIXEL_ONLY)), metrics, n=100)
    pixel_run = gankit.train(sr_config(tmp_path, "pixel", **PIXEL_ONLY))
    pixel = evaluate_run(pixel_run, metrics, n=100)
    gan_run = gankit.train(sr_config(tmp_path, "gan", adv_weight=0.01))
    gan = evaluate_run(gan_run, metrics, n=100)
    assert pixel["psnr"] > start["psnr"] + 8, (start, pixel)
    assert pixel["psnr"] > pixel["bicubic_psnr"] + 1.0, pixel
    assert pixel["ssim"] > start["ssim"]
    assert gan["psnr"] > start["psnr"] + 8, (start, gan)
    assert gan["sharpness"] > 1.15 * pixel["sharpness"], (pixel, gan)
    assert gan["bicubic_psnr"] == pixel["bicubic_psnr"]           # the same held-out inputs
    logs = _logs(gan_run)
    assert {"pixel", "perceptual", "g_loss", "d_loss", "d_real", "d_fake"} <= set(logs[-1])
    assert logs[-1]["pixel"] < logs[0]["pixel"]
    assert gan_run.method.feature_net == "discriminator"          # 16x16: not the classifier's pictures


def test_the_pixel_only_network_never_trains_the_discriminator(tmp_path):
    run = gankit.train(sr_config(tmp_path, "pixel", steps=3, **PIXEL_ONLY))
    start = gankit.train(sr_config(tmp_path, "start", steps=1, **PIXEL_ONLY))
    for a, b in zip(run.discriminator.parameters(), start.discriminator.parameters()):
        assert torch.equal(a, b)
    assert run.method.feature_net == "none" and run.method.phi is None
    assert run.method.schedulers["discriminator"].last_epoch == 0
    logs = (run.path / "metrics.jsonl").read_text()
    assert "g_loss" not in logs and "d_loss" not in logs and "perceptual" not in logs
    l1 = gankit.train(sr_config(tmp_path, "l1", steps=2, pixel_loss="l1", **PIXEL_ONLY))
    assert l1.step == 2
    hinge = gankit.train(sr_config(tmp_path, "hinge", steps=2, objective="hinge", spectral_norm=True))
    assert hinge.step == 2 and "d_loss" in (hinge.path / "metrics.jsonl").read_text()


def test_the_feature_loss_on_the_shipped_classifier_stays_frozen(tmp_path):
    """Grey 28x28 pictures: ``auto`` picks the Fashion-MNIST classifier's maps; the classifier is
    not a trained network of the run (not in the checkpoint, weights and statistics unchanged)."""
    from gankit.metrics.features import fashion_mnist

    cfg = sr_config(tmp_path, "fm", steps=3, pairs="lowres2", size=28, feature_layer=3)
    run = gankit.train(cfg)
    assert run.method.feature_net == "classifier" and run.info.fields["input"].shape == (1, 14, 14)
    assert set(run.method.state_dict()["modules"]) == {"generator", "discriminator"}
    shipped = fashion_mnist(device="cpu").net.body.state_dict()
    for key, value in run.method.phi.body.state_dict().items():
        assert torch.equal(value.cpu(), shipped[key]), key
    assert run.method.phi(torch.zeros(2, 1, 28, 28)).shape == (2, 64, 14, 14)    # conv 3's maps
    assert "perceptual" in _logs(run)[-1]
    x4 = gankit.train(sr_config(tmp_path, "fm4", steps=1, pairs="lowres4", size=28))
    assert x4.info.fields["input"].shape == (1, 7, 7) and x4.generate(3, seed=0)["x"].shape == (3, 1, 28, 28)


# ----------------------------------------------------------------------------------- errors

def test_wrong_pairings_and_impossible_settings_are_refused(tmp_path, image_npz):
    with pytest.raises(ConfigError, match="lowres2 or lowres4"):
        gankit.train(sr_config(tmp_path, "edges", steps=1, pairs="edges"))
    with pytest.raises(ConfigError, match="trains on a field 'input'.*lowres2, lowres4"):
        gankit.train(sr_config(tmp_path, "none", steps=1, pairs="none"))
    with pytest.raises(ConfigError, match="all 0: the generator would learn nothing"):
        gankit.train(sr_config(tmp_path, "zero", steps=1, pixel_weight=0.0, **PIXEL_ONLY))
    with pytest.raises(ConfigError, match="method.adv_weight must not be negative"):
        gankit.train(sr_config(tmp_path, "neg", steps=1, adv_weight=-1.0))
    with pytest.raises(ConfigError, match="feature_net=classifier.*grey 28x28 pictures.*1x16x16"):
        gankit.train(sr_config(tmp_path, "cls", steps=1, feature_net="classifier"))
    with pytest.raises(ConfigError, match="feature_net=discriminator.*adv_weight is 0"):
        gankit.train(sr_config(tmp_path, "dfeat", steps=1, feature_net="discriminator", adv_weight=0.0))
    with pytest.raises(ConfigError, match="perceptual_weight=0 \\(the pixel-only SRResNet\\)"):
        gankit.train(sr_config(tmp_path, "auto", steps=1, adv_weight=0.0))
    bad = {**sr_config(tmp_path, "unet", steps=1), "generator": {"name": "unet", "width": 8}}
    with pytest.raises(ConfigError, match="does not enlarge.*generator.name=srresnet"):
        gankit.train(bad)
    # colour pictures (photos patches): the classifier cannot take them, the discriminator's features can
    colour = {**sr_config(tmp_path, "rgb", steps=1), "data": {"name": "array", "path": str(image_npz),
                                                              "pairs": "lowres2"}}
    with pytest.raises(ConfigError, match="classifier.*grey 28x28.*3x16x16.*feature_net=discriminator"):
        gankit.train({**colour, "method": {"name": "srgan", "feature_net": "classifier"}})
    run = gankit.train({**colour, "out": str(tmp_path / "rgb2")})
    assert run.method.feature_net == "discriminator" and run.generate(2, seed=0)["x"].shape == (2, 3, 16, 16)


# ----------------------------------------------------------------------------------- sampling, evaluation

def test_sampling_given_inputs_and_from_the_pool(tmp_path):
    run = gankit.train(sr_config(tmp_path, "run", steps=3, pool=40))
    assert run.method.pool.shape == (40, 1, 4, 4) and run.method.pool.dtype == torch.uint8
    loaded = gankit.load_run(run.path)
    assert torch.equal(loaded.method.pool, run.method.pool)          # kept in the checkpoint
    small = run.data.tensors()["input"][:6]
    out = loaded.generate(6, seed=0, given={"input": small.float() / 127.5 - 1})
    assert set(out) == {"x", "input"} and out["x"].shape == (6, 1, 16, 16)
    torch.testing.assert_close(out["input"], small.float() / 255)
    torch.testing.assert_close(loaded.generate(6, seed=3, given={"input": small.float() / 127.5 - 1})["x"], out["x"])
    drawn = loaded.generate(12, seed=1)                               # no inputs: from the pool
    pool = loaded.method.pool.float() / 255
    assert drawn["x"].shape == (12, 1, 16, 16)
    assert all(any(torch.allclose(d, p, atol=1e-6) for p in pool) for d in drawn["input"])
    with pytest.raises(ConfigError, match="'input' must have samples of shape \\(1, 4, 4\\)"):
        loaded.generate(2, given={"input": torch.zeros(2, 3, 4, 4)})      # (other sizes go in tiles)
    run.method.pool = run.method.pool[:0]
    with pytest.raises(ConfigError, match="no inputs to enlarge: give them"):
        run.generate(2, seed=0)


def test_evaluation_enlarges_the_held_out_inputs_and_scores_bicubic_the_same_way(tmp_path):
    run = gankit.train(sr_config(tmp_path, "run", steps=3, pairs="lowres2"))
    test = gankit.api.build_data(run.config, split="test")
    inputs, targets = test.tensors()["input"], test.x.float() / 255
    result = evaluate_run(run, metrics=["l1", "psnr", "ssim", "sharpness", "bicubic", "fid"], n=len(test),
                          features="pixels")
    outputs = run.generate(len(test), given={"input": inputs.float() / 127.5 - 1})["x"]
    assert result["l1"] == pytest.approx((outputs - targets).abs().mean().item(), rel=1e-5)
    assert result["psnr"] == pytest.approx(paired.psnr(outputs, targets).mean(), rel=1e-6)
    up = F.interpolate(inputs.double() / 255, size=(16, 16), mode="bicubic", align_corners=False).clamp(0, 1)
    assert result["bicubic_psnr"] == pytest.approx(paired.psnr(up, targets).mean(), rel=1e-6)
    assert result["bicubic_ssim"] == pytest.approx(paired.ssim(up, targets).mean(), rel=1e-6)
    assert result["bicubic_l1"] == pytest.approx(paired.l1_error(up, targets).mean(), rel=1e-6)
    assert 0 < result["bicubic_sharpness"] < 1                     # interpolation blurs
    assert result["bicubic_fid"] >= 0 and result["fid"] >= 0
    assert "bicubic_fid" not in evaluate_run(run, metrics=["bicubic"], n=20)   # pixels only: no features
    # a constant picture stays constant, values stay in [0, 1]
    flat = paired.bicubic_upsample(torch.full((2, 1, 4, 4), 0.3), (16, 16))
    assert flat.shape == (2, 1, 16, 16) and torch.allclose(flat, torch.full_like(flat, 0.3))
    board = ((torch.arange(4)[:, None] + torch.arange(4)[None, :]) % 2).float()[None, None]
    up = paired.bicubic_upsample(board, (8, 8))
    assert float(up.min()) == 0.0 and float(up.max()) == 1.0          # bicubic overshoots: clamped


# ----------------------------------------------------------------------------------- resume

@pytest.mark.parametrize("method", [{"feature_layer": 4}, PIXEL_ONLY], ids=["classifier", "pixel_only"])
def test_a_resumed_run_is_bit_identical(tmp_path, method):
    def cfg(name, steps):
        c = sr_config(tmp_path, name, steps=steps, pairs="lowres4", size=28, pool=20, **method)
        c["train"].update(batch_size=16, checkpoint_every=3, ema_decay=0.9)
        return c

    straight = gankit.train(cfg("straight", 6))
    resumed = gankit.resume(gankit.train(cfg("stopped", 3)).path, steps=6)
    a, b = straight.method.state_dict(), resumed.method.state_dict()
    for part in ("modules", "emas"):
        for role in a[part]:
            for key, value in a[part][role].items():
                assert torch.equal(value, b[part][role][key]), f"{part}.{role}.{key}"
    assert torch.equal(a["extra"]["pool"], b["extra"]["pool"])


# ----------------------------------------------------------------------------------- the shipped config

@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="Fashion-MNIST is not installed at /usr/share/datasets/"
                    "fashion-mnist (apt-get install dataset-fashion-mnist)")
def test_the_fashion_mnist_config_builds_on_the_real_data(tmp_path):
    cfg = gankit.api.make_config(str(Path(__file__).parent.parent / "configs" / "srgan_fashion_mnist_x4.yaml"),
                                 ["train.steps=2", "train.batch_size=8", f"out={tmp_path / 'run'}",
                                  "train.progress=none", "runtime.threads=1", "generator.width=8",
                                  "generator.blocks=1", "discriminator.width=8"])
    run = gankit.train(cfg)
    assert run.info.fields["input"].shape == (1, 7, 7) and run.method.feature_net == "classifier"
    assert run.generate(4, seed=0)["x"].shape == (4, 1, 28, 28)
