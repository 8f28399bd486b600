#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    test_resume_send - resume-send against the lab, with and without
    broken links

DESCRIPTION
    Runs build/client/resume-send against the lab. Against REF_PORT
    (Postfix's own smtpd, no XRESUME) it checks plain delivery (LF input,
    dot lines, no final newline), STARTTLS, DATA and BDAT, a link cut
    during the message through cutproxy (a retry from octet 0 and exactly
    one copy delivered), a half-open link (timeout, retry), a lost final
    reply (the duplicate that plain SMTP cannot avoid), a refused
    recipient (exit 67, nothing sent), and an unreachable server (exit
    75 after --give-up). Every delivered copy must be the message as
    sent, byte for byte, after the headers Postfix adds.

    Against the port under test it runs the same cut, lost-reply and
    restart cases with XRESUME: they then must resume (fewer octets
    sent, a DONE instead of a duplicate). Those cases are skipped, with
    a message saying so, when that port does not offer XRESUME in its
    EHLO reply.

SEE ALSO
    lab.py, cutproxy.py, man/man1/resume-send.1
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cutproxy  # noqa: E402
import lab  # noqa: E402

EHLO = "client.lab.example"
SENDER = "a@lab.example"
RUN_TIMEOUT = 120


def build_message(subject, lines=20000, seed=7):
    """A message with LF line ends, dot-leading lines and no final LF,
    complete with the headers cleanup would otherwise add."""
    head = ("From: <a@lab.example>\nTo: <b@lab.example>\n"
            "Subject: %s\nDate: Thu, 03 Dec 2026 20:00:00 +0000\n"
            "Message-ID: <%s@client.lab.example>\n\n"
            % (subject, subject.replace(" ", "-")))
    body = []
    x = seed
    for i in range(lines):
        x = (x * 1103515245 + 12345) % 2 ** 31
        line = "line %d %s" % (i, "abcdefghij"[x % 10] * (x % 71))
        if i % 11 == 0:
            line = "." + line
        body.append(line)
    return (head + "\n".join(body) + "\n.\nend without newline").encode()


def canonical(msg):
    """What SIZE counts: CRLF line ends, a final CRLF added."""
    crlf = msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return crlf if crlf.endswith(b"\r\n") else crlf + b"\r\n"


class ResumeSend(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lab = lab.from_env()
        lab.require_serving(cls.lab, cls.lab.ref_port)
        lab.require_serving(cls.lab)
        build = cls.lab.build_dir or "build"
        cls.bin = os.path.join(build, "client", "resume-send")
        if not os.access(cls.bin, os.X_OK):
            raise lab.LabError("%s was not built" % cls.bin)
        cls.host = cls.lab.myhostname.encode()
        cls.xresume_port = cls.lab.port if cls.offers_xresume(
            cls.lab.port) else None

    @classmethod
    def offers_xresume(cls, port):
        c = lab.Conn(cls.lab.host, port)
        try:
            c.reply()
            c.send(b"EHLO " + EHLO.encode() + b"\r\n")
            ehlo = c.reply()
            c.send(b"QUIT\r\n")
        finally:
            c.close()
        return any(re.match(r"250[- ]XRESUME\b", l, re.I) for l in ehlo)

    def need_xresume(self):
        if self.xresume_port is None:
            self.skipTest("port %d does not offer XRESUME in its EHLO reply "
                          "(the server side has not landed there yet)"
                          % self.lab.port)
        return self.xresume_port

    def setUp(self):
        self.lab.wait_queue_empty()
        for u in ("b", "c"):
            self.lab.clear_maildir(u)
        self.tmp = tempfile.mkdtemp(prefix="test_resume_send.")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    # ---- helpers -------------------------------------------------------

    def send(self, msg, port, rcpts=("b@lab.example",), args=(),
             sender=SENDER):
        """Run resume-send; (exit status, report dict, stderr)."""
        path = os.path.join(self.tmp, "msg")
        with open(path, "wb") as f:
            f.write(msg)
        report = os.path.join(self.tmp, "report")
        if os.path.exists(report):
            os.unlink(report)
        cmd = ([self.bin, "-v", "-s", "127.0.0.1:%d" % port, "--helo", EHLO,
                "--report", report, "-m", path] + list(args)
               + ["-f", sender, "--"] + list(rcpts))
        r = subprocess.run(cmd, capture_output=True, text=True,
                           errors="replace", timeout=RUN_TIMEOUT)
        rep = {}
        if os.path.exists(report):
            with open(report) as f:
                for line in f:
                    k, _, v = line.rstrip("\n").partition("=")
                    rep[k] = v
        return r.returncode, rep, r.stderr

    def proxy(self, port, plan, **kw):
        p = cutproxy.CutProxy(port, plan, max_seconds=RUN_TIMEOUT, **kw)
        p.start()
        self.addCleanup(p.stop)
        return p

    def assert_sent(self, rc, rep, err):
        self.assertEqual(rc, 0, "resume-send failed:\n%s" % err[-3000:])
        self.assertEqual(rep.get("status"), "delivered", rep)

    def assert_delivered_once(self, msg, qid=None, user="b"):
        """Exactly one copy, equal to msg after Postfix's headers."""
        self.lab.wait_maildir(user, 1)
        self.lab.wait_queue_empty()
        msgs = self.lab.maildir(user)
        self.assertEqual(len(msgs), 1, "copies delivered to %s" % user)
        self.assert_copy(msgs[0][1], msg, qid, user)

    def assert_copy(self, got, msg, qid=None, user="b"):
        rcpt = ("%s@lab.example" % user).encode()
        qid_rx = re.escape(qid.encode()) if qid else rb"[0-9A-Za-z]+"
        head = (rb"Return-Path: <a@lab\.example>\n"
                rb"X-Original-To: " + re.escape(rcpt) + rb"\n"
                rb"Delivered-To: " + re.escape(rcpt) + rb"\n"
                rb"Received: from " + re.escape(EHLO.encode())
                + rb" \(localhost \[127\.0\.0\.1\]\)\n"
                rb"\tby " + re.escape(self.host) + rb" \(\S+\) with ESMTPS?A? id "
                + qid_rx + rb"\n\tfor <" + re.escape(rcpt) + rb">; [^\n]+\n")
        m = re.match(head, got)
        self.assertIsNotNone(m, "delivered headers differ:\n%r" % got[:600])
        want = canonical(msg).replace(b"\r\n", b"\n")
        rest = got[m.end():]
        if rest != want:
            i = next((k for k in range(min(len(rest), len(want)))
                      if rest[k] != want[k]), min(len(rest), len(want)))
            self.fail("body differs at octet %d (got %d, want %d): %r vs %r"
                      % (i, len(rest), len(want), rest[i - 30:i + 30],
                         want[i - 30:i + 30]))

    def final_reply_octets(self, rep):
        """Octets of the final reply and of the 221 after it, from the
        report's reason (the reply to the end of data)."""
        m = re.search(r" said: (.*) \(in reply to ", rep["reason"])
        self.assertIsNotNone(m, rep)
        return len(m.group(1)) + 2 + len("221 2.0.0 Bye\r\n")

    # ---- plain SMTP, Postfix's smtpd (no XRESUME) ----------------------

    def test_plain_delivery_is_byte_identical(self):
        msg = build_message("plain", lines=300)
        rc, rep, err = self.send(msg, self.lab.ref_port, args=["--tls", "none"])
        self.assert_sent(rc, rep, err)
        self.assertEqual(int(rep["message_octets"]), len(canonical(msg)))
        self.assertEqual((rep["connections"], rep["resumes"], rep["xresume"]),
                         ("1", "0", "no"))
        self.assert_delivered_once(msg, rep["queue_id"])
        # SIZE= on MAIL, as the server offers SIZE.
        self.assertRegex(err, r"> MAIL FROM:<a@lab\.example> SIZE=%d"
                         % len(canonical(msg)))

    def test_data_without_chunking(self):
        msg = build_message("data", lines=300)
        rc, rep, err = self.send(msg, self.lab.ref_port,
                                 args=["--tls", "none", "--no-chunking"])
        self.assert_sent(rc, rep, err)
        self.assertIn("> DATA", err)
        self.assertNotIn("> BDAT", err)
        self.assert_delivered_once(msg, rep["queue_id"])

    def test_starttls(self):
        if not self.lab.tls:
            self.skipTest("lab started without LAB_TLS=1: no STARTTLS")
        msg = build_message("tls", lines=2000)
        rc, rep, err = self.send(msg, self.lab.ref_port,
                                 args=["--tls", "encrypt"])
        self.assert_sent(rc, rep, err)
        self.assertEqual(rep["tls"], "yes")
        self.assert_delivered_once(msg, rep["queue_id"])

    def test_eight_bit_body(self):
        msg = ("Subject: 8bit\nDate: Thu, 03 Dec 2026 20:00:00 +0000\n"
               "Message-ID: <8bit@client.lab.example>\nFrom: <a@lab.example>"
               "\n\nd\u00e9j\u00e0 vu\n").encode("utf-8")
        rc, rep, err = self.send(msg, self.lab.ref_port, args=["--tls", "none"])
        self.assert_sent(rc, rep, err)
        self.assertIn("BODY=8BITMIME", err)
        self.assert_delivered_once(msg, rep["queue_id"])

    def test_cut_during_the_message_retries_from_zero(self):
        msg = build_message("cut plain")
        size = len(canonical(msg))
        p = self.proxy(self.lab.ref_port, ["c2s:200000", "c2s:500000"])
        rc, rep, err = self.send(msg, p.port, args=["--tls", "none"])
        self.assert_sent(rc, rep, err)
        st = p.stop()
        self.assertEqual((st["connections"], st["cuts"]), (3, 2))
        self.assertEqual((rep["connections"], rep["resumes"]), ("3", "0"))
        # Without XRESUME each attempt starts over: the last one alone
        # carried the whole message.
        self.assertGreater(st["per_connection"][2]["c2s"], size)
        self.assertGreaterEqual(int(rep["wire_octets"]), st["c2s"])
        self.assert_delivered_once(msg, rep["queue_id"])
        print("\n  plain cut: message %d octets, proxy c2s %d octets, "
              "%s connections" % (size, st["c2s"], rep["connections"]),
              file=sys.stderr)

    def test_half_open_link_times_out_and_retries(self):
        msg = build_message("hold plain", lines=3000)
        p = self.proxy(self.lab.ref_port, ["hold:30000"], hold_seconds=30)
        t0 = time.monotonic()
        rc, rep, err = self.send(msg, p.port,
                                 args=["--tls", "none", "--timeout", "2"])
        self.assert_sent(rc, rep, err)
        self.assertEqual(rep["connections"], "2")
        self.assertIn("timeout", err)
        self.assertLess(time.monotonic() - t0, 30)
        self.assert_delivered_once(msg, rep["queue_id"])

    def test_lost_final_reply_duplicates_without_xresume(self):
        # The baseline XRESUME removes: the server queued the message, the
        # 250 was lost, and a plain client can only send it again.
        msg = build_message("lost reply plain", lines=500)
        dry = self.proxy(self.lab.ref_port, ["pass"])
        rc, rep, err = self.send(msg, dry.port, args=["--tls", "none"])
        self.assert_sent(rc, rep, err)
        st = dry.stop()
        self.lab.wait_maildir("b", 1)
        self.lab.wait_queue_empty()
        self.lab.clear_maildir("b")
        before_final = st["s2c"] - self.final_reply_octets(rep)

        p = self.proxy(self.lab.ref_port, ["s2c:%d" % before_final])
        rc, rep, err = self.send(msg, p.port, args=["--tls", "none"])
        self.assert_sent(rc, rep, err)
        self.assertEqual(rep["connections"], "2")
        msgs = self.lab.wait_maildir("b", 2)
        self.lab.wait_queue_empty()
        self.assertEqual(len(self.lab.maildir("b")), 2)
        for _, got in msgs:
            self.assert_copy(got, msg)

    def test_refused_recipient_sends_nothing(self):
        msg = build_message("refused", lines=10)
        mark = self.lab.log_mark()
        rc, rep, err = self.send(
            msg, self.lab.ref_port,
            rcpts=("b@lab.example", "nosuchuser@lab.example"),
            args=["--tls", "none"])
        self.assertEqual(rc, 67, err)
        self.assertEqual(rep["status"], "nouser")
        self.assertRegex(err, r"(?m)^5\.1\.1 127\.0\.0\.1:\d+ said: 550 ")
        self.assertNotIn("> BDAT", err)
        self.assertNotIn("> DATA", err)
        lines = self.lab.wait_log_quiet(mark)
        self.assertFalse([l for l in lines if "postfix/local" in l],
                         "something was delivered:\n" + "\n".join(lines))
        self.assertEqual(self.lab.maildir("b"), [])

    def test_unreachable_server_gives_up_with_75(self):
        msg = build_message("nobody", lines=5)
        with socket_port() as port:
            t0 = time.monotonic()
            rc, rep, err = self.send(msg, port, args=["--give-up", "3"])
        self.assertEqual(rc, 75, err)
        self.assertEqual(rep["status"], "tempfail")
        self.assertRegex(err, r"(?m)^4\.4\.1 ")
        self.assertGreaterEqual(int(rep["connections"]), 2)
        self.assertLess(time.monotonic() - t0, 20)

    def test_usage_and_missing_input(self):
        r = subprocess.run([self.bin, "-f", SENDER], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 64, r.stderr)
        r = subprocess.run([self.bin, "-m", "/nonexistent/msg", "-f", SENDER,
                            "b@lab.example"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 66, r.stderr)

    # ---- XRESUME, on the port under test -------------------------------

    def test_xresume_cut_resumes_from_the_offset(self):
        port = self.need_xresume()
        msg = build_message("cut xresume")
        size = len(canonical(msg))
        p = self.proxy(port, ["c2s:200000", "c2s:500000"])
        rc, rep, err = self.send(msg, p.port, args=["--tls", "none"])
        self.assert_sent(rc, rep, err)
        st = p.stop()
        self.assertEqual(rep["xresume"], "yes")
        self.assertEqual(rep["connections"], "3")
        self.assertEqual(rep["resumes"], "2", err[-3000:])
        offsets = [int(o) for o in rep["resume_offsets"].split(",")]
        self.assertEqual(offsets, sorted(offsets))
        # Resumed: the proxy carried little more than the message once.
        self.assertLess(st["c2s"], size + 700000)
        self.assert_delivered_once(msg, rep["queue_id"])
        print("\n  xresume cut: message %d octets, proxy c2s %d octets, "
              "offsets %s" % (size, st["c2s"], offsets), file=sys.stderr)

    def test_xresume_cuts_in_headers_and_in_a_chunk_with_data_and_bdat(self):
        # draft 6: a cut in the header (a few hundred octets in: the
        # commands and a part of the first lines), then one in the middle
        # of a BDAT chunk (or of DATA): each resumed, one copy, and the
        # link carries the message about once.
        port = self.need_xresume()
        msg = build_message("headers xresume")
        size = len(canonical(msg))
        for extra in ([], ["--no-chunking"]):
            self.lab.wait_queue_empty()
            self.lab.clear_maildir("b")
            # 1st connection: into the header; 2nd: a third of the data.
            p = self.proxy(port, ["c2s:400", "c2s:%d" % (size // 3)])
            rc, rep, err = self.send(msg, p.port,
                                     args=["--tls", "none"] + extra)
            self.assert_sent(rc, rep, err)
            st = p.stop()
            self.assertEqual(rep["connections"], "3", err[-3000:])
            self.assert_delivered_once(msg, rep["queue_id"])
            # The budget of the issue: the message, one checkpoint
            # interval (1 MiB) per break, and the commands; in practice
            # only what was in flight is sent twice.
            self.assertLess(st["c2s"], size + 2 * 1048576 + 4096, st)
            print("\n  xresume %s: message %d octets, proxy c2s %d octets"
                  % ("DATA" if extra else "BDAT", size, st["c2s"]),
                  file=sys.stderr)

    def test_xresume_token_from_tls_is_never_sent_in_the_clear(self):
        # draft 13.6, 17.8: the first connection uses TLS and is cut in
        # the data; the second is cut in the TLS handshake. The third
        # must use TLS again (not fall back to plaintext with the token)
        # and resume.
        port = self.need_xresume()
        if not self.lab.tls:
            self.skipTest("the lab has no TLS (LAB_TLS=1)")
        msg = build_message("tls token")
        mark = self.lab.log_mark()
        p = self.proxy(port, ["c2s:300000:rst", "s2c:700:rst", "pass"])
        rc, rep, err = self.send(msg, p.port)
        self.assert_sent(rc, rep, err)
        self.assertEqual(rep["resumes"], "1", err[-3000:])
        lines = self.lab.log_since(mark)
        self.assertFalse([l for l in lines if "binding mismatch" in l],
                         "\n".join(lines[-30:]))
        self.assertNotRegex(err, r"> XRESUME [A-Za-z0-9_-]{16}",
                            "the token went out in the clear")
        self.assert_delivered_once(msg, rep["queue_id"])

    def test_xresume_lost_final_reply_is_done_not_a_duplicate(self):
        port = self.need_xresume()
        msg = build_message("lost reply xresume", lines=500)
        dry = self.proxy(port, ["pass"])
        rc, rep, err = self.send(msg, dry.port, args=["--tls", "none"])
        self.assert_sent(rc, rep, err)
        st = dry.stop()
        self.lab.wait_maildir("b", 1)
        self.lab.wait_queue_empty()
        self.lab.clear_maildir("b")
        before_final = st["s2c"] - self.final_reply_octets(rep)

        p = self.proxy(port, ["s2c:%d" % before_final])
        rc, rep, err = self.send(msg, p.port, args=["--tls", "none"])
        self.assert_sent(rc, rep, err)
        self.assertEqual((rep["connections"], rep["resumes"]), ("2", "1"))
        self.assertRegex(err, r"DONE QUEUEID=")
        self.assert_delivered_once(msg, rep["queue_id"])

    def test_xresume_state_dir_resumes_in_a_new_process(self):
        port = self.need_xresume()
        msg = build_message("state xresume")
        state = os.path.join(self.tmp, "state")
        os.mkdir(state, 0o700)
        # First process: cut, then every later connection too, until it
        # gives up with 75 and leaves its token behind.
        p = self.proxy(port, ["c2s:300000"], cut_every=0)
        rc, rep, err = self.send(msg, p.port,
                                 args=["--tls", "none", "--state-dir", state,
                                       "--give-up", "3"])
        self.assertEqual(rc, 75, err[-2000:])
        self.assertEqual(len(os.listdir(state)), 1)
        p.stop()
        # Second process, to the same server address (the link is good
        # now: a proxy that cuts nothing on the same port): resumes, and
        # removes the state. The state is kept per server address.
        good = self.proxy(port, [], listen_port=p.port)
        rc, rep, err = self.send(msg, good.port,
                                 args=["--tls", "none", "--state-dir", state])
        self.assert_sent(rc, rep, err)
        self.assertEqual(rep["resumes"], "1", err[-3000:])
        self.assertEqual(os.listdir(state), [])
        self.assert_delivered_once(msg, rep["queue_id"])


class socket_port:
    """A loopback port with nothing listening on it (bound, not listening,
    so no one else takes it meanwhile)."""

    def __enter__(self):
        import socket
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        return self.s.getsockname()[1]

    def __exit__(self, *exc):
        self.s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
