#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    test_faults - the server under test when things around it fail

DESCRIPTION
    kill -9 of the cleanup(8) process that receives our DATA must give the
    client a 4xx reply and leave no message behind. "postfix reload" and
    "postfix stop" (then up again) must end the server's processes
    cleanly: no "exit status", "killed by signal" or "bad command
    startup" for them in the maillog, and no process left over.

    The stop test restarts the lab with scripts/lab up, so it runs last.

SEE ALSO
    lab.py, scripts/lab
"""

import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
# What master(8) logs when a child ends badly.
BAD_EXIT = re.compile(r"exit status \d+|killed by signal|bad command startup")
EXIT_TIMEOUT = 30.0


def open_session(the_lab, rcpt="b@lab.example", data=True):
    """A raw session up to the 354 of DATA (or after RCPT)."""
    c = lab.Conn(the_lab.host, the_lab.port)
    assert c.reply()[-1].startswith("220")
    c.send(b"EHLO client.lab.example\r\n")
    assert c.reply()[-1].startswith("250 ")
    c.send(b"MAIL FROM:<a@lab.example>\r\n")
    assert c.reply()[0].startswith("250")
    c.send(b"RCPT TO:<%s>\r\n" % rcpt.encode())
    assert c.reply()[0].startswith("250")
    if data:
        c.send(b"DATA\r\n")
        r = c.reply()
        assert r and r[0].startswith("354"), r
    return c


class Faults(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lab = lab.from_env()
        lab.require_serving(cls.lab)

    def setUp(self):
        self.lab.wait_queue_empty()
        self.lab.clear_maildir("b")
        self.mark = self.lab.log_mark()

    def server_pids(self):
        """pids of the processes serving the port under test: master's
        children running the swapped binary, or Postfix's smtpd."""
        want = self.lab.swap_bin or "/usr/lib/postfix/sbin/smtpd"
        want = os.path.realpath(want)
        return [pid for pid, p in self.lab.processes().items()
                if p["ppid"] == self.lab.master_pid()
                and os.path.realpath(p["exe"]) == want]

    def bad_exits(self, lines):
        """master's complaints about our processes in lines."""
        out = []
        for l in lines:
            if not BAD_EXIT.search(l):
                continue
            # kill -9 of cleanup is the test's own doing; master then
            # throttles cleanup (it had served nobody yet).
            if "/sbin/cleanup" in l:
                continue
            out.append(l)
        return out

    def wait_gone(self, pids, timeout=EXIT_TIMEOUT):
        """Wait until none of pids runs (zombies count as gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = [p for p in pids if self.alive(p)]
            if not left:
                return []
            time.sleep(0.1)
        return left

    @staticmethod
    def alive(pid):
        try:
            return lab.proc_stat(pid)["state"] != "Z"
        except OSError:
            return False

    # ---- cleanup dies during DATA --------------------------------------

    def test_killed_cleanup_gives_4xx_and_queues_nothing(self):
        before_files = {os.path.basename(p)
                        for p in self.lab.incomplete_files()}
        c = open_session(self.lab)
        try:
            c.send(b"Subject: doomed\r\n\r\n" + b"line\r\n" * 100)
            server = lab.server_pid(self.lab.port, c.local_port())
            self.assertIsNotNone(server, "no server process for the session")

            # The cleanup process this server writes the message to: a
            # child of our master connected to the server by a socket.
            deadline = time.monotonic() + 10
            victims = []
            while not victims and time.monotonic() < deadline:
                victims = lab.connected_to(server,
                                           self.lab.children_named("cleanup"))
                time.sleep(0.05)
            self.assertEqual(len(victims), 1,
                             "cleanup processes serving pid %d: %r"
                             % (server, victims))
            os.kill(victims[0], signal.SIGKILL)
            self.wait_gone(victims, 5)

            # The rest of the message and its end: the reply must be a
            # temporary failure, never 250.
            c.send(b"line\r\n" * 100 + b".\r\n")
            r = c.reply()
            self.assertTrue(r, "no reply after the end of data")
            self.assertRegex(r[0], r"^4\d\d ", "reply after cleanup died")
            c.send(b"QUIT\r\n")
            c.wait_closed(5)
        finally:
            c.close()

        # Nothing queued, nothing delivered. The killed cleanup may leave
        # its partial file in incoming: not a message (cleanup never
        # marked it complete, so qmgr never takes it); this test removes
        # it, since the kill was its own doing.
        deadline = time.monotonic() + 15
        while self.lab.queue() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.lab.queue(), [], self.lab.queue_listing())
        for p in self.lab.incomplete_files():
            if not os.path.basename(p) in before_files:
                os.unlink(p)
        time.sleep(1)
        self.assertEqual(self.lab.maildir("b"), [])

        # And the server goes on serving.
        code, _ = self.lab.send(b"Subject: after\r\n\r\nok\r\n",
                                "b@lab.example")
        self.assertEqual(code, 250)
        self.lab.wait_maildir("b", 1)
        lines = self.lab.wait_log_quiet(self.mark)
        self.assertEqual(self.bad_exits(lines), [], "\n".join(lines))

    # ---- reload --------------------------------------------------------

    def test_reload_ends_our_processes_cleanly(self):
        # An idle session across the reload must still work, then its
        # process must go (master closed its status channel).
        c = open_session(self.lab, data=False)
        try:
            server = lab.server_pid(self.lab.port, c.local_port())
            self.assertIsNotNone(server)
            before = set(self.server_pids())
            self.assertIn(server, before)
            self.lab.postfix("reload")
            self.lab.wait_log(self.mark, r"master\[\d+\]: reload ")
            c.send(b"DATA\r\n")
            self.assertTrue(c.reply()[0].startswith("354"))
            c.send(b"Subject: over reload\r\n\r\nstill here\r\n.\r\n")
            r = c.reply()
            self.assertTrue(r and r[0].startswith("250"), r)
            c.send(b"QUIT\r\n")
            c.wait_closed(5)
        finally:
            c.close()
        self.lab.wait_maildir("b", 1)

        left = self.wait_gone(before)
        self.assertEqual(left, [], "processes still running after reload")

        # New sessions are served by new processes.
        code, _ = self.lab.send(b"Subject: after reload\r\n\r\nok\r\n",
                                "b@lab.example")
        self.assertEqual(code, 250)
        self.lab.wait_maildir("b", 2)
        lines = self.lab.wait_log_quiet(self.mark)
        self.assertEqual(self.bad_exits(lines), [], "\n".join(lines))

    # ---- stop ----------------------------------------------------------

    def test_zz_stop_ends_everything_then_up_again(self):
        c = open_session(self.lab, data=False)
        try:
            self.assertTrue(self.server_pids())
            all_before = self.lab.pids()
            r = self.lab.postfix("stop", check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # The session is closed by the stop; whatever the server
            # says first (421 or nothing) is fine.
            c.wait_closed(10)
            self.assertTrue(c.closed, "session still open after stop")
        finally:
            c.close()
        left = self.wait_gone(all_before)
        self.assertEqual(left, [], "lab processes left after stop: %r"
                         % {p: self.lab.processes().get(p) for p in left})
        self.assertEqual(self.lab.pids(), [])

        # Start the lab again as scripts/test left it, then check that it
        # serves, and that nothing ended badly.
        up = subprocess.run(["bash", os.path.join(REPO, "scripts", "lab"),
                             "up", self.lab.dir],
                            capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
        self.assertEqual(up.returncode, 0, up.stdout + up.stderr)
        code, _ = self.lab.send(b"Subject: after stop\r\n\r\nok\r\n",
                                "b@lab.example")
        self.assertEqual(code, 250)
        self.lab.wait_maildir("b", 1)
        lines = self.lab.wait_log_quiet(self.mark)
        self.assertEqual(self.bad_exits(lines), [], "\n".join(lines))


if __name__ == "__main__":
    lab.run_main()
