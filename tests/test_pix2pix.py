"""pix2pix: the U-Net keeps any image size, the PatchGAN's receptive field is the stated
patch, the method learns to translate (L1 to the target falls well below its start), its
settings give L1 alone / GAN alone / GAN + L1, sampling given inputs and from its pool, the
paired metrics against independent implementations, and `gankit sample --input`."""
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.data.base import Field
from gankit.errors import ConfigError
from gankit.methods.base import DataInfo
from gankit.metrics import paired
from gankit.nets.pix2pix import PatchGAN, UNet, patchgan, unet

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def rectangles(path, n=400, size=16, seed=0):
    """``n`` grey size x size pictures of a bright rectangle (random place, size and brightness)
    on a dark ground, as an .npz."""
    rng = np.random.default_rng(seed)
    x = np.full((n, size, size), 10, np.uint8)
    for img in x:
        top, left = rng.integers(0, size // 2, size=2)
        h, w = rng.integers(size // 4, size // 2 + 1, size=2)
        img[top:top + h, left:left + w] = rng.integers(160, 256)
    np.savez(path, x=x)
    return path


def p2p_config(tmp_path, name="run", steps=150, pairs="edges", **method):
    return {
        "method": {"name": "pix2pix", **method},
        "data": {"name": "array", "path": str(rectangles(tmp_path / "rect.npz")), "test_fraction": 0.25,
                 "pairs": pairs},
        "generator": {"name": "unet", "width": 8},
        "discriminator": {"name": "patchgan", "receptive_field": 16, "width": 8},
        "train": {"steps": steps, "batch_size": 32, "log_every": 25, "sample_every": 0, "checkpoint_every": 0,
                  "progress": "none", "seed": 1},
        "optim": {"lr_g": 2e-3, "lr_d": 2e-4},
        "runtime": {"threads": 1, "precision": "fp32"},
        "out": str(tmp_path / name),
    }


def _info(c_in, c_x, h, w, h_in=None, w_in=None):
    return DataInfo("image", (c_x, h, w), fields={"input": Field("image", (c_in, h_in or h, w_in or w))})


# ----------------------------------------------------------------------------------- networks

@pytest.mark.parametrize("shape,depth", [((1, 28, 28), None), ((1, 28, 28), 3), ((3, 30, 30), 3),
                                         ((3, 64, 64), None), ((1, 20, 36), 4)])
def test_the_unet_keeps_any_size_and_maps_the_input_channels_to_the_data_channels(shape, depth):
    c, h, w = shape
    g = unet(_info(1, c, h, w), width=4, depth=depth)
    assert g.in_channels == 1 and g.out_channels == c and g.z_dim == 0
    out = g(torch.randn(3, 1, h, w))
    assert out.shape == (3, c, h, w) and float(out.detach().abs().max()) <= 1.0
    if depth is None:
        assert g.depth == max(1, int(np.log2(min(h, w))) - 2)   # 28 -> 2, 64 -> 4


def test_the_unet_passes_detail_through_its_skips_and_dropout_is_its_noise():
    torch.manual_seed(0)
    g = UNet(1, 1, width=8, depth=3, dropout=0.5)
    c = torch.randn(4, 1, 16, 16)
    g.train()
    assert not torch.equal(g(c), g(c))            # dropout: two passes, two outputs
    g.eval()
    assert torch.equal(g(c), g(c))                # sampling: the output is a function of the input
    # a change of one input pixel reaches the output near it through the outermost skip
    c2 = c.clone()
    c2[:, :, 5, 5] += 1.0
    diff = (g(c2) - g(c)).detach().abs()[0, 0]
    assert float(diff[3:8, 3:8].sum()) > 0
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 2   # the decoder's inner layers


def _support(d, size, channels=2):
    """Side lengths of the box of input pixels that one central logit depends on."""
    x = torch.randn(1, channels, size, size, requires_grad=True)
    out = d(x)
    _, _, oh, ow = out.shape
    out[0, 0, oh // 2, ow // 2].backward()
    hit = x.grad[0].abs().sum(0) > 0
    rows, cols = hit.any(1).nonzero().flatten(), hit.any(0).nonzero().flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1), (rows.min(), cols.min())


@pytest.mark.parametrize("field,size", [(1, 9), (16, 48), (34, 80), (70, 160), (142, 320)])
def test_a_patchgan_logit_sees_exactly_its_receptive_field(field, size):
    torch.manual_seed(0)
    d = PatchGAN((2, size, size), field, width=2, max_width=8).eval()   # eval: batch norm is per pixel
    h, w, corner = _support(d, size)
    assert (h, w) == (field, field)
    assert min(corner) > 0                         # the patch lies inside the picture: no padding involved


def test_an_imagegan_logit_sees_every_pixel_and_too_deep_patches_are_refused():
    torch.manual_seed(0)
    for size in (28, 16, 30):
        d = PatchGAN((2, size, size), "image", width=2).eval()
        assert d(torch.randn(2, 2, size, size)).shape == (2, 1, 1, 1)
        assert _support(d, size)[:2] == (size, size)
    with pytest.raises(ConfigError, match="142x142 receptive field halves 28x28.*1, 16, 34, 70 or image"):
        patchgan(DataInfo("image", (2, 28, 28)), receptive_field=142)
    with pytest.raises(ConfigError, match="receptive_field: 50 is not allowed; choose one of 1, 16, 34, 70"):
        gankit.api.make_config(None, ["method=pix2pix", "discriminator.name=patchgan",
                                      "discriminator.receptive_field=50"])
    with pytest.raises(ConfigError, match="generator.depth=6 halves 28x28 images 6 times.*at most 5"):
        unet(_info(1, 1, 28, 28), depth=6)


# ----------------------------------------------------------------------------------- the method

def _l1(run):
    from gankit.metrics.evaluate import evaluate_run

    return evaluate_run(run, metrics=["l1", "psnr", "sharpness"], n=100)


def test_pix2pix_learns_to_translate_edges_into_pictures(tmp_path):
    start = gankit.train(p2p_config(tmp_path, "start", steps=1))
    run = gankit.train(p2p_config(tmp_path, "run"))
    before, after = _l1(start), _l1(run)
    assert after["l1"] < 0.4 * before["l1"], (before, after)        # measured: about 0.42 -> 0.05
    assert after["psnr"] > before["psnr"] + 6
    logs = [__import__("json").loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert {"l1", "g_loss", "d_loss", "d_real", "d_fake"} <= set(logs[-1])
    assert logs[-1]["l1"] < logs[0]["l1"]


def test_the_weights_give_l1_alone_gan_alone_and_both(tmp_path):
    l1_only = gankit.train(p2p_config(tmp_path, "l1", steps=3, adv_weight=0.0))
    start = gankit.train(p2p_config(tmp_path, "start", steps=1, adv_weight=0.0))
    # the supervised regressor: the discriminator plays no part and keeps its initial weights
    for a, b in zip(l1_only.discriminator.parameters(), start.discriminator.parameters()):
        assert torch.equal(a, b)
    logs = (l1_only.path / "metrics.jsonl").read_text()
    assert "g_loss" not in logs and "d_loss" not in logs
    gan_only = gankit.train(p2p_config(tmp_path, "gan", steps=3, l1_weight=0.0))
    assert "d_loss" in (gan_only.path / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError, match="both 0: the generator would learn nothing"):
        gankit.train(p2p_config(tmp_path, "none", steps=1, l1_weight=0.0, adv_weight=0.0))
    with pytest.raises(ConfigError, match="method.l1_weight must not be negative"):
        gankit.train(p2p_config(tmp_path, "neg", steps=1, l1_weight=-1.0))
    bad = {**p2p_config(tmp_path, "dcgan"), "generator": {"name": "dcgan", "width": 8}}
    with pytest.raises(ConfigError, match="maps noise to images; method pix2pix needs an image-to-image generator"):
        gankit.train(bad)
    with pytest.raises(ConfigError, match="method.objective: unknown objective 'hinj'.*hinge"):
        gankit.train(p2p_config(tmp_path, "obj", steps=1, objective="hinj"))
    hinge = gankit.train(p2p_config(tmp_path, "hinge", steps=2, objective="hinge"))
    assert hinge.step == 2


def test_sampling_given_inputs_and_from_the_pool_of_training_inputs(tmp_path):
    run = gankit.train(p2p_config(tmp_path, "run", steps=3, pool=40))
    assert run.method.pool.shape == (40, 1, 16, 16) and run.method.pool.dtype == torch.uint8
    data = run.data.tensors()
    assert all(any(torch.equal(p, q) for q in data["input"]) for p in run.method.pool)   # training inputs
    first = data["input"][:6]
    loaded = gankit.load_run(run.path)
    assert torch.equal(loaded.method.pool, run.method.pool)                  # kept in the checkpoint
    inputs = first.float() / 127.5 - 1
    out = loaded.generate(6, seed=0, given={"input": inputs})
    assert set(out) == {"x", "input"} and out["x"].shape == (6, 1, 16, 16)
    torch.testing.assert_close(out["input"], first.float() / 255)
    again = loaded.generate(6, seed=5, given={"input": inputs})
    torch.testing.assert_close(again["x"], out["x"])                           # no noise at sampling
    drawn = loaded.generate(12, seed=1)                                         # no inputs: from the pool
    pool = loaded.method.pool.float() / 255
    assert all(any(torch.equal(d, p) for p in pool) for d in drawn["input"])
    with pytest.raises(ConfigError, match="'input' must have samples of shape \\(1, 16, 16\\)"):
        loaded.generate(2, given={"input": torch.zeros(2, 3, 16, 16)})
    with pytest.raises(ConfigError, match="takes input; it cannot be given 'y'"):
        loaded.generate(2, given={"y": 1})

    untrained = gankit.train(p2p_config(tmp_path, "zero", steps=1, pool=8))
    untrained.method.pool = untrained.method.pool[:0]
    with pytest.raises(ConfigError, match="no inputs to translate: give them"):
        untrained.generate(2, seed=0)


def test_low_resolution_inputs_are_brought_to_the_target_size(tmp_path):
    run = gankit.train(p2p_config(tmp_path, "sr", steps=2, pairs="lowres4"))
    assert run.info.fields["input"].shape == (1, 4, 4)
    out = run.generate(5, seed=0)
    assert out["x"].shape == (5, 1, 16, 16) and out["input"].shape == (5, 1, 4, 4)
    from gankit.viz import save_samples

    from PIL import Image
    path = save_samples({k: v * 2 - 1 for k, v in out.items()}, run.info, tmp_path / "sr.png", nrow=5)
    assert Image.open(path).size == (2 + 10 * 18, 2 + 18)          # input (enlarged) | output, 5 a row


def test_evaluation_translates_the_held_out_inputs(tmp_path):
    from gankit.metrics.evaluate import evaluate_run

    run = gankit.train(p2p_config(tmp_path, "run", steps=3))
    test = gankit.api.build_data(run.config, split="test")
    result = evaluate_run(run, metrics=["l1", "ssim"], n=len(test))
    outputs = run.generate(len(test), given={"input": test.tensors()["input"].float() / 127.5 - 1})["x"]
    expect = (outputs - test.x.float() / 255).abs().mean().item()
    assert result["l1"] == pytest.approx(expect, rel=1e-5)
    assert result["ssim"] == pytest.approx(paired.ssim(outputs, test.x.float() / 255).mean(), rel=1e-5)
    with pytest.raises(ConfigError, match="compares outputs with their targets"):
        from conftest import toy_config

        evaluate_run(gankit.train(toy_config(tmp_path / "toy", steps=1)), metrics=["l1"], n=10)


# ----------------------------------------------------------------------------------- metrics

def test_the_paired_metrics_agree_with_closed_forms_and_torchmetrics():
    tm = pytest.importorskip("torchmetrics.functional.image")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(6, 3, 32, 32, generator=g)
    b = (a + 0.1 * torch.randn(6, 3, 32, 32, generator=g)).clamp(0, 1)
    np.testing.assert_allclose(paired.l1_error(a, b), (a.double() - b.double()).abs().flatten(1).mean(1).numpy(), rtol=1e-12)
    ref = tm.peak_signal_noise_ratio(b.double(), a.double(), data_range=1.0, dim=(1, 2, 3), reduction="none")
    np.testing.assert_allclose(paired.psnr(b, a), ref.numpy(), rtol=1e-6)   # torchmetrics: float32 constants
    ref = tm.structural_similarity_index_measure(b.double(), a.double(), data_range=1.0, reduction="none")
    np.testing.assert_allclose(paired.ssim(b, a), ref.numpy(), rtol=1e-6)
    grey = torch.rand(3, 1, 28, 28, generator=g)
    ref = tm.structural_similarity_index_measure(grey.double(), (grey * 0.5).double(), data_range=1.0,
                                                 reduction="none")
    np.testing.assert_allclose(paired.ssim(grey, grey * 0.5), ref.numpy(), rtol=1e-6)
    # closed forms
    assert paired.ssim(a, a) == pytest.approx(np.ones(6))
    u, v = torch.full((1, 1, 16, 16), 0.2), torch.full((1, 1, 16, 16), 0.6)
    c1 = 0.01 ** 2
    assert paired.ssim(u, v)[0] == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1))
    assert paired.psnr(u, v)[0] == pytest.approx(-10 * np.log10(0.16))
    assert paired.psnr(u, u)[0] == paired.PSNR_CAP
    board = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    assert paired.gradient_energy(board[None, None].float())[0] == pytest.approx(1.0)   # every neighbour differs by 1
    blurred = torch.nn.functional.avg_pool2d(a, 3, 1, 1)
    assert paired.gradient_energy(blurred).mean() < 0.3 * paired.gradient_energy(a).mean()


# ----------------------------------------------------------------------------------- the command line

def _write_pngs(folder, images):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:02d}.png")
    return folder


def test_gankit_sample_translates_a_folder_of_the_users_pictures(tmp_path, capsys):
    from PIL import Image

    run = gankit.train(p2p_config(tmp_path, "run", steps=2))
    edges = run.data.tensors()["input"][:5, 0].numpy()
    folder = _write_pngs(tmp_path / "mine", edges)
    out = tmp_path / "translated.png"
    assert main(["sample", str(run.path), "--input", str(folder), "--out", str(out)]) == 0
    assert "5 samples" in capsys.readouterr().out
    # 5 inputs: 3 a row (square-ish), each as input | output: 6 tiles of 16 + 2 padding a row, 2 rows
    assert Image.open(out).size == (2 + 6 * 18, 2 + 2 * 18)
    npz = tmp_path / "translated.npz"
    assert main(["sample", str(run.path), "--input", str(folder), "--out", str(npz)]) == 0
    with np.load(npz) as f:
        assert f["x"].shape == (5, 1, 16, 16) and np.array_equal(f["input"][:, 0], edges)

    other_size = _write_pngs(tmp_path / "big", np.zeros((2, 20, 20), np.uint8))   # translated in tiles
    assert main(["sample", str(run.path), "--input", str(other_size), "--out", str(npz)]) == 0
    with np.load(npz) as f:
        assert f["x"].shape == (2, 1, 20, 20)
    colour = _write_pngs(tmp_path / "colour", np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3),
                                                                                dtype=np.uint8))
    assert main(["sample", str(run.path), "--input", str(colour), "--out", str(out)]) == 2
    assert "images of (3, 16, 16)" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- the notes' claim

@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="Fashion-MNIST is not installed at /usr/share/datasets/"
                    "fashion-mnist (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_edges_config_builds_on_the_real_data(tmp_path):
    cfg = gankit.api.make_config(str(Path(__file__).parent.parent / "configs" / "pix2pix_fashion_mnist_edges.yaml"),
                                 ["train.steps=2", "train.batch_size=16", f"out={tmp_path / 'run'}",
                                  "train.progress=none", "runtime.threads=1", "generator.width=8",
                                  "discriminator.width=8"])
    run = gankit.train(cfg)
    assert run.info.fields["input"].shape == (1, 28, 28)
    assert run.generate(4, seed=0)["x"].shape == (4, 1, 28, 28)
