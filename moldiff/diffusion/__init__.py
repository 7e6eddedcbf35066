"""Pure diffusion maths: schedules, conversions between predictions, the denoiser wrapper, losses."""
