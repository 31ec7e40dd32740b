"""Node health: cheap checks (parse-and-judge over standard tools' output) and the sweep.

:mod:`health.base` holds the check interface every check implements and
the registry; checks live in :mod:`health.checks`; the sweep that fans
them out, keeps the node lifecycle and acts lives in :mod:`health.sweep`.
"""
