#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    holdconns - hold many SMTP sessions open, idle or trickling

SYNOPSIS
    holdconns.py --port P --count N [--mode idle|trickle] [--hold S]
                 [--rcpt ADDR] [--loaded-file F] --out FILE.json

DESCRIPTION
    Opens N connections to 127.0.0.1:P (at most --in-flight connects at a
    time), reads the banner, sends EHLO and then holds the session:

        idle     nothing more until the end
        trickle  MAIL, RCPT, DATA, then one short header line every
                 --trickle-interval seconds, never the final dot

    When every client has its banner or has waited --banner-wait seconds
    for it, it measures the time to banner of --probes new connections,
    one after another, then creates --loaded-file and waits (at most 60
    s) for LOADED-FILE.read, so that the caller can read the servers'
    memory while everything is held. After --hold seconds more it counts
    the sessions the server has not closed, closes all and writes the
    counts as JSON. Only 127.0.0.0/8 is contacted. Every wait is bounded.

SEE ALSO
    bench/bench.py
"""

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time

HOST = "127.0.0.1"


class Counts:
    def __init__(self):
        self.connected = 0
        self.banners = 0
        self.ehlo = 0
        self.mail = 0
        self.data = 0
        self.closed_by_server = 0
        self.errors = {}

    def err(self, what):
        self.errors[what] = self.errors.get(what, 0) + 1


async def reply(reader, timeout):
    """One SMTP reply (all its lines); the last line, or None."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError
        line = await asyncio.wait_for(reader.readline(), left)
        if not line:
            raise ConnectionError("closed by server")
        if len(line) < 4 or line[3:4] != b"-":
            return line


async def client(i, a, counts, sem, ready, stop, open_set):
    """One held session; releases `ready` once, whatever happens."""
    released = False

    def release():
        nonlocal released
        if not released:
            released = True
            ready.release_one()

    writer = None
    eof = None
    stopped = None
    try:
        async with sem:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, a.port), a.connect_timeout)
            except (OSError, asyncio.TimeoutError):
                counts.err("connect")
                return
        counts.connected += 1
        r = await reply(reader, a.banner_wait)
        if not r.startswith(b"220"):
            counts.err("banner %s" % r[:3].decode("ascii", "replace"))
            return
        counts.banners += 1
        writer.write(b"EHLO hold%d.lab.example\r\n" % i)
        r = await reply(reader, a.reply_timeout)
        if not r.startswith(b"250"):
            counts.err("ehlo")
            return
        counts.ehlo += 1
        if a.mode == "trickle":
            writer.write(b"MAIL FROM:<hold%d@lab.example>\r\n" % i)
            r = await reply(reader, a.reply_timeout)
            if not r.startswith(b"250"):
                counts.err("mail %s" % r[:3].decode("ascii", "replace"))
                return
            counts.mail += 1
            writer.write(b"RCPT TO:<%s>\r\n" % a.rcpt.encode())
            r = await reply(reader, a.reply_timeout)
            writer.write(b"DATA\r\n")
            r = await reply(reader, a.reply_timeout)
            if not r.startswith(b"354"):
                counts.err("data %s" % r[:3].decode("ascii", "replace"))
                return
            counts.data += 1
        release()
        open_set.add(i)

        # Hold until told to stop; a trickling client sends a line now
        # and then. Anything from the server (a 421, an EOF) means it
        # dropped the session.
        n = 0
        eof = asyncio.ensure_future(reader.read(1))
        stopped = asyncio.ensure_future(stop.wait())
        interval = a.trickle_interval if a.mode == "trickle" else 3600
        while not stop.is_set():
            done, _ = await asyncio.wait(
                {eof, stopped}, timeout=interval,
                return_when=asyncio.FIRST_COMPLETED)
            if eof in done:
                counts.closed_by_server += 1
                open_set.discard(i)
                return
            if a.mode == "trickle" and not stop.is_set():
                n += 1
                writer.write(b"X-Trickle-%d: %s\r\n" % (n, b"x" * 40))
                await asyncio.wait_for(writer.drain(), a.reply_timeout)
    except (asyncio.TimeoutError, ConnectionError, OSError) as e:
        counts.err(type(e).__name__)
        open_set.discard(i)
    finally:
        release()
        for f in (eof, stopped):
            if f is not None:
                f.cancel()
        if writer is not None:
            writer.close()


class Ready:
    """Counts down as each client is done with its start-up."""

    def __init__(self, n):
        self.left = n
        self.event = asyncio.Event()
        if n == 0:
            self.event.set()

    def release_one(self):
        self.left -= 1
        if self.left <= 0:
            self.event.set()


async def probe(a):
    """Seconds until a new client's banner, or None."""
    t0 = time.monotonic()
    w = None
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(HOST, a.port),
                                      a.probe_timeout)
        line = await reply(r, a.probe_timeout - (time.monotonic() - t0))
        if line.startswith(b"220"):
            dt = time.monotonic() - t0
            w.write(b"QUIT\r\n")
            return dt
    except (asyncio.TimeoutError, ConnectionError, OSError):
        return None
    finally:
        if w is not None:
            w.close()
    return None


async def run(a):
    counts = Counts()
    sem = asyncio.Semaphore(a.in_flight)
    ready = Ready(a.count)
    stop = asyncio.Event()
    open_set = set()
    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(client(i, a, counts, sem, ready, stop,
                                          open_set))
             for i in range(a.count)]

    # Every client releases `ready` once it holds its session or has
    # given up; bounded in any case.
    deadline = t0 + a.connect_timeout * (a.count / a.in_flight + 1) \
        + a.banner_wait + 4 * a.reply_timeout + 10
    try:
        await asyncio.wait_for(ready.event.wait(),
                               max(1.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        pass
    ramp = time.monotonic() - t0

    # Banner latency of newcomers while the others are held: started a
    # little apart, waited for together, so that a server that answers
    # none costs one probe timeout, not one per probe.
    async def staggered(k):
        await asyncio.sleep(0.05 * k)
        return await probe(a)
    lat = await asyncio.gather(*[staggered(k) for k in range(a.probes)])
    ok = [x for x in lat if x is not None]

    # Let the caller read memory now.
    if a.loaded_file:
        open(a.loaded_file, "w").close()
        for _ in range(600):
            if os.path.exists(a.loaded_file + ".read"):
                break
            await asyncio.sleep(0.1)
    await asyncio.sleep(a.hold)
    open_at_end = len(open_set)
    stop.set()
    await asyncio.wait(tasks, timeout=30)
    for t in tasks:
        t.cancel()
    return {
        "count": a.count, "connected": counts.connected,
        "banners": counts.banners, "ehlo": counts.ehlo,
        "mail": counts.mail, "data": counts.data,
        "open_at_end": open_at_end,
        "closed_by_server": counts.closed_by_server,
        "errors": counts.errors, "ramp_seconds": ramp,
        "probes": a.probes, "probes_ok": len(ok),
        "probe_median": statistics.median(ok) if ok else None,
        "probe_max": max(ok) if ok else None,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--mode", choices=("idle", "trickle"), default="idle")
    ap.add_argument("--hold", type=float, default=10.0)
    ap.add_argument("--rcpt", default="null@lab.example")
    ap.add_argument("--in-flight", type=int, default=500)
    ap.add_argument("--connect-timeout", type=float, default=3.0)
    ap.add_argument("--banner-wait", type=float, default=10.0)
    ap.add_argument("--reply-timeout", type=float, default=20.0)
    ap.add_argument("--trickle-interval", type=float, default=2.0)
    ap.add_argument("--probes", type=int, default=10)
    ap.add_argument("--probe-timeout", type=float, default=5.0)
    ap.add_argument("--loaded-file", default=None)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    # One descriptor per session, and some to spare.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + a.probes + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        print("holdconns: RLIMIT_NOFILE %d < %d: holding %d sessions"
              % (soft, want, soft - a.probes - 100), file=sys.stderr)
        a.count = soft - a.probes - 100
    res = asyncio.run(run(a))
    with open(a.out, "w") as f:
        json.dump(res, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
