import pytest
import torch

from gankit import ConfigError
from gankit.nets.dcgan import dcgan_discriminator, dcgan_generator, plan
from gankit.nets.mlp import mlp_discriminator, mlp_generator


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 16, 16)])
def test_dcgan_shapes(shape):
    g = dcgan_generator(shape, z_dim=10, width=8)
    d = dcgan_discriminator(shape, width=8)
    x = g(torch.randn(5, 10))
    assert x.shape == (5, *shape)
    assert x.min() >= -1 and x.max() <= 1
    assert d(x).shape == (5,)


def test_dcgan_plan():
    assert plan((1, 28, 28)) == (7, 2)
    assert plan((3, 32, 32)) == (4, 3)
    assert plan((3, 64, 64)) == (4, 4)
    with pytest.raises(ConfigError, match="square"):
        plan((1, 28, 32))
    with pytest.raises(ConfigError, match="cannot fit 7x7"):
        plan((1, 7, 7))
    with pytest.raises(ConfigError, match="image data"):
        plan((2,))


def test_mlp_shapes():
    g, d = mlp_generator((2,), z_dim=3, hidden=16), mlp_discriminator((2,), hidden=16)
    x = g(torch.randn(7, 3))
    assert x.shape == (7, 2) and d(x).shape == (7,)
    gi = mlp_generator((1, 8, 8), z_dim=3, hidden=16)
    xi = gi(torch.randn(4, 3))
    assert xi.shape == (4, 1, 8, 8) and xi.abs().max() <= 1
    assert mlp_discriminator((1, 8, 8), hidden=16)(xi).shape == (4,)
    with pytest.raises(ConfigError, match="layers >= 1"):
        mlp_generator((2,), layers=0)


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_dcgan_discriminator_norm_treats_samples_independently_unless_batch(norm):
    torch.manual_seed(0)
    d = dcgan_discriminator((1, 28, 28), width=8, norm=norm).train()
    x = torch.randn(6, 1, 28, 28)
    alone = d(x[:3])
    together = d(x)[:3]
    independent = torch.allclose(alone, together, atol=1e-5)
    assert independent == (norm != "batch")   # batch norm mixes the samples of a batch
    kinds = {type(m).__name__ for m in d.modules()}
    assert ("BatchNorm2d" in kinds) == (norm == "batch") and ("GroupNorm" in kinds) == (norm == "layer")


@pytest.mark.parametrize("minibatch_kernels", [0, 4])
def test_dcgan_channels_last_gives_the_same_numbers_and_keeps_the_layout(minibatch_kernels):
    """channels_last networks (the runtime's choice for images) read out in memory order and
    hand the first generator map over in that layout: same outputs and gradients as the
    contiguous networks, and (without minibatch discrimination) every activation's gradient
    in the layout its forward saved."""
    import copy

    torch.manual_seed(0)
    g = dcgan_generator((3, 32, 32), z_dim=10, width=8).double()
    d = dcgan_discriminator((3, 32, 32), width=8, minibatch_kernels=minibatch_kernels).double()
    g_cl = copy.deepcopy(g).to(memory_format=torch.channels_last)
    d_cl = copy.deepcopy(d).to(memory_format=torch.channels_last)
    z = torch.randn(6, 10, dtype=torch.float64)
    outs, grads = [], []
    for gen, disc in ((g, d), (g_cl, d_cl)):
        layouts = []
        for m in list(gen.modules()) + list(disc.modules()):
            if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU)):
                def keep(mod, inp, out, layouts=layouts):
                    saved = out.is_contiguous(memory_format=torch.channels_last)
                    out.register_hook(lambda grad: layouts.append(
                        (saved, grad.is_contiguous(memory_format=torch.channels_last))))
                m.register_forward_hook(keep)
        out = disc(gen(z))
        out.sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in list(gen.parameters()) + list(disc.parameters())])
        if not minibatch_kernels:  # minibatch discrimination reads (C, H, W)-ordered features: a copy
            assert layouts and all(saved == got for saved, got in layouts), layouts
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-10, atol=1e-12)
    for a, b in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("channels", [1, 3])
def test_conv_transpose_by_fold_is_the_transposed_convolution(channels):
    """The generator's last layer on the CPU: one product and a fold give the library's
    stride-2 transposed convolution, values and gradients (float64), and under bf16 autocast
    a float32 result within bf16 rounding of it."""
    from torch.nn import functional as F
    from gankit.nets.dcgan import conv_transpose_by_fold

    torch.manual_seed(0)
    x = torch.randn(4, 16, 7, 7, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(16, channels, 4, 4, dtype=torch.float64)
    b = torch.randn(channels, dtype=torch.float64)
    ours_in = [t.clone().requires_grad_() for t in (x, w, b)]
    ref_in = [t.clone().requires_grad_() for t in (x, w, b)]
    ours, ref = conv_transpose_by_fold(*ours_in), F.conv_transpose2d(*ref_in, stride=2, padding=1)
    assert ours.shape == ref.shape == (4, channels, 14, 14)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    for a, r in zip(torch.autograd.grad(ours, ours_in, g), torch.autograd.grad(ref, ref_in, g)):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = conv_transpose_by_fold(x.float().to(torch.bfloat16), w.float(), b.float())
    assert low.dtype == torch.float32
    torch.testing.assert_close(low.double(), ref.detach(), rtol=0.05, atol=0.1)


def test_adam_runs_fused_where_pytorch_has_the_kernel():
    from gankit.config import OptimConfig
    from gankit.methods.base import make_optimizer

    net = torch.nn.Linear(3, 2)
    adam = make_optimizer(net.parameters(), 1e-3, OptimConfig())
    assert adam.defaults["fused"] is True
    rms = make_optimizer(net.parameters(), 1e-3, OptimConfig(optimizer="rmsprop"))
    assert rms.defaults["foreach"] is True
