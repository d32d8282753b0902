#!/usr/bin/env python3
"""Timing client for bench/inference.sh (python3 stdlib only).  Prints one JSON object.

  ttfb:   ROUNDS fresh connections (CONNECT through the proxy, or direct), TLS, one request each:
          the time from the start of the connection to the first byte of the answer ("cold"), and,
          on one kept-alive connection, from sending a request to the first byte ("warm").
  stream: one streamed request; the wall-clock arrival time of every event (compared by the caller
          with the times the backend recorded when it sent each one: same clock, other namespace).

  inference_bench.py ttfb|stream [--proxy H:P | --connect H:P] --host NAME --ca FILE
                     --path P --body JSON [--rounds N]
"""
import argparse
import json
import socket
import ssl
import statistics
import sys
import time


def open_conn(a):
    if a.proxy:
        h, p = a.proxy.rsplit(":", 1)
        s = socket.create_connection((h, int(p)), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n" % (a.host.encode(), a.host.encode()))
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(4096)
            if not d:
                raise SystemExit("proxy closed")
            head += d
        if b" 200 " not in head.split(b"\r\n")[0]:
            raise SystemExit("CONNECT refused: %r" % head[:80])
    else:
        h, p = a.connect.rsplit(":", 1)
        s = socket.create_connection((h, int(p)), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return a.ctx.wrap_socket(s, server_hostname=a.host)


def request(a, keep):
    body = a.body.encode()
    auth = "Authorization: Bearer %s\r\n" % a.auth if a.auth else ""
    return (("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s%s\r\n"
             % (a.path, a.host, len(body), auth, "" if keep else "Connection: close\r\n")).encode() + body)


def read_response(s, first=b""):
    """Read one Content-Length or chunked response; returns the remaining buffered bytes."""
    buf = first
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    hl = head.lower()
    if b"content-length:" in hl:
        n = int(hl.split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < n:
            rest += s.recv(65536)
        return rest[n:]
    while not rest.endswith(b"0\r\n\r\n"):
        rest += s.recv(65536)
    return b""


def ttfb(a):
    cold = []
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        s = open_conn(a)
        s.sendall(request(a, False))
        first = s.recv(1)
        cold.append(time.perf_counter() - t0)
        read_response(s, first)
        s.close()
    warm = []
    s = open_conn(a)
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        s.sendall(request(a, True))
        first = s.recv(1)
        warm.append(time.perf_counter() - t0)
        read_response(s, first)
    s.close()
    ms = lambda v: round(v * 1000, 3)
    return {"cold_median_ms": ms(statistics.median(cold)), "cold_p90_ms": ms(sorted(cold)[int(len(cold) * 0.9)]),
            "warm_median_ms": ms(statistics.median(warm)), "warm_p90_ms": ms(sorted(warm)[int(len(warm) * 0.9)]),
            "rounds": a.rounds}


def stream(a):
    s = open_conn(a)
    s.sendall(request(a, False))
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    _, buf = buf.split(b"\r\n\r\n", 1)
    arrivals = []
    while True:
        while b"\r\n" not in buf:
            buf += s.recv(65536)
        size, buf = buf.split(b"\r\n", 1)
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        while len(buf) < n + 2:
            d = s.recv(65536)
            if not d:
                raise SystemExit("stream ended early")
            buf += d
        arrivals.append(time.time())
        buf = buf[n + 2:]
    s.close()
    return {"arrivals": arrivals}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["ttfb", "stream"])
    p.add_argument("--proxy")
    p.add_argument("--connect")
    p.add_argument("--host", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--path", default="/v1/chat/completions")
    p.add_argument("--body", default='{"model":"fast","messages":[]}')
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--auth", help="a Bearer key (calling the backend directly)")
    a = p.parse_args()
    a.ctx = ssl.create_default_context(cafile=a.ca)
    print(json.dumps(ttfb(a) if a.mode == "ttfb" else stream(a)))


if __name__ == "__main__":
    sys.exit(main())
