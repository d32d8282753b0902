#!/usr/bin/env python3
"""Raw TCP origins behind CONNECT tunnels, one behaviour per port, for the tests that watch how
proxyd relays a tunnel and when it ends one: t_proxy_relay.sh (echo-hold, echo-close) and
t_proxy_tunnel_upkeep.sh (sink-hold, sink-trickle, bye, sink-mib-hold, bye-reset, sink-report,
all-then-close).  Run in the upstream
namespace (proxy_echo_origin in tests/lib/proxy_world.sh).

  proxy_echo_origin.py [--addr ADDR] PORT:MODE...

MODE, for each connection to PORT:
  echo-hold      echo what it reads until the client's EOF, then say nothing and keep the
                 connection open (30 s): proxyd has to end the tunnel (HalfClosedTimeout=)
  echo-close     echo until the client's EOF, then close
  sink-hold      read until the client's EOF, then say nothing and keep it open (30 s)
  sink-trickle   read until the client's EOF, then send "x" every 0.3 s, ten in all, and close
  sink-mib-hold  read until the client's EOF, send 1 MiB of "y" at once, then keep it open (30 s)
  bye            send "bye" and shut its sending side down at once, then read until proxyd closes
                 and print "PORT eof after SECONDS" (how long the tunnel lived)
  bye-reset      send "bye", then end the connection with a reset (SO_LINGER 0)
  sink-report    read until the client's end and print "PORT fin" or "PORT reset", how it ended
  all-then-close send 64 KiB of "w", shut its sending side down and close at once: whatever the
                 client sends afterwards is answered by a reset from this end
Prints "ready" once every port listens.
"""
import argparse
import socket
import struct
import threading
import time

HOLD = 30       # longer than any tunnel a test waits for: the end has to come from proxyd


def drain(c):
    while c.recv(1 << 16):
        pass


def echo(c):
    while True:
        b = c.recv(1 << 16)
        if not b:
            return
        c.sendall(b)


def serve(port, mode, c):
    t0 = time.monotonic()
    if mode == "bye-reset":
        c.sendall(b"bye")
        time.sleep(0.2)         # "bye" reaches proxyd before the reset, which drops unsent bytes
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif mode == "sink-report":
        try:
            drain(c)
            print("%d fin" % port, flush=True)
        except ConnectionResetError:
            print("%d reset" % port, flush=True)
    elif mode == "all-then-close":
        c.sendall(b"w" * 65536)
        c.shutdown(socket.SHUT_WR)
    elif mode == "bye":
        c.sendall(b"bye")
        c.shutdown(socket.SHUT_WR)
        drain(c)
        print("%d eof after %.2f" % (port, time.monotonic() - t0), flush=True)
    elif mode.startswith("echo-"):
        echo(c)
        if mode == "echo-hold":
            time.sleep(HOLD)
    else:
        drain(c)
        if mode == "sink-trickle":
            for _ in range(10):
                time.sleep(0.3)
                c.sendall(b"x")
        else:
            if mode == "sink-mib-hold":
                c.sendall(b"y" * (1 << 20))
            time.sleep(HOLD)
    c.close()


def accept_loop(s, port, mode):
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(port, mode, c), daemon=True).start()


MODES = ("echo-hold", "echo-close", "sink-hold", "sink-trickle", "sink-mib-hold", "bye", "bye-reset",
         "sink-report", "all-then-close")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", default="203.0.113.10")
    p.add_argument("listen", nargs="+", metavar="PORT:MODE")
    a = p.parse_args()
    socks = []
    for spec in a.listen:
        port, mode = spec.split(":")
        if mode not in MODES:
            p.error("unknown mode %s" % mode)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a.addr, int(port)))
        s.listen(16)
        socks.append((s, int(port), mode))
    # every socket listens before "ready", so a test's first connection cannot be refused
    for s, port, mode in socks:
        threading.Thread(target=accept_loop, args=(s, port, mode), daemon=True).start()
    print("ready", flush=True)
    time.sleep(600)     # a bound, should the test's cleanup not end it


if __name__ == "__main__":
    main()
