#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""idle-cost-report.py: samples and tables of idle-cost.sh.

Benchmark tooling, never installed; /usr/bin/python3 standard library only.

  idle-cost-report.py snapshot DIR TAG NAME=PID...
  idle-cost-report.py next-timer PID...
  idle-cost-report.py report --dir DIR --seconds N

snapshot writes DIR/NAME.TAG.json for each NAME=PID, one right after the
other. It reads, without disturbing the process (no signal, no ptrace), what
/proc says about PID and each of its threads: context switches (voluntary,
nonvoluntary), schedstat (CPU time, times run), utime + stime, and the
memory figures of /proc/PID/status and /proc/PID/smaps_rollup.

next-timer prints the seconds until the earliest armed timerfd of the PIDs
expires (from /proc/PID/fdinfo; "none" if no timerfd is armed).

report reads DIR/<name>.{quiet0,quiet1,traced0,traced1}.json (snapshots at
both ends of the window without strace and of the window with strace),
DIR/<name>.strace (strace -f -tt -o of the second window) and, if present,
DIR/<name>.info (free text), for each name of COLUMNS, and prints the
markdown tables of docs/benchmarks.md, "Idle cost": one column per process,
and the ratio of each to the last (certmonger).
"""

import argparse
import collections
import json
import os
import re
import sys

# name: column heading. The last is the baseline of the ratios.
COLUMNS = {
    "fleetidd": "fleetidd A (enrolled in this run, TPM through tpm2-abrmd)",
    "fleetidd-direct": "fleetidd B (started enrolled, TPM direct)",
    "certmonger": "certmonger",
}
NAMES = tuple(COLUMNS)
BASELINE = NAMES[-1]
SMAPS_FIELDS = ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Anonymous", "Shared_Clean", "Shared_Dirty")
STATUS_FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads")

# A trace line: optional PID (strace -f), -tt time, then the rest.
TRACE_LINE = re.compile(r"^(?:(\d+)\s+)?(\d\d:\d\d:\d\d\.\d+)\s+(.*)$")
SYSCALL_ENTRY = re.compile(r"^([a-z_][a-z0-9_]*)\(")
RESUMED = re.compile(r"^<\.\.\. ([a-z_][a-z0-9_]*) resumed>")


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def kv_kb(text, fields):
    """{field: int} of the 'Field:   123 kB' (or bare number) lines of text."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key in fields:
            out[key] = int(value.split()[0])
    return out


def task_sample(task_dir):
    status = read_text(os.path.join(task_dir, "status"))
    sample = kv_kb(status, ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))
    sample["comm"] = read_text(os.path.join(task_dir, "comm")).strip()
    run_ns, _wait_ns, runs = (int(v) for v in read_text(os.path.join(task_dir, "schedstat")).split()[:3])
    sample["run_ns"] = run_ns
    sample["runs"] = runs
    # Fields after "(comm)": utime and stime are the 14th and 15th of the line.
    stat = read_text(os.path.join(task_dir, "stat")).rpartition(")")[2].split()
    sample["ticks"] = int(stat[11]) + int(stat[12])
    sample["waiting_in"] = waiting_in(task_dir)
    return sample


# x86-64 numbers of the calls a waiting thread is usually in.
X86_64_WAITS = {0: "read", 7: "poll", 23: "select", 34: "pause", 35: "nanosleep", 202: "futex",
                230: "clock_nanosleep", 232: "epoll_wait", 270: "pselect6", 271: "ppoll",
                281: "epoll_pwait", 441: "epoll_pwait2"}
# Index of the timeout argument (milliseconds, -1 = none) of some of them.
TIMEOUT_ARG = {"poll": 2, "epoll_wait": 3, "epoll_pwait": 3}


def waiting_in(task_dir):
    """What /proc/TID/syscall says the thread is blocked in, e.g. "poll, no timeout"."""
    try:
        fields = read_text(os.path.join(task_dir, "syscall")).split()
        wchan = read_text(os.path.join(task_dir, "wchan")).strip()
    except OSError:
        return "unknown"
    if not fields or not fields[0].lstrip("-").isdigit():
        return "running" if fields and fields[0] == "running" else "unknown"
    nr = int(fields[0])
    if nr < 0:
        return "not in a system call"
    name = X86_64_WAITS.get(nr) if os.uname().machine == "x86_64" else None
    text = name or "system call %d" % nr
    if name in TIMEOUT_ARG and len(fields) > TIMEOUT_ARG[name] + 1:
        timeout = int(fields[TIMEOUT_ARG[name] + 1], 16) & 0xFFFFFFFF
        text += ", no timeout" if timeout >= 0x80000000 else ", timeout %d ms" % timeout
    return "%s (%s)" % (text, wchan) if wchan and wchan != "0" else text


CLOCKS = {0: "CLOCK_REALTIME", 1: "CLOCK_MONOTONIC", 7: "CLOCK_BOOTTIME", 8: "CLOCK_REALTIME_ALARM",
          9: "CLOCK_BOOTTIME_ALARM"}


def timers(pid):
    """The process's timerfds: [{fd, clock, seconds}], seconds until expiry,
    None if disarmed (it_value is relative in fdinfo)."""
    out = []
    base = "/proc/%d" % pid
    for fd in sorted(os.listdir(base + "/fd"), key=int):
        try:
            if os.readlink("%s/fd/%s" % (base, fd)) != "anon_inode:[timerfd]":
                continue
            info = read_text("%s/fdinfo/%s" % (base, fd))
        except OSError:
            continue
        clock = re.search(r"^clockid:\s*(\d+)", info, re.M)
        value = re.search(r"^it_value:\s*\((\d+),\s*(\d+)\)", info, re.M)
        if not clock or not value:
            continue
        sec = int(value.group(1)) + int(value.group(2)) / 1e9
        out.append({"fd": int(fd), "clock": CLOCKS.get(int(clock.group(1)), "clock %s" % clock.group(1)),
                    "seconds": sec if sec > 0 else None})
    return out


def next_timer(pids):
    due = [t["seconds"] for pid in pids for t in timers(pid) if t["seconds"] is not None]
    print("%.0f" % min(due) if due else "none")


def anonymous_by_mapping(path):
    """{mapping: Anonymous kB} from /proc/PID/smaps: "[heap]", "[stack]",
    "(unnamed)" for anonymous mappings (malloc arenas, thread stacks), or the
    file's name for what a library wrote into its own pages (relocations,
    .data, .bss)."""
    out = collections.Counter()
    name = None
    for line in read_text(path).splitlines():
        head = line.split(None, 5)
        if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:
            name = os.path.basename(head[5]) if len(head) == 6 else "(unnamed)"
            if len(head) == 6 and head[5].startswith("["):
                name = head[5]
        elif line.startswith("Anonymous:") and name is not None:
            out[name] += int(line.split()[1])
    return {k: v for k, v in out.items() if v}


def snapshot(directory, tag, targets):
    for target in targets:
        name, sep, pid = target.partition("=")
        if not sep or not pid.isdigit():
            sys.exit("idle-cost-report: expected NAME=PID, got '%s'" % target)
        snapshot_one(int(pid), os.path.join(directory, "%s.%s.json" % (name, tag)))


def snapshot_one(pid, out):
    base = "/proc/%d" % pid
    tasks = {}
    for tid in sorted(os.listdir(base + "/task"), key=int):
        try:
            tasks[tid] = task_sample("%s/task/%s" % (base, tid))
        except FileNotFoundError:
            continue  # the thread exited while we read it
    if not tasks:
        sys.exit("idle-cost-report: process %d is gone" % pid)
    data = {
        "pid": pid,
        "comm": read_text(base + "/comm").strip(),
        "tasks": tasks,
        "status": kv_kb(read_text(base + "/status"), STATUS_FIELDS),
        "smaps_rollup": kv_kb(read_text(base + "/smaps_rollup"), SMAPS_FIELDS),
        "anonymous_by_mapping": anonymous_by_mapping(base + "/smaps"),
        "timers": timers(pid),
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")


def switches(task):
    return task["voluntary_ctxt_switches"] + task["nonvoluntary_ctxt_switches"]


def window(before, after):
    """Deltas summed over the threads, and how the thread set changed."""
    delta = collections.Counter()
    for tid, a in after["tasks"].items():
        b = before["tasks"].get(tid, {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0,
                                      "run_ns": 0, "runs": 0, "ticks": 0})
        delta["switches"] += switches(a) - switches(b)
        delta["voluntary"] += a["voluntary_ctxt_switches"] - b["voluntary_ctxt_switches"]
        delta["runs"] += a["runs"] - b["runs"]
        delta["run_ns"] += a["run_ns"] - b["run_ns"]
        delta["ticks"] += a["ticks"] - b["ticks"]
    delta["threads_before"] = len(before["tasks"])
    delta["threads_after"] = len(after["tasks"])
    delta["threads_gone"] = len(before["tasks"].keys() - after["tasks"].keys())
    delta["threads_new"] = len(after["tasks"].keys() - before["tasks"].keys())
    return delta


class Syscall:
    def __init__(self, tid, time, name, line):
        self.tid, self.time, self.name, self.line = tid, time, name, line
        self.result = None  # text after " = ", None while pending
        self.detached = False
        self.end = None  # time it returned (-tt), None if it did not

    def blocked(self):
        """Did it wait: no return in the trace, or a return 0.1 s or more later?"""
        return self.end is None or seconds(self.end) - seconds(self.time) >= 0.1


def parse_trace(path, main_pid):
    """Syscalls in entry order, and the signals and exits seen."""
    calls, pending, other = [], {}, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\n")
            m = TRACE_LINE.match(line)
            if not m:
                other.append(line)
                continue
            tid = int(m.group(1)) if m.group(1) else main_pid
            time, rest = m.group(2), m.group(3)
            resumed = RESUMED.match(rest)
            if resumed:
                call = pending.pop(tid, None)
                if call is None:
                    other.append(line)
                    continue
                finish(call, rest, time)
                continue
            entry = SYSCALL_ENTRY.match(rest)
            if not entry:
                other.append(line)  # --- signal ---, +++ exited +++
                continue
            call = Syscall(tid, time, entry.group(1), rest)
            calls.append(call)
            if rest.endswith("<unfinished ...>"):
                pending[tid] = call
            else:
                finish(call, rest, time)
    return calls, other


def finish(call, rest, time):
    if "<detached ...>" in rest:
        call.detached = True
        return
    _, sep, result = rest.rpartition(") = ")
    call.result = result if sep else rest
    call.end = time


# Calls a thread waits in; "restart_syscall" is how strace shows a wait the
# kernel resumes after the thread was stopped.
WAIT_CALLS = {"restart_syscall", "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select",
              "pselect6", "futex", "nanosleep", "clock_nanosleep", "pause", "sigtimedwait", "rt_sigtimedwait"}
BURST_MAX = 5


def classify(calls):
    """Split off the calls strace itself caused when it attached.

    Attaching stops every thread with PTRACE_INTERRUPT. A thread blocked in a
    system call is pulled out of it: calls the kernel restarts are entered
    again (strace shows restart_syscall for poll() and timed waits, or the
    call itself); epoll_wait() is never restarted and returns EINTR, so the
    program goes round its loop once and waits again. Either way each thread
    makes a short burst of calls at attach time that ends in the call it
    waits in. That burst is split off: for each thread whose first call comes
    within a second of the first line of the trace, its calls up to and
    including its first waiting call (WAIT_CALLS), if that is among its first
    BURST_MAX calls; otherwise nothing is split off for that thread, and the
    count errs on the high side. Everything else is counted.
    """
    if not calls:
        return [], []
    by_tid = collections.defaultdict(list)
    for c in calls:
        by_tid[c.tid].append(c)
    t0 = min(seconds(c.time) for c in calls)
    burst = set()
    for tid_calls in by_tid.values():
        if seconds(tid_calls[0].time) - t0 >= 1.0:
            continue
        for i, c in enumerate(tid_calls[:BURST_MAX]):
            if c.name in WAIT_CALLS:
                burst.update(id(x) for x in tid_calls[:i + 1])
                break
    return [c for c in calls if id(c) in burst], [c for c in calls if id(c) not in burst]


def seconds(hms):
    h, m, s = hms.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def ratio(a, b):
    if b == 0:
        return "n/a (0 / 0)" if a == 0 else "n/a (÷ 0)"
    return "%.2f" % (a / b)


def load(directory, name, what):
    with open(os.path.join(directory, "%s.%s.json" % (name, what)), encoding="utf-8") as f:
        return json.load(f)


def measure(directory, name):
    quiet0, quiet1 = load(directory, name, "quiet0"), load(directory, name, "quiet1")
    traced0, traced1 = load(directory, name, "traced0"), load(directory, name, "traced1")
    calls, other = parse_trace(os.path.join(directory, name + ".strace"), quiet0["pid"])
    at_attach, counted = classify(calls)
    info_path = os.path.join(directory, name + ".info")
    smaps = quiet1["smaps_rollup"]
    return {
        "pid": quiet0["pid"],
        "threads": quiet1["tasks"],
        "quiet": window(quiet0, quiet1),
        "traced": window(traced0, traced1),
        "calls": calls,
        "at_attach": at_attach,
        "counted": counted,
        "other": other,
        "rss": quiet1["status"]["VmRSS"],
        "hwm": quiet1["status"]["VmHWM"],
        "pss": smaps["Pss"],
        "private": smaps["Private_Clean"] + smaps["Private_Dirty"],
        "private_dirty": smaps["Private_Dirty"],
        "anon": smaps["Anonymous"],
        "info": read_text(info_path).strip() if os.path.exists(info_path) else "",
        "anon_where": quiet1["anonymous_by_mapping"],
        "timers_end": traced1.get("timers", []),
    }


def describe_calls(calls):
    if not calls:
        return "none"
    by_name = collections.Counter(c.name for c in calls)
    return ", ".join("%s × %d" % (n, k) for n, k in sorted(by_name.items(), key=lambda x: (-x[1], x[0])))


def describe_anon(where):
    """Anonymous memory by mapping, largest first, libraries summed."""
    special = {k: v for k, v in where.items() if k.startswith("[") or k == "(unnamed)"}
    libs = {k: v for k, v in where.items() if k not in special}
    parts = ["%s %s kB" % (k, "{:,}".format(v)) for k, v in sorted(special.items(), key=lambda x: -x[1])]
    top = sorted(libs.items(), key=lambda x: -x[1])[:4]
    parts.append("in %d file mappings (written pages of the libraries) %s kB, most in %s" %
                 (len(libs), "{:,}".format(sum(libs.values())),
                  ", ".join("%s %s" % (k, "{:,}".format(v)) for k, v in top)))
    return "Anonymous by where: %s." % "; ".join(parts)


def describe_call(c, comm):
    text = c.line.split(" <unfinished")[0].split(" <detached")[0]
    if c.result is not None and " = " not in text:
        text = "%s(…) = %s" % (c.name, c.result)
    if c.detached:
        end = "still waiting when strace detached"
    elif c.end is None:
        end = "no return in the trace"
    elif c.blocked():
        end = "returned at %s" % c.end
    else:
        end = None
    where = "%s %d" % (comm.get(str(c.tid), "thread"), c.tid)
    return "`%s` (%s%s)" % (text[:70], where, ", " + end if end else "")


def report(directory, seconds_):
    m = {n: measure(directory, n) for n in NAMES}
    rows = [
        ("system calls strace saw (all, including those its attaching caused)", lambda x: len(x["calls"])),
        ("system calls in the window (without those caused by attaching)", lambda x: len(x["counted"])),
        ("wakeups: context switches, all threads (no strace)", lambda x: x["quiet"]["switches"]),
        ("times scheduled, all threads (schedstat, no strace)", lambda x: x["quiet"]["runs"]),
        ("CPU time, µs (schedstat, no strace)", lambda x: x["quiet"]["run_ns"] // 1000),
        ("RSS kB (VmRSS)", lambda x: x["rss"]),
        ("Pss kB (smaps_rollup)", lambda x: x["pss"]),
        ("private kB (Private_Clean + Private_Dirty)", lambda x: x["private"]),
        ("anonymous kB (Anonymous)", lambda x: x["anon"]),
    ]
    others = NAMES[:-1]
    print("| over %d s idle | %s | %s |" % (seconds_, " | ".join(COLUMNS[n] for n in NAMES),
                                          " | ".join("%s ÷ %s" % (COLUMNS[n].split(" (")[0], BASELINE) for n in others)))
    print("|" + " --- |" * (1 + len(NAMES) + len(others)))
    for label, get in rows:
        values = [get(m[n]) for n in NAMES]
        base = values[-1]
        print("| %s | %s | %s |" % (label, " | ".join("{:,}".format(v) for v in values),
                                    " | ".join(ratio(v, base) for v in values[:-1])))
    print()
    for n in NAMES:
        x = m[n]
        comm = {tid: t["comm"] for tid, t in x["threads"].items()}
        waits = "; ".join("%s %s: %s" % (t["comm"], tid, t["waiting_in"]) for tid, t in x["threads"].items())
        print("- **%s**, pid %d. Threads at the end of the quiet window, and what /proc/TID/syscall says "
              "each waits in: %s." % (COLUMNS[n], x["pid"], waits))
        print("  System calls in the window: %s." % describe_calls(x["counted"]))
        if x["counted"]:
            print("  First of them: %s." % "; ".join(describe_call(c, comm) for c in x["counted"][:10]))
        print("  Caused by strace attaching (not counted above): %s." %
              ("; ".join(describe_call(c, comm) for c in x["at_attach"][:10]) or "none"))
        if x["other"]:
            print("  Other trace lines: %s." % "; ".join("`%s`" % o[:80] for o in x["other"][:5]))
        print("  Context switches with strace attached: %d; without: %d." %
              (x["traced"]["switches"], x["quiet"]["switches"]))
        if x["quiet"]["threads_new"] or x["quiet"]["threads_gone"]:
            print("  Threads changed during the quiet window: %d new, %d gone." %
                  (x["quiet"]["threads_new"], x["quiet"]["threads_gone"]))
        print("  VmHWM %s kB, Private_Dirty %s kB. %s" % ("{:,}".format(x["hwm"]), "{:,}".format(x["private_dirty"]),
                                                      describe_anon(x["anon_where"])))
        if x["timers_end"]:
            print("  Its timerfds at the end: %s." % "; ".join(
                "fd %d %s %s" % (t["fd"], t["clock"], "disarmed" if t["seconds"] is None else
                                 "expires in {:,.0f} s".format(t["seconds"])) for t in x["timers_end"]))
        if x["info"]:
            print("  %s" % x["info"].replace("\n", "\n  "))
    if any(get(m[BASELINE]) == 0 for _, get in rows):
        print()
        print("n/a: %s's value is 0, so there is no ratio (\"0 / 0\": both are 0)." % BASELINE)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snapshot")
    s.add_argument("dir")
    s.add_argument("tag")
    s.add_argument("targets", nargs="+", metavar="NAME=PID")
    t = sub.add_parser("next-timer")
    t.add_argument("pids", nargs="+", type=int, metavar="PID")
    r = sub.add_parser("report")
    r.add_argument("--dir", required=True)
    r.add_argument("--seconds", type=int, required=True)
    args = p.parse_args()
    if args.cmd == "snapshot":
        snapshot(args.dir, args.tag, args.targets)
    elif args.cmd == "next-timer":
        next_timer(args.pids)
    else:
        report(args.dir, args.seconds)


if __name__ == "__main__":
    main()
