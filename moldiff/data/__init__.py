"""Molecules in memory: packed sets (numpy), batched graphs (torch), QM9 and user files."""

from moldiff.data.elements import QM9_ELEMENTS, AtomVocabulary
from moldiff.data.molset import MolSet

__all__ = ["AtomVocabulary", "MolSet", "QM9_ELEMENTS"]
