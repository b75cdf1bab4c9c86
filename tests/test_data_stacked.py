import os

import pytest
import torch

from gankit.data.images import FASHION_MNIST_DEBIAN_DIR, fashion_mnist

if not os.path.isdir(FASHION_MNIST_DEBIAN_DIR):
    pytest.skip("Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist", allow_module_level=True)

from gankit.data.stacked import stacked  # noqa: E402


def test_stacked_channels_are_source_images_and_labels_are_class_triples():
    ds = stacked(n_samples=3000, seed=1)
    assert ds.x.shape == (3000, 3, 28, 28) and ds.x.dtype == torch.uint8 and len(ds.classes) == 1000
    base = fashion_mnist()
    # each channel is one of the source images, and its class is the matching digit of the label
    for i in (0, 17, 2999):
        for c, digit in enumerate((ds.y[i] // 100, ds.y[i] // 10 % 10, ds.y[i] % 10)):
            matches = (base.x[:, 0] == ds.x[i, c]).flatten(1).all(1).nonzero().flatten()
            assert len(matches) >= 1 and int(digit) in base.y[matches].tolist()
    # 3,000 uniform draws over 1,000 modes cover about 1000 * (1 - exp(-3)) = 950 of them
    assert 900 < len(torch.unique(ds.y)) < 990
    assert torch.equal(ds.x, stacked(n_samples=3000, seed=1).x)
    assert not torch.equal(ds.x[:10], stacked(n_samples=3000, seed=1, split="test").x[:10])
