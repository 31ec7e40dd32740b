"""Runbooks: codified fixes run over SSH, dry-run first, destructive steps behind approval."""
