"""Known atoms (a network trained to take a scaffold): the state keeps the scaffold's clean shape
around its noised centroid and stays CoM-free, the ε target is the one that state implies, training
fragments are connected, the flag is an invariant input, and sampling shows the network the scaffold."""

import numpy as np
import pytest
import torch
from e3nn import o3

from moldiff.chem.conformers import smiles_to_3d
from moldiff.config import load_config
from moldiff.data.com import max_abs_mean
from moldiff.data.elements import AtomVocabulary
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.known import covalent_radii, keep_known_shape, random_fragments, takes_known_atoms
from moldiff.diffusion.losses import noise_state
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import MolGraph, MolState, coordinate_fields
from moldiff.generator import MoleculeGenerator
from moldiff.guidance.inpaint import Scaffold, ScaffoldDenoiser, generate_with_scaffold
from moldiff.nets import EGNN
from moldiff.solvers import get_solver, solver_times
from moldiff.train.checkpoint import load_checkpoint
from moldiff.train.loop import train
from moldiff.train.warm_start import warm_start

VOCAB = AtomVocabulary(("H", "C", "N", "O", "F"))


def _state(counts=(5, 4, 6), seed=0):
    g = torch.Generator().manual_seed(seed)
    graph = MolGraph.from_counts(torch.tensor(counts))
    z = torch.randn(int(sum(counts)), 3 + 5, generator=g, dtype=torch.float64)
    known = torch.zeros(int(sum(counts)), dtype=torch.bool)
    known[[0, 1, 2, 5, 6]] = True  # three atoms of the first molecule, two of the second, none of the third
    return MolState.from_columns(z, coordinate_fields(5), graph).project(), graph, known


def _centroids(z, known, graph):
    return [z["coords"][(graph.batch == m) & known].mean(0) for m in range(graph.num_graphs) if (known & (graph.batch == m)).any()]


def test_known_atoms_take_the_clean_shape_and_types_around_their_own_centroid():
    z, graph, known = _state()
    clean, _, _ = _state(seed=1)
    out = keep_known_shape(z, clean, known, graph)
    for a, b in zip(_centroids(out, known, graph), _centroids(z, known, graph)):
        torch.testing.assert_close(a, b)
    for m in range(2):
        rows = known & (graph.batch == m)
        shape = lambda x: x["coords"][rows] - x["coords"][rows].mean(0)  # noqa: E731
        torch.testing.assert_close(shape(out), shape(clean))
    torch.testing.assert_close(out["types"][known], clean["types"][known])
    torch.testing.assert_close(out.columns()[~known], z.columns()[~known])
    assert max_abs_mean(out["coords"], graph.batch) < 1e-12
    assert keep_known_shape(z, clean, torch.zeros_like(known), graph) is z


def test_noised_state_and_eps_target_are_consistent():
    z0, graph, known = _state()
    graph = MolGraph(graph.batch, graph.ptr, known=known)
    denoiser = Denoiser(torch.nn.Identity(), make_schedule("polynomial"))
    t = torch.tensor([0.9, 0.3, 0.5], dtype=torch.float64)
    z_t, eps = noise_state(z0, t, graph, denoiser, torch.Generator().manual_seed(0))
    a, s, _, _ = denoiser.coefficients(t, graph)
    torch.testing.assert_close(z_t.columns(), (a * z0 + s * eps).columns())  # the target is what the state implies
    assert max_abs_mean(eps["coords"], graph.batch) < 1e-6 and max_abs_mean(z_t["coords"], graph.batch) < 1e-6
    torch.testing.assert_close(z_t["types"][known], z0["types"][known])  # clean types
    rows = known & (graph.batch == 0)
    x_t, x_0 = z_t["coords"][rows], z0["coords"][rows]
    torch.testing.assert_close(x_t - x_t.mean(0), x_0 - x_0.mean(0))
    free_graph = MolGraph(graph.batch, graph.ptr)
    z_free, eps_free = noise_state(z0, t, free_graph, denoiser, torch.Generator().manual_seed(0))
    torch.testing.assert_close(z_t.columns()[~known], z_free.columns()[~known])  # the other atoms are noised as always
    torch.testing.assert_close(eps.columns()[~known], eps_free.columns()[~known])


def _drug(smiles="CC(=O)Nc1ccc(O)cc1"):  # paracetamol: 11 heavy atoms, 9 hydrogens
    conf = smiles_to_3d(smiles)
    graph = MolGraph.from_counts(torch.tensor([len(conf.atomic_numbers)] * 2))
    types = torch.as_tensor(np.tile(VOCAB.encode(conf.atomic_numbers), 2))
    pos = torch.as_tensor(np.tile(conf.positions, (2, 1)), dtype=torch.float32)
    return pos, types, graph


def test_random_fragments_are_connected_heavy_atom_sets_with_or_without_their_hydrogens():
    pos, types, graph = _drug()
    radii, is_h = covalent_radii(VOCAB.atomic_numbers), torch.tensor([s == "H" for s in VOCAB.symbols])
    assert not random_fragments(pos, types, graph, radii, is_h, 0.0).any()
    n = int(graph.num_atoms[0])
    bonded = torch.cdist(pos[:n], pos[:n]) < radii[types[:n]][:, None] + radii[types[:n]][None] + 0.45
    bonded.fill_diagonal_(False)
    hydrogens = is_h[types[:n]]
    with_h = without_h = 0
    for seed in range(40):
        known = random_fragments(pos, types, graph, radii, is_h, 1.0, torch.Generator().manual_seed(seed))
        for m in range(2):
            mine = known[m * n : (m + 1) * n]
            heavy = (mine & ~hydrogens).nonzero().flatten().tolist()
            assert 1 <= len(heavy) <= 10  # something is always left to generate
            reached, frontier = {heavy[0]}, [heavy[0]]  # connected over heavy-heavy bonds
            while frontier:
                for j in bonded[frontier.pop()].nonzero().flatten().tolist():
                    if j in heavy and j not in reached:
                        reached.add(j)
                        frontier.append(j)
            assert reached == set(heavy)
            kept_h = (mine & hydrogens).nonzero().flatten().tolist()
            if kept_h:  # all and only the hydrogens bonded to the fragment
                with_h += 1
                assert set(kept_h) == set((bonded[heavy].any(0) & hydrogens).nonzero().flatten().tolist())
            else:
                without_h += 1
    assert with_h > 10 and without_h > 10
    a = random_fragments(pos, types, graph, radii, is_h, 0.5, torch.Generator().manual_seed(7))
    assert torch.equal(a, random_fragments(pos, types, graph, radii, is_h, 0.5, torch.Generator().manual_seed(7)))


def _net(known_atoms=True):
    torch.manual_seed(0)
    net = EGNN(5, hidden=16, layers=2, known_atoms=known_atoms).double()
    for p in net.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    return net


def test_the_known_flag_is_an_invariant_input_that_changes_the_prediction():
    net = _net()
    z, graph, known = _state()
    x, h, t = z["coords"], z["types"], torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    dx, dh = net(x, h, t, graph.batch, graph.ptr, known=known)
    for det in (1, -1):
        rot = o3.rand_matrix(dtype=torch.float64) * det
        dx2, dh2 = net(x @ rot.T + 1.0, h, t, graph.batch, graph.ptr, known=known)
        torch.testing.assert_close(dx2, dx @ rot.T)
        torch.testing.assert_close(dh2, dh)
    assert not torch.allclose(dh, net(x, h, t, graph.batch, graph.ptr)[1])  # no flag = all unknown
    with pytest.raises(ValueError, match="known atoms"):
        _net(False)(x, h, t, graph.batch, graph.ptr, known=known)
    # an ordinary network widens into one that takes known atoms, computing what it did
    plain, wide = _net(False), EGNN(5, hidden=16, layers=2, known_atoms=True).double()
    assert warm_start(wide, plain.state_dict()) == ["embed.weight"]
    torch.testing.assert_close(wide(x, h, t, graph.batch, graph.ptr, known=known)[1], plain(x, h, t, graph.batch, graph.ptr)[1])


class _Spy(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.known_atoms, self.seen = net, True, []

    def forward(self, x, h, t, batch, ptr, cond=None, known=None):
        self.seen.append((x.detach().clone(), h.detach().clone(), known))
        return self.net(x, h, t, batch, ptr, cond, known=known)


def test_sampling_shows_the_network_the_clean_flagged_scaffold():
    scaffold = Scaffold(torch.tensor([[0.0, 0.0, 0.0], [1.4, 0.0, 0.0], [2.1, 1.2, 0.0]], dtype=torch.float64),
                        torch.tensor([1, 1, 3]))  # C, C, O  # fmt: skip
    spy = _Spy(_net().float())
    gen = MoleculeGenerator(Denoiser(spy, make_schedule("polynomial")), VOCAB, 0.25, {7: 1, 9: 1})
    assert takes_known_atoms(ScaffoldDenoiser(gen.denoiser, scaffold, 0.25))
    times = solver_times("dpmpp-2m-sde", 6, gen.denoiser.schedule)
    mols, _ = generate_with_scaffold(gen, scaffold, 3, seed=1, solver=get_solver("dpmpp-2m-sde"), times=times)
    shape = (scaffold.positions - scaffold.positions.mean(0)).float()
    for x, h, known in spy.seen:
        graph = MolGraph.from_counts(torch.tensor(mols.n_atoms.tolist()))
        assert torch.equal(known, scaffold.mask(graph))
        block = x[known].reshape(3, 3, 3)
        torch.testing.assert_close(block - block.mean(1, keepdim=True), shape.expand(3, 3, 3), atol=1e-3, rtol=0)
        torch.testing.assert_close(h[known].argmax(1).reshape(3, 3), scaffold.types.expand(3, 3))
    for i in range(len(mols)):
        np.testing.assert_allclose(mols.molecule(i)[1][:3], scaffold.positions.numpy(), atol=1e-4)


def test_training_with_known_atoms_runs_and_writes_a_model_that_takes_them(tmp_path):
    tiny = ["data.max_train=32", "model.hidden=16", "model.layers=2", "model.known_atoms=true", "train.batch_size=8",
            "train.warmup_steps=2", "train.log_every=1000", "train.eval_every=1000", "train.val_molecules=8",
            "tracking.enabled=false", "train.threads=1", "train.max_steps=3", f"out_dir={tmp_path}/run"]  # fmt: skip
    metrics = train(load_config(None, tiny), log=lambda m: None)
    assert np.isfinite(metrics.get("loss", 0.0))
    payload = load_checkpoint(tmp_path / "run/model.pt")
    assert payload["config"]["model"]["known_atoms"] is True and payload["ema"]["embed.weight"].shape[1] == 5 + 1 + 1


def test_open_valences_count_the_neighbours_outside_the_fragment():
    from moldiff.diffusion.known import open_valences

    conf = smiles_to_3d("CCO")  # C, C, O, then the six hydrogens
    types = torch.as_tensor(VOCAB.encode(conf.atomic_numbers))
    graph = MolGraph.from_counts(torch.tensor([len(types)]))
    known = torch.zeros(len(types), dtype=torch.bool)
    known[[0, 1]] = True  # the two carbons
    got = open_valences(torch.as_tensor(conf.positions), types, graph, covalent_radii(VOCAB.atomic_numbers), known)
    assert got.tolist() == [3, 3] + [0] * 7  # methyl: three H; CH2: two H and the O


def test_the_open_valence_input_reaches_the_network_and_starts_at_zero():
    torch.manual_seed(0)
    graph = MolGraph.from_counts(torch.tensor([4, 3]))
    x, h = torch.randn(7, 3, dtype=torch.float64), torch.randn(7, 5, dtype=torch.float64)
    t, known = torch.tensor([0.3, 0.7], dtype=torch.float64), torch.tensor([1, 1, 0, 0, 1, 0, 0], dtype=torch.bool)
    valence = torch.tensor([0, 2, 0, 0, 1, 0, 0])
    plain = _net()
    wide = EGNN(5, hidden=16, layers=2, known_atoms=True, known_valence=True).double()
    assert warm_start(wide, plain.state_dict()) == ["embed.weight"]
    torch.testing.assert_close(wide(x, h, t, graph.batch, graph.ptr, known=known, open_valence=valence)[1],
                               plain(x, h, t, graph.batch, graph.ptr, known=known)[1])  # fmt: skip
    with torch.no_grad():
        wide.embed.weight[:, -1] = 1.0
    a = wide(x, h, t, graph.batch, graph.ptr, known=known, open_valence=valence)[1]
    b = wide(x, h, t, graph.batch, graph.ptr, known=known, open_valence=torch.zeros_like(valence))[1]
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="known_valence needs known_atoms"):
        EGNN(5, known_valence=True)


def test_sampling_gives_the_network_the_scaffold_open_valences():
    from moldiff.chem.substructure import fragment_from_smiles

    fragment = fragment_from_smiles("c1ccncc1")
    scaffold = Scaffold.from_atoms(fragment.atomic_numbers, fragment.positions, VOCAB, fragment.open_valence)
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.known_atoms, self.known_valence = EGNN(5, hidden=8, layers=1, known_atoms=True,
                                                                  known_valence=True), True, True  # fmt: skip

        def forward(self, x, h, t, batch, ptr, cond=None, known=None, open_valence=None):
            seen.append(open_valence)
            return self.net(x, h, t, batch, ptr, cond, known=known, open_valence=open_valence)

    gen = MoleculeGenerator(Denoiser(Spy(), make_schedule("polynomial")), VOCAB, 0.25, {12: 1})
    times = solver_times("ddpm", 3, gen.denoiser.schedule)
    generate_with_scaffold(gen, scaffold, 2, seed=0, solver=get_solver("ddpm"), times=times)
    assert seen and all(v.tolist() == ([1, 1, 1, 0, 1, 1] + [0] * 6) * 2 for v in seen)


def test_training_with_open_valences_writes_a_model_that_reads_them(tmp_path):
    tiny = ["data.max_train=32", "model.hidden=16", "model.layers=2", "model.known_atoms=true", "model.known_valence=true",
            "train.batch_size=8", "train.warmup_steps=2", "train.log_every=1000", "train.eval_every=1000",
            "train.val_molecules=8", "tracking.enabled=false", "train.threads=1", "train.max_steps=3",
            f"out_dir={tmp_path}/run"]  # fmt: skip
    assert np.isfinite(train(load_config(None, tiny), log=lambda m: None).get("loss", 0.0))
    payload = load_checkpoint(tmp_path / "run/model.pt")
    assert payload["config"]["model"]["known_valence"] is True and payload["ema"]["embed.weight"].shape[1] == 5 + 1 + 1 + 1


def test_covalent_radii_are_rdkits_for_every_element_moldiff_knows():
    from rdkit import Chem

    from moldiff.data.elements import ATOMIC_NUMBER

    table = Chem.GetPeriodicTable()
    zs = sorted(ATOMIC_NUMBER.values())
    expected = torch.tensor([table.GetRcovalent(z) for z in zs], dtype=torch.float32)
    assert torch.equal(covalent_radii(zs), expected)
