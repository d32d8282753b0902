#!/usr/bin/env python3
"""Which of sandbox-proxyd's event loops holds a connection (t_proxy_relay.sh).

usage: proxy_epoll_of.py PID LISTEN_PORT CLIENT_PORT

Finds proxyd's socket of the TCP connection from 127.0.0.1:CLIENT_PORT to its listener on
LISTEN_PORT, then the epoll instance that has that socket registered (/proc/PID/fdinfo lists each
epoll's "tfd:" targets).  Prints "decision" when that epoll also holds the listening socket (the
decision loop, pd->loop), "relay" when it does not (a relay loop holds only its eventfd and
tunnels), "none" when no epoll holds it.  Any descriptor registered in two epolls at once (a
tunnel's client or upstream socket left behind on a loop it moved from) prints "twice: ..."
instead.  Exits 1 when the connection is not found."""
import os
import sys


def tcp_entries(pid):
    """(local_port, remote_port, state, inode) of every IPv4 TCP socket in proxyd's namespace."""
    out = []
    with open("/proc/%d/net/tcp" % pid) as f:
        next(f)
        for line in f:
            p = line.split()
            lport = int(p[1].split(":")[1], 16)
            rport = int(p[2].split(":")[1], 16)
            out.append((lport, rport, p[3], p[9]))
    return out


def fd_of_inode(pid, inode):
    want = "socket:[%s]" % inode
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == want:
                return int(fd)
        except OSError:
            pass
    return None


def epolls(pid):
    """{epoll fd: set of registered fds}"""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) != "anon_inode:[eventpoll]":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                out[int(fd)] = {int(l.split()[1]) for l in f if l.startswith("tfd:")}
        except OSError:
            pass
    return out


def main():
    pid, lport, cport = (int(a) for a in sys.argv[1:4])
    ents = tcp_entries(pid)
    listen = [i for (lp, rp, st, i) in ents if lp == lport and st == "0A"]
    conn = [i for (lp, rp, st, i) in ents if lp == lport and rp == cport and st == "01"]
    if not listen or not conn:
        print("connection 127.0.0.1:%d -> :%d not found" % (cport, lport))
        return 1
    lfd, cfd = fd_of_inode(pid, listen[0]), fd_of_inode(pid, conn[0])
    if lfd is None or cfd is None:
        print("sockets not among proxyd's descriptors")
        return 1
    eps = epolls(pid)
    seen = {}
    for ep, fds in eps.items():
        for fd in fds:
            seen.setdefault(fd, []).append(ep)
    twice = {fd: e for fd, e in seen.items() if len(e) > 1}
    if twice:
        print("twice: " + " ".join("fd %d in epolls %s" % (fd, e) for fd, e in sorted(twice.items())))
        return 0
    holders = [fds for fds in eps.values() if cfd in fds]
    if not holders:
        print("none")
    else:
        print("decision" if lfd in holders[0] else "relay")
    return 0


sys.exit(main())
