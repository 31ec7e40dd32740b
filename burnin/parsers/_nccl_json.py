"""The nccl-tests ``-J FILE.json`` reader (file version 3, nccl-tests 2.17+).

Shape, from nccl-tests ``src/util.cu``: a top object with ``version``, ``args``,
``nccl_version`` (NCCL_VERSION_CODE), ``config`` (nthreads, ngpus, minimum_bytes,
maximum_bytes, step_factor|step_bytes, warmup_iters, iterations,
aggregated_iterations, validation, graph, devices[]), ``results[]`` (size, count,
type, redop, root as a padded string, ``out_of_place``/``in_place`` objects with
time|cpu_time, alg_bw, bus_bw, nwrong (null when not validated), or null),
``out_of_bounds`` {count, okay}, ``average_bus_bandwidth`` {bandwidth, okay} and
``errors[]``. Booleans are written as the strings "true"/"false"; ``okay`` of the
average is "unchecked" without ``NCCL_TESTS_MIN_BW``; NaN is written as "nan".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from burnin.parsers.nccl_types import (
    NcclRank,
    NcclTestConfig,
    NcclTestFooter,
    NcclTestRun,
    Status,
    nccl_version_from_code,
    op_from_binary,
)
from dcops.measurements import BandwidthSample, CollectiveRow


def looks_like_nccl_json(doc: object) -> bool:
    return isinstance(doc, Mapping) and isinstance(doc.get("results"), list)


def parse_json_doc(doc: Mapping[str, Any], source: str) -> NcclTestRun:
    warnings: list[str] = []
    rows: list[CollectiveRow] = []
    for i, item in enumerate(doc["results"]):
        row = _row(item)
        if row is None:
            warnings.append(f"results[{i}]: not understood: {item!r:.200}")
        else:
            rows.append(row)
    footer = _footer(doc, warnings)
    if footer is None and rows:
        warnings.append("no out_of_bounds/average_bus_bandwidth: the run did not finish")
    config_doc = doc.get("config")
    config = _config(config_doc) if isinstance(config_doc, Mapping) else None
    ranks = _ranks(config_doc.get("devices") if isinstance(config_doc, Mapping) else None)
    args = doc.get("args")
    test = None
    if isinstance(args, list) and args and isinstance(args[0], str):
        test = args[0].rsplit("/", 1)[-1]
    code = doc.get("nccl_version")
    errors = doc.get("errors")
    if any(s.wrong is None for r in rows for s in (r.out_of_place, r.in_place) if s is not None):
        warnings.append("nwrong is null: results were not validated")
    return NcclTestRun(
        source=source,
        index=0,
        rows=tuple(rows),
        footer=footer,
        line=None,
        test=test,
        op=op_from_binary(test) if test else None,
        nccl_version=nccl_version_from_code(code) if isinstance(code, int) and code > 0 else None,
        config=config,
        ranks=ranks,
        messages=tuple(str(e) for e in errors if e) if isinstance(errors, list) else (),
        warnings=tuple(warnings),
        format="json",
    )


def _num(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _int(value: object) -> int | None:
    number = _num(value)
    if number is None or not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def _sample(doc: object) -> BandwidthSample | None:
    if not isinstance(doc, Mapping):
        return None
    time_us = _num(doc.get("time", doc.get("cpu_time")))
    algbw = _num(doc.get("alg_bw"))
    busbw = _num(doc.get("bus_bw"))
    if time_us is None or algbw is None or busbw is None:
        return None
    raw_wrong = doc.get("nwrong")
    wrong = None if raw_wrong is None else _int(raw_wrong)
    if raw_wrong is not None and (wrong is None or wrong < 0):
        return None
    return BandwidthSample(time_us, algbw, busbw, wrong)


def _row(item: object) -> CollectiveRow | None:
    if not isinstance(item, Mapping):
        return None
    size = _int(item.get("size"))
    count = _int(item.get("count"))
    dtype = item.get("type")
    if size is None or count is None or not isinstance(dtype, str):
        return None
    out_of_place = _sample(item.get("out_of_place"))
    in_place = _sample(item.get("in_place"))
    if out_of_place is None:
        return None
    root = _int(str(item.get("root", "-1")).strip())
    redop = item.get("redop")
    return CollectiveRow(
        size_bytes=size,
        count=count,
        dtype=dtype,
        redop=redop if isinstance(redop, str) and redop != "none" else None,
        root=None if root is None or root < 0 else root,
        out_of_place=out_of_place,
        in_place=in_place,
    )


def _okay(value: object) -> Status | None:
    if value in (True, "true"):
        return "OK"
    if value in (False, "false"):
        return "FAILED"
    return None  # "unchecked" or absent


def _footer(doc: Mapping[str, Any], warnings: list[str]) -> NcclTestFooter | None:
    oob = doc.get("out_of_bounds")
    avg = doc.get("average_bus_bandwidth")
    if not isinstance(oob, Mapping) and not isinstance(avg, Mapping):
        return None
    count: int | None = None
    oob_status: Status | None = None
    if isinstance(oob, Mapping):
        count = _int(oob.get("count"))
        oob_status = _okay(oob.get("okay"))
    else:
        warnings.append("no out_of_bounds object")
    bandwidth: float | None = None
    avg_status: Status | None = None
    if isinstance(avg, Mapping):
        bandwidth = _num(avg.get("bandwidth"))
        avg_status = _okay(avg.get("okay"))
    else:
        warnings.append("no average_bus_bandwidth object")
    return NcclTestFooter(count, oob_status, bandwidth, avg_status)


def _config(doc: Mapping[str, Any]) -> NcclTestConfig:
    return NcclTestConfig(
        n_threads=_int(doc.get("nthreads")),
        n_gpus=_int(doc.get("ngpus")),
        min_bytes=_int(doc.get("minimum_bytes")),
        max_bytes=_int(doc.get("maximum_bytes")),
        step_factor=_int(doc.get("step_factor")),
        step_bytes=_int(doc.get("step_bytes")),
        warmup_iters=_int(doc.get("warmup_iters")),
        iters=_int(doc.get("iterations")),
        agg_iters=_int(doc.get("aggregated_iterations")),
        validation=_int(doc.get("validation")),
        graph=_int(doc.get("graph")),
    )


def _ranks(devices: object) -> tuple[NcclRank, ...]:
    if not isinstance(devices, list):
        return ()
    ranks: list[NcclRank] = []
    for dev in devices:
        if not isinstance(dev, Mapping):
            continue
        rank = _int(dev.get("rank"))
        device = _int(dev.get("device"))
        host = dev.get("hostname")
        if rank is None or device is None or not isinstance(host, str):
            continue
        bus = dev.get("device_hex")
        name = dev.get("device_info")
        ranks.append(
            NcclRank(
                rank=rank,
                host=host,
                device=device,
                pid=_int(dev.get("pid")),
                group=_int(dev.get("group")),
                bus_id=bus if isinstance(bus, str) else None,
                device_name=name if isinstance(name, str) else None,
            )
        )
    return tuple(ranks)
