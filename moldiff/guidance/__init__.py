"""Controllable generation. Each guidance wraps a Denoiser into a Denoiser-compatible object
(``GuidedDenoiser``), so every solver, and every other guidance, works with it:

| module        | what                                                                         |
|---------------|------------------------------------------------------------------------------|
| ``condition`` | the conditioning vector: normalised properties plus a "present" flag           |
| ``cfg``       | classifier-free guidance, ε_u + w (ε_c − ε_u)                                  |
| ``regressor`` | regressor / energy guidance with a noisy property predictor (EEGSDE)           |
| ``inpaint``   | scaffold atoms kept fixed (x̂₀ replacement, forward-noised known part, RePaint) |
| ``units``     | property names and units (``gap=4.5eV``)                                       |
| ``plan``      | parsed options resolved against a model: what ``sample`` and campaigns share   |

Names are re-exported lazily, so importing one module does not import the others.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "GuidedDenoiser": "base",
    "ClassifierFreeDenoiser": "cfg",
    "PropertyNorm": "condition",
    "condition_features": "condition",
    "null_condition": "condition",
    "GuideTerm": "regressor",
    "RegressorGuidedDenoiser": "regressor",
    "parse_guide": "regressor",
    "Scaffold": "inpaint",
    "ScaffoldDenoiser": "inpaint",
    "inpaint_solver": "inpaint",
    "generate_with_scaffold": "inpaint",
    "GuidanceSpec": "plan",
    "GuidancePlan": "plan",
    "plan_guidance": "plan",
    "parse_target": "units",
    "parse_quantity": "units",
    "property_name": "units",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"moldiff.guidance.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'moldiff.guidance' has no attribute {name!r}")
