#!/usr/bin/env python3
"""Summarize one perfdhcp -x t run: rate, drops, latency percentiles.

Usage: summarize.py NAME < perfdhcp-output; prints one tab-separated line:
name rate do_sent do_drops do_p50 do_p99 ra_sent ra_drops ra_p50 ra_p99 (ms).
"""
import re
import sys


def pct(vals, p):
    if not vals:
        return float("nan")
    vals = sorted(vals)
    k = min(len(vals) - 1, max(0, int(round(p / 100.0 * len(vals) + 0.5)) - 1))
    return vals[k]


def main():
    name = sys.argv[1]
    rate = float("nan")
    sent, drops, timers = {}, {}, {"DO": [], "RA": []}
    section = None
    for line in sys.stdin:
        m = re.match(r"Rate: ([0-9.]+)", line)
        if m:
            rate = float(m.group(1))
        if "Statistics for: DISCOVER-OFFER" in line or "Timestamps for packets: DISCOVER-OFFER" in line:
            section = "DO"
        elif "Statistics for: REQUEST-ACK" in line or "Timestamps for packets: REQUEST-ACK" in line:
            section = "RA"
        m = re.match(r"sent packets: (\d+)", line)
        if m and section:
            sent[section] = int(m.group(1))
        m = re.match(r"drops: (\d+)", line)
        if m and section:
            drops[section] = int(m.group(1))
        m = re.match(r"sent / received: ([0-9.]+) / ([0-9.]+)", line)
        if m and section:
            timers[section].append((float(m.group(2)) - float(m.group(1))) * 1000.0)
    out = [name, "%.1f" % rate]
    for s in ("DO", "RA"):
        out += [str(sent.get(s, 0)), str(drops.get(s, 0)),
                "%.3f" % pct(timers[s], 50), "%.3f" % pct(timers[s], 99)]
    print("\t".join(out))


if __name__ == "__main__":
    main()
