#!/usr/bin/env python3
"""Hold request bodies open at inference.local: the attack of an account that sends the heads of
large requests and then their bodies slowly or never (tests/integration/t_inference_hardening.sh,
t_inference_explicit.sh).

Opens --hold connections through the explicit proxy (CONNECT inference.local:443, TLS verified
against --ca), one after another, and on each sends the head of a POST with Content-Length
--length and no body.  Then reads, on each, whatever answer has come within --wait seconds of the last one opened, and
prints one JSON line: {"held": [status or null, ...], "reasons": [...], "after": status or null},
where "after" is the status of a small complete request sent on a new connection once every held
connection is closed (only with --after).  stdlib only.
"""
import argparse
import json
import re
import socket
import ssl
import time

import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proxy_connect import open_tunnel  # noqa: E402


def tls(args):
    s, status, line = open_tunnel("inference.local:443", proxy=("127.0.0.1", args.proxy_port), timeout=10)
    if status != "200":
        raise SystemExit("CONNECT refused: " + line)
    return ssl.create_default_context(cafile=args.ca).wrap_socket(s, server_hostname="inference.local")


def head(length):
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: inference.local\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length)


def answer(t, wait):
    """(status, reason) of whatever answer arrived within wait seconds, else (None, None)."""
    t.settimeout(wait)
    got = b""
    try:
        while b"\r\n\r\n" not in got or not re.search(rb"\}\s*$", got):
            d = t.recv(65536)
            if not d:
                break
            got += d
    except (socket.timeout, ssl.SSLError, ConnectionError):
        pass
    m = re.match(rb"HTTP/1\.1 (\d{3})", got)
    r = re.search(rb'"reason":"([a-z_]+)"', got)
    return (int(m.group(1)) if m else None), (r.group(1).decode() if r else None)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ca", required=True)
    p.add_argument("--proxy-port", type=int, default=3128)
    p.add_argument("--hold", type=int, required=True)
    p.add_argument("--length", type=int, required=True)
    p.add_argument("--wait", type=float, default=1.0)
    p.add_argument("--after", action="store_true")
    args = p.parse_args()
    conns = []
    for _ in range(args.hold):
        t = tls(args)
        t.sendall(head(args.length))
        conns.append(t)
    time.sleep(0.3)
    # one deadline for all: each connection waits only for what is left of --wait
    deadline = time.monotonic() + args.wait
    res = [answer(t, max(0.05, deadline - time.monotonic())) for t in conns]
    out = {"held": [r[0] for r in res], "reasons": [r[1] for r in res]}
    for t in conns:
        t.close()
    if args.after:
        time.sleep(0.5)                     # proxyd sees the closes and gives the budget back
        t = tls(args)
        body = b'{"model":"fast","messages":[]}'
        t.sendall(head(len(body)) + body)
        out["after"] = answer(t, 10)[0]
        t.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
