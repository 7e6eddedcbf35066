"""moldiff: 3D molecule generation with E(3)-equivariant diffusion models."""

__version__ = "0.2.0"
