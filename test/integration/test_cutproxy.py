#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    test_cutproxy - the cutting proxy cuts, resets and holds exactly

DESCRIPTION
    Self-contained: starts its own echo server on 127.0.0.1 port 0 and
    the proxy (module and command line) in front of it; needs no lab.
    Checks that c2s:N lets exactly N octets through, s2c:N exactly N
    back, :rst resets, hold:N keeps a silent open link until the hold
    time, --cut-every cuts later connections, a non-loopback target is
    refused, the counts and the --stats file are right, and the bounds
    (--max-connections, --max-seconds) stop it.

SEE ALSO
    cutproxy.py, scripts/cutproxy
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cutproxy  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))


class EchoServer:
    """Echoes everything back; remembers what each connection received."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.closed = []
        self.stop = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            i = len(self.received)
            self.received.append(b"")
            self.closed.append(threading.Event())
            threading.Thread(target=self.echo, args=(c, i),
                             daemon=True).start()

    def echo(self, c, i):
        c.settimeout(10)
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                self.received[i] += data
                c.sendall(data)
        except OSError:
            pass
        finally:
            self.closed[i].set()
            c.close()

    def close(self):
        self.stop.set()
        self.sock.close()


def read_until_eof(s, timeout=5.0):
    """(data, how): how is "eof", "reset" or "timeout"."""
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            got = s.recv(65536)
        except socket.timeout:
            return data, "timeout"
        except ConnectionResetError:
            return data, "reset"
        if not got:
            return data, "eof"
        data += got


def send_quietly(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass


class CutProxyTest(unittest.TestCase):

    def setUp(self):
        self.echo = EchoServer()

    def tearDown(self):
        self.echo.close()

    def proxy(self, plan=(), **kw):
        p = cutproxy.CutProxy(self.echo.port, plan, **kw).start()
        self.addCleanup(p.stop)
        return p

    def connect(self, p):
        return socket.create_connection(("127.0.0.1", p.port), timeout=5)

    def test_pass_forwards_both_ways_and_counts(self):
        p = self.proxy(["pass"])
        s = self.connect(p)
        s.sendall(b"x" * 100000)
        s.shutdown(socket.SHUT_WR)
        data, how = read_until_eof(s)
        self.assertEqual((len(data), how), (100000, "eof"))
        st = p.stop()
        self.assertEqual((st["connections"], st["c2s"], st["s2c"],
                          st["cuts"]), (1, 100000, 100000, 0))

    def test_c2s_cut_forwards_exactly_n(self):
        p = self.proxy(["c2s:1234"])
        s = self.connect(p)
        send_quietly(s, b"a" * 5000)
        data, how = read_until_eof(s)
        self.assertIn(how, ("eof", "reset"))
        self.assertTrue(self.echo.closed[0].wait(5))
        self.assertEqual(len(self.echo.received[0]), 1234)
        st = p.stop()
        self.assertEqual((st["c2s"], st["cuts"]), (1234, 1))
        self.assertEqual(st["per_connection"][0]["cut"], "c2s:1234")

    def test_s2c_cut_delivers_exactly_n_back(self):
        p = self.proxy(["s2c:777"])
        s = self.connect(p)
        send_quietly(s, b"b" * 3000)
        data, how = read_until_eof(s)
        self.assertEqual(len(data), 777, "got %d octets back" % len(data))
        self.assertIn(how, ("eof", "reset"))
        self.assertEqual(p.stop()["s2c"], 777)

    def test_rst_resets_the_client(self):
        p = self.proxy(["c2s:10:rst"])
        s = self.connect(p)
        send_quietly(s, b"c" * 10)
        time.sleep(0.5)
        # The reset shows on the next write, or else on the next read.
        try:
            s.sendall(b"c" * 10)
            _, how = read_until_eof(s)
        except ConnectionResetError:
            how = "reset"
        self.assertEqual(how, "reset")

    def test_hold_keeps_a_silent_open_link(self):
        p = self.proxy(["hold:50"], hold_seconds=1.5)
        s = self.connect(p)
        send_quietly(s, b"d" * 200)
        t0 = time.monotonic()
        data, how = read_until_eof(s, timeout=0.8)
        # Only what the server echoed of its 50 octets may come back
        # before the hold; after it, silence, and the link stays open.
        self.assertLessEqual(len(data), 50)
        self.assertEqual(how, "timeout")
        self.assertEqual(len(self.echo.received[0]), 50)
        _, how = read_until_eof(s, timeout=5)
        self.assertEqual(how, "eof")
        self.assertGreaterEqual(time.monotonic() - t0, 1.4)
        self.assertEqual(p.stop()["c2s"], 50)

    def test_cut_every_cuts_later_connections(self):
        p = self.proxy(["pass"], cut_every=10)
        for i in range(3):
            s = self.connect(p)
            send_quietly(s, b"e" * 40)
            if i == 0:
                s.shutdown(socket.SHUT_WR)
            data, _ = read_until_eof(s)
            self.assertEqual(len(data), 40 if i == 0 else len(data))
            s.close()
        time.sleep(0.3)
        st = p.stop()
        self.assertEqual(st["connections"], 3)
        self.assertEqual([c["c2s"] for c in st["per_connection"]],
                         [40, 10, 10])
        self.assertEqual(st["cuts"], 2)

    def test_non_loopback_target_is_refused(self):
        with self.assertRaises(ValueError):
            cutproxy.CutProxy(25, target_host="192.0.2.1")
        with self.assertRaises(ValueError):
            cutproxy.parse_plan("c2s:x")
        with self.assertRaises(ValueError):
            cutproxy.parse_plan("hold:5:rst")
        r = subprocess.run([sys.executable,
                            os.path.join(REPO, "scripts", "cutproxy"),
                            "--target", "10.1.2.3:25"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 64, r.stderr)

    def test_command_line_stats_and_bounds(self):
        with tempfile.TemporaryDirectory() as d:
            stats = os.path.join(d, "stats.json")
            portf = os.path.join(d, "port")
            proc = subprocess.Popen(
                [sys.executable, os.path.join(REPO, "scripts", "cutproxy"),
                 "--target", str(self.echo.port), "--plan", "c2s:5",
                 "--stats", stats, "--port-file", portf,
                 "--max-connections", "2", "--max-seconds", "20"],
                stderr=subprocess.PIPE, text=True)
            try:
                deadline = time.monotonic() + 10
                while not os.path.exists(portf):
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.05)
                with open(portf) as f:
                    port = int(f.read())
                s = socket.create_connection(("127.0.0.1", port), 5)
                send_quietly(s, b"0123456789")
                read_until_eof(s)
                # SIGUSR1 writes the figures while it runs.
                proc.send_signal(signal.SIGUSR1)
                deadline = time.monotonic() + 5
                while not os.path.exists(stats):
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.05)
                with open(stats) as f:
                    self.assertEqual(json.load(f)["c2s"], 5)
                s = socket.create_connection(("127.0.0.1", port), 5)
                s.sendall(b"hello")
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(read_until_eof(s), (b"hello", "eof"))
                s.close()
                # Two connections done: it stops by itself.
                _, err = proc.communicate(timeout=15)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            self.assertEqual(proc.returncode, 0, err)
            with open(stats) as f:
                st = json.load(f)
            # The first connection's echo may or may not beat the cut.
            self.assertEqual((st["connections"], st["c2s"], st["cuts"]),
                             (2, 10, 1))
            self.assertEqual(st["per_connection"][1],
                             {"c2s": 5, "s2c": 5, "cut": None})
            self.assertLessEqual(st["per_connection"][0]["s2c"], 5)
            self.assertIn("2 connections", err)

    def test_max_seconds_stops_it(self):
        p = cutproxy.CutProxy(self.echo.port, max_seconds=0.5).start()
        self.assertTrue(p.finished.wait(5))


if __name__ == "__main__":
    unittest.main(verbosity=2)
