"""Selection: hard filters in their documented order, duplicates and scaffold caps decided by
desirability, every molecule kept in the table with its reason."""

import numpy as np
import pytest

from moldiff.campaign.config import validate_campaign
from moldiff.campaign.selection import select
from moldiff.chem.scoring import score_smiles

SMILES = [
    "CC(=O)Nc1ccc(O)cc1",       # 0 paracetamol
    "O=C1NC(=S)SC1=Cc1ccccc1",  # 1 PAINS (ene_rhod)
    "not a molecule",           # 2 invalid
    "CCO.CCN",                  # 3 two fragments
    "C",                        # 4 methane: QED 0.36, below the range
    "CC(=O)Nc1ccc(O)cc1",       # 5 duplicate of 0
    "NC(=O)c1ccccc1",           # 6 benzamide: same scaffold (benzene) as 0
    "CC(=O)Oc1ccccc1C(=O)O",    # 7 aspirin: benzene again -> over the cap of 2
    "c1ccc2ccccc2c1",           # 8 naphthalene
]  # fmt: skip


def _config(**changes):
    raw = {"name": "s", "n_molecules": len(SMILES),
           "filters": {"ranges": {"qed": {"min": 0.45}}, "alerts": ["pains"]},
           "desirability": {"qed": {"transform": "linear", "low": 0.3, "high": 0.8}},
           "diversity": {"max_per_scaffold": 2}}  # fmt: skip
    raw.update(changes)
    return validate_campaign(raw)


@pytest.fixture(scope="module")
def scores():
    return score_smiles(SMILES)


def test_reasons_and_ranks(scores):
    out = select(scores, _config())
    kinds = out["reason_kind"].tolist()
    assert kinds[1] == "PAINS alert" and "ene_rhod" in out.loc[1, "reason"]
    assert kinds[2] == "invalid" and out.loc[2, "reason"] == "invalid: unparsable SMILES"
    assert kinds[3] == "disconnected" and kinds[4] == "qed below 0.45"
    assert kinds[5] == "duplicate" and out.loc[5, "reason"] == "duplicate of molecule 0"
    benzene = [i for i in (0, 6, 7) if out.loc[i, "status"] == "kept"]
    assert len(benzene) == 2 and sum(k == "scaffold cap" for k in kinds) == 1
    kept = out[out["status"] == "kept"].sort_values("rank")
    assert kept["rank"].tolist() == list(range(1, len(kept) + 1))
    assert (np.diff(kept["desirability"].to_numpy()) <= 0).all()  # ranked by desirability
    capped = kinds.index("scaffold cap")
    assert out.loc[capped, "desirability"] <= kept.loc[kept["scaffold"] == "c1ccccc1", "desirability"].min()
    assert len(out) == len(SMILES) and out["index"].tolist() == list(range(len(SMILES)))


def test_zero_desirability_vetoes_and_filters_can_be_relaxed(scores):
    veto = _config(desirability={"mw": {"transform": "step", "low": 0, "high": 160}},
                   filters={"alerts": [], "connected": False, "unique": False}, diversity={})  # fmt: skip
    out = select(scores, veto)
    assert out.loc[7, "reason_kind"] == "desirability 0" and "mw = 0" in out.loc[7, "reason"]
    assert out.loc[1, "status"] == "filtered" and out.loc[1, "reason_kind"] == "desirability 0"  # 221 Da
    assert out.loc[5, "status"] == "kept" and out.loc[3, "status"] == "kept"  # duplicates and fragments allowed


def test_a_scaffold_campaign_filters_molecules_that_lost_the_scaffold(scores):
    with_scaffold = scores.assign(scaffold_intact=[i != 6 for i in range(len(SMILES))])
    out = select(with_scaffold, _config())
    assert out.loc[6, "reason_kind"] == "scaffold lost" and out.loc[6, "status"] == "filtered"
    assert out.loc[0, "status"] == "kept"
    relaxed = select(with_scaffold, _config(filters={"scaffold": False}))
    assert relaxed.loc[6, "reason_kind"] != "scaffold lost"
    assert select(scores, _config()).loc[6, "reason_kind"] != "scaffold lost"  # no scaffold: no such filter
