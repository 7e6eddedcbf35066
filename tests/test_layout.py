"""Test modules live in folders without __init__.py, so pytest imports them by basename:
two test files with the same name in different folders break collection of the whole suite."""

from collections import Counter
from pathlib import Path


def test_test_module_names_are_unique():
    names = Counter(p.name for p in Path(__file__).parent.rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []
