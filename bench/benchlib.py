# SPDX-License-Identifier: MIT
"""NAME
    benchlib - the lab, processes, CPU, memory and maillog for bench/

DESCRIPTION
    What every part of the benchmark needs: the lab started by bench/run
    (its ports, its master and master's children by executable), the CPU
    time and memory of a set of processes read from /proc, and the
    maillog read from a mark, to count what was queued, delivered,
    discarded or lost.

    CPU accounting. A run samples the CPU time of every child of master
    that runs the binary of the side under test, before and after. The
    lab sets max_use and max_idle so high that no smtpd exits during a
    run; a process that did exit would take its CPU time with it, so
    every pid that logged as smtpd during the run must still be alive at
    the end, or the run's CPU figure is marked as undercounted.

    The CPU time of a process is the sum over its threads of the first
    field of /proc/PID/task/TID/schedstat (nanoseconds on a CPU, user and
    system together): utime+stime of /proc/PID/stat counts in clock ticks
    (10 ms), coarser than what one small message costs. Where schedstat
    is missing (a kernel without CONFIG_SCHEDSTATS) utime+stime is used.

SEE ALSO
    bench/bench.py, scripts/lab
"""

import os
import socket
import re
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
POSTFIX_SMTPD = os.path.realpath(
    os.path.join(subprocess.run(["postconf", "-d", "-h", "daemon_directory"],
                                capture_output=True, text=True).stdout.strip()
                 or "/usr/lib/postfix/sbin", "smtpd"))


class BenchError(Exception):
    pass


def read_env(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            out[k] = v
    return out


def proc_stat(pid):
    """(comm, state, ppid, CPU seconds) of pid."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    lpar, rpar = data.index("("), data.rindex(")")
    rest = data[rpar + 2:].split()
    # Fields after comm, from state (3) on: utime is 14, stime 15.
    cpu = (int(rest[11]) + int(rest[12])) / CLK_TCK
    fine = sched_cpu(pid)
    return data[lpar + 1:rpar], rest[0], int(rest[1]), \
        cpu if fine is None else fine


def sched_cpu(pid):
    """Seconds on a CPU of all threads of pid, from schedstat; None when
    the kernel has no schedstat."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def proc_mem(pid):
    """{"rss", "pss"} in bytes from /proc/PID/smaps_rollup."""
    out = {"rss": 0, "pss": 0}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "Rss":
                out["rss"] = int(v.split()[0]) * 1024
            elif k == "Pss":
                out["pss"] = int(v.split()[0]) * 1024
    return out


class Lab:
    """The lab made by bench/run; the swapped port runs resume-smtpd."""

    def __init__(self, repo, lab_dir):
        self.repo = repo
        self.dir = os.path.realpath(lab_dir)
        self.etc = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "spool")
        self.maillog = os.path.join(self.dir, "log", "maillog")
        env = read_env(os.path.join(self.dir, "lab.env"))
        self.ours_port = int(env["PORT"])
        self.ref_port = int(env["REF_PORT"])
        self.ours_bin = os.path.join(repo, "build", "smtpd", "resume-smtpd")
        self.domain = "lab.example"
        self.swap_args = []
        self.multi_port = None   # add_multi(): a second resume-smtpd
        self.multi_sessions = 0

    # ---- configuration ---------------------------------------------------

    def port(self, side):
        return {"ours": self.ours_port, "multi": self.multi_port,
                "ref": self.ref_port}[side]

    def exe(self, side):
        return (POSTFIX_SMTPD if side == "ref"
                else os.path.realpath(self.ours_bin))

    def sides(self):
        return ("ours", "multi", "ref") if self.multi_port else ("ours",
                                                                 "ref")

    def add_multi(self, sessions):
        """A second resume-smtpd service, like the swapped one but with
        smtpd_sessions_per_process=sessions, on the next free port."""
        line = subprocess.run(
            ["postconf", "-c", self.etc, "-M",
             "127.0.0.1:%d/inet" % self.ours_port],
            check=True, capture_output=True, text=True).stdout.split()
        if len(line) < 8:
            raise RuntimeError("no master.cf entry for port %d"
                               % self.ours_port)
        port = self.ref_port + 1
        while port < 65000:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                    break
                except OSError:
                    port += 1
        svc = "127.0.0.1:%d" % port
        entry = [svc] + line[1:8] + [
            "-o", "smtpd_sessions_per_process=%d" % sessions]
        subprocess.run(["postconf", "-c", self.etc, "-M",
                        "%s/inet=%s" % (svc, " ".join(entry))],
                       check=True, capture_output=True)
        subprocess.run(["postfix", "-c", self.etc, "reload"], check=True,
                       capture_output=True)
        self.multi_port = port
        self.multi_sessions = sessions
        self.wait_no_children(timeout=30)

    def remove_multi(self):
        if not self.multi_port:
            return
        subprocess.run(["postconf", "-c", self.etc, "-MX",
                        "127.0.0.1:%d/inet" % self.multi_port],
                       capture_output=True)
        subprocess.run(["postfix", "-c", self.etc, "reload"],
                       capture_output=True)
        self.multi_port = None
        self.wait_no_children(timeout=30)

    def swap(self, *args):
        """Put resume-smtpd with these master.cf arguments on its port.

        The reload leaves processes of the former generation to finish;
        wait until only the new one serves, so that samples see no
        stragglers."""
        args = list(args)
        if args == self.swap_args:
            return
        subprocess.run(["bash", os.path.join(self.repo, "scripts", "lab"),
                        "swap", self.dir, self.ours_bin] + args,
                       check=True, capture_output=True)
        self.swap_args = args
        self.wait_no_children(timeout=30)

    def postconf(self, *settings):
        subprocess.run(["postconf", "-c", self.etc, "-e"] + list(settings),
                       check=True, capture_output=True)
        subprocess.run(["postfix", "-c", self.etc, "reload"], check=True,
                       capture_output=True)
        self.wait_no_children(timeout=30)

    # ---- processes -------------------------------------------------------

    def master_pid(self):
        with open(os.path.join(self.spool, "pid", "master.pid")) as f:
            return int(f.read().strip())

    def children(self, exe, service=None):
        """Live children of master running exe (for the master.cf service
        named, when given): {pid: cpu seconds}."""
        mpid = self.master_pid()
        out = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            try:
                _, state, ppid, cpu = proc_stat(pid)
                if ppid != mpid or state == "Z":
                    continue
                if os.path.realpath("/proc/%d/exe" % pid) != exe:
                    continue
                if service is not None:
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        argv = f.read().split(b"\0")
                    if service.encode() not in argv:
                        continue
            except OSError:
                continue
            out[pid] = cpu
        return out

    def smtpd_children(self, side):
        # Our two services run one binary: told apart by their names.
        return self.children(self.exe(side),
                             "127.0.0.1:%d" % self.port(side))

    def wait_no_children(self, timeout):
        """Wait until no smtpd of either side is left (after a reload or
        when the last clients are gone and max_idle is short)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if self.master_pid() and not self.busy_smtpd():
                return True
        return False

    def busy_smtpd(self):
        """Pids of smtpd processes (either side) that hold a session."""
        busy = []
        for side in self.sides():
            for pid in self.smtpd_children(side):
                if tcp_sessions(pid):
                    busy.append(pid)
        return busy

    def memory(self, side):
        """Sum of RSS and PSS of the side's smtpd processes, and count."""
        tot = {"rss": 0, "pss": 0, "procs": 0}
        for pid in self.smtpd_children(side):
            try:
                m = proc_mem(pid)
            except OSError:
                continue
            tot["rss"] += m["rss"]
            tot["pss"] += m["pss"]
            tot["procs"] += 1
        return tot

    # ---- maillog ---------------------------------------------------------

    def log_mark(self):
        try:
            return os.path.getsize(self.maillog)
        except OSError:
            return 0

    def log_since(self, mark):
        try:
            with open(self.maillog, "rb") as f:
                f.seek(mark)
                data = f.read()
        except OSError:
            return []
        return data.decode("utf-8", "replace").splitlines()

    def queue_count(self):
        """Messages in the active, incoming, deferred and hold queues."""
        n = 0
        for q in ("incoming", "active", "deferred", "hold", "maildrop"):
            for _, _, files in os.walk(os.path.join(self.spool, q)):
                n += len(files)
        return n

    def wait_delivered(self, mark, want, timeout, rcpt=None):
        """Wait until `want` deliveries (status=sent) are logged since
        mark; returns a LogCount. Stops early on a bounce or when the
        log and the queue stay still for long."""
        deadline = time.monotonic() + timeout
        while True:
            c = LogCount(self.log_since(mark), rcpt)
            if c.sent >= want or c.bounced:
                return c
            if time.monotonic() >= deadline:
                return c
            time.sleep(0.2)

    def clear_maildir(self, user):
        base = os.path.join(self.dir, "Maildir", user)
        for sub in ("new", "cur", "tmp"):
            d = os.path.join(base, sub)
            try:
                names = os.listdir(d)
            except OSError:
                continue
            for n in names:
                try:
                    os.unlink(os.path.join(d, n))
                except OSError:
                    pass

    def maildir_count(self, user):
        d = os.path.join(self.dir, "Maildir", user, "new")
        try:
            return len(os.listdir(d))
        except OSError:
            return 0


SMTPD_PID = re.compile(r" postfix/smtpd\[(\d+)\]: ")
QUEUED = re.compile(r" postfix/cleanup\[\d+\]: ([0-9A-Za-z]+): message-id=")
STATUS = re.compile(r" postfix/(\w+)\[\d+\]: ([0-9A-Za-z]+): to=<([^>]*)>.*"
                    r" status=(\w+)")


class LogCount:
    """Queued, delivered, deferred and bounced messages in log lines."""

    def __init__(self, lines, rcpt=None):
        self.smtpd_pids = set()
        self.queued = 0
        self.sent = 0
        self.deferred = 0
        self.bounced = 0
        self.lost = 0
        self.sent_ids = set()
        for line in lines:
            m = SMTPD_PID.search(line)
            if m:
                self.smtpd_pids.add(int(m.group(1)))
                if "lost connection after" in line:
                    self.lost += 1
            if QUEUED.search(line):
                self.queued += 1
            m = STATUS.search(line)
            if m and (rcpt is None or m.group(3) == rcpt):
                st = m.group(4)
                if st == "sent":
                    self.sent += 1
                    self.sent_ids.add(m.group(2))
                elif st == "deferred":
                    self.deferred += 1
                elif st == "bounced":
                    self.bounced += 1


def tcp_sessions(pid):
    """Number of TCP sockets pid holds, the listener excluded (approx.:
    established ones show as socket inodes in /proc/net/tcp with state
    01)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if t.startswith("socket:["):
                inodes.add(t[8:-1])
    except OSError:
        return 0
    n = 0
    try:
        with open("/proc/%d/net/tcp" % pid) as f:
            next(f)
            for line in f:
                p = line.split()
                if p[3] == "01" and p[9] in inodes:
                    n += 1
    except OSError:
        return 0
    return n


def cpu_delta(before, after, logged_pids):
    """CPU seconds spent between two samples ({pid: cpu}) and whether
    every pid that logged during the run is in the last sample (if not,
    a process exited and its CPU time is missing)."""
    total = 0.0
    for pid, cpu in after.items():
        total += cpu - before.get(pid, 0.0)
    missing = sorted(p for p in logged_pids if p not in after)
    return total, missing


def machine():
    """Cores, CPU model and load for the report."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model,
            "load": os.getloadavg()}
