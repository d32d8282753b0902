"""The CONNECT handshake of the proxy tests' own clients (proxy_relay_client.py, proxy_tunnels.py,
the inline clients of t_proxy_tunnel_upkeep.sh), written once; and how a connection ended
(read_to_end), which the tests of resets read (t_proxy_tunnel_upkeep.sh, t_proxy_forward_edges.sh).

  from proxy_connect import open_tunnel, read_to_end
  s, status, line = open_tunnel("203.0.113.10:8095", timeout=20)
  data, how = read_to_end(s)

Import it from a script in this directory with sys.path.insert(0, <the script's directory>), or
run python3 with PYTHONPATH=$PS_SRC/tests/lib.
"""
import re
import socket

STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3})(?: |\r\n)")


def open_tunnel(target, proxy=("127.0.0.1", 3128), timeout=None, rcvbuf=None):
    """CONNECT target ("host:port") through the proxy at (addr, port), an IPv4 address.

    timeout: seconds for the connect and every later operation on the socket (None: block).
    rcvbuf: SO_RCVBUF, set before connecting (the TCP window is agreed in the handshake).
    Returns (socket, status, status line): status is the three-digit code as a string, or None
    when the connection ended before a whole HTTP/1.1 response head.  The head is read a byte at a
    time, so that none of the tunnel's own bytes are taken with it.  OSError (timeouts included)
    is the caller's."""
    s = socket.socket()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(proxy)
    t = target.encode()
    s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (t, t))
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        b = s.recv(1)
        if not b:
            break
        head += b
    m = STATUS_LINE.match(head)
    status = m.group(1).decode() if m and head.endswith(b"\r\n\r\n") else None
    return s, status, head.split(b"\r\n")[0].decode(errors="replace")


def read_to_end(s, chunk=65536):
    """Everything s receives until the connection ends, and how it ended: "<fin>", "<reset>" or,
    with a timeout set on s, "<timeout>".  A reset is the point: a FIN would say the stream ended
    whole."""
    data = b""
    try:
        while True:
            b = s.recv(chunk)
            if not b:
                return data, "<fin>"
            data += b
    except socket.timeout:
        return data, "<timeout>"
    except ConnectionResetError:
        return data, "<reset>"
