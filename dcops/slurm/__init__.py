"""Slurm JSON, normalized across releases (squeue/sinfo/sacct/scontrol ``--json`` and
slurmrestd v0.0.37 .. v0.0.45): shared by the scheduler bridge, telemetry and node actions.
"""
