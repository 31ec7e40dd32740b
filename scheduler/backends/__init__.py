"""Scheduler backends behind one Protocol: slurm-cli, slurm-rest and kubernetes (tested), and
slurm-pyslurm (kept, untested: PyPI's pyslurm matches only Slurm 25.11; see base.UNTESTED_WHY)."""
