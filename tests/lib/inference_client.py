#!/usr/bin/env python3
"""A precise HTTPS client for the inference.local tests and bench (python3 stdlib only).

It reaches inference.local:443 through the explicit proxy (CONNECT) or directly (the transparent
path, or a backend), verifies the server certificate against --ca, sends one or more requests on
the same connection (keep-alive) and prints, as JSON, for each response: status, headers, body and
the arrival time of every chunk (each SSE event arrives as one chunk), then whether the server
closed the connection.  Raw request bytes can be given to send malformed requests.

  inference_client.py [--proxy 127.0.0.1:3128 | --connect ADDR:PORT] [--host inference.local]
                      [--ca FILE] [--insecure] (--req JSON)... [--raw FILE [--raw-pause S] [--raw-trickle S]]
  --req '{"method":"POST","path":"/v1/chat/completions","headers":{"X":"y"},"body":{...}}'
"""
import argparse
import json
import select
import socket
import ssl
import sys
import time


def connect(args):
    if args.proxy:
        h, p = args.proxy.rsplit(":", 1)
        s = socket.create_connection((h, int(p)), timeout=args.timeout)
        s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" %
                  (args.host.encode(), args.port, args.host.encode(), args.port))
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(1)
            if not d:
                raise SystemExit(json.dumps({"error": "proxy closed", "head": head.decode("latin1")}))
            head += d
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            # The proxy's answer to CONNECT (a policy denial): report it as the only response.
            rest = b""
            s.settimeout(2)
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    rest += d
            except socket.timeout:
                pass
            print(json.dumps({"connect_status": status, "connect_head": head.decode("latin1"),
                              "connect_body": rest.decode("latin1")}))
            sys.exit(0)
    else:
        h, p = args.connect.rsplit(":", 1)
        s = socket.create_connection((h.strip("[]"), int(p)), timeout=args.timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if args.plain:
        return s
    ctx = ssl.create_default_context(cafile=args.ca) if args.ca else ssl.create_default_context()
    if args.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(s, server_hostname=args.host)


class Reader:
    def __init__(self, s):
        self.s = s
        self.buf = b""
        self.eof = False

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.fill():
                raise EOFError
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise EOFError
        d, self.buf = self.buf[:n], self.buf[n:]
        return d


def read_response(r, t0):
    status_line = r.line()
    interim = []                     # 1xx answers before the final one, listed, then skipped
    while status_line.split(b" ", 2)[1:2] and status_line.split(b" ", 2)[1].startswith(b"1"):
        interim.append(int(status_line.split(b" ", 2)[1]))
        while r.line():
            pass
        status_line = r.line()
    status = int(status_line.split(b" ", 2)[1])
    headers = {}
    while True:
        line = r.line()
        if not line:
            break
        k, v = line.split(b":", 1)
        headers.setdefault(k.decode().lower(), v.strip().decode("latin1"))
    first_byte = time.time()
    chunks, body = [], b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            n = int(r.line().split(b";")[0], 16)
            if n == 0:
                r.line()
                break
            data = r.exact(n)
            r.exact(2)
            chunks.append({"t": time.time(), "data": data.decode("utf-8", "replace")})
            body += data
    elif "content-length" in headers:
        body = r.exact(int(headers["content-length"]))
    return {"status": status, "interim": interim, "headers": headers, "body": body.decode("utf-8", "replace"),
            "chunks": chunks, "t_start": t0, "t_head": first_byte, "t_end": time.time()}


def build(req, host):
    body = req.get("body", b"")
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    h = {"Host": host, "Content-Type": "application/json", "Accept": "*/*"}
    if req.get("method", "POST") == "GET":
        del h["Content-Type"]
    h.update(req.get("headers", {}))
    if req.get("method", "POST") != "GET" or body:
        h.setdefault("Content-Length", str(len(body)))
    head = "%s %s HTTP/1.1\r\n" % (req.get("method", "POST"), req["path"])
    head += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    return head.encode() + body


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--proxy")
    p.add_argument("--connect")
    p.add_argument("--host", default="inference.local")
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--ca")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("--plain", action="store_true", help="no TLS (a plain-http backend)")
    p.add_argument("--req", action="append", default=[])
    p.add_argument("--raw")
    p.add_argument("--raw-pause", type=float, default=0,
                   help="send --raw's head, wait this long, then its body")
    p.add_argument("--raw-trickle", type=float, default=0,
                   help="send --raw's body one byte at a time, this long apart, until an answer comes")
    p.add_argument("--timeout", type=float, default=15)
    args = p.parse_args()
    out = {"responses": []}
    try:
        s = connect(args)
    except ssl.SSLError as e:
        print(json.dumps({"tls_error": str(e)}))
        return 0
    r = Reader(s)
    msgs = [build(json.loads(x), args.host) for x in args.req]
    if args.raw:
        msgs.append(open(args.raw, "rb").read())
    try:
        for i, m in enumerate(msgs):
            t0 = time.time()
            if args.raw and (args.raw_pause or args.raw_trickle) and i == len(msgs) - 1 and b"\r\n\r\n" in m:
                cut = m.index(b"\r\n\r\n") + 4
                s.sendall(m[:cut])
                time.sleep(args.raw_pause)
                m = m[cut:]
                if args.raw_trickle:
                    for k in range(len(m)):
                        # stop once the server has answered (or closed): the answer is what counts
                        if (hasattr(s, "pending") and s.pending()) or select.select([s], [], [], args.raw_trickle)[0]:
                            break
                        s.sendall(m[k:k + 1])
                    m = b""
            s.sendall(m)
            out["responses"].append(read_response(r, t0))
    except (EOFError, ConnectionError, ssl.SSLError) as e:
        out["error"] = type(e).__name__
    # Did the server close?  A closed connection reads EOF at once; an open one times out.
    s.settimeout(1.0)
    try:
        out["closed"] = r.eof or not r.fill()
    except socket.timeout:
        out["closed"] = False
    except (ConnectionError, ssl.SSLError):
        out["closed"] = True
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
