"""Property names and units: ``gap=4.5eV`` -> ("gap", 4500.0 in meV).

Each property has a canonical unit, the one its data and models use (QM9's as in the EDM tables:
α Bohr³, HOMO/LUMO/gap meV, μ Debye, Cv cal/(mol·K); the drug-likeness scores QED, logP and SA
are dimensionless, molecular weight is in g/mol). A value may carry any unit of the same
dimension; a bare number is read in the canonical unit. Names and units are case-insensitive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moldiff.errors import MoldiffError

HARTREE_EV = 27.211386245988  # CODATA 2018
KCAL_MOL_EV = 0.0433641043  # 1 kcal/mol in eV per molecule
KJ_MOL_EV = 0.0103642688  # 1 kJ/mol in eV per molecule
BOHR_ANGSTROM = 0.529177210903
EBOHR_DEBYE = 2.541746473  # 1 e·a₀ in Debye
EANGSTROM_DEBYE = 4.803204712  # 1 e·Å in Debye

# dimension -> {unit spelling (lower case): factor to the dimension's canonical unit}
UNITS: dict[str, dict[str, float]] = {
    "energy": {"mev": 1.0, "ev": 1000.0, "hartree": 1000 * HARTREE_EV, "ha": 1000 * HARTREE_EV,
               "eh": 1000 * HARTREE_EV, "au": 1000 * HARTREE_EV, "kcal/mol": 1000 * KCAL_MOL_EV,
               "kj/mol": 1000 * KJ_MOL_EV},  # canonical: meV
    "dipole": {"d": 1.0, "debye": 1.0, "e*bohr": EBOHR_DEBYE, "ea0": EBOHR_DEBYE, "au": EBOHR_DEBYE,
               "e*a": EANGSTROM_DEBYE, "e*å": EANGSTROM_DEBYE},  # canonical: Debye
    "polarizability": {"bohr^3": 1.0, "bohr3": 1.0, "a0^3": 1.0, "au": 1.0,
                       "a^3": BOHR_ANGSTROM**-3, "å^3": BOHR_ANGSTROM**-3, "ang^3": BOHR_ANGSTROM**-3,
                       "angstrom^3": BOHR_ANGSTROM**-3},  # canonical: Bohr³
    "heat_capacity": {"cal/(mol k)": 1.0, "cal/mol/k": 1.0, "cal/molk": 1.0,
                      "j/(mol k)": 1 / 4.184, "j/mol/k": 1 / 4.184, "kcal/(mol k)": 1000.0,
                      "kcal/mol/k": 1000.0},  # canonical: cal/(mol·K)
    "mass": {"g/mol": 1.0, "da": 1.0, "u": 1.0, "amu": 1.0, "kda": 1000.0},  # canonical: g/mol
    "none": {},
}  # fmt: skip


@dataclass(frozen=True)
class PropertyInfo:
    name: str
    unit: str  # canonical unit, for messages and tables
    dimension: str
    description: str


PROPERTIES: dict[str, PropertyInfo] = {p.name: p for p in [
    PropertyInfo("alpha", "Bohr^3", "polarizability", "isotropic polarizability"),
    PropertyInfo("gap", "meV", "energy", "HOMO-LUMO gap"),
    PropertyInfo("homo", "meV", "energy", "HOMO energy"),
    PropertyInfo("lumo", "meV", "energy", "LUMO energy"),
    PropertyInfo("mu", "D", "dipole", "dipole moment"),
    PropertyInfo("Cv", "cal/(mol K)", "heat_capacity", "heat capacity at 298 K"),
    PropertyInfo("qed", "", "none", "quantitative estimate of drug-likeness (RDKit)"),
    PropertyInfo("logp", "", "none", "Crippen logP (RDKit)"),
    PropertyInfo("sa", "", "none", "synthetic accessibility score, 1 easy - 10 hard (RDKit contrib)"),
    PropertyInfo("mw", "g/mol", "mass", "molecular weight (RDKit)"),
]}  # fmt: skip
_BY_LOWER = {name.lower(): name for name in PROPERTIES}

_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*$")


def property_name(name: str) -> str:
    """The canonical spelling of a property name; unknown names raise MoldiffError."""
    key = name.strip().lower()
    if key not in _BY_LOWER:
        raise MoldiffError(f"unknown property {name.strip()!r}; known: {', '.join(PROPERTIES)}")
    return _BY_LOWER[key]


def unit_factor(prop: str, unit: str) -> float:
    """The factor turning a value in ``unit`` into ``prop``'s canonical unit."""
    info = PROPERTIES[property_name(prop)]
    key = re.sub(r"\s+", " ", unit.strip().lower().replace("·", "*").replace("³", "^3"))
    if key in ("", info.unit.lower()):
        return 1.0
    table = UNITS[info.dimension]
    for spelling in (key, key.replace(" ", "")):
        if spelling in table:
            return table[spelling]
    accepted = ", ".join(sorted(table)) if table else "none (a plain number)"
    raise MoldiffError(f"unit {unit.strip()!r} does not fit property {info.name!r} "
                       f"({info.description}, in {info.unit or 'no unit'}); accepted units: {accepted}")  # fmt: skip


def split_quantity(text: str) -> tuple[float, str]:
    """``"4.5eV"`` -> (4.5, "eV"); ``"2"`` -> (2.0, "")."""
    match = _NUMBER.match(text)
    if match is None:
        raise MoldiffError(f"cannot read a number with an optional unit from {text.strip()!r} (e.g. 4.5eV)")
    return float(match.group(1)), match.group(2)


def parse_quantity(prop: str, text: str) -> float:
    """``"4.5eV"`` for property ``prop`` -> the value in its canonical unit (here 4500.0 meV)."""
    value, unit = split_quantity(text)
    return value * unit_factor(prop, unit)


def parse_assignment(text: str, option: str = "--target") -> tuple[str, str]:
    """``"name=rest"`` -> (canonical property name, rest); a missing ``=`` raises MoldiffError."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise MoldiffError(f"{option} {text!r} must look like NAME=VALUE (e.g. gap=4.5eV)")
    return property_name(name), rest.strip()


def parse_target(text: str) -> tuple[str, float]:
    """``"gap=4.5eV"`` -> ("gap", 4500.0), the value in the property's canonical unit."""
    name, rest = parse_assignment(text, "--target")
    return name, parse_quantity(name, rest)
