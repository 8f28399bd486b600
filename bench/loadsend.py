#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    loadsend - many messages with or without XRESUME, for the cost of
    safety

SYNOPSIS
    loadsend.py --port P --size N --msgs M --sessions S [--xresume]
                [--rcpt ADDR]

DESCRIPTION
    S threads each hold one connection to 127.0.0.1:P and send their
    share of M messages of N octets, one after another: MAIL, RCPT,
    with --xresume XRESUME NEW, then DATA. Everything else is the same
    with and without --xresume, so the difference in rate is what the
    server spends on a resumable transfer (spool writes, checkpoints).
    Prints JSON: seconds, sent, tokens, errors. Exits 1 when a message
    was not accepted.

SEE ALSO
    bench/bench.py, bench/xsend.py
"""

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xsend import Broken, Conn, stuff  # noqa: E402


def message(size, tag):
    """size octets of CRLF lines (headers included), unique by tag."""
    head = ("From: bench@lab.example\r\nTo: null@lab.example\r\n"
            "Subject: loadsend %s\r\nMessage-ID: <%s@lab.example>\r\n\r\n"
            % (tag, tag)).encode()
    line = b"x" * 76 + b"\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    return head + body[:size - len(head) - 2] + b"\r\n"


def worker(k, a, count, out, lock):
    sent = tokens = 0
    errors = []
    c = None
    try:
        c = Conn("127.0.0.1", a.port, 60)
        if not c.reply()[-1].startswith("220"):
            raise Broken("banner")
        c.cmd("EHLO loadsend.lab.example")
        for i in range(count):
            body = stuff(message(a.size, "ls%d.%d.%d" % (os.getpid(), k, i)))
            r = c.cmd("MAIL FROM:<bench@lab.example>")
            if not r[-1].startswith("250"):
                raise Broken("MAIL: " + r[-1])
            r = c.cmd("RCPT TO:<%s>" % a.rcpt)
            if not r[-1].startswith("250"):
                raise Broken("RCPT: " + r[-1])
            if a.xresume:
                r = c.cmd("XRESUME NEW")
                if r[-1].startswith("250") and "TOKEN=" in r[-1]:
                    tokens += 1
            r = c.cmd("DATA")
            if not r[-1].startswith("354"):
                raise Broken("DATA: " + r[-1])
            c.send(body + b".\r\n")
            r = c.reply()
            if not r[-1].startswith("250"):
                raise Broken("end of data: " + r[-1])
            sent += 1
        c.cmd("QUIT")
    except (Broken, OSError) as e:
        errors.append(str(e))
    finally:
        if c is not None:
            c.close()
    with lock:
        out["sent"] += sent
        out["tokens"] += tokens
        out["errors"] += errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--msgs", type=int, required=True)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--xresume", action="store_true")
    ap.add_argument("--rcpt", default="null@lab.example")
    a = ap.parse_args()
    out = {"sent": 0, "tokens": 0, "errors": []}
    lock = threading.Lock()
    share = [a.msgs // a.sessions + (1 if k < a.msgs % a.sessions else 0)
             for k in range(a.sessions)]
    threads = [threading.Thread(target=worker, args=(k, a, share[k], out,
                                                     lock))
               for k in range(a.sessions)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    out["seconds"] = time.monotonic() - t0
    print(json.dumps(out))
    return 0 if out["sent"] == a.msgs and not out["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
