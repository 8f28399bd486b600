#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NAME
    xsend - STAND-IN senders for the benchmark: XRESUME and plain SMTP

SYNOPSIS
    xsend.py -s host:port -m FILE -f sender [--no-resume] [--plain]
             [--give-up S] [--attempts N] [--timeout S] --report FILE rcpt

DESCRIPTION
    A small sender written for bench/ only, until build/client/resume-send
    is merged; bench/badlink.py prefers resume-send when it is built and
    marks every row sent by this program as "stand-in" in the report. It
    takes resume-send's options that the benchmark uses and writes the
    same key=value report (status, message_octets, wire_octets,
    connections, resumes, queue_id, seconds).

    Default: XRESUME (docs/draft-xresume.txt). After MAIL and RCPT it asks
    XRESUME NEW, or names its token after a break; it checks the SHA256
    of the prefix the server holds and sends the rest with DATA. A break
    makes it reconnect at once, until it is delivered, --attempts
    connections were made, or --give-up seconds have passed.

    --plain: what an ordinary sender does: smtplib, the whole message
    again on every attempt, the same bounds.

    The message file holds the message with CRLF line ends. Only
    127.0.0.0/8 or an address inside a network namespace made by the
    benchmark is ever given as the server.

SEE ALSO
    bench/badlink.py, docs/draft-xresume.txt
"""

import argparse
import base64
import hashlib
import re
import smtplib
import socket
import sys
import time

WORDS = re.compile(r"([A-Z0-9]+)=(\S+)")


class Broken(Exception):
    """The connection broke or timed out."""


class Refused(Exception):
    """A permanent (5xx) reply: trying again would not help."""


def check(reply, want, what):
    """Broken unless the last line starts with want; Refused on 5xx."""
    last = reply[-1]
    if last.startswith(want):
        return
    if last.startswith("5"):
        raise Refused("%s: %s" % (what, last))
    raise Broken("%s: %s" % (what, last))


class Conn:
    """A raw SMTP connection that counts the octets it sends."""

    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.sent = 0

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Broken(str(e))
        self.sent += len(data)

    def reply(self):
        """The lines of one reply, as text; Broken on EOF or timeout."""
        lines = []
        while True:
            while b"\n" not in self.buf:
                try:
                    chunk = self.sock.recv(65536)
                except OSError as e:
                    raise Broken(str(e))
                if not chunk:
                    raise Broken("connection closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode("utf-8", "replace")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return lines

    def cmd(self, line):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def stuff(octets):
    """Dot-stuffing (RFC 5321 4.5.2) of octets that begin at a line."""
    return re.sub(rb"(^|\n)\.", rb"\1..", octets)


def digest(octets):
    return base64.b64encode(hashlib.sha256(octets).digest()).decode()


def session(c, sender, rcpt, size, token, msg, keep):
    """One XRESUME session up to the end; returns (state, token, queue
    id, resumed offset or None). state: 'done' or 'queued'. The token
    is put into keep["token"] as soon as the server gives it, so that
    the next session names it even when this one breaks."""
    r = c.reply()
    if not r[-1].startswith("220"):
        raise Broken("banner: " + r[-1])
    r = c.cmd("EHLO xsend.lab.example")
    if not r[-1].startswith("250"):
        raise Broken("EHLO: " + r[-1])
    if not any(l[4:].upper().startswith("XRESUME") for l in r):
        raise Broken("no XRESUME offered")
    check(c.cmd("MAIL FROM:<%s> SIZE=%d" % (sender, size)), "250", "MAIL")
    check(c.cmd("RCPT TO:<%s>" % rcpt), "250", "RCPT")
    r = c.cmd("XRESUME %s" % (token or "NEW"))
    last = r[-1]
    if last.startswith("250") and " DONE" in last:
        qid = dict(WORDS.findall(last)).get("QUEUEID", "")
        return "done", token, qid, None
    check(r, "250", "XRESUME")
    w = dict(WORDS.findall(last))
    new_token = w["TOKEN"]
    keep["token"] = new_token
    off = int(w.get("OFFSET", "0"))
    resumed = None
    if off:
        # The server's prefix must be ours, byte for byte; otherwise
        # give the token up and start over with a fresh one.
        if off > len(msg) or w.get("SHA256") != digest(msg[:off]):
            c.cmd("XRESUME ABORT %s" % new_token)
            keep["token"] = None
            raise Broken("prefix digest differs at %d" % off)
        resumed = off
        keep["offsets"].append(off)
    check(c.cmd("DATA"), "354", "DATA")
    c.send(stuff(msg[off:]) + b".\r\n")
    r = c.reply()
    check(r, "250", "end of data")
    try:
        c.cmd("QUIT")
    except Broken:
        pass
    return "queued", new_token, r[-1].rsplit(" ", 1)[-1], resumed


def send_resumable(host, port, msg, sender, rcpt, a):
    st = {"status": "tempfail", "message_octets": len(msg),
          "wire_octets": 0, "connections": 0, "resumes": 0,
          "resume_offsets": [], "queue_id": "", "reason": ""}
    keep = {"token": None, "offsets": []}
    t0 = time.monotonic()
    while st["connections"] < a.attempts \
            and time.monotonic() - t0 < a.give_up:
        st["connections"] += 1
        c = None
        try:
            c = Conn(host, port, a.timeout)
            state, _, qid, resumed = session(c, sender, rcpt, len(msg),
                                             keep["token"], msg, keep)
            st["status"], st["queue_id"] = "delivered", qid
            st["wire_octets"] += c.sent
            break
        except Refused as e:
            st["status"], st["reason"] = "refused", str(e)
            if c is not None:
                st["wire_octets"] += c.sent
            break
        except (Broken, OSError, KeyError, ValueError) as e:
            st["reason"] = str(e)
            if c is not None:
                st["wire_octets"] += c.sent
            time.sleep(0.2)
        finally:
            if c is not None:
                c.close()
    st["resumes"] = len(keep["offsets"])
    st["resume_offsets"] = keep["offsets"]
    st["seconds"] = time.monotonic() - t0
    return st


def send_plain(host, port, msg, sender, rcpt, a):
    """smtplib, the whole message on every attempt."""
    st = {"status": "tempfail", "message_octets": len(msg),
          "wire_octets": 0, "connections": 0, "resumes": 0,
          "resume_offsets": [], "queue_id": "", "reason": ""}
    t0 = time.monotonic()
    while st["connections"] < a.attempts \
            and time.monotonic() - t0 < a.give_up:
        st["connections"] += 1
        s = None
        try:
            s = smtplib.SMTP(host, port, "xsend.lab.example",
                             timeout=a.timeout)
            s.ehlo()
            s.mail(sender, ["SIZE=%d" % len(msg)])
            code, text = s.rcpt(rcpt)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({rcpt: (code, text)})
            code, text = s.data(msg)
            if code != 250:
                raise smtplib.SMTPDataError(code, text)
            st["status"] = "delivered"
            st["queue_id"] = text.decode("ascii", "replace").rsplit(" ",
                                                                    1)[-1]
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                pass
            break
        except (smtplib.SMTPResponseException, smtplib.SMTPSenderRefused,
                smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as e:
            code = getattr(e, "smtp_code", 0) or 0
            st["reason"] = str(e)[:200]
            if 500 <= code < 600:
                st["status"] = "refused"
                break
            time.sleep(0.2)
        except (smtplib.SMTPException, OSError) as e:
            st["reason"] = str(e)[:200]
            time.sleep(0.2)
        finally:
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
    st["seconds"] = time.monotonic() - t0
    return st


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-s", dest="server", required=True)
    ap.add_argument("-m", dest="message", required=True)
    ap.add_argument("-f", dest="sender", required=True)
    ap.add_argument("--plain", "--no-resume", dest="plain",
                    action="store_true")
    ap.add_argument("--give-up", type=float, default=600.0)
    ap.add_argument("--attempts", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--tls", default="none")
    ap.add_argument("--report", required=True)
    ap.add_argument("-q", action="store_true")
    ap.add_argument("rcpt")
    a = ap.parse_args()
    host, _, port = a.server.rpartition(":")
    with open(a.message, "rb") as f:
        msg = f.read()
    fn = send_plain if a.plain else send_resumable
    st = fn(host, int(port), msg, a.sender, a.rcpt, a)
    with open(a.report, "w") as f:
        for k, v in st.items():
            if isinstance(v, list):
                v = ",".join(str(x) for x in v)
            if isinstance(v, float):
                v = "%.3f" % v
            f.write("%s=%s\n" % (k, v))
    return 0 if st["status"] == "delivered" else 75


if __name__ == "__main__":
    sys.exit(main())
