#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    test_compare - the same SMTP dialogues against our server and against
    Postfix's smtpd, replies and log lines side by side

DESCRIPTION
    Every file in dialogues/ is a scripted client session. It is run
    against the lab's PORT (ours when swapped) and REF_PORT (Postfix's
    smtpd) in the same run. The replies and the maillog lines of each
    session are normalized (queue ids, pids, times, ports, the process
    name, the banner host) and must match, except for the differences
    listed in EXPECTED_DIFFERENCES below, each with its reason.

    The reference side is also compared with its golden file in
    test/golden/compare/ (captured from Postfix 3.7): a mismatch there
    means the lab or the harness changed, not our server.
    RS_UPDATE_GOLDEN=1 rewrites the golden files from the reference.

DIALOGUE FILES
    One directive per line; "#" starts a comment line.
      > TEXT        send TEXT CRLF (after anything queued), read the
                    replies of everything queued plus this line
      + TEXT        queue TEXT CRLF, a command whose reply comes later
                    (pipelining)
      - TEXT        queue TEXT CRLF as message content (no reply)
      = N           queue N bytes of content lines (no reply)
      bdat N [LAST] queue "BDAT N [LAST]" and N content bytes (one reply)
      raw TEXT      queue TEXT with Python escapes (\\r, \\n), no reply
      flush         send what is queued and read its replies
      close         send what is queued, then close without reading
      wait          read replies until the server closes
    N may be an expression over {limit} (message_size_limit), e.g.
    {limit+1}. At the end the script reads until the server closes.

SEE ALSO
    lab.py, dialogues/, test/golden/compare/
"""

import difflib
import fnmatch
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DIALOGUES = os.path.join(HERE, "dialogues")
GOLDEN = os.path.join(HERE, "..", "golden", "compare")

# Differences we expect between resume-smtpd and Postfix's smtpd. Each
# entry: (dialogue glob, "reply" or "log", side "ours" or "ref", regex on
# the normalized line, reason). A matching line is dropped from that side
# before the comparison; anything else that differs fails the test.
EXPECTED_DIFFERENCES = [
    ("*", "reply", "ours", r"^S: 250-XRESUME( |$)",
     "resume-smtpd advertises its XRESUME extension after EHLO "
     "(docs: resume protocol); Postfix has none"),
    ("*", "log", "ours", r": resume: ",
     "resume events are new log lines of ours (STYLE.md: never extra "
     "fields on Postfix's lines)"),
]

# Limits of the waits of one session.
SESSION_TIMEOUT = 60.0
DISCONNECT_TIMEOUT = 15.0


def expand(expr, env):
    """Evaluate N of a directive: an integer or {name+k} / {name-k}."""
    def one(m):
        name, op, k = m.group(1), m.group(2), m.group(3)
        v = env[name]
        if op:
            v = v + int(k) if op == "+" else v - int(k)
        return str(v)
    return int(re.sub(r"\{(\w+)(?:([+-])(\d+))?\}", one, expr))


def expand_text(text, env):
    """TEXT of a command line with every {name+k} replaced by its value."""
    return re.sub(r"\{\w+(?:[+-]\d+)?\}",
                  lambda m: str(expand(m.group(0), env)), text)


def content(n):
    """n bytes of CRLF-terminated content lines (n >= 2)."""
    line = b"x" * 76 + b"\r\n"
    full, rest = divmod(n, len(line))
    out = line * full
    if rest == 1 and full:
        # One byte too many for whole lines: lengthen the last one.
        out = line * (full - 1) + b"x" * 77 + b"\r\n"
    elif rest >= 2:
        out += b"y" * (rest - 2) + b"\r\n"
    return out


def load_dialogue(path):
    """The directives of one dialogue file as (op, arg) pairs."""
    steps = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[:2] in ("> ", "+ ", "- ") or line in (">", "+", "-"):
                steps.append((line[0], line[2:]))
                continue
            op, _, arg = line.partition(" ")
            if op not in ("=", "bdat", "raw", "flush", "close", "wait"):
                raise ValueError("%s: bad directive: %r" % (path, line))
            steps.append((op, arg))
    return steps


def run_dialogue(the_lab, port, steps, env):
    """Run one dialogue on port; the transcript as a list of lines."""
    conn = lab.Conn(the_lab.host, port)
    transcript = []
    pending_out, pending_replies = b"", 0

    def read_replies(n):
        for _ in range(n):
            r = conn.reply()
            if not r:
                # Once closed, say so once, not for every later command.
                mark = "S: [closed]" if conn.closed else "S: [no reply]"
                if mark not in transcript[-1:]:
                    transcript.append(mark)
                return
            transcript.extend("S: " + l for l in r)

    # The banner first, unless the dialogue talks before it (then it is
    # read together with the first replies).
    early = steps and steps[0][0] == "raw"
    if not early:
        read_replies(1)
    try:
        for op, arg in steps:
            # A server that went silent answers nothing more: stop here
            # rather than wait for every later reply.
            if transcript[-1:] == ["S: [no reply]"]:
                break
            # The transcript keeps {limit} and the like as written, so
            # that it does not depend on the lab's settings.
            if op in (">", "+"):
                pending_out += expand_text(arg, env).encode("utf-8") + b"\r\n"
                pending_replies += 1
                transcript.append("C: " + arg)
            elif op == "-":
                pending_out += expand_text(arg, env).encode("utf-8") + b"\r\n"
            elif op == "=":
                pending_out += content(expand(arg, env))
                transcript.append("C: [%s content bytes]" % arg)
            elif op == "bdat":
                size, _, last = arg.partition(" ")
                n = expand(size, env)
                cmd = "BDAT %d%s" % (n, " " + last if last else "")
                pending_out += cmd.encode() + b"\r\n" + content(n)
                pending_replies += 1
                transcript.append("C: BDAT %s%s [+%s bytes]"
                                  % (size, " " + last if last else "", size))
            elif op == "raw":
                data = arg.encode("utf-8").decode("unicode_escape")
                pending_out += data.encode("latin-1")
                transcript.append("C: [raw] " + arg)
            elif op == "close":
                conn.send(pending_out)
                transcript.append("C: [close]")
                conn.close()
                return transcript
            elif op == "wait":
                conn.send(pending_out)
                pending_out = b""
                for r in conn.wait_closed():
                    transcript.extend("S: " + l for l in r)
                if "S: [closed]" not in transcript[-1:]:
                    transcript.append("S: [closed]")
                return transcript
            # ">" and "flush" send and read; "+" waits for them.
            if op in (">", "flush") or (op == "raw" and early):
                conn.send(pending_out)
                pending_out = b""
                if early:
                    read_replies(1)
                    early = False
                read_replies(pending_replies)
                pending_replies = 0
        if pending_out:
            conn.send(pending_out)
            read_replies(pending_replies)
        for r in conn.wait_closed(timeout=3):
            transcript.extend("S: " + l for l in r)
        if not conn.closed:
            transcript.append("C: [close]")
        return transcript
    finally:
        conn.close()


def session_log(the_lab, mark):
    """The maillog lines of the session that began at mark: wait for its
    disconnect line, then for the queue to drain and the log to settle."""
    try:
        the_lab.wait_log(mark, r"/smtpd\[\d+\]: disconnect from ",
                         timeout=DISCONNECT_TIMEOUT)
    except lab.LabError:
        pass  # a missing disconnect line shows in the comparison
    the_lab.wait_queue_empty(timeout=SESSION_TIMEOUT)
    return the_lab.wait_log_quiet(mark, quiet=0.4, timeout=SESSION_TIMEOUT)


def normalize(the_lab, transcript, log_lines):
    """(replies, smtpd log in order, other log lines sorted)."""
    norm = lab.Normalizer(the_lab.myhostname,
                          int(the_lab.postconf("message_size_limit")))
    replies = [norm.reply(l) for l in transcript]
    smtpd, other = [], []
    for line in log_lines:
        tag, text = norm.log(line)
        if lab.smtpd_tag(tag):
            smtpd.append("smtpd: " + text)
        else:
            other.append(tag.split("/")[-1] + ": " + text)
    return replies, smtpd, sorted(other)


def drop_expected(name, kind, side, lines):
    """lines without those EXPECTED_DIFFERENCES excuse on this side."""
    rules = [re.compile(rx) for glob, k, s, rx, _ in EXPECTED_DIFFERENCES
             if fnmatch.fnmatch(name, glob) and k == kind and s == side]
    return [l for l in lines if not any(r.search(l) for r in rules)]


def render(replies, smtpd, other):
    return ("== replies\n" + "\n".join(replies) + "\n"
            "== smtpd log\n" + "\n".join(smtpd) + "\n"
            "== other log (sorted)\n" + "\n".join(other) + "\n")


class Compare(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.lab = lab.from_env()
        lab.require_serving(cls.lab)
        lab.require_serving(cls.lab, cls.lab.ref_port)
        cls.env = {"limit": int(cls.lab.postconf("message_size_limit"))}

    def run_on(self, port, steps):
        """Transcript and log lines of one run of steps on port."""
        self.lab.wait_queue_empty()
        mark = self.lab.log_mark()
        transcript = run_dialogue(self.lab, port, steps, self.env)
        return normalize(self.lab, transcript, session_log(self.lab, mark))

    def check_dialogue(self, name):
        steps = load_dialogue(os.path.join(DIALOGUES, name + ".txt"))
        ours = self.run_on(self.lab.port, steps)
        ref = self.run_on(self.lab.ref_port, steps)

        # The reference against its golden file: catches drift of the lab
        # or of this harness before blaming our server.
        golden = os.path.join(GOLDEN, name + ".txt")
        text = render(*ref)
        if os.environ.get("RS_UPDATE_GOLDEN") == "1":
            os.makedirs(GOLDEN, exist_ok=True)
            with open(golden, "w", encoding="utf-8") as f:
                f.write(text)
        elif os.path.exists(golden):
            with open(golden, encoding="utf-8") as f:
                want = f.read()
            self.assertEqual(text, want, "reference side differs from %s"
                             % os.path.relpath(golden))

        # Ours against the reference, section by section.
        kinds = ("reply", "log", "log")
        got = [drop_expected(name, k, "ours", x) for k, x in zip(kinds, ours)]
        want = [drop_expected(name, k, "ref", x) for k, x in zip(kinds, ref)]
        if got != want:
            diff = "\n".join(difflib.unified_diff(
                render(*want).splitlines(), render(*got).splitlines(),
                "Postfix smtpd (port %d)" % self.lab.ref_port,
                "under test (port %d)" % self.lab.port, lineterm=""))
            self.fail("dialogue %s differs:\n%s" % (name, diff))


def _add_tests():
    """One test method per dialogue file, named after it."""
    for fn in sorted(os.listdir(DIALOGUES)):
        if not fn.endswith(".txt"):
            continue
        name = fn[:-4]

        def test(self, name=name):
            self.check_dialogue(name)
        test.__doc__ = "dialogue %s matches Postfix's smtpd" % name
        setattr(Compare, "test_" + name, test)


_add_tests()

if __name__ == "__main__":
    lab.run_main()
