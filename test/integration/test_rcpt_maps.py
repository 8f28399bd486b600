#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    test_rcpt_maps - RecipientMaps against Postfix's unknown-recipient check

DESCRIPTION
    Starts a private lab of its own (scripts/lab up in a temporary
    directory under /var/tmp) whose main.cf adds a relay domain
    (relay.example, delivered by discard), a virtual mailbox domain
    (vmb.example) and a virtual alias domain (valias.example), so that the
    lab's trivial-rewrite gives every address class. Tables are files in
    the lab's etc: a texthash user list, a postmap'ed hash of virtual
    aliases, and texthash tables of virtual mailboxes and relay
    recipients. One extra Postfix smtpd listener per variant carries the
    variant's -o overrides (local_recipient_maps = the lab's aliases,
    empty, a user list, unix:passwd.byname plus aliases, a table that does
    not exist; no recipient_delimiter, or "+-" (where owner-x and
    list-request keep their dash); another double_bounce_sender (always
    accepted, as postmaster is); reject codes 450; the check turned
    off; permit_mynetworks so that foreign addresses reach the check).

    For each variant the same recipients are sent to the real smtpd (MAIL
    FROM, then one RCPT each) and fed to test/tools/rcpt-maps-probe with
    the same -o overrides; the probe resolves through the lab's real
    trivial-rewrite. Where Postfix accepted, the probe must say OK; where
    Postfix refused for relay control (Relay access denied), the
    RelayChecker is in charge and the verdict is not compared; any other
    reply must be the probe's, byte for byte.

ENVIRONMENT
    RS_LAB_DIR    set by CTest when a lab is up; this test starts its own
    RS_BUILD_DIR  the build directory with test/tools/rcpt-maps-probe

SEE ALSO
    smtpd/rcpt_maps.h, test/tools/rcpt-maps-probe.cc, scripts/lab
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

RECIPIENTS = [
    "a@lab.example", "nosuch@lab.example", "a+ext@lab.example",
    "nosuch+ext@lab.example", "postmaster", "postmaster+x@lab.example",
    "MAILER-DAEMON@lab.example", "double-bounce@lab.example",
    "A@LAB.EXAMPLE", "root@lab.example", "daemon@lab.example",
    "v@lab.example", "abuse@lab.example", "a@[127.0.0.1]",
    "z@foreign.example", "ok@relay.example", "no@relay.example",
    "ok@vmb.example", "no@vmb.example", "x@valias.example",
    "alias@valias.example", "a-ext@lab.example", "a+x-y@lab.example",
    "owner-x@lab.example", "list-request@lab.example", "list-x@lab.example",
    "a+b+c@lab.example", "bouncer@lab.example",
]

# main.cf for the lab: domains of every class (read by trivial-rewrite).
LAB_MAIN_CF = (
    "relay_domains = relay.example\n"
    "relay_transport = discard:lab relay\n"
    "virtual_mailbox_domains = vmb.example\n"
    "virtual_transport = discard:lab virtual\n"
    "virtual_alias_domains = valias.example\n"
)


def variants(etc):
    """name -> the -o overrides for both Postfix's smtpd and the probe."""
    # The error limits only slow down and cut off this test's sessions.
    common = [
        "smtpd_soft_error_limit=1000", "smtpd_hard_error_limit=1000",
        "virtual_alias_maps=hash:%s/valias" % etc,
        "virtual_mailbox_maps=texthash:%s/vmailbox" % etc,
        "relay_recipient_maps=texthash:%s/relay_rcpt" % etc,
    ]
    users = "local_recipient_maps=texthash:%s/users" % etc
    return {
        "aliases": common,
        "empty": common + ["local_recipient_maps="],
        "users": common + [users],
        "passwd": common + [
            "local_recipient_maps=unix:passwd.byname,$alias_maps"],
        "missing": common + [
            "local_recipient_maps=hash:%s/nonexistent" % etc],
        "no_delimiter": common + [users, "recipient_delimiter="],
        "dash_delimiter": common + [users, "recipient_delimiter=+-"],
        "bounce_name": common + [users, "double_bounce_sender=bouncer"],
        "codes_450": common + [
            users, "unknown_local_recipient_reject_code=450",
            "unknown_virtual_mailbox_reject_code=450",
            "unknown_virtual_alias_reject_code=450",
            "unknown_relay_recipient_reject_code=450"],
        "check_off": common + [
            users, "smtpd_reject_unlisted_recipient=no"],
        "mynetworks": common + [
            users, "smtpd_relay_restrictions=permit_mynetworks,"
                   "reject_unauth_destination"],
    }


def free_ports(n):
    """n distinct free loopback TCP ports (bound briefly, then released)."""
    socks, ports = [], []
    while len(ports) < n:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def rcpt_replies(port, rcpts):
    """Postfix's reply to each RCPT, after one MAIL FROM."""
    c = lab.Conn("127.0.0.1", port)
    try:
        c.reply()
        c.send(b"EHLO client.lab.example\r\n")
        c.reply()
        c.send(b"MAIL FROM:<x@lab.example>\r\n")
        c.reply()
        out = []
        for r in rcpts:
            c.send(("RCPT TO:<%s>\r\n" % r).encode())
            lines = c.reply()
            out.append(lines[-1] if lines else "(no reply)")
        c.send(b"QUIT\r\n")
        return out
    finally:
        c.close()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class RcptMapsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.environ.get("RS_LAB_DIR"):
            raise unittest.SkipTest("RS_LAB_DIR is not set (see scripts/test)")
        build = os.environ.get("RS_BUILD_DIR", "")
        cls.probe = os.path.join(build, "test", "tools", "rcpt-maps-probe")
        if not os.access(cls.probe, os.X_OK):
            raise unittest.SkipTest("no %s" % cls.probe)

        # A lab of our own: the variants need listeners of their own.
        cls.dir = tempfile.mkdtemp(prefix="rs-rcpt-maps-lab-", dir="/var/tmp")
        os.chmod(cls.dir, 0o755)
        cls.etc = os.path.join(cls.dir, "etc")
        cls.variants = variants(cls.etc)
        ports = free_ports(2 + len(cls.variants))
        env = dict(os.environ, PORT=str(ports[0]), REF_PORT=str(ports[1]),
                   LAB_MAIN_CF=LAB_MAIN_CF)
        subprocess.run([os.path.join(ROOT, "scripts", "lab"), "up", cls.dir],
                       env=env, check=True, capture_output=True)

        # The tables: texthash needs nothing, hash goes through postmap.
        write(os.path.join(cls.etc, "users"), "a x\n# comment\nb y\nowner x\nlist x\n")
        write(os.path.join(cls.etc, "valias"),
              "v@lab.example a@lab.example\nalias@valias.example a\n")
        subprocess.run(["postmap", "-c", cls.etc,
                        "hash:" + os.path.join(cls.etc, "valias")],
                       check=True)
        write(os.path.join(cls.etc, "vmailbox"), "ok@vmb.example x/\n")
        write(os.path.join(cls.etc, "relay_rcpt"), "ok@relay.example x\n")

        # One listener per variant, with the variant's -o overrides.
        cls.port = {}
        for (name, overrides), port in zip(cls.variants.items(), ports[2:]):
            args = " ".join("-o %s" % o for o in overrides)
            svc = "127.0.0.1:%d" % port
            subprocess.run(
                ["postconf", "-c", cls.etc, "-M",
                 "%s/inet = %s inet n - n - - smtpd %s" % (svc, svc, args)],
                check=True)
            cls.port[name] = port
        subprocess.run(["postfix", "-c", cls.etc, "reload"], check=True,
                       capture_output=True)
        deadline = time.time() + 15
        last = list(cls.port.values())[-1]
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", last), 1).close()
                break
            except OSError:
                time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "dir", None):
            subprocess.run([os.path.join(ROOT, "scripts", "lab"), "down",
                            cls.dir], capture_output=True)
            shutil.rmtree(cls.dir, ignore_errors=True)

    def run_probe(self, overrides, rcpts):
        """The probe's verdict for each recipient."""
        args = [self.probe, "-c", self.etc]
        for o in overrides:
            args += ["-o", o]
        stdin = "".join("x@lab.example %s\n" % r for r in rcpts)
        p = subprocess.run(args, input=stdin, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = {}
        for line in p.stdout.splitlines():
            head, _, verdict = line.partition(" => ")
            out[head.split(" ", 1)[1]] = verdict
        return out

    def test_verdicts_agree_with_postfix(self):
        compared = 0
        for name, overrides in self.variants.items():
            with self.subTest(variant=name):
                want = rcpt_replies(self.port[name], RECIPIENTS)
                got = self.run_probe(overrides, RECIPIENTS)
                for rcpt, reply in zip(RECIPIENTS, want):
                    if "Relay access denied" in reply:
                        continue
                    expect = "OK" if reply.startswith("250") else reply
                    self.assertEqual(
                        got.get(rcpt), expect,
                        "%s: %s: got %r, want %r (Postfix: %r)"
                        % (name, rcpt, got.get(rcpt), expect, reply))
                    compared += 1
        # Most answers must have been compared, or the test proves little.
        self.assertGreater(compared, len(RECIPIENTS) * 5)

    def test_unknown_user_is_refused_by_both(self):
        # The headline case, stated on its own so that a failure is plain.
        want = rcpt_replies(self.port["aliases"], ["nosuch@lab.example"])
        self.assertEqual(
            want[0], "550 5.1.1 <nosuch@lab.example>: Recipient address "
                     "rejected: User unknown in local recipient table")
        got = self.run_probe(self.variants["aliases"], ["nosuch@lab.example"])
        self.assertEqual(got["nosuch@lab.example"], want[0])


if __name__ == "__main__":
    unittest.main()
