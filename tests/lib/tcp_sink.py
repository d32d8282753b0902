#!/usr/bin/env python3
"""A TCP listener that answers nothing and appends every byte it receives to a file.

  tcp_sink.py ADDRESS:PORT FILE [--accept-after SECONDS] [--device DEV]

Prints "listening" once bound and "accepted" for each connection, so that a test can tell a
connection that was made but carried nothing from one never made.  --accept-after: listen but
accept nothing for that long, so that connections wait in the accept queue with whatever their
clients sent.  --device: bind the listener to a network device (SO_BINDTODEVICE, which any
account may set on a socket not yet bound to one); its connections inherit the binding."""
import argparse
import socket
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("listen")
    p.add_argument("record")
    p.add_argument("--accept-after", type=float, default=0)
    p.add_argument("--device")
    args = p.parse_args()
    host, port = args.listen.rsplit(":", 1)
    host = host.strip("[]")
    srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.device:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, args.device.encode())
    srv.bind((host, int(port)))
    srv.listen(16)
    print("listening", flush=True)
    time.sleep(args.accept_after)
    with open(args.record, "ab") as out:
        while True:
            conn, _ = srv.accept()
            print("accepted", flush=True)
            conn.settimeout(5)
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    out.write(data)
                    out.flush()
            except OSError:
                pass
            conn.close()


if __name__ == "__main__":
    main()
