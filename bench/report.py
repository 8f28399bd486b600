#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    report - render bench results as markdown and PNG plots

SYNOPSIS
    report.py RESULTS.json [OUT_DIR]

DESCRIPTION
    Writes <date>-<cores>core.md and its PNG plots (gnuplot, pngcairo)
    into OUT_DIR, and copies the markdown to latest.md there. Every
    figure of resume-smtpd stands next to Postfix's from the same run;
    the closing note compares them with the targets of the issue and
    names the largest gap. Can be run again on a saved results file.

SEE ALSO
    bench/bench.py, bench/README.md
"""

import json
import os
import shutil
import statistics
import subprocess
import sys

KIB = 1024.0

# The targets of issue 4.
T_RATIO_1K_10 = 1.25
T_RATIO_ALL = 1.0
T_IDLE_KIB = 64.0
T_LINK_RATIO = 1.05
T_CKPT_COST = 0.10


def mmm(values, fmt="%.1f"):
    """min / median / max as text."""
    if not values:
        return "-"
    if len(values) == 1:
        return fmt % values[0]
    return "%s / %s / %s" % (fmt % min(values),
                             fmt % statistics.median(values),
                             fmt % max(values))


def med(values):
    return statistics.median(values) if values else 0.0


def kib(b):
    return "%.0f" % (b / KIB) if b is not None else "-"


class Targets:
    """Each target once: met or not, and by how much."""

    def __init__(self):
        self.rows = []

    def add(self, name, want, got, met, gap):
        # gap: the relative shortfall (0 when met), to find the largest.
        self.rows.append((name, want, got, met, gap))


def throughput_section(r, out, plots, t, stem, out_dir):
    cells = r.get("throughput") or []
    if not cells:
        return
    multi = all("multi" in c["runs"] for c in cells)
    n_multi = r.get("multi_sessions", 0)
    out.append("## Throughput\n")
    out.append("smtp-source (Postfix's), one connection per message, one "
               "recipient; messages per second from the first connection "
               "to the last reply (min / median / max of %d repetitions, "
               "the servers in turn); CPU is the CPU time (user and "
               "system) of the side's smtpd processes per message "
               "(median). Ratio = median ours / median Postfix.\n"
               % r["cfg"]["reps"])
    if multi:
        out.append("resume-smtpd runs twice, as two services of the same "
                   "master: **1/proc** with the default "
                   "smtpd_sessions_per_process=1 (Postfix's process model: "
                   "one session per process), and **%d/proc** with "
                   "smtpd_sessions_per_process=%d (the event-driven model, "
                   "as for many slow clients).\n" % (n_multi, n_multi))
    sides = ["ours", "multi", "ref"] if multi else ["ours", "ref"]
    for transport in ("discard", "maildir"):
        rows = [c for c in cells if c["transport"] == transport]
        if not rows:
            continue
        out.append("### %s\n" % ("discard(8) transport" if transport ==
                                 "discard" else "local(8) delivery to a "
                                 "Maildir"))
        if multi:
            out.append("| size | sessions | resume-smtpd 1/proc msg/s "
                       "| resume-smtpd %d/proc msg/s | Postfix msg/s "
                       "| ratio 1/proc | ratio %d/proc | CPU ms/msg 1/proc "
                       "| CPU ms/msg %d/proc | CPU ms/msg Postfix |"
                       % (n_multi, n_multi, n_multi))
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        else:
            out.append("| size | sessions | resume-smtpd msg/s "
                       "| Postfix msg/s | ratio | CPU ms/msg ours "
                       "| CPU ms/msg Postfix |")
            out.append("|---|---:|---:|---:|---:|---:|---:|")
        for c in rows:
            rates = {s: [x["rate"] for x in c["runs"][s]] for s in sides}
            ref = med(rates["ref"])
            c["ratio"] = med(rates["ours"]) / ref if ref else 0.0
            if multi:
                c["ratio_multi"] = med(rates["multi"]) / ref if ref else 0.0
            under = any(x["cpu_undercounted"] for s in sides
                        for x in c["runs"][s])
            cpu = ["%.2f" % (med([x["cpu_per_msg"] for x in c["runs"][s]])
                             * 1e3) for s in sides]
            ratios = ["**%.2f**" % c["ratio"]]
            if multi:
                ratios.append("**%.2f**" % c["ratio_multi"])
            out.append("| %s | %d | %s | %s | %s%s |" % (
                c["size"], c["sessions"],
                " | ".join(mmm(rates[s]) for s in sides),
                " | ".join(ratios), " | ".join(cpu),
                " (undercounted)" if under else ""))
        out.append("")

    # Targets: 1 KiB at 10 sessions, and everywhere; for each model.
    models = [("ratio", "1/proc" if multi else "")]
    if multi:
        models.append(("ratio_multi", "%d/proc" % n_multi))
    for key, label in models:
        tag = (" [%s]" % label) if label else ""
        for c in cells:
            if c["size"] == "1KiB" and c["sessions"] == 10 \
                    and c["transport"] == "discard":
                t.add("throughput ratio, 1 KiB, 10 sessions (discard)%s"
                      % tag, ">= %.2f" % T_RATIO_1K_10, "%.2f" % c[key],
                      c[key] >= T_RATIO_1K_10,
                      max(0.0, 1 - c[key] / T_RATIO_1K_10))
        worst = min(cells, key=lambda c: c[key])
        t.add("throughput ratio, every cell (worst: %s %s %d sessions)%s"
              % (worst["transport"], worst["size"], worst["sessions"], tag),
              ">= %.2f" % T_RATIO_ALL, "%.2f" % worst[key],
              worst[key] >= T_RATIO_ALL,
              max(0.0, 1 - worst[key] / T_RATIO_ALL))

    # Plot: ratio per cell, one bar per cell (1/proc), a point for the
    # event-driven service.
    data = os.path.join(out_dir, stem + "-throughput.dat")
    with open(data, "w") as f:
        for c in cells:
            f.write('"%s %s s=%d" %.3f %.3f\n' % (
                c["transport"][:4], c["size"], c["sessions"], c["ratio"],
                c.get("ratio_multi", c["ratio"])))
    png = stem + "-throughput.png"
    extra = (", '%s' using 0:3 with points pt 7 ps 1.2 title '%d sessions "
             "per process'" % (data, n_multi)) if multi else ""
    gp = """set terminal pngcairo size 900,450
set output '%s'
set title 'Throughput ratio resume-smtpd / Postfix smtpd (median)'
set style fill solid 0.6
set boxwidth 0.7
set yrange [0:*]
set xtics rotate by -45 font ',8'
set grid ytics
plot '%s' using 0:2:xtic(1) with boxes title '1 session per process'%s, 1 with lines lw 2 title 'parity', %s with lines dt 2 title 'target 1 KiB/10 s'
""" % (os.path.join(out_dir, png), data, extra, T_RATIO_1K_10)
    if gnuplot(gp):
        plots.append(png)
        out.append("![throughput ratio](%s)\n" % png)
    os.unlink(data)


def concurrency_section(r, out, plots, t, stem, out_dir):
    rows = r.get("concurrency") or []
    if not rows:
        return
    out.append("## Idle and trickling sessions\n")
    out.append("N clients connect at once (at most 500 connects in flight, "
               "3 s connect timeout), wait up to 10 s for the banner, send "
               "EHLO and hold the session: *idle* does nothing more, "
               "*trickle* goes on to MAIL, RCPT, DATA and sends one short "
               "header line every 2 s, never the final dot. *cold* is the "
               "first idle run right after a reload (no smtpd process "
               "running yet); the idle and trickle runs follow it. "
               "resume-smtpd runs with `-o smtpd_sessions_per_process=1000`; "
               "Postfix's smtpd with its default_process_limit of 100. "
               "Memory is the sum over the server's smtpd processes from "
               "/proc/PID/smaps_rollup, read while the sessions are held. "
               "PSS per session = total PSS / sessions holding a banner "
               "(what the target is checked against); marginal = (PSS "
               "loaded - PSS before) / the same. Probe: time to banner of "
               "10 new clients while the others are held (median; 'none' = "
               "no banner within 5 s).\n")
    out.append("| server | N | mode | got banner | held to the end | in DATA "
               "| processes | RSS MiB | PSS MiB | PSS KiB/session | "
               "marginal KiB/session | probe banner s | probes answered |")
    out.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
               "---:|")
    for h in rows:
        mem, base = h.get("mem") or {}, h.get("mem_base") or {}
        served = max(1, h["banners"])
        h["pss_per_session"] = mem.get("pss", 0) / served if mem else None
        marg = ((mem.get("pss", 0) - base.get("pss", 0)) / served
                if mem else None)
        pm = h.get("probe_median")
        out.append("| %s | %d | %s | %d | %d | %s | %s | %.1f | %.1f | %s | "
                   "%s | %s | %d/%d |" % (
                       "resume-smtpd" if h["side"] == "ours" else "Postfix",
                       h["n"], h["mode"], h["banners"], h["open_at_end"],
                       h["data"] if h["mode"] == "trickle" else "-",
                       mem.get("procs", "-"), mem.get("rss", 0) / 2**20,
                       mem.get("pss", 0) / 2**20, kib(h["pss_per_session"]),
                       kib(marg), "%.4f" % pm if pm is not None else "none",
                       h["probes_ok"], h["probes"]))
    out.append("")
    errs = ["%s %d %s: %s" % ("resume-smtpd" if h["side"] == "ours"
                              else "Postfix", h["n"], h["mode"],
                              ", ".join("%s x%d" % kv for kv in
                                        sorted(h["errors"].items())))
            for h in rows if h.get("errors")]
    if errs:
        out.append("Clients that gave up (connect = no TCP connection in "
                   "3 s, i.e. the listen queue was full; TimeoutError = no "
                   "banner or reply in time):\n")
        for e in errs:
            out.append("- " + e)
        out.append("")
    big = [h for h in rows if h["side"] == "ours" and h["mode"] == "idle"]
    if big:
        h = max(big, key=lambda x: x["n"])
        per = h["pss_per_session"] or 0.0
        note = "" if h["n"] >= 10000 else " (only %d sessions measured)" % \
            h["n"]
        t.add("PSS per idle session at 10,000 sessions" + note,
              "<= %d KiB" % T_IDLE_KIB, "%.1f KiB (%d of %d served)"
              % (per / KIB, h["banners"], h["n"]),
              per / KIB <= T_IDLE_KIB and h["banners"] >= h["n"],
              max(0.0, per / KIB / T_IDLE_KIB - 1,
                  1 - h["banners"] / max(1, h["n"])))


def badlink_section(r, out, plots, t, stem, out_dir):
    b = r.get("badlink")
    if not b:
        return
    out.append("## Bad links\n")
    for line in b.get("notes", []):
        out.append(line + "\n")
    out.append("| link | message | sender | server | delivered | copies | "
               "octets on the link (c->s) | / size | crossed / size | "
               "time s | connections | breaks | resumes |")
    out.append("|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
               "---:|")
    for x in b.get("runs", []):
        crossed = x.get("c2s_delivered")
        out.append("| %s | %d MiB | %s | %s | %s | %d | %d | %.3f | %s | "
                   "%.1f | %d | %d | %s |" % (
                       x["link"], x["size"] // 2**20, x["sender"],
                       "resume-smtpd" if x["side"] == "ours" else "Postfix",
                       "yes" if x["delivered"] else "**no**", x["copies"],
                       x["c2s"], x["c2s"] / x["size"],
                       "%.3f" % (crossed / x["size"]) if crossed is not None
                       else "-", x["seconds"],
                       x["connections"], x["breaks"],
                       x.get("resumes", "-")))
    out.append("")
    for x in b.get("runs", []):
        if x.get("target"):
            ratio = x["c2s"] / x["size"]
            t.add("octets on a link breaking every 1 MiB, 10 MiB message",
                  "<= %.2f x size" % T_LINK_RATIO,
                  "%.3f x, %s" % (ratio, "delivered" if x["delivered"]
                                  else "NOT delivered"),
                  x["delivered"] and ratio <= T_LINK_RATIO,
                  max(0.0, ratio / T_LINK_RATIO - 1)
                  if x["delivered"] else 1.0)


def safety_section(r, out, plots, t, stem, out_dir):
    rows = r.get("safety") or []
    if not rows:
        return
    out.append("## The cost of safety\n")
    out.append("resume-smtpd only, 100 KiB messages, 10 sessions sending "
               "one message after another (bench/loadsend.py: MAIL, RCPT, "
               "[XRESUME NEW,] DATA), discard transport. Cost = 1 - "
               "rate with XRESUME / rate without, at the same checkpoint "
               "size.\n")
    out.append("| checkpoint size | XRESUME | msg/s (min / median / max) | "
               "CPU ms/msg | cost |")
    out.append("|---:|---|---:|---:|---:|")
    by = {(x["checkpoint"], x["xresume"]): x for x in rows}
    for x in rows:
        rates = [y["rate"] for y in x["runs"]]
        cost = ""
        if x["xresume"] and (x["checkpoint"], False) in by:
            plain = med([y["rate"] for y in
                         by[(x["checkpoint"], False)]["runs"]])
            c = 1 - med(rates) / plain if plain else 0.0
            x["cost"] = c
            cost = "%.1f %%" % (c * 100)
            t.add("checkpoint cost at 100 KiB, checkpoint %d" % x[
                "checkpoint"], "<= %d %%" % (T_CKPT_COST * 100),
                  "%.1f %%" % (c * 100), c <= T_CKPT_COST,
                  max(0.0, c / T_CKPT_COST - 1))
        out.append("| %d | %s | %s | %.2f | %s |" % (
            x["checkpoint"], "yes" if x["xresume"] else "no", mmm(rates),
            med([y["cpu_per_msg"] for y in x["runs"]]) * 1e3, cost))
    out.append("")


def gnuplot(script):
    try:
        r = subprocess.run(["gnuplot"], input=script, text=True,
                           capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def write(r, out_dir):
    """Write the report; returns the path of the markdown file."""
    m = r["machine"]
    date = r["started"][:10]
    stem = "%s-%dcore%s" % (date, m["cores"], "-quick" if r["quick"] else "")
    out, plots, t = [], [], Targets()
    out.append("# resume-smtpd benchmark, %s\n" % r["started"])
    out.append("| | |\n|---|---|")
    out.append("| machine | %d cores, %s |" % (m["cores"], m["cpu"]))
    out.append("| load average at start / end | %s / %s |" % (
        " ".join("%.2f" % x for x in m["load"]),
        " ".join("%.2f" % x for x in r.get("load_end", []))))
    out.append("| Postfix | %s |" % r["postfix"])
    out.append("| commit | %s |" % r["commit"])
    out.append("| mode | %s |" % ("--quick (small matrix; figures are "
                                   "indicative only)" if r["quick"]
                                   else "full"))
    out.append("| duration | %.0f s |" % r.get("seconds", 0))
    out.append("")
    if r.get("note"):
        out.append("**Note:** %s\n" % r["note"])
    throughput_section(r, out, plots, t, stem, out_dir)
    concurrency_section(r, out, plots, t, stem, out_dir)
    safety_section(r, out, plots, t, stem, out_dir)
    badlink_section(r, out, plots, t, stem, out_dir)

    out.append("## Targets\n")
    out.append("| target | wanted | measured | met |")
    out.append("|---|---|---|---|")
    for name, want, got, met, gap in t.rows:
        out.append("| %s | %s | %s | %s |" % (name, want, got,
                                              "yes" if met else "**no**"))
    out.append("")
    out.append("## Closing note\n")
    fails = r.get("failures") or []
    if fails:
        out.append("**Mail was lost or a run failed** (%d): %s\n"
                   % (len(fails), "; ".join(fails[:10])))
    else:
        out.append("Every message sent in the throughput, concurrency and "
                   "safety parts was logged as delivered.\n")
    missed = [x for x in t.rows if not x[3]]
    if missed:
        worst = max(missed, key=lambda x: x[4])
        out.append("%d of %d targets met. The largest gap: **%s**, wanted "
                   "%s, measured %s.\n" % (len(t.rows) - len(missed),
                                           len(t.rows), worst[0], worst[1],
                                           worst[2]))
    elif t.rows:
        out.append("All %d targets met.\n" % len(t.rows))
    if r.get("closing"):
        out.append(r["closing"] + "\n")

    md = os.path.join(out_dir, stem + ".md")
    with open(md, "w") as f:
        f.write("\n".join(out))
    shutil.copy(md, os.path.join(out_dir, "latest.md"))
    return md


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        res = json.load(f)
    print(write(res, sys.argv[2] if len(sys.argv) > 2
                else os.path.dirname(os.path.abspath(sys.argv[1]))))
