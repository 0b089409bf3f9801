#!/usr/bin/python3
"""Sends numbered messages through /dev/log (journald, which forwards them to the syslog
daemon through syslog.socket) while a command runs, and times their arrival in a file.

Prints one JSON object: how many were sent and found, which are missing, the longest time
the file received nothing while messages were being sent (the gap a restart leaves), and the
longest time one message took from the send to the file.
Usage: gap.py --file /var/log/user.log --count 1000 --every-ms 2 --at-ms 500 -- CMD ARGS..."""
import argparse
import json
import os
import re
import socket
import subprocess
import threading
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--file", required=True)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--every-ms", type=float, default=2.0)
    p.add_argument("--at-ms", type=float, default=500.0)
    p.add_argument("--deadline-s", type=float, default=60.0)
    p.add_argument("--tag", default="gapcheck")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    run = "%d-%d" % (os.getpid(), time.time_ns() % 1000000)
    pattern = re.compile(r"%s: run=%s seq=(\d+)" % (re.escape(a.tag), run))

    start = os.path.getsize(a.file) if os.path.exists(a.file) else 0
    arrivals = {}
    stop = threading.Event()

    def follow():
        pos, rest = start, b""
        while not stop.is_set():
            try:
                size = os.path.getsize(a.file)
            except OSError:
                size = pos
            if size < pos:  # replaced or truncated: read from the start
                pos, rest = 0, b""
            if size > pos:
                with open(a.file, "rb") as f:
                    f.seek(pos)
                    data = f.read(size - pos)
                pos += len(data)
                now = time.monotonic()
                lines = (rest + data).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    m = pattern.search(line.decode("utf-8", "replace"))
                    if m:
                        arrivals.setdefault(int(m.group(1)), now)
            else:
                time.sleep(0.0005)

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect("/dev/log")
    cmd_result = {}

    def run_cmd():
        t0 = time.monotonic()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        cmd_result.update(rc=r.returncode, secs=round(time.monotonic() - t0, 3), stderr=r.stderr[-500:])

    runner = threading.Thread(target=run_cmd)
    began = time.monotonic()
    sent_at = []
    for i in range(a.count):
        due = began + i * a.every_ms / 1000.0
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        if cmd and not runner.is_alive() and not cmd_result and now - began >= a.at_ms / 1000.0 and runner.ident is None:
            runner.start()
        s.send(("<14>%s: run=%s seq=%d" % (a.tag, run, i)).encode())
        sent_at.append(time.monotonic())
    if cmd and runner.ident is None:
        runner.start()
    if cmd:
        runner.join()
    deadline = time.monotonic() + a.deadline_s
    while len(arrivals) < a.count and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    stop.set()
    t.join()
    times = sorted(arrivals.values())
    last_send = sent_at[-1] if sent_at else began
    # The longest stretch without a new line while messages were still being sent.
    window = [x for x in times if x <= last_send + 0.001]
    gaps = [b - a_ for a_, b in zip(window, window[1:])]
    missing = [i for i in range(a.count) if i not in arrivals]
    delays = [arrivals[i] - sent_at[i] for i in arrivals if i < len(sent_at)]
    print(json.dumps({
        "sent": a.count,
        "found": len(arrivals),
        "missing": len(missing),
        "first_missing": missing[:10],
        "gap_ms": round(max(gaps) * 1000, 1) if gaps else None,
        "max_delay_ms": round(max(delays) * 1000, 1) if delays else None,
        "cmd": cmd_result,
    }))


if __name__ == "__main__":
    main()
