"""Scheduler bridge: tenants, the job spec, Slurm and Kubernetes backends, the tenant API."""
