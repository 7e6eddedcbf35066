import pytest
import torch
from e3nn import o3

from moldiff.data.com import max_abs_mean
from moldiff.errors import MoldiffError
from moldiff.nets.egnn import EGNN
from moldiff.nets.precision import resolve_precision, set_precision
from moldiff.nets.predictor import PropertyPredictor
from test_egnn import _molecules as egnn_molecules


def _molecules(seed=0):
    """Three molecules in float32, off-centre: coordinates that bfloat16 could not hold."""
    x, h, t, batch, ptr = egnn_molecules(seed, counts=(9, 4, 12))
    return x.float() + 5.0, h.float(), t.float(), batch, ptr


def _egnn():
    """A network as well conditioned as a trained one (random weights everywhere make a chaotic map
    that amplifies any rounding), with the zero- and near-zero-initialised output layers opened."""
    torch.manual_seed(0)
    net = EGNN(in_features=5, hidden=32, layers=3)
    torch.nn.init.normal_(net.out[1].weight, std=0.1)
    for layer in net.layers:
        torch.nn.init.normal_(layer.coord_mlp[2].weight, std=0.01)
    return net


def test_bf16_egnn_stays_close_to_fp32_and_keeps_the_input_dtype():
    net = _egnn()
    x, h, t, batch, ptr = _molecules()
    dx32, dh32 = net(x, h, t, batch, ptr)
    set_precision(net, "bf16")
    dx16, dh16 = net(x, h, t, batch, ptr)
    assert dx16.dtype == torch.float32 and dh16.dtype == torch.float32
    assert not torch.equal(dx16, dx32)  # bfloat16 did run
    # relative error of a few bfloat16 roundings, not of coordinates rounded to 8 bits
    assert (dx16 - dx32).norm() / dx32.norm() < 0.03
    assert (dh16 - dh32).norm() / dh32.norm() < 0.03
    assert max_abs_mean(dx16, batch) < 1e-5  # still a zero-CoM displacement


def test_bf16_egnn_is_still_equivariant():
    net = set_precision(_egnn(), "bf16")
    x, h, t, batch, ptr = _molecules(1)
    dx, dh = net(x, h, t, batch, ptr)
    R = o3.rand_matrix() * -1  # a rotation with a reflection
    dx2, dh2 = net(x @ R.T + torch.tensor([[3.0, -1.0, 2.0]]), h, t, batch, ptr)
    # bfloat16 rounds the rotated inputs differently: equal to its own rounding error
    assert (dx2 - dx @ R.T).norm() / dx.norm() < 0.03
    assert (dh2 - dh).norm() / dh.norm() < 0.03


def test_fp32_precision_is_bit_for_bit_the_plain_network():
    net = _egnn()
    x, h, t, batch, ptr = _molecules(2)
    before = net(x, h, t, batch, ptr)
    set_precision(net, "bf16")
    net(x, h, t, batch, ptr)
    set_precision(net, "fp32")
    after = net(x, h, t, batch, ptr)
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_bf16_predictor_trains_with_float32_gradients():
    torch.manual_seed(0)
    net = set_precision(PropertyPredictor(5, 2, hidden=32, layers=2), "bf16")
    x, h, t, batch, ptr = _molecules(3)
    y = net(x, h, t, batch, ptr)
    assert y.dtype == torch.float32 and y.shape == (3, 2)
    y.square().sum().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]  # the last coordinate MLP feeds nothing
    assert net.embed.weight.grad is not None and len(grads) > 10
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_precision_names_are_checked():
    with pytest.raises(MoldiffError, match="unknown precision"):
        resolve_precision("fp16")
    assert resolve_precision("auto") in ("fp32", "bf16")
    assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(MoldiffError, match="resolve 'auto' first"):
        set_precision(_egnn(), "auto")


def test_a_plan_sets_the_precision_of_every_network_it_samples_with():
    from types import SimpleNamespace

    from moldiff.flowmap.sampler import FlowMapSampler
    from moldiff.guidance.plan import GuidancePlan

    diffusion, flow_map, predictor = _egnn(), _egnn(), PropertyPredictor(5, 1, hidden=8, layers=1)
    wrapped = SimpleNamespace(inner=SimpleNamespace(inner=SimpleNamespace(net=diffusion)))  # guidance wrappers
    GuidancePlan(generator=SimpleNamespace(denoiser=wrapped), predictor=SimpleNamespace(net=predictor)).set_precision("bf16")
    GuidancePlan(generator=SimpleNamespace(denoiser=FlowMapSampler(flow_map, schedule=None))).set_precision("bf16")
    assert diffusion.precision == flow_map.precision == predictor.precision == "bf16"
