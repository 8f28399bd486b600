# SPDX-License-Identifier: MIT
"""NAME
    test_session - quick side-by-side checks of the smtpd session

DESCRIPTION
    Each test plays one dialogue, byte for byte, first against Postfix's
    own smtpd (the lab's REF_PORT), then against the port under test, and
    compares the normalized replies and the normalized smtpd log lines of
    the two sessions (connect, client=, reject, improper pipelining,
    lost connection, disconnect ... commands=). The larger comparison
    suite is test_compare.py; these are the session author's own checks.

ENVIRONMENT
    RS_LAB_DIR (required), RS_TARGET_PORT (see lab.py).
"""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as labmod  # noqa: E402

# How long a server may stay silent before we take its answer as whole.
QUIET = 0.3


def play(lab, port, steps, early=False, quiet=QUIET):
    """Send each step, collecting replies; the normalized transcript."""
    conn = labmod.Conn(lab.host, port)
    out = []

    def drain():
        while True:
            r = conn.reply(timeout=quiet)
            if not r:
                return
            out.extend(r)

    if not early:
        out.extend(conn.reply())
    for step in steps:
        if conn.closed:
            break
        conn.send(step)
        drain()
    if conn.closed:
        out.append("<closed>")
    conn.close()
    return out


def smtpd_lines(lab, mark, norm):
    """The smtpd lines logged since mark, normalized, pid and time gone."""
    lines = lab.wait_log_quiet(mark, quiet=0.5)
    got = []
    for line in lines:
        tag, text = norm.log(line)
        if labmod.smtpd_tag(tag):
            got.append(text)
    return got


class SessionCompare(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = labmod.from_env()
        if cls.lab.port == cls.lab.ref_port:
            raise unittest.SkipTest("nothing to compare: one port")

    def compare(self, steps, early=False, quiet=QUIET, drop=None):
        """Run steps on both servers; fail on any difference."""
        results = []
        for port in (self.lab.ref_port, self.lab.port):
            norm = labmod.Normalizer(self.lab.myhostname)
            mark = self.lab.log_mark()
            replies = [norm.reply(r) for r in play(self.lab, port, steps,
                                                  early, quiet)]
            # Our EHLO also offers XRESUME (docs/draft-xresume.txt);
            # Postfix has no such keyword.
            replies = [r for r in replies
                       if not re.match(r"^250-XRESUME( |$)", r)]
            logs = smtpd_lines(self.lab, mark, norm)
            if drop:
                logs = [l for l in logs if drop not in l]
            results.append((replies, logs))
        (ref_r, ref_l), (got_r, got_l) = results
        self.assertEqual(got_r, ref_r, "replies differ (got, want)")
        self.assertEqual(got_l, ref_l, "smtpd log lines differ (got, want)")

    def test_message_is_queued_with_postfix_replies_and_lines(self):
        d = self.lab.domain
        self.compare([b"EHLO client.lab.example\r\n",
                      b"MAIL FROM:<a@%s>\r\n" % d.encode(),
                      b"RCPT TO:<null@%s>\r\n" % d.encode(),
                      b"DATA\r\n",
                      b"Subject: t\r\n\r\nbody\r\n..dot\r\n.\r\n",
                      b"QUIT\r\n"])

    def test_relay_attempt_is_rejected_and_logged(self):
        d = self.lab.domain.encode()
        self.compare([b"EHLO client.lab.example\r\n",
                      b"MAIL FROM:<a@%s>\r\n" % d,
                      b"RCPT TO:<x@example.com>\r\n",
                      b"RCPT TO:<null@%s>\r\n" % d,
                      b"RCPT TO:<y@example.com>\r\n",
                      b"RSET\r\n", b"QUIT\r\n"])

    def test_sequence_errors_get_postfix_replies(self):
        d = self.lab.domain.encode()
        self.compare([b"HELO\r\n", b"EHLO\r\n", b"RCPT TO:<a@%s>\r\n" % d,
                      b"DATA\r\n", b"HELP\r\n", b"FOO bar\r\n", b"\r\n",
                      b"MAIL FROM:<a@%s>\r\n" % d,
                      b"MAIL FROM:<a@%s>\r\n" % d,
                      b"ETRN x\r\n", b"RSET x\r\n", b"VRFY\r\n",
                      b"VRFY someone\r\n", b"NOOP\r\n", b"QUIT\r\n"],
                     quiet=1.5)

    def test_mail_parameters_are_checked(self):
        d = self.lab.domain.encode()
        self.compare([b"EHLO client.lab.example\r\n",
                      b"MAIL FROM:<a@%s> SIZE=abc\r\n" % d,
                      b"MAIL FROM:<a@%s> SIZE=999999999999\r\n" % d,
                      # Postfix keeps a refused SIZE until RSET and then
                      # refuses MAIL without SIZE too; we do not copy that.
                      b"RSET\r\n",
                      b"MAIL FROM:<a@%s> RET=X\r\n" % d,
                      b"MAIL FROM:<a@%s> FOO=bar\r\n" % d,
                      b"MAIL FROM:<a@%s> BODY=8BITMIME RET=HDRS\r\n" % d,
                      b"RCPT TO:<null@%s> NOTIFY=BAD\r\n" % d,
                      b"RCPT TO:<null@%s> ORCPT=xx\r\n" % d,
                      b"RCPT TO:<null@%s> NOTIFY=SUCCESS\r\n" % d,
                      b"QUIT\r\n"])

    def test_pipelining_after_ehlo_is_logged_once(self):
        d = self.lab.domain.encode()
        self.compare([b"EHLO client.lab.example\r\nMAIL FROM:<a@%s>\r\n" % d,
                      b"RCPT TO:<null@%s>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n" % d])

    def test_talking_before_the_greeting_is_logged(self):
        # Whether the bytes beat the greeting is a race for Postfix too:
        # compare the rest, the line itself is checked by hand.
        self.compare([b"EHLO early\r\n", b"QUIT\r\n"], early=True,
                     drop="improper command pipelining after CONNECT")

    def test_bdat_chunks_and_bdat_errors(self):
        d = self.lab.domain.encode()
        self.compare([b"EHLO client.lab.example\r\n",
                      b"BDAT 3\r\nabc",
                      b"MAIL FROM:<a@%s>\r\n" % d,
                      b"BDAT 2 LAST\r\nde",
                      b"MAIL FROM:<a@%s>\r\n" % d,
                      b"RCPT TO:<null@%s>\r\n" % d,
                      b"BDAT 3\r\nabc",
                      b"RCPT TO:<null@%s>\r\n" % d,
                      b"DATA\r\n",
                      b"BDAT 5 LAST\r\nde\r\nf",
                      b"MAIL FROM:<a@%s>\r\n" % d,
                      b"RCPT TO:<null@%s>\r\n" % d,
                      b"BDAT 0 LAST\r\n",
                      b"BDAT x\r\n"])

    def test_auth_xclient_xforward_are_refused_and_counted(self):
        self.compare([b"EHLO client.lab.example\r\n", b"AUTH PLAIN\r\n",
                      b"XCLIENT NAME=x\r\n", b"XFORWARD NAME=x\r\n",
                      b"EXPN a\r\n", b"QUIT\r\n"])

    def test_lost_connection_after_the_message_is_not_logged(self):
        d = self.lab.domain.encode()
        self.compare([b"EHLO client.lab.example\r\n",
                      b"MAIL FROM:<a@%s>\r\n" % d,
                      b"RCPT TO:<null@%s>\r\n" % d,
                      b"DATA\r\n", b"x\r\n.\r\n"])

    def test_odd_command_lines_agree_with_postfix(self):
        # Leading white space, a NUL (Postfix reads a command as a C
        # string), a verb that is not a word, a header sent as a command.
        for line in (b" NOOP\r\n", b"\0\r\n", b"NOOP\0X\r\n",
                     b"RCPT\0TO:<b@lab.example>\r\n",
                     b"MAIL FROM:<a@lab.example>\0\r\n",
                     b"1NOOP\r\n", b"Subject: x\r\n"):
            with self.subTest(line=line):
                self.compare([b"EHLO client.lab.example\r\n", line,
                              b"QUIT\r\n"])

    def test_http_request_is_refused(self):
        self.compare([b"GET / HTTP/1.0\r\n"])

    def test_long_command_line_is_cut(self):
        self.compare([b"EHLO client.lab.example\r\n",
                      b"NOOP " + b"a" * 3000 + b"\r\n",
                      b"NOOP\r\n", b"QUIT\r\n"])

    def test_lost_connection_in_data_is_logged_with_size(self):
        d = self.lab.domain.encode()
        self.compare([b"EHLO client.lab.example\r\n",
                      b"MAIL FROM:<a@%s>\r\n" % d,
                      b"RCPT TO:<null@%s>\r\n" % d,
                      b"DATA\r\n", b"partial line\r\nmore\r\n"])

    def test_lost_connection_after_rcpt_is_logged(self):
        d = self.lab.domain.encode()
        self.compare([b"HELO client.lab.example\r\n",
                      b"MAIL FROM:<a@%s>\r\n" % d,
                      b"RCPT TO:<x@example.com>\r\n"])


if __name__ == "__main__":
    labmod.run_main()
