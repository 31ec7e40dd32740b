"""Scheduler backends (slurm-cli, slurm-rest, slurm-pyslurm, kubernetes) behind one Protocol."""
