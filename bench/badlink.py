# SPDX-License-Identifier: MIT
"""NAME
    badlink - large messages over slow and breaking links

DESCRIPTION
    Sends 1, 10 and 50 MiB messages over links that are slow, delayed,
    lossy and that break every N octets, with a resume-capable sender to
    resume-smtpd and with a plain sender (smtplib, the whole message on
    every attempt, a bounded number of attempts and time) to Postfix's
    smtpd, and reports the octets put on the link, the time to delivery,
    the breaks and resumes, and whether the message was delivered (once).

    The link. When the kernel lets us make network namespaces and has
    netem, the client runs in a namespace of its own, joined by a veth
    pair (10.231.N.1 and .2, inside the namespaces only) to a second
    namespace where a relay (linkproxy.py) passes connections over a
    UNIX-domain socket to a relay on the host, which connects to
    127.0.0.1; netem on both veth ends gives delay, loss and rate.
    Otherwise the link is linkproxy.py on 127.0.0.1 alone, with delay
    and rate but no loss, and the report says so. Breaks are made by
    scripts/cutproxy when it exists, else by linkproxy.py itself.

    The senders. The resume-capable one is --sender (a program with
    resume-send's options), else build/client/resume-send, else the
    stand-in bench/xsend.py, which the report labels as such.

SEE ALSO
    bench/linkproxy.py, bench/xsend.py, docs/draft-xresume.txt
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
MIB = 1 << 20
RANGE = "10.231"


def run(cmd, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r


def probe_kernel(tag):
    """(netns usable, netem usable, why not) in a throw-away namespace."""
    ns = "%s-probe" % tag
    try:
        run(["ip", "netns", "add", ns])
    except (RuntimeError, OSError) as e:
        return False, False, "ip netns add failed: %s" % e
    try:
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        r = run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev",
                 "lo", "root", "netem", "delay", "1ms"], check=False)
        if r.returncode != 0:
            return True, False, "tc netem: %s" % (r.stderr.strip()
                                                  or r.returncode)
        return True, True, ""
    finally:
        run(["ip", "netns", "del", ns], check=False)


def make_message(size, tag):
    """size octets of CRLF lines with a unique Message-ID."""
    head = ("From: bench@lab.example\r\nTo: null@lab.example\r\n"
            "Subject: badlink %s\r\nMessage-ID: <%s@lab.example>\r\n\r\n"
            % (tag, tag)).encode()
    lines = []
    n = 0
    total = len(head)
    while total < size - 100:
        line = b"%08d %s\r\n" % (n, b"abcdefghij" * 7)
        if n % 1000 == 0:
            line = b"." + line
        lines.append(line)
        total += len(line)
        n += 1
    body = b"".join(lines)
    pad = size - len(head) - len(body) - 2
    return head + body + b"z" * max(0, pad) + b"\r\n"


class Proc:
    """A helper process this part started; ended by its own pid."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def wait_file(path, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                return f.read().strip()
        if proc.p.poll() is not None:
            raise RuntimeError("helper exited: %s"
                               % proc.p.stderr.read().decode()[-300:])
        time.sleep(0.05)
    raise RuntimeError("no %s" % path)


class Link:
    """One link profile set up for one delivery, torn down after."""

    def __init__(self, repo, work, tag, mode, profile, lab_port, idx):
        self.repo, self.work, self.tag = repo, work, tag
        self.mode, self.prof, self.lab_port, self.idx = (mode, profile,
                                                         lab_port, idx)
        self.procs = []
        self.namespaces = []
        self.stats_file = os.path.join(work, "link-%d.json" % idx)
        self.cut_stats = None
        self.client_prefix = []

    def up(self):
        """Start the chain; returns the address the client connects to."""
        target = "127.0.0.1:%d" % self.lab_port
        cut = self.prof.get("cut_every", 0)
        cutproxy = os.path.join(self.repo, "scripts", "cutproxy")
        own_cut = 0
        if cut and os.path.exists(cutproxy):
            # The project's cutting proxy, in front of the lab.
            pf = os.path.join(self.work, "cut-%d.port" % self.idx)
            self.cut_stats = os.path.join(self.work, "cut-%d.json"
                                          % self.idx)
            p = Proc([PY, cutproxy, "--listen", "0", "--target",
                      str(self.lab_port), "--cut-every", str(cut),
                      "--stats", self.cut_stats, "--port-file", pf,
                      "--max-seconds", "1800"])
            self.procs.append(p)
            target = "127.0.0.1:%s" % wait_file(pf, p)
        elif cut:
            own_cut = cut
        self.cutter = "scripts/cutproxy" if self.cut_stats else (
            "linkproxy (stand-in)" if own_cut else "-")
        if self.mode == "proxy":
            pf = os.path.join(self.work, "link-%d.port" % self.idx)
            p = Proc([PY, os.path.join(HERE, "linkproxy.py"),
                      "--listen", "127.0.0.1:0", "--target", target,
                      "--delay-ms", str(self.prof.get("delay_ms", 0)),
                      "--rate", str(self.prof.get("rate", 0)),
                      "--cut-every", str(own_cut),
                      "--stats", self.stats_file, "--port-file", pf,
                      "--max-seconds", "1800"])
            self.procs.append(p)
            return "127.0.0.1:%s" % wait_file(pf, p)
        return self.netns_up(target, own_cut)

    def netns_up(self, target, own_cut):
        """Client namespace -- veth with netem -- relay namespace."""
        nc, ns = "%s-c%d" % (self.tag, self.idx), "%s-s%d" % (self.tag,
                                                               self.idx)
        net = "%s.%d" % (RANGE, self.idx % 250)
        for n in (nc, ns):
            run(["ip", "netns", "add", n])
            self.namespaces.append(n)
            run(["ip", "-n", n, "link", "set", "lo", "up"])
        run(["ip", "link", "add", "rsbc%d" % self.idx, "netns", nc, "type",
             "veth", "peer", "name", "rsbs%d" % self.idx, "netns", ns])
        for n, dev, addr in ((nc, "rsbc%d" % self.idx, net + ".1/30"),
                             (ns, "rsbs%d" % self.idx, net + ".2/30")):
            run(["ip", "-n", n, "addr", "add", addr, "dev", dev])
            run(["ip", "-n", n, "link", "set", dev, "up"])
            netem = []
            if self.prof.get("delay_ms"):
                netem += ["delay", "%dms" % self.prof["delay_ms"]]
            if self.prof.get("loss"):
                netem += ["loss", "%g%%" % self.prof["loss"]]
            if self.prof.get("rate"):
                netem += ["rate", "%dbit" % (self.prof["rate"] * 8)]
            if netem:
                run(["ip", "netns", "exec", n, "tc", "qdisc", "add", "dev",
                     dev, "root", "netem"] + netem + ["limit", "10000"])
        self.veth = (nc, "rsbc%d" % self.idx)

        # Host side: a UNIX socket to the lab (or the cutting proxy).
        sock = os.path.join(self.work, "link-%d.sock" % self.idx)
        pf = os.path.join(self.work, "host-%d.ready" % self.idx)
        p = Proc([PY, os.path.join(HERE, "linkproxy.py"),
                  "--listen", "unix:" + sock, "--target", target,
                  "--cut-every", str(own_cut), "--stats",
                  self.stats_file + ".host", "--port-file", pf,
                  "--max-seconds", "1800"])
        self.procs.append(p)
        wait_file(pf, p)

        # Namespace side: the address the client sees, relayed to it.
        pf = os.path.join(self.work, "ns-%d.ready" % self.idx)
        p = Proc(["ip", "netns", "exec", ns, PY,
                  os.path.join(HERE, "linkproxy.py"),
                  "--listen", net + ".2:25", "--target", "unix:" + sock,
                  "--stats", self.stats_file, "--port-file", pf,
                  "--max-seconds", "1800"])
        self.procs.append(p)
        wait_file(pf, p)
        self.client_prefix = ["ip", "netns", "exec", nc]
        self.tx0 = self.veth_tx()
        return net + ".2:25"

    def veth_tx(self):
        nc, dev = self.veth
        r = run(["ip", "-n", nc, "-s", "-j", "link", "show", "dev", dev],
                check=False)
        try:
            return json.loads(r.stdout)[0]["stats64"]["tx"]["bytes"]
        except (ValueError, KeyError, IndexError):
            return None

    def down(self):
        """Stats, then stop the helpers and remove the namespaces."""
        wire = None
        if self.namespaces:
            tx = self.veth_tx()
            if tx is not None and self.tx0 is not None:
                wire = tx - self.tx0
        for p in self.procs:
            p.stop()
        for n in self.namespaces:
            run(["ip", "netns", "del", n], check=False)
        st = {}
        try:
            with open(self.stats_file) as f:
                st = json.load(f)
        except (OSError, ValueError):
            pass
        cuts = st.get("cuts", 0)
        if self.cut_stats:
            try:
                with open(self.cut_stats) as f:
                    cuts = json.load(f).get("cuts", 0)
            except (OSError, ValueError):
                pass
        elif self.namespaces:
            try:
                with open(self.stats_file + ".host") as f:
                    cuts = json.load(f).get("cuts", 0)
            except (OSError, ValueError):
                pass
        return {"c2s": st.get("c2s", 0), "s2c": st.get("s2c", 0),
                "c2s_delivered": st.get("c2s_delivered"),
                "connections_link": st.get("connections", 0),
                "breaks": cuts, "wire_bytes": wire}


def read_report(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                out[k] = v
    except OSError:
        pass
    return out


def profiles(quick, netem):
    if quick:
        return [
            {"name": "cut every 256 KiB, 20 ms, 4 MB/s", "cut_every":
             256 * 1024, "delay_ms": 20, "rate": 4e6, "sizes": [1],
             "give_up": 120, "plain_attempts": 4},
        ]
    p = [
        {"name": "cut every 1 MiB", "cut_every": MIB, "sizes": [1, 10, 50],
         "give_up": 600, "plain_attempts": 10, "target_size": 10},
        {"name": "300 ms each way, 1 MB/s, cut every 4 MiB",
         "cut_every": 4 * MIB, "delay_ms": 300, "rate": 1e6,
         "sizes": [1, 10, 50], "give_up": 900, "plain_attempts": 5},
    ]
    if netem:
        p += [
            {"name": "300 ms each way, 1 % loss", "delay_ms": 300,
             "loss": 1, "sizes": [1, 10], "give_up": 900,
             "plain_attempts": 3},
            {"name": "300 ms each way, 3 % loss", "delay_ms": 300,
             "loss": 3, "sizes": [1, 10], "give_up": 900,
             "plain_attempts": 3},
        ]
    return p


def part_badlink(lab, quick, fails, work, tag, sender, link_mode, log):
    repo = lab.repo
    res = {"notes": [], "runs": []}
    netns, netem, why = probe_kernel(tag)
    if link_mode == "auto":
        link_mode = "netns" if (netns and netem) else "proxy"
    if link_mode == "netns" and not netns:
        raise RuntimeError("--link netns: " + why)
    res["link_mode"] = link_mode
    if link_mode == "proxy":
        res["notes"].append(
            "**Link emulation: loopback fallback.** This kernel %s "
            "(network namespaces: %s, netem: %s), so the link is "
            "bench/linkproxy.py on 127.0.0.1: delay and rate are applied "
            "per direction by the relay, there is no packet loss, and the "
            "loss profiles are not run." % (
                "offers no netem qdisc" if not netem else
                "offers no network namespaces", "yes" if netns else "no",
                "yes" if netem else "no (%s)" % why))
    else:
        res["notes"].append(
            "Link: client in a network namespace of its own, veth pair "
            "in %s.0.0/16 with netem (delay, loss, rate) on both ends."
            % RANGE)

    # The resume-capable sender.
    if sender:
        rs_cmd, rs_name = [os.path.abspath(sender)], os.path.basename(
            sender)
    elif os.access(os.path.join(repo, "build", "client", "resume-send"),
                   os.X_OK):
        rs_cmd = [os.path.join(repo, "build", "client", "resume-send")]
        rs_name = "resume-send"
    else:
        rs_cmd = [PY, os.path.join(HERE, "xsend.py"), "--attempts", "500"]
        rs_name = "xsend (stand-in)"
        res["notes"].append(
            "**Sender: stand-in.** build/client/resume-send is not built "
            "in this tree, so the XRESUME rows were sent by bench/xsend.py, "
            "a small sender written for the benchmark; rerun with "
            "resume-send once it is merged (or pass --sender).")
    if not os.path.exists(os.path.join(repo, "scripts", "cutproxy")):
        res["notes"].append(
            "Breaks: scripts/cutproxy is not in this tree, so "
            "bench/linkproxy.py made the cuts itself (stand-in): each "
            "connection is closed once N client-to-server octets have "
            "reached the server; what was in flight is lost.")
    res["notes"].append(
        "Octets on the link = client-to-server payload octets that entered "
        "the link, over all connections (commands included; what was in "
        "flight at a break counts, as it used the link); crossed = those "
        "that reached the server side. The plain "
        "sender (smtplib, whole message on every attempt) goes to "
        "Postfix's smtpd; the resume-capable one to resume-smtpd. Every "
        "message goes to the discard transport; delivered = logged "
        "status=sent; copies = queue files made for its Message-ID.")

    idx = 0
    for prof in profiles(quick, netem and link_mode == "netns"):
        for mib in prof["sizes"]:
            for kind in ("resume", "plain"):
                idx += 1
                side = "ours" if kind == "resume" else "ref"
                mtag = "bl%d.%d.%s" % (os.getpid(), idx, kind)
                msg = make_message(mib * MIB, mtag)
                mfile = os.path.join(work, "msg-%d.eml" % idx)
                with open(mfile, "wb") as f:
                    f.write(msg)
                rep = os.path.join(work, "report-%d.txt" % idx)
                link = Link(repo, work, tag, link_mode, prof,
                            lab.port(side), idx)
                mark = lab.log_mark()
                try:
                    addr = link.up()
                    if kind == "resume":
                        cmd = rs_cmd + ["-s", addr, "-m", mfile, "-f",
                                        "bench@lab.example", "--tls",
                                        "none", "--give-up",
                                        str(prof["give_up"]), "--timeout",
                                        "30", "--report", rep, "-q",
                                        "null@lab.example"]
                    else:
                        cmd = [PY, os.path.join(HERE, "xsend.py"),
                               "--plain", "--attempts",
                               str(prof["plain_attempts"]), "--give-up",
                               str(prof["give_up"]), "--timeout", "30",
                               "-s", addr, "-m", mfile, "-f",
                               "bench@lab.example", "--report", rep,
                               "null@lab.example"]
                    t0 = time.monotonic()
                    try:
                        r = subprocess.run(link.client_prefix + cmd,
                                           capture_output=True, text=True,
                                           timeout=prof["give_up"] + 120)
                        rc = r.returncode
                    except subprocess.TimeoutExpired:
                        rc = -1
                    secs = time.monotonic() - t0
                finally:
                    ls = link.down()
                rp = read_report(rep)
                lines = _wait_outcome(lab, mark, mtag, rc == 0)
                qids = {m.group(1) for m in (re.search(
                    r"\]: ([0-9A-Za-z]+): message-id=<%s@" % re.escape(mtag),
                    l) for l in lines) if m}
                sent = {m.group(1) for m in (re.search(
                    r"\]: ([0-9A-Za-z]+): to=<null@lab.example>.*"
                    r"status=sent", l) for l in lines) if m} & qids
                resumes_log = sum(1 for l in lines
                                  if re.search(r": resume: token=\S+ "
                                               r"offset=[1-9]", l))
                x = {"link": prof["name"], "size": mib * MIB,
                     "sender": rs_name if kind == "resume" else
                     "plain smtplib",
                     "side": side, "rc": rc, "seconds": secs,
                     "delivered": bool(sent), "copies": len(sent),
                     "connections": int(rp.get("connections", 0) or 0),
                     "resumes": (int(rp.get("resumes", 0) or 0)
                                 if kind == "resume" else "-"),
                     "resumes_logged": resumes_log,
                     "cutter": link.cutter,
                     "target": (kind == "resume"
                                and prof.get("target_size") == mib)}
                x.update(ls)
                res["runs"].append(x)
                log("badlink %s, %d MiB, %s: %s, %d octets on the link "
                    "(%.3f x), %.1f s, %d connections, %d breaks" % (
                        prof["name"], mib, x["sender"],
                        "delivered" if x["delivered"] else "NOT delivered",
                        x["c2s"], x["c2s"] / (mib * MIB), secs,
                        x["connections"], x["breaks"]))
                if kind == "resume" and not x["delivered"]:
                    fails.add("badlink %s %d MiB: the resume-capable "
                              "sender did not deliver (exit %s, %s)"
                              % (prof["name"], mib, rc,
                                 rp.get("reason", "")[:200]))
                if len(sent) > 1:
                    fails.add("badlink %s %d MiB %s: %d copies delivered"
                              % (prof["name"], mib, kind, len(sent)))
                os.unlink(mfile)
    return res


def _wait_outcome(lab, mark, mtag, expect):
    """Log lines since mark, after waiting (bounded) for the delivery of
    an accepted message, or a moment for a refused one."""
    deadline = time.monotonic() + (60 if expect else 3)
    while True:
        lines = lab.log_since(mark)
        qids = [l.split("]: ", 1)[1].split(":", 1)[0] for l in lines
                if "message-id=<%s@" % mtag in l]
        done = [q for q in qids
                if any(("%s: to=<" % q) in l and "status=sent" in l
                       for l in lines)]
        # Broken attempts leave a message-id line of their own (cleanup
        # read the headers before the break), so one delivery is enough;
        # a little more time shows a duplicate, if any.
        if done:
            time.sleep(1.0)
            return lab.log_since(mark)
        if time.monotonic() > deadline:
            return lines
        time.sleep(0.3)
