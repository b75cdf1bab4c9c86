"""Feature extractors: the shipped Fashion-MNIST classifier, input handling, weights errors,
the Inception loader (with a randomly initialised network), pixels and wrapped modules."""
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gankit.errors import ConfigError, DataError, GankitError
from gankit.metrics import features as feat
from gankit.metrics.classifier import SmallCNN, sha256_file
from gankit.metrics.features import (ExtractorError, NoClassifierError, WeightsError, from_module, get_extractor)
from gankit.registries import FEATURES

HAS_PYTORCH_FID = importlib.util.find_spec("pytorch_fid") is not None
needs_pytorch_fid = pytest.mark.skipif(not HAS_PYTORCH_FID, reason="pytorch-fid is not installed: "
                                       "pip install --no-deps pytorch-fid")


@pytest.fixture(scope="module")
def fm_test():
    """The first 2,000 Fashion-MNIST test images (uint8 (N, 1, 28, 28)) and labels."""
    from gankit.data.images import fashion_mnist

    try:
        ds = fashion_mnist(split="test")
    except DataError as exc:
        pytest.skip(f"Fashion-MNIST is not available (apt-get install dataset-fashion-mnist): {exc}")
    return ds.x[:2000], ds.y[:2000].numpy()


@pytest.fixture(scope="module")
def fm():
    return get_extractor("fashion_mnist", device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")     # tiny networks: one thread


def rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12))


# --------------------------------------------------------------------------- the shipped classifier

def test_registered_names():
    for name in ("fashion_mnist", "mnist", "inception", "pixels"):
        assert name in FEATURES


def test_shipped_weights_checksum_and_size():
    path = feat.FASHION_MNIST_WEIGHTS
    assert path.is_file(), path
    assert path.stat().st_size < 2 * 1024 * 1024
    assert len(feat.FASHION_MNIST_SHA256) == 64
    assert sha256_file(path) == feat.FASHION_MNIST_SHA256
    ext = feat.fashion_mnist(device="cpu")
    assert ext.checksum == feat.FASHION_MNIST_SHA256
    assert (ext.name, ext.dim, ext.num_classes) == ("fashion_mnist", 128, 10)


def test_shipped_classifier_accuracy(fm, fm_test):
    x, y = fm_test
    acc = float((fm.classify(x) == y).mean())
    assert acc >= 0.90, acc


def test_features_logits_shapes_and_dtypes(fm, fm_test):
    x = fm_test[0][:50]
    f = fm.features(x)
    assert f.shape == (50, 128) and f.dtype == np.float64
    assert np.isfinite(f).all() and (f >= 0).all() and f.std() > 0   # after a ReLU, not constant
    z = fm.logits(x)
    assert z.shape == (50, 10) and z.dtype == np.float64
    p = fm.probs(x)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=0, atol=1e-12)
    labels = fm.classify(x)
    assert labels.dtype == np.int64 and labels.shape == (50,)
    np.testing.assert_array_equal(labels, z.argmax(1))
    f2, z2 = fm.features_and_logits(x, batch_size=16)
    assert rel_err(f, f2) <= 1e-6 and rel_err(z, z2) <= 1e-6
    assert fm.features(x[:0]).shape == (0, 128)


def test_batch_size_invariance(fm, fm_test):
    x = fm_test[0][:300]
    assert rel_err(fm.features(x, batch_size=256), fm.features(x, batch_size=7)) <= 1e-6
    assert rel_err(fm.logits(x, batch_size=256), fm.logits(x, batch_size=7)) <= 1e-6


def test_uint8_and_float_inputs_agree(fm, fm_test):
    x = fm_test[0][:64]
    ref = fm.features(x)
    as_float = x.float() / 255.0
    before = as_float.clone()
    assert rel_err(ref, fm.features(as_float)) <= 1e-6
    torch.testing.assert_close(as_float, before)                    # the input is not modified
    assert rel_err(ref, fm.features(x.numpy())) <= 1e-6              # NumPy uint8
    assert rel_err(ref, fm.features(x.numpy() / 255.0)) <= 1e-6      # NumPy float64
    assert rel_err(ref, fm.features(x[:, 0])) <= 1e-6                # (N, H, W) grey


def test_channel_and_size_conversion(fm, fm_test):
    x, y = fm_test[0][:200], fm_test[1][:200]
    grey32 = F.interpolate(x.float() / 255.0, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    rgb32 = grey32.repeat(1, 3, 1, 1)
    f = fm.features(rgb32)
    assert f.shape == (200, 128)
    assert rel_err(fm.features(grey32), f) <= 1e-6                  # RGB -> grey by the channel mean
    tinted = rgb32 * torch.tensor([0.9, 1.0, 1.1]).view(1, 3, 1, 1)
    assert rel_err(fm.features(tinted.clamp(0, 1)), fm.features(tinted.clamp(0, 1).mean(1, keepdim=True))) <= 1e-6
    acc = float((fm.classify(rgb32) == y).mean())                   # resized back to 28x28, still recognised
    assert acc >= 0.8, acc


def test_bad_inputs_give_clear_errors(fm):
    with pytest.raises(ExtractorError, match=r"\(x \+ 1\) / 2"):
        fm.features(torch.rand(4, 1, 28, 28) * 2 - 1)
    with pytest.raises(ExtractorError, match="alpha"):
        fm.features(torch.rand(4, 4, 28, 28))
    with pytest.raises(ExtractorError, match=r"\(N, C, H, W\)"):
        fm.features(torch.rand(28, 28))
    with pytest.raises(ExtractorError, match="NaN"):
        fm.features(torch.full((2, 1, 28, 28), float("nan")))
    with pytest.raises(ConfigError, match="batch_size"):
        fm.features(torch.rand(2, 1, 28, 28), batch_size=0)


# --------------------------------------------------------------------------- weights files

def test_damaged_shipped_weights(tmp_path, monkeypatch):
    damaged = tmp_path / "fashion_mnist_classifier.pt"
    data = feat.FASHION_MNIST_WEIGHTS.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(feat, "FASHION_MNIST_WEIGHTS", damaged)
    with pytest.raises(WeightsError) as info:
        feat.fashion_mnist(device="cpu")
    msg = str(info.value)
    assert str(damaged) in msg and "sha256" in msg and feat.FASHION_MNIST_SHA256 in msg
    assert "scripts/train_classifier.py --data fashion_mnist" in msg
    assert isinstance(info.value, GankitError)

    monkeypatch.setattr(feat, "FASHION_MNIST_WEIGHTS", tmp_path / "absent.pt")
    with pytest.raises(WeightsError, match="absent.pt does not exist.*train_classifier.py"):
        feat.fashion_mnist(device="cpu")


def test_damaged_weights_given_as_parameter(tmp_path):
    damaged = tmp_path / "cut.pt"
    data = feat.FASHION_MNIST_WEIGHTS.read_bytes()
    damaged.write_bytes(data[:1000])
    with pytest.raises(WeightsError, match=r"cannot read the weights file .*cut\.pt.*damaged or incomplete"):
        feat.fashion_mnist(weights=str(damaged), device="cpu")
    with pytest.raises(WeightsError, match="no such file"):
        feat.fashion_mnist(weights=str(tmp_path / "nothing.pt"), device="cpu")
    wrong = tmp_path / "wrong.pt"
    torch.save(nn.Linear(3, 2).state_dict(), wrong)
    with pytest.raises(WeightsError, match="does not hold gankit SmallCNN classifier weights"):
        feat.fashion_mnist(weights=str(wrong), device="cpu")


def test_mnist_weights_missing_message(tmp_path, monkeypatch):
    monkeypatch.delenv(feat.MNIST_ENV, raising=False)
    monkeypatch.setattr(feat, "MNIST_WEIGHTS", tmp_path / "mnist_classifier.pt")
    with pytest.raises(WeightsError) as info:
        feat.mnist(device="cpu")
    msg = str(info.value)
    for part in ("python scripts/train_classifier.py --data mnist --root DIR --out PATH", "--features mnist",
                 "GANKIT_MNIST_WEIGHTS=PATH", "weights=PATH", "t10k-images-idx3-ubyte", str(tmp_path)):
        assert part in msg, part
    monkeypatch.setenv(feat.MNIST_ENV, str(tmp_path / "elsewhere.pt"))
    with pytest.raises(WeightsError, match=r"\$GANKIT_MNIST_WEIGHTS=.*elsewhere\.pt: no such file"):
        feat.mnist(device="cpu")


def test_mnist_weights_from_parameter_and_env(tmp_path, monkeypatch):
    torch.manual_seed(0)
    path = tmp_path / "mine.pt"
    torch.save(SmallCNN().state_dict(), path)
    ext = feat.mnist(weights=str(path), device="cpu")
    assert (ext.name, ext.dim, ext.checksum) == ("mnist", 128, sha256_file(path))
    monkeypatch.setenv(feat.MNIST_ENV, str(path))
    assert feat.mnist(device="cpu").checksum == ext.checksum
    assert ext.features(torch.rand(3, 1, 28, 28)).shape == (3, 128)


# --------------------------------------------------------------------------- inception

@needs_pytorch_fid
def test_inception_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.delenv(feat.INCEPTION_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsError) as info:
        feat.inception(device="cpu")
    msg = str(info.value)
    assert feat.INCEPTION_FILE in msg and "GANKIT_INCEPTION_WEIGHTS" in msg and "weights=PATH" in msg
    assert str(tmp_path / "hub" / "checkpoints" / feat.INCEPTION_FILE) in msg
    with pytest.raises(WeightsError, match=r"features\.weights=.*nope\.pth: no such file"):
        feat.inception(weights=str(tmp_path / "nope.pth"), device="cpu")
    monkeypatch.setenv(feat.INCEPTION_ENV, str(tmp_path / "env.pth"))
    with pytest.raises(WeightsError, match=r"\$GANKIT_INCEPTION_WEIGHTS=.*env\.pth: no such file"):
        feat.inception(device="cpu")
    wrong = tmp_path / "wrong.pth"
    torch.save(SmallCNN().state_dict(), wrong)
    with pytest.raises(WeightsError, match="does not hold the weights of the FID Inception network"):
        feat.inception(weights=str(wrong), device="cpu")
    wrong.write_bytes(wrong.read_bytes()[:100])
    with pytest.raises(WeightsError, match="damaged or incomplete"):
        feat.inception(weights=str(wrong), device="cpu")


def test_inception_without_pytorch_fid(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch_fid", None)     # makes `import pytorch_fid` fail
    monkeypatch.setitem(sys.modules, "pytorch_fid.inception", None)
    with pytest.raises(ExtractorError, match="pip install --no-deps pytorch-fid"):
        feat.inception(device="cpu")


@pytest.fixture
def random_fid_inception(monkeypatch):
    """pytorch-fid's FID Inception network with random weights (its load step skipped)."""
    import torchvision
    from pytorch_fid import inception as pfi

    torch.manual_seed(0)
    with monkeypatch.context() as m:
        m.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: None)
        m.setattr(torchvision.models.inception.Inception3, "load_state_dict", lambda self, *a, **k: None)
        net = pfi.fid_inception_v3()
    gen = torch.Generator().manual_seed(1)
    for module in net.modules():
        if isinstance(module, nn.Conv2d):   # scale-preserving, so that the pool features depend on the input
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=gen)
        if isinstance(module, nn.BatchNorm2d):   # non-trivial statistics, so that buffers are checked too
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
    return net.eval()


@needs_pytorch_fid
def test_inception_loads_local_weights(tmp_path, monkeypatch, random_fid_inception):
    from pytorch_fid import inception as pfi

    net = random_fid_inception
    path = tmp_path / "random_inception.pth"
    torch.save(net.state_dict(), path)
    ext = feat.inception(weights=str(path), device="cpu")
    assert (ext.dim, ext.num_classes, ext.checksum) == (2048, 1008, sha256_file(path))
    assert pfi.load_state_dict_from_url is not None and pfi.load_state_dict_from_url.__name__ != "local_file"

    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    f, z = ext.features_and_logits(x)
    assert f.shape == (2, 2048) and z.shape == (2, 1008) and f.dtype == z.dtype == np.float64

    # the reference: pytorch-fid's own InceptionV3 wrapper around the same random network
    monkeypatch.setattr(pfi, "fid_inception_v3", lambda: net)
    ref_model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    with torch.no_grad():
        pool = ref_model(x.float() / 255.0)[0].flatten(1)
        ref_logits = net.fc(pool)
    assert float(pool.abs().max()) > 0 and rel_err(f[0], f[1]) > 1e-3   # features depend on the input
    assert rel_err(pool.double().numpy(), f) <= 1e-5
    assert rel_err(ref_logits.double().numpy(), z) <= 1e-5


# --------------------------------------------------------------------------- pixels and modules

def test_pixels_extractor():
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    ext = get_extractor("pixels")
    assert ext.checksum == "pixels-v1" and ext.dim is None
    f = ext.features(x)
    np.testing.assert_allclose(f, x.reshape(5, -1).double().numpy() / 255.0, rtol=0, atol=1e-7)
    assert f.min() >= 0 and f.max() <= 1
    small = get_extractor("pixels", image_size=4, channels=1)
    assert small.dim == 16 and small.checksum != "pixels-v1"
    rgb = torch.rand(5, 3, 8, 8)
    expect = F.interpolate(rgb.mean(1, keepdim=True), size=(4, 4), mode="bilinear", antialias=True,
                           align_corners=False)
    np.testing.assert_allclose(small.features(rgb), expect.reshape(5, -1).double().numpy(), rtol=0, atol=1e-6)
    with pytest.raises(NoClassifierError, match="no classifier head"):
        ext.logits(x)


def test_get_extractor_cache_and_validation():
    assert get_extractor("pixels") is get_extractor("pixels", image_size=None)
    assert get_extractor("pixels", image_size=4) is not get_extractor("pixels")
    with pytest.raises(ConfigError, match="unknown parameter"):
        get_extractor("pixels", size=3)
    with pytest.raises(ConfigError, match="unknown feature extractor"):
        get_extractor("pixel")


def test_from_module():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 5), nn.Tanh())
    ext = from_module(module, name="mine")
    assert ext.name == "mine" and ext.dim is None
    x = torch.randint(0, 256, (9, 1, 8, 8), dtype=torch.uint8)
    f = ext.features(x, batch_size=4)
    with torch.no_grad():
        expect = module(x.float() / 255.0).double().numpy()
    assert f.shape == (9, 5) and ext.dim == 5
    assert rel_err(expect, f) <= 1e-6
    assert from_module(module).checksum == ext.checksum and len(ext.checksum) == 64
    with pytest.raises(NoClassifierError):
        ext.logits(x)
    with_head = from_module(module, head=nn.Linear(5, 3), channels=1, image_size=8)
    assert with_head.logits(torch.rand(2, 3, 16, 16)).shape == (2, 3)
    with torch.no_grad():
        module[1].weight.add_(1.0)
    assert from_module(module).checksum != ext.checksum


# --------------------------------------------------------------------------- training helpers

def test_save_state_dict_is_atomic_and_readable(tmp_path):
    from gankit.metrics.classifier import save_state_dict

    path = tmp_path / "sub" / "net.pt"
    digest = save_state_dict(SmallCNN(), path)
    assert digest == sha256_file(path) and os.stat(path).st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["net.pt"]          # no temporary file left
    SmallCNN().load_state_dict(torch.load(path, weights_only=True))


def test_train_script_reports_missing_data(tmp_path, capsys):
    script = Path(__file__).resolve().parent.parent / "scripts" / "train_classifier.py"
    spec = importlib.util.spec_from_file_location("train_classifier_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "m.pt"
    assert module.main(["--data", "mnist", "--root", str(tmp_path), "--out", str(out)]) == 2
    assert "MNIST" in capsys.readouterr().err and not out.exists()
