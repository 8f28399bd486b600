#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    test_xresume - resumable transfers against the real Postfix lab

DESCRIPTION
    Raw dialogues with the server under test (resume-smtpd swapped into
    the lab): a transfer is cut at chosen octets (in the headers, in the
    body, inside a BDAT chunk, after the final dot before the reply),
    then resumed on a new connection with XRESUME. Every message must
    arrive exactly once and byte for byte; the octets sent in total stay
    within the message size plus what was in flight at each break. The
    sections named are those of docs/draft-xresume.txt.

    The cases that change main.cf (spool limits, content refusal) restore
    it and reload when they end.

SEE ALSO
    lab.py, smtpd/smtpd_resume.cc, resumedb/spool.h
"""

import base64
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

EHLO = b"EHLO client.lab.example\r\n"
SENDER = "a@lab.example"
RCPT = "b@lab.example"
WORDS = re.compile(r"([A-Z0-9]+)=(\S+)")


def make_message(n_lines, tag):
    """A message of CRLF lines, some dot-leading, unique by tag."""
    head = ("From: a@lab.example\r\nTo: b@lab.example\r\n"
            "Subject: resume %s\r\nMessage-ID: <%s@lab.example>\r\n\r\n"
            % (tag, tag)).encode()
    body = []
    for i in range(n_lines):
        if i % 97 == 0:
            body.append(b".leading dot line %d\r\n" % i)
        elif i % 101 == 0:
            body.append(b".\r\n")
        else:
            body.append(b"line %06d %s\r\n" % (i, b"x" * (i % 70)))
    return head + b"".join(body)


def stuff(octets):
    """DATA transparency (RFC 5321 4.5.2) for octets that start a line."""
    out = re.sub(rb"(^|\n)\.", rb"\1..", octets)
    return out


def digest(octets):
    return base64.b64encode(hashlib.sha256(octets).digest()).decode()


def words(reply):
    """The KEY=value words of a reply's last line, as a dict."""
    return dict(WORDS.findall(reply[-1])) if reply else {}


class Session:
    """One raw connection up to an accepted RCPT; counts octets sent."""

    def __init__(self, the_lab, rcpts=(RCPT,), sender=SENDER, size=None,
                 port=None, source=None):
        self.c = lab.Conn(the_lab.host, port or the_lab.port, source=source)
        self.sent = 0
        banner = self.c.reply()
        assert banner and banner[-1].startswith("220"), banner
        self.ehlo = self.cmd(EHLO)
        assert self.ehlo[-1].startswith("250 "), self.ehlo
        mail = "MAIL FROM:<%s>" % sender
        if size is not None:
            mail += " SIZE=%d" % size
        r = self.cmd(mail.encode() + b"\r\n")
        assert r[-1].startswith("250"), r
        for rc in rcpts:
            r = self.cmd(b"RCPT TO:<%s>\r\n" % rc.encode())
            assert r[-1].startswith("250"), r

    def send(self, data):
        self.sent += len(data)
        self.c.send(data)

    def cmd(self, line):
        self.send(line)
        return self.c.reply()

    def xresume(self, arg):
        return self.cmd(b"XRESUME %s\r\n" % arg.encode())

    def cut(self):
        """The link breaks: a reset, as a dropped connection looks."""
        try:
            self.c.sock.setsockopt(socket_module().SOL_SOCKET,
                                   socket_module().SO_LINGER,
                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.c.close()

    def close(self):
        self.c.close()


def socket_module():
    import socket
    return socket


class Base(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lab = lab.from_env()
        lab.require_serving(cls.lab)
        if not cls.lab.swapped:
            raise unittest.SkipTest("XRESUME is ours: resume-smtpd is not "
                                    "swapped into the lab")

    def setUp(self):
        self.lab.wait_queue_empty()
        self.lab.clear_maildir("b")
        self.lab.clear_maildir("c")
        # Every case starts with an empty spool: the client quota counts
        # what earlier cases left (resumedb(1) empties it).
        self.resumedb("-p", "ALL")
        self.mark = self.lab.log_mark()

    def resumedb(self, *args, check=True):
        exe = os.path.join(self.lab.build_dir, "resumedb", "resumedb")
        out = subprocess.run([exe, "-c", self.lab.etc] + list(args),
                             capture_output=True, text=True, timeout=30)
        if check:
            self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def new_entry(self, sess):
        r = sess.xresume("NEW")
        self.assertTrue(r and r[-1].startswith("250 2.0.0 TOKEN="), r)
        w = words(r)
        self.assertEqual(w["OFFSET"], "0", r)
        return w["TOKEN"]

    def broken_transfer(self, msg, wire_octets):
        """A transfer with XRESUME NEW and DATA, cut after wire_octets of
        the dot-stuffed message and saved by the server; returns the
        token and the (closed) session, for its octet count."""
        s = Session(self.lab, size=len(msg))
        token = self.new_entry(s)
        r = s.cmd(b"DATA\r\n")
        self.assertTrue(r[-1].startswith("354"), r)
        s.send(stuff(msg)[:wire_octets])
        time.sleep(0.3)
        s.cut()
        self.lab.wait_log(self.mark, r"resume: token=\w+ saved offset=")
        return token, s

    def resume(self, token, msg, size=None, rcpts=(RCPT,)):
        """A new connection claims token; returns (session, offset)."""
        s = Session(self.lab, rcpts=rcpts, size=size)
        r = s.xresume(token)
        self.assertTrue(r and r[-1].startswith("250 2.0.0 TOKEN="), r)
        w = words(r)
        self.assertEqual(w["TOKEN"], token, "the same token comes back")
        off = int(w["OFFSET"])
        self.assertLessEqual(off, len(msg))
        if off:
            # section 6: only line boundaries, and the digest of exactly
            # the committed prefix.
            self.assertEqual(msg[off - 1:off], b"\n", "offset %d" % off)
            self.assertEqual(w["SHA256"], digest(msg[:off]))
        return s, off

    def finish_data(self, s, msg, off):
        r = s.cmd(b"DATA\r\n")
        self.assertTrue(r[-1].startswith("354"), r)
        s.send(stuff(msg[off:]) + b".\r\n")
        r = s.c.reply()
        self.assertTrue(r and r[-1].startswith("250 2.0.0 Ok: queued as "),
                        r)
        return r[-1].rsplit(" ", 1)[1]

    def assert_one_copy(self, msg, user="b"):
        """Exactly one delivered copy, whose body is msg (LF lines)."""
        got = self.lab.wait_maildir(user, 1)
        time.sleep(0.5)
        got = self.lab.maildir(user)
        self.assertEqual(len(got), 1, "copies delivered: %d" % len(got))
        data = got[0][1]
        want = msg.replace(b"\r\n", b"\n")
        self.assertTrue(data.endswith(b"\n\n" + want.split(b"\n\n", 1)[1])
                        and want.split(b"\n\n", 1)[0] in data,
                        "delivered message differs (%d bytes, want %d)"
                        % (len(data), len(want)))
        # Nothing beyond the one Received: header of ours.
        self.assertEqual(data.count(b"\nReceived: "), 1)


class Resume(Base):

    def test_ehlo_offers_xresume_with_its_limits(self):
        # section 4: the keyword with TTL and MAXSIZE.
        s = Session(self.lab)
        kw = [l for l in s.ehlo if l[4:].startswith("XRESUME")]
        s.close()
        self.assertEqual(len(kw), 1, s.ehlo)
        self.assertRegex(kw[0], r"^250[- ]XRESUME TTL=\d+ MAXSIZE=\d+$")

    def test_sequence_and_syntax_errors(self):
        # section 5.4: out of sequence, bad syntax.
        c = lab.Conn(self.lab.host, self.lab.port)
        c.reply()
        c.send(EHLO)
        c.reply()
        c.send(b"XRESUME NEW\r\n")
        self.assertTrue(c.reply()[-1].startswith("503 5.5.1"))
        c.send(b"MAIL FROM:<a@lab.example>\r\n")
        c.reply()
        c.send(b"XRESUME NEW\r\n")
        self.assertTrue(c.reply()[-1].startswith("503 5.5.1"))
        c.send(b"RCPT TO:<b@lab.example>\r\n")
        c.reply()
        for bad in (b"XRESUME\r\n", b"XRESUME NEW NEW\r\n",
                    b"XRESUME bad/token!\r\n", b"XRESUME ABORT\r\n",
                    b"XRESUME " + b"A" * 65 + b"\r\n",
                    b"XRESUME  NEW\r\n", b"XRESUME NEW \r\n",
                    b"XRESUME\tNEW\r\n", b"XRESUME ABORT  " + b"A" * 24
                    + b"\r\n"):
            c.send(bad)
            r = c.reply()
            self.assertTrue(r[-1].startswith("501 5.5.4"), (bad, r))
        # Inside a BDAT series, even a well-formed one is out of place.
        c.send(b"BDAT 5\r\nabc\r\n")
        self.assertTrue(c.reply()[-1].startswith("250"))
        c.send(b"XRESUME NEW\r\n")
        self.assertTrue(c.reply()[-1].startswith("503 5.5.1"))
        c.send(b"QUIT\r\n")
        c.close()

    def test_ehlo_right_behind_the_tls_handshake_counts(self):
        # A TLS 1.3 client may send EHLO in the same segment as its
        # Finished message; the session must start over before reading
        # it, not after (which would forget the EHLO, and so XRESUME).
        # Memory BIOs hold the client's last handshake flight back until
        # the EHLO group is encrypted behind it.
        if not self.lab.tls:
            self.skipTest("the lab has no TLS (LAB_TLS=1)")
        import ssl
        for _ in range(10):
            c = lab.Conn(self.lab.host, self.lab.port)
            c.reply()
            c.send(EHLO)
            c.reply()
            c.send(b"STARTTLS\r\n")
            self.assertTrue(c.reply()[-1].startswith("220"))
            inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = lab.insecure_tls_context().wrap_bio(inc, out)
            deadline = time.monotonic() + 10
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    c.sock.sendall(out.read())
                    self.assertLess(time.monotonic(), deadline)
                    data = c.sock.recv(65536)
                    self.assertTrue(data, "closed in the handshake")
                    inc.write(data)
            tls.write(EHLO + b"MAIL FROM:<a@lab.example>\r\n"
                      b"RCPT TO:<b@lab.example>\r\nXRESUME NEW\r\n")
            c.sock.sendall(out.read())
            got = b""
            while got.count(b"\r\n250 2.0.0 TOKEN=") + got.count(
                    b"\r\n5") + got.count(b"\r\n4") == 0 \
                    or not got.endswith(b"\r\n"):
                self.assertLess(time.monotonic(), deadline, got)
                try:
                    got += tls.read(65536)
                    continue
                except ssl.SSLWantReadError:
                    pass
                data = c.sock.recv(65536)
                self.assertTrue(data, "closed: %r" % got)
                inc.write(data)
            text = got.decode()
            self.assertIn("XRESUME TTL=", text)
            m = re.search(r"250 2\.0\.0 TOKEN=(\S+)", text)
            self.assertTrue(m, text)
            tls.write(b"XRESUME ABORT %s\r\nQUIT\r\n" % m.group(1).encode())
            c.sock.sendall(out.read())
            time.sleep(0.1)
            c.close()
        lines = self.lab.wait_log(
            self.mark, r"disconnect from .* ehlo=2 starttls=1 ", count=10)
        self.assertFalse([l for l in lines if "starttls=0" in l])

    def test_helo_session_is_not_offered_xresume(self):
        # section 4.5: only after EHLO.
        c = lab.Conn(self.lab.host, self.lab.port)
        c.reply()
        for line in (b"HELO client.lab.example\r\n",
                     b"MAIL FROM:<a@lab.example>\r\n",
                     b"RCPT TO:<b@lab.example>\r\n"):
            c.send(line)
            self.assertTrue(c.reply()[-1].startswith("250"))
        c.send(b"XRESUME NEW\r\n")
        self.assertTrue(c.reply()[-1].startswith("502 5.5.1"))
        c.close()

    def cut_and_resume(self, msg, cut_at):
        """Send msg with DATA, cut after cut_at wire octets of it, resume,
        finish; check one copy and the octet budget."""
        wire = stuff(msg)
        token, s = self.broken_transfer(msg, cut_at)

        s2, off = self.resume(token, msg, size=len(msg))
        self.finish_data(s2, msg, off)
        s2.cmd(b"QUIT\r\n")
        s2.close()
        self.assert_one_copy(msg)
        # The budget: the whole message once, plus what was cut off in
        # flight (at most the part after the last line end), plus the
        # commands of two sessions.
        sent = s.sent + s2.sent
        self.assertLessEqual(sent, len(wire) + 2 * 200 + 4096,
                             "octets sent %d for %d" % (sent, len(wire)))
        return off

    def test_cut_in_the_headers(self):
        msg = make_message(2000, "hdr")
        off = self.cut_and_resume(msg, 50)
        self.assertLessEqual(off, 50)

    def test_cut_in_the_body(self):
        msg = make_message(20000, "body")
        cut = len(msg) // 2
        off = self.cut_and_resume(msg, cut)
        # Everything up to the last whole line before the cut was kept:
        # the wire's octets less its stuffed dots, less a partial line.
        kept = cut - len(re.findall(rb"\n\.\.", stuff(msg)[:cut]))
        self.assertGreater(off, kept - 200)

    def test_cut_at_every_kind_of_line(self):
        # Cuts right after a stuffed dot, inside "..", after a lone "."
        # line of the content: the splice must never unstuff twice.
        msg = make_message(400, "dots")
        wire = stuff(msg)
        spots = [m.start() for m in re.finditer(rb"\n\.", wire)][:3]
        for i, p in enumerate(spots):
            self.setUp()
            self.cut_and_resume(msg, p + 2)

    def test_resume_a_data_transfer_with_bdat(self):
        # section 6: DATA and BDAT share offsets.
        msg = make_message(6000, "bdat")
        token, _ = self.broken_transfer(msg, len(msg) // 3)
        s2, off = self.resume(token, msg, size=len(msg))
        tail = msg[off:]
        half = len(tail) // 2
        s2.send(b"BDAT %d\r\n" % half + tail[:half])
        r = s2.c.reply()
        self.assertEqual(r[-1], "250 2.0.0 Ok: %d bytes" % (off + half))
        s2.send(b"BDAT %d LAST\r\n" % (len(tail) - half) + tail[half:])
        r = s2.c.reply()
        self.assertRegex(r[-1], r"^250 2\.0\.0 Ok: \d+ bytes queued as ")
        s2.close()
        self.assert_one_copy(msg)

    def test_cut_inside_a_bdat_chunk(self):
        msg = make_message(6000, "chunk")
        s = Session(self.lab, size=len(msg))
        token = self.new_entry(s)
        s.send(b"BDAT %d LAST\r\n" % len(msg) + msg[: len(msg) // 2 + 7])
        time.sleep(0.3)
        s.cut()
        self.lab.wait_log(self.mark, r"resume: token=\w+ saved offset=")
        s2, off = self.resume(token, msg, size=len(msg))
        self.assertGreater(off, 0)
        self.finish_data(s2, msg, off)
        s2.close()
        self.assert_one_copy(msg)

    def test_cut_after_the_final_dot_gives_done(self):
        # section 5.3: the reply was lost; the resume learns the queue id
        # and nothing is queued twice.
        msg = make_message(500, "done")
        s = Session(self.lab, size=len(msg))
        token = self.new_entry(s)
        s.cmd(b"DATA\r\n")
        s.send(stuff(msg) + b".\r\n")
        lines = self.lab.wait_log(self.mark, r"resume: token=\w+ completed")
        s.cut()
        qid = [l for l in lines if "completed" in l][0]
        qid = re.search(r": (\w+): resume:", qid).group(1)
        s2 = Session(self.lab, size=len(msg))
        r = s2.xresume(token)
        self.assertEqual(r[-1], "250 2.0.0 DONE QUEUEID=%s" % qid)
        # The transaction is over: DATA now has nothing to send.
        r = s2.cmd(b"DATA\r\n")
        self.assertTrue(r[-1].startswith("503"), r)
        s2.cmd(b"QUIT\r\n")
        s2.close()
        self.assert_one_copy(msg)
        # XRESUME has its own counter in Postfix's disconnect line.
        self.lab.wait_log(self.mark, r"disconnect from \S+ ehlo=1 mail=1 "
                          r"rcpt=1 xresume=1 data=0/1 quit=1 commands=5/6$")

    def test_unknown_token_mismatch_and_abort(self):
        # section 5.2: a fresh token for anything unresumable; the
        # original entry survives a mismatch.
        msg = make_message(3000, "bind")
        token, _ = self.broken_transfer(msg, 20000)

        # A token nobody issued.
        s2 = Session(self.lab, size=len(msg))
        r = s2.xresume("A" * 24)
        w = words(r)
        self.assertNotEqual(w.get("TOKEN"), "A" * 24, r)
        self.assertEqual(w.get("OFFSET"), "0", r)
        self.assertNotIn("SHA256", w)
        s2.close()

        # The right token, another envelope (another recipient, another
        # SIZE): fresh, and the original stays.
        for kw in ({"rcpts": ("c@lab.example",), "size": len(msg)},
                   {"size": len(msg) + 1}):
            s3 = Session(self.lab, **kw)
            r = s3.xresume(token)
            w = words(r)
            self.assertNotEqual(w.get("TOKEN"), token, r)
            self.assertEqual(w.get("OFFSET"), "0", r)
            s3.close()
        s4, off = self.resume(token, msg, size=len(msg))
        self.assertGreater(off, 0)

        # ABORT: gone, a later resume starts over.
        r = s4.cmd(b"XRESUME ABORT %s\r\n" % token.encode())
        self.assertEqual(r[-1], "250 2.0.0 Ok")
        s4.close()
        time.sleep(0.3)
        s5 = Session(self.lab, size=len(msg))
        w = words(s5.xresume(token))
        self.assertEqual(w.get("OFFSET"), "0")
        self.assertNotEqual(w.get("TOKEN"), token)
        s5.close()

    def test_data_pipelined_behind_a_delayed_token_starts_over(self):
        # draft 5.4, 12: the old session still owns the transfer, so the
        # answer to "XRESUME token" is delayed; a client that sent its
        # data behind it meanwhile gets a fresh start, and its (whole)
        # message arrives once, never spliced onto the stored part.
        msg = make_message(3000, "pipelined")
        s = Session(self.lab, size=len(msg))
        token = self.new_entry(s)
        s.cmd(b"DATA\r\n")
        s.send(stuff(msg)[:30000])
        time.sleep(0.3)
        s2 = Session(self.lab, size=len(msg))
        s2.send(b"XRESUME %s\r\n" % token.encode())
        time.sleep(0.02)
        s2.send(b"DATA\r\n" + stuff(msg) + b".\r\n")
        r = s2.c.reply()
        w = words(r)
        self.assertEqual(w.get("OFFSET"), "0", r)
        self.assertNotEqual(w.get("TOKEN"), token, r)
        self.assertTrue(s2.c.reply()[-1].startswith("354"))
        r = s2.c.reply()
        self.assertTrue(r[-1].startswith("250 2.0.0 Ok: queued as"), r)
        s2.close()
        s.close()
        self.assert_one_copy(msg)

    def test_another_client_network_cannot_resume(self):
        # section 9.2: bound to the client's network (/24 by default);
        # 127.0.1.1 is another network than 127.0.0.1. The entry stays.
        msg = make_message(3000, "network")
        token, _ = self.broken_transfer(msg, 40000)
        other = Session(self.lab, size=len(msg), source="127.0.1.1")
        w = words(other.xresume(token))
        self.assertNotEqual(w.get("TOKEN"), token)
        self.assertEqual(w.get("OFFSET"), "0")
        other.close()
        # Another address of the same /24 may resume.
        s2 = Session(self.lab, size=len(msg), source="127.0.0.9")
        r = s2.xresume(token)
        self.assertEqual(words(r).get("TOKEN"), token, r)
        off = int(words(r)["OFFSET"])
        self.assertGreater(off, 0)
        self.finish_data(s2, msg, off)
        s2.close()
        self.assert_one_copy(msg)

    def test_cleanup_failure_keeps_the_whole_message_resumable(self):
        # section 16.5: cleanup dies before the end; the client hears 4xx,
        # resumes at the full length and sends an empty tail.
        msg = make_message(3000, "cleanup")
        s = Session(self.lab, size=len(msg))
        token = self.new_entry(s)
        s.cmd(b"DATA\r\n")
        s.send(stuff(msg))
        server = lab.server_pid(self.lab.port, s.c.local_port())
        deadline = time.monotonic() + 10
        victims = []
        while not victims and time.monotonic() < deadline:
            victims = lab.connected_to(server,
                                       self.lab.children_named("cleanup"))
            time.sleep(0.05)
        self.assertEqual(len(victims), 1, victims)
        os.kill(victims[0], signal.SIGKILL)
        time.sleep(0.5)
        s.send(b".\r\n")
        r = s.c.reply()
        self.assertTrue(r and r[-1].startswith("4"), r)
        s.cmd(b"QUIT\r\n")
        s.close()
        for p in self.lab.incomplete_files():
            os.unlink(p)
        s2, off = self.resume(token, msg, size=len(msg))
        self.assertEqual(off, len(msg))
        self.finish_data(s2, msg, off)
        s2.close()
        self.assert_one_copy(msg)

    def test_abort_takes_a_live_transfer_over_and_removes_it(self):
        # section 5.5: ABORT of a transfer that a (half-open) session
        # still owns: the owner is told 421, the entry is gone.
        msg = make_message(3000, "abort-live")
        s = Session(self.lab, size=len(msg))
        token = self.new_entry(s)
        s.cmd(b"DATA\r\n")
        s.send(stuff(msg)[:30000])
        time.sleep(0.3)
        c = lab.Conn(self.lab.host, self.lab.port)
        c.reply()
        c.send(EHLO)
        c.reply()
        c.send(b"XRESUME ABORT %s\r\n" % token.encode())
        self.assertEqual(c.reply()[-1], "250 2.0.0 Ok")
        old = s.c.wait_closed(timeout=5)
        self.assertTrue(any(r[-1].startswith("421 4.4.2") for r in old), old)
        c.close()
        self.lab.wait_log(self.mark, r"resume: token=\w+ aborted")
        s2 = Session(self.lab, size=len(msg))
        w = words(s2.xresume(token))
        self.assertNotEqual(w.get("TOKEN"), token)
        self.assertEqual(w.get("OFFSET"), "0")
        s2.close()

    def test_half_open_session_is_taken_over(self):
        # section 8: the old session is still connected (a half-open
        # link); a resume takes the transfer within about a second, the
        # old one hears 421.
        msg = make_message(8000, "takeover")
        s = Session(self.lab, size=len(msg))
        token = self.new_entry(s)
        s.cmd(b"DATA\r\n")
        s.send(stuff(msg)[:100000])
        time.sleep(0.3)
        t0 = time.monotonic()
        s2, off = self.resume(token, msg, size=len(msg))
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertGreater(off, 90000)
        old = s.c.wait_closed(timeout=5)
        self.assertTrue(any(r[-1].startswith("421 4.4.2") for r in old), old)
        self.finish_data(s2, msg, off)
        s2.close()
        self.assert_one_copy(msg)
        self.lab.wait_log(self.mark, r"resume: token=\w+ taken over")

    def test_killed_smtpd_resumes_from_its_last_checkpoint(self):
        # section 7: kill -9 in the middle; the offset is one that was
        # committed (by the 1 MiB checkpoint), the entry is intact.
        msg = make_message(60000, "kill")
        self.assertGreater(len(msg), 2 * 1048576)
        s = Session(self.lab, size=len(msg))
        token = self.new_entry(s)
        s.cmd(b"DATA\r\n")
        wire = stuff(msg)
        s.send(wire[:int(1.5 * 1048576)])
        time.sleep(1.0)
        pid = lab.server_pid(self.lab.port, s.c.local_port())
        self.assertIsNotNone(pid)
        os.kill(pid, signal.SIGKILL)
        s.c.wait_closed(timeout=5)
        s2, off = self.resume(token, msg, size=len(msg))
        self.assertGreaterEqual(off, 1048576 - 200)
        self.assertLessEqual(off, int(1.5 * 1048576))
        self.finish_data(s2, msg, off)
        s2.close()
        self.assert_one_copy(msg)

    def test_several_breaks_in_one_message(self):
        msg = make_message(30000, "many")
        wire = stuff(msg)
        s = Session(self.lab, size=len(msg))
        token = self.new_entry(s)
        s.cmd(b"DATA\r\n")
        total = 0
        step = len(wire) // 5
        pos = 0
        for k in range(4):
            # Each round sends one step of the wire form of the tail.
            s.send(stuff(msg[pos:])[:step])
            time.sleep(0.3)
            s.cut()
            total += s.sent
            self.lab.wait_log(self.mark, r"saved offset=", count=k + 1)
            s, pos = self.resume(token, msg, size=len(msg))
            s.cmd(b"DATA\r\n")
        s.send(stuff(msg[pos:]) + b".\r\n")
        r = s.c.reply()
        self.assertTrue(r[-1].startswith("250 2.0.0 Ok: queued as"), r)
        total += s.sent
        s.close()
        self.assert_one_copy(msg)
        # Each octet crossed about once: at most one partial line per
        # break, plus five sessions' commands.
        self.assertLessEqual(total, len(wire) + 4 * 200 + 5 * 300,
                             "octets sent %d for %d" % (total, len(wire)))


class Configured(Base):
    """Cases that need other main.cf settings: each sets them, reloads,
    and puts main.cf back when it ends."""

    def configure(self, **settings):
        etc = self.lab.etc
        with open(os.path.join(etc, "main.cf"), "rb") as f:
            saved = f.read()

        def restore():
            with open(os.path.join(etc, "main.cf"), "wb") as f:
                f.write(saved)
            self.reload()
        self.addCleanup(restore)
        for k, v in settings.items():
            subprocess.run(["postconf", "-c", etc, "-e", "%s=%s" % (k, v)],
                           check=True)
        self.reload()

    def reload(self):
        self.lab.postfix("reload")
        # Wait until a new process (with the new settings) answers.
        time.sleep(1.0)
        lab.require_serving(self.lab)

    def test_full_spool_gives_452_and_mail_still_goes(self):
        # section 11.5: a temporary "not now", and plain DATA works.
        self.configure(smtpd_resume_spool_size_limit=100000)
        msg = make_message(3000, "full")
        self.assertGreater(len(msg), 100000)
        s = Session(self.lab, size=len(msg))
        r = s.xresume("NEW")
        self.assertEqual(r[-1], "452 4.3.1 Resume not available now, "
                                "send without resume")
        self.finish_data(s, msg, 0)
        s.close()
        self.assert_one_copy(msg)
        self.lab.wait_log(self.mark, r"resume: unavailable: spool full")

    def test_client_quota_then_expiry_frees_it(self):
        # section 11: one unfinished transfer per client; when its TTL
        # has passed the server removes it and the next one is taken.
        self.configure(smtpd_resume_client_limit=1, smtpd_resume_ttl="3s")
        msg = make_message(3000, "quota")
        token, _ = self.broken_transfer(msg, 30000)
        listing = self.resumedb("-l")
        self.assertEqual(listing.count(" partial "), 1, listing)

        s2 = Session(self.lab, size=len(msg))
        r = s2.xresume("NEW")
        self.assertTrue(r[-1].startswith("452 4.3.1"), r)
        self.finish_data(s2, msg, 0)
        s2.close()
        self.assert_one_copy(msg)
        self.lab.wait_log(self.mark, r"resume: unavailable: client limit")

        # After the TTL the old entry goes, and so does the quota.
        time.sleep(4)
        s3 = Session(self.lab, size=len(msg))
        w = words(s3.xresume("NEW"))
        self.assertEqual(w.get("OFFSET"), "0")
        s3.close()
        s4 = Session(self.lab, size=len(msg))
        w = words(s4.xresume(token))
        self.assertNotEqual(w.get("TOKEN"), token, "expired, so fresh")
        s4.close()
        self.assertNotIn(token[:12], self.resumedb("-l"))

    def test_a_chrooted_service_resumes(self):
        # master.cf chroot=y (Debian's default for smtp): the spool is
        # reached relative to the queue directory inside the jail.
        etc = self.lab.etc
        with open(os.path.join(etc, "master.cf"), "rb") as f:
            saved = f.read()

        def restore():
            with open(os.path.join(etc, "master.cf"), "wb") as f:
                f.write(saved)
            self.reload()
        self.addCleanup(restore)
        subprocess.run(["postconf", "-c", etc, "-F", "%s:%d/inet/chroot = y"
                        % (self.lab.host, self.lab.port)], check=True)
        self.reload()
        msg = make_message(5000, "chroot")
        token, _ = self.broken_transfer(msg, 60000)
        s2, off = self.resume(token, msg, size=len(msg))
        self.assertGreater(off, 0)
        self.finish_data(s2, msg, off)
        s2.close()
        self.assert_one_copy(msg)
        self.assertFalse([l for l in self.lab.log_since(self.mark)
                          if "resume spool" in l and "warning" in l])

    def test_clients_outside_smtpd_resume_clients_are_not_offered_it(self):
        # section 4.5: smtpd_resume_clients decides who is offered it.
        self.configure(smtpd_resume_clients="127.0.1.0/24")
        s = Session(self.lab)
        self.assertFalse([l for l in s.ehlo if "XRESUME" in l], s.ehlo)
        r = s.xresume("NEW")
        self.assertTrue(r[-1].startswith("502 5.5.1"), r)
        s.close()
        s2 = Session(self.lab, source="127.0.1.5")
        self.assertTrue([l for l in s2.ehlo if "XRESUME" in l], s2.ehlo)
        s2.close()

    def test_refused_message_gets_its_verdict_again(self):
        # section 16.5: a content refusal is remembered; a resume of the
        # same transfer hears it and uploads nothing.
        checks = os.path.join(self.lab.etc, "xresume_header_checks")
        with open(checks, "w") as f:
            f.write("/^Subject: .*refuse-me/ REJECT not this one\n")
        self.addCleanup(os.unlink, checks)
        self.configure(header_checks="regexp:" + checks)
        msg = make_message(300, "refuse-me")
        s = Session(self.lab, size=len(msg))
        token = self.new_entry(s)
        s.cmd(b"DATA\r\n")
        s.send(stuff(msg) + b".\r\n")
        r = s.c.reply()
        self.assertTrue(r[-1].startswith("550 5.7.1"), r)
        s.close()
        s2 = Session(self.lab, size=len(msg))
        r2 = s2.xresume(token)
        self.assertEqual(r2, r)
        r3 = s2.cmd(b"DATA\r\n")
        self.assertTrue(r3[-1].startswith("503"), r3)
        s2.close()
        self.lab.wait_queue_empty()
        self.assertEqual(self.lab.maildir("b"), [])
        self.assertIn(" refused ", self.resumedb("-l"))


if __name__ == "__main__":
    lab.run_main()
