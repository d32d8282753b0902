#!/usr/bin/env python3
"""A TCP listener that answers nothing and appends every byte it receives to a file.

  tcp_sink.py ADDRESS:PORT FILE [ACCEPT_AFTER_SECONDS]

Prints "listening" once bound and "accepted" for each connection, so that a test can tell a
connection that was made but carried nothing from one never made.  With ACCEPT_AFTER_SECONDS it
listens but accepts nothing for that long: connections wait in its accept queue, with whatever
their clients sent."""
import socket
import sys
import time


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(16)
    print("listening", flush=True)
    if len(sys.argv) > 3:
        time.sleep(float(sys.argv[3]))
    with open(sys.argv[2], "ab") as out:
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
