"""Kubernetes side of the scheduler bridge: manifest rendering (pure)."""
