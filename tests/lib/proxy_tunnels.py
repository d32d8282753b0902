#!/usr/bin/env python3
"""Open N CONNECT tunnels through the explicit proxy and hold them all open at once.

  proxy_tunnels.py --proxy 127.0.0.1:3128 --target 203.0.113.10:8080 -n 1000 [--hold FILE]

Each tunnel is opened (CONNECT, expect 200), then — with all of them open — a GET /hello is sent
through every one and its answer checked.  Prints one line: "opened=N ok=M failed=F statuses=...".
With --hold, writes "holding" to FILE after the checks and keeps the tunnels until stdin closes.
"""
import argparse
import collections
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # proxy_connect, next to this
sys.dont_write_bytecode = True                                   # no __pycache__ in the source tree
from proxy_connect import open_tunnel


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--proxy", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("--hold")
    a = p.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ph, pp = a.proxy.rsplit(":", 1)
    socks, statuses = [], collections.Counter()
    for _ in range(a.n):
        try:
            s, st, _ = open_tunnel(a.target, (ph, int(pp)), timeout=10)
            st = st or "none"
            statuses[st] += 1
            if st == "200":
                socks.append(s)
            else:
                s.close()
        except OSError as e:
            statuses["error:%s" % e.errno] += 1
    ok = 0
    for s in socks:
        try:
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            buf = b""
            while not buf.endswith(b"hello from origin\n"):
                d = s.recv(4096)
                if not d:
                    break
                buf += d
            ok += buf.endswith(b"hello from origin\n")
        except OSError:
            pass
    print("opened=%d ok=%d failed=%d statuses=%s" % (len(socks), ok, a.n - ok,
          ",".join("%s:%d" % kv for kv in sorted(statuses.items()))), flush=True)
    if a.hold:
        with open(a.hold, "w") as f:
            f.write("holding\n")
        sys.stdin.read()


if __name__ == "__main__":
    main()
