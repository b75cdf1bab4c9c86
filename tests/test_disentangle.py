"""disentangle: on tiny pictures in three styles (as they are, their negatives, half as bright),
whose swaps have a known answer (the same picture in the target style), the content code
loses the style (the adversary near chance, far below a run without it), reconstructions
improve and swapped pictures come close to the true restyled pictures; the partner of each
sample; sampling and clear errors."""
import numpy as np
import pytest
import torch

import gankit
from conftest import rectangle_pictures as pictures, styled
from gankit.errors import ConfigError
from gankit.methods.disentangle import partners


@pytest.fixture(scope="module")
def styles_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("styles") / "styles.npz"
    x = pictures(900)
    domain = np.arange(len(x)) % 3
    np.savez(path, x=styled(x, domain), domain=domain.astype(np.int64), plain=x)
    return path


def _config(path, out, steps, **method):
    return {"method": {"name": "disentangle", **method},
            "data": {"name": "array", "path": str(path), "fields": ["domain"], "test_fraction": 0.2},
            "generator": {"name": "auto", "width": 16, "content": 4, "factor": 4},
            "discriminator": {"name": "auto", "width": 16, "hidden": 32},
            "train": {"steps": steps, "batch_size": 32, "log_every": 20, "sample_every": 0, "checkpoint_every": 0,
                      "progress": "none", "seed": 2},
            "runtime": {"threads": 1}, "out": str(out)}


@pytest.fixture(scope="module")
def runs(styles_npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return {"start": gankit.train(_config(styles_npz, out / "start", 1)),
            "adversarial": gankit.train(_config(styles_npz, out / "adversarial", 120, adv_weight=1.0)),
            "plain": gankit.train(_config(styles_npz, out / "plain", 80, adv_weight=0.0, d_steps=1))}


def _heldout(path):
    """The held-out pictures (the fifth that data.test_fraction holds out), their styles and plain pictures."""
    with np.load(path) as f:
        x, domain, plain = f["x"], f["domain"], f["plain"]
    test = np.sort(np.random.default_rng(0).permutation(len(x))[:int(round(len(x) * 0.2))])
    return torch.from_numpy(x[test]), torch.from_numpy(domain[test]), plain[test]


def _scores(run, path):
    """(the adversary's accuracy on held-out content codes, the reconstruction error, the error of
    swaps against the true restyled pictures, that of the unchanged inputs), pixels in [0, 1]."""
    x, domain, plain = _heldout(path)
    model = x[:, None].float() / 127.5 - 1
    m = run.method
    codes = m.content_codes(model, m.generator)
    with torch.no_grad():
        adversary = float((m.discriminator(codes).argmax(1) == domain).double().mean())
    target = (domain + 1 + torch.arange(len(x)) % 2) % 3          # every other style, in turn
    out = run.generate(len(x), seed=0, given={"input": model, "domain": target, "source": domain})
    truth = torch.from_numpy(styled(plain, target.numpy())).float()[:, None] / 255
    unit = x[:, None].float() / 255
    return (adversary, float((out["reconstruction"] - unit).abs().mean()),
            float((out["x"] - truth).abs().mean()), float((unit - truth).abs().mean()))


def test_the_content_code_loses_the_style_and_swaps_restyle(runs, styles_npz):
    adv0, rec0, swap0, identity = _scores(runs["start"], styles_npz)
    adv1, rec1, swap1, _ = _scores(runs["adversarial"], styles_npz)
    adv_plain, rec_plain, _, _ = _scores(runs["plain"], styles_npz)
    # without the adversarial term the style stays readable from the content code; with it the
    # adversary falls towards chance (1/3)
    assert adv_plain > 0.9 and adv1 < 0.55 and adv1 < adv_plain - 0.35, (adv1, adv_plain)
    # reconstructions improve from the start
    assert rec1 < rec0 / 2 and rec1 < 0.15, (rec0, rec1)
    # a swap is the same picture in the target style: far closer to it than the unchanged input
    assert swap1 < identity / 2 and swap1 < swap0 / 2, (swap0, swap1, identity)
    logs = [__import__("json").loads(line) for line in (runs["adversarial"].path / "metrics.jsonl").read_text()
            .splitlines()]
    assert {"d_loss", "adversary_acc", "reconstruction", "confusion"} <= set(logs[-1])
    assert logs[-1]["reconstruction"] < logs[0]["reconstruction"]


def test_the_metrics_agree_with_direct_computation(runs, styles_npz):
    from gankit.metrics.evaluate import evaluate_run

    run = runs["adversarial"]
    result = evaluate_run(run, metrics=["content_domain_accuracy:probe_steps=100", "reconstruction_l1"], n=180)
    adversary, rec, _, _ = _scores(run, styles_npz)
    assert result["content_domain_accuracy"] == pytest.approx(adversary)
    assert 0.3 <= result["content_domain_chance"] <= 0.5 and 0 <= result["content_domain_probe"] <= 1
    assert result["reconstruction_l1"] == pytest.approx(rec, rel=1e-4)


def test_each_sample_is_paired_with_another_of_its_domain():
    g = torch.Generator().manual_seed(0)
    domain = torch.randint(4, (50,), generator=g)
    domain[7] = 9                                   # a domain of one sample: its own partner
    p = partners(domain, torch.rand(50, generator=g))
    assert torch.equal(domain[p], domain)
    for d in domain.unique().tolist():
        members = (domain == d).nonzero().flatten()
        if len(members) == 1:
            assert int(p[members[0]]) == int(members[0])
            continue
        assert bool((p[members] != members).all())
        assert sorted(p[members].tolist()) == sorted(members.tolist())   # each one partner of exactly one


def test_sampling_and_errors(runs, styles_npz, tmp_path):
    run = runs["adversarial"]
    x, domain, _ = _heldout(styles_npz)
    model = x[:8, None].float() / 127.5 - 1
    out = run.generate(8, seed=1, given={"input": model, "domain": 1})
    assert out["x"].shape == (8, 1, 16, 16) and bool((out["domain"] == 1).all()) and "reconstruction" not in out
    drawn = run.generate(6, seed=1)             # pictures from the pool, with their own domains
    assert {"x", "input", "domain", "source", "reconstruction"} <= set(drawn)
    with pytest.raises(ConfigError, match="label 3 is out of range"):
        run.generate(2, seed=1, given={"input": model[:2], "domain": 3})

    with pytest.raises(ConfigError, match="no pictures to change"):
        gankit.load_run(runs["start"].path).method.generate(None, {})
    no_domain = _config(styles_npz, tmp_path / "a", 1)
    no_domain["data"]["fields"] = []
    with pytest.raises(ConfigError, match="field 'domain'"):
        gankit.train(no_domain)
    vectors = _config(styles_npz, tmp_path / "b", 1)
    vectors["data"] = {"name": "ring8"}
    with pytest.raises(ConfigError, match="works on image data"):
        gankit.train(vectors)
    other_g = _config(styles_npz, tmp_path / "c", 1)
    other_g["generator"] = {"name": "dcgan"}
    with pytest.raises(ConfigError, match="generator.name=disentangler"):
        gankit.train(other_g)
    with pytest.raises(ConfigError, match="adv_weight must not be negative"):
        gankit.train(_config(styles_npz, tmp_path / "d", 1, adv_weight=-1.0))
    for name in "abcd":
        assert not (tmp_path / name).exists()
