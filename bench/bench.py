#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    bench - the parts of the resume-smtpd benchmark (run by bench/run)

SYNOPSIS
    bench.py --repo DIR --lab DIR --tag TAG [--quick] [--out DIR]
             [--only PARTS] [--sender CMD]

DESCRIPTION
    Runs against the lab that bench/run started (resume-smtpd on its
    PORT, Postfix's smtpd on REF_PORT, one master, one cleanup, one
    queue):

    throughput   smtp-source, one connection per message, at each message
                 size and session count, to the discard transport and to
                 a Maildir, the two servers alternately; msgs/s and smtpd
                 CPU seconds per message.
    concurrency  many idle, then many trickling sessions held open
                 (holdconns.py); how many got a banner, RSS and PSS of the
                 smtpd processes, banner latency of a new client.
    badlink      1, 10, 50 MiB over a link that is slow and breaks,
                 resume-capable sender against plain SMTP (badlink.py).
    safety       resume-smtpd with and without XRESUME, at two checkpoint
                 sizes (loadsend.py).

    Every message sent must be logged as delivered (status=sent); if one
    is missing the run exits 1, whatever the speed. Results go to
    results.json in a work directory and are rendered by report.py.

SEE ALSO
    bench/run, bench/README.md
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import Lab, LogCount, cpu_delta  # noqa: E402

SIZES = {"1KiB": 1024, "100KiB": 100 * 1024, "10MiB": 10 * 1024 * 1024}

# Messages per run for each size: enough for a second or more of work
# on a 2-core machine, few enough that the full matrix takes under an
# hour. --quick sends far fewer and only checks that all arrive.
FULL = {
    "reps": 3,
    "sizes": {"1KiB": 2000, "100KiB": 400, "10MiB": 50},
    "sessions": [1, 10, 50],
    "idle": [1000, 10000],
    "hold_seconds": 20,
    "safety_msgs": 400,
}
QUICK = {
    "reps": 1,
    "sizes": {"1KiB": 100, "100KiB": 40, "10MiB": 4},
    "sessions": [1, 10],
    "idle": [1000],
    "hold_seconds": 5,
    "safety_msgs": 60,
}
SIDES = ("ours", "ref")
SENDER = "bench@lab.example"


def log(msg):
    print("bench: %s" % msg, flush=True)


class Failures:
    """Runs where mail was lost; any one fails the benchmark."""

    def __init__(self):
        self.items = []

    def add(self, what):
        log("FAIL: " + what)
        self.items.append(what)


# ---- throughput ------------------------------------------------------------

def smtp_source_run(lab, side, size, msgs, sessions, rcpt, fails, what):
    """One smtp-source run; a dict of its figures."""

    # Nothing left of the last run: the queue is empty, so this run's
    # cleanup and delivery work is its own.
    t_end = time.monotonic() + 300
    while lab.queue_count() and time.monotonic() < t_end:
        time.sleep(0.2)
    mark = lab.log_mark()
    before = lab.smtpd_children(side)
    cmd = ["/usr/sbin/smtp-source", "-s", str(sessions), "-m", str(msgs),
           "-l", str(size), "-f", SENDER, "-t", rcpt,
           "-M", "client.lab.example", "127.0.0.1:%d" % lab.port(side)]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True,
                           errors="replace", timeout=900)
        rc, err = r.returncode, (r.stdout + r.stderr).strip()
    except subprocess.TimeoutExpired:
        rc, err = -1, "timed out after 900 s"
    wall = time.monotonic() - t0

    # The last session's process may still be writing its disconnect
    # line; then sample, then wait for the deliveries.
    time.sleep(0.2)
    after = lab.smtpd_children(side)
    wait = 120 + size * msgs / 5e6
    c = lab.wait_delivered(mark, msgs, wait, rcpt)
    time.sleep(0.3)
    c = LogCount(lab.log_since(mark), rcpt)
    cpu, missing = cpu_delta(before, after, c.smtpd_pids)
    res = {"side": side, "wall": wall, "msgs": msgs,
           "rate": msgs / wall if wall > 0 else 0.0,
           "mbps": size * msgs / wall / 1e6 if wall > 0 else 0.0,
           "cpu": cpu, "cpu_per_msg": cpu / msgs,
           "cpu_undercounted": bool(missing), "procs": len(after),
           "queued": c.queued, "sent": c.sent, "bounced": c.bounced,
           "rc": rc}
    if rc != 0:
        fails.add("%s: smtp-source exit %s: %s" % (what, rc, err[-300:]))
    if c.sent != msgs or c.queued != msgs:
        fails.add("%s: %d sent, %d queued, %d bounced of %d messages"
                  % (what, c.sent, c.queued, c.bounced, msgs))
    if missing:
        log("%s: smtpd pids %s exited during the run: CPU undercounted"
            % (what, missing))
    return res


# The throughput part also runs resume-smtpd as an event-driven server:
# a second service with this many sessions per process ("multi").
MULTI_SESSIONS = 100


def part_throughput(lab, cfg, fails, results):
    """The throughput matrix, the servers in turn."""
    lab.swap()
    lab.add_multi(MULTI_SESSIONS)
    results["multi_sessions"] = MULTI_SESSIONS
    try:
        return throughput_matrix(lab, cfg, fails, results, lab.sides())
    finally:
        lab.remove_multi()


def throughput_matrix(lab, cfg, fails, results, sides):
    out = []

    # Warm-up: as many processes as the largest run will use, on every
    # side, so that no measured run pays for process start-up alone.
    top = max(cfg["sessions"])
    for side in sides:
        smtp_source_run(lab, side, 1024, 2 * top, top,
                        "null@" + lab.domain, fails, "warm-up %s" % side)

    for transport, rcpt in (("discard", "null@" + lab.domain),
                            ("maildir", "b@" + lab.domain)):
        for size_name, msgs in cfg["sizes"].items():
            size = SIZES[size_name]
            for sessions in cfg["sessions"]:
                cell = {"transport": transport, "size": size_name,
                        "sessions": sessions,
                        "runs": {side: [] for side in sides}}
                for rep in range(cfg["reps"]):
                    # Each server goes first in turn.
                    k = rep % len(sides)
                    order = sides[k:] + sides[:k]
                    for side in order:
                        what = "throughput %s %s s=%d %s rep %d" % (
                            transport, size_name, sessions, side, rep + 1)
                        r = smtp_source_run(lab, side, size,
                                            max(msgs, sessions), sessions,
                                            rcpt, fails, what)
                        if transport == "maildir":
                            got = lab.maildir_count("b")
                            if got != r["msgs"]:
                                fails.add("%s: %d files in the Maildir, "
                                          "want %d" % (what, got, r["msgs"]))
                            lab.clear_maildir("b")
                        cell["runs"][side].append(r)
                        log("%s: %.1f msg/s, %.2f ms CPU/msg"
                            % (what, r["rate"], r["cpu_per_msg"] * 1e3))
                out.append(cell)
                results["throughput"] = out
    return out


# ---- concurrency -----------------------------------------------------------

def hold_run(lab, cfg, results, fails, side, n, mode, hold):
    """One holdconns.py run; its counts, with memory read while held."""
    here = os.path.dirname(os.path.abspath(__file__))
    lab.wait_no_children(timeout=60)
    base = lab.memory(side)
    res_file = os.path.join(results["_work"],
                            "hold-%s-%d-%s.json" % (side, n, mode))
    loaded = res_file + ".loaded"
    for f in (res_file, loaded, loaded + ".read"):
        if os.path.exists(f):
            os.unlink(f)
    cmd = ["/usr/bin/python3", os.path.join(here, "holdconns.py"),
           "--port", str(lab.port(side)), "--count", str(n),
           "--mode", "idle" if mode == "cold" else mode,
           "--hold", str(hold), "--rcpt", "null@" + lab.domain,
           "--loaded-file", loaded, "--out", res_file]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd)

    # Memory is read while the clients hold their sessions: holdconns.py
    # creates `loaded` when every client holds its session or has given
    # up and the probes are done, and waits for `loaded.read`.
    mem = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and p.poll() is None:
        if os.path.exists(loaded):
            mem = lab.memory(side)
            open(loaded + ".read", "w").close()
            break
        time.sleep(0.2)
    try:
        p.wait(timeout=300)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        fails.add("holdconns %s %d %s did not end" % (side, n, mode))
    try:
        with open(res_file) as f:
            h = json.load(f)
    except (OSError, ValueError):
        fails.add("holdconns %s %d %s: no result" % (side, n, mode))
        return None
    h.update({"side": side, "n": n, "mode": mode, "mem_base": base,
              "mem": mem, "seconds": time.monotonic() - t0})
    log("%s %d %s: %d banners, %d held to the end, %d in DATA, probe "
        "banner %s s, PSS %.1f MiB (%.0f s)" % (
            side, n, mode, h["banners"], h["open_at_end"], h["data"],
            "%.4f" % h["probe_median"] if h["probe_median"] is not None
            else "none", (mem or {}).get("pss", 0) / 2**20, h["seconds"]))
    return h


def part_concurrency(lab, cfg, fails, results, tag):
    """Idle and trickling sessions held open; memory and banner latency.

    Each server first gets a cold start (its first N clients after a
    reload, reported as such), then the idle and trickle runs."""
    out = []
    results["concurrency"] = out
    for n in cfg["idle"]:
        # Enough sessions per process that 10,000 fit in ten processes.
        lab.swap()
        lab.swap("-o", "smtpd_sessions_per_process=1000")
        for side in SIDES:
            for mode in ("cold", "idle", "trickle"):
                h = hold_run(lab, cfg, results, fails, side, n, mode,
                             0 if mode == "cold" else cfg["hold_seconds"])
                if h:
                    out.append(h)
    lab.swap()
    return out


# ---- safety ----------------------------------------------------------------

def part_safety(lab, cfg, fails, results):
    """resume-smtpd with and without XRESUME, two checkpoint sizes."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    msgs = cfg["safety_msgs"]
    size = SIZES["100KiB"]
    sessions = 10
    variants = []
    for ck in (1048576, 65536):
        for xr in (False, True):
            variants.append((ck, xr))
    runs = {v: [] for v in variants}
    for rep in range(cfg["reps"]):
        for ck, xr in variants:
            lab.swap("-o", "smtpd_resume_checkpoint_size=%d" % ck)
            t_end = time.monotonic() + 300
            while lab.queue_count() and time.monotonic() < t_end:
                time.sleep(0.2)
            mark = lab.log_mark()
            before = lab.smtpd_children("ours")
            cmd = ["/usr/bin/python3", os.path.join(here, "loadsend.py"),
                   "--port", str(lab.ours_port), "--size", str(size),
                   "--msgs", str(msgs), "--sessions", str(sessions),
                   "--rcpt", "null@" + lab.domain]
            if xr:
                cmd.append("--xresume")
            t0 = time.monotonic()
            r = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=900)
            wall = time.monotonic() - t0
            time.sleep(0.2)
            after = lab.smtpd_children("ours")
            what = "safety ck=%d xresume=%s rep %d" % (ck, xr, rep + 1)
            try:
                rep_json = json.loads(r.stdout)
            except ValueError:
                rep_json = {}
                fails.add("%s: loadsend said %s" % (what, r.stderr[-300:]))
            if r.returncode != 0:
                fails.add("%s: loadsend exit %d: %s"
                          % (what, r.returncode, r.stderr[-300:]))
            c = lab.wait_delivered(mark, msgs, 120, "null@" + lab.domain)
            time.sleep(0.3)
            c = LogCount(lab.log_since(mark), "null@" + lab.domain)
            cpu, missing = cpu_delta(before, after, c.smtpd_pids)
            if c.sent != msgs:
                fails.add("%s: %d of %d delivered" % (what, c.sent, msgs))
            tokens = rep_json.get("tokens", 0)
            if xr and tokens != msgs:
                fails.add("%s: %d of %d messages got an XRESUME token"
                          % (what, tokens, msgs))
            send_wall = rep_json.get("seconds", wall)
            res = {"checkpoint": ck, "xresume": xr, "msgs": msgs,
                   "wall": send_wall, "rate": msgs / send_wall,
                   "cpu_per_msg": cpu / msgs,
                   "cpu_undercounted": bool(missing), "sent": c.sent,
                   "tokens": tokens}
            runs[(ck, xr)].append(res)
            log("%s: %.1f msg/s, %.2f ms CPU/msg" % (what, res["rate"],
                                                    res["cpu_per_msg"] * 1e3))
            results["safety"] = [{"checkpoint": k[0], "xresume": k[1],
                                  "runs": v} for k, v in runs.items()]
    lab.swap()
    return results["safety"]


# ---- main ------------------------------------------------------------------

def git_commit(repo):
    r = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"],
                       capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain",
                            "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return r.stdout.strip() + ("-dirty" if dirty else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--lab", required=True)
    ap.add_argument("--tag", required=True,
                    help="prefix of the network namespaces made")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--only", default="throughput,concurrency,badlink,"
                    "safety")
    ap.add_argument("--sender", default=None)
    ap.add_argument("--note", default="",
                    help="a sentence for the report (e.g. the machine "
                    "was shared)")
    ap.add_argument("--link", default="auto",
                    choices=("auto", "netns", "proxy"))
    a = ap.parse_args()

    # SIGTERM from bench/run's trap: unwind through the finally blocks
    # (namespaces, proxies) rather than die at once.
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    cfg = QUICK if a.quick else FULL
    parts = [p.strip() for p in a.only.split(",") if p.strip()]
    for p in parts:
        if p not in ("throughput", "concurrency", "badlink", "safety"):
            ap.error("unknown part %r" % p)
    lab = Lab(a.repo, a.lab)
    out_dir = os.path.abspath(a.out or os.path.join(a.repo, "bench",
                                                    "results"))
    os.makedirs(out_dir, exist_ok=True)
    work = os.path.join(a.lab, "..", "work")
    os.makedirs(work, exist_ok=True)
    fails = Failures()
    m = benchlib.machine()
    results = {
        "_work": work,
        "quick": a.quick,
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": m,
        "postfix": subprocess.run(["postconf", "-d", "-h", "mail_version"],
                                  capture_output=True,
                                  text=True).stdout.strip(),
        "commit": git_commit(a.repo),
        "ports": {"ours": lab.ours_port, "ref": lab.ref_port},
        "cfg": cfg,
        "parts": parts,
        "note": a.note,
    }
    log("lab %s: resume-smtpd on 127.0.0.1:%d, Postfix smtpd on :%d; "
        "%s mode" % (lab.dir, lab.ours_port, lab.ref_port,
                     "quick" if a.quick else "full"))
    t0 = time.monotonic()
    try:
        if "throughput" in parts:
            part_throughput(lab, cfg, fails, results)
        if "concurrency" in parts:
            part_concurrency(lab, cfg, fails, results, a.tag)
        if "safety" in parts:
            part_safety(lab, cfg, fails, results)
        if "badlink" in parts:
            import badlink
            results["badlink"] = badlink.part_badlink(
                lab, a.quick, fails, work, a.tag, a.sender, a.link, log)
    except KeyboardInterrupt:
        fails.add("interrupted")
    except Exception as e:  # noqa: BLE001 - a broken part still reports
        import traceback
        traceback.print_exc()
        fails.add("part failed: %r" % e)
    finally:
        results["seconds"] = time.monotonic() - t0
        results["load_end"] = os.getloadavg()
        results["failures"] = fails.items
        with open(os.path.join(work, "results.json"), "w") as f:
            json.dump(results, f, indent=1, default=str)

    # The report, plots, and latest.md.
    import report
    md = report.write(results, out_dir)
    shutil.copy(os.path.join(work, "results.json"),
                md[:-3] + ".json")
    log("report: %s" % md)
    if fails.items:
        log("%d failure(s): %s" % (len(fails.items),
                                   "; ".join(fails.items[:5])))
        return 1
    log("every message arrived (%.0f s)" % results["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
