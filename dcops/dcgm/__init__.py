"""DCGM: parsing ``dcgmi diag`` output (3.x/4.x JSON and the text table).

Shared by burn-in (``dcops burnin parse dcgm``, external tool runs) and the
health sweep's ``dcgm`` check; see :mod:`dcops.dcgm.diag`.
"""
