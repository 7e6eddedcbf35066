"""Training: the loop, EMA, checkpoints that load safely, distributed set-up."""
