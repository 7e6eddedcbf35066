"""Scaffold inpainting: the scaffold atoms come out exactly where given (up to the one global
translation the zero-CoM subspace leaves free, which ``align_to_scaffold`` removes) with their
types; the molecule stays zero-CoM; and, on Gaussian data, where the true conditional is known,
the free atoms and the scaffold's centroid have the right law (no pull from the CoM handling)."""

import numpy as np
import pytest
import torch

from moldiff.data.com import max_abs_mean
from moldiff.data.elements import QM9_ELEMENTS
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import MolGraph, MoleculeNoise
from moldiff.errors import MoldiffError
from moldiff.generator import MoleculeGenerator
from moldiff.guidance.inpaint import Scaffold, generate_with_scaffold, inpaint_solver
from moldiff.nets import EGNN
from moldiff.sampling import molecule_seeds
from moldiff.solvers import get_solver, solver_times

SCAFFOLD = Scaffold(torch.tensor([[5.0, 1.0, -2.0], [6.2, 1.1, -2.3], [5.4, 2.3, -1.5]], dtype=torch.float64),
                    torch.tensor([1, 3, 2]))  # C, O, N  # fmt: skip
DATA = GaussianData(torch.tensor([0.25, 0.0, 0.1, 0.0, 0.0], dtype=torch.float64), 0.8, std_h=0.2)


def _gaussian(counts, solver, steps=20, jump=1, resamples=1, seed=0, reconstruction=0.0):
    schedule = make_schedule("polynomial")
    denoiser = Denoiser(DATA.network(schedule), schedule, "eps")
    graph = MolGraph.from_counts(torch.tensor(counts))
    noise = MoleculeNoise([seed + i for i in range(len(counts))], graph, DATA.fields, dtype=torch.float64)
    sample = inpaint_solver(get_solver(solver), SCAFFOLD, 0.25, jump=jump, resamples=resamples,
                            reconstruction=reconstruction)  # fmt: skip
    return sample(denoiser, noise.randn(), solver_times(solver, steps, schedule), graph, noise), graph


def _known_block(z, graph, k=3):
    return z["coords"][SCAFFOLD.mask(graph)].reshape(graph.num_graphs, k, 3)


@pytest.mark.parametrize("solver, jump, resamples, reconstruction", [
    ("ddpm", 1, 1, 0.0), ("ddpm", 4, 3, 0.0), ("dpmpp-2m", 100, 1, 0.0), ("heun", 5, 2, 0.0), ("pc", 1, 1, 0.0),
    ("adaptive", 100, 1, 0.0), ("dpmpp-2m-sde", 1, 1, 10.0), ("ddpm", 4, 2, 3.0),
])  # fmt: skip
def test_scaffold_shape_and_types_are_exact_and_com_stays_zero(solver, jump, resamples, reconstruction):
    z, graph = _gaussian([5, 8, 6], solver, jump=jump, resamples=resamples, reconstruction=reconstruction)
    block = _known_block(z, graph)
    shape = SCAFFOLD.positions - SCAFFOLD.positions.mean(0)
    torch.testing.assert_close(block - block.mean(1, keepdim=True), shape.expand(3, -1, -1), atol=1e-12, rtol=0)
    assert z["types"][SCAFFOLD.mask(graph)].argmax(1).tolist() == SCAFFOLD.types.tolist() * 3
    assert max_abs_mean(z["coords"], graph.batch, 3) < 1e-12
    assert torch.isfinite(z.columns()).all()


@pytest.mark.parametrize("jump, resamples, reconstruction", [(1, 1, 0.0), (5, 2, 0.0), (1, 1, 10.0)])
def test_free_atoms_and_scaffold_centroid_follow_the_true_conditional(jump, resamples, reconstruction):
    # Gaussian data: the scaffold's shape is independent of its centroid and of the other atoms, so
    # conditioning on it must leave their laws as without it: in the zero-CoM frame of n atoms each
    # free coordinate has variance s²(1 − 1/n) and the k-atom centroid s²(1/k − 1/n). Pinning the
    # scaffold's centroid at the origin (a naive replacement) would shrink the latter to ~0. (150
    # ancestral steps: their own variance deficit is ~3 %.) The network's x̂₀ of the scaffold does
    # not depend on the free atoms here, so reconstruction guidance must leave these laws alone.
    n, k, molecules = 6, 3, 300
    z, graph = _gaussian([n] * molecules, "ddpm", steps=150, jump=jump, resamples=resamples,
                         reconstruction=reconstruction)  # fmt: skip
    s2 = DATA.std**2
    centroid = _known_block(z, graph).mean(1)
    free = z["coords"][~SCAFFOLD.mask(graph)]
    assert abs(centroid.var().item() / (s2 * (1 / k - 1 / n)) - 1) < 0.15
    assert abs(free.var().item() / (s2 * (1 - 1 / n)) - 1) < 0.1
    torch.testing.assert_close(z["types"][~SCAFFOLD.mask(graph)].mean(0), DATA.mean_h, atol=0.03, rtol=0)


def _generator():
    torch.manual_seed(0)
    net = EGNN(5, hidden=16, layers=2)
    for p in net.parameters():
        p.data.add_(0.02 * torch.randn_like(p))
    schedule = make_schedule("polynomial")
    return MoleculeGenerator(Denoiser(net, schedule), QM9_ELEMENTS, 0.25, {6: 2, 9: 3, 12: 1})


def test_generated_molecules_hold_the_scaffold_at_its_coordinates():
    gen = _generator()
    times = solver_times("ddpm", 8, gen.denoiser.schedule)
    mols, seeds = generate_with_scaffold(gen, SCAFFOLD, 4, seed=3, solver=get_solver("ddpm"), times=times,
                                         jump=2, resamples=2)  # fmt: skip
    assert set(mols.n_atoms.tolist()) <= {6, 9, 12}
    for i in range(len(mols)):
        z, pos = mols.molecule(i)
        np.testing.assert_allclose(pos[:3], SCAFFOLD.positions.numpy(), atol=1e-4)
        assert z[:3].tolist() == [6, 8, 7]
    assert seeds == molecule_seeds(3, 4)
    # one molecule regenerates alone from its seed
    alone, _ = generate_with_scaffold(gen, SCAFFOLD, 1, seed=3, solver=get_solver("ddpm"), times=times,
                                      n_atoms=int(mols.n_atoms[0]), jump=2, resamples=2)  # fmt: skip
    # equal up to float32 rounding, which depends on the batch and the CPU's kernels; the untrained
    # net blows free atoms out to ~1e3 Å, so the bound is relative (a wrong seed differs by ~100 %)
    np.testing.assert_allclose(alone.positions, mols.molecule(0)[1], rtol=1e-4, atol=1e-4)


def test_scaffold_errors():
    gen = _generator()
    times = solver_times("ddpm", 2, gen.denoiser.schedule)
    with pytest.raises(MoldiffError, match="must exceed"):
        generate_with_scaffold(gen, SCAFFOLD, 1, seed=0, solver=get_solver("ddpm"), times=times, n_atoms=3)
    with pytest.raises(MoldiffError, match="vocabulary"):
        Scaffold.from_atoms([6, 16], np.zeros((2, 3)), QM9_ELEMENTS)
    with pytest.raises(MoldiffError, match="jump"):
        inpaint_solver(get_solver("ddpm"), SCAFFOLD, 0.25, jump=0)


def test_drawn_sizes_leave_room_for_the_hydrogens_the_scaffold_needs():
    from moldiff.chem.substructure import fragment_from_smiles
    from moldiff.guidance.inpaint import scaffold_atom_counts

    ring = fragment_from_smiles("C1CCCCC1")
    assert len(ring.atomic_numbers) == 6 and ring.open_hydrogens == 12
    assert fragment_from_smiles("C1CCCCC1", hydrogens=True).open_hydrogens == 0
    gen = _generator()  # sizes 6, 9, 12 in its histogram
    scaffold = Scaffold(SCAFFOLD.positions, SCAFFOLD.types)
    assert set(scaffold_atom_counts(gen, scaffold, 50, 0, None, open_hydrogens=6)) == {9, 12}
    assert set(scaffold_atom_counts(gen, scaffold, 50, 0, None, open_hydrogens=8)) == {12}
    with pytest.raises(MoldiffError, match="13 atoms or more"):
        scaffold_atom_counts(gen, scaffold, 5, 0, None, open_hydrogens=10)
