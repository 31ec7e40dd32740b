"""Telemetry: GPU collectors, the Prometheus exporter, job stability and energy accounting."""
