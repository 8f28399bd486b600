# SPDX-License-Identifier: MIT
"""NAME
    test_master - the master(8) child skeleton under a real Postfix master

DESCRIPTION
    Starts a private lab (scripts/lab up) in _lab-master with PORT 3625,
    adds echo-daemon services (test/tools/echo-daemon, built on
    common/mail/master.h) to its master.cf on 127.0.0.1:3627..3631 and a
    UNIX socket, and checks what master(8) and the skeleton do together:
    banners, one process per client with smtpd_sessions_per_process=1
    and max_use, one shared process with a limit of 5, max_idle, -o
    stress=yes, the unix and pass (behind postscreen) transports, and
    that reload and stop end the processes with no master warning.

    The lab named by RS_LAB_DIR is not touched: this test rewrites
    master.cf, so it uses its own.

ENVIRONMENT
    RS_BUILD_DIR     the build directory holding test/tools/echo-daemon
    RS_ECHO_DAEMON   another echo-daemon binary (overrides RS_BUILD_DIR)
    RS_MASTER_LAB    the lab directory (default: _lab-master in the tree)

SEE ALSO
    test/tools/echo-daemon.cc, scripts/lab, test/integration/lab.py
"""

import collections
import os
import re
import socket
import subprocess
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as labmod  # noqa: E402

TREE = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LAB_PORT = 3625
HOST = "127.0.0.1"
P_SINGLE = 3627   # 1 session per process, max_use=2
P_SHARED = 3628   # 5 sessions per process
P_IDLE = 3629     # max_idle=2s
P_STRESS = 3630   # -o stress=yes
P_SCREEN = 3631   # postscreen in front of a pass service
P_ALONE = 3632    # echo-daemon -L, without master
TIMEOUT = 10.0
BANNER = re.compile(r"^220 echo pid=(\d+) sessions=(\d+)$")

# master's complaints about a child: none may appear for our services.
MASTER_WARNING = re.compile(
    r"master\[\d+\]: warning: .*(exit status|killed by signal"
    r"|bad command startup|ignoring status update)")


def echo_binary():
    path = os.environ.get("RS_ECHO_DAEMON")
    if not path:
        build = os.environ.get("RS_BUILD_DIR") or os.path.join(
            TREE, "build")
        path = os.path.join(build, "test", "tools", "echo-daemon")
    return os.path.realpath(path)


class Client:
    """A line client of echo-daemon: CRLF requests, one-line replies."""

    def __init__(self, port=None, unix_path=None):
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(TIMEOUT)
            self.sock.connect(unix_path)
        else:
            self.sock = socket.create_connection((HOST, port), TIMEOUT)
        self.buf = b""
        self.banner = self.line()
        m = BANNER.match(self.banner)
        if not m:
            raise AssertionError("got banner %r, want %s"
                                 % (self.banner, BANNER.pattern))
        self.pid, self.sessions = int(m.group(1)), int(m.group(2))

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise AssertionError("connection closed; got %r" % self.buf)
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode()

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def quit(self):
        reply = self.cmd("QUIT")
        # The server closes after 221; wait for it so its session is over.
        while self.sock.recv(4096):
            pass
        self.sock.close()
        return reply

    def close(self):
        self.sock.close()


def alive(pid):
    """True while pid runs (a zombie waiting to be reaped is gone)."""
    try:
        return labmod.proc_stat(pid)["state"] != "Z"
    except OSError:
        return False


def wait_gone(pid, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def listening(port):
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port],
                         capture_output=True, text=True).stdout
    return bool(out.strip())


class MasterSkeletonTest(unittest.TestCase):
    made_dir = False

    @classmethod
    def setUpClass(cls):
        cls.echo = echo_binary()
        if not os.access(cls.echo, os.X_OK):
            raise unittest.SkipTest("no echo-daemon at %s" % cls.echo)
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (postfix start)")
        for p in (LAB_PORT, LAB_PORT + 1, P_SINGLE, P_SHARED, P_IDLE,
                  P_STRESS, P_SCREEN, P_ALONE):
            if listening(p):
                raise unittest.SkipTest("port %d is in use" % p)
        # The lab's daemons run as postfix and nobody: every ancestor of
        # its directory must be o+x, which a clone's location need not be.
        cls.dir = os.environ.get("RS_MASTER_LAB")
        if not cls.dir:
            cls.dir = tempfile.mkdtemp(prefix="rs-master-lab-",
                                       dir="/var/tmp")
            os.chmod(cls.dir, 0o755)
            cls.made_dir = True
        env = dict(os.environ, PORT=str(LAB_PORT))
        subprocess.run([os.path.join(TREE, "scripts", "lab"), "up", cls.dir],
                       env=env, check=True, capture_output=True)
        cls.lab = labmod.Lab(cls.dir)

        # master prepends daemon_directory even to an absolute command.
        daemon_dir = subprocess.run(
            ["postconf", "-c", cls.lab.etc, "-h", "daemon_directory"],
            capture_output=True, text=True, check=True).stdout.strip()
        rel = os.path.relpath(cls.echo, daemon_dir)
        entries = [
            "%s:%d/inet = %s:%d inet n - n - - %s"
            " -o smtpd_sessions_per_process=1 -o max_use=2"
            % (HOST, P_SINGLE, HOST, P_SINGLE, rel),
            "%s:%d/inet = %s:%d inet n - n - - %s"
            " -o smtpd_sessions_per_process=5"
            % (HOST, P_SHARED, HOST, P_SHARED, rel),
            "%s:%d/inet = %s:%d inet n - n - - %s -o max_idle=2s"
            % (HOST, P_IDLE, HOST, P_IDLE, rel),
            "%s:%d/inet = %s:%d inet n - n - - %s -o stress=yes"
            % (HOST, P_STRESS, HOST, P_STRESS, rel),
            "%s:%d/inet = %s:%d inet n - n - 1 postscreen"
            " -o smtpd_service_name=echopass"
            % (HOST, P_SCREEN, HOST, P_SCREEN),
            "echopass/pass = echopass pass - - n - - %s" % rel,
            "echounix/unix = echounix unix - - n - - %s" % rel,
        ]
        for e in entries:
            subprocess.run(["postconf", "-c", cls.lab.etc, "-M", e],
                           check=True)
        cls.mark = cls.lab.log_mark()
        cls.lab.postfix("reload")
        deadline = time.monotonic() + TIMEOUT
        while not all(listening(p) for p in
                      (P_SINGLE, P_SHARED, P_IDLE, P_STRESS, P_SCREEN)):
            if time.monotonic() > deadline:
                raise labmod.LabError("echo services do not listen")
            time.sleep(0.1)
        cls.unix_path = os.path.join(cls.lab.spool, "private", "echounix")

    @classmethod
    def tearDownClass(cls):
        subprocess.run([os.path.join(TREE, "scripts", "lab"), "down",
                        cls.dir], capture_output=True)
        if cls.made_dir:
            shutil.rmtree(cls.dir, ignore_errors=True)

    def assert_log_clean(self):
        lines = self.lab.log_since(self.mark)
        bad = [l for l in lines if MASTER_WARNING.search(l)
               or re.search(r"echo-daemon\[\d+\]: (fatal|panic):", l)]
        self.assertEqual(bad, [], "master or echo-daemon complained")

    def test_banner_on_each_inet_service(self):
        for port in (P_SINGLE, P_SHARED, P_IDLE):
            c = Client(port)
            self.assertEqual(c.cmd("hello"), "250 hello")
            self.assertEqual(c.quit(), "221 bye")

    def test_sessions_log_through_postlog(self):
        mark = self.lab.log_mark()
        c = Client(P_SINGLE)
        port = c.sock.getsockname()[1]
        c.quit()
        self.lab.wait_log(mark, r"postfix/echo-daemon\[%d\]: connect from "
                          r"127\.0\.0\.1:%d$" % (c.pid, port))

    def test_stress_option_is_accepted(self):
        c = Client(P_STRESS)
        self.assertEqual(c.cmd("stress"), "250 stress")
        c.quit()
        self.assert_log_clean()

    def test_one_process_per_client_with_limit_1(self):
        clients = [Client(P_SINGLE) for _ in range(3)]
        pids = {c.pid for c in clients}
        self.assertEqual(len(pids), 3, "got pids %s, want 3 distinct" % pids)
        self.assertTrue(all(c.sessions == 1 for c in clients))
        for c in clients:
            c.quit()

    def test_max_use_2_ends_a_process_after_two_sessions(self):
        uses = collections.Counter()
        for _ in range(8):
            c = Client(P_SINGLE)
            uses[c.pid] += 1
            c.quit()
            # Let the process finish its accounting before the next
            # client, so that the next accept sees the new state.
            time.sleep(0.05)
        self.assertTrue(all(n <= 2 for n in uses.values()),
                        "sessions per pid: %s, want at most 2" % dict(uses))
        twice = [pid for pid, n in uses.items() if n == 2]
        self.assertTrue(twice, "no process served 2 sessions: %s"
                        % dict(uses))
        for pid in twice:
            self.assertTrue(wait_gone(pid), "pid %d still runs after its "
                            "second session" % pid)
        self.assert_log_clean()

    def test_five_clients_share_one_process_with_limit_5(self):
        clients = [Client(P_SHARED) for _ in range(5)]
        pids = {c.pid for c in clients}
        self.assertEqual(len(pids), 1, "got pids %s, want one" % pids)
        self.assertEqual([c.sessions for c in clients], [1, 2, 3, 4, 5])

        # Full: it told master TAKEN, so master forks another process.
        sixth = Client(P_SHARED)
        self.assertNotIn(sixth.pid, pids)
        for c in clients + [sixth]:
            c.quit()

    def test_max_idle_2s_ends_an_idle_process(self):
        c = Client(P_IDLE)
        pid = c.pid
        c.quit()
        start = time.monotonic()
        self.assertTrue(wait_gone(pid, 6.0), "pid %d still runs" % pid)
        self.assertGreater(time.monotonic() - start, 1.0,
                           "exited before max_idle")
        self.assert_log_clean()

    def test_unix_transport_client_is_local(self):
        c = Client(unix_path=self.unix_path)
        info = c.cmd("INFO")
        self.assertTrue(info.startswith("250 client=127.0.0.1:0 "), info)
        c.quit()

    def test_pass_transport_behind_postscreen(self):
        c = Client(P_SCREEN)
        local_port = c.sock.getsockname()[1]
        info = c.cmd("INFO")
        want = "250 client=%s:%d server=%s:%d family=%d" % (
            HOST, local_port, HOST, P_SCREEN, socket.AF_INET)
        self.assertTrue(info.startswith(want), "got %r, want %r..."
                        % (info, want))
        c.quit()

    def test_reload_lets_sessions_finish_then_exits(self):
        old = Client(P_SHARED)
        self.assertEqual(old.cmd("SLEEP"), "250 sleeping")
        mark = self.lab.log_mark()
        self.lab.postfix("reload")
        self.lab.wait_log(mark, r"master\[\d+\]: reload")

        # The process master knew exits at once, so that master starts a
        # new one for new clients; a detached child finishes the session
        # and knows it is leaving.
        self.assertTrue(wait_gone(old.pid), "pid %d still runs after "
                        "reload" % old.pid)
        info = old.cmd("INFO")
        self.assertTrue(info.endswith("draining=1"), info)
        drainer = int(re.search(r"pid=(\d+)", info).group(1))
        new = Client(P_SHARED)
        self.assertNotIn(new.pid, (old.pid, drainer))
        old.quit()
        self.assertTrue(wait_gone(drainer), "draining pid %d still runs"
                        % drainer)
        new.quit()
        self.assert_log_clean()

    def test_standalone_S_serves_stdin_stdout(self):
        env = dict(os.environ, MAIL_CONFIG=self.lab.etc)
        r = subprocess.run([self.echo, "-S"], input=b"hello\r\nQUIT\r\n",
                           env=env, capture_output=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.decode().split("\r\n")
        self.assertRegex(lines[0], BANNER)
        self.assertEqual(lines[1:], ["250 hello", "221 bye", ""])

    def test_standalone_L_listens_until_SIGTERM(self):
        env = dict(os.environ, MAIL_CONFIG=self.lab.etc)
        p = subprocess.Popen([self.echo, "-L", "%s:%d" % (HOST, P_ALONE),
                              "-o", "smtpd_sessions_per_process=2"],
                             env=env, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + TIMEOUT
            while not listening(P_ALONE):
                self.assertLess(time.monotonic(), deadline, "no listener")
                time.sleep(0.05)
            clients = [Client(P_ALONE) for _ in range(2)]
            self.assertEqual({c.pid for c in clients}, {p.pid})
            info = clients[0].cmd("INFO")
            self.assertIn("server=%s:%d" % (HOST, P_ALONE), info)
            for c in clients:
                c.quit()
        finally:
            # Our own child, by its pid.
            p.terminate()
            rc = p.wait(TIMEOUT)
        self.assertEqual(rc, 0)

    def test_z_stop_ends_every_process_cleanly(self):
        # Runs last (name order): holds sessions open across the stop.
        held = [Client(P_SHARED), Client(P_SINGLE), Client(P_SINGLE)]
        pids = {c.pid for c in held}
        self.lab.postfix("stop")
        for pid in pids:
            self.assertTrue(wait_gone(pid), "pid %d survived stop" % pid)
        for c in held:
            c.close()
        time.sleep(0.5)
        self.assert_log_clean()


if __name__ == "__main__":
    labmod.run_main()
