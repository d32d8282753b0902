#!/usr/bin/env python3
"""Client of t_proxy_relay.sh: a CONNECT tunnel through 127.0.0.1:3128 to an echo origin.

usage: proxy_relay_client.py echo PORT BEFORE AFTER GOFILE
         BEFORE round trips of 64 bytes, then "port N" (this end's port) and a wait until GOFILE
         exists, AFTER more round trips, then half-close and read until EOF:
         "rounds=R eof_after=SECONDS extra=BYTES_AFTER_HALF_CLOSE"
       proxy_relay_client.py bulk PORT MIB GOFILE
         40 round trips of 64 bytes first (so that proxyd counts the tunnel busy: a bulk transfer
         alone may take only a few events, 8 MiB each, when proxyd is slow, under a sanitizer),
         then MIB MiB of random bytes up while the echo comes down, checked by SHA-256; "port N"
         and a wait for GOFILE half way through; then "bulk ok BYTES" (the bulk part) and close.
Answers other than 200 to the CONNECT: "status LINE", exit 3."""
import hashlib
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # proxy_connect, next to this
sys.dont_write_bytecode = True                                   # no __pycache__ in the source tree
from proxy_connect import open_tunnel


def tunnel(port):
    s, status, line = open_tunnel("203.0.113.10:%d" % port, timeout=20)
    if status != "200":
        print("status %s" % line, flush=True)
        sys.exit(3)
    return s


def pause(s, gofile):
    print("port %d" % s.getsockname()[1], flush=True)
    while not os.path.exists(gofile):
        time.sleep(0.02)


def recv_exact(s, n):
    got = b""
    while len(got) < n:
        b = s.recv(n - len(got))
        if not b:
            raise SystemExit("EOF after %d of %d bytes" % (len(got), n))
        got += b
    return got


def echo(port, before, after, gofile):
    s = tunnel(port)
    rounds = 0

    def round_trip(i):
        msg = (b"%063d\n" % i)
        s.sendall(msg)
        if recv_exact(s, len(msg)) != msg:
            raise SystemExit("round %d: echo differs" % i)

    for i in range(before):
        round_trip(i)
        rounds += 1
    pause(s, gofile)
    for i in range(after):
        round_trip(before + i)
        rounds += 1
    s.shutdown(socket.SHUT_WR)
    t0 = time.monotonic()
    extra = 0
    while True:
        b = s.recv(4096)
        if not b:
            break
        extra += len(b)
    print("rounds=%d eof_after=%.2f extra=%d" % (rounds, time.monotonic() - t0, extra), flush=True)


def bulk(port, mib, gofile):
    s = tunnel(port)
    for i in range(40):
        msg = (b"%063d\n" % i)
        s.sendall(msg)
        if recv_exact(s, len(msg)) != msg:
            raise SystemExit("round %d: echo differs" % i)
    total = mib << 20
    half = total // 2
    sent_hash, recv_hash = hashlib.sha256(), hashlib.sha256()
    go = threading.Event()
    chunk = os.urandom(1 << 16)

    def writer():
        n = 0
        while n < total:
            if n >= half:
                go.wait()
            piece = chunk[: min(len(chunk), total - n)]
            sent_hash.update(piece)
            s.sendall(piece)
            n += len(piece)
        s.shutdown(socket.SHUT_WR)

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    got = 0
    paused = False
    while got < total:
        b = s.recv(1 << 18)
        if not b:
            raise SystemExit("EOF after %d of %d bytes" % (got, total))
        recv_hash.update(b)
        got += len(b)
        if not paused and got >= half:
            paused = True
            pause(s, gofile)
            go.set()
    w.join()
    if sent_hash.digest() != recv_hash.digest():
        raise SystemExit("bulk: the echo differs from what was sent")
    s.close()
    print("bulk ok %d" % got, flush=True)


mode = sys.argv[1]
if mode == "echo":
    echo(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
elif mode == "bulk":
    bulk(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
else:
    raise SystemExit("unknown mode " + mode)
