"""Pictures of any size through fully convolutional generators, and dropout at sampling time.

Tiles: cutting and stitching reproduce the identity and any pointwise map exactly (any size,
smaller than a tile, non-square tiles, outputs larger than their tiles); the blend weights
add up to one and pass linearly from one tile to the next, so tiles that disagree leave no
jump; a trained pix2pix and a trained srgan give, on a large picture, their untiled output
wherever a tile holds full weight away from its edges, srgan's twice as large; generators
with a dense layer, wrong channels and impossible tile settings are refused; `gankit sample`
tiles a folder of large pictures. Dropout: outputs for one input differ with it, are
identical without it, repeat with a seed, and a generator without dropout is refused."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gankit
from gankit.cli import main
from gankit.errors import ConfigError
from gankit.methods._tiles import Axis, TilePlan, cut, dense_part, ramp, stitch, tiled


# ----------------------------------------------------------------------------------- cut and stitch

@pytest.mark.parametrize("size,tile,overlap,multiple", [((50, 77), (16, 16), (4, 4), 1), ((50, 77), (16, 16), (4, 4), 8),
                                                        ((9, 13), (16, 16), (4, 4), 1), ((33, 40), (16, 20), (5, 3), 2),
                                                        ((40, 40), (16, 16), (0, 0), 1)])
def test_stitching_the_tiles_of_an_identity_or_pointwise_map_gives_it_back_exactly(size, tile, overlap, multiple):
    x = torch.rand(2, 3, *size, dtype=torch.float64)
    plan = TilePlan.plan(size, tile, overlap, multiple)
    if max(size) > max(tile):
        assert len(plan) > 1
    torch.testing.assert_close(tiled(lambda t: t, x, tile, overlap, multiple), x, rtol=0, atol=1e-12)
    f = lambda t: torch.tanh(3 * t - 1) * t      # noqa: E731 - pointwise
    torch.testing.assert_close(tiled(f, x, tile, overlap, multiple), f(x), rtol=0, atol=1e-12)
    # an output twice the tile (srgan's x2) is stitched at its own scale
    up = lambda t: t.repeat_interleave(2, -1).repeat_interleave(2, -2)   # noqa: E731
    torch.testing.assert_close(tiled(up, x, tile, overlap, multiple), up(x), rtol=0, atol=1e-12)


def test_the_plan_covers_the_picture_with_aligned_tiles_and_the_ramps_add_up_to_one():
    a = Axis.plan(50, 16, 4)
    assert a.starts == (0, 12, 24, 36) and a.padded == 52 >= 50       # stride 12, padded to 16 + 3 * 12
    b = Axis.plan(50, 16, 3, multiple=4)                                 # stride 13 rounded down to 12
    assert b.starts == (0, 12, 24, 36) and b.overlap == 4
    assert Axis.plan(10, 16, 4).starts == (0,)                          # smaller than a tile: one padded tile
    total = torch.zeros(a.padded, dtype=torch.float64)
    for k, s in enumerate(a.starts):
        total[s:s + a.tile] += ramp(a, k, torch.float64)
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-15)
    # in an overlap the weights are (o - j - 1/2) / o and (j + 1/2) / o
    torch.testing.assert_close(ramp(a, 1, torch.float64)[:4], (torch.arange(4, dtype=torch.float64) + 0.5) / 4)
    assert torch.equal(ramp(a, 0)[:12], torch.ones(12)) and torch.equal(ramp(a, 3)[4:], torch.ones(12))
    for bad in [(16, 16), (16, -1)]:
        with pytest.raises(ConfigError, match="overlap must be at least 0 and below the tile size"):
            Axis.plan(50, *bad)
    with pytest.raises(ConfigError, match="tile size must be at least 1"):
        Axis.plan(50, 0, 0)


def test_tiles_that_disagree_are_blended_without_a_jump_at_their_borders():
    torch.manual_seed(0)
    size, tile, overlap = (40, 64), (16, 16), (4, 4)
    plan = TilePlan.plan(size, tile, overlap)
    offsets = torch.rand(64, dtype=torch.float64) * 2 - 1       # each tile's output off by its own constant

    def disagreeing(tiles):                                      # one picture: tile t is row t
        return tiles + offsets[:len(tiles), None, None, None]

    x = torch.zeros(1, 1, *size, dtype=torch.float64)
    blended = tiled(disagreeing, x, tile, overlap)[0, 0]
    hard = tiled(disagreeing, x, tile, (0, 0))[0, 0]
    worst = float(offsets[:len(plan)].max() - offsets[:len(plan)].min())
    step = max(float(blended.diff(dim=0).abs().max()), float(blended.diff(dim=1).abs().max()))
    hard_step = max(float(hard.diff(dim=0).abs().max()), float(hard.diff(dim=1).abs().max()))
    assert step <= worst / overlap[0] + 1e-9                    # at most d / o per pixel
    assert hard_step > 3 * step                                  # without an overlap: the seams jump
    # across the first vertical overlap (columns 12..15) of the top row, linear from tile 0 to tile 1
    row = blended[0, 10:18]
    j = torch.arange(4, dtype=torch.float64)
    want = offsets[0] + (offsets[1] - offsets[0]) * (j + 0.5) / 4
    torch.testing.assert_close(row[2:6], want.to(row.dtype), rtol=0, atol=1e-6)
    assert float(row[0]) == pytest.approx(float(offsets[0])) and float(row[7]) == pytest.approx(float(offsets[1]))
    # cut and stitch are each other's inverse on the tiles themselves
    tiles = cut(x + torch.rand_like(x), plan)
    assert tiles.shape == (len(plan), 1, 16, 16)
    with pytest.raises(ValueError):
        stitch(tiles[:-1], plan)


def test_a_network_with_a_dense_layer_is_not_fully_convolutional():
    conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                         nn.PixelShuffle(2), nn.ReflectionPad2d(1), nn.Tanh())
    assert dense_part(conv) is None
    dense = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 14 * 14, 256), nn.Unflatten(1, (1, 16, 16)))
    assert dense_part(dense) == "1 (Flatten)"

    class Learned(nn.Module):     # a parameter of its own outside any known layer: unknown, so not tiled
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1, 1, 16, 16))
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            return self.conv(x) * self.scale

    assert dense_part(Learned()) == "the network (Learned)"


# ----------------------------------------------------------------------------------- trained models

def rectangles(path, n=200, size=16, seed=0):
    rng = np.random.default_rng(seed)
    x = np.full((n, size, size), 10, np.uint8)
    for img in x:
        top, left = rng.integers(0, size // 2, size=2)
        h, w = rng.integers(size // 4, size // 2 + 1, size=2)
        img[top:top + h, left:left + w] = rng.integers(160, 256)
    np.savez(path, x=x)
    return path


def config(tmp_path, name, method="pix2pix", pairs="edges", generator=None, steps=8):
    generator = generator or {"name": "unet", "width": 8, "depth": 1}
    disc = {"name": "patchgan", "receptive_field": 16, "width": 8} if method == "pix2pix" else \
        {"name": "srgan", "width": 8, "dense": 16}
    return {
        "method": {"name": method, **({"perceptual_weight": 0.0} if method == "srgan" else {})},
        "data": {"name": "array", "path": str(rectangles(tmp_path / "rect.npz")), "test_fraction": 0.25,
                 "pairs": pairs},
        "generator": generator, "discriminator": disc,
        "train": {"steps": steps, "batch_size": 16, "log_every": 4, "sample_every": 0, "checkpoint_every": 0,
                  "progress": "none", "seed": 1},
        "optim": {"lr_g": 2e-3, "lr_d": 2e-4},
        "runtime": {"threads": 1, "precision": "fp32"},
        "out": str(tmp_path / name),
    }


def big_picture(h, w, seed=0):
    """A grey picture in [-1, 1] with rectangles and texture, larger than the training size."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((1, 1, h, w), -0.9)
    for _ in range(8):
        top, left = int(torch.randint(0, h - 4, (1,), generator=g)), int(torch.randint(0, w - 4, (1,), generator=g))
        x[..., top:top + 8, left:left + 10] = float(torch.rand(1, generator=g)) * 2 - 1
    return (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def full_weight_zone(plan: TilePlan, margin: int) -> torch.Tensor:
    """Pixels where one tile holds full weight and lies at least ``margin`` from that tile's
    edges inside the picture (its edges on the picture's border count as the picture's own)."""
    def axis(a: Axis):
        keep = torch.zeros(a.size, dtype=torch.bool)
        for k, s in enumerate(a.starts):
            lo = s if k == 0 else s + max(a.overlap, margin)
            hi = s + a.tile - (max(a.overlap, margin) if k < len(a.starts) - 1 else margin)
            keep[lo:min(hi, a.size - margin)] = True
        return keep
    return axis(plan.rows)[:, None] & axis(plan.cols)[None, :]


def test_a_trained_pix2pix_tiles_a_large_picture_into_its_untiled_output_away_from_the_seams(tmp_path):
    run = gankit.train(config(tmp_path, "p2p"))
    loaded = gankit.load_run(run.path)
    big = big_picture(44, 68)
    out = loaded.generate(1, given={"input": big})
    assert out["x"].shape == (1, 1, 44, 68)
    torch.testing.assert_close(out["input"], (big + 1) / 2)          # the input, stitched, is the input
    G = loaded.method.for_sampling()
    with torch.no_grad():
        whole = (G(big) + 1) / 2                                       # the fully convolutional net on it all
    # the unet of depth 1 sees 3 pixels around each output pixel; tiles of 16 every 12 (multiple 2)
    plan = TilePlan.plan((44, 68), (16, 16), (4, 4), multiple=2)
    zone = full_weight_zone(plan, margin=4)
    assert int(zone.sum()) > 500
    torch.testing.assert_close(out["x"][0, 0][zone], whole[0, 0][zone], rtol=0, atol=1e-5)
    assert float((out["x"] - whole).abs().max()) > 1e-3                 # the tiles were really cut
    # a smaller picture is padded to one tile and cropped back; a tile size may be set
    small = loaded.generate(1, given={"input": big[..., :10, :12]})["x"]
    assert small.shape == (1, 1, 10, 12)
    again = loaded.generate(1, given={"input": big}, tile=24, overlap=8)["x"]
    assert again.shape == (1, 1, 44, 68)
    zone24 = full_weight_zone(TilePlan.plan((44, 68), (24, 24), (8, 8), multiple=2), margin=8)
    torch.testing.assert_close(again[0, 0][zone24], whole[0, 0][zone24], rtol=0, atol=1e-5)


def test_srgan_tiles_come_back_enlarged_by_its_factor(tmp_path):
    run = gankit.train(config(tmp_path, "sr", method="srgan", pairs="lowres2",
                              generator={"name": "srresnet", "width": 8, "blocks": 1}, steps=4))
    loaded = gankit.load_run(run.path)
    low = big_picture(30, 52)
    out = loaded.generate(1, given={"input": low}, tile=32, overlap=12)
    assert out["x"].shape == (1, 1, 60, 104) and out["input"].shape == (1, 1, 30, 52)
    with torch.no_grad():
        whole = (loaded.method.for_sampling()(low) + 1) / 2
    # SRResNet with one block sees 10 low-resolution pixels around each output pixel
    zone = full_weight_zone(TilePlan.plan((30, 52), (32, 32), (12, 12)).scaled(2), margin=22)
    assert int(zone.sum()) > 100
    torch.testing.assert_close(out["x"][0, 0][zone], whole[0, 0][zone], rtol=0, atol=1e-5)
    # a pointwise "enlarger" in its place: the stitched output is the enlarged picture exactly
    class Enlarge(nn.Module):          # no layers to inspect: it says itself that it is fully convolutional
        z_dim, fully_convolutional = 0, True

        def forward(self, c):
            return F.interpolate(c, scale_factor=2, mode="nearest")

    loaded.method.modules["generator"] = Enlarge()
    loaded.method.emas.pop("generator", None)
    exact = loaded.generate(1, given={"input": low})["x"]                 # default tiles: 8 pixels, overlap 2
    torch.testing.assert_close(exact, (F.interpolate(low, scale_factor=2, mode="nearest") + 1) / 2,
                               rtol=0, atol=1e-6)


def test_generators_that_are_not_fully_convolutional_and_bad_settings_are_refused(tmp_path):
    run = gankit.load_run(gankit.train(config(tmp_path, "p2p", steps=1)).path)
    big = big_picture(24, 40)
    with pytest.raises(ConfigError, match="'input' must have samples of shape \\(1, 16, 16\\)") as err:
        run.generate(1, given={"input": torch.zeros(1, 3, 24, 40)})
    with pytest.raises(ConfigError, match="overlap must be at least 0 and below the tile size"):
        run.generate(1, given={"input": big}, overlap=16)
    with pytest.raises(ConfigError, match="tile takes a whole number of pixels"):
        run.generate(1, given={"input": big}, tile=12.5)
    dense = nn.Sequential(nn.Flatten(), nn.Linear(256, 256), nn.Tanh(), nn.Unflatten(1, (1, 16, 16)))
    dense.z_dim = 0
    run.method.modules["generator"] = dense
    run.method.emas.pop("generator", None)
    assert run.generate(2, given={"input": torch.zeros(2, 1, 16, 16)})["x"].shape == (2, 1, 16, 16)  # its own size
    with pytest.raises(ConfigError) as err:
        run.generate(1, given={"input": big})
    msg = str(err.value)
    assert "'input' must have samples of shape (1, 16, 16), got (1, 24, 40)" in msg
    assert "not fully convolutional (0 (Flatten))" in msg and "resize them to 16x16" in msg


def test_gankit_sample_tiles_a_folder_of_large_pictures_and_repeats_with_dropout(tmp_path, capsys):
    from PIL import Image

    run = gankit.train(config(tmp_path, "p2p", generator={"name": "unet", "width": 8, "depth": 2}, steps=2))
    folder = tmp_path / "large"
    folder.mkdir()
    pictures = (big_picture(40, 56, seed=3)[0, 0].add(1).mul(127.5).round().byte().numpy(),
                big_picture(40, 56, seed=4)[0, 0].add(1).mul(127.5).round().byte().numpy())
    for i, a in enumerate(pictures):
        Image.fromarray(a).save(folder / f"{i}.png")
    out = tmp_path / "out.npz"
    assert main(["sample", str(run.path), "--input", str(folder), "--out", str(out), "--tile", "16",
                 "--overlap", "4"]) == 0
    with np.load(out) as f:
        assert f["x"].shape == (2, 1, 40, 56) and np.array_equal(f["input"][:, 0], np.stack(pictures))
    assert main(["sample", str(run.path), "--input", str(folder), "--out", str(out), "--dropout",
                 "--repeat", "3"]) == 0
    with np.load(out) as f:
        x = f["x"].astype(int)
    assert x.shape == (6, 1, 40, 56)
    assert all(not np.array_equal(x[i], x[j]) for i, j in [(0, 1), (1, 2), (3, 4)])   # three outputs each
    assert main(["sample", str(run.path), "--input", str(folder), "--out", str(out), "--repeat", "2"]) == 0
    with np.load(out) as f:
        assert np.array_equal(f["x"][0], f["x"][1])                  # without dropout: one output per input
    capsys.readouterr()
    assert main(["sample", str(run.path), "--input", str(folder), "--out", str(out), "--repeat", "0"]) == 2
    assert "--repeat must be at least 1" in capsys.readouterr().err
    assert main(["sample", str(run.path), "--out", str(out), "--tile", "16"]) == 2
    assert "--tile and --overlap cut the --input pictures" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- dropout

def test_dropout_at_sampling_time_makes_outputs_differ_and_the_default_is_deterministic(tmp_path):
    run = gankit.load_run(gankit.train(config(tmp_path, "p2p", generator={"name": "unet", "width": 8, "depth": 3},
                                              steps=4)).path)
    c = big_picture(16, 16).expand(4, -1, -1, -1)                     # one input, four times
    plain = run.sample(4, seed=0, given={"input": c})
    assert all(torch.equal(plain[0], plain[i]) for i in range(1, 4))
    assert torch.equal(run.sample(4, seed=7, given={"input": c}), plain)
    state = torch.random.get_rng_state()
    noisy = run.sample(4, seed=0, given={"input": c}, dropout=True)
    assert torch.equal(torch.random.get_rng_state(), state)           # a seed leaves the global state alone
    assert all(float((noisy[i] - noisy[j]).abs().max()) > 1e-3 for i in range(4) for j in range(i))
    assert torch.equal(run.sample(4, seed=0, given={"input": c}, dropout=True), noisy)   # the seed repeats them
    assert not torch.equal(run.sample(4, seed=1, given={"input": c}, dropout=True), noisy)
    assert all(not m.training for m in run.method.for_sampling().modules())    # eval mode again afterwards
    # dropout and tiles together
    tiled_noisy = run.sample(2, seed=0, given={"input": big_picture(24, 40).expand(2, -1, -1, -1)}, dropout=True)
    assert tiled_noisy.shape == (2, 1, 24, 40) and not torch.equal(tiled_noisy[0], tiled_noisy[1])

    without = gankit.train(config(tmp_path, "nodrop", generator={"name": "unet", "width": 8, "depth": 3,
                                                                 "dropout": 0.0}, steps=1))
    with pytest.raises(ConfigError, match="generator generator \\(unet\\) has no dropout layers"):
        without.sample(2, seed=0, given={"input": c[:2]}, dropout=True)


def test_inpaint_and_cyclegan_translate_large_pictures_in_tiles(tmp_path):
    from gankit.data.pairs import MASK_FILL

    data = str(rectangles(tmp_path / "rect.npz"))
    common = {"train": {"steps": 1, "batch_size": 16, "log_every": 1, "sample_every": 0, "checkpoint_every": 0,
                        "progress": "none", "seed": 1},
              "runtime": {"threads": 1, "precision": "fp32"}}
    completion = gankit.train({
        "method": {"name": "inpaint"}, "data": {"name": "array", "path": data, "pairs": "mask"},
        "generator": {"name": "auto", "width": 4}, "discriminator": {"name": "auto", "width": 4},
        "local_discriminator": {"name": "auto", "width": 4}, **common, "out": str(tmp_path / "inpaint")})
    picture = big_picture(40, 56)
    inside = torch.zeros(1, 1, 40, 56, dtype=torch.bool)
    inside[..., 12:22, 18:34] = True
    holed = torch.where(inside, torch.tensor(MASK_FILL / 127.5 - 1), picture)
    out = completion.generate(1, given={"input": holed, "mask": inside.float() * 2 - 1})
    assert out["x"].shape == (1, 1, 40, 56)
    torch.testing.assert_close(out["x"][~inside], ((holed + 1) / 2)[~inside], rtol=0, atol=1e-6)  # known pixels kept
    torch.testing.assert_close(out["mask"], inside.float())
    assert float((out["x"][inside] - (MASK_FILL / 255)).abs().max()) > 1e-3                      # the hole filled

    inverted = tmp_path / "inverted.npz"
    with np.load(data) as f:
        np.savez(inverted, x=255 - f["x"])
    g = {"name": "resnet", "width": 4, "blocks": 1}
    d = {"name": "patchgan", "width": 4, "receptive_field": 16, "norm": "instance"}
    translation = gankit.train({
        "method": {"name": "cyclegan"}, "data": {"name": "array", "path": data},
        "data_b": {"name": "array", "path": str(inverted)}, "generator": g, "generator_ba": g,
        "discriminator": d, "discriminator_a": d, **common, "out": str(tmp_path / "cyclegan")})
    there = translation.generate(1, given={"input": picture})
    back = translation.generate(1, given={"input_b": picture})
    assert there["x"].shape == there["reconstruction"].shape == back["x"].shape == (1, 1, 40, 56)
    torch.testing.assert_close(there["input"], (picture + 1) / 2)
