#!/usr/bin/env python3
"""Origin servers for the proxy integration tests, run inside the upstream namespace.

  proxy_origin.py --listen ADDR:PORT[:tls] ... --cert FILE --key FILE --log FILE [--git-root DIR]

Every request is one JSON line in --log: {"listen": "...", "method", "path", "host", "headers"}.
  GET  /hello          200 "hello from origin\n"
  GET  /bytes/N        N bytes of 'x' (Content-Length)
  GET  /pattern/N      N bytes in which no 16-byte block repeats (pattern_bytes)
  GET  /chunked        a chunked response of three chunks
  GET  /close          a response delimited by closing the connection
  POST /echo           the request body back
  /git/...             `git http-backend` (CGI) over --git-root, for `git clone`
Prints "ready" once every socket listens.
"""
import argparse
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def record(self):
        with LOCK:
            with open(ARGS.log, "a") as f:
                f.write(json.dumps({"listen": self.server.label, "method": self.command,
                                    "path": self.path, "host": self.headers.get("Host"),
                                    "headers": {k.lower(): v for k, v in self.headers.items()}}) + "\n")

    def send_body(self, body, code=200, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.record()
        if self.path.startswith("/git/"):
            return self.git()
        if self.path == "/hello":
            return self.send_body(b"hello from origin\n")
        if self.path.startswith("/bytes/"):
            n = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
            return
        if self.path.startswith("/pattern/"):
            # N bytes of pattern_bytes(): unlike /bytes/, a reordered or repeated stretch shows
            n = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(pattern_bytes(n))
            return
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"one ", b"two ", b"three\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until close\n")
            self.close_connection = True
            return
        self.send_body(b"not found\n", 404)

    def do_POST(self):
        self.record()
        if self.path.startswith("/git/"):
            return self.git()
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.send_body(body)

    def git(self):
        path, _, query = self.path[len("/git"):].partition("?")
        env = dict(os.environ, GIT_PROJECT_ROOT=ARGS.git_root, GIT_HTTP_EXPORT_ALL="1",
                   REQUEST_METHOD=self.command, PATH_INFO=path, QUERY_STRING=query,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   REMOTE_ADDR=self.client_address[0])
        body = b""
        if self.command == "POST":
            n = self.headers.get("Content-Length")
            if n is not None:
                body = self.rfile.read(int(n))
                env["CONTENT_LENGTH"] = str(len(body))
            elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                body = b"".join(parts)
                env["CONTENT_LENGTH"] = str(len(body))
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        if not rest and b"\n\n" in out:
            head, _, rest = out.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)


def pattern_bytes(n):
    """A stream whose every 16-byte block is unique (its index, then a hash of it): the same bytes
    that tests/integration compare against, so a relay that reorders data cannot pass."""
    import hashlib
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.blake2b(i.to_bytes(8, "big"), digest_size=16).digest()
        i += 1
    return bytes(out[:n])


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, addr, label, family):
        self.address_family = family
        self.label = label
        super().__init__(addr, Handler)

    def server_bind(self):
        # HTTPServer.server_bind would call getfqdn(): a DNS lookup that hangs in a namespace
        import socketserver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "origin", self.server_address[1]


def main():
    global ARGS, LOCK
    p = argparse.ArgumentParser()
    p.add_argument("--listen", action="append", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--log", required=True)
    p.add_argument("--git-root", default="/nonexistent")
    ARGS = p.parse_args()
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # many concurrent tunnels
    LOCK = threading.Lock()
    servers = []
    for spec in ARGS.listen:
        tls = spec.endswith(":tls")
        if tls:
            spec = spec[:-4]
        host, _, port = spec.rpartition(":")
        host = host.strip("[]")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = Server((host, int(port)), spec + (":tls" if tls else ""), fam)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(ARGS.cert, ARGS.key)
            s.socket = ctx.wrap_socket(s.socket, server_side=True)
        servers.append(s)
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
