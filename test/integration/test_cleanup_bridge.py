#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    test_cleanup_bridge - CleanupStream against the lab's real cleanup(8)

DESCRIPTION
    Runs test/tools/cleanup-probe from the lab's queue directory (the
    stream connects to the relative public/cleanup, as smtpd does):
    * a message to two recipients is queued with "250 2.0.0 Ok: queued
      as ID" and lands in both Maildirs with the multi-recipient
      Received: form, the headers and the body, the L+N line joined;
    * a message to one recipient carries "for <rcpt>;";
    * a HOLD message goes to the hold queue;
    * a message aborted midway (closed without E) leaves nothing in the
      queue and is never delivered;
    * when the cleanup process serving the probe is killed with SIGKILL
      mid-message, the probe gets an Error, not success, and nothing is
      delivered. That cleanup is found among the lab's processes (by
      MAIL_CONFIG in the environment) as the one holding the peer end
      of the probe's socket, never by name alone.

ENVIRONMENT
    RS_LAB_DIR    a running lab (scripts/lab up DIR)
    RS_BUILD_DIR  the build directory with test/tools/cleanup-probe

SEE ALSO
    lab.py, test/tools/cleanup-probe.cc, cleanup-bridge/cleanup.h
"""

import os
import re
import signal
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

PROBE_TIMEOUT = 60
DATE_RX = r"[A-Z][a-z]{2}, [ \d]\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(\w+\)"


def socket_inodes(pid):
    """Inodes of the sockets process pid holds open."""
    out = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            out.add(int(m.group(1)))
    return out


def unix_peers():
    """{inode: peer inode} of every UNIX stream socket (ss -x)."""
    out = subprocess.run(["ss", "-Hxn"], capture_output=True, text=True,
                         check=True).stdout
    peers = {}
    for line in out.splitlines():
        f = line.split()
        # Netid State Recv-Q Send-Q Local Port Peer Port
        if len(f) >= 8 and f[0] == "u_str":
            try:
                peers[int(f[5])] = int(f[7])
            except ValueError:
                continue
    return peers


class CleanupBridge(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lab = lab.from_env()
        build = cls.lab.build_dir or os.environ.get("RS_BUILD_DIR", "")
        cls.probe = os.path.join(build, "test", "tools", "cleanup-probe")
        if not os.access(cls.probe, os.X_OK):
            raise unittest.SkipTest("%s was not built" % cls.probe)

    def setUp(self):
        self.lab.wait_queue_empty()
        for u in ("a", "b", "c"):
            self.lab.clear_maildir(u)
        self.mark = self.lab.log_mark()
        self.subject = "probe-" + uuid.uuid4().hex[:12]

    # ---- helpers -------------------------------------------------------

    def args(self, *extra):
        return [self.probe, "--subject", self.subject,
                "--hostname", self.lab.myhostname] + list(extra)

    def run_probe(self, *extra):
        """Run the probe to the end; (exit status, {event: text})."""
        r = subprocess.run(self.args(*extra), cwd=self.lab.spool,
                           capture_output=True, text=True,
                           timeout=PROBE_TIMEOUT)
        return r.returncode, self.events(r.stdout), r.stdout + r.stderr

    @staticmethod
    def events(text):
        out = {}
        for line in text.splitlines():
            key, _, rest = line.partition(" ")
            out[key] = rest
        return out

    def assert_never_delivered(self, qid):
        """Nothing of qid in any queue, no Maildir file with our subject,
        and no delivery log line."""
        time.sleep(1.0)
        for path in self.lab.queue_files():
            self.assertNotEqual(os.path.basename(path), qid, path)
        for u in ("a", "b", "c"):
            for path, data in self.lab.maildir(u):
                self.assertNotIn(self.subject.encode(), data, path)
        lines = self.lab.log_since(self.mark)
        self.assertFalse([l for l in lines
                          if qid + ": to=" in l or qid + ": from=" in l],
                         "\n".join(lines))

    # ---- tests ---------------------------------------------------------

    def test_two_recipients_are_queued_and_delivered(self):
        a, b = self.lab.addr("a"), self.lab.addr("b")
        rc, ev, out = self.run_probe("--sender", a, "--rcpt", a,
                                     "--rcpt", b)
        self.assertEqual(rc, 0, out)
        qid = ev["ready"]
        self.assertRegex(qid, r"^[0-9A-Za-z]+$")
        self.assertEqual(ev["reply"], "250 2.0.0 Ok: queued as " + qid)
        self.assertEqual(ev["status"], "0 reason ")

        host = re.escape(self.lab.myhostname)
        for user, rcpt in (("a", a), ("b", b)):
            (_, data), = self.lab.wait_maildir(user, 1)
            text = data.decode()
            want = (
                r"\AReturn-Path: <%s>\n"
                r"X-Original-To: %s\n"
                r"Delivered-To: %s\n"
                r"Received: from probe\.lab\.example \(localhost \[127\.0\.0\.1\]\)\n"
                r"\tby %s \(Postfix\) with ESMTP id %s;\n"
                r"\t%s\n"
                r"From: <%s>\n"
                r"To: <%s>\n"
                r"Subject: %s\n"
                r"Date: %s\n"
                r"Message-ID: <%s@probe\.lab\.example>\n"
                r"\n"
                r"first body line\n"
                r"second body line, in two records\n\Z"
                % (re.escape(a), re.escape(rcpt), re.escape(rcpt), host, qid,
                   DATE_RX, re.escape(a), re.escape(a), self.subject,
                   DATE_RX, qid))
            self.assertRegex(text, want)

        # cleanup logged the message once; qmgr saw two recipients.
        lines = self.lab.wait_log(self.mark, qid + r": removed")
        self.assertEqual(
            1, sum(1 for l in lines if qid + ": message-id=" in l))
        self.assertTrue(any(re.search(qid + r": from=<%s>, size=\d+, nrcpt=2"
                                      % re.escape(a), l) for l in lines),
                        "\n".join(lines))

    def test_one_recipient_is_named_in_received(self):
        c = self.lab.addr("c")
        rc, ev, out = self.run_probe("--rcpt", c)
        self.assertEqual(rc, 0, out)
        qid = ev["ready"]
        (_, data), = self.lab.wait_maildir("c", 1)
        self.assertRegex(
            data.decode(),
            r"\tby %s \(Postfix\) with ESMTP id %s\n\tfor <%s>; %s\n"
            % (re.escape(self.lab.myhostname), qid, re.escape(c), DATE_RX))

    def test_hold_goes_to_the_hold_queue(self):
        rc, ev, out = self.run_probe("--rcpt", self.lab.addr("c"), "--hold")
        self.assertEqual(rc, 0, out)
        qid = ev["ready"]
        held = os.path.join(self.lab.spool, "hold", qid)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(held) and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertTrue(os.path.exists(held), self.lab.queue_listing())
        finally:
            self.lab.postsuper("-d", qid, "hold")

    def test_aborted_message_leaves_nothing_in_the_queue(self):
        rc, ev, out = self.run_probe("--rcpt", self.lab.addr("c"), "--abort")
        self.assertEqual(rc, 0, out)
        qid = ev["aborted"]
        self.assertEqual(qid, ev["ready"])
        self.lab.wait_queue_empty(timeout=10)
        self.assert_never_delivered(qid)

    def test_killed_cleanup_gives_an_error_not_success(self):
        p = subprocess.Popen(self.args("--rcpt", self.lab.addr("c"),
                                       "--pause"),
                             cwd=self.lab.spool, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        qid = None
        try:
            ready = p.stdout.readline().split()
            paused = p.stdout.readline().split()
            self.assertEqual(ready[0], "ready", ready)
            self.assertEqual(paused, ["paused", ready[1]])
            qid = ready[1]

            # The cleanup at the other end of the probe's socket, among
            # this lab's processes only.
            peers = unix_peers()
            peer_inodes = {peers[i] for i in socket_inodes(p.pid)
                           if i in peers}
            victims = [pid for pid, info in self.lab.processes().items()
                       if info["comm"] == "cleanup"
                       and socket_inodes(pid) & peer_inodes]
            self.assertEqual(len(victims), 1,
                             "cleanup peers %r of %r" % (victims,
                                                         peer_inodes))
            os.kill(victims[0], signal.SIGKILL)

            # Let the probe go on: it must report an error.
            out, err = p.communicate("\n", timeout=PROBE_TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        ev = self.events(out)
        self.assertEqual(p.returncode, 1, out + err)
        self.assertIn("error", ev, out)
        self.assertNotIn("reply", ev, out)

        # The half-written queue file in incoming/ is cleanup's leftover;
        # it must never have reached the active queue or a Maildir.
        try:
            self.assert_never_delivered_except_incoming(qid)
        finally:
            self.remove_leftover(qid)

    def remove_leftover(self, qid):
        """Remove the killed cleanup's incoming/qid, which postsuper -d
        leaves alone (it was never completed: mode 0600, not 0700), so
        that the suites after us start with an empty queue."""
        self.lab.postsuper("-d", qid)
        path = os.path.join(self.lab.spool, "incoming", qid)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return
        self.assertEqual(st.st_mode & 0o777, 0o600,
                         "incoming/%s was completed by cleanup" % qid)
        os.unlink(path)

    def assert_never_delivered_except_incoming(self, qid):
        time.sleep(1.0)
        for q in ("active", "deferred", "hold"):
            for root, _, names in os.walk(os.path.join(self.lab.spool, q)):
                self.assertNotIn(qid, names, root)
        for path, data in self.lab.maildir("c"):
            self.assertNotIn(self.subject.encode(), data, path)
        lines = self.lab.log_since(self.mark)
        self.assertFalse([l for l in lines if qid + ": from=" in l],
                         "\n".join(lines))


if __name__ == "__main__":
    unittest.main(verbosity=2)
