"""Token samples reach TensorBoard's text tab beside samples/step_N.txt."""
import pytest

import gankit

pytest.importorskip("tensorboard")


def test_token_samples_are_written_to_tensorboard_as_text(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = {"method": {"name": "mle"}, "data": {"name": "oracle", "n_samples": 200, "n_test": 50, "vocab": 12,
                                                "length": 5},
           "train": {"steps": 4, "batch_size": 16, "log_every": 2, "sample_every": 2, "checkpoint_every": 0,
                     "progress": "none", "seed": 0, "n_samples": 6},
           "runtime": {"threads": 1}, "out": str(tmp_path / "run")}
    gankit.train(cfg)
    acc = EventAccumulator(str(tmp_path / "run" / "events"), size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()["tensors"]
    assert "samples/text_summary" in tags, tags
    events = acc.Tensors("samples/text_summary")
    assert [e.step for e in events] == [2, 4]
    for e in events:
        shown = e.tensor_proto.string_val[0].decode("utf-8")
        written = (tmp_path / "run" / "samples" / f"step_{e.step:08d}.txt").read_text(encoding="utf-8")
        lines = written.splitlines()
        assert len(lines) == 6 and sum(bool(line.strip()) for line in lines) >= 3
        assert [line[4:] for line in shown.splitlines()] == lines       # each sample line, as written
