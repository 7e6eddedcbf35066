"""Fixtures for the chemistry tests (molecule data lives in chem_molecules.py)."""

from __future__ import annotations

import numpy as np
import pytest
from chem_molecules import ETHANOL, PYRROLE, WATER, molset_of

from moldiff.data.molset import MolSet


@pytest.fixture
def small_set() -> MolSet:
    """Water, ethanol and pyrrole, with two made-up properties."""
    s = molset_of(WATER, ETHANOL, PYRROLE)
    s.properties = {"energy": np.array([-1.25, 3.5, 0.123456]), "gap": np.array([1.0, 2.0, 3.0])}
    return s
