#!/usr/bin/env python3
"""A userspace delay line for the multi-host rig: hold each queued packet, then let it go.

This kernel has no ``sch_netem`` (so no ``tc qdisc ... netem delay``). Instead,
``scripts/test-hosts fault HOST delay MS`` sends the host's traffic on its
``eth0`` (both directions) to an NFQUEUE with iptables, and this program, run
inside that host's network namespace, binds the queue over netfilter's netlink
socket and gives each packet its ACCEPT verdict ``MS`` milliseconds after it
arrived. Packets leave in the order they came (one fixed delay), so TCP sees
latency, not reordering. Standard library only (raw netlink), no libnetfilter.

    python3 delayline.py --queue 0 --delay-ms 200 [--ready-file PATH]

It runs until SIGTERM/SIGINT; the kernel then drops what is still queued
(retransmitted by TCP) and the iptables rules must be removed by the caller.
"""

from __future__ import annotations

import argparse
import collections
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 2
NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid (host order)
NFGEN_HDR = struct.Struct("=BBH")  # family, version, res_id (big-endian, packed by hand)
QUEUE_MAXLEN = 8192


def _attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _message(msg: int, queue: int, attrs: bytes, seq: int, flags: int = NLM_F_REQUEST) -> bytes:
    body = NFGEN_HDR.pack(socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    kind = (NFNL_SUBSYS_QUEUE << 8) | msg
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), kind, flags, seq, 0) + body


def _attrs(data: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, pos)
        if length < 4:
            break
        found[kind & 0x7FFF] = data[pos + 4 : pos + length]
        pos += (length + 3) & ~3
    return found


class DelayLine:
    """One bound NFQUEUE; packets accepted ``delay_s`` after they arrived, in order."""

    def __init__(self, queue: int, delay_s: float) -> None:
        self.queue = queue
        self.delay_s = delay_s
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self.seq = 0
        self.held: collections.deque[tuple[float, int]] = collections.deque()

    def _send(self, msg: int, attrs: bytes, *, ack: bool = False) -> None:
        self.seq += 1
        flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
        self.sock.send(_message(msg, self.queue, attrs, self.seq, flags))
        if ack:
            self._wait_ack()

    def _wait_ack(self) -> None:
        data = self.sock.recv(65536)
        _, kind, _, _, _ = NLMSG_HDR.unpack_from(data, 0)
        if kind == NLMSG_ERROR:
            (errno,) = struct.unpack_from("=i", data, NLMSG_HDR.size)
            if errno:
                raise OSError(-errno, f"NFQUEUE {self.queue}: netlink refused the config")

    def bind(self) -> None:
        cmd = struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, socket.AF_INET)
        self._send(NFQNL_MSG_CONFIG, _attr(NFQA_CFG_CMD, cmd), ack=True)
        params = struct.pack("!IB", 0, NFQNL_COPY_META)
        self._send(NFQNL_MSG_CONFIG, _attr(NFQA_CFG_PARAMS, params), ack=True)
        maxlen = struct.pack("!I", QUEUE_MAXLEN)
        self._send(NFQNL_MSG_CONFIG, _attr(NFQA_CFG_QUEUE_MAXLEN, maxlen), ack=True)

    def _receive(self, now: float) -> None:
        data = self.sock.recv(1 << 20)
        pos = 0
        while pos + NLMSG_HDR.size <= len(data):
            length, kind, _, _, _ = NLMSG_HDR.unpack_from(data, pos)
            if length < NLMSG_HDR.size:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                body = data[pos + NLMSG_HDR.size + NFGEN_HDR.size : pos + length]
                hdr = _attrs(body).get(NFQA_PACKET_HDR)
                if hdr is not None:
                    (packet_id,) = struct.unpack_from("!I", hdr, 0)
                    self.held.append((now + self.delay_s, packet_id))
            pos += (length + 3) & ~3

    def _release(self, now: float) -> None:
        while self.held and self.held[0][0] <= now:
            _, packet_id = self.held.popleft()
            verdict = struct.pack("!II", NF_ACCEPT, packet_id)
            self._send(NFQNL_MSG_VERDICT, _attr(NFQA_VERDICT_HDR, verdict))

    def serve(self, stop: list[bool]) -> None:
        while not stop:
            now = time.monotonic()
            self._release(now)
            wait = max(self.held[0][0] - now, 0.0) if self.held else 0.5
            readable, _, _ = select.select([self.sock], [], [], wait)
            if readable:
                try:
                    self._receive(time.monotonic())
                except OSError as exc:  # ENOBUFS: the kernel dropped some; TCP resends them
                    print(f"delayline: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--ready-file", help="written once the queue is bound")
    args = parser.parse_args(argv)
    line = DelayLine(args.queue, args.delay_ms / 1000.0)
    line.bind()
    stop: list[bool] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))
    if args.ready_file:
        Path(args.ready_file).write_text(f"{args.delay_ms:g}\n")
    line.serve(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
