"""StackGAN: conditioning augmentation and its KL term, the two stages' sizes, stage 2 built on
stage 1's picture, the sequential and joint schedules, the errors for bad settings, the
first stage's FID, and a short run that learns its classes."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.cli import main
from gankit.errors import ConfigError
from gankit.nets.stackgan import ConditioningAugmentation, kl_divergence


def _labelled_pictures(folder, side=16, n=400):
    """Two classes of grey side x side pictures: class 0 bright in the top half, class 1 in the
    bottom half (brightness and a little noise vary), as an .npz with labels."""
    path = folder / f"halves{side}.npz"
    if not path.exists():
        rng = np.random.default_rng(0)
        y = np.arange(n) % 2
        x = rng.integers(0, 40, size=(n, side, side)).astype(np.int64)
        bright = rng.integers(170, 256, size=n)
        for i in range(n):
            rows = slice(0, side // 2) if y[i] == 0 else slice(side // 2, side)
            x[i, rows] += bright[i] - 20
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=x.clip(0, 255).astype(np.uint8), y=y.astype(np.int64))
    return path


def stack_config(tmp_path, name, steps=4, side=16, **method):
    return {"method": {"name": "stackgan", **method},
            "data": {"name": "array", "path": str(_labelled_pictures(tmp_path / "data", side)), "test_fraction": 0.25},
            "generator": {"name": "auto", "width": 8, "z_dim": 8},
            "discriminator": {"name": "auto", "width": 8},
            "stage2_generator": {"name": "auto", "width": 8, "blocks": 1},
            "stage2_discriminator": {"name": "auto", "width": 8},
            "train": {"steps": steps, "batch_size": 32, "log_every": 2, "sample_every": 0, "checkpoint_every": 0,
                      "progress": "none", "seed": 1},
            "optim": {"beta1": 0.5},
            "runtime": {"threads": 1},
            "out": str(tmp_path / name)}


def test_the_kl_term_is_the_closed_form():
    torch.manual_seed(0)
    mu, logvar = torch.randn(6, 5), torch.randn(6, 5)
    normal = torch.distributions.Normal
    reference = torch.distributions.kl_divergence(normal(mu, (0.5 * logvar).exp()), normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(kl_divergence(mu, logvar), reference)
    # by hand: mean 1, variance 1 in each of 3 dimensions -> 3 * 1/2; mean 0, variance e -> 3 * (e - 2) / 2
    assert kl_divergence(torch.ones(2, 3), torch.zeros(2, 3)).item() == pytest.approx(1.5)
    assert kl_divergence(torch.zeros(1, 3), torch.ones(1, 3)).item() == pytest.approx(1.5 * (np.e - 2))
    assert kl_divergence(torch.zeros(4, 7), torch.zeros(4, 7)).item() == 0.0     # N(0, I) itself


def test_conditioning_augmentation_takes_any_embedding_and_reparameterises():
    torch.manual_seed(0)
    ca = ConditioningAugmentation(300, 16)          # e.g. a sentence embedding of 300 numbers
    e, eps = torch.randn(5, 300), torch.randn(5, 16)
    c, mu, logvar = ca(e, eps)
    assert c.shape == mu.shape == logvar.shape == (5, 16)
    torch.testing.assert_close(c, mu + (0.5 * logvar).exp() * eps)
    torch.testing.assert_close(ca(e, torch.zeros(5, 16))[0], mu)       # no noise: the mean
    c.sum().backward()                                                 # the sample carries gradients to the layer
    assert ca.fc.weight.grad is not None and ca.fc.weight.grad.abs().sum() > 0


def test_stage_one_is_half_the_size_and_stage_two_builds_on_it(tmp_path):
    run = gankit.train(stack_config(tmp_path, "sizes", steps=2, schedule="joint"))
    m = run.method
    out = run.generate(6, seed=0, given={"y": 1})
    assert out["stage1"].shape == (6, 1, 8, 8) and out["x"].shape == (6, 1, 16, 16)
    assert bool((out["y"] == 1).all())
    torch.testing.assert_close(run.generate(6, seed=0, given={"y": 1})["x"], out["x"])    # a seed, the same samples

    g2 = m.for_sampling("stage2_generator").eval()
    torch.manual_seed(0)
    s1 = torch.rand(4, 1, 8, 8) * 2 - 1
    e, eps = m.embed(torch.tensor([0, 1, 0, 1])), torch.randn(4, m.cond_dim)
    with torch.no_grad():
        x = g2(s1, e, eps)[0]
        other_picture = g2(s1.flip(2), e, eps)[0]         # stage 1's picture changes, nothing else
        other_class = g2(s1, m.embed(torch.tensor([1, 0, 1, 0])), eps)[0]
        again = g2(s1, e, eps)[0]
    assert torch.equal(x, again)
    assert (x - other_picture).abs().amax(dim=(1, 2, 3)).min() > 1e-4     # every sample follows its stage-1 picture
    assert (x - other_class).abs().amax(dim=(1, 2, 3)).min() > 1e-4       # ... and its condition

    path = tmp_path / "grid.png"                   # the picture: stage 2 with its stage-1 picture beside it
    assert main(["sample", str(run.path), "--label", "0,1", "--n", "3", "--out", str(path)]) == 0
    from PIL import Image

    width, height = Image.open(path).size
    assert width == 2 + 6 * (16 + 2) and height == 2 + 2 * (16 + 2)   # 3 samples a row, two tiles each


def _stage_tensors(method, stage):
    roles = ("generator", "discriminator") if stage == 1 else ("stage2_generator", "stage2_discriminator")
    out = {}
    for role in roles:
        for k, v in method.modules[role].state_dict().items():
            out[f"{role}.{k}"] = v.clone()
        if role in method.emas:
            for k, v in method.emas[role].state_dict().items():
                out[f"ema.{role}.{k}"] = v.clone()
    return out


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("schedule", ["sequential", "joint"])
def test_the_schedule_freezes_stage_one_after_the_switch_when_asked(tmp_path, schedule):
    cfg = stack_config(tmp_path, f"{schedule}_first", steps=3, schedule=schedule, stage2_start=3)
    cfg["train"]["ema_decay"] = 0.9
    first = gankit.train(cfg)
    m = first.method
    assert not m.optimizers["stage2_generator"].state and not m.optimizers["stage2_discriminator"].state  # waited
    before1, before2 = _stage_tensors(m, 1), _stage_tensors(m, 2)
    rows = [json.loads(r) for r in open(first.path / "metrics.jsonl").read().splitlines()]
    assert rows[-1]["g_loss2"] == 0.0 and rows[-1]["g_loss"] != 0.0

    resumed = gankit.resume(first.path, steps=6)
    after1, after2 = _stage_tensors(resumed.method, 1), _stage_tensors(resumed.method, 2)
    assert not _same(before2, after2)                          # stage 2 trains from the switch on
    assert _same(before1, after1) == (schedule == "sequential")   # stage 1 frozen only when sequential
    rows = [json.loads(r) for r in open(first.path / "metrics.jsonl").read().splitlines()]
    assert rows[-1]["g_loss2"] != 0.0 and (rows[-1]["g_loss"] == 0.0) == (schedule == "sequential")

    straight = gankit.train({**cfg, "train": {**cfg["train"], "steps": 6}, "out": str(tmp_path / f"{schedule}_all")})
    a, b = straight.method.state_dict(), resumed.method.state_dict()
    for role in a["modules"]:                                  # resuming across the switch changes nothing
        assert _same(a["modules"][role], b["modules"][role]) and _same(a["emas"].get(role, {}), b["emas"].get(role, {}))


@pytest.mark.parametrize("method, message", [
    ({"stage1_size": 5}, "does not divide"),
    ({"stage1_size": 16}, "times 2, 4"),
    ({"schedule": "sequential", "stage2_start": 0}, "freeze stage 1 before it trains"),
    ({"stage2_start": -1}, "must not be negative"),
    ({"kl_weight": -1.0}, "kl_weight must not be negative"),
    ({"cond_dim": 0}, "cond_dim must be at least 1"),
])
def test_bad_settings_are_clear_errors(tmp_path, method, message):
    with pytest.raises(ConfigError, match=message):
        gankit.train(stack_config(tmp_path, "bad", steps=1, **method))


def test_a_factor_of_three_and_wrong_data_are_refused(tmp_path, capsys):
    with pytest.raises(ConfigError, match="times 2, 4, 8"):
        gankit.train(stack_config(tmp_path, "three", steps=1, side=24, stage1_size=8))
    with pytest.raises(ConfigError, match="stage2_generator.name=auto"):
        cfg = stack_config(tmp_path, "unet", steps=1)
        cfg["stage2_generator"] = {"name": "unet"}
        gankit.train(cfg)
    cfg = stack_config(tmp_path, "refiner_elsewhere", steps=1)
    cfg["method"] = {"name": "gan"}
    cfg["generator"] = {"name": "refiner"}
    del cfg["stage2_generator"], cfg["stage2_discriminator"]
    with pytest.raises(ConfigError, match="stage 2 of method stackgan"):
        gankit.train(cfg)
    assert main(["train", "--method", "stackgan", "--data", "ring8", "--steps", "1",
                 "--out", str(tmp_path / "ring")]) == 2          # vectors: exit 2 with what to use
    assert "works on image data" in capsys.readouterr().err
    assert not (tmp_path / "ring").exists()


def test_fid_of_stage_one_compares_with_real_pictures_made_small(tmp_path):
    from gankit.metrics.evaluate import EvalSet, evaluate, get_extractor
    from gankit.metrics.fid import fid

    torch.manual_seed(0)
    real = torch.rand(120, 1, 16, 16)
    small = F.avg_pool2d(real, 2)
    pixels = get_extractor("pixels")
    same = EvalSet(real, real.flip(0), "image", pixels, outputs={"stage1": small.flip(0)})
    assert evaluate(same, ["fid_stage1"])["fid_stage1"] == pytest.approx(0.0, abs=1e-6)
    other = (small * 0.5).clamp(0, 1)
    s = EvalSet(real, real, "image", pixels, outputs={"stage1": other})
    up = lambda t: F.interpolate(t, size=(16, 16), mode="nearest").reshape(len(t), -1).double().numpy()  # noqa: E731
    assert evaluate(s, ["fid_stage1"])["fid_stage1"] == pytest.approx(fid(up(small), up(other)), rel=1e-9)
    assert fid(up(small), up(other)) > 1.0


def _obeys(run, n=200):
    """(the share of stage-2 samples whose brighter half is the one their class asks for, the same
    for stage 1)."""
    y = torch.arange(2).repeat(n // 2)
    out = run.generate(n, seed=0, given={"y": y})
    scores = []
    for name in ("x", "stage1"):
        h = out[name].shape[-2] // 2
        top, bottom = out[name][:, :, :h].mean((1, 2, 3)), out[name][:, :, h:].mean((1, 2, 3))
        scores.append(((top > bottom).long() == (1 - y)).double().mean().item())
    return scores


def test_a_short_run_learns_to_draw_its_classes_in_both_stages(tmp_path):
    configs = [stack_config(tmp_path, name, steps=steps, schedule="joint")
               for name, steps in (("start", 1), ("run", 250))]
    for cfg in configs:                     # stage 1's DCGAN at 8x8 is a single layer each way: a little wider
        cfg["generator"]["width"] = cfg["discriminator"]["width"] = 16
    start, run = map(gankit.train, configs)
    x0, s0 = _obeys(start)
    x1, s1 = _obeys(run)
    assert x1 > 0.9 and s1 > 0.9, (x1, s1)
    assert x1 > x0 + 0.3 and s1 > s0 + 0.3, (x0, s0, x1, s1)
