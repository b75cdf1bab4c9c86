import pytest
import torch

from gankit.data.stream import BatchStream


def test_each_epoch_visits_every_sample_once():
    x = torch.arange(100)
    s = BatchStream(x, 10, seed=5)
    first = torch.cat([s.next() for _ in range(10)])
    second = torch.cat([s.next() for _ in range(10)])
    assert sorted(first.tolist()) == list(range(100)) == sorted(second.tolist())
    assert not torch.equal(first, second)


def test_state_dict_resumes_the_same_order():
    x = torch.arange(103)
    a = BatchStream(x, 8, seed=1)
    for _ in range(17):
        a.next()
    b = BatchStream(x, 8, seed=1)
    b.load_state_dict(a.state_dict())
    for _ in range(30):
        assert torch.equal(a.next(), b.next())


def test_too_little_data_and_mismatched_state():
    with pytest.raises(ValueError, match="fewer than one batch"):
        BatchStream(torch.arange(5), 8)
    s = BatchStream(torch.arange(50), 8)
    with pytest.raises(ValueError, match="50 samples"):
        s.load_state_dict({**s.state_dict(), "n": 60})
