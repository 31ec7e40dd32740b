"""Capacity: healthy capacity, whole NVL72 domains, power headroom."""
