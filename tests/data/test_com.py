import pytest
import torch

from moldiff.data.com import max_abs_mean, molecule_mean, randn_zero_mean, remove_mean


def _batch() -> torch.Tensor:
    return torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])


def test_molecule_mean_matches_a_loop():
    x = torch.randn(9, 3, generator=torch.Generator().manual_seed(0))
    batch = _batch()
    expected = torch.stack([x[batch == i].mean(0) for i in range(3)])
    torch.testing.assert_close(molecule_mean(x, batch, 3), expected)


def test_remove_mean_gives_zero_mean_per_molecule_and_is_idempotent():
    x = torch.randn(9, 3, generator=torch.Generator().manual_seed(1)) + 10.0
    batch = _batch()
    y = remove_mean(x, batch)
    assert max_abs_mean(y, batch) < 1e-5
    torch.testing.assert_close(remove_mean(y, batch), y)
    # only translation is removed: relative positions inside a molecule are unchanged
    torch.testing.assert_close(y[1] - y[0], x[1] - x[0])


def test_remove_mean_with_an_empty_trailing_molecule():
    x, batch = torch.ones(2, 3), torch.tensor([0, 0])
    assert molecule_mean(x, batch, 2)[1].tolist() == [0.0, 0.0, 0.0]
    assert remove_mean(x, batch, 2).abs().max() == 0


def test_randn_zero_mean_is_seeded_and_centred():
    batch = _batch()
    a = randn_zero_mean((9, 3), batch, 3, generator=torch.Generator().manual_seed(7))
    b = randn_zero_mean((9, 3), batch, 3, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)
    assert max_abs_mean(a, batch, 3) < 1e-6


def test_shape_errors_print_the_shapes():
    with pytest.raises(ValueError, match=r"got \(9,\) and \(9,\)"):
        molecule_mean(torch.zeros(9), _batch(), 3)
    with pytest.raises(ValueError, match=r"got \(4, 3\) and \(9,\)"):
        remove_mean(torch.zeros(4, 3), _batch())
