"""Likelihoods of a trained denoiser, in nats per molecule: the variational bound (``elbo``) and
the probability-flow ODE likelihood with a Hutchinson trace estimator (``ode``). Both use only the
Denoiser interface, so they work for a model trained in any view; both cover every diffused field
(a graph model's charges and bonds too) and report each field's part. Categorical fields (classes
that jump, ``diffusion.discrete: categorical``) have the ELBO only, with the discrete diffusion's
terms of ``categorical``; the ODE refuses them."""

from moldiff.likelihood.elbo import degrees_of_freedom, field_totals, variational_bound
from moldiff.likelihood.ode import ode_bound, ode_log_density, ode_log_density_parts

__all__ = ["degrees_of_freedom", "field_totals", "ode_bound", "ode_log_density", "ode_log_density_parts",
           "variational_bound"]
