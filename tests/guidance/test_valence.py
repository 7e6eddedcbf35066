"""The valence guard of scaffold inpainting: free atoms stay out of bonding range of scaffold atoms
with no open valence, the nearest v_j atoms of an atom with v_j open valences may bond, and the
guard is equivariant and keeps the molecule zero-CoM; scaffolds know their open valences."""

import numpy as np
import pytest
import torch

from moldiff.chem.conformers import smiles_to_3d
from moldiff.chem.io import write_sdf
from moldiff.chem.substructure import fragment_from_sdf, fragment_from_smiles
from moldiff.data.com import max_abs_mean
from moldiff.data.elements import QM9_ELEMENTS
from moldiff.data.molset import MolSet
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState, coordinate_fields
from moldiff.guidance.inpaint import Scaffold, inpaint_solver
from moldiff.guidance.valence import MARGIN, ValenceGuard, bond_radii
from moldiff.solvers import get_solver, solver_times

H, C, N = 0, 1, 2  # QM9_ELEMENTS types
R_NH = 1.01 + 0.10 + MARGIN  # EDM N-H threshold + margin, Å
R_CH = 1.09 + 0.10 + MARGIN


def _state(positions, types):
    """One molecule as a zero-CoM state (N, 3 + 5) with one-hot types scaled by 0.25."""
    pos = torch.tensor(positions, dtype=torch.float64)
    h = torch.nn.functional.one_hot(torch.tensor(types), 5).double() * 0.25
    graph = MolGraph.from_counts(torch.tensor([len(types)]))
    return MolState({"coords": pos, "types": h}, coordinate_fields(5, 0.25), graph).project().columns(), graph


def _guard(guard, z, graph):
    """``guard`` on a state given as its columns (N, 3 + 5), as columns."""
    return guard(MolState.from_columns(z, coordinate_fields(5, 0.25), graph), graph).columns()


# scaffold N (no room) and C (room for one); free: H on N, H on C, a second H on C, a far C
POSITIONS = [[0.0, 0.0, 0.0], [1.4, 0.0, 0.0], [-0.2, 1.0, 0.0], [1.9, 0.95, 0.0], [2.0, -0.9, 0.3], [5.0, 3.0, 1.0]]
TYPES = [N, C, H, H, H, C]
GUARD = ValenceGuard.build(torch.tensor([N, C]), [0, 1], QM9_ELEMENTS)


def _distances(z):
    x = z[:, :3]
    return torch.cdist(x[2:], x[:2])  # (free, scaffold)


def test_excess_atoms_leave_bonding_range_and_the_rest_keeps_its_place():
    z, graph = _state(POSITIONS, TYPES)
    before, after = _distances(z), _distances(_guard(GUARD, z, graph))
    assert before[0, 0] < R_NH and after[0, 0] == pytest.approx(R_NH, abs=1e-9)  # pushed off the N
    nearest_to_c = int(before[:, 1].argmin())
    assert after[nearest_to_c, 1] == pytest.approx(float(before[nearest_to_c, 1]), abs=1e-9)  # allowed to bond
    others = [i for i in (1, 2) if i != nearest_to_c]
    assert all(after[i, 1] >= R_CH - 1e-9 for i in others)  # the second H is moved out
    assert after[3].tolist() == pytest.approx(before[3].tolist(), abs=1e-9)  # far atoms untouched
    out = _guard(GUARD, z, graph)
    torch.testing.assert_close(out[1, :3] - out[0, :3], z[1, :3] - z[0, :3])  # the scaffold's shape
    assert max_abs_mean(out[:, :3], graph.batch, 1) < 1e-12
    torch.testing.assert_close(out[:, 3:], z[:, 3:])  # types untouched


def test_room_for_every_atom_moves_nothing():
    z, graph = _state(POSITIONS, TYPES)
    roomy = ValenceGuard.build(torch.tensor([N, C]), [1, 2], QM9_ELEMENTS)
    torch.testing.assert_close(_guard(roomy, z, graph), z)


def test_guard_is_rotation_and_free_atom_permutation_equivariant():
    z, graph = _state(POSITIONS, TYPES)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    rotated = torch.cat([z[:, :3] @ q.T, z[:, 3:]], 1)
    torch.testing.assert_close(_guard(GUARD, rotated, graph)[:, :3], _guard(GUARD, z, graph)[:, :3] @ q.T)
    perm = torch.tensor([0, 1, 5, 3, 2, 4])  # scaffold atoms stay first
    torch.testing.assert_close(_guard(GUARD, z[perm], graph), _guard(GUARD, z, graph)[perm])


def test_batches_of_several_sizes_are_guarded_molecule_by_molecule():
    z1, _ = _state(POSITIONS, TYPES)
    z2, _ = _state(POSITIONS[:4], TYPES[:4])
    graph = MolGraph.from_counts(torch.tensor([6, 4]))
    both = _guard(GUARD, torch.cat([z1, z2]), graph)
    torch.testing.assert_close(both[:6], _guard(GUARD, z1, MolGraph.from_counts(torch.tensor([6]))))
    torch.testing.assert_close(both[6:], _guard(GUARD, z2, MolGraph.from_counts(torch.tensor([4]))))


def test_radii_are_the_bond_rule_thresholds_plus_margin():
    radii = bond_radii(QM9_ELEMENTS)
    assert radii[N, H] == pytest.approx(R_NH) and radii[H, C] == pytest.approx(R_CH)
    assert torch.equal(radii, radii.T)


def test_inpainting_with_the_guard_keeps_free_atoms_off_a_full_scaffold():
    # Gaussian toy data bonds atoms anywhere; a scaffold with no open valence must end up bond-free
    data = GaussianData(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64), 0.9, std_h=0.3)
    scaffold = Scaffold(torch.tensor([[0.0, 0.0, 0.0], [1.4, 0.0, 0.0]], dtype=torch.float64), torch.tensor([N, C]))
    guard = ValenceGuard.build(scaffold.types, [0, 0], QM9_ELEMENTS)
    schedule = make_schedule("polynomial")
    denoiser = Denoiser(data.network(schedule), schedule, "eps")
    graph = MolGraph.from_counts(torch.tensor([9] * 8))
    radii = bond_radii(QM9_ELEMENTS)

    def closest_gap(guarded):
        noise = MoleculeNoise(list(range(8)), graph, data.fields, dtype=torch.float64)
        sample = inpaint_solver(get_solver("ddpm"), scaffold, 0.25, guard=guard if guarded else None)
        z = sample(denoiser, noise.randn(), solver_times("ddpm", 50, schedule), graph, noise).columns()
        gaps = []
        for b in range(8):
            mol = z[graph.ptr[b] : graph.ptr[b + 1]]
            d = torch.cdist(mol[2:, :3], mol[:2, :3])
            r = radii[scaffold.types[None, :], mol[2:, 3:].argmax(1)[:, None]]
            gaps.append(float((d - r).min()))
        return min(gaps)

    assert closest_gap(False) < -0.3  # the toy puts atoms in bonding range ...
    assert closest_gap(True) > -0.05  # ... and the guard keeps them out (to the last step's noise)


def test_scaffolds_know_their_open_valences(tmp_path):
    assert fragment_from_smiles("c1ccncc1").open_valence.tolist() == [1, 1, 1, 0, 1, 1]
    assert fragment_from_smiles("C1CCOC1").open_valence.tolist() == [2, 2, 2, 0, 2]
    assert fragment_from_smiles("c1ccncc1", hydrogens=True).open_valence.tolist() == [0] * 11
    amide = fragment_from_smiles("*NC(=O)c1ccccc1")
    assert amide.open_valence.tolist() == [1] + [0] * 14  # only the nitrogen grows
    conf = smiles_to_3d("CC(=O)O")
    write_sdf(tmp_path / "acid.sdf", MolSet(conf.atomic_numbers, conf.positions, ptr=np.array([0, len(conf.atomic_numbers)])))
    acid = fragment_from_sdf(tmp_path / "acid.sdf")
    assert acid.atomic_numbers.tolist() == [6, 6, 8, 8]
    assert acid.open_valence.tolist() == [3, 0, 0, 1] and acid.open_hydrogens == 4
    assert np.all(fragment_from_sdf(tmp_path / "acid.sdf", hydrogens=True).open_valence == 0)
