#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    test_smuggling - SMTP smuggling sequences against Postfix's smtpd and ours

DESCRIPTION
    For each smtpd_forbid_bare_newline mode (no, normalize, yes, reject) and
    each sequence that some server might take for the end of DATA
    (<LF>.<LF>, <LF>.<CR><LF>, <CR><LF>.<LF>, <CR>.<CR>, <CR><LF>.<CR>),
    one client sends the same raw bytes to Postfix's smtpd (the lab's
    REF_PORT) and to the server under test (PORT): a first message, the
    sequence, then a complete second transaction ("MAIL FROM", "RCPT TO"
    to another user, "DATA", a second message, CR LF . CR LF), then QUIT.
    Recorded per run: the reply codes, how many messages were delivered,
    whether a smuggled second message exists and what the first one holds.

    Postfix 3.7.11 is checked against what we document in smtpd/data.h
    (POSTFIX_3_7_11 below, as observed). The server under test must never
    deliver a smuggled message, and its replies and deliveries must match
    Postfix's except where Postfix itself was smuggled: there we read the
    whole thing as one message and answer once (250, 221), with the body
    Postfix's normalize mode gives (the lone dot line dropped). Bodies of
    the first message are compared too.

    The test sets smtpd_forbid_bare_newline and an empty
    smtpd_forbid_bare_newline_exclusions (its default $mynetworks would
    exempt the loopback client) in the lab's main.cf, reloads, and puts
    the old values back at the end.

ENVIRONMENT
    RS_LAB_DIR, RS_BIN, RS_BUILD_DIR as for every integration test. The
    server-under-test half is skipped unless the lab is swapped (PORT
    runs our binary).

SEE ALSO
    lab.py, smtpd/data.h, postconf(5) smtpd_forbid_bare_newline
"""

import os
import re
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

EHLO = b"client.lab.example"
MODES = ("no", "normalize", "yes", "reject")
SEQUENCES = (
    ("LF.LF", b"\n.\n"),
    ("LF.CRLF", b"\n.\r\n"),
    ("CRLF.LF", b"\r\n.\n"),
    ("CR.CR", b"\r.\r"),
    ("CRLF.CR", b"\r\n.\r"),
)

# What Postfix 3.7.11's smtpd does, observed in the lab: (reply codes
# after DATA's 354, messages delivered, smuggled message delivered).
SMUGGLED = (["250", "250", "250", "354", "250", "221"], 2, True)
ONE = (["250", "221"], 1, False)
BARE_LF_REJECTED = (["550", "221"], 0, False)
POSTFIX_3_7_11 = {
    ("no", "LF.LF"): SMUGGLED,
    ("no", "LF.CRLF"): SMUGGLED,
    ("no", "CRLF.LF"): SMUGGLED,
    ("no", "CR.CR"): ONE,
    ("no", "CRLF.CR"): ONE,
    ("normalize", "LF.LF"): ONE,
    ("normalize", "LF.CRLF"): ONE,
    ("normalize", "CRLF.LF"): ONE,
    ("normalize", "CR.CR"): ONE,
    ("normalize", "CRLF.CR"): ONE,
    # 3.7.11's "yes" is an alias of normalize (not of reject).
    ("yes", "LF.LF"): ONE,
    ("yes", "LF.CRLF"): ONE,
    ("yes", "CRLF.LF"): ONE,
    ("yes", "CR.CR"): ONE,
    ("yes", "CRLF.CR"): ONE,
    ("reject", "LF.LF"): BARE_LF_REJECTED,
    ("reject", "LF.CRLF"): BARE_LF_REJECTED,
    ("reject", "CRLF.LF"): BARE_LF_REJECTED,
    ("reject", "CR.CR"): ONE,
    ("reject", "CRLF.CR"): ONE,
}

PARAMS = ("smtpd_forbid_bare_newline", "smtpd_forbid_bare_newline_exclusions")


class Run:
    """What one server did with one sequence."""

    def __init__(self, codes, messages, smuggled, first_holds_second, body):
        self.codes = codes
        self.body = body  # of the first message, the token as TOKEN
        self.messages = messages
        self.smuggled = smuggled
        self.first_holds_second = first_holds_second

    def outcome(self):
        return (self.codes, self.messages, self.smuggled)

    def __repr__(self):
        return ("codes=%s messages=%d smuggled=%s first_holds_second=%s"
                % (",".join(self.codes), self.messages, self.smuggled,
                   self.first_holds_second))


class Smuggling(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lab = lab.from_env()
        cls.saved = {}
        for p in PARAMS:
            r = subprocess.run(["postconf", "-c", cls.lab.etc, "-n", p],
                               capture_output=True, text=True)
            cls.saved[p] = r.stdout.strip() or None
        # One pass over every mode, both servers, for both test methods.
        cls.results = {}
        try:
            for mode in MODES:
                cls.set_mode(mode)
                for name, seq in SEQUENCES:
                    for side, port in (("postfix", cls.lab.ref_port),
                                       ("ours", cls.lab.port)):
                        cls.results[(side, mode, name)] = cls.run_one(
                            port, seq)
        finally:
            cls.restore()
        for key in sorted(cls.results):
            print("%-8s %-9s %-8s %r" % (key + (cls.results[key],)))

    @classmethod
    def set_mode(cls, mode):
        subprocess.run(["postconf", "-c", cls.lab.etc, "-e",
                        "smtpd_forbid_bare_newline = " + mode,
                        "smtpd_forbid_bare_newline_exclusions ="],
                       check=True)
        cls.reload()

    @classmethod
    def restore(cls):
        for p, line in cls.saved.items():
            if line is None:
                subprocess.run(["postconf", "-c", cls.lab.etc, "-X", p],
                               check=True)
            else:
                subprocess.run(["postconf", "-c", cls.lab.etc, "-e", line],
                               check=True)
        cls.reload()

    @classmethod
    def reload(cls):
        # Idle smtpd processes keep the old settings until they notice the
        # reload and exit; give them a moment.
        cls.lab.postfix("reload")
        time.sleep(2.0)

    @classmethod
    def run_one(cls, port, seq):
        """Send the smuggling dialogue to port; what came of it."""
        token = uuid.uuid4().hex[:12]
        dom = cls.lab.domain.encode()
        # The sequence itself ends the line "first part".
        first = b"Subject: %s first\r\n\r\nfirst part" % token.encode()
        second = (b"MAIL FROM:<a@%s>\r\nRCPT TO:<c@%s>\r\nDATA\r\n"
                  b"Subject: %s smuggled\r\n\r\nsmuggled part\r\n.\r\n"
                  % (dom, dom, token.encode()))

        c = lab.Conn(cls.lab.host, port)
        try:
            c.reply()
            c.send(b"EHLO " + EHLO + b"\r\n")
            c.reply()
            for cmd in (b"MAIL FROM:<a@%s>" % dom, b"RCPT TO:<b@%s>" % dom,
                        b"DATA"):
                c.send(cmd + b"\r\n")
                c.reply()
            c.send(first + seq + second)
            c.send(b"QUIT\r\n")
            replies = c.wait_closed(timeout=lab.REPLY_TIMEOUT)
        finally:
            c.close()
        codes = [r[-1][:3] for r in replies if r]

        # Whatever was accepted is delivered to b (and c if smuggled).
        cls.lab.wait_queue_empty()
        found = []
        for user in ("b", "c"):
            for _, data in cls.lab.maildir(user):
                if token.encode() in data:
                    found.append(data)
        # A smuggled message is one with its own header "Subject: ...
        # smuggled"; the same line in the body of the first is harmless.
        heads = [d.split(b"\n\n", 1)[0] for d in found]
        smuggled = any(re.search(rb"(?m)^Subject: %s smuggled$"
                                 % token.encode(), h) for h in heads)
        holds = any(re.search(rb"(?m)^Subject: %s first$" % token.encode(), h)
                    and b"smuggled part" in d for h, d in zip(heads, found))
        body = b""
        for h, d in zip(heads, found):
            if re.search(rb"(?m)^Subject: %s first$" % token.encode(), h):
                body = d.split(b"\n\n", 1)[-1].replace(token.encode(),
                                                        b"TOKEN")
        return Run(codes, len(found), smuggled, holds, body)

    def test_postfix_behaves_as_documented(self):
        for (mode, name), want in sorted(POSTFIX_3_7_11.items()):
            got = self.results[("postfix", mode, name)]
            with self.subTest(mode=mode, sequence=name):
                self.assertEqual(got.outcome(), want,
                                 "Postfix, %s %s: got %r" % (mode, name, got))

    def test_ours_never_queues_a_smuggled_message(self):
        if not self.lab.swapped:
            self.skipTest("PORT runs Postfix's smtpd (scripts/lab swap)")
        for mode in MODES:
            for name, _ in SEQUENCES:
                ours = self.results[("ours", mode, name)]
                ref = self.results[("postfix", mode, name)]
                with self.subTest(mode=mode, sequence=name):
                    self.assertFalse(ours.smuggled, "ours: %r" % ours)
                    if ref.smuggled:
                        # The documented difference: one message that
                        # holds the would-be second one, one reply.
                        self.assertEqual(ours.outcome(), ONE,
                                         "ours: %r" % ours)
                        self.assertTrue(ours.first_holds_second)
                        # Postfix's normalize mode also ends only at CR LF
                        # . CR LF and drops the lone dot: the same body.
                        norm = self.results[("postfix", "normalize", name)]
                        self.assertEqual(ours.body, norm.body)
                    else:
                        self.assertEqual(ours.outcome(), ref.outcome(),
                                         "ours: %r, Postfix: %r"
                                         % (ours, ref))
                        self.assertEqual(ours.body, ref.body)


if __name__ == "__main__":
    lab.run_main()
