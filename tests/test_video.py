"""Next-frame prediction: moving_fashion's clips (the ambiguous turn is a fair coin the past
does not show; bouncing garments stay whole), the video metrics against closed forms, a
regressor that blends the two futures against a GAN that picks one, sharper, on both sides,
rollouts, and `gankit sample --input FRAMES` with its errors."""
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.data.video import LEFT, RIGHT, moving_fashion
from gankit.errors import ConfigError
from gankit.metrics import video as vm
from gankit.metrics.evaluate import evaluate_run

from test_data_images import FILES, write_idx

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")
CANVAS, SPRITE, STEP = 32, 16, 6


def _sprites(n, level, seed):
    """``n`` 28x28 garment stand-ins: a bright rectangle (all pixels at ``level``..``level + 40``)
    of random size in the middle, a darker stripe across it."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for img in x:
        h, w = rng.integers(12, 27, size=2)
        top, left = (28 - h) // 2, (28 - w) // 2
        img[top:top + h, left:left + w] = rng.integers(level, level + 41)
        img[top + h // 2, left:left + w] //= 2
    return x


@pytest.fixture(scope="module")
def garments(tmp_path_factory):
    """A Fashion-MNIST folder of IDX files holding stand-in garments: 60 training ones at
    brightness 200..240, 20 test ones at 100..140 (so a frame tells which split it came from)."""
    root = tmp_path_factory.mktemp("garments")
    for split, n, level in (("train", 60, 200), ("test", 20, 100)):
        write_idx(root / FILES[split][0], _sprites(n, level, seed=len(split)))
        write_idx(root / FILES[split][1], (np.arange(n) % 10).astype(np.uint8))
    return str(root)


def clips(root, **over):
    return moving_fashion(root=root, **{"image_size": CANVAS, "sprite_size": SPRITE, "step": STEP, **over})


def video_config(root, out, steps, **method):
    return {
        "method": {"name": "video", **method},
        "data": {"name": "moving_fashion", "root": root, "n_samples": 2000, "image_size": CANVAS,
                 "sprite_size": SPRITE, "step": STEP},
        "generator": {"name": "unet", "width": 8},
        "discriminator": {"name": "patchgan", "receptive_field": 16, "width": 8},
        "train": {"steps": steps, "batch_size": 32, "log_every": 25, "sample_every": 0, "checkpoint_every": 0,
                  "progress": "none", "seed": 2},
        "optim": {"lr_g": 2e-3, "lr_d": 4e-4},
        "runtime": {"threads": 1, "precision": "fp32"},
        "out": str(out),
    }


# ----------------------------------------------------------------------------------- the data

def test_the_turn_is_a_fair_coin_that_the_past_frames_do_not_show(garments):
    d = clips(garments, n_samples=2000)
    t = d.tensors()
    direction = t["direction"]
    assert d.fields()["direction"].classes == ("left", "right")
    assert 0.45 < float((direction == LEFT).double().mean()) < 0.55
    for label in range(10):            # the same for every garment: what moves does not decide the turn
        assert 0.3 < float((direction[d.y == label] == LEFT).double().mean()) < 0.7
    past, nxt = t["input"][:300], t["x"][:300]
    assert past.shape == (300, 3, CANVAS, CANVAS) and nxt.shape == (300, 1, CANVAS, CANVAS)
    # both futures continue the same past: the next frame is the last past frame moved STEP pixels
    # to the left or to the right, the other way being equally far
    last = past[:, -1]
    moved_left = torch.nn.functional.pad(last[:, :, STEP:], (0, STEP))
    moved_right = torch.nn.functional.pad(last[:, :, :-STEP], (STEP, 0))
    left = direction[:300] == LEFT
    assert torch.equal(nxt[left, 0], moved_left[left]) and torch.equal(nxt[~left, 0], moved_right[~left])
    # the past holds the same things for both futures: straight up, down or still along one column,
    # at speeds drawn alike before a left and before a right turn
    every = t["input"][:].double()
    rows = torch.arange(CANVAS, dtype=torch.float64)
    height = (every.sum(3) * rows).sum(2) / every.sum((2, 3))     # row of the centre of mass, per frame
    speed = (height[:, -1] - height[:, 0]).round().long()
    for side in (LEFT, RIGHT):
        chosen = every[:300][direction[:300] == side]
        cols = (chosen.sum(2) > 0).float()                     # which columns hold ink, per frame
        assert torch.equal(cols[:, 0], cols[:, -1])            # no sideways motion before the turn
    values = sorted(set(speed.tolist()))
    assert len(values) >= 5                                    # up, down and still, at several speeds
    share = {side: torch.tensor([float((speed[direction == side] == v).double().mean()) for v in values])
             for side in (LEFT, RIGHT)}
    assert float((share[LEFT] - share[RIGHT]).abs().max()) < 0.06
    # the rollout's future keeps going the chosen way
    fut = t["future"][:300, 0]
    assert torch.equal(fut[left], torch.nn.functional.pad(nxt[left, 0, :, STEP:], (0, STEP)))


def test_a_clip_is_a_function_of_seed_split_and_index_and_test_clips_move_test_garments(garments):
    small, large = clips(garments, n_samples=30), clips(garments, n_samples=500)
    for name in ("input", "x", "future", "direction", "y"):
        assert torch.equal(small.tensors()[name][:30], large.tensors()[name][:30]), name
    other = clips(garments, n_samples=30, seed=1)
    assert not torch.equal(other.tensors()["input"][:], small.tensors()["input"][:])
    idx = torch.tensor([7, 3, 29])
    assert torch.equal(small.x[idx], small.x[:][idx])             # lazy frames index like a tensor
    train_max = small.tensors()["input"][:].flatten(1).max(1).values
    test_max = clips(garments, n_samples=30, split="test").tensors()["input"][:].flatten(1).max(1).values
    assert bool((train_max >= 190).all()) and bool((test_max <= 150).all())


def test_bouncing_garments_stay_whole_and_move(garments):
    d = clips(garments, mode="bounce", n_samples=200, future=4)
    assert "direction" not in d.tensors()
    frames = torch.cat([d.tensors()["input"][:], d.x[:], d.tensors()["future"][:]], 1).double()   # (N, 8, H, W)
    ink = frames.sum((2, 3))
    torch.testing.assert_close(ink, ink[:, :1].expand_as(ink))     # the whole garment on every frame
    moved = (frames[:, 1:] != frames[:, :-1]).flatten(2).any(2)
    assert float(moved.double().mean()) > 0.9                      # and it moves (a bounce may land in place)
    clip = d.x.clips
    assert int(clip.top.min()) >= 0 and int(clip.left.max()) <= CANVAS - SPRITE
    two = clips(garments, mode="bounce", sprites=2, n_samples=20)
    assert two.x.shape == (20, 1, CANVAS, CANVAS) and two.x.clips.which.shape == (20, 2)


def test_bad_settings_say_what_to_change(garments):
    with pytest.raises(ConfigError, match="image_size=18 leaves no room"):
        clips(garments, image_size=18)
    with pytest.raises(ConfigError, match="sprites must be 1 or 2"):
        clips(garments, mode="bounce", sprites=3)
    with pytest.raises(ConfigError, match="use mode bounce for two"):
        clips(garments, sprites=2)
    with pytest.raises(ConfigError, match="frames must be at least 1"):
        clips(garments, frames=0)


# ----------------------------------------------------------------------------------- the metrics

def test_the_video_metrics_against_closed_forms():
    past = torch.zeros(2, 2, 1, 9)
    past[:, -1, 0, 4] = 1.0                                    # last seen at column 4
    assert vm.last_centre(past).tolist() == [4.0, 4.0]
    past[1, -1, 0, 6] = 3.0                                    # mass 1 at 4, 3 at 6: centre 5.5
    assert vm.last_centre(past)[1] == pytest.approx(5.5)
    frame = torch.zeros(3, 1, 1, 9)
    frame[0, 0, 0, 1] = 1.0                                    # all left of 4
    frame[1, 0, 0, [2, 6]] = 1.0                               # a symmetric blend
    frame[2, 0, 0, 4] = 2.0                                    # on the line: half each
    np.testing.assert_allclose(vm.left_share(frame, 4.0), [1.0, 0.5, 0.5])
    np.testing.assert_allclose(vm.left_share(frame[2:], 4.25), [0.75])   # a quarter of the pixel is right
    assert vm.left_share(torch.zeros(1, 1, 2, 2), 1.0).tolist() == [0.5]
    assert vm.choices(np.array([0.9, 0.75, 0.5, 0.2])).tolist() == [-1, -1, 0, 1]
    with pytest.raises(ValueError, match="threshold"):
        vm.choices(np.array([0.5]), threshold=0.5)
    # the Laplacian of a 0/1 checkerboard is -4 on its ones and +4 on its zeros: variance 16
    board = ((torch.arange(6)[:, None] + torch.arange(6)[None]) % 2).double()[None, None]
    assert vm.laplacian_variance(board)[0] == pytest.approx(16.0)
    assert vm.laplacian_variance(torch.ones(1, 1, 5, 5))[0] == 0.0
    ramp = torch.linspace(0, 1, 7).expand(1, 1, 7, 7)
    assert vm.laplacian_variance(ramp)[0] == pytest.approx(0.0, abs=1e-12)
    pred, true = torch.zeros(4, 3, 2, 2), torch.zeros(4, 3, 2, 2)
    true[:, 1] = 0.5
    true[:, 2] = 1.0
    np.testing.assert_allclose(vm.rollout_error(pred, true), [0.0, 0.5, 1.0])
    # a blend of the two futures against the futures themselves
    past = torch.zeros(2, 1, 4, 12)
    past[:, 0, :, 5:7] = 1.0                                   # centre 5.5
    left, right = torch.zeros(1, 1, 4, 12), torch.zeros(1, 1, 4, 12)
    left[..., 1:3], right[..., 8:10] = 1.0, 1.0
    truth = torch.cat([left, right])
    blend = ((left + right) / 2).expand(2, -1, -1, -1)
    r = vm.next_frame_report(blend, truth, past)
    assert r["next_neither"] == 1.0 and r["next_frame"] == pytest.approx(0.5)
    assert r["next_side_mass_real"] == pytest.approx(1.0)
    assert r["next_l1"] == pytest.approx(16 * 0.5 / 48)               # 8 + 8 pixels off by 1/2
    swapped = vm.next_frame_report(truth.flip(0), truth, past)
    assert (swapped["next_left"], swapped["next_right"], swapped["next_agree"]) == (0.5, 0.5, 0.0)
    assert swapped["next_sharpness"] == pytest.approx(1.0) and r["next_sharpness"] == pytest.approx(0.5)
    # two disjoint half-bright shapes: the squares of the Laplacian (whose mean is 0 for a shape away
    # from the border) add up to half of one whole shape's, as the gradient energy's do
    assert r["next_laplacian"] == pytest.approx(0.5)


# ----------------------------------------------------------------------------------- the notes' point

def test_a_regressor_blends_the_two_futures_and_a_gan_picks_one_sharply(garments, tmp_path):
    regressor = gankit.train(video_config(garments, tmp_path / "l2", 120, adv_weight=0.0, reconstruction="l2"))
    gan = gankit.train(video_config(garments, tmp_path / "gan", 300))
    r = evaluate_run(regressor, metrics=["next_frame"], n=300)
    g = evaluate_run(gan, metrics=["next_frame"], n=300)
    # the regressor learnt: its error is well below the untrained network's
    start = evaluate_run(gankit.train(video_config(garments, tmp_path / "start", 1, adv_weight=0.0,
                                                   reconstruction="l2")), metrics=["next_frame"], n=300)
    assert r["next_mse"] < 0.5 * start["next_mse"]
    # the regressor: mass on both sides (a blend), less detail than real frames
    assert r["next_frame"] < 0.65 and r["next_neither"] > 0.8 and r["next_side_mass_real"] > 0.9
    # the GAN: one garment on one side, sharper than the regressor, and both sides chosen
    assert g["next_frame"] > r["next_frame"] + 0.1
    assert g["next_sharpness"] > 1.3 * r["next_sharpness"]
    assert g["next_left"] > 0.1 and g["next_right"] > 0.1


# ----------------------------------------------------------------------------------- sampling and the CLI

def _write_pngs(folder, frames):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(frames):
        Image.fromarray(img).save(folder / f"{i:02d}.png")
    return folder


def test_sampling_rollouts_and_gankit_sample_with_past_frames(garments, tmp_path, capsys):
    from PIL import Image

    run = gankit.train(video_config(garments, tmp_path / "run", 3))
    past = run.data.tensors()["input"][:2]
    # without given frames the clips come from the pool, with the true next frame beside the prediction
    drawn = run.generate(4, seed=0)
    assert drawn["input"].shape == (4, 3, CANVAS, CANVAS) and drawn["next"].shape == (4, 1, CANVAS, CANVAS)
    # different noise, different frames; the same seed, the same frames
    model = past.float() / 127.5 - 1
    a, b = run.generate(2, seed=0, given={"input": model}), run.generate(2, seed=1, given={"input": model})
    assert "next" not in a and not torch.equal(a["x"], b["x"])
    torch.testing.assert_close(a["x"], run.generate(2, seed=0, given={"input": model})["x"])
    rolled = run.method.rollout(model, 4, generator=torch.Generator().manual_seed(0))
    assert rolled.shape == (2, 4, CANVAS, CANVAS) and float(rolled.abs().max()) <= 1.0
    with pytest.raises(ConfigError, match="predicts 32x32 frames"):
        run.generate(1, seed=0, given={"input": torch.zeros(1, 3, 16, 16)})

    frames = _write_pngs(tmp_path / "frames", past[0].numpy())            # three PNG frames, oldest first
    out = tmp_path / "next"
    assert main(["sample", str(run.path), "--input", str(frames), "--out", str(out)]) == 0
    assert "1 samples" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["0000.png"]
    assert Image.open(out / "0000.png").size == (CANVAS, CANVAS)
    strip = tmp_path / "strip.png"                                         # or one strip of them side by side
    Image.fromarray(np.concatenate(list(past[1].numpy()), 1)).save(strip)
    assert main(["sample", str(run.path), "--input", str(strip), "--out", str(tmp_path / "s"), "--frames", "3"]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["0000.png", "0001.png", "0002.png"]
    capsys.readouterr()

    rgb = _write_pngs(tmp_path / "rgb", np.repeat(past[0].numpy()[..., None], 3, -1))   # colour files, grey frames
    assert main(["sample", str(run.path), "--input", str(rgb), "--out", str(tmp_path / "r")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "r" / "0000.png")), np.asarray(Image.open(out / "0000.png")))
    # the run's sample picture: 64 clips, 8 a row, each as 3 past frames | prediction | true next frame
    picture = sorted((run.path / "samples").glob("step_*.png"))[-1]
    assert Image.open(picture).size == (2 + 8 * 5 * (CANVAS + 2), 2 + 8 * (CANVAS + 2))

    two = _write_pngs(tmp_path / "two", past[0, :2].numpy())
    assert main(["sample", str(run.path), "--input", str(two), "--out", str(out)]) == 2
    assert "2 frame(s), but this run predicts from 3 past frames" in capsys.readouterr().err
    small = _write_pngs(tmp_path / "small", np.zeros((3, 20, 20), np.uint8))
    assert main(["sample", str(run.path), "--input", str(small), "--out", str(out)]) == 2
    assert "pictures of 20x20 pixels, but this run predicts 32x32 frames" in capsys.readouterr().err
    assert main(["sample", str(run.path), "--out", str(out), "--frames", "2"]) == 2
    assert "give their past frames with --input" in capsys.readouterr().err


def test_the_method_refuses_what_it_cannot_use(garments, tmp_path):
    with pytest.raises(ConfigError, match="both 0"):
        gankit.train(video_config(garments, tmp_path / "a", 1, adv_weight=0.0, recon_weight=0.0))
    with pytest.raises(ConfigError, match="z_dim is 0"):
        gankit.train(video_config(garments, tmp_path / "b", 1, z_dim=0, diversity_weight=1.0))
    cfg = video_config(garments, tmp_path / "c", 1)
    cfg["data"] = {"name": "fashion_mnist", "root": garments}
    with pytest.raises(ConfigError, match="trains on a field 'input'"):
        gankit.train(cfg)
    assert not (tmp_path / "c").exists()


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="Fashion-MNIST is not installed at /usr/share/datasets/"
                    "fashion-mnist (apt-get install dataset-fashion-mnist)")
def test_the_real_garments_move_too():
    d = moving_fashion(n_samples=50, split="test")
    assert d.tensors()["input"].shape == (50, 3, 48, 48) and d.x.shape == (50, 1, 48, 48)
    assert 10 < int((d.tensors()["direction"] == LEFT).sum()) < 40


def test_only_fields_marked_as_frames_stand_as_frames():
    """A clip's past frames are marked in their Field (kept in checkpoints), and only marked fields are
    drawn as separate frames: a colour picture beside a grey sample stays one picture."""
    from gankit.data.base import Field
    from gankit.viz.grid import _frames_apart

    past = Field("image", (3, 8, 8), frames=3)
    assert Field.from_dict(past.to_dict()) == past and "frames" not in Field("image", (3, 8, 8)).to_dict()
    x = torch.zeros(2, 1, 8, 8)
    out = {"x": x, "input": torch.rand(2, 3, 8, 8), "colour": torch.rand(2, 3, 8, 8)}
    split, names = _frames_apart(out, x, {"x": Field("image", (1, 8, 8)), "input": past,
                                         "colour": Field("image", (3, 8, 8))})
    assert [k for k in split] == ["x", "input_1", "input_2", "input_3", "colour"]
    assert torch.equal(split["input_2"], out["input"][:, 1:2]) and torch.equal(split["colour"], out["colour"])
    assert {"input_1", "input_3", "colour"} <= names
