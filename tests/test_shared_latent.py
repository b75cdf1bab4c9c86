"""shared_latent: on tiny unpaired domains (B = the negatives of other pictures of A's kind) a
short run lowers the cycle error below its start and translates towards B; tied layers are
one module for both domains (fewer parameters, kept so in the moving average); the KL term is
the closed form of a Gaussian against the prior; each switch adds exactly its term (the latent
discriminator, its network and its loss appear only when switched on) and moves what it should;
domain_accuracy for two-domain runs equals a direct computation; sampling --to A and two user
folders from the command line; clear errors for bad settings."""
import numpy as np
import pytest
import torch

import gankit
from gankit.api import build_data
from gankit.cli import main
from gankit.errors import ConfigError
from gankit.methods.shared_latent import gaussian_kl
from gankit.nets.shared_latent import SharedLatentTranslator

from test_cyclegan import domains


def sl_config(tmp_path, name="run", steps=150, generator=None, **method):
    a, b = domains(tmp_path)
    g = {"name": "shared_latent", "width": 8, "blocks": 1, "shared": 1, **(generator or {})}
    d = {"name": "patchgan", "width": 8, "receptive_field": 16, "norm": "instance"}
    return {"method": {"name": "shared_latent", **method},
            "data": {"name": "array", "path": str(a), "test_fraction": 0.25},
            "data_b": {"name": "array", "path": str(b), "test_fraction": 0.25},
            "generator": g, "discriminator": d, "discriminator_a": d,
            "latent_discriminator": {"name": "latent", "width": 8},
            "train": {"steps": steps, "batch_size": 16, "log_every": 1, "sample_every": 0,
                      "checkpoint_every": 1000, "progress": "none", "seed": 1},
            "optim": {"lr_g": 2e-3, "lr_d": 2e-3, "beta1": 0.5},
            "runtime": {"threads": 1}, "out": str(tmp_path / name)}


def held_out(run):
    a = build_data(run.config, split="test").x.float() / 255
    b = build_data(run.config, split="test", source="b").x.float() / 255
    return a, b


def test_a_short_run_learns_to_translate_and_to_come_back(tmp_path):
    start = gankit.train(sl_config(tmp_path, "start", steps=1))
    run = gankit.train(sl_config(tmp_path, "run", steps=150))
    a, b = held_out(run)

    def measure(r):
        out = r.generate(len(a), seed=0, given={"input": a * 2 - 1})
        torch.testing.assert_close(out["input"], a)
        return ((out["reconstruction"] - a).abs().mean().item(),          # cycle error
                abs(out["x"].mean().item() - b.mean().item()),            # distance to B's mean brightness
                (out["x"] - (1 - a)).abs().mean().item())                 # L1 to the known transform
    cycle0, _, _ = measure(start)
    cycle, mean_gap, to_negative = measure(run)
    assert cycle < 0.5 * cycle0, (cycle0, cycle)
    identity_gap = abs(a.mean().item() - b.mean().item())
    assert mean_gap < 0.3 * identity_gap, (mean_gap, identity_gap)
    identity_to_negative = (a - (1 - a)).abs().mean().item()
    assert to_negative < 0.6 * identity_to_negative, (to_negative, identity_to_negative)


def test_tied_layers_are_one_module_for_both_domains(tmp_path):
    def count(net):
        return sum(p.numel() for p in net.parameters())

    nets = {k: SharedLatentTranslator(3, 1, (16, 16), width=4, downs=2, blocks=2, shared=k) for k in range(5)}
    for k, net in nets.items():
        enc_a, enc_b, dec_a, dec_b = (net.encoders["a"], net.encoders["b"], net.decoders["a"], net.decoders["b"])
        assert len(enc_a) == len(dec_a) == 5
        for i in range(5):        # the last k encoder layers and the first k decoder layers are the same objects
            assert (enc_a[i] is enc_b[i]) == (i >= 5 - k), (k, i)
            assert (dec_a[i] is dec_b[i]) == (i < k), (k, i)
        assert (net.mu["a"] is net.mu["b"]) == (k > 0)
        if k:                     # tying one more layer drops B's own copy of it (and of the read-outs at k = 1)
            before = nets[k - 1]
            dropped = count(before.encoders["b"][5 - k]) + count(before.decoders["b"][k - 1])
            if k == 1:
                dropped += count(before.mu["b"]) + count(before.logvar["b"])
            assert count(before) - count(net) == dropped > 0, k
    # with 4 tied layers only the stems and the output layers are per domain
    net = nets[4]
    per_domain = sum(count(net.encoders[d][0]) + count(net.decoders[d][4]) for d in "ab")
    tied = sum(count(m) for m in net.tied())
    assert count(net) == per_domain + tied
    # a loss on domain A's path alone moves the tied weights that domain B uses
    x = torch.randn(2, 3, 16, 16)
    net.decode(net.encode(x, "a")[0], "a").square().mean().backward()
    assert net.encoders["b"][4].body[1].weight.grad is not None
    assert net.encoders["b"][0][1].weight.grad is None

    cfg = sl_config(tmp_path, steps=2, generator={"shared": 2})
    cfg["train"]["ema_decay"] = 0.9
    run = gankit.train(cfg)
    for G in (run.method.modules["generator"], run.method.emas["generator"]):   # kept tied in the moving average
        assert G.encoders["a"][-1] is G.encoders["b"][-1] and G.decoders["a"][1] is G.decoders["b"][1]
        assert G.encoders["a"][-3] is not G.encoders["b"][-3]
    opt_params = [p for g in run.method.optimizers["generator"].param_groups for p in g["params"]]
    assert len(opt_params) == len({id(p) for p in opt_params}) == len(list(run.method.modules["generator"].parameters()))


def test_the_kl_term_is_the_gaussian_closed_form():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    q, prior = torch.distributions.Normal(mu, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0)
    want = torch.distributions.kl_divergence(q, prior).mean()
    torch.testing.assert_close(gaussian_kl(mu, logvar), want)
    z = q.sample((20000,))                                                  # and by Monte Carlo, E_q[log q - log p]
    assert float((q.log_prob(z) - prior.log_prob(z)).mean()) == pytest.approx(float(want), rel=0.02)
    assert float(gaussian_kl(torch.zeros(4), torch.zeros(4))) == 0.0         # the prior itself: 0


def _logged(run):
    import json

    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    return set().union(*(r.keys() for r in rows))


def test_each_switch_adds_its_term_and_only_then(tmp_path):
    base = gankit.train(sl_config(tmp_path, "base", steps=2))
    keys = _logged(base)
    assert {"recon", "kl", "g_loss_b", "g_loss_a", "d_loss_b", "d_loss_a"} <= keys
    assert not keys & {"latent", "d_loss_z", "cycle", "semantic"}
    assert "latent_discriminator" not in base.method.modules and "latent_discriminator" not in base.method.optimizers
    with_latent = gankit.train(sl_config(tmp_path, "latent", steps=2, latent_weight=1.0))
    assert {"latent", "d_loss_z", "d_real_z", "d_fake_z"} <= _logged(with_latent)
    assert with_latent.method.discriminator_roles[-1] == "latent_discriminator"
    D_z = with_latent.method.modules["latent_discriminator"]
    assert D_z(torch.zeros(3, *with_latent.method.latent_shape)).shape == (3,)
    assert {"cycle"} <= _logged(gankit.train(sl_config(tmp_path, "cycle", steps=2, cycle_weight=1.0))) - {"semantic"}
    sem = _logged(gankit.train(sl_config(tmp_path, "semantic", steps=2, semantic_weight=1.0)))
    assert "semantic" in sem and "cycle" not in sem


def test_the_terms_are_what_they_say(tmp_path):
    """The generator update's logged terms against a direct computation from the same codes:
    the cycle A -> z -> B -> z -> A, the semantic distance of codes, the KL, the latent judge's
    loss with its labels swapped (least squares: B's codes onto 1, A's onto 0)."""
    run = gankit.train(sl_config(tmp_path, "run", steps=1, latent_weight=1.0, cycle_weight=1.0, semantic_weight=1.0))
    m = run.method
    a, b = held_out(run)
    batch = {"x": a[:8] * 2 - 1, "b.x": b[:8] * 2 - 1}
    torch.manual_seed(3)
    f = m._forward(batch)
    G, D_z = m.modules["generator"], m.modules["latent_discriminator"]
    with torch.no_grad():
        mu_a, logvar_a = G.encode(batch["x"], "a")
        torch.testing.assert_close(f["mu_a"], mu_a)
        to_b = G.decode(f["z_a"], "b")                                     # a translated with a draw of its code
        mu_ab = G.encode(to_b, "b")[0]
        mu_ba = G.encode(G.decode(f["z_b"], "a"), "a")[0]
        cycle = (G.decode(mu_ab, "a") - batch["x"]).abs().mean() + (G.decode(mu_ba, "b") - batch["b.x"]).abs().mean()
        semantic = (mu_ab - mu_a).abs().mean() + (mu_ba - f["mu_b"]).abs().mean()
        kl = sum(0.5 * (mu.square() + lv.exp() - 1 - lv).mean() for mu, lv in
                 ((f["mu_a"], f["logvar_a"]), (f["mu_b"], f["logvar_b"])))
        fool = 0.5 * (D_z(f["z_b"]) - 1).square().mean() + 0.5 * D_z(f["z_a"]).square().mean()
    m._pending = (batch, f)
    m.modules["latent_discriminator"].requires_grad_(False)
    logs = m.generator_step([batch])
    for name, want in (("cycle", cycle), ("semantic", semantic), ("kl", kl), ("latent", fool)):
        torch.testing.assert_close(logs[name], want.float(), rtol=1e-5, atol=1e-6, msg=name)


def test_the_semantic_term_keeps_the_code_of_a_translation(tmp_path):
    """Against the same run without it (same seed): the code of a translation is nearer its
    input's code."""
    runs = {name: gankit.train(sl_config(tmp_path, name, steps=50, **method)) for name, method in
            (("base", {}), ("semantic", {"semantic_weight": 5.0}))}
    a, _ = held_out(runs["base"])

    def distance(run):
        G = run.method.for_sampling("generator").eval()
        with torch.no_grad():
            return (G.encode(G.translate(a * 2 - 1, "a", "b"), "b")[0] - G.encode(a * 2 - 1, "a")[0]).abs().mean().item()
    semantic = {k: distance(r) for k, r in runs.items()}
    assert semantic["semantic"] < 0.7 * semantic["base"], semantic


def test_resume_is_bit_identical_with_every_switch(tmp_path):
    cfg = lambda name, steps: sl_config(tmp_path, name, steps=steps, latent_weight=1.0, cycle_weight=1.0,  # noqa: E731
                                        semantic_weight=1.0)
    straight = gankit.train(cfg("straight", 6))
    stopped = gankit.train({**cfg("resumed", 3), "train": {**cfg("x", 3)["train"], "checkpoint_every": 3}})
    resumed = gankit.resume(stopped.path, steps=6)
    sa, sb = straight.method.state_dict(), resumed.method.state_dict()
    assert torch.equal(sa["extra"]["inputs"], sb["extra"]["inputs"])
    for role in ("generator", "discriminator", "discriminator_a", "latent_discriminator"):
        for k, v in sa["modules"][role].items():
            assert torch.equal(v, sb["modules"][role][k]), f"{role}.{k}"


def test_domain_accuracy_of_a_two_domain_run_is_direct(tmp_path, monkeypatch):
    from gankit.metrics.domain import accuracy, train_domain_classifier, two_domains
    from gankit.metrics.evaluate import evaluate_run

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    run = gankit.train(sl_config(tmp_path, "run", steps=2))
    n = 50
    result = evaluate_run(run, metrics=["domain_accuracy"], n=n)
    x_a, x_b = run.data.x, run.sources["b"].x
    x, d = two_domains(x_a, x_b)
    assert sorted(d.tolist()) == [0] * len(x_a) + [1] * len(x_b)
    sums = lambda t: t.flatten(1).long().sum(1).sort().values                  # noqa: E731
    assert torch.equal(sums(x[d == 1]), sums(x_b)) and torch.equal(sums(x[d == 0]), sums(x_a))
    net, real_acc = train_domain_classifier(x, d, 2)
    a_test = build_data(run.config, split="test")
    inputs = a_test.x[torch.arange(n) % len(a_test)].float() / 255
    out = run.generate(n, seed=0, given={"input": inputs * 2 - 1})
    b = torch.ones(n, dtype=torch.long)
    assert result["domain_accuracy"] == pytest.approx(accuracy(net, out["x"], b))
    assert result["domain_accuracy_input"] == pytest.approx(accuracy(net, inputs, b))
    assert result["domain_accuracy_real"] == pytest.approx(real_acc) and real_acc > 0.9   # negatives: easy
    assert result["domain_accuracy_input"] < 0.1                       # A's own pictures are not B's
    grey = two_domains(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.full((2, 3, 2, 2), 7, dtype=torch.uint8))
    assert grey[0].shape == (5, 3, 2, 2)                                   # a grey domain repeated to 3 channels


def test_sample_both_ways_and_two_folders_from_the_command_line(tmp_path, capsys):
    from PIL import Image

    run = gankit.train(sl_config(tmp_path, "run", steps=2))
    folder = tmp_path / "b_pictures"
    folder.mkdir()
    pictures = build_data(run.config, split="test", source="b").x[:3]
    for i, p in enumerate(pictures):
        Image.fromarray(p.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    out = tmp_path / "back.npz"
    assert main(["sample", str(run.path), "--input", str(folder), "--to", "A", "--out", str(out)]) == 0
    G = gankit.load_run(run.path).method.for_sampling("generator").eval()
    b = pictures.float() / 127.5 - 1
    with torch.no_grad():
        back = G.decode(G.encode(b, "b")[0], "a")
    with np.load(out) as f:
        assert set(f.files) == {"x", "input_b", "reconstruction"}
        assert np.abs(f["x"] / 255.0 - (back.numpy() + 1) / 2).max() <= 1 / 255 + 1e-6
    assert main(["sample", str(run.path), "--input", str(folder), "--out", str(tmp_path / "grid.png")]) == 0
    assert main(["sample", str(run.path), "--out", str(tmp_path / "pool.png")]) == 0      # inputs from its pool

    dirs = []
    for name, value in (("day", 200), ("night", 30)):
        d = tmp_path / name
        d.mkdir()
        for i in range(6):
            Image.fromarray(np.full((12, 12, 3), value + i, np.uint8)).save(d / f"{i}.png")
        dirs.append(d)
    code = main(["train", "--method", "shared_latent", "--data", "unpaired", "--steps", "2", "--out",
                 str(tmp_path / "folders"), "--set", f"data.a={dirs[0]}", f"data.b={dirs[1]}", "data.image_size=16",
                 "generator.width=4", "discriminator.width=4", "discriminator_a.width=4", "discriminator.receptive_field=16",
                 "discriminator_a.receptive_field=16", "train.batch_size=4",
                 "train.progress=none"])
    assert code == 0, capsys.readouterr().err
    folders = gankit.load_run(tmp_path / "folders")
    assert folders.config.data["domain"] == "a" and folders.config.sources["b"]["domain"] == "b"
    assert folders.generate(2, seed=0)["x"].shape == (2, 3, 16, 16)


def test_clear_errors(tmp_path, capsys):
    no_b = sl_config(tmp_path)
    del no_b["data_b"]
    with pytest.raises(ConfigError, match="data_b"):
        gankit.train(no_b)
    for key in ("recon_weight", "kl_weight", "adv_weight", "latent_weight", "cycle_weight", "semantic_weight"):
        with pytest.raises(ConfigError, match=f"method.{key} must not be negative"):
            gankit.train(sl_config(tmp_path, **{key: -1.0}))
    with pytest.raises(ConfigError, match="recon_weight .* or method.cycle_weight"):
        gankit.train(sl_config(tmp_path, recon_weight=0.0))
    with pytest.raises(ConfigError, match="generator.shared=4 .*at most 3"):
        gankit.train(sl_config(tmp_path, generator={"shared": 4}))
    with pytest.raises(ConfigError, match="generator.shared must be at least 0"):
        gankit.train(sl_config(tmp_path, generator={"shared": -1}))
    with pytest.raises(ConfigError, match="needs generator.name=shared_latent"):
        gankit.train({**sl_config(tmp_path), "generator": {"name": "resnet", "width": 8}})
    small = tmp_path / "small.npz"
    np.savez(small, x=np.zeros((40, 8, 8, 3), np.uint8))
    with pytest.raises(ConfigError, match="one size"):
        gankit.train({**sl_config(tmp_path), "data_b": {"name": "array", "path": str(small)}})
    grey = tmp_path / "grey.npz"            # a grey domain beside a colour one: each has its own outer layers
    np.savez(grey, x=np.zeros((40, 16, 16), np.uint8))
    mixed = gankit.train({**sl_config(tmp_path, "mixed", steps=1),
                          "data_b": {"name": "array", "path": str(grey), "test_fraction": 0.25}})
    assert mixed.generate(2, seed=0)["x"].shape == (2, 1, 16, 16)
    a, _ = domains(tmp_path)
    code = main(["train", "--out", str(tmp_path / "cli"), "--set", "method.name=shared_latent", "data.name=array",
                 f"data.path={a}"])
    assert code == 2 and "data_b" in capsys.readouterr().err
