#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    test_delivery - messages through the server under test reach the
    Maildir exactly as sent

DESCRIPTION
    Sends with swaks, smtplib (DATA and BDAT, with and without STARTTLS),
    raw pipelined commands and smtp-source to the lab's PORT, then reads
    the delivered Maildir file. It must be the message as sent (CRLF
    turned into LF by local(8), dot-stuffing undone) with exactly the
    headers Postfix adds in front: Return-Path, X-Original-To and
    Delivered-To from local(8), and the Received: header from smtpd.
    Also: a 5000-byte line, dot-leading lines, 8-bit and SMTPUTF8
    content, DSN parameters (a success notice with ENVID and ORCPT), and
    exactly one "client=" log line per queue id.

SEE ALSO
    lab.py, test_compare.py
"""

import os
import re
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

EHLO = "client.lab.example"
DATE_RX = rb"[A-Z][a-z]{2}, [ \d]\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(\w+\)"


def message(subject, body, extra=b""):
    """A complete message with every header cleanup would otherwise add
    (Date, From, Message-ID), so the delivered copy is only ours."""
    if isinstance(body, str):
        body = body.encode()
    head = (b"From: <a@lab.example>\r\n"
            b"To: <b@lab.example>\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Date: Thu, 03 Dec 2026 20:00:00 +0000\r\n"
            b"Message-ID: <" + subject.replace(" ", "-").encode()
            + b"@client.lab.example>\r\n" + extra)
    return head + b"\r\n" + body


def as_delivered(sent):
    """What local(8) writes for sent (logical content, CRLF lines)."""
    return sent.replace(b"\r\n", b"\n")


class Delivery(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lab = lab.from_env()
        lab.require_serving(cls.lab)
        cls.host = cls.lab.myhostname.encode()

    def setUp(self):
        self.lab.wait_queue_empty()
        for u in ("a", "b", "c"):
            self.lab.clear_maildir(u)
        self.mark = self.lab.log_mark()

    # ---- checks --------------------------------------------------------

    def assert_delivered(self, got, sent, rcpt, qid=None, proto=b"ESMTP",
                         sender=b"a@lab.example", helo=EHLO.encode()):
        """got is exactly Postfix's headers + the Received header + sent."""
        rcpt = rcpt.encode() if isinstance(rcpt, str) else rcpt
        qid_rx = re.escape(qid.encode()) if qid else rb"[0-9A-Za-z]+"
        head = (rb"Return-Path: <" + re.escape(sender) + rb">\n"
                rb"X-Original-To: " + re.escape(rcpt) + rb"\n"
                rb"Delivered-To: " + re.escape(rcpt) + rb"\n"
                rb"Received: from " + re.escape(helo)
                + rb" \(localhost \[127\.0\.0\.1\]\)\n"
                rb"\tby " + re.escape(self.host) + rb" \(Postfix\) with "
                + re.escape(proto) + rb" id (" + qid_rx + rb")\n"
                rb"\tfor <" + re.escape(rcpt) + rb">; " + DATE_RX + rb"\n")
        m = re.match(head, got)
        self.assertIsNotNone(
            m, "delivered headers differ:\ngot:  %r\nwant: %r"
            % (got[:600], head))
        rest = got[m.end():]
        want = as_delivered(sent)
        if rest != want:
            # Point at the first differing byte, not at two long blobs.
            i = next((k for k in range(min(len(rest), len(want)))
                      if rest[k] != want[k]), min(len(rest), len(want)))
            self.fail("body differs at byte %d (got %d bytes, want %d):\n"
                      "got:  %r\nwant: %r" % (i, len(rest), len(want),
                                              rest[max(0, i - 40):i + 40],
                                              want[max(0, i - 40):i + 40]))
        return m.group(1).decode()

    def qid_of(self, reply_text):
        m = re.search(r"queued as (\S+)", reply_text)
        self.assertIsNotNone(m, "no queue id in %r" % reply_text)
        return m.group(1)

    def assert_one_client_line(self, qids):
        """Exactly one "QID: client=" line per queue id (STYLE.md)."""
        lines = self.lab.wait_log_quiet(self.mark)
        for q in qids:
            n = sum(1 for l in lines if re.search(
                r"/smtpd\[\d+\]: %s: client=" % re.escape(q), l))
            self.assertEqual(n, 1, "client= lines for %s: got %d, want 1\n%s"
                             % (q, n, "\n".join(lines)))

    def deliver_one(self, sent, user="b", **kw):
        """smtplib send + wait for the Maildir; (delivered bytes, qid)."""
        code, text = self.lab.send(sent, self.lab.addr(user), **kw)
        self.assertEqual(code, 250, text)
        qid = self.qid_of(text)
        msgs = self.lab.wait_maildir(user, 1)
        self.assertEqual(len(msgs), 1, "messages delivered to %s" % user)
        return msgs[0][1], qid

    # ---- smtplib -------------------------------------------------------

    def test_data_message_is_delivered_byte_for_byte(self):
        sent = message("plain data", "line one\r\nline two\r\n\r\nlast\r\n")
        got, qid = self.deliver_one(sent)
        self.assert_delivered(got, sent, "b@lab.example", qid)
        self.assert_one_client_line([qid])

    def test_bdat_message_is_delivered_byte_for_byte(self):
        sent = message("bdat", "chunked\r\nbody\r\n.\r\n..dots stay\r\n")
        got, qid = self.deliver_one(sent, bdat=True, chunks=[10, 1, 50])
        # BDAT content is not dot-stuffed: the dot lines arrive as sent.
        self.assert_delivered(got, sent, "b@lab.example", qid)
        self.assert_one_client_line([qid])

    def test_data_over_starttls_is_delivered_with_esmtps(self):
        if not self.lab.tls:
            self.skipTest("lab without LAB_TLS=1")
        sent = message("tls data", "secret\r\n")
        got, qid = self.deliver_one(sent, starttls=True)
        self.assert_delivered(got, sent, "b@lab.example", qid, b"ESMTPS")

    def test_bdat_over_starttls_is_delivered_with_esmtps(self):
        if not self.lab.tls:
            self.skipTest("lab without LAB_TLS=1")
        sent = message("tls bdat", "x" * 70 + "\r\n" + "y" * 3000 + "\r\n")
        got, qid = self.deliver_one(sent, starttls=True, bdat=True,
                                    chunks=[1000, 1000])
        self.assert_delivered(got, sent, "b@lab.example", qid, b"ESMTPS")

    def test_5000_byte_line_is_delivered_whole(self):
        sent = message("long line", "z" * 5000 + "\r\nshort\r\n")
        got, qid = self.deliver_one(sent)
        self.assert_delivered(got, sent, "b@lab.example", qid)

    def test_8bit_body_is_delivered_unchanged(self):
        body = "K\u00e4se, na\u00efve, \u20ac 5\r\n".encode("utf-8") \
            + b"latin1 \xe4\xf6\xfc\r\n"
        sent = message("eight bit", body,
                       b"MIME-Version: 1.0\r\n"
                       b"Content-Type: text/plain; charset=utf-8\r\n"
                       b"Content-Transfer-Encoding: 8bit\r\n")
        got, qid = self.deliver_one(sent, mail_options=["BODY=8BITMIME"])
        self.assert_delivered(got, sent, "b@lab.example", qid)

    def test_smtputf8_sender_and_header_are_delivered(self):
        sender = "j\u00fcrgen@lab.example"
        sent = message("utf8", "Gr\u00fc\u00dfe\r\n".encode(),
                       "X-Name: J\u00fcrgen \u00c4\r\n".encode())
        code, text = self.lab.send(sent, "b@lab.example", sender=sender,
                                   mail_options=["SMTPUTF8",
                                                 "BODY=8BITMIME"])
        self.assertEqual(code, 250, text)
        got = self.lab.wait_maildir("b", 1)[0][1]
        self.assert_delivered(got, sent, "b@lab.example", self.qid_of(text),
                              b"UTF8SMTP", sender=sender.encode())

    def test_two_recipients_each_get_the_message(self):
        sent = message("two rcpts", "for both\r\n")
        code, text = self.lab.send(sent, ["b@lab.example", "c@lab.example"])
        self.assertEqual(code, 250, text)
        for u in ("b", "c"):
            got = self.lab.wait_maildir(u, 1)[0][1]
            # With two recipients the Received header has no "for" part.
            m = re.match(rb"(?s).*?\tby [^\n]* id (\S+);\n\t" + DATE_RX
                         + rb"\n", got)
            self.assertIsNotNone(m, "multi-recipient Received: %r" % got[:500])
            self.assertEqual(got[m.end():], as_delivered(sent))

    # ---- raw dialogues -------------------------------------------------

    def raw_session(self, chunks_and_counts):
        """Send each chunk, read its number of replies; all replies."""
        c = lab.Conn(self.lab.host, self.lab.port)
        try:
            replies = [c.reply()]
            self.assertTrue(replies[0] and replies[0][-1].startswith("220"),
                            "banner: %r" % replies[0])
            for data, n in chunks_and_counts:
                c.send(data)
                for _ in range(n):
                    replies.append(c.reply())
            return replies
        finally:
            c.close()

    def test_dot_leading_lines_are_unstuffed(self):
        body = (b"..one dot\r\n"
                b"...two dots\r\n"
                b"..\r\n"
                b". space\r\n")
        sent_wire = message("dots", body)
        want = message("dots", b".one dot\r\n..two dots\r\n.\r\n space\r\n")
        replies = self.raw_session([
            (b"EHLO " + EHLO.encode() + b"\r\n", 1),
            (b"MAIL FROM:<a@lab.example>\r\n", 1),
            (b"RCPT TO:<b@lab.example>\r\n", 1),
            (b"DATA\r\n", 1),
            (sent_wire + b".\r\n", 1),
            (b"QUIT\r\n", 1),
        ])
        self.assertTrue(replies[-2][0].startswith("250 "), replies)
        got = self.lab.wait_maildir("b", 1)[0][1]
        # ". space" is not dot-stuffed on the wire: a leading dot is
        # removed whatever follows it (RFC 5321 4.5.2).
        self.assert_delivered(got, want, "b@lab.example",
                              self.qid_of(replies[-2][0]))

    def test_pipelined_transactions_are_all_delivered(self):
        m1 = message("pipe one", "first\r\n")
        m2 = message("pipe two", "second\r\n")
        replies = self.raw_session([
            (b"EHLO " + EHLO.encode() + b"\r\n", 1),
            # One write: envelope and DATA of the first message.
            (b"MAIL FROM:<a@lab.example>\r\n"
             b"RCPT TO:<b@lab.example>\r\n"
             b"RCPT TO:<c@lab.example>\r\n"
             b"DATA\r\n", 4),
            # One write: end of data, a whole BDAT transaction, QUIT.
            (m1 + b".\r\n"
             b"MAIL FROM:<a@lab.example>\r\n"
             b"RCPT TO:<b@lab.example>\r\n"
             + b"BDAT %d LAST\r\n" % len(m2) + m2
             + b"QUIT\r\n", 5),
        ])
        codes = [r[-1][:3] if r else "EOF" for r in replies]
        self.assertEqual(codes, ["220", "250", "250", "250", "250", "354",
                                 "250", "250", "250", "250", "221"])
        b = self.lab.wait_maildir("b", 2)
        c = self.lab.wait_maildir("c", 1)
        self.assertEqual(len(c), 1)
        self.assertTrue(c[0][1].endswith(b"\n\nfirst\n"), c[0][1])
        ends = sorted(m[1][-8:] for m in b)
        self.assertEqual(ends, [b"\n\nfirst\n", b"\nsecond\n"])

    # ---- real clients --------------------------------------------------

    def test_swaks_message_is_delivered_byte_for_byte(self):
        sent = message("swaks", "sent by swaks\r\nsecond line\r\n")
        with tempfile.NamedTemporaryFile("wb", suffix=".eml") as f:
            # swaks turns LF into CRLF itself and ends the data with its
            # own CRLF before the dot: give it LF lines, the last one open.
            f.write(sent.replace(b"\r\n", b"\n")[:-1])
            f.flush()
            r = self.lab.swaks("--ehlo", EHLO, "--from", "a@lab.example",
                               "--to", "b@lab.example", "--data", "@" + f.name)
        m = re.search(r"queued as (\S+)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        got = self.lab.wait_maildir("b", 1)[0][1]
        self.assert_delivered(got, sent, "b@lab.example", m.group(1))

    def test_swaks_starttls_message_is_delivered(self):
        if not self.lab.tls:
            self.skipTest("lab without LAB_TLS=1")
        r = self.lab.swaks("--ehlo", EHLO, "--from", "a@lab.example",
                           "--to", "b@lab.example", "-tls")
        self.assertIn("TLS started", r.stdout)
        self.assertRegex(r.stdout, r"250 2\.0\.0 Ok: queued as")
        got = self.lab.wait_maildir("b", 1)[0][1]
        self.assertIn(b" with ESMTPS id ", got)

    def test_smtp_source_messages_are_all_delivered(self):
        # 20 messages over 4 parallel sessions, then 10 over one reused
        # connection (-d): every one must arrive.
        self.lab.smtp_source("-s", "4", "-m", "20", "-l", "2048",
                             "-f", "a@lab.example", "-t", "b@lab.example")
        self.lab.smtp_source("-d", "-s", "1", "-m", "10", "-l", "512",
                             "-f", "a@lab.example", "-t", "c@lab.example")
        b = self.lab.wait_maildir("b", 20)
        c = self.lab.wait_maildir("c", 10)
        self.assertEqual((len(b), len(c)), (20, 10))
        for _, data in b + c:
            self.assertRegex(data, rb"\tby " + re.escape(self.host)
                             + rb" \(Postfix\) with E?SMTP id ")

    # ---- DSN -----------------------------------------------------------

    def test_dsn_parameters_reach_the_queue(self):
        # NOTIFY=SUCCESS makes local(8) send a success notice to the
        # sender; ENVID, ORCPT and RET can only show up in it if smtpd
        # passed them on to cleanup.
        sent = message("dsn", "please confirm\r\n")
        code, text = self.lab.send(
            sent, "b@lab.example",
            mail_options=["RET=HDRS", "ENVID=lab-envid-42"],
            rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;b@lab.example"])
        self.assertEqual(code, 250, text)
        self.lab.wait_maildir("b", 1)
        notice = self.lab.wait_maildir("a", 1)[0][1]
        for want in (rb"Original-Envelope-Id: lab-envid-42",
                     rb"Original-Recipient: rfc822;\s*b@lab.example",
                     # local(8) reports an alias as expanded.
                     rb"Action: (delivered|expanded)",
                     rb"Content-Type: text/rfc822-headers"):
            self.assertRegex(notice, want)
        # RET=HDRS: the notice carries the headers but not the body.
        self.assertNotIn(b"please confirm", notice)

    def test_dsn_parameters_are_in_the_held_queue_file(self):
        # The lab's header_checks hold a message marked X-Lab-Hold: yes;
        # its queue file then shows the DSN records cleanup received.
        if "header_checks" not in self.lab.postconf("header_checks"):
            self.skipTest("lab without the X-Lab-Hold header check")
        sent = message("held dsn", "held\r\n", b"X-Lab-Hold: yes\r\n")
        code, text = self.lab.send(
            sent, "b@lab.example",
            mail_options=["RET=HDRS", "ENVID=lab-envid-7"],
            rcpt_options=["NOTIFY=SUCCESS,DELAY",
                          "ORCPT=rfc822;B@lab.example"])
        self.assertEqual(code, 250, text)
        qid = self.qid_of(text)
        try:
            deadline = time.monotonic() + lab.QUEUE_TIMEOUT
            while time.monotonic() < deadline:
                held = [q for q in self.lab.queue()
                        if q["queue_id"] == qid and q["queue_name"] == "hold"]
                if held:
                    break
                time.sleep(0.1)
            self.assertTrue(held, "not held: %s" % self.lab.queue_listing())
            records = self.lab.postcat(qid)
            # ret_flags 2 = HDRS; notify_flags 2|8 = SUCCESS,DELAY.
            for want in ("named_attribute: envelope_id=lab-envid-7",
                         "named_attribute: ret_flags=2",
                         "named_attribute: notify_flags=10",
                         "named_attribute: dsn_orig_rcpt=rfc822;B@lab.example",
                         "original_recipient: b@lab.example",
                         "recipient: b@lab.example"):
                self.assertIn(want + "\n", records)
        finally:
            self.lab.postsuper("-d", qid)

    def test_dsn_notify_never_gets_no_notice(self):
        sent = message("dsn never", "no notice\r\n")
        code, text = self.lab.send(sent, "b@lab.example",
                                   rcpt_options=["NOTIFY=NEVER"])
        self.assertEqual(code, 250, text)
        self.lab.wait_maildir("b", 1)
        self.lab.wait_queue_empty()
        self.assertEqual(self.lab.maildir("a"), [])


if __name__ == "__main__":
    lab.run_main()
