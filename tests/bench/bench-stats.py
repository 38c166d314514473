#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-stats.py: the tables of bench-enroll.sh, from its samples.

Benchmark tooling, never installed; /usr/bin/python3 standard library only.

  bench-stats.py enroll --samples FILE.tsv --est-log EST.log

FILE.tsv has a header and lines "round variant us start_us est_from est_to":
the wall time of one run and its start (microseconds since the epoch), and
the EST server's log lines (0-based, est_to excluded) written during it, from
which the HTTP requests and TLS connections of each run are counted. Prints
a markdown table: per variant the median, p90 (nearest rank), min and max in
milliseconds and the ratio of its median to variant B's; the median over
rounds of A - C (paired by round), the cost of creating and persisting the
TPM key; and where the time goes: the server logs each request just before
it answers (millisecond timestamps), which cuts every run into the stretch
until the first answer, between answers, and after the last one.
"""

import argparse
import datetime
import json
import math
import statistics
import sys

DESCRIPTIONS = {
    "A": "fleetidd --oneshot, creates the TPM key",
    "B": "curl-enroll.sh, software key (baseline)",
    "C": "fleetidd --oneshot, reuses the TPM key",
    "D": "fleetidd --oneshot, already enrolled (no EST traffic)",
    "E": "B\u2032: curl-enroll.sh --full, software key, /cacerts + /csrattrs + /simpleenroll on one connection",
}


def paired_median(by_variant, a, b):
    """(median, p90, n) over rounds of a's time minus b's, or None."""
    ta = {r["round"]: r["us"] for r in by_variant.get(a, [])}
    tb = {r["round"]: r["us"] for r in by_variant.get(b, [])}
    diffs = [ta[k] - tb[k] for k in sorted(ta.keys() & tb.keys())]
    if not diffs:
        return None
    return statistics.median(diffs), p90(diffs), len(diffs)


def p90(values):
    """Nearest-rank 90th percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


def read_samples(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().split()
        if header != ["round", "variant", "us", "start_us", "est_from", "est_to"]:
            sys.exit("bench-stats: %s does not start with the expected header" % path)
        for line in f:
            r, v, us, start, a, b = line.split()
            rows.append({"round": int(r), "variant": v, "us": int(us), "start": int(start),
                         "est": (int(a), int(b))})
    if not rows:
        sys.exit("bench-stats: no samples in %s" % path)
    return rows


def requests_in(est_lines, rng):
    """The "request" records the EST server logged in a range of its log."""
    out = []
    for line in est_lines[rng[0]:rng[1]]:
        rec = json.loads(line)
        if rec.get("event") == "request":
            out.append(rec)
    return out


def epoch_us(iso):
    t = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp() * 1e6)


def breakdown(run, requests):
    """(labels, microseconds) of the stretches of one run between the server's answers."""
    labels, spans = [], []
    prev, prev_op = run["start"], "start"
    for rec in requests:
        t = epoch_us(rec["time"])
        labels.append("%s → /%s answered" % (prev_op, rec["op"]))
        spans.append(t - prev)
        prev, prev_op = t, "/" + rec["op"]
    labels.append("%s → exit" % prev_op)
    spans.append(run["start"] + run["us"] - prev)
    return labels, spans


def ms(us):
    return "%.1f" % (us / 1000.0)


def cmd_enroll(args):
    rows = read_samples(args.samples)
    with open(args.est_log, encoding="utf-8") as f:
        est_lines = f.readlines()

    by_variant = {}
    for r in rows:
        by_variant.setdefault(r["variant"], []).append(r)
    if "B" not in by_variant:
        sys.exit("bench-stats: no samples of the baseline B")
    base = statistics.median(r["us"] for r in by_variant["B"])

    print("| variant | what | runs | median ms | p90 ms | min ms | max ms | median / B "
          "| HTTP requests per run | TLS connections per run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for v in sorted(by_variant):
        us = [r["us"] for r in by_variant[v]]
        counts = set()
        for r in by_variant[v]:
            reqs = requests_in(est_lines, r["est"])
            counts.add((len(reqs), len({q["peer"] for q in reqs})))
        req = "/".join(str(c[0]) for c in sorted(counts))
        conn = "/".join(str(c[1]) for c in sorted(counts))
        print("| %s | %s | %d | %s | %s | %s | %s | %.2f | %s | %s |" % (
            v, DESCRIPTIONS.get(v, v), len(us), ms(statistics.median(us)), ms(p90(us)),
            ms(min(us)), ms(max(us)), statistics.median(us) / base, req, conn))

    if "E" in by_variant:
        base_e = statistics.median(r["us"] for r in by_variant["E"])
        print()
        print("Against B\u2032 (E), like with like: " + ", ".join(
            "%s %.2f \u00d7" % (v, statistics.median(r["us"] for r in by_variant[v]) / base_e)
            for v in sorted(by_variant) if v != "E") + ".")
    print()
    diff = paired_median(by_variant, "A", "C")
    if diff:
        print("- A − C, paired by round (creating and persisting the operational key in the TPM): "
              "median %s ms, p90 %s ms over %d rounds." % (ms(diff[0]), ms(diff[1]), diff[2]))

    print()
    print("Where the time goes (median ms of each stretch; the server stamps each request just "
          "before answering it, to the millisecond):")
    print()
    for v in sorted(by_variant):
        shapes = set()
        per_run = []
        for r in by_variant[v]:
            labels, spans = breakdown(r, requests_in(est_lines, r["est"]))
            shapes.add(tuple(labels))
            per_run.append(spans)
        if shapes == {("start → exit",)}:
            continue  # no requests: the table above says it all
        if len(shapes) != 1:
            print("- %s: runs made different requests, no breakdown" % v)
            continue
        labels = shapes.pop()
        medians = [statistics.median(col) for col in zip(*per_run)]
        print("- %s: %s" % (v, "; ".join("%s %s" % (lab, ms(m)) for lab, m in zip(labels, medians))))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("enroll", help="the table of bench-enroll.sh")
    s.add_argument("--samples", required=True)
    s.add_argument("--est-log", required=True)
    s.set_defaults(func=cmd_enroll)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
