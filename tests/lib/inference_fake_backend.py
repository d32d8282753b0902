#!/usr/bin/env python3
"""A small OpenAI-compatible and Anthropic-style inference backend for the inference.local tests
(python3 stdlib only).  It answers like the real APIs in shape, streams SSE with a delay between
events, and records what it received (path, headers, model, stream options) as JSON lines, plus
the time each streamed event was sent, so tests can check what proxyd forwarded and when.

  inference_fake_backend.py --listen 203.0.113.10:8080 --record FILE [--tls CERT KEY]
                            [--key EXPECTED_KEY] [--events N] [--delay S]

Models with a special meaning (the upstream name, after proxyd's rewrite):
  cut-stream      streams two events, then closes the connection without finishing
  slow-stream     sends one event, then stays silent for --slow seconds
  echo-key        a 200 answer whose body quotes the credentials it received
  close-delimited a streamed answer framed by closing the connection (no chunked, no length)
  big-answer      a 20 MiB non-streamed answer (like embeddings), its usage last
                  (prompt_tokens 4242)
  gzip-answer     a 200 answer gzip-encoded (Content-Encoding: identity, then gzip) although
                  identity was asked,
                  quoting the credentials it received
With --drop-reused, a second request on a kept-alive connection is dropped unanswered.
"""
import argparse
import gzip
import json
import socket
import socketserver
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()


def record(obj):
    obj["t"] = time.time()
    with LOCK, open(ARGS.record, "a") as f:
        f.write(json.dumps(obj) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):  # quiet
        pass

    def setup(self):
        super().setup()
        # Each event is written once and must leave at once (Nagle would hold it for an ACK).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ---- helpers ----
    def send_json(self, status, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", "req_fake_1")
        self.send_header("Set-Cookie", "backend_session=secret")   # must not reach the client
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def start_stream(self, framing="chunked"):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()
        self._framing = framing

    def send_event(self, text, n=None):
        data = text.encode()
        if self._framing == "chunked":
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.wfile.write(data)
        self.wfile.flush()
        if n is not None:
            record({"event_sent": n})

    def end_stream(self):
        if self._framing == "chunked":
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def credentials(self):
        return self.headers.get("Authorization", "") or self.headers.get("x-api-key", "")

    def check_key(self, api):
        if not ARGS.key:
            return True
        got = self.headers.get("x-api-key", "") if api == "anthropic" else self.headers.get("Authorization", "")
        want = ARGS.key if api == "anthropic" else "Bearer " + ARGS.key
        if got == want:
            return True
        # Like the real APIs, the message quotes (part of) the key it was given.
        self.send_json(401, {"error": {"message": "Incorrect API key provided: %s" % got,
                                       "type": "invalid_request_error", "code": "invalid_api_key"}})
        return False

    def read_body(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw or b"{}"), raw
        except ValueError:
            return None, raw

    def note(self, body, raw):
        record({"path": self.path, "method": self.command, "peer_port": self.client_address[1],
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "model": (body or {}).get("model"), "stream": (body or {}).get("stream"),
                "stream_options": (body or {}).get("stream_options"), "body_len": len(raw)})

    # ---- API ----
    def do_GET(self):
        self.note({}, b"")
        if self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})
        else:
            self.send_json(404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

    def do_POST(self):
        body, raw = self.read_body()
        self.served = getattr(self, "served", 0) + 1
        if ARGS.drop_reused and self.served > 1:
            # Like a server whose keep-alive timeout fired just as the request came: gone, no answer.
            record({"dropped_reused": self.client_address[1]})
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.note(body, raw)
        if body is None:
            return self.send_json(400, {"error": {"message": "bad json", "type": "invalid_request_error"}})
        if self.path in ("/v1/chat/completions", "/openai/v1/chat/completions"):
            return self.chat(body)
        if self.path == "/v1/messages":
            return self.messages(body)
        if self.path == "/v1/embeddings":
            if not self.check_key("openai"):
                return
            return self.send_json(200, {"object": "list", "data": [{"object": "embedding", "index": 0,
                                        "embedding": [0.1, 0.2]}], "model": body.get("model"),
                                        "usage": {"prompt_tokens": 3, "total_tokens": 3}})
        self.send_json(404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

    def chat(self, body):
        if not self.check_key("openai"):
            return
        model = body.get("model")
        if model == "echo-key" and body.get("stream"):
            self.start_stream()
            self.send_event("data: %s\n\n" % json.dumps({"choices": [{"index": 0, "delta": {"content": "hi"}}]}))
            self.send_event("data: %s\n\n" % json.dumps({"choices": [{"index": 0, "delta": {
                "content": "you sent " + self.credentials()}}]}))
            self.send_event("data: [DONE]\n\n")
            return self.end_stream()
        if model == "echo-key":
            return self.send_json(200, {"object": "chat.completion", "model": model, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "you sent " + self.credentials()},
                 "finish_reason": "stop"}]})
        if model == "gzip-answer":
            data = gzip.compress(json.dumps({"choices": [{"index": 0, "message": {
                "role": "assistant", "content": "you sent " + self.credentials()}}]}).encode())
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "identity")    # a first header that looks fine
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if model == "big-answer":
            return self.send_json(200, {
                "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "x" * (20 << 20)},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 4242, "completion_tokens": 1, "total_tokens": 4243}})
        if not body.get("stream"):
            return self.send_json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "message": {"role": "assistant",
                                             "content": "Hello from the fake backend"},
                                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.start_stream("close" if model == "close-delimited" else "chunked")
        n = ARGS.events
        for i in range(n):
            chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
                     "choices": [{"index": 0, "delta": {"content": "tok%d " % i},
                                  "finish_reason": None if i < n - 1 else "stop"}]}
            if usage:
                chunk["usage"] = None
            self.send_event("data: %s\n\n" % json.dumps(chunk), i)
            if model == "cut-stream" and i == 1:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if model == "slow-stream":
                time.sleep(ARGS.slow)
            if i < n - 1:
                time.sleep(ARGS.delay)
        if usage:
            self.send_event("data: %s\n\n" % json.dumps({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": n,
                                         "total_tokens": 11 + n}}))
        self.send_event("data: [DONE]\n\n", "done")
        self.end_stream()

    def messages(self, body):
        if not self.check_key("anthropic"):
            return
        model = body.get("model")
        if not body.get("stream"):
            return self.send_json(200, {
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": "Hello from the fake backend"}],
                "stop_reason": "end_turn", "usage": {"input_tokens": 25, "output_tokens": 9}})
        self.start_stream()
        ev = [("message_start", {"type": "message_start", "message": {
                  "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
                  "usage": {"input_tokens": 25, "output_tokens": 1}}}),
              ("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}})]
        for i in range(ARGS.events):
            ev.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": "tok%d " % i}}))
        ev += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                  "usage": {"output_tokens": ARGS.events}}),
               ("message_stop", {"type": "message_stop"})]
        for i, (name, data) in enumerate(ev):
            self.send_event("event: %s\ndata: %s\n\n" % (name, json.dumps(data)), i)
            if i < len(ev) - 1:
                time.sleep(ARGS.delay)
        self.end_stream()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind asks reverse DNS (getfqdn), which hangs in a namespace without it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--key", default="")
    p.add_argument("--events", type=int, default=5)
    p.add_argument("--delay", type=float, default=0.2)
    p.add_argument("--slow", type=float, default=5.0)
    p.add_argument("--drop-reused", action="store_true",
                   help="close a kept-alive connection, unanswered, when a second request comes on it")
    ARGS = p.parse_args()
    host, port = ARGS.listen.rsplit(":", 1)
    host = host.strip("[]")
    Server.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
    srv = Server((host, int(port)), Handler)
    if ARGS.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls[0], ARGS.tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("listening", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
