"""Command-line values (``--set`` and ``--solver-opt``) read as the user means them."""

import pytest

from moldiff.config import apply_overrides, load_config, parse_value


@pytest.mark.parametrize("text, value", [
    ("1e-3", 1e-3), ("3E-5", 3e-5), ("-2.5e+2", -250.0), (".5e1", 5.0), ("0.5", 0.5), ("12", 12),
    ("true", True), ("[4, 8]", [4, 8]), ("dopri5", "dopri5"), ("e5", "e5"), ("1e", "1e"), ("[oops", "[oops"),
])  # fmt: skip
def test_values_are_yaml_with_scientific_floats(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_scientific_override_is_a_float_before_validation():
    # a float already in the raw dict: pydantic would coerce the string "2e-4" only where a field is typed float
    raw = apply_overrides({}, ["solver.rtol=2e-4"])
    assert raw == {"solver": {"rtol": 2e-4}} and type(raw["solver"]["rtol"]) is float


def test_scientific_override_reaches_the_config():
    assert load_config(None, ["train.lr=2e-4"]).train.lr == pytest.approx(2e-4)
