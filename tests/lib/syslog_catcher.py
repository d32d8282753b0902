#!/usr/bin/env python3
"""A /dev/log for the test world: receives syslog datagrams and appends them, one per line, to a
file that tests grep (pam_syslog lines, proxyd decisions)."""
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
with open(out, "ab", buffering=0) as f:
    while True:
        data = s.recv(65536)
        f.write(data.rstrip(b"\0\n").replace(b"\n", b" ") + b"\n")
