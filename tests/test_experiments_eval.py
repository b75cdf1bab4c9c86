"""The two evaluation experiments, at tiny sizes, reproduce the lecture's claims.

* likelihood_vs_quality: a generator that emits noise 99% of the time loses about log(100)
  nats of Parzen log-likelihood, while precision collapses and FID rises;
* shifted_copies: pixel-L2 nearest neighbours miss training images moved by 2-3 pixels, the
  shift-tolerant distance finds them.

Both need Fashion-MNIST and are skipped without it.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from gankit.data.images import FASHION_MNIST_DEBIAN_DIR

HAVE_FASHION = any((Path(FASHION_MNIST_DEBIAN_DIR) / f).exists()
                   for f in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"))
pytestmark = pytest.mark.skipif(not HAVE_FASHION, reason="apt-get install dataset-fashion-mnist")


@pytest.fixture(scope="module")
def fashion():
    from gankit.data.images import fashion_mnist

    return {"train": fashion_mnist(split="train").x.numpy(), "test": fashion_mnist(split="test").x.numpy()}


def test_likelihood_is_not_quality(fashion):
    from gankit.experiments.likelihood_vs_quality import likelihood_vs_quality

    res = likelihood_vs_quality(n_good=60, n_validation=200, n_test=300, n_quality=500, seed=1,
                                test_images=fashion["test"], train_images=fashion["train"][:5000])
    log100 = math.log(100)
    assert res["log_100"] == pytest.approx(log100)
    # the likelihood barely moves: the gap is about log(100) nats ...
    assert 0.5 * log100 <= res["ll_gap"] <= 1.5 * log100
    assert res["bound_holds"]
    assert abs(res["ll_gap"]) < 0.1 * abs(res["ll_good"]) + log100
    # ... while quality collapses
    assert res["precision_mixture"] < 0.5 * res["precision_good"]
    assert res["precision_good"] > 0.5
    assert res["fid_mixture"] > 5 * res["fid_good"] and res["fid_mixture"] - res["fid_good"] > 50
    # the same-sample-count mixture KDE shows how much the number depends on the sample count
    assert res["gap_equal_n"] > res["ll_gap"]
    json.dumps(res)


def test_likelihood_vs_quality_with_features(fashion):
    from gankit.experiments.likelihood_vs_quality import likelihood_vs_quality, pooled_pixels

    def pooled(images):                     # 4x4 average pooling: a 49-dimensional feature
        a = np.asarray(images, dtype=np.float64)
        return a.reshape(len(a), 7, 4, 7, 4).mean(axis=(2, 4)).reshape(len(a), -1)

    np.testing.assert_allclose(pooled_pixels(4)(fashion["test"][:5]), pooled(fashion["test"][:5]))
    res = likelihood_vs_quality(n_good=20, n_validation=100, n_test=100, n_quality=400, seed=2,
                                features=pooled, test_images=fashion["test"], train_images=fashion["train"][:5000])
    assert res["features"] == "pooled"
    assert res["precision_mixture"] < 0.5 * res["precision_good"]
    assert res["fid_mixture"] > res["fid_good"]


def test_shifted_copies_escape_pixel_l2(fashion):
    from gankit.experiments.shifted_copies import shifted_copies

    res = shifted_copies(n_train=2000, n_copies=40, seed=0, train_images=fashion["train"])
    assert res["l2_hit_rate"] <= 0.3
    assert res["shift_hit_rate"] >= 0.9
    assert res["undo_shift_found"] >= 0.9
    assert set(res["hit_rate_by_shift"]) <= {2, 3}
    assert res["median_l2_to_l2_nn"] < res["median_l2_to_source"]
    json.dumps(res)


def test_experiment_command_lines_write_json_and_png(tmp_path):
    from gankit.experiments import likelihood_vs_quality, shifted_copies

    assert likelihood_vs_quality.main(["--out", str(tmp_path / "lq"), "--n-good", "10", "--n-validation", "50",
                                       "--n-test", "50", "--n-quality", "100",
                                       "--features", "pool4"]) == 0
    res = json.loads((tmp_path / "lq" / "likelihood_vs_quality.json").read_text())
    assert {"ll_gap", "fid_good", "fid_mixture", "precision_good", "precision_mixture"} <= set(res)
    assert (tmp_path / "lq" / "likelihood_vs_quality.png").stat().st_size > 10000
    assert shifted_copies.main(["--out", str(tmp_path / "sc"), "--n-train", "300", "--n-copies", "8"]) == 0
    res = json.loads((tmp_path / "sc" / "shifted_copies.json").read_text())
    assert {"l2_hit_rate", "shift_hit_rate"} <= set(res)
    assert (tmp_path / "sc" / "shifted_copies.png").stat().st_size > 10000
