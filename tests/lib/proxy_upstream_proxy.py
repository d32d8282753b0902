#!/usr/bin/env python3
"""A minimal CONNECT-only "corporate proxy" for the UpstreamProxy= test, in the upstream namespace.

  proxy_upstream_proxy.py --listen ADDR:PORT --log FILE [--banner-ports P,...]
Each CONNECT target is appended to FILE ("CONNECT host:port"), then bytes are relayed.
--banner-ports: for a target on one of these ports (an origin that speaks first), the origin's
first bytes are sent in the same segment as the 200, as happens by timing with a real proxy.
Prints "ready" once listening.
"""
import argparse
import select
import socket
import threading


def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(c, log, banner_ports):
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(4096)
        if not d:
            return c.close()
        head += d
    line = head.split(b"\r\n")[0].decode("latin-1")
    with open(log, "a") as f:
        f.write(line.rsplit(" ", 1)[0] + "\n")
    method, target = line.split(" ")[:2]
    if method != "CONNECT":
        c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        return c.close()
    host, _, port = target.rpartition(":")
    try:
        u = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
    except OSError:
        c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        return c.close()
    first = b""
    if int(port) in banner_ports and select.select([u], [], [], 2)[0]:
        first = u.recv(65536)
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n" + first)
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
    pipe(c, u)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--banner-ports", default="")
    a = p.parse_args()
    banner_ports = {int(x) for x in a.banner_ports.split(",") if x}
    host, _, port = a.listen.rpartition(":")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(128)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, a.log, banner_ports), daemon=True).start()


if __name__ == "__main__":
    main()
