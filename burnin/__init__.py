"""Burn-in: GEMM and collective suites, external tool parsers, verdicts, localization."""
