"""One contract for every registered method (and every future one): it builds on tiny data,
trains, checkpoints, resumes bit-identically, samples with and without its conditions and
evaluates. A new method file is picked up here without a line of this file changing."""
import os

import pytest
import torch

import gankit
from gankit.data.images import FASHION_MNIST_DEBIAN_DIR
from gankit.data.base import Dataset, Field
from gankit.data.stream import BatchStream
import torch.nn.functional as F

from gankit.methods.base import Adversarial, Contract, DataInfo, contract_of
from gankit.registries import METHODS, load_all

from conftest import toy_config

load_all()
METHOD_NAMES = METHODS.names()


#: a field that a method trains on and the toy data lacks -> the pairing of tiny images that
#: gives it (methods conditioned on an image: pix2pix's ``input``, a completion's ``mask``)
PAIRED_FIELDS = {"mask": "mask", "input": "edges"}
#: methods that take one kind of pairing only (super-resolution: low-resolution inputs)
METHOD_PAIRINGS = {"srgan": "lowres2"}


def _pairing(method):
    if method in METHOD_PAIRINGS:
        return METHOD_PAIRINGS[method]
    needs = set(contract_of(method).needs)
    return next((pairs for name, pairs in PAIRED_FIELDS.items() if name in needs), None)


def _tiny_images(folder):
    """300 grey 32x32 pictures of a bright rectangle on a dark ground, as an .npz (32: the
    default networks of image-to-image methods, such as pix2pix's 70x70 PatchGAN, fit it)."""
    import numpy as np

    path = folder / "tiny_images.npz"
    if not path.exists():
        rng = np.random.default_rng(0)
        x = np.full((300, 32, 32), 20, np.uint8)
        for img in x:
            top, left = rng.integers(0, 16, size=2)
            h, w = rng.integers(8, 17, size=2)
            img[top:top + h, left:left + w] = rng.integers(150, 256)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=x)
    return path


def _tiny_domains(folder):
    """Two unpaired domains of tiny labelled pictures (for methods translating between a data set
    and a further source, such as cyclegan): A as :func:`_tiny_images` with a label per picture
    (its rectangle's height band), B their negatives; .npz files."""
    import numpy as np

    a_path, b_path = folder / "tiny_a.npz", folder / "tiny_b.npz"
    if not b_path.exists():
        with np.load(_tiny_images(folder)) as f:
            x = f["x"]
        y = ((x > 100).sum(1).max(1) // 2 - 4).clip(0, 9).astype(np.int64)
        np.savez(a_path, x=x, y=y)
        np.savez(b_path, x=255 - x, y=y)
    return a_path, b_path


def _tiny_styles(folder):
    """Tiny pictures in four domains (methods translating between the domains of one data set,
    such as stargan): each picture of :func:`_tiny_images` in one style, as it is, its negative,
    half as bright or upside down; fields y and domain; an .npz."""
    import numpy as np

    path = folder / "tiny_styles.npz"
    if not path.exists():
        with np.load(_tiny_images(folder)) as f:
            x = f["x"].copy()
        domain = np.arange(len(x)) % 4
        x[domain == 1] = 255 - x[domain == 1]
        x[domain == 2] //= 2
        x[domain == 3] = x[domain == 3][:, ::-1]
        np.savez(path, x=x, y=(np.arange(len(x)) % 3).astype(np.int64), domain=domain.astype(np.int64))
    return path


def _config(out, method, steps):
    cfg = toy_config(out, steps=steps, train__checkpoint_every=4, train__log_every=2)
    cfg["method"] = {"name": method}
    cfg["generator"] = {"name": "auto", "hidden": 16, "layers": 2}
    cfg["discriminator"] = {"name": "auto", "hidden": 16, "layers": 2}
    cfg["data"]["n_samples"] = 1000
    cfg["train"]["ema_decay"] = 0.9
    pairs = _pairing(method)
    if pairs is not None:        # conditioned on an image: tiny paired images instead of ring8
        cfg["data"] = {"name": "array", "path": str(_tiny_images(out.parent)), "test_fraction": 0.5,
                       "pairs": pairs}
        cfg["generator"] = {"name": "auto", "width": 8}
        cfg["discriminator"] = {"name": "auto", "width": 8}
        cfg["runtime"] = {"threads": 1}    # small convolutions: a second thread only waits
    contract = contract_of(method)
    if contract.sources and contract.reference:  # translating between two image domains: tiny unpaired pictures
        a, b = _tiny_domains(out.parent)
        cfg["data"] = {"name": "array", "path": str(a), "test_fraction": 0.5}
        for source in contract.sources:
            cfg[f"data_{source}"] = {"name": "array", "path": str(b), "test_fraction": 0.5}
        for role in contract.roles:
            cfg[role] = {"name": "auto", "width": 8}
        cfg["runtime"] = {"threads": 1}
        cfg["train"]["batch_size"] = 16    # four generators' passes a step
    if contract.data_kinds == ("image",) and pairs is None and not contract.sources:   # pictures with labels
        a, _ = _tiny_domains(out.parent)
        cfg["data"] = {"name": "array", "path": str(a), "test_fraction": 0.5}
        for role in contract.roles:
            cfg[role] = {"name": "auto", "width": 8}
        cfg["runtime"] = {"threads": 1}
        cfg["train"]["batch_size"] = 16
    if "text" in contract.needs:                # text-to-image: a few Fashion-MNIST pictures with sentences
        cfg["data"] = {"name": "fashion_mnist_text", "n_samples": 300}
        for role in contract.roles:
            cfg[role] = {"name": "auto", "width": 8}
        cfg["runtime"] = {"threads": 1}
        cfg["train"]["batch_size"] = 16
    if "domain" in contract.needs:              # translating between the domains of one data set
        cfg["data"] = {"name": "array", "path": str(_tiny_styles(out.parent)), "test_fraction": 0.5,
                       "fields": ["domain"]}
        for role in contract.roles:
            cfg[role] = {"name": "auto", "width": 8}
        cfg["runtime"] = {"threads": 1}
        cfg["train"]["batch_size"] = 16
    for source in contract.sources:             # a further source of the same data (a labelled subset)
        cfg.setdefault(f"data_{source}", {**cfg["data"], "per_class": 10})
    if "tokens" in contract.data_kinds:         # sequence methods: a tiny synthetic oracle's sequences
        cfg["data"] = {"name": "oracle", "n_samples": 300, "n_test": 100, "vocab": 30, "length": 8}
        if "domain" in contract.needs:          # sentences of two styles: a few scored quotations
            cfg["data"] = {"name": "sentiment", "n_samples": 200, "max_words": 8, "min_count": 3}
        for role in contract.roles:
            cfg[role] = {"name": "auto"}
        cfg["runtime"] = {"threads": 1}
        cfg["train"]["batch_size"] = 16
    if "sentence" in contract.needs:             # documents and short sentences (summarize): few, a small vocabulary
        cfg["data"] = {"name": "documents", "n_samples": 64, "max_words": 30, "min_count": 10}
    for role in ("generator", "discriminator"):  # a method without a discriminator (vae) takes no such section
        if role not in contract.roles:
            del cfg[role]
    return cfg


def _tensors(run):
    state = run.method.state_dict()
    out = {}

    def walk(prefix, value):
        if torch.is_tensor(value):
            out[prefix] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}", v)

    walk("", state)
    return out


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_method_keeps_the_contract(tmp_path, method):
    contract = contract_of(method)
    if "text" in contract.needs and not os.path.isdir(FASHION_MNIST_DEBIAN_DIR):
        pytest.skip("text-to-image trains on fashion_mnist_text: apt-get install dataset-fashion-mnist")
    straight = gankit.train(_config(tmp_path / "straight", method, 8))
    stopped = gankit.train(_config(tmp_path / "resumed", method, 4))
    assert stopped.step == 4
    resumed = gankit.resume(stopped.path, steps=8)
    a, b = _tensors(straight), _tensors(resumed)
    assert a.keys() == b.keys() and a
    for key in a:                                   # bit-identical: weights, optimisers, EMA, method state
        assert torch.equal(a[key], b[key]), f"{method}: {key} differs after resume"

    loaded = gankit.load_run(straight.path)
    out = loaded.generate(40, seed=1)
    assert out["x"].shape == (40, *loaded.info.shape) and torch.isfinite(out["x"]).all()
    torch.testing.assert_close(loaded.sample(40, seed=1), out["x"])
    data = straight.data
    for name in contract.conditions:                # given conditions come back as asked
        if loaded.info.fields[name].kind == "image":
            field = contract.inputs.get(name, name)          # SOURCE.FIELD: a further source's field
            source, _, field = field.rpartition(".")
            images = (straight.sources[source] if source else data).tensors()[field][:16]
            given = loaded.generate(16, seed=2, given={name: images.float() / 127.5 - 1})
            torch.testing.assert_close(given[name], images.float() / 255)
        elif loaded.info.fields[name].kind == "tokens":        # sentences as word numbers
            words = data.tensors()[contract.inputs.get(name, name)][:16]
            given = loaded.generate(16, seed=2, given={name: words})
            assert torch.equal(given[name], words)
        else:
            label = min(3, loaded.info.fields[name].n_classes - 1)
            given = loaded.generate(16, seed=2, given={name: label})
            assert bool((given[name] == label).all())

    from gankit.metrics.evaluate import evaluate_run

    if loaded.info.kind == "image":                 # paired images: FID on pixels and the method's own metrics
        judged = "conditional_accuracy" in contract.metrics     # needs a classifier: the shipped one
        result = evaluate_run(loaded, metrics=["fid", *contract.metrics], n=300,
                              features="fashion_mnist" if judged else "pixels")
        assert result["fid"] >= 0 and all(torch.isfinite(torch.tensor(v)) for v in result.values())
        assert set(contract.metrics) <= set(result)
    elif "sentence" in contract.needs:              # summaries of held-out documents: the method's own judges, briefly
        result = evaluate_run(loaded, metrics=["summary_quality:judge_steps=3:lm_steps=3:train_docs=16:docs=8"], n=16)
        assert {"summary_nll", "summary_rouge1_recall", "summary_perplexity", "summary_d_human"} <= set(result)
        assert all(torch.isfinite(torch.tensor(v)) for v in result.values())
    elif loaded.info.kind == "tokens" and contract.inputs:   # sentences rewritten: the method's own metrics
        result = evaluate_run(loaded, metrics=[f"{m}:lm_steps=20" for m in contract.metrics], n=60)
        assert result and all(torch.isfinite(torch.tensor(v)) for v in result.values())
    elif loaded.info.kind == "tokens":              # sequences: the oracle's NLL, held-out NLL, BLEU, self-BLEU
        result = evaluate_run(loaded, n=200)
        assert {"nll_oracle", "nll_test", "bleu2", "self_bleu2"} <= set(result)
        assert all(torch.isfinite(torch.tensor(v)) for v in result.values())
        given = loaded.generate(8, seed=2, given={"prefix": data.x[:1, :3]})
        assert torch.equal(given["x"][:, :3], data.x[:1, :3].expand(8, -1))
    else:
        result = evaluate_run(loaded, metrics=["modes", "fid"], n=600)
        assert 0 <= result["modes"] <= 8 and result["fid"] >= 0


def test_the_contract_names_fields_roles_and_metrics():
    for name in METHOD_NAMES:
        c = contract_of(name)
        assert "x" in c.needs
        assert set(c.conditions) <= set(c.needs) | set(c.inputs)   # a field, or samples of one (inputs)
        assert set(c.inputs.values()) <= set(c.needs)
        assert "generator" in c.roles and set(c.ema) <= set(c.roles)


def test_one_permutation_indexes_every_field():
    x = torch.arange(40, dtype=torch.float32)[:, None].repeat(1, 2)
    fields = {"x": x, "y": torch.arange(40), "tag": torch.arange(40) * 10}
    stream = BatchStream(fields, 8, seed=3)
    for _ in range(12):                             # across epoch boundaries
        b = stream.next()
        assert torch.equal(b["x"][:, 0].long(), b["y"]) and torch.equal(b["tag"], b["y"] * 10)
    state = stream.state_dict()
    again = BatchStream(fields, 8, seed=3)
    again.load_state_dict(state)
    assert torch.equal(again.next()["y"], stream.next()["y"])


def test_data_sets_describe_their_fields(tmp_path):
    import numpy as np

    ds = Dataset(x=torch.zeros(6, 1, 4, 4, dtype=torch.uint8), kind="image", name="t",
                 y=torch.tensor([0, 1, 1, 2, 2, 2]), classes=["a", "b", "c"],
                 extra={"mask": torch.ones(6, 3)}, extra_kinds={"mask": "multilabel"})
    f = ds.fields()
    assert f["x"] == Field("image", (1, 4, 4))
    assert f["y"].classes == ("a", "b", "c")
    assert f["y"].frequencies == pytest.approx((1 / 6, 2 / 6, 3 / 6))
    assert f["mask"].kind == "multilabel" and f["mask"].shape == (3,)
    batch = ds.to_model({k: v[:2] for k, v in ds.tensors().items()})
    assert batch["x"].dtype == torch.float32 and float(batch["x"].min()) == -1.0
    assert batch["y"].dtype == torch.int64
    info = DataInfo.of(ds)
    assert DataInfo.from_dict(info.to_dict()) == info and info.n_classes == 3

    with pytest.raises(ValueError, match="labels"):
        Dataset(x=torch.zeros(6, 2), kind="vector", name="t", y=torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="'tag' has 5 samples"):
        Dataset(x=torch.zeros(6, 2), kind="vector", name="t", extra={"tag": torch.zeros(5, dtype=torch.long)})

    path = tmp_path / "a.npz"
    np.savez(path, x=np.zeros((10, 3), np.float32), y=np.arange(10) % 2, tag=np.arange(10), other=np.ones(4))
    data = gankit.api.build_data(gankit.api.make_config({"data": {"name": "array", "path": str(path),
                                                                    "fields": ["tag"]}}))
    assert set(data.tensors()) == {"x", "y", "tag"} and data.tensors()["tag"].tolist() == list(range(10))
    from gankit.errors import DataError

    with pytest.raises(DataError, match="'other' has shape"):
        gankit.api.build_data(gankit.api.make_config({"data": {"name": "array", "path": str(path),
                                                               "fields": ["other"]}}))


def test_toy_data_carries_the_mode_as_its_label():
    data = gankit.api.build_data(gankit.api.make_config({"data": {"name": "ring8", "n_samples": 500}}))
    nearest = torch.cdist(data.x.double(), data.modes.double()).argmin(1)
    assert torch.equal(nearest, data.y)


def test_learning_rates_per_role(tmp_path):
    from gankit.errors import ConfigError

    cfg = _config(tmp_path / "run", "cgan", 1)
    cfg["optim"] = {"lr_g": 3e-4, "lr_d": 2e-4, "lr": {"discriminator": 1e-3}}
    run = gankit.train(cfg)
    assert run.method.optimizers["discriminator"].param_groups[0]["initial_lr"] == 1e-3
    assert run.method.optimizers["generator"].param_groups[0]["initial_lr"] == 3e-4
    with pytest.raises(ConfigError, match="no network role 'encoder'.*generator, discriminator"):
        gankit.api.make_config(None, ["optim.lr.encoder=1e-4"])


# ------------------------------------------------------------- further roles and sources
class _Twin(Adversarial):
    """A test method with a third network role (a second discriminator, on a second data
    source): G learns the main data and the further source's ``b`` at once."""
    contract = Contract(roles={"generator": "generator", "discriminator": "discriminator",
                               "discriminator_b": "discriminator"}, sources=("b",), needs=("x", "b.x"))
    discriminator_roles = ("discriminator", "discriminator_b")

    def __init__(self, runtime, info, cfg):
        super().__init__(runtime, info, cfg)
        self.opt_g, self.opt_d = self.add_pair(self.build_network("generator"), self.build_network("discriminator"))
        self.add_module("discriminator_b", self.build_network("discriminator_b", info.with_shape(info.fields["b.x"].shape)))
        self.opt_b = self.add_optimizer("discriminator_b", self.modules["discriminator_b"].parameters())
        self.seen_b = torch.zeros(())   # method state: how much of source b was seen

    def discriminator_step(self, batch):
        logs = {}
        for role, opt, real in (("discriminator", self.opt_d, batch["x"]),
                                ("discriminator_b", self.opt_b, batch["b.x"])):
            D = self.modules[role]
            fake = self.generator(self.noise(len(real))).detach()
            loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
            self.rt.step(loss, opt, role)
            logs[f"{role}_loss"] = loss.detach()
        self.seen_b += batch["b.x"].sum().detach()
        return logs

    def generator_step(self, batches):
        fake = self.generator(self.noise(len(batches[0]["x"])))
        loss = sum(F.softplus(-self.modules[r](fake)).mean() for r in self.discriminator_roles)
        self.rt.step(loss, self.opt_g, "generator")
        return {"g_loss": loss.detach()}

    def extra_state(self):
        return {"seen_b": self.seen_b.clone()}

    def load_extra_state(self, state):
        self.seen_b = state["seen_b"].clone()


@pytest.fixture
def twin():
    def factory(runtime, info, cfg, /):
        return _Twin(runtime, info, cfg)

    factory.contract = _Twin.contract
    METHODS.register("twin")(factory)
    yield "twin"
    METHODS._entries.pop("twin")


def _twin_config(out, steps):
    cfg = _config(out, "twin", steps)
    cfg["data_b"] = {"name": "grid25", "n_samples": 700}      # another size: its epochs end elsewhere
    cfg["discriminator_b"] = {"name": "mlp", "hidden": 8, "layers": 2}
    cfg["optim"] = {"lr": {"discriminator_b": 5e-4}}
    return cfg


def test_a_method_declares_further_roles_and_sources(tmp_path, twin):
    from gankit.errors import ConfigError

    cfg = gankit.api.make_config(_twin_config(tmp_path / "x", 2))
    assert cfg.networks["discriminator_b"]["hidden"] == 8 and cfg.sources["b"]["name"] == "grid25"
    again = gankit.api.make_config(gankit.config.to_dict(cfg))     # config.yaml holds the sections
    assert again.networks == cfg.networks and again.sources == cfg.sources
    assert gankit.api.make_config(cfg, ["discriminator_b.hidden=12"]).networks["discriminator_b"]["hidden"] == 12

    no_b = _twin_config(tmp_path / "x", 2)
    del no_b["data_b"]
    with pytest.raises(ConfigError, match="further data source 'b'.*data_b"):
        gankit.api.make_config(no_b)
    with pytest.raises(ConfigError, match="method gan has no network role 'discriminator_b'"):
        gankit.api.make_config({"discriminator_b": {"name": "mlp"}})
    with pytest.raises(ConfigError, match="method gan trains on no further data source 'b'"):
        gankit.api.make_config(None, ["data_b.name=ring8"])
    with pytest.raises(ConfigError, match="unknown section 'discriminatr_c'"):
        gankit.api.make_config({"discriminatr_c": {"name": "mlp"}})
    with pytest.raises(ConfigError, match="discriminator_b.widht: not a parameter"):
        gankit.api.make_config(_twin_config(tmp_path / "x", 2), ["discriminator_b.name=auto",
                                                                 "discriminator_b.widht=3"])


def test_further_sources_advance_independently_and_resume_exactly(tmp_path, twin):
    straight = gankit.train(_twin_config(tmp_path / "straight", 30))
    state = torch.load(sorted((straight.path / "checkpoints").glob("step_*.pt"))[-1], weights_only=False)
    data_state = state["data"]
    # 30 steps of 64: the main set (1000 samples, 15 batches an epoch) and b (700, 10 an epoch)
    assert (data_state["epoch"], data_state["position"]) == (1, 15)
    assert (data_state["sources"]["b"]["epoch"], data_state["sources"]["b"]["position"]) == (2, 10)
    assert straight.method.optimizers["discriminator_b"].param_groups[0]["initial_lr"] == 5e-4
    assert straight.info.fields["b.x"].shape == (2,)

    stopped = gankit.train(_twin_config(tmp_path / "resumed", 12))
    resumed = gankit.resume(stopped.path, steps=30)
    a, b = _tensors(straight), _tensors(resumed)
    assert a.keys() == b.keys() and any("discriminator_b" in k for k in a) and any("seen_b" in k for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume"


@pytest.mark.parametrize("method", ["gan", "ebgan", "loss_sensitive"])
def test_a_noise_method_refuses_an_image_to_image_generator(tmp_path, image_npz, method):
    from gankit.errors import ConfigError

    cfg = {"method": {"name": method}, "data": {"name": "array", "path": str(image_npz)},
           "generator": {"name": "unet"}, "train": {"steps": 1, "batch_size": 8, "progress": "none"},
           "out": str(tmp_path / "run")}
    with pytest.raises(ConfigError, match="generator 'unet' maps images to images.*generator.name=auto"):
        gankit.train(cfg)
    assert not (tmp_path / "run").exists()
