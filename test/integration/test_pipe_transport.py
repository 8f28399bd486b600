#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    test_pipe_transport - resume-send as a pipe(8) transport of Postfix

DESCRIPTION
    A second private Postfix instance (its own scripts/lab, domain
    relay.example) relays mail for the first lab's domain through a
    pipe(8) transport that runs resume-send, as resume-send(1) shows.
    Between the two, cutproxy breaks the link twice in the middle of the
    message. A message submitted to the second instance with sendmail(1)
    must arrive in the first instance's Maildir exactly once, byte for
    byte, with the breaks resumed (XRESUME) and the pipe delivery logged
    as sent.

SEE ALSO
    lab.py, cutproxy.py, man/man1/resume-send.1, scripts/lab
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

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
DELIVERY_TIMEOUT = 120.0


def free_port_pair(start):
    """Two free loopback ports side by side, from start on."""
    port = start
    while port < 65000:
        out = subprocess.run(
            ["ss", "-Hltn", "( sport = :%d or sport = :%d )"
             % (port, port + 1)], capture_output=True, text=True).stdout
        if not out.strip():
            return port
        port += 2
    raise lab.LabError("no free port pair")


class PipeTransport(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lab = lab.from_env()
        lab.require_serving(cls.lab)
        if not cls.lab.swapped:
            raise unittest.SkipTest("XRESUME is ours: resume-smtpd is not "
                                    "swapped into the lab")
        sender = os.path.join(cls.lab.build_dir, "client", "resume-send")
        if not os.access(sender, os.X_OK):
            raise lab.LabError("resume-send was not built: %s" % sender)

        # The relay instance lives in a directory the postfix and nobody
        # users can reach, with its own copy of resume-send (pipe(8) runs
        # it as nobody, who may not reach the build tree).
        cls.top = tempfile.mkdtemp(prefix="rs-pipe-", dir="/var/tmp")
        os.chmod(cls.top, 0o755)
        cls.dir2 = os.path.join(cls.top, "lab2")
        cls.bin = os.path.join(cls.top, "resume-send")
        shutil.copy(sender, cls.bin)
        os.chmod(cls.bin, 0o755)
        cls.state = os.path.join(cls.top, "state")
        os.mkdir(cls.state, 0o700)
        shutil.chown(cls.state, "nobody")

        # The link between the instances breaks twice in the data, then
        # holds.
        cls.proxy = cutproxy.CutProxy(
            cls.lab.port, ["c2s:400000", "c2s:700000"], max_seconds=600)
        cls.proxy.start()

        port = free_port_pair(cls.lab.port + 200)
        env = dict(os.environ, PORT=str(port), LAB_DOMAIN="relay.example")
        env.pop("LAB_TLS", None)
        subprocess.run(["bash", os.path.join(REPO, "scripts", "lab"), "up",
                        cls.dir2], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        cls.lab2 = lab.Lab(cls.dir2)
        etc = cls.lab2.etc

        # master.cf: the resume transport, as resume-send(1) shows it.
        argv = ("flags=q user=nobody argv=%s -s 127.0.0.1:%d --state-dir %s "
                "--give-up 100 -q -f ${sender} -- ${recipient}"
                % (cls.bin, cls.proxy.port, cls.state))
        subprocess.run(["postconf", "-c", etc, "-M",
                        "resume/unix=resume unix - n n - - pipe " + argv],
                       check=True)
        # main.cf and transport: the first lab's domain goes that way,
        # one recipient per delivery.
        with open(os.path.join(etc, "transport"), "a") as f:
            f.write("%s  resume:\n" % cls.lab.domain)
        subprocess.run(["postmap", "-c", etc,
                        "hash:" + os.path.join(etc, "transport")], check=True)
        subprocess.run(["postconf", "-c", etc, "-e",
                        "resume_destination_recipient_limit = 1",
                        "resume_time_limit = 300s"], check=True)
        cls.lab2.postfix("reload")

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "proxy", None):
            cls.proxy.stop()
        if getattr(cls, "dir2", None):
            subprocess.run(["bash", os.path.join(REPO, "scripts", "lab"),
                            "down", cls.dir2], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if getattr(cls, "top", None):
            shutil.rmtree(cls.top, ignore_errors=True)

    def test_relayed_message_arrives_once_through_a_breaking_link(self):
        self.lab.wait_queue_empty()
        self.lab.clear_maildir("b")
        mark = self.lab.log_mark()
        mark2 = self.lab2.log_mark()

        # About 1 MiB with LF line ends, as a local submission has them.
        lines = [b"From: a@relay.example", b"To: b@lab.example",
                 b"Date: Fri, 04 Dec 2026 12:00:00 +0000",
                 b"Message-ID: <pipe-transport@relay.example>",
                 b"Subject: relayed through resume-send", b""]
        i = 0
        while sum(len(l) + 1 for l in lines) < 1100000:
            lines.append((b"." if i % 40 == 0 else b"")
                         + b"relay line %06d %s" % (i, b"y" * (i % 50)))
            i += 1
        msg = b"\n".join(lines) + b"\n"
        subprocess.run(["sendmail", "-C", self.lab2.etc, "-f",
                        "a@relay.example", "b@lab.example"], input=msg,
                       check=True, timeout=30)

        # The first instance has it once, the same octets.
        got = self.lab.wait_maildir("b", 1, timeout=DELIVERY_TIMEOUT)
        self.lab2.wait_log(mark2, r"relay=resume, .*status=sent",
                           timeout=DELIVERY_TIMEOUT)
        time.sleep(1)
        got = self.lab.maildir("b")
        self.assertEqual(len(got), 1, "copies: %d" % len(got))
        data = got[0][1]
        start = data.index(b"From: a@relay.example")
        self.assertEqual(data[start:], msg, "the relayed message differs")

        # Two breaks, each resumed on the first instance's side.
        lines1 = self.lab.log_since(mark)
        resumed = [l for l in lines1 if re.search(r"resume: token=\w+ "
                                                   r"offset=[1-9]", l)]
        self.assertEqual(len(resumed), 2, "\n".join(lines1[-40:]))
        st = self.proxy.stats()
        self.assertEqual(st["cuts"], 2)
        # Each octet about once: the message in CRLF form, at most one
        # checkpoint interval (the default 1 MiB) per break, and the
        # commands; what was really resent is printed.
        size = len(msg) + msg.count(b"\n")
        self.assertLess(st["c2s"], size + 2 * 1048576 + 8192, st)
        print("\n  pipe transport: message %d octets, link c2s %d octets "
              "(%.4f x), 2 breaks" % (size, st["c2s"], st["c2s"] / size),
              file=sys.stderr)
        self.assertEqual(os.listdir(self.state), [], "state left behind")


if __name__ == "__main__":
    lab.run_main()
