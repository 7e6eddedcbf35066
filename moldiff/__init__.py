"""moldiff: 3D molecule generation with E(3)-equivariant diffusion models."""

__version__ = "0.1.0"
