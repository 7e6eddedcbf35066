"""Likelihoods of a trained denoiser, in nats per molecule: the variational bound (``elbo``) and
the probability-flow ODE likelihood with a Hutchinson trace estimator (``ode``). Both use only the
Denoiser interface, so they work for a model trained in any view; both cover every diffused field
(a graph model's charges and bonds too) and report each field's part."""

from moldiff.likelihood.elbo import degrees_of_freedom, field_totals, variational_bound
from moldiff.likelihood.ode import ode_bound, ode_log_density, ode_log_density_parts

__all__ = ["degrees_of_freedom", "field_totals", "ode_bound", "ode_log_density", "ode_log_density_parts",
           "variational_bound"]
