#!/usr/bin/env python3
"""A small authoritative-style DNS server for the integration tests ("the upstream resolver").

Answers A and AAAA for the names it is given, NXDOMAIN for every other name, NODATA when a name
exists without the asked type; UDP and TCP.  Every query it receives is appended to the log as one
line "TRANSPORT QNAME QTYPE" (qname lower-cased, no trailing dot), flushed at once, so a test can
assert that a name was - or was never - asked upstream.

  dns_fake_resolver.py --listen 203.0.113.10 [--listen 2001:db8::10] [--port 53] --log FILE
                       --record github.com=A:203.0.113.10 --record github.com=AAAA:2001:db8::10
                       [--ttl 2]   (default TTL; a record may carry its own: name=A:addr:ttl)
Writes "ready" to stdout once every socket is bound.
"""
import argparse
import ipaddress
import selectors
import socket
import struct
import sys

TYPES = {"A": 1, "AAAA": 28}
TYPE_NAMES = {1: "A", 28: "AAAA", 5: "CNAME", 15: "MX", 16: "TXT", 65: "HTTPS", 255: "ANY"}


def parse_record(spec, default_ttl):
    name, _, rest = spec.partition("=")
    rtype, _, value = rest.partition(":")
    ttl = default_ttl
    if rtype == "A" and value.count(":") == 1:
        value, ttl = value.split(":")
    elif rtype == "AAAA" and "/" in value:          # AAAA with ttl: name=AAAA:addr/ttl
        value, ttl = value.split("/")
    addr = ipaddress.ip_address(value)
    return name.lower().rstrip("."), TYPES[rtype], addr.packed, int(ttl)


def parse_question(msg):
    """Returns (id, flags, qname, qtype, end_of_question) or None for anything odd."""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack(">HHH", msg[:6])
    if qd != 1 or flags & 0x8000:
        return None
    off, labels = 12, []
    while True:
        if off >= len(msg):
            return None
        n = msg[off]
        if n == 0:
            off += 1
            break
        if n > 63 or off + 1 + n > len(msg):
            return None
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    if off + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack(">HH", msg[off:off + 4])
    return qid, flags, ".".join(labels).lower(), qtype, off + 4


def answer(msg, records):
    q = parse_question(msg)
    if q is None:
        return None, None
    qid, flags, qname, qtype, qend = q
    question = msg[12:qend]
    known = [r for r in records if r[0] == qname]
    rrs = [r for r in known if r[1] == qtype or qtype == 255]
    rcode = 0 if known else 3
    out = struct.pack(">HHHHHH", qid, 0x8400 | (flags & 0x0100) | 0x0080 | rcode, 1, len(rrs), 0, 0)
    out += question
    for _name, rtype, data, ttl in rrs:
        out += struct.pack(">HHHIH", 0xC00C, rtype, 1, ttl, len(data)) + data
    return out, (qname, TYPE_NAMES.get(qtype, "TYPE%d" % qtype))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", action="append", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--log", required=True)
    ap.add_argument("--record", action="append", default=[])
    ap.add_argument("--ttl", type=int, default=60)
    a = ap.parse_args()
    records = [parse_record(r, a.ttl) for r in a.record]
    log = open(a.log, "a", buffering=1)
    sel = selectors.DefaultSelector()
    for addr in a.listen:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        u = socket.socket(fam, socket.SOCK_DGRAM)
        u.bind((addr, a.port))
        sel.register(u, selectors.EVENT_READ, "udp")
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, a.port))
        t.listen(16)
        sel.register(t, selectors.EVENT_READ, "tcp-listen")
    print("ready", flush=True)

    def note(transport, what):
        if what:
            log.write("%s %s %s\n" % (transport, what[0], what[1]))

    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if key.data == "udp":
                msg, peer = s.recvfrom(4096)
                out, what = answer(msg, records)
                note("udp", what)
                if out:
                    s.sendto(out, peer)
            elif key.data == "tcp-listen":
                c, _ = s.accept()
                c.settimeout(2)
                try:
                    while True:
                        hdr = c.recv(2, socket.MSG_WAITALL)
                        if len(hdr) < 2:
                            break
                        msg = c.recv(struct.unpack(">H", hdr)[0], socket.MSG_WAITALL)
                        out, what = answer(msg, records)
                        note("tcp", what)
                        if not out:
                            break
                        c.sendall(struct.pack(">H", len(out)) + out)
                except OSError:
                    pass
                c.close()


if __name__ == "__main__":
    sys.exit(main())
