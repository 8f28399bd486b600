#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    cutproxy - a loopback TCP proxy that breaks connections on purpose

SYNOPSIS
    cutproxy [--listen PORT] --target [HOST:]PORT [--plan ITEM,ITEM...]
             [--cut-every N] [--hold-seconds S] [--stats FILE]
             [--port-file FILE] [--max-connections N] [--max-seconds S]

DESCRIPTION
    Listens on 127.0.0.1 (PORT, or a free one with 0) and forwards each
    connection to the target, which must be a loopback address
    (127.0.0.0/8 or ::1; anything else is refused). Connection k is
    handled by the k-th item of the plan:

        c2s:N[:rst]  forward exactly N octets client->server; when the
                     next one arrives, drop it and close both sides (with
                     :rst, reset them instead; octets still in flight may
                     then be lost)
        s2c:N[:rst]  the same on the server->client direction: with N the
                     octets the server sends before its reply to the end
                     of data, that reply is lost
        hold:N       forward N octets client->server; from the next one
                     on, nothing more in either direction while both
                     sockets stay open (a half-open link), until the
                     client closes or --hold-seconds pass
        pass         no cut

    Connections after the plan are not cut, unless --cut-every N is
    given: then each of them is cut after N client->server octets.

    It counts the octets it forwards in both directions over all
    connections, and writes them as JSON ({"connections", "c2s", "s2c",
    "cuts", "per_connection"}) to the --stats file on exit and on
    SIGUSR1, and prints a summary line on stderr at exit. It stops by
    itself after --max-connections connections are done, or after
    --max-seconds (default 600), whichever comes first.

    As a module (test/integration), CutProxy runs the same proxy in
    background threads: start(), .port, stats(), stop().

SEE ALSO
    scripts/cutproxy, test/integration/test_cutproxy.py, resume-send(1)
"""

import argparse
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

PIECE = 65536
POLL = 0.2


def parse_item(text):
    """One plan item as (kind, n, rst); raise ValueError if malformed."""
    parts = text.strip().split(":")
    kind = parts[0]
    if kind == "pass" and len(parts) == 1:
        return ("pass", 0, False)
    if kind not in ("c2s", "s2c", "hold") or len(parts) not in (2, 3):
        raise ValueError("bad plan item %r" % text)
    n = int(parts[1])
    if n < 0:
        raise ValueError("negative count in %r" % text)
    rst = False
    if len(parts) == 3:
        if parts[2] != "rst" or kind == "hold":
            raise ValueError("bad plan item %r" % text)
        rst = True
    return (kind, n, rst)


def parse_plan(text):
    """A comma-separated plan as a list of items."""
    if not text:
        return []
    return [parse_item(t) for t in text.split(",") if t.strip()]


def check_loopback(host):
    """Raise ValueError unless host is a loopback address."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError("target %r is not an IP address" % host)
    if not addr.is_loopback:
        raise ValueError("target %s is not a loopback address" % host)


def _close(sock, rst=False):
    try:
        if rst:
            # SO_LINGER with a zero timeout: close() sends RST.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Pair:
    """One proxied connection: two sockets, two forwarding threads."""

    def __init__(self, proxy, index, client, plan):
        self.proxy = proxy
        self.index = index
        self.client = client
        self.plan = plan
        self.server = None
        self.c2s = 0
        self.s2c = 0
        self.cut = None
        self.held = False
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.closed = False
        self.ended = 0

    def record(self):
        return {"c2s": self.c2s, "s2c": self.s2c,
                "cut": self.cut and "%s:%d%s" % (
                    self.cut[0], self.cut[1], ":rst" if self.cut[2] else "")}

    def close(self, rst=False):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        _close(self.client, rst)
        if self.server is not None:
            _close(self.server, rst)
        self.done.set()

    def budget(self, direction):
        """Octets this direction may still forward, or None (no limit)."""
        kind, n, _ = self.plan
        sent = self.c2s if direction == "c2s" else self.s2c
        if kind == direction or (kind == "hold" and direction == "c2s"):
            return max(0, n - sent)
        return None

    def run(self):
        try:
            self.server = socket.create_connection(self.proxy.target, 10)
        except OSError:
            self.close()
            return
        for s in (self.client, self.server):
            s.settimeout(POLL)
        t = threading.Thread(target=self.pump, args=("s2c",), daemon=True)
        t.start()
        self.pump("c2s")
        t.join()
        self.close()

    def trigger(self, direction):
        """The budget of direction is used up: cut or hold."""
        kind, n, rst = self.plan
        with self.proxy.lock:
            self.proxy.cuts += 1
        self.cut = self.plan
        if kind == "hold":
            self.held = True
            self.proxy.log("connection %d: holding after %d octets"
                           % (self.index, n))
            return
        self.proxy.log("connection %d: cut %s after %d octets%s"
                       % (self.index, direction, n, " (rst)" if rst else ""))
        self.close(rst)

    def pump(self, direction):
        src, dst = ((self.client, self.server) if direction == "c2s"
                    else (self.server, self.client))
        hold_until = None
        while not self.closed and not self.proxy.stopping.is_set():
            if self.held:
                # Half-open: read and drop, so a close is still seen,
                # until the hold time is over.
                if hold_until is None:
                    hold_until = time.monotonic() + self.proxy.hold_seconds
                if time.monotonic() >= hold_until:
                    self.close()
                    return
            budget = None if self.held else self.budget(direction)
            try:
                data = src.recv(PIECE if budget is None
                                else max(1, min(PIECE, budget)))
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if data and budget == 0:
                # The octet after the N-th: it is not forwarded, the plan
                # acts now (so s2c:N loses the next reply, not the
                # current one).
                self.trigger(direction)
                continue
            if not data:
                if self.held and direction == "s2c":
                    # The server gave up; the client still sees nothing.
                    while (not self.closed
                           and time.monotonic() < (hold_until or 0)):
                        time.sleep(POLL)
                    self.close()
                    return
                if self.held or self.closed:
                    self.close()
                    return
                # A half-close travels on: the other direction goes on
                # until its own end.
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                with self.lock:
                    self.ended += 1
                    both = self.ended == 2
                if both:
                    self.close()
                return
            if self.held:
                continue
            try:
                dst.sendall(data)
            except OSError:
                self.close()
                return
            with self.proxy.lock:
                if direction == "c2s":
                    self.c2s += len(data)
                    self.proxy.c2s += len(data)
                else:
                    self.s2c += len(data)
                    self.proxy.s2c += len(data)


class CutProxy:
    """The proxy; see the module documentation."""

    def __init__(self, target_port, plan=(), cut_every=None, listen_port=0,
                 target_host="127.0.0.1", hold_seconds=30.0,
                 max_connections=None, max_seconds=600.0, stats_file=None,
                 verbose=False):
        check_loopback(target_host)
        self.target = (target_host, int(target_port))
        self.plan = [parse_item(p) if isinstance(p, str) else p
                     for p in plan]
        self.cut_every = cut_every
        self.hold_seconds = hold_seconds
        self.max_connections = max_connections
        self.max_seconds = max_seconds
        self.stats_file = stats_file
        self.verbose = verbose
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.finished = threading.Event()
        self.c2s = 0
        self.s2c = 0
        self.cuts = 0
        self.pairs = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", int(listen_port)))
        self.listener.listen(64)
        self.listener.settimeout(POLL)
        self.port = self.listener.getsockname()[1]
        self.thread = None

    def log(self, text):
        if self.verbose:
            print("cutproxy: %s" % text, file=sys.stderr, flush=True)

    def plan_for(self, index):
        """The plan item of connection index (1-based)."""
        if index <= len(self.plan):
            return self.plan[index - 1]
        if self.cut_every is not None:
            return ("c2s", int(self.cut_every), False)
        return ("pass", 0, False)

    def stats(self):
        with self.lock:
            return {"connections": len(self.pairs), "c2s": self.c2s,
                    "s2c": self.s2c, "cuts": self.cuts,
                    "per_connection": [p.record() for p in self.pairs]}

    def write_stats(self):
        if not self.stats_file:
            return
        tmp = self.stats_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.stats(), f)
            f.write("\n")
        os.replace(tmp, self.stats_file)

    def serve(self):
        """Accept and forward until a bound is reached or stop()."""
        deadline = time.monotonic() + self.max_seconds
        try:
            while not self.stopping.is_set():
                if time.monotonic() >= deadline:
                    self.log("--max-seconds reached")
                    break
                if (self.max_connections is not None
                        and len(self.pairs) >= self.max_connections):
                    if all(p.done.is_set() for p in self.pairs):
                        break
                    time.sleep(POLL)
                    continue
                try:
                    client, _ = self.listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    break
                index = len(self.pairs) + 1
                pair = _Pair(self, index, client, self.plan_for(index))
                with self.lock:
                    self.pairs.append(pair)
                self.log("connection %d: plan %s" % (index, pair.plan[0]))
                threading.Thread(target=pair.run, daemon=True).start()
        finally:
            self.stopping.set()
            try:
                self.listener.close()
            except OSError:
                pass
            for p in list(self.pairs):
                p.close()
            self.write_stats()
            self.finished.set()

    def start(self):
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(10)
        return self.stats()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="cutproxy",
        description="A loopback TCP proxy that cuts connections on purpose.")
    ap.add_argument("--listen", type=int, default=0,
                    help="port on 127.0.0.1 (0: any free one)")
    ap.add_argument("--target", required=True,
                    help="[HOST:]PORT, a loopback address (127.0.0.1)")
    ap.add_argument("--plan", default="",
                    help="c2s:N[:rst], s2c:N[:rst], hold:N or pass, "
                         "comma separated, one per connection")
    ap.add_argument("--cut-every", type=int, default=None,
                    help="cut later connections after N c2s octets")
    ap.add_argument("--hold-seconds", type=float, default=30.0)
    ap.add_argument("--stats", default=None, help="JSON statistics file")
    ap.add_argument("--port-file", default=None,
                    help="write the listening port there")
    ap.add_argument("--max-connections", type=int, default=None)
    ap.add_argument("--max-seconds", type=float, default=600.0)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)

    host, _, port = a.target.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        proxy = CutProxy(int(port), parse_plan(a.plan), a.cut_every,
                         a.listen, host, a.hold_seconds, a.max_connections,
                         a.max_seconds, a.stats, a.verbose)
    except ValueError as e:
        print("cutproxy: %s" % e, file=sys.stderr)
        return 64
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % proxy.port)
        os.replace(a.port_file + ".tmp", a.port_file)
    print("cutproxy: listening on 127.0.0.1:%d, forwarding to %s:%d"
          % (proxy.port, proxy.target[0], proxy.target[1]),
          file=sys.stderr, flush=True)

    signal.signal(signal.SIGUSR1, lambda *_: proxy.write_stats())
    signal.signal(signal.SIGTERM, lambda *_: proxy.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: proxy.stopping.set())
    proxy.serve()
    s = proxy.stats()
    print("cutproxy: %d connections, %d octets c2s, %d octets s2c, %d cuts"
          % (s["connections"], s["c2s"], s["s2c"], s["cuts"]),
          file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
