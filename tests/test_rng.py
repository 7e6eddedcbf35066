"""Seeded draws land on the device asked for, with the numbers the generator's own device gives."""

import pytest
import torch

from moldiff import rng


@pytest.mark.parametrize("draw", ["rand", "randn"])
def test_a_seeded_draw_equals_torchs_own_on_the_generators_device(draw):
    expected = getattr(torch, draw)((5, 3), generator=torch.Generator().manual_seed(7))
    got = getattr(rng, draw)((5, 3), generator=torch.Generator().manual_seed(7), device="cpu")
    assert torch.equal(got, expected)


def test_a_cpu_generator_draws_onto_another_device():
    # "meta" stands in for a GPU, where torch.rand(..., generator=cpu_gen, device="cuda") raises
    gen = torch.Generator().manual_seed(0)
    for x in (rng.rand(4, generator=gen, device="meta"), rng.randn((2, 3), generator=gen, device="meta"),
              rng.randint(5, 6, generator=gen, device="meta")):  # fmt: skip
        assert x.device.type == "meta"


def test_randint_stays_below_high_and_an_int_shape_is_one_dimensional():
    x = rng.randint(3, 1000, generator=torch.Generator().manual_seed(1), device="cpu")
    assert x.shape == (1000,) and int(x.min()) == 0 and int(x.max()) == 2


def test_without_a_generator_it_draws_on_the_device_directly():
    assert rng.rand(3, device="meta").device.type == "meta"
    assert rng.randn(3).dtype == torch.float32


def test_randint_with_a_dtype_equals_torchs_own_draw():
    expected = torch.randint(0, 2, (7, 4), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    got = rng.randint(2, (7, 4), generator=torch.Generator().manual_seed(3), device="cpu", dtype=torch.float64)
    assert torch.equal(got, expected) and got.dtype == torch.float64
