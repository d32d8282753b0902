#!/usr/bin/env python3
"""Send one hand-made DNS message (well-formed or deliberately broken) and print what came back,
for the policy DNS integration tests.  Output, one line:
   "RCODE=<name> AN=<n> ID=<ok|bad>"   an answer arrived
   "NOANSWER"                          nothing within the timeout (dropped)
   "CLOSED"                            TCP: the server closed the connection without an answer

  dns_probe.py [--tcp] [--server 127.0.0.1] [--port 3153] [--bind-port P [--reuseaddr]]
               [--unconnected] [--timeout 1.5] KIND [NAME]
KIND: query (a normal A query for NAME), aaaa, pipeline (TCP: 3 queries, half-close), idle (TCP:
      send nothing, report CLOSED/OPEN after --timeout), truncated, qdcount2, ancount, ptrloop, ptrforward,
      hugecounts, response, opcode, trailing, longlabel, oversize, badopt, tcpshort, tcphuge
"""
import argparse
import socket
import struct
import sys

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
QID = 0x5A5A


def qname(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(qd=1, an=0, ns=0, ar=0, flags=0x0100):
    return struct.pack(">HHHHHH", QID, flags, qd, an, ns, ar)


def build(kind, name):
    q = qname(name) + struct.pack(">HH", 1, 1)
    if kind == "query":
        return header() + q
    if kind == "aaaa":
        return header() + qname(name) + struct.pack(">HH", 28, 1)
    if kind == "truncated":
        return (header() + q)[:9]
    if kind == "qdcount2":
        return header(qd=2) + q + q
    if kind == "ancount":
        return header(an=1) + q
    if kind == "ptrloop":
        return header() + b"\xc0\x0c" + struct.pack(">HH", 1, 1)
    if kind == "ptrforward":
        return header() + b"\xc0\x12" + struct.pack(">HH", 1, 1) + qname(name)
    if kind == "hugecounts":
        return header(qd=0xFFFF, an=0xFFFF, ns=0xFFFF, ar=0xFFFF) + q
    if kind == "response":
        return header(flags=0x8100) + q
    if kind == "opcode":
        return header(flags=0x0100 | (2 << 11)) + q
    if kind == "trailing":
        return header() + q + b"\0\0\0"
    if kind == "longlabel":
        return header() + b"\x40" + b"a" * 64 + b"\0" + struct.pack(">HH", 1, 1)
    if kind == "oversize":
        return header() + q + b"\0" * 5000
    if kind == "badopt":
        return header(ar=1) + q + b"\0" + struct.pack(">HHIH", 41, 4096, 0, 40) + b"\0" * 4
    raise SystemExit("unknown kind " + kind)


def parse(resp):
    if len(resp) < 12:
        return "SHORT"
    rid, flags, _qd, an = struct.unpack(">HHHH", resp[:8])
    return "RCODE=%s AN=%d ID=%s" % (RCODES.get(flags & 0xF, str(flags & 0xF)), an,
                                     "ok" if rid == QID else "bad")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", action="store_true")
    ap.add_argument("--server", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3153)
    ap.add_argument("--bind-port", type=int, default=0)
    ap.add_argument("--reuseaddr", action="store_true")
    ap.add_argument("--unconnected", action="store_true")
    ap.add_argument("--hold", type=float, default=0, help="keep the socket open this long after")
    ap.add_argument("--timeout", type=float, default=1.5)
    ap.add_argument("kind")
    ap.add_argument("name", nargs="?", default="github.com")
    a = ap.parse_args()
    fam = socket.AF_INET6 if ":" in a.server else socket.AF_INET
    dst = (a.server, a.port)
    if a.tcp:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(a.timeout)
        s.connect(dst)
        if a.kind == "pipeline":
            # Three queries in one write, then half-close: every answer must still arrive
            # (RFC 7766), matched by id since they may come back in any order.
            msgs = [(1, qname(a.name) + struct.pack(">HH", 1, 1)),
                    (2, qname(a.name) + struct.pack(">HH", 28, 1)),
                    (3, qname("refused-name.invalid-zone.example") + struct.pack(">HH", 1, 1))]
            data = b""
            for qid, q in msgs:
                m = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q
                data += struct.pack(">H", len(m)) + m
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = {}
            try:
                while True:
                    hdr = s.recv(2, socket.MSG_WAITALL)
                    if len(hdr) < 2:
                        break
                    r = s.recv(struct.unpack(">H", hdr)[0], socket.MSG_WAITALL)
                    got[struct.unpack(">H", r[:2])[0]] = RCODES.get(r[3] & 0xF, "?")
            except (socket.timeout, ConnectionResetError):
                pass
            print(" ".join("%d=%s" % (k, got[k]) for k in sorted(got)) or "NOANSWER")
            return 0
        if a.kind == "idle":
            # Connect and send nothing: the server must close the connection by itself.
            s.settimeout(a.timeout)
            try:
                print("CLOSED" if s.recv(1) == b"" else "DATA")
            except socket.timeout:
                print("OPEN")
            except ConnectionResetError:
                print("CLOSED")
            return 0
        if a.kind == "tcpshort":
            s.sendall(struct.pack(">H", 5) + b"\0" * 5)
        elif a.kind == "tcphuge":
            s.sendall(struct.pack(">H", 0xFFFF) + b"\0" * 100)
        else:
            m = build(a.kind, a.name)
            s.sendall(struct.pack(">H", len(m)) + m)
        try:
            hdr = s.recv(2, socket.MSG_WAITALL)
            if len(hdr) < 2:
                print("CLOSED")
                return 0
            resp = s.recv(struct.unpack(">H", hdr)[0], socket.MSG_WAITALL)
            print(parse(resp))
        except socket.timeout:
            print("NOANSWER")
        except ConnectionResetError:
            print("CLOSED")
        return 0
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if a.reuseaddr:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.bind_port:
        s.bind(("0.0.0.0" if fam == socket.AF_INET else "::", a.bind_port))
    s.settimeout(a.timeout)
    m = build(a.kind, a.name)
    try:
        if a.unconnected:
            s.sendto(m, dst)
        else:
            s.connect(dst)
            s.send(m)
        resp = s.recv(65535)
        print(parse(resp), flush=True)
    except socket.timeout:
        print("NOANSWER", flush=True)
    except OSError as e:
        print("ERROR %s" % e.strerror, flush=True)
    if a.hold:
        import time
        time.sleep(a.hold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
