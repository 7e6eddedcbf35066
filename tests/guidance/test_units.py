"""Property names and units: values convert to each property's canonical unit; the rest is refused."""

import pytest

from moldiff.errors import MoldiffError
from moldiff.guidance.units import PROPERTIES, parse_quantity, parse_target, property_name


@pytest.mark.parametrize("text, name, value", [
    ("gap=4.5eV", "gap", 4500.0),
    ("gap=4500", "gap", 4500.0),
    ("homo=-0.25 hartree", "homo", -0.25 * 27211.386245988),
    ("lumo=1 kcal/mol", "lumo", 43.3641043),
    ("mu=1.5 Debye", "mu", 1.5),
    ("mu=1 e*bohr", "mu", 2.541746473),
    ("alpha=10 A^3", "alpha", 10 / 0.529177210903**3),
    ("alpha=75 Bohr^3", "alpha", 75.0),
    ("cv=30 J/(mol K)", "Cv", 30 / 4.184),
    ("Cv=30 cal/mol/K", "Cv", 30.0),
    ("QED=0.8", "qed", 0.8),
    ("mw=0.3 kDa", "mw", 300.0),
    ("logp=-1.5e0", "logp", -1.5),
])  # fmt: skip
def test_values_convert_to_canonical_units(text, name, value):
    got_name, got = parse_target(text)
    assert got_name == name and got == pytest.approx(value)


@pytest.mark.parametrize("text, needle", [
    ("foo=1", "unknown property 'foo'"),
    ("gap=4.5 parsec", "does not fit property 'gap'"),
    ("mu=1 eV", "does not fit property 'mu'"),
    ("qed=0.5 eV", "no unit"),
    ("gap=", "NAME=VALUE"),
    ("gap=high", "cannot read a number"),
])  # fmt: skip
def test_bad_targets_raise_one_line(text, needle):
    with pytest.raises(MoldiffError, match=needle) as info:
        parse_target(text)
    assert "\n" not in str(info.value)


def test_every_property_reads_its_own_unit():
    for name, info in PROPERTIES.items():
        assert property_name(name.upper()) == name
        assert parse_quantity(name, f"2 {info.unit}") == 2.0
