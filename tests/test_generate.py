"""The one way to generate molecules: a condition row per molecule reaches that molecule, a molecule
is the same whatever its batch, sizes and seeds are checked, and pair fields get their pairs."""

import pytest
import torch

from moldiff.data.elements import AtomVocabulary
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import FieldSpec
from moldiff.errors import MoldiffError
from moldiff.generate import generate, molecule_seeds
from moldiff.generator import MoleculeGenerator
from moldiff.solvers import get_solver, solver_times

SCHEDULE = make_schedule("polynomial")
DATA = GaussianData(torch.tensor([0.3, -0.3]), 1.0)


def _generator():
    return MoleculeGenerator(Denoiser(DATA.network(SCHEDULE), SCHEDULE, "eps"), AtomVocabulary(("C", "N")), 1.0,
                             {4: 1})  # fmt: skip


def _recording(seen):
    solver = get_solver("ddpm")

    def sample(denoiser, z, times, graph, noise, callback=None):
        seen.append(graph.cond.clone())
        return solver(denoiser, z, times, graph, noise, callback)

    return sample


def test_each_molecule_gets_its_own_condition_row_in_every_batch():
    seen, conditions = [], torch.arange(5.0)[:, None]
    generate(_generator(), molecule_seeds(0, 5), [3, 4, 5, 3, 4], solver=_recording(seen),
             times=solver_times("ddpm", 4, SCHEDULE), conditions=conditions, batch_size=2)  # fmt: skip
    assert [rows.flatten().tolist() for rows in seen] == [[0.0, 1.0], [2.0, 3.0], [4.0]]
    with pytest.raises(MoldiffError, match="one row per molecule"):
        generate(_generator(), [1, 2], [3, 3], solver=get_solver("ddpm"), times=solver_times("ddpm", 4, SCHEDULE),
                 conditions=torch.zeros(3, 1))  # fmt: skip


def test_a_molecule_is_the_same_whatever_its_batch():
    seeds, sizes, times = molecule_seeds(3, 4), [3, 5, 4, 6], solver_times("ddpm", 6, SCHEDULE)
    together = generate(_generator(), seeds, sizes, solver=get_solver("ddpm"), times=times, batch_size=4)
    alone = generate(_generator(), seeds[2:3], sizes[2:3], solver=get_solver("ddpm"), times=times)
    first, last = together.ptr[2], together.ptr[3]
    assert torch.allclose(torch.as_tensor(together.positions[first:last]), torch.as_tensor(alone.positions), atol=1e-5)
    assert together.ids.tolist() == [0, 1, 2, 3]


def test_sizes_are_checked():
    times = solver_times("ddpm", 2, SCHEDULE)
    with pytest.raises(MoldiffError, match="one atom count per seed"):
        generate(_generator(), [1, 2], [3], solver=get_solver("ddpm"), times=times)
    with pytest.raises(MoldiffError, match="at least one atom"):
        generate(_generator(), [1], [0], solver=get_solver("ddpm"), times=times)


def test_a_model_with_a_pair_field_samples_on_a_graph_with_its_pairs():
    class WithBonds(MoleculeGenerator):
        @property
        def fields(self):
            return super().fields + (FieldSpec("bonds", on="pairs", columns=4),)

        def decode(self, z, graph, fixed=None):
            seen.append((z["bonds"].shape[0], graph.pairs.shape[0]))
            return super().decode(z, graph, fixed)

    seen = []
    gen = _generator()
    gen = WithBonds(gen.denoiser, gen.vocab, gen.type_scale, gen.atom_count_hist)
    generate(gen, [1, 2], [3, 5], solver=lambda d, z, times, graph, noise: z, times=solver_times("ddpm", 2, SCHEDULE))
    assert seen == [(3 + 10, 3 + 10)]
