#!/usr/bin/env python3
"""Client for the egress tests (t_egress_*.sh), run as the account under test.  Prints one line:
  tcp HOST PORT          -> "connected <first line of the answer>" | "error <ERRNO>"
  udp HOST PORT          -> "reply <answer>" | "noreply" | "error <ERRNO>"   (send fails at once?)
  ping HOST              -> "reply" | "noreply" | "error <ERRNO>"   (unprivileged ICMP socket)
  hold HOST PORT FILE    -> connect, echo "a", wait until FILE exists, echo "b": "held ab"
and always " elapsed=SECONDS" so a test can tell "at once" from "after a timeout".
With NFT_CLIENT_DEVICE set, tcp and udp sockets are bound to that device first (SO_BINDTODEVICE,
which any account may set on a socket not yet bound to one)."""
import errno, os, socket, struct, sys, time

def fam(host):
    return socket.AF_INET6 if ':' in host else socket.AF_INET

def err(e):
    return "error " + errno.errorcode.get(e.errno, str(e.errno)) if e.errno else "error timeout"

def sock(family, kind):
    s = socket.socket(family, kind)
    if os.environ.get("NFT_CLIENT_DEVICE"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, os.environ["NFT_CLIENT_DEVICE"].encode())
    return s

def tcp(host, port):
    s = sock(fam(host), socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((host, int(port)))
        data = s.recv(100).decode(errors="replace").strip()
        return "connected " + data
    except OSError as e:
        return err(e)

def udp(host, port):
    s = sock(fam(host), socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        s.connect((host, int(port)))
        s.send(b"query")
    except OSError as e:
        return err(e)
    try:
        return "reply " + s.recv(100).decode(errors="replace")
    except socket.timeout:
        return "noreply"
    except OSError as e:
        return err(e)

def ping(host):
    v6 = ':' in host
    s = socket.socket(fam(host), socket.SOCK_DGRAM,
                      socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    s.settimeout(2)
    pkt = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, 0, 1) + b"pam_sandbox"
    # A ping socket fills in the identifier and the checksum itself.
    try:
        s.sendto(pkt, (host, 0))
        s.recv(100)
        return "reply"
    except socket.timeout:
        return "noreply"
    except OSError as e:
        return err(e)

def hold(host, port, flag):
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"a"); got = s.recv(10)
    while not os.path.exists(flag):
        time.sleep(0.05)
    s.sendall(b"b"); got += s.recv(10)
    return "held " + got.decode()

t0 = time.monotonic()
mode, args = sys.argv[1], sys.argv[2:]
out = {"tcp": tcp, "udp": udp, "ping": ping, "hold": hold}[mode](*args)
print("%s elapsed=%.2f" % (out, time.monotonic() - t0), flush=True)
