"""Slurm side of the scheduler bridge: batch-script rendering and JSON parsing (both pure)."""
