#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    linkproxy - a slow, delaying, optionally breaking TCP relay

SYNOPSIS
    linkproxy.py --listen ADDR --target ADDR [--delay-ms D] [--rate B]
                 [--cut-every N] [--stats FILE] [--port-file FILE]
                 [--max-seconds S]

DESCRIPTION
    Relays each accepted connection to the target. ADDR is host:port (the
    listener and the target on 127.0.0.0/8, or an address inside a
    network namespace made by the benchmark when run there) or
    unix:/path (a UNIX-domain socket, which is how a relay inside a
    namespace reaches the lab's loopback listener outside it).

    Each direction behaves like a link: octets become due D ms after
    they were read, leave at no more than B octets per second, and no
    more than a bandwidth-delay product (plus 16 KiB) is in flight, so
    that a sender is held back as on a real slow path. --cut-every N
    closes a connection once N client->server octets were delivered;
    what was in flight then is lost. This is bench's own fallback for
    when the kernel has no netem, and its cuts stand in for
    scripts/cutproxy until that is merged.

    Statistics (JSON: connections, c2s, s2c, c2s_delivered, cuts) go to
    --stats on exit and on SIGUSR1. It stops after --max-seconds.

SEE ALSO
    bench/badlink.py
"""

import argparse
import collections
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import time

PIECE = 16384


def parse_addr(text):
    if text.startswith("unix:"):
        return socket.AF_UNIX, text[5:]
    host, _, port = text.rpartition(":")
    ip = ipaddress.ip_address(host)
    # Loopback, or the private range bench/badlink.py gives its veth
    # pair inside its own namespaces; nothing else.
    if not (ip.is_loopback or ip in ipaddress.ip_network("10.231.0.0/16")):
        raise ValueError("refusing %s: not loopback nor the bench's "
                         "namespace range" % host)
    return socket.AF_INET, (host, int(port))


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.c2s = 0
        self.s2c = 0
        self.c2s_delivered = 0
        self.cuts = 0

    def dump(self, path):
        if not path:
            return
        with self.lock:
            d = {"connections": self.connections, "c2s": self.c2s,
                 "s2c": self.s2c, "c2s_delivered": self.c2s_delivered,
                 "cuts": self.cuts}
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(d, f)
        os.replace(tmp, path)


class Direction:
    """One direction of one connection: a reader and a paced writer."""

    def __init__(self, pair, src, dst, name):
        self.pair, self.src, self.dst, self.name = pair, src, dst, name
        self.q = collections.deque()
        self.cv = threading.Condition()
        self.inflight = 0
        self.eof = False
        a = pair.args
        # In flight at most one bandwidth-delay product and a piece, as
        # TCP keeps about a window in flight on a real path.
        self.limit = int(a.rate * a.delay_ms / 1000.0) + PIECE \
            if a.rate else PIECE

    def reader(self):
        st = self.pair.stats
        while not self.pair.closed:
            with self.cv:
                while self.inflight >= self.limit and not self.pair.closed:
                    self.cv.wait(0.2)
            try:
                data = self.src.recv(PIECE)
            except OSError:
                data = b""
            if not data:
                break
            with st.lock:
                if self.name == "c2s":
                    st.c2s += len(data)
                else:
                    st.s2c += len(data)
            due = time.monotonic() + self.pair.args.delay_ms / 1000.0
            with self.cv:
                self.q.append((due, data))
                self.inflight += len(data)
                self.cv.notify_all()
        with self.cv:
            self.eof = True
            self.cv.notify_all()

    def writer(self):
        a, st = self.pair.args, self.pair.stats
        while not self.pair.closed:
            with self.cv:
                while not self.q and not self.eof and not self.pair.closed:
                    self.cv.wait(0.2)
                if not self.q:
                    break
                due, data = self.q[0]
            size = len(data)
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            if self.name == "c2s" and a.cut_every:
                left = a.cut_every - self.pair.c2s_sent
                data = data[:max(0, left)]
            try:
                if data:
                    self.dst.sendall(data)
            except OSError:
                break
            if a.rate:
                time.sleep(len(data) / a.rate)
            with self.cv:
                self.q.popleft()
                self.inflight -= size
                self.cv.notify_all()
            if self.name == "c2s":
                self.pair.c2s_sent += len(data)
                with st.lock:
                    st.c2s_delivered += len(data)
                if a.cut_every and self.pair.c2s_sent >= a.cut_every:
                    with st.lock:
                        st.cuts += 1
                    self.pair.close()
                    return
        # EOF from the source, everything written: pass the EOF on.
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Pair:
    def __init__(self, args, stats, client):
        self.args, self.stats, self.client = args, stats, client
        self.server = None
        self.closed = False
        self.c2s_sent = 0

    def close(self):
        if self.closed:
            return
        self.closed = True
        for s in (self.client, self.server):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def run(self):
        fam, addr = self.args.target_addr
        try:
            self.server = socket.socket(fam, socket.SOCK_STREAM)
            self.server.settimeout(10)
            self.server.connect(addr)
            self.server.settimeout(None)
        except OSError:
            self.close()
            return
        dirs = [Direction(self, self.client, self.server, "c2s"),
                Direction(self, self.server, self.client, "s2c")]
        threads = []
        for d in dirs:
            for fn in (d.reader, d.writer):
                t = threading.Thread(target=fn, daemon=True)
                t.start()
                threads.append(t)
        # Both writers done (EOF passed on both ways, or a cut).
        threads[1].join()
        threads[3].join()
        self.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--rate", type=float, default=0.0,
                    help="octets per second per direction (0: no limit)")
    ap.add_argument("--cut-every", type=int, default=0)
    ap.add_argument("--stats", default=None)
    ap.add_argument("--port-file", default=None)
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    a = ap.parse_args()
    a.target_addr = parse_addr(a.target)
    fam, addr = parse_addr(a.listen)
    lsock = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    elif os.path.exists(addr):
        os.unlink(addr)
    lsock.bind(addr)
    lsock.listen(64)
    lsock.settimeout(0.5)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(lsock.getsockname()[1]) if fam == socket.AF_INET
                    else addr)
        os.replace(a.port_file + ".tmp", a.port_file)
    stats = Stats()
    stop = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: stats.dump(a.stats))
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    deadline = time.monotonic() + a.max_seconds
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            c, _ = lsock.accept()
        except socket.timeout:
            continue
        except OSError:
            break
        with stats.lock:
            stats.connections += 1
        p = Pair(a, stats, c)
        threading.Thread(target=p.run, daemon=True).start()
    stats.dump(a.stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
