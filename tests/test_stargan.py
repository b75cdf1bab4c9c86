"""stargan: on tiny pictures in three domains (as they are, their negatives, half as bright) one
generator learns to move a picture into the domain it is told and back (translations close to
the known transform, cycle error falling, the domain classifier recognising the target
domain far more often than for the untranslated inputs); fashion_mnist_styles renders each
style as described and deterministically; the domain classifier; sampling grids and
conditions; clear errors."""
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from conftest import rectangle_pictures as pictures, styled
from gankit.api import build_data
from gankit.cli import main
from gankit.data.domains import STYLES, blend_images, render_style
from gankit.errors import ConfigError
from gankit.metrics.domain import domain_classifier, train_domain_classifier

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not REAL_FASHION.is_dir(), reason=f"Fashion-MNIST is not installed at {REAL_FASHION}")


def three_domains(folder, n=600):
    path = folder / "styles.npz"
    if not path.exists():
        x = pictures(n)
        domain = np.arange(n) % 3            # every picture in one domain only: no pairs
        np.savez(path, x=styled(x, domain), y=(x > 100).sum((1, 2)) % 2, domain=domain)
    return path


def sg_config(tmp_path, name="run", steps=200, **method):
    return {"method": {"name": "stargan", "objective": "least_squares", "penalty": "none", "d_steps": 1, **method},
            "data": {"name": "array", "path": str(three_domains(tmp_path)), "test_fraction": 0.25,
                     "fields": ["domain"]},
            "generator": {"name": "auto", "width": 8, "blocks": 2},
            "discriminator": {"name": "stargan", "width": 16},
            "train": {"steps": steps, "batch_size": 16, "log_every": 10, "sample_every": 0,
                      "checkpoint_every": 1000, "progress": "none", "seed": 1},
            "optim": {"lr_g": 2e-3, "lr_d": 2e-3, "beta1": 0.5},
            "runtime": {"threads": 1}, "out": str(tmp_path / name)}


def test_one_generator_learns_to_move_pictures_between_domains_and_back(tmp_path):
    start = gankit.train(sg_config(tmp_path, "start", steps=1))
    run = gankit.train(sg_config(tmp_path, "run", steps=200))
    test = build_data(run.config, split="test")
    d = test.extra["domain"]
    a = test.x[d == 0].float() / 255                    # held-out pictures of domain 0
    k = len(a)

    def measure(r):
        out = r.generate(k, seed=0, given={"input": a * 2 - 1, "domain": 1, "source": 0})
        torch.testing.assert_close(out["input"], a)
        assert bool((out["domain"] == 1).all()) and bool((out["source"] == 0).all())
        return ((out["reconstruction"] - a).abs().mean().item(),      # cycle error
                (out["x"] - (1 - a)).abs().mean().item())             # L1 to the known transform (the negative)
    cycle0, _ = measure(start)
    cycle, to_negative = measure(run)
    assert cycle < 0.5 * cycle0, (cycle0, cycle)
    identity_to_negative = (a - (1 - a)).abs().mean().item()
    assert to_negative < 0.5 * identity_to_negative, (to_negative, identity_to_negative)

    from gankit.metrics.evaluate import evaluate_run

    result = evaluate_run(run, metrics=["domain_accuracy", "cycle_error"], n=300)
    assert result["domain_accuracy_real"] > 0.9                            # the judge knows the domains
    assert result["domain_accuracy"] > 0.6 > result["domain_accuracy_input"] + 0.2, result
    assert result["cycle_error"] < 0.5 * cycle0


def test_sampling_draws_inputs_with_their_domains_and_shows_every_domain(tmp_path):
    run = gankit.train(sg_config(tmp_path, "run", steps=3))
    out = run.generate(30, seed=4)
    assert set(out) == {"x", "input", "domain", "source", "reconstruction"}
    data = build_data(run.config)
    pool = run.method.inputs.images                      # the first training inputs, with their domains
    for img, src in zip(out["input"][:10], out["source"][:10]):
        i = int(((pool.float() / 255 - img).abs().flatten(1).sum(1)).argmin())
        assert int(run.method.sources[i]) == int(src)
    assert set(data.extra["domain"][:16].tolist()) >= set(run.method.sources[:16].tolist())
    given, per = run.method.showcase(12)
    assert per == 4 and given["domain"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    torch.testing.assert_close(given["input"][:4], given["input"][8:])   # the same inputs in every row
    with pytest.raises(ConfigError, match="out of range"):
        run.generate(4, given={"domain": 3})


def test_the_domain_classifier_learns_domains_and_is_cached(tmp_path):
    x = pictures(400)
    domain = np.arange(400) % 3
    images = torch.from_numpy(styled(x, domain)).unsqueeze(1)
    net, acc = train_domain_classifier(images, torch.from_numpy(domain), 3)
    assert acc > 0.9
    first = domain_classifier({"name": "t"}, images, torch.from_numpy(domain), 3, tmp_path)
    again = domain_classifier({"name": "t"}, images, torch.from_numpy(domain), 3, tmp_path)
    assert len(list(tmp_path.glob("domains-*.pt"))) == 1 and first[1] == again[1]
    for p, q in zip(first[0].parameters(), again[0].parameters()):
        assert torch.equal(p, q)


def test_styles_render_as_described():
    g = torch.from_numpy(pictures(8)).unsqueeze(1)
    assert torch.equal(render_style(g, "original"), g.expand(-1, 3, -1, -1))
    assert torch.equal(render_style(g, "inverted"), 255 - g.expand(-1, 3, -1, -1))
    thick = render_style(g, "thick")[:, :1]
    assert bool((thick >= g).all()) and (thick > g).sum() > 0           # a dilation only grows the garment
    edges = render_style(g, "edges")
    assert set(edges.unique().tolist()) <= {0, 255} and (edges == 255).any()
    crops = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    assert torch.equal(render_style(g, "photo", crops), blend_images(g, crops))
    with pytest.raises(ConfigError, match="unknown style"):
        render_style(g, "sepia")


@needs_fashion
def test_fashion_mnist_styles_puts_every_garment_in_one_style_deterministically():
    from gankit.data.domains import fashion_mnist_styles

    a = fashion_mnist_styles(split="test", styles=["original", "inverted", "thick"])
    b = fashion_mnist_styles(split="test", styles=["original", "inverted", "thick"])
    assert torch.equal(a.x, b.x) and torch.equal(a.extra["domain"], b.extra["domain"])
    assert a.fields()["domain"].classes == ("original", "inverted", "thick")
    counts = torch.bincount(a.extra["domain"], minlength=3)
    assert bool((counts > 3000).all())                                  # drawn uniformly
    grey = build_data(gankit.api.make_config(None, ["data.split=test"])).x
    for d, style in enumerate(("original", "inverted", "thick")):
        idx = (a.extra["domain"] == d).nonzero().flatten()[:50]
        assert torch.equal(a.x[idx], render_style(grey[idx], style))
    with pytest.raises(ConfigError, match="unknown style"):
        fashion_mnist_styles(split="test", styles=["original", "sepia"])
    with pytest.raises(ConfigError, match="two different styles"):
        fashion_mnist_styles(split="test", styles=["original"])
    assert STYLES == ("original", "photo", "inverted", "edges", "thick")


def test_clear_errors(tmp_path, capsys):
    cfg = sg_config(tmp_path, "nodomain", steps=2)
    cfg["data"].pop("fields")
    with pytest.raises(ConfigError, match="domain"):
        gankit.train(cfg)
    cfg = sg_config(tmp_path, "dcgan_d", steps=2)
    cfg["discriminator"] = {"name": "patchgan", "width": 8, "receptive_field": 16}
    with pytest.raises(ConfigError, match="domain classifier"):
        gankit.train(cfg)
    cfg = sg_config(tmp_path, "reflect", steps=2)
    cfg["generator"]["name"] = "resnet"          # CycleGAN's padding: the target planes would vanish
    with pytest.raises(ConfigError, match="padding=zero"):
        gankit.train(cfg)
    run = gankit.train(sg_config(tmp_path, "run", steps=2))
    assert run.config.generator["padding"] == "zero"      # what auto means for stargan
    target = tmp_path / "out.png"
    assert main(["sample", str(run.path), "--label", "5", "--out", str(target)]) == 2
    assert "out of range" in capsys.readouterr().err and not target.exists()
    assert main(["sample", str(run.path), "--label", "2", "--n", "4", "--out", str(target)]) == 0
    assert target.exists()


def folders(tmp_path):
    """Two folders of 16x16 PNG pictures: rectangles (a) and their negatives (b), 24 each."""
    from PIL import Image

    x = pictures(48)
    for name, part in (("bright", x[:24]), ("dark", 255 - x[24:])):
        (tmp_path / name).mkdir(exist_ok=True)
        for i, img in enumerate(part):
            Image.fromarray(img).save(tmp_path / name / f"{i:03d}.png")
    return tmp_path / "bright", tmp_path / "dark"


def test_two_folders_are_two_domains_for_stargan_and_cyclegan(tmp_path):
    a, b = folders(tmp_path)
    common = ["--set", f"data.a={a}", f"data.b={b}", "data.image_size=16", "train.steps=2", "train.batch_size=8",
              "train.progress=none", "runtime.threads=1"]
    run = gankit.train(None, ["method.name=stargan", "data.name=unpaired", "generator.width=8", "generator.blocks=1",
                              "discriminator.width=8", *common[1:]], out=tmp_path / "star")
    data = build_data(run.config)
    assert data.fields()["domain"].classes == ("bright", "dark") and len(data) == 48
    assert bool((data.x[:24].float().mean((1, 2, 3)) < data.x[24:].float().mean((1, 2, 3))).all())
    run = gankit.train(None, ["method.name=cyclegan", "data.name=unpaired", "generator.width=8",
                              "generator_ba.width=8", "discriminator.width=8", "discriminator_a.width=8",
                              "discriminator.receptive_field=16", "discriminator_a.receptive_field=16",
                              *common[1:]], out=tmp_path / "cycle")
    assert run.config.data["domain"] == "a" and run.config.sources["b"]["domain"] == "b"
    assert run.config.sources["b"]["b"] == str(b)
    assert build_data(run.config).x.shape == (24, 3, 16, 16)
    assert torch.equal(build_data(run.config, source="b").x, data.x[24:])
    with pytest.raises(Exception, match="data.b is not set"):
        gankit.train(None, ["method.name=stargan", "data.name=unpaired", f"data.a={a}"], out=tmp_path / "x")


def test_sample_to_named_domains(tmp_path, capsys):
    run = gankit.train(sg_config(tmp_path, "run", steps=3))
    folder = tmp_path / "mine"
    folder.mkdir()
    from PIL import Image

    for i, img in enumerate(pictures(3)):
        Image.fromarray(img).save(folder / f"{i}.png")
    out = tmp_path / "npz" / "t.npz"
    out.parent.mkdir()
    assert main(["sample", str(run.path), "--input", str(folder), "--to", "1,2", "--out", str(out)]) == 0
    with np.load(out) as f:
        assert f["x"].shape == (6, 1, 16, 16)              # every picture into each of the two domains
        assert f["domain"].tolist() == [1, 1, 1, 2, 2, 2]
        assert (f["input"][:3] == f["input"][3:]).all()
    assert main(["sample", str(run.path), "--input", str(folder), "--to", "sepia", "--out", str(out)]) == 2
    assert "domains are 0, 1, 2" in capsys.readouterr().err
    assert main(["sample", str(run.path), "--to", "1", "--label", "2", "--out", str(out)]) == 2
    assert "give one of them" in capsys.readouterr().err
