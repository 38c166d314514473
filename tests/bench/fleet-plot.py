#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fleet-plot.py CSV SVG: plots the per-minute figures fleet-sim --csv wrote.

Two panels over the same time axis (minutes from the outage's start): the
fleet against an EST server without a limit (no outage; with the outage), and
against a server at capacity (requests offered, of which returns the server
asked for with Retry-After; requests taken on; the capacity). Plain SVG, no
plotting library: the figure is reproducible on any machine with python3.
"""
import csv
import sys

W, H = 960, 300           # one panel
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 40
COLOURS = {
    "no_outage": "#9e9e9e",
    "outage_unlimited": "#1f77b4",
    "offered": "#ff7f0e",
    "returns": "#9467bd",
    "taken": "#2ca02c",
    "capacity": "#d62728",
}


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nice_step(span, ticks):
    raw = span / ticks
    for m in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000):
        if m >= raw:
            return m
    return raw


def panel(out, y0, title, xs, series, outage, ymax):
    x_lo, x_hi = xs[0], xs[-1] + 1
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x):
        return LEFT + (x - x_lo) * pw / (x_hi - x_lo)

    def py(y):
        return y0 + TOP + ph - min(y, ymax) * ph / ymax

    out.append(f'<text x="{LEFT}" y="{y0 + 20}" font-size="15" font-weight="bold">{esc(title)}</text>')
    # the outage, shaded
    out.append(f'<rect x="{px(outage[0]):.1f}" y="{y0 + TOP}" width="{px(outage[1]) - px(outage[0]):.1f}" '
               f'height="{ph}" fill="#000" fill-opacity="0.06"/>')
    out.append(f'<text x="{(px(outage[0]) + px(outage[1])) / 2:.1f}" y="{y0 + TOP + 14}" font-size="12" '
               f'text-anchor="middle" fill="#555">EST server down</text>')
    # axes and grid
    step = nice_step(ymax, 5)
    y = 0
    while y <= ymax:
        out.append(f'<line x1="{LEFT}" y1="{py(y):.1f}" x2="{W - RIGHT}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" font-size="11" text-anchor="end">{y:g}</text>')
        y += step
    xstep = 60
    x = (x_lo // xstep) * xstep
    while x <= x_hi:
        if x >= x_lo:
            out.append(f'<line x1="{px(x):.1f}" y1="{y0 + TOP + ph}" x2="{px(x):.1f}" y2="{y0 + TOP + ph + 4}" '
                       f'stroke="#000"/>')
            out.append(f'<text x="{px(x):.1f}" y="{y0 + TOP + ph + 16}" font-size="11" '
                       f'text-anchor="middle">{x}</text>')
        x += xstep
    out.append(f'<rect x="{LEFT}" y="{y0 + TOP}" width="{pw}" height="{ph}" fill="none" stroke="#000"/>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{y0 + H - 6}" font-size="12" text-anchor="middle">'
               f'minutes from the outage\'s start</text>')
    out.append(f'<text x="14" y="{y0 + TOP + ph / 2}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 14 {y0 + TOP + ph / 2})">requests per minute</text>')
    # the series, then their legend
    lx = LEFT + 10
    for name, label, ys, dash in series:
        pts = " ".join(f"{px(x) + 0.5:.1f},{py(v):.1f}" for x, v in zip(xs, ys))
        extra = ' stroke-dasharray="6 3"' if dash else ""
        out.append(f'<polyline points="{pts}" fill="none" stroke="{COLOURS[name]}" stroke-width="1.2"{extra}/>')
    ly = y0 + TOP + 30
    for name, label, ys, dash in series:
        extra = ' stroke-dasharray="6 3"' if dash else ""
        out.append(f'<line x1="{W - RIGHT - 260}" y1="{ly - 4}" x2="{W - RIGHT - 236}" y2="{ly - 4}" '
                   f'stroke="{COLOURS[name]}" stroke-width="2"{extra}/>')
        out.append(f'<text x="{W - RIGHT - 230}" y="{ly}" font-size="12">{esc(label)}</text>')
        ly += 16
    del lx


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: fleet-plot.py CSV SVG")
    with open(sys.argv[1], newline="") as f:
        rows = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(f)]
    if not rows:
        sys.exit(f"fleet-plot: {sys.argv[1]} holds no rows")
    xs = [r["minute"] for r in rows]
    outage = (0, rows[0]["outage_end"])
    col = {k: [r[k] for r in rows] for k in rows[0]}
    offered = [r["new"] + r["returns"] for r in rows]
    cap = rows[0]["capacity"]
    ymax = max(max(col["outage_unlimited"][i] for i in range(len(rows)) if xs[i] >= outage[1]),
               max(offered[i] for i in range(len(rows)) if xs[i] >= outage[1]), cap) * 1.1

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{2 * H}" '
           f'viewBox="0 0 {W} {2 * H}" font-family="sans-serif">',
           f'<rect width="{W}" height="{2 * H}" fill="#fff"/>']
    panel(out, 0, "EST server without a limit: requests per minute (failing ones while it is down)", xs,
          [("no_outage", "no outage", col["no_outage"], False),
           ("outage_unlimited", "6-hour outage (every request reaching the server)",
            col["outage_unlimited"], False)],
          outage, ymax)
    panel(out, H, f"EST server at capacity ({cap} a minute, 503 + Retry-After beyond)", xs,
          [("offered", "offered (every request, 503s included)", offered, False),
           ("returns", "of which returns at a time the server gave", col["returns"], True),
           ("taken", "taken on (served)", col["taken"], False),
           ("capacity", "capacity", [cap] * len(xs), True)],
          outage, ymax)
    out.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
