# SPDX-License-Identifier: MIT
"""NAME
    lab - helpers for the integration tests against a Postfix lab

DESCRIPTION
    The tests run against a lab started by scripts/lab (scripts/test does
    that). This module finds it from the environment, sends mail with
    smtplib, swaks and smtp-source, waits for the queue, reads Maildirs
    and the maillog, normalizes log lines for comparisons and finds the
    lab's processes (by MAIL_CONFIG in their environment, never by name:
    other Postfix instances run on the same machine).

ENVIRONMENT
    RS_LAB_DIR    the lab directory (required; tests are skipped without)
    RS_BIN        resume-smtpd, when swapped in (informational)
    RS_BUILD_DIR  the CMake build directory
    RS_TARGET_PORT  the port under test (default: the lab's PORT)

SEE ALSO
    scripts/lab, test/integration/test_*.py
"""

import json
import os
import re
import select
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import unittest

# Every wait in the tests is bounded by one of these, so that a hung
# server fails a test instead of hanging CTest.
REPLY_TIMEOUT = 15.0
QUEUE_TIMEOUT = 30.0
MAILDIR_TIMEOUT = 30.0
LOG_TIMEOUT = 15.0


class LabError(Exception):
    """A lab precondition that does not hold (not running, bad state)."""


def _read_env_file(path):
    """The KEY=VALUE pairs of DIR/lab.env as a dict."""
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep:
                env[key] = value
    return env


class Lab:
    """One running lab instance (scripts/lab up DIR)."""

    def __init__(self, lab_dir):
        self.dir = os.path.realpath(lab_dir)
        self.etc = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "spool")
        self.maillog = os.path.join(self.dir, "log", "maillog")
        self.maildir_root = os.path.join(self.dir, "Maildir")
        state = _read_env_file(os.path.join(self.dir, "lab.env"))
        self.port = int(state.get("PORT", "2525"))
        self.ref_port = int(state.get("REF_PORT", str(self.port + 1)))
        # RS_TARGET_PORT points the suites elsewhere, e.g. at REF_PORT to
        # check a test itself against Postfix's smtpd.
        self.port = int(os.environ.get("RS_TARGET_PORT") or self.port)
        self.tls = state.get("LAB_TLS", "0") == "1"
        self.swap_bin = state.get("SWAP_BIN", "")
        self.bin = os.environ.get("RS_BIN", "")
        self.build_dir = os.environ.get("RS_BUILD_DIR", "")
        self.host = "127.0.0.1"
        self._conf = {}

    # ---- configuration -------------------------------------------------

    def postconf(self, name):
        """The effective main.cf value of one parameter."""
        if name not in self._conf:
            out = subprocess.run(
                ["postconf", "-c", self.etc, "-h", name],
                capture_output=True, text=True, check=True)
            self._conf[name] = out.stdout.strip()
        return self._conf[name]

    @property
    def domain(self):
        return self.postconf("mydomain")

    @property
    def myhostname(self):
        return self.postconf("myhostname")

    def addr(self, user):
        """user@the lab domain."""
        return "%s@%s" % (user, self.domain)

    @property
    def swapped(self):
        """True when our binary, not Postfix's smtpd, serves self.port."""
        return bool(self.swap_bin)

    # ---- processes -----------------------------------------------------

    def master_pid(self):
        """The pid of this lab's master, or None when it does not run."""
        try:
            with open(os.path.join(self.spool, "pid", "master.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if pid in self.pids() else None

    def pids(self):
        """Live pids of this lab (MAIL_CONFIG=DIR/etc), zombies excluded."""
        want = b"MAIL_CONFIG=" + self.etc.encode()
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % name, "rb") as f:
                    if want not in f.read().split(b"\0"):
                        continue
                if proc_stat(int(name))["state"] == "Z":
                    continue
            except OSError:
                continue
            found.append(int(name))
        return found

    def processes(self):
        """{pid: {"comm", "ppid", "state", "exe"}} for this lab's pids."""
        out = {}
        for pid in self.pids():
            try:
                info = proc_stat(pid)
                info["exe"] = os.readlink("/proc/%d/exe" % pid)
            except OSError:
                continue
            out[pid] = info
        return out

    def children_named(self, comm):
        """Children of master whose process name is comm (e.g. cleanup)."""
        mpid = self.master_pid()
        return [pid for pid, p in self.processes().items()
                if p["ppid"] == mpid and p["comm"] == comm]

    def postfix(self, *args, check=True):
        """Run postfix -c DIR/etc ARGS (reload, stop, start, flush)."""
        return subprocess.run(["postfix", "-c", self.etc] + list(args),
                              capture_output=True, text=True, check=check)

    # ---- queue ---------------------------------------------------------

    def queue(self):
        """The queue as a list of postqueue -j records."""
        out = subprocess.run(["postqueue", "-c", self.etc, "-j"],
                             capture_output=True, text=True, check=True)
        return [json.loads(l) for l in out.stdout.splitlines() if l.strip()]

    def queue_listing(self):
        """postqueue -p output, for messages in failure reports."""
        return subprocess.run(["postqueue", "-c", self.etc, "-p"],
                              capture_output=True, text=True).stdout

    def queue_files(self, stale_after=10.0):
        """Queue files of messages: everything in active, deferred, hold
        and maildrop, and those in incoming that are complete (owner x
        bit, set by cleanup when done) or still being written. A partial
        file abandoned for stale_after seconds (its cleanup died) is not
        a message: see incomplete_files()."""
        files = []
        now = time.time()
        for q in ("incoming", "active", "deferred", "hold", "maildrop"):
            for root, _, names in os.walk(os.path.join(self.spool, q)):
                for n in names:
                    p = os.path.join(root, n)
                    try:
                        st = os.stat(p)
                    except OSError:
                        continue
                    if (q == "incoming" and not st.st_mode & 0o100
                            and now - st.st_mtime > stale_after):
                        continue
                    files.append(p)
        return files

    def incomplete_files(self):
        """Partial files in incoming (cleanup never finished them)."""
        out = []
        for root, _, names in os.walk(os.path.join(self.spool, "incoming")):
            for n in names:
                p = os.path.join(root, n)
                try:
                    if not os.stat(p).st_mode & 0o100:
                        out.append(p)
                except OSError:
                    pass
        return out

    def wait_queue_empty(self, timeout=QUEUE_TIMEOUT):
        """Wait until no message is queued (incoming included)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.queue_files():
                return True
            time.sleep(0.1)
        raise LabError("queue not empty after %ss:\n%s"
                       % (timeout, self.queue_listing()))

    def postcat(self, queue_id):
        """postcat -q of one queued message (e.g. held), as text."""
        return subprocess.run(
            ["postcat", "-c", self.etc, "-q", queue_id],
            capture_output=True, text=True, errors="replace").stdout

    def postsuper(self, *args):
        return subprocess.run(["postsuper", "-c", self.etc] + list(args),
                              capture_output=True, text=True)

    # ---- Maildir -------------------------------------------------------

    def maildir(self, user):
        """[(path, bytes)] of delivered messages of user, oldest first."""
        new = os.path.join(self.maildir_root, user, "new")
        cur = os.path.join(self.maildir_root, user, "cur")
        paths = []
        for d in (new, cur):
            if os.path.isdir(d):
                paths.extend(os.path.join(d, n) for n in os.listdir(d))
        paths.sort(key=lambda p: (os.stat(p).st_mtime_ns, p))
        out = []
        for p in paths:
            with open(p, "rb") as f:
                out.append((p, f.read()))
        return out

    def clear_maildir(self, user):
        """Remove user's delivered messages, so a test starts from zero."""
        for p, _ in self.maildir(user):
            os.unlink(p)

    def wait_maildir(self, user, count, timeout=MAILDIR_TIMEOUT):
        """Wait until user has at least count messages; return them all."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.maildir(user)
            if len(msgs) >= count:
                return msgs
            if time.monotonic() >= deadline:
                raise LabError("%s has %d messages, want %d; queue:\n%s"
                               % (user, len(msgs), count,
                                  self.queue_listing()))
            time.sleep(0.1)

    # ---- maillog -------------------------------------------------------

    def log_mark(self):
        """The current end of the maillog, for log_since()."""
        try:
            return os.path.getsize(self.maillog)
        except OSError:
            return 0

    def log_since(self, mark):
        """Lines written to the maillog since mark."""
        try:
            with open(self.maillog, "rb") as f:
                f.seek(mark)
                data = f.read()
        except OSError:
            return []
        return data.decode("utf-8", "replace").splitlines()

    def wait_log(self, mark, pattern, count=1, timeout=LOG_TIMEOUT):
        """Wait for count lines matching pattern since mark; all lines."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_since(mark)
            if sum(1 for l in lines if rx.search(l)) >= count:
                return lines
            if time.monotonic() >= deadline:
                raise LabError("no %d x /%s/ in maillog; got:\n%s"
                               % (count, pattern, "\n".join(lines)))
            time.sleep(0.05)

    def wait_log_quiet(self, mark, quiet=0.3, timeout=LOG_TIMEOUT):
        """Wait until the maillog has not grown for quiet seconds."""
        deadline = time.monotonic() + timeout
        size, since = self.log_mark(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.log_mark()
            if now != size:
                size, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return self.log_since(mark)

    # ---- clients -------------------------------------------------------

    def smtp(self, port=None, starttls=False, ehlo="client.lab.example"):
        """An smtplib.SMTP connected (and EHLO'd, maybe STARTTLS'd)."""
        s = smtplib.SMTP(self.host, port or self.port,
                         local_hostname=ehlo, timeout=REPLY_TIMEOUT)
        s.ehlo()
        if starttls:
            s.starttls(context=insecure_tls_context())
            s.ehlo()
        return s

    def send(self, msg, rcpts, sender=None, port=None, starttls=False,
             bdat=False, mail_options=(), rcpt_options=(), chunks=None):
        """Send msg (bytes, CRLF lines) with smtplib; the final reply as
        (code, text).

        DATA goes through smtplib (which dot-stuffs). bdat=True sends the
        message as BDAT chunks instead (smtplib knows no CHUNKING):
        chunks is a list of chunk sizes, the rest goes in the last one."""
        sender = sender if sender is not None else self.addr("a")
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        with self.smtp(port, starttls) as s:
            code, text = s.mail(sender, list(mail_options))
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, text, sender)
            for r in rcpts:
                code, text = s.rcpt(r, list(rcpt_options))
                if code not in (250, 251):
                    raise smtplib.SMTPRecipientsRefused({r: (code, text)})
            if bdat:
                parts, rest = [], msg
                for n in chunks or ():
                    parts.append(rest[:n])
                    rest = rest[n:]
                parts.append(rest)
                reply = bdat_send(s, parts)
            else:
                reply = s.data(msg)
            if reply[0] != 250:
                raise smtplib.SMTPDataError(*reply)
            s.quit()
            return reply[0], reply[1].decode("utf-8", "replace")

    def swaks(self, *args, port=None, check=True, stdin=None):
        """Run swaks against the lab; CompletedProcess (text)."""
        cmd = ["swaks", "--server", self.host, "--port",
               str(port or self.port), "--timeout", "20"] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True,
                           errors="replace", input=stdin, timeout=120)
        if check and r.returncode != 0:
            raise LabError("swaks failed (%d): %s\n%s"
                           % (r.returncode, " ".join(cmd), r.stdout + r.stderr))
        return r

    def smtp_source(self, *args, port=None, check=True):
        """Run smtp-source against the lab; CompletedProcess (text)."""
        cmd = (["smtp-source"] + list(args)
               + ["%s:%d" % (self.host, port or self.port)])
        r = subprocess.run(cmd, capture_output=True, text=True,
                           errors="replace", timeout=300)
        if check and r.returncode != 0:
            raise LabError("smtp-source failed (%d): %s\n%s"
                           % (r.returncode, " ".join(cmd), r.stdout + r.stderr))
        return r


def from_env():
    """The Lab named by RS_LAB_DIR; raise SkipTest without one."""
    d = os.environ.get("RS_LAB_DIR")
    if not d:
        raise unittest.SkipTest("RS_LAB_DIR is not set (see scripts/test)")
    lab = Lab(d)
    if lab.master_pid() is None:
        raise LabError("no lab running in %s (scripts/lab up %s)" % (d, d))
    return lab


def require_serving(the_lab, port=None, timeout=20.0):
    """Raise LabError unless port answers a banner and EHLO: a suite
    then fails once, quickly, instead of timing out command by command
    (a crashing server is throttled by master for service_throttle_time)."""
    port = port or the_lab.port
    mark = the_lab.log_mark()
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            c = Conn(the_lab.host, port, timeout=5)
            try:
                banner = c.reply()
                c.send(b"EHLO client.lab.example\r\n")
                ehlo = c.reply()
                c.send(b"QUIT\r\n")
                c.reply()
            finally:
                c.close()
            if banner[-1:] and banner[-1].startswith("220") \
                    and ehlo[-1:] and ehlo[-1].startswith("250 "):
                return
            last = "banner %r, EHLO %r" % (banner, ehlo)
        except OSError as e:
            last = str(e)
        time.sleep(1)
    complaints = [l for l in the_lab.log_since(mark)
                  if "master[" in l or "fatal:" in l or "panic:" in l]
    raise LabError("port %d does not serve SMTP (%s); maillog:\n%s"
                   % (port, last, "\n".join(complaints[-10:])))


def proc_stat(pid):
    """comm, state and ppid of pid from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    # comm is in parentheses and may itself contain spaces or ')'.
    lpar, rpar = data.index("("), data.rindex(")")
    rest = data[rpar + 2:].split()
    return {"comm": data[lpar + 1:rpar], "state": rest[0],
            "ppid": int(rest[1])}


def server_pid(port, client_port):
    """The pid of the process holding the server end of the TCP
    connection from 127.0.0.1:client_port to port (None if not found)."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established",
         "( sport = :%d and dport = :%d )" % (port, client_port)],
        capture_output=True, text=True).stdout
    m = re.search(r"pid=(\d+)", out)
    return int(m.group(1)) if m else None


def socket_inodes(pid):
    """The inodes of the sockets pid has open."""
    inodes = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def unix_peers():
    """{inode: peer inode} of every connected UNIX-domain socket."""
    out = subprocess.run(["ss", "-Hxn"], capture_output=True,
                         text=True).stdout
    peers = {}
    for line in out.splitlines():
        f = line.split()
        # Netid State Recv-Q Send-Q Local Inode Peer Inode
        if len(f) >= 8 and f[5].isdigit() and f[7].isdigit():
            peers[int(f[5])] = int(f[7])
    return peers


def connected_to(pid, candidates):
    """Those candidate pids that hold a UNIX socket whose peer pid holds
    (e.g. the cleanup process an smtpd is writing a message to)."""
    mine = socket_inodes(pid)
    peers = unix_peers()
    return [c for c in candidates
            if any(peers.get(i) in mine for i in socket_inodes(c))]


def insecure_tls_context():
    """A client context for the lab's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def bdat_send(s, chunks):
    """Send chunks as BDAT commands on smtplib.SMTP s, the last one LAST.

    All chunks go out pipelined, then one reply per chunk is read; the
    reply to the LAST chunk is returned."""
    out = b""
    for i, c in enumerate(chunks):
        last = " LAST" if i == len(chunks) - 1 else ""
        out += b"BDAT %d%s\r\n" % (len(c), last.encode()) + c
    s.send(out)
    reply = None
    for _ in chunks:
        reply = s.getreply()
    return reply


# ---- raw dialogues ------------------------------------------------------

class Conn:
    """A raw SMTP connection: exact bytes out, complete replies in."""

    def __init__(self, host, port, timeout=REPLY_TIMEOUT, source=None):
        # source: a local address to connect from (another 127.x.y.z
        # looks like another client network).
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.timeout = timeout
        self.buf = b""
        self.closed = False
        self.tls = None

    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        """Send bytes; a reset connection is recorded, not raised."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def _fill(self, deadline):
        """Read more bytes; False on EOF or timeout."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return False
        try:
            data = self.sock.recv(65536)
        except (OSError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def reply(self, timeout=None):
        """One complete reply as a list of text lines (CRLF stripped);
        [] when the server closed or said nothing within timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            while b"\n" not in self.buf:
                if self.closed or not self._fill(deadline):
                    return lines
            line, _, self.buf = self.buf.partition(b"\n")
            text = line.rstrip(b"\r").decode("utf-8", "replace")
            lines.append(text)
            # The last line of a reply has a space (or nothing) after
            # the code; "250-" continues.
            if len(text) < 4 or text[3] != "-":
                return lines

    def wait_closed(self, timeout=None):
        """Read until the server closes; the replies seen meanwhile."""
        replies = []
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.closed and time.monotonic() < deadline:
            r = self.reply(timeout=max(0.01, deadline - time.monotonic()))
            if r:
                replies.append(r)
        return replies

    def starttls(self):
        """Wrap the socket in TLS after a 220 to STARTTLS."""
        self.sock = insecure_tls_context().wrap_socket(self.sock)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True


# ---- log normalization --------------------------------------------------

# maillog_file line: "Mon DD HH:MM:SS host tag[pid]: text".
_LOG_LINE = re.compile(
    r"^(?P<time>\w{3} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"(?P<tag>[^\[\s]+)\[(?P<pid>\d+)\]: (?P<text>.*)$")
# Short queue ids (hex) and long ones (base 52 ... z ...).
_QID = r"(?:[0-9A-F]{6,}|[0-9A-Za-z]{10,}z[0-9A-Za-z]+)"
_QID_AT_START = re.compile(r"^((?:warning|error|fatal|panic): )?(%s)(?=: )"
                           % _QID)
_QID_QUEUED = re.compile(r"(queued as |orig_queue_id=|with E?SMTPS?A? id )(%s)"
                         % _QID)


def parse_log_line(line):
    """(tag, pid, text) of a maillog line, or None."""
    m = _LOG_LINE.match(line)
    if not m:
        return None
    return m.group("tag"), int(m.group("pid")), m.group("text")


class Normalizer:
    """Replaces what differs from run to run by stable placeholders.

    Queue ids become QID1, QID2, ... in order of first appearance, so two
    runs that handle their messages alike normalize to the same text."""

    def __init__(self, myhostname=None, size_limit=None):
        self.qids = {}
        self.myhostname = myhostname
        self.size_limit = size_limit

    def qid(self, q):
        if q not in self.qids:
            self.qids[q] = "QID%d" % (len(self.qids) + 1)
        return self.qids[q]

    def text(self, s):
        """Normalize one piece of text: a log text or a reply line."""
        s = _QID_AT_START.sub(
            lambda m: (m.group(1) or "") + self.qid(m.group(2)), s)
        s = _QID_QUEUED.sub(lambda m: m.group(1) + self.qid(m.group(2)), s)
        # A queue id seen before, wherever else it shows up.
        for q, name in self.qids.items():
            if q in s:
                s = re.sub(r"\b%s\b" % re.escape(q), name, s)
        # Client ports, when smtpd_client_port_logging is on.
        s = re.sub(r"\](:\d+)", "]:PORT", s)
        # Times and delays that depend on the machine's speed.
        s = re.sub(r"delay=[\d.]+", "delay=T", s)
        s = re.sub(r"delays=[\d./]+", "delays=T", s)
        s = re.sub(r"conn_use=\d+", "conn_use=N", s)
        # Message-ids cleanup makes up from the time and a pid.
        s = re.sub(r"message-id=<\d{14}\.\w+@", "message-id=<GEN@", s)
        # Sizes include the Received: header, whose queue id may differ
        # in length between runs.
        s = re.sub(r"\bsize=\d+", "size=N", s)
        # Byte counts in "lost connection after DATA (N bytes)" are kept.
        return s

    def reply(self, line):
        """Normalize a reply line: queue id, banner/EHLO host part."""
        s = self.text(line)
        if self.myhostname:
            s = s.replace(self.myhostname, "MYHOSTNAME")
        # The EHLO SIZE value is the lab's message_size_limit: name it, so
        # that transcripts do not depend on how the lab was set up.
        if self.size_limit is not None:
            s = re.sub(r"^(S: 250[ -]SIZE) %d$" % self.size_limit,
                       r"\1 MESSAGE_SIZE_LIMIT", s)
        return s

    def log(self, line):
        """(tag, text) of a normalized maillog line, pid and time gone.

        The smtpd tag stays "postfix/smtpd" whatever the binary is named;
        any other name for the SMTP server becomes "postfix/smtpd" too,
        since comparisons ask whether the text matches."""
        p = parse_log_line(line)
        if p is None:
            return ("?", self.text(line))
        tag, _, text = p
        return (tag, self.text(text))


def smtpd_tag(tag):
    """True for the tag of an SMTP server process (ours or Postfix's)."""
    return tag.endswith("/smtpd") or "resume-smtpd" in tag


def run_main(module_name="__main__"):
    """unittest main with a plain final "N passed, N failed" line;
    arguments, if any, select the tests whose names contain one."""
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(sys.modules[module_name])
    # Arguments select tests by a part of their name.
    if len(sys.argv) > 1:
        def pick(s):
            for t in s:
                if isinstance(t, unittest.TestSuite):
                    yield from pick(t)
                elif any(a in t.id() for a in sys.argv[1:]):
                    yield t
        suite = unittest.TestSuite(list(pick(suite)))
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    passed = max(0, result.testsRun - failed - skipped)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed else 0)
