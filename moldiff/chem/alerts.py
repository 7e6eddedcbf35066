"""Structural alerts as named flags: PAINS (Baell & Holloway 2010) and Brenk (Brenk et al. 2008),
from RDKit's FilterCatalog.

A match is reported by the alert's own name (``ene_rhod_A(235)``, ``Michael_acceptor_1``), so a
chemist sees *which* substructure fired, not only that something did.
"""

from __future__ import annotations

from functools import lru_cache

from rdkit import Chem
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

CATALOGS = {
    "pains": FilterCatalogParams.FilterCatalogs.PAINS,
    "brenk": FilterCatalogParams.FilterCatalogs.BRENK,
}


@lru_cache(maxsize=None)
def _catalog(name: str) -> FilterCatalog:
    params = FilterCatalogParams()
    params.AddCatalog(CATALOGS[name])
    return FilterCatalog(params)


def alert_matches(mol: Chem.Mol, catalogs: tuple[str, ...] = tuple(CATALOGS)) -> dict[str, list[str]]:
    """``{catalog: [names of the alerts that match]}`` (sorted, each name once) for one molecule."""
    out = {}
    for name in catalogs:
        if name not in CATALOGS:
            raise ValueError(f"unknown alert catalog {name!r}; choose from {', '.join(CATALOGS)}")
        out[name] = sorted({entry.GetDescription() for entry in _catalog(name).GetMatches(mol)})
    return out
