#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    test_relay_probe - RelayChecker against Postfix's own relay control

DESCRIPTION
    Starts a private lab of its own (scripts/lab up in a temporary
    directory, with relay_domains = relay.example delivered by discard)
    with one extra Postfix smtpd listener per restriction variant (-o
    overrides in master.cf). For each variant, the same recipients are
    sent to the real smtpd (MAIL FROM, then one RCPT each) and fed to
    test/tools/relay-probe with the same -o overrides; the probe's
    RelayChecker asks the lab's real trivial-rewrite. The verdicts must
    agree: the probe's reply equals Postfix's when Postfix refused with a
    relay-control reply, and the probe says OK when Postfix accepted or
    refused for a later reason (unknown user, error transport), which are
    checks outside RelayChecker.

    Variants: reject_unauth_destination (the lab's default); permit_
    mynetworks first and last; the client outside mynetworks (-o
    mynetworks=10.0.0.0/8); allow_untrusted_routing = yes; defer_unauth_
    destination; defer_if_permit; permit in one list and the check in the
    other; reject; defer; permit_auth_destination; check_relay_domains;
    an unknown restriction; relay_domains_reject_code = 550. Recipients:
    a local user, postmaster, localhost, [127.0.0.1], a relay_domains
    member, a foreign domain, user@foreign@ours, the percent hack, a bang
    path, and routed relay_domains addresses. Finally a configuration
    with no relay-safe restriction must make both exit fatally with the
    same text.

ENVIRONMENT
    RS_LAB_DIR    set by CTest when a lab is up; this test starts its own
    RS_BUILD_DIR  the build directory with test/tools/relay-probe

SEE ALSO
    smtpd/relay.h, test/tools/relay-probe.cc, scripts/lab
"""

import os
import re
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
    "b@lab.example", "postmaster", "b@localhost", "b@[127.0.0.1]",
    "z@relay.example", "z@foreign.example", "b@foreign@lab.example",
    "b%foreign@lab.example", "foreign!b@lab.example", "z%x@relay.example",
    "z@x@relay.example", "x!z@relay.example",
]

# name -> the -o overrides for both Postfix's smtpd and the probe.
VARIANTS = {
    "default": [],
    "mynetworks_first": [
        "smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination"],
    "mynetworks_last": [
        "smtpd_relay_restrictions=reject_unauth_destination,permit_mynetworks"],
    "client_outside": [
        "mynetworks=10.0.0.0/8",
        "smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination"],
    "untrusted_routing": ["allow_untrusted_routing=yes"],
    "defer_unauth": ["smtpd_relay_restrictions=defer_unauth_destination"],
    "defer_if_permit": [
        "smtpd_relay_restrictions=defer_if_permit,reject_unauth_destination"],
    "split_lists": [
        "smtpd_relay_restrictions=permit_mynetworks",
        "smtpd_recipient_restrictions=reject_unauth_destination"],
    "reject": ["smtpd_relay_restrictions=reject"],
    "defer": ["smtpd_relay_restrictions=defer"],
    "permit_auth": ["smtpd_relay_restrictions=permit_auth_destination,reject"],
    "check_relay_domains": ["smtpd_relay_restrictions=check_relay_domains"],
    "unknown": [
        "smtpd_relay_restrictions=bogus_restriction,reject_unauth_destination"],
    "relay_code": ["relay_domains_reject_code=550"],
}

UNSAFE = ["smtpd_relay_restrictions=permit_mynetworks",
          "smtpd_recipient_restrictions=permit"]

# Replies that come from relay control; anything else Postfix says after
# the relay checks passed (250, unknown user, error transport) is "OK".
RELAY_REPLY = re.compile(
    r"Relay access denied|Access denied|Try again later|defer_if_permit "
    r"requested|Server configuration error|Temporary lookup failure")


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
        c.send(b"MAIL FROM:<a@lab.example>\r\n")
        c.reply()
        out = []
        for r in rcpts:
            c.send(("RCPT TO:<%s>\r\n" % r).encode())
            out.append(reply_text(c.reply()))
        c.send(b"QUIT\r\n")
        return out
    finally:
        c.close()


def reply_text(lines):
    """A single-line reply from lab.Conn.reply's list of lines."""
    return lines[-1] if lines else "(no reply)"


def verdict(reply):
    return reply if RELAY_REPLY.search(reply) else "OK"


class RelayProbeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.environ.get("RS_LAB_DIR"):
            raise unittest.SkipTest("RS_LAB_DIR is not set (see scripts/test)")
        build = os.environ.get("RS_BUILD_DIR", "")
        cls.probe = os.path.join(build, "test", "tools", "relay-probe")
        if not os.access(cls.probe, os.X_OK):
            raise unittest.SkipTest("no %s" % cls.probe)

        # A lab of our own: the variants need listeners of their own.
        cls.dir = tempfile.mkdtemp(prefix="rs-relay-lab-", dir="/var/tmp")
        os.chmod(cls.dir, 0o755)
        names = list(VARIANTS) + ["unsafe"]
        ports = free_ports(2 + len(names))
        env = dict(os.environ, PORT=str(ports[0]), REF_PORT=str(ports[1]),
                   LAB_MAIN_CF="relay_domains = relay.example\n"
                               "relay_transport = discard:lab relay\n")
        subprocess.run([os.path.join(ROOT, "scripts", "lab"), "up", cls.dir],
                       env=env, check=True, capture_output=True)
        cls.etc = os.path.join(cls.dir, "etc")
        cls.port = {}
        for name, port in zip(names, ports[2:]):
            overrides = VARIANTS.get(name, UNSAFE)
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
        while time.time() < deadline:
            try:
                socket.create_connection(
                    ("127.0.0.1", cls.port["relay_code"]), 1).close()
                break
            except OSError:
                time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "dir", None):
            subprocess.run([os.path.join(ROOT, "scripts", "lab"), "down",
                            cls.dir], capture_output=True)
            shutil.rmtree(cls.dir, ignore_errors=True)

    def run_probe(self, overrides, lines):
        cmd = [self.probe, "-c", self.etc]
        for o in overrides:
            cmd += ["-o", o]
        return subprocess.run(cmd, input="".join(l + "\n" for l in lines),
                              capture_output=True, text=True, timeout=60)

    def test_variants_agree_with_postfix(self):
        for name, overrides in VARIANTS.items():
            with self.subTest(variant=name):
                want = rcpt_replies(self.port[name], RECIPIENTS)
                out = self.run_probe(
                    overrides,
                    ["127.0.0.1 a@lab.example %s" % r for r in RECIPIENTS])
                self.assertEqual(out.returncode, 0, out.stderr)
                got = [l.split(" => ", 1)[1]
                       for l in out.stdout.splitlines()]
                self.assertEqual(len(got), len(RECIPIENTS), out.stdout)
                for r, w, g in zip(RECIPIENTS, want, got):
                    self.assertEqual(g, verdict(w),
                                     "%s: %s: postfix said %r, probe %r"
                                     % (name, r, w, g))

    def test_unknown_restriction_warns_like_postfix(self):
        out = self.run_probe(VARIANTS["unknown"],
                             ["127.0.0.1 a@lab.example b@lab.example"])
        self.assertIn('warning: unknown smtpd restriction: '
                      '"bogus_restriction"', out.stderr)

    def test_no_relay_safe_restriction_is_fatal_in_both(self):
        out = self.run_probe(UNSAFE, ["127.0.0.1 a@lab.example b@lab.example"])
        self.assertEqual(out.returncode, 1)
        m = re.search(r"fatal: (.*)", out.stderr)
        self.assertTrue(m, out.stderr)

        # Postfix's smtpd dies at start-up with the same text.
        maillog = os.path.join(self.dir, "log", "maillog")
        try:
            s = socket.create_connection(("127.0.0.1", self.port["unsafe"]), 5)
            s.settimeout(3)
            try:
                s.recv(100)
            except OSError:
                pass
            s.close()
        except OSError:
            pass
        deadline = time.time() + 15
        text = ""
        while time.time() < deadline:
            with open(maillog, errors="replace") as f:
                text = f.read()
            if "smtpd" in text and "fatal: in parameter" in text:
                break
            time.sleep(0.3)
        self.assertIn("fatal: " + m.group(1), text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
