#!/usr/bin/env python3
"""An origin that answers in ways a well-behaved server would not, for the forwarding edge cases of
tests/integration/t_proxy_forward_edges.sh.  Raw sockets, no HTTP library: every byte it receives on
a connection is appended (Python repr, one line per connection, after it closes or goes quiet for
1.5 s) to --log, so a test can see exactly what proxyd sent.  The path picks the answer:
  /cl-hop     Content-Length named in Connection (hop-by-hop), connection kept open
  /bighead    a 20 KiB response head, then a 3-byte body
  /chunked    a chunked body ("hello world")
  /silent     reads the request, never answers, keeps the connection open
  /stalled    the same (for a client that stops in the middle of its body)
  /close-whole    a body without a length, ended by close (FIN): complete
  /close-reset    a body without a length, cut by a reset (SO_LINGER 0) after "partial"
  /chunked-cut    a chunked body without its last chunk ("hello"), then close (FIN)
  /length-cut     Content-Length: 10, then "hello" and close (FIN)
  /body-stall     a body without a length, "part", then nothing, the connection kept open
  /continue       "100 Continue" and the 200 "ok" in one write, whatever the request asked
  /early-hints    "103 Early Hints", 0.2 s later the 200 "ok"
  anything else: 200 "ok" with a Content-Length
"""
import argparse
import socket
import struct
import threading
import time


# Answers that end the connection: (bytes, how), how being "close" (FIN) or "reset".
ENDING = {
    "/close-whole": (b"HTTP/1.1 200 OK\r\n\r\nwhole", "close"),
    "/close-reset": (b"HTTP/1.1 200 OK\r\n\r\npartial", "reset"),
    "/chunked-cut": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "close"),
    "/length-cut": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "close"),
}


def end(conn, how):
    # the bytes reach proxyd before the end does: a reset would drop what is still unsent
    time.sleep(0.2)
    if how == "reset":
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def serve(conn, log, lock):
    got = b""
    conn.settimeout(1.5)
    answered = False
    ending = None
    try:
        while True:
            try:
                d = conn.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            got += d
            if answered or b"\r\n\r\n" not in got:
                continue
            answered = True
            path = got.split(b" ", 2)[1].decode("latin-1")
            ending = next((e for p, e in ENDING.items() if path.endswith(p)), None)
            if ending:
                conn.sendall(ending[0])
                break
            if path.endswith("/body-stall"):
                conn.sendall(b"HTTP/1.1 200 OK\r\n\r\npart")
                conn.settimeout(None)
            elif path.endswith("/continue"):
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n"
                             b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            elif path.endswith("/early-hints"):
                conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")
                time.sleep(0.2)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            elif path.endswith("/cl-hop"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 2\r\n\r\nok")
            elif path.endswith("/bighead"):
                pad = b"".join(b"X-Pad-%03d: %s\r\n" % (i, b"p" * 340) for i in range(60))
                conn.sendall(b"HTTP/1.1 200 OK\r\n" + pad + b"Content-Length: 3\r\n\r\nbig")
            elif path.endswith("/chunked"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            elif path.endswith("/silent") or path.endswith("/stalled"):
                conn.settimeout(None)          # hold it until the client side goes away
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except OSError:
        pass
    finally:
        with lock:
            with open(log, "a") as f:
                f.write(repr(got) + "\n")
        if ending:
            end(conn, ending[1])
        else:
            conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)          # ADDR:PORT
    p.add_argument("--log", required=True)
    a = p.parse_args()
    host, _, port = a.listen.rpartition(":")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(64)
    lock = threading.Lock()
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, a.log, lock), daemon=True).start()


if __name__ == "__main__":
    main()
