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
    same text. And some 245 MAIL and RCPT forms (good and bad addresses,
    source routes, quoting, every ESMTP parameter) get the same 501/555/
    552 reply from the probe (parser, resolve, parameter checks) as from
    Postfix's smtpd, with strict_rfc821_envelopes and smtputf8_enable
    varied.

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

# MAIL and RCPT forms whose replies are compared with Postfix's: the
# parser, trivial-rewrite's RESOLVE_FLAG_ERROR and the parameter checks.
FORMS = [
    "MAIL FROM:<a@lab.example>",
    "MAIL FROM: <a@lab.example>",
    "MAIL FROM:a@lab.example",
    "MAIL FROM:<>",
    "MAIL FROM:",
    "MAIL FROM",
    "MAIL FRM:<a@x>",
    "MAIL FROM:<a@lab.example",
    "MAIL FROM:a@lab.example>",
    "MAIL FROM:<a b@lab.example>",
    "MAIL FROM:<\"a b\"@lab.example>",
    "MAIL FROM:<@r1,@r2:a@lab.example>",
    "MAIL FROM:<a@lab.example> SIZE=100",
    "MAIL FROM:<a@lab.example> SIZE=abc",
    "MAIL FROM:<a@lab.example> SIZE=",
    "MAIL FROM:<a@lab.example> SIZE=99999999999",
    "MAIL FROM:<a@lab.example> SIZE=999999999999999999999999",
    "MAIL FROM:<a@lab.example> BODY=8BITMIME",
    "MAIL FROM:<a@lab.example> BODY=7BIT",
    "MAIL FROM:<a@lab.example> BODY=BINARYMIME",
    "MAIL FROM:<a@lab.example> BODY=foo",
    "MAIL FROM:<a@lab.example> FOO=bar",
    "MAIL FROM:<a@lab.example> FOO",
    "MAIL FROM:<a@lab.example> RET=FULL",
    "MAIL FROM:<a@lab.example> RET=HDRS",
    "MAIL FROM:<a@lab.example> RET=xx",
    "MAIL FROM:<a@lab.example> RET=FULL RET=HDRS",
    "MAIL FROM:<a@lab.example> ENVID=abc+2Bdef",
    "MAIL FROM:<a@lab.example> ENVID=abc+2",
    "MAIL FROM:<a@lab.example> ENVID=abc+2Bdef ENVID=x",
    "MAIL FROM:<a@lab.example> SMTPUTF8",
    "MAIL FROM:<a@lab.example> AUTH=<>",
    "MAIL FROM:<a@lab.example> NOTIFY=NEVER",
    "MAIL FROM:<a@lab.example>  SIZE=10",
    "MAIL FROM:<a@lab.example> size=10",
    "MAIL FROM:<a@lab.example> SIZE=-1",
    "MAIL FROM:<a@lab.example> SIZE=+1",
    "MAIL FROM:<a@lab.example>x",
    "MAIL FROM:<a@@lab.example>",
    "MAIL FROM:<a@lab.example@>",
    "MAIL FROM:<@lab.example>",
    "MAIL FROM:<a@>",
    "MAIL FROM:<a@[127.0.0.1]>",
    "MAIL FROM:<a@[999.0.0.1]>",
    "MAIL FROM:<a..b@lab.example>",
    "MAIL FROM:<a(comment)@lab.example>",
    "MAIL FROM:<a,b@lab.example>",
    "MAIL FROM:<a;b@lab.example>",
    "MAIL FROM:<a@lab.example,b@lab.example>",
    "MAIL FROM:<a@lab.example> <b@lab.example>",
    "MAIL FROM:<\"a\\\"b\"@lab.example>",
    "MAIL FROM:<\"ab@lab.example>",
    "MAIL FROM:<a@lab.exa mple>",
    "MAIL FROM:<a@lab.example> XVERP",
    "MAIL FROM:<a@lab.example> BODY=8BITMIME BODY=7BIT",
    "MAIL FROM:<a@lab.example> SIZE=1 SIZE=2",
    "MAIL FROM:<a@lab.example> SIZE=52428801",
    "mail from:<a@lab.example>",
    "MAIL FROM:<<a@lab.example>>",
    "MAIL FROM:<a@lab.example> =x",
    "MAIL FROM:<a@lab.example> ENVID=",
    "MAIL FROM:<a@lab.example> ENVID=a+ZZ",
    "MAIL FROM:<a@lab.example> ENVID=a b",
    "MAIL FROM:<a@lab.example> AUTH=x",
    "MAIL FROM:<a@lab.example> AUTH=",
    "MAIL FROM:<a@lab.example> SIZE",
    "MAIL FROM:<a b@x> FOO",
    "MAIL FROM:<a@lab.example> AUTH=a+ZZ",
    "MAIL FROM:<a@lab.example> SIZE=1 FOO",
    "MAIL FROM:<a@lab.example> FOO SIZE=x",
    "MAIL FROM:<a@lab.example> SIZE=x FOO",
    "MAIL FROM:<a@lab.example> RET=FULL ENVID=a+ZZ",
    "MAIL FROM:<a@lab.example> ret=full",
    "MAIL FROM:<a@lab.example> body=8bitmime",
    "MAIL FROM:<a@lab.example> ORCPT=rfc822;a",
    "MAIL FROM:\"a b\"@lab.example",
    "MAIL FROM:<a@lab.example>SIZE=1",
    "MAIL FROM:<a@lab.example> SIZE=0",
    "MAIL FROM:<a@lab.example> SIZE=00000000000000000000000001",
    "MAIL FROM:<a@lab.example> SIZE=10240000",
    "MAIL FROM:<\"\">",
    "MAIL FROM:<\"\"@lab.example>",
    "MAIL FROM:<a@lab.example.>",
    "MAIL FROM:<a@.lab.example>",
    "MAIL FROM:<a@lab..example>",
    "MAIL FROM:<a@-lab.example>",
    "MAIL FROM:<a@lab_x.example>",
    "MAIL FROM:<a@[IPv6:::1]>",
    "MAIL FROM:<a@[IPv6:zz]>",
    "MAIL FROM:<a@[1.2.3]>",
    "MAIL FROM:<a%b@lab.example>",
    "MAIL FROM:<a!b@lab.example>",
    "MAIL FROM:<b!a>",
    "MAIL FROM:<a.@lab.example>",
    "MAIL FROM:<.a@lab.example>",
    "MAIL FROM:<a\\b@lab.example>",
    "MAIL FROM:<a\tb@lab.example>",
    "MAIL FROM:< a@lab.example>",
    "MAIL FROM:<a@lab.example >",
    "MAIL FROM:<a@lab.example> SMTPUTF8=yes",
    "MAIL FROM:<a@lab.example> BODY=",
    "MAIL FROM:<a@lab.example> RET=",
    "MAIL FROM:<a@lab.example> ENVID=abc+2Bdef+3D",
    "MAIL FROM:<a@lab.example> ENVID=a+2b",
    "MAIL FROM:<a@lab.example> ENVID=a=b",
    "MAIL FROM:<postmaster>",
    "MAIL FROM:<a@b@c>",
    "MAIL FROM:<a:b@c>",
    "MAIL FROM:<@r1:a@lab.example>",
    "MAIL FROM:<@r1,r2:a@lab.example>",
    "MAIL FROM:<@:a@lab.example>",
    "MAIL FROM:<\"a@b\"@lab.example>",
    "MAIL FROM:<a<b@lab.example>",
    "MAIL FROM:<a@b@>",
    "MAIL FROM:<@>",
    "MAIL FROM:<a@@>",
    "MAIL FROM:<@@b>",
    "MAIL FROM:<a@b@@>",
    "MAIL FROM:<a@@b@c>",
    "MAIL FROM:<a@b@-c>",
    "MAIL FROM:<a@-b@c>",
    "MAIL FROM:<a@[1.2.3.4]@c>",
    "MAIL FROM:<a@b@[1.2.3]>",
    "MAIL FROM:<@a>",
    "MAIL FROM:<@-a>",
    "MAIL FROM:<\"a\"@>",
    "MAIL FROM:<a@b.>",
    "MAIL FROM:<a@b..>",
    "MAIL FROM:<a@1.2.3.4>",
    "MAIL FROM:<a@999.2.3.4>",
    "MAIL FROM:<a@123>",
    "MAIL FROM:<a@b-.c>",
    "MAIL FROM:<a@x.123>",
    "MAIL FROM:<a@[1.2.3.4>",
    "MAIL FROM:<a@1.2.3.4]>",
    "MAIL FROM:<a@[lab.example]>",
    "MAIL FROM:<a@[]>",
    "MAIL FROM:<a@\"b\">",
    "MAIL FROM:<a@b c>",
    "MAIL FROM:<a@b(c)>",
    "MAIL FROM:<a@b\\c>",
    "MAIL FROM:<a@b_c>",
    "MAIL FROM:<a@b/c>",
    "MAIL FROM:<a@b+c>",
    "MAIL FROM:<a@b#c>",
    "MAIL FROM:<a@b:c>",
    "MAIL FROM:<\"a b\">",
    "MAIL FROM:<a\"b\"@c>",
    "MAIL FROM:<\"a\"b@c>",
    "MAIL FROM:<\"a\".b@c>",
    "MAIL FROM:<a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example>",
    "MAIL FROM:<a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example>",
    "MAIL FROM:<a@[IPv6:1:2:3:4:5:6:7:8]>",
    "MAIL FROM:<a@[ipv6:::1]>",
    "MAIL FROM:<a@[IPv6:::ffff:1.2.3.4]>",
    "MAIL FROM:<a@[1.2.3.04]>",
    "MAIL FROM:<a@[01.2.3.4]>",
    "MAIL FROM:<a@[0.0.0.0]>",
    "MAIL FROM:<a@[255.255.255.255]>",
    "MAIL FROM:<a@[256.0.0.1]>",
    "MAIL FROM:<a@[127.0.0.1] >",
    "MAIL FROM:a b@c",
    "MAIL FROM:a@c b",
    "MAIL FROM:<a@c>>",
    "MAIL FROM:<a@c> >",
    "MAIL FROM:<a@-b@>",
    "MAIL FROM:<a@b@-c@>",
    "MAIL FROM:<@b@>",
    "MAIL FROM:<x@@@>",
    "MAIL FROM:<a@.@>",
    "MAIL FROM:<a.b@>",
    "MAIL FROM:<a b@>",
    "MAIL FROM:<\"\"@>",
    "MAIL FROM:<a@b@c@>",
    "MAIL FROM:<a@[1.2.3.4]@>",
    "MAIL FROM:<-@b@>",
    "MAIL FROM:<@:a@>",
    "MAIL FROM:<@r:@>",
    "MAIL FROM:<a@b.c.@>",
    "MAIL FROM:<-@b>",
    "MAIL FROM:<x-@b@>",
    "MAIL FROM:<-x@b@>",
    "MAIL FROM:<x@b@>",
    "MAIL FROM:<x.y@b@>",
    "MAIL FROM:<x_y@b@>",
    "MAIL FROM:<1.2.3.4@b@>",
    "MAIL FROM:<x@->",
    "MAIL FROM:<a@b@c@->",
    "MAIL FROM:<a@lab.example> SIZE=99999999999 FOO",
    "MAIL FROM:<a@lab.example> SIZE=999999999999999999999999 FOO",
    "MAIL FROM:<a@lab.example> SIZE=9223372036854775807",
    "MAIL FROM:<a@lab.example> SIZE=9223372036854775808",
    "MAIL FROM:<a@lab.example> foo=Bar",
    "MAIL FROM:<a@lab.example> BODY=8BITMIME SMTPUTF8",
    "MAIL FROM:<a(c)@lab.example>",
    "MAIL FROM:<a@lab.example> SIZE=1  ",
    "MAIL FROM:<@r:a@lab.example>",
    "MAIL FROM:<a@lab.example>>",
    "MAIL FROM:<a@lab.example> ENVID=a+ZZ SIZE=999999999999",
    "MAIL FROM:<a@lab.example> ENVID=\\x{41}",
    "RCPT TO:<b@lab.example>",
    "RCPT TO: <b@lab.example>",
    "RCPT TO:b@lab.example",
    "RCPT TO:<>",
    "RCPT TO:",
    "RCPT TO",
    "RCPT T:<b@lab.example>",
    "RCPT TO:<b@lab.example",
    "RCPT TO:<a b@lab.example>",
    "RCPT TO:<b@lab.example> NOTIFY=SUCCESS,FAILURE",
    "RCPT TO:<b@lab.example> NOTIFY=NEVER",
    "RCPT TO:<b@lab.example> NOTIFY=NEVER,SUCCESS",
    "RCPT TO:<b@lab.example> NOTIFY=success",
    "RCPT TO:<b@lab.example> NOTIFY=DELAY,DELAY",
    "RCPT TO:<b@lab.example> NOTIFY=",
    "RCPT TO:<b@lab.example> NOTIFY=FOO",
    "RCPT TO:<b@lab.example> NOTIFY=SUCCESS NOTIFY=FAILURE",
    "RCPT TO:<b@lab.example> NOTIFY=SUCCESS,",
    "RCPT TO:<b@lab.example> NOTIFY=,SUCCESS",
    "RCPT TO:<b@lab.example> ORCPT=rfc822;b@lab.example",
    "RCPT TO:<b@lab.example> ORCPT=rfc822;b+2B@lab.example",
    "RCPT TO:<b@lab.example> ORCPT=rfc822;b+ZZ@lab.example",
    "RCPT TO:<b@lab.example> ORCPT=rfc822",
    "RCPT TO:<b@lab.example> ORCPT=foo;bar",
    "RCPT TO:<b@lab.example> ORCPT=;b@x",
    "RCPT TO:<b@lab.example> ORCPT=rfc822;",
    "RCPT TO:<b@lab.example> ORCPT=utf-8;b@x",
    "RCPT TO:<b@lab.example> ORCPT=utf-8;b\\x{41}@x",
    "RCPT TO:<b@lab.example> ORCPT=rfc822;a ORCPT=rfc822;b",
    "RCPT TO:<b@lab.example> SIZE=10",
    "RCPT TO:<b@lab.example> BODY=8BITMIME",
    "RCPT TO:<b@lab.example> FOO",
    "RCPT TO:<@r1,@r2:b@lab.example>",
    "RCPT TO:<b@->",
    "RCPT TO:<b@>",
    "RCPT TO:<postmaster>",
    "RCPT TO:<Postmaster>",
    "RCPT TO:<-b@lab.example>",
    "RCPT TO:<b@lab.example> NOTIFY=SUCCESS FOO",
    "RCPT TO:<b@lab.example> FOO NOTIFY=x",
    "RCPT TO:<\"b\"@lab.example>",
    "RCPT TO:<b@lab.example>x",
    "RCPT TO:<b@lab.example>,<c@lab.example>",
    "RCPT TO:<nosuch@lab.example>",
    "RCPT TO:<b@localhost>",
]

# name -> the -o overrides for the address comparison.
ADDRESS_VARIANTS = {
    "lax": [],
    "strict": ["strict_rfc821_envelopes=yes"],
    "no_utf8": ["smtputf8_enable=no"],
}

# Replies the address checks give; anything else is a later check's.
ADDRESS_REPLY = re.compile(r"^(501|555|552) ")

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


def postfix_reply(port, form):
    """Postfix's reply to one MAIL form, or to a RCPT form after MAIL."""
    c = lab.Conn("127.0.0.1", port)
    try:
        c.reply()
        c.send(b"EHLO client.lab.example\r\n")
        c.reply()
        if not form.upper().startswith("MAIL"):
            c.send(b"MAIL FROM:<a@lab.example>\r\n")
            c.reply()
        c.send(form.encode("latin-1") + b"\r\n")
        return reply_text(c.reply())
    finally:
        c.close()


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
        names = list(VARIANTS) + ["unsafe"] + \
            ["addr_" + n for n in ADDRESS_VARIANTS]
        ports = free_ports(2 + len(names))
        env = dict(os.environ, PORT=str(ports[0]), REF_PORT=str(ports[1]),
                   LAB_MAIN_CF="relay_domains = relay.example\n"
                               "relay_transport = discard:lab relay\n")
        subprocess.run([os.path.join(ROOT, "scripts", "lab"), "up", cls.dir],
                       env=env, check=True, capture_output=True)
        cls.etc = os.path.join(cls.dir, "etc")
        cls.port = {}
        for name, port in zip(names, ports[2:]):
            if name == "unsafe":
                overrides = UNSAFE
            elif name.startswith("addr_"):
                overrides = ADDRESS_VARIANTS[name[len("addr_"):]]
            else:
                overrides = VARIANTS[name]
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

    def test_address_forms_agree_with_postfix(self):
        for name, overrides in ADDRESS_VARIANTS.items():
            out = self.run_probe(overrides, FORMS)
            self.assertEqual(out.returncode, 0, out.stderr)
            got = dict(l.split(" => ", 1) for l in out.stdout.splitlines())
            for form in FORMS:
                with self.subTest(variant=name, form=form):
                    want = postfix_reply(self.port["addr_" + name], form)
                    exp = want if ADDRESS_REPLY.match(want) else "OK"
                    self.assertEqual(got.get(form), exp,
                                     "%s: %r: postfix said %r" %
                                     (name, form, want))

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
