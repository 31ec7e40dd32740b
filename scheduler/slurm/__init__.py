"""Slurm pieces the scheduler's Slurm backends share.

- :mod:`~scheduler.slurm.render`: the batch script and sbatch options (pure);
- :mod:`~scheduler.slurm.jobs`: job ids, ownership, states, GPUs of Slurm's job records (pure);
- :mod:`~scheduler.slurm.logs`: a job's log files, read bounded and confined to the tenant;
- :mod:`~scheduler.slurm.users`: running a command as the tenant's Unix user;
- :mod:`~scheduler.slurm.sync`: a tenant contract against Slurm's accounting (sacctmgr).
"""
