"""Pure diffusion maths: schedules, conversions between predictions, the denoiser wrapper, the
training losses of each view, and Gaussian data with its exact denoiser (a test oracle)."""
