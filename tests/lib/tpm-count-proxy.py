#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""tpm-count-proxy.py: a counting TCP proxy in front of swtpm, and its report.

Test and benchmark tooling (tests/lib/tpm-count.sh, tests/bench/), never
installed; /usr/bin/python3 standard library only.

  tpm-count-proxy.py serve --upstream-port P --log FILE
          [--port Q | --port 0 --port-file F] [--pid-file F]
  tpm-count-proxy.py report --log FILE --phase NAME=FROM:TO [--phase ...]
          [--esys NAME=DIR ...] [--direct NAME ...]
  tpm-count-proxy.py trace --log FILE --range FROM:TO
  tpm-count-proxy.py probe --port Q

serve listens on 127.0.0.1:Q (TPM commands) and Q+1 (control) and forwards
to 127.0.0.1:P and P+1, like swtpm's --server and --ctrl ports, so a client
uses the TCTI "swtpm:host=127.0.0.1,port=Q". Control connections are copied
through untouched. On the command port every TPM command is parsed, forwarded,
its response read and forwarded, and one JSON line is appended to the log:

  {"seq", "t" (monotonic seconds), "conn", "framing", "cc", "name", "detail",
   "handles", "rc", "cmd_bytes", "rsp_bytes", "us"}

Two framings are understood, detected per connection from its first bytes:
  raw    the TPM 2.0 command itself (tag 0x8001/0x8002, u32 size, u32 code),
         answered by the bare response. tpm2-tss's swtpm TCTI (3.x) sends
         this, one TCP connection per command.
  mssim  the TPM simulator protocol: u32 TPM_SEND_COMMAND (8), u8 locality,
         u32 size, command; answer u32 size, response, u32 0 (ack).
         TPM_SESSION_END (20) closes the connection. Any other simulator
         code is logged as an "unparsed" event and the rest of the
         connection is copied through without counting.

report tallies log lines FROM..TO-1 (0-based line numbers) of each phase by
command name (GetCapability split by capability) into markdown tables; with
--esys, also what each program sent according to its ESYS trace
(tests/bench/esys-traced.sh): every TPM command of fleetid goes through its
own ESYS connection, so the resource manager's own commands are the
difference.
trace prints the commands of a range, one per line, in order (the times
include the proxy's own latency: counts, not timings, are what it is for).
probe sends
TPM2_GetRandom(8) to 127.0.0.1:Q once in each framing and checks the answers:
after it, the proxy's log must show exactly two GetRandom.
"""

import argparse
import collections
import json
import os
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time

MAX_MESSAGE = 64 * 1024  # TPM commands and responses are a few KiB at most
IO_TIMEOUT = 60.0

TPM_SEND_COMMAND = 8
TPM_SESSION_END = 20

# TPM2_CC values, TCG TPM 2.0 Library Part 2 (as in tss2_tpm2_types.h).
CC_NAMES = {
    0x11F: "NV_UndefineSpaceSpecial", 0x120: "EvictControl", 0x121: "HierarchyControl",
    0x122: "NV_UndefineSpace", 0x124: "ChangeEPS", 0x125: "ChangePPS", 0x126: "Clear",
    0x127: "ClearControl", 0x128: "ClockSet", 0x129: "HierarchyChangeAuth",
    0x12A: "NV_DefineSpace", 0x12B: "PCR_Allocate", 0x12C: "PCR_SetAuthPolicy",
    0x12D: "PP_Commands", 0x12E: "SetPrimaryPolicy", 0x12F: "FieldUpgradeStart",
    0x130: "ClockRateAdjust", 0x131: "CreatePrimary", 0x132: "NV_GlobalWriteLock",
    0x133: "GetCommandAuditDigest", 0x134: "NV_Increment", 0x135: "NV_SetBits",
    0x136: "NV_Extend", 0x137: "NV_Write", 0x138: "NV_WriteLock",
    0x139: "DictionaryAttackLockReset", 0x13A: "DictionaryAttackParameters",
    0x13B: "NV_ChangeAuth", 0x13C: "PCR_Event", 0x13D: "PCR_Reset", 0x13E: "SequenceComplete",
    0x13F: "SetAlgorithmSet", 0x140: "SetCommandCodeAuditStatus", 0x141: "FieldUpgradeData",
    0x142: "IncrementalSelfTest", 0x143: "SelfTest", 0x144: "Startup", 0x145: "Shutdown",
    0x146: "StirRandom", 0x147: "ActivateCredential", 0x148: "Certify", 0x149: "PolicyNV",
    0x14A: "CertifyCreation", 0x14B: "Duplicate", 0x14C: "GetTime",
    0x14D: "GetSessionAuditDigest", 0x14E: "NV_Read", 0x14F: "NV_ReadLock",
    0x150: "ObjectChangeAuth", 0x151: "PolicySecret", 0x152: "Rewrap", 0x153: "Create",
    0x154: "ECDH_ZGen", 0x155: "HMAC", 0x156: "Import", 0x157: "Load", 0x158: "Quote",
    0x159: "RSA_Decrypt", 0x15B: "HMAC_Start", 0x15C: "SequenceUpdate", 0x15D: "Sign",
    0x15E: "Unseal", 0x160: "PolicySigned", 0x161: "ContextLoad", 0x162: "ContextSave",
    0x163: "ECDH_KeyGen", 0x164: "EncryptDecrypt", 0x165: "FlushContext",
    0x167: "LoadExternal", 0x168: "MakeCredential", 0x169: "NV_ReadPublic",
    0x16A: "PolicyAuthorize", 0x16B: "PolicyAuthValue", 0x16C: "PolicyCommandCode",
    0x16D: "PolicyCounterTimer", 0x16E: "PolicyCpHash", 0x16F: "PolicyLocality",
    0x170: "PolicyNameHash", 0x171: "PolicyOR", 0x172: "PolicyTicket", 0x173: "ReadPublic",
    0x174: "RSA_Encrypt", 0x176: "StartAuthSession", 0x177: "VerifySignature",
    0x178: "ECC_Parameters", 0x179: "FirmwareRead", 0x17A: "GetCapability",
    0x17B: "GetRandom", 0x17C: "GetTestResult", 0x17D: "Hash", 0x17E: "PCR_Read",
    0x17F: "PolicyPCR", 0x180: "PolicyRestart", 0x181: "ReadClock", 0x182: "PCR_Extend",
    0x183: "PCR_SetAuthValue", 0x184: "NV_Certify", 0x185: "EventSequenceComplete",
    0x186: "HashSequenceStart", 0x187: "PolicyPhysicalPresence",
    0x188: "PolicyDuplicationSelect", 0x189: "PolicyGetDigest", 0x18A: "TestParms",
    0x18B: "Commit", 0x18C: "PolicyPassword", 0x18D: "ZGen_2Phase", 0x18E: "EC_Ephemeral",
    0x18F: "PolicyNvWritten", 0x190: "PolicyTemplate", 0x191: "CreateLoaded",
    0x192: "PolicyAuthorizeNV", 0x193: "EncryptDecrypt2", 0x194: "AC_GetCapability",
    0x195: "AC_Send", 0x196: "Policy_AC_SendSelect", 0x197: "CertifyX509",
    0x198: "ACT_SetTimeout",
}

# TPM2_CAP values, for GetCapability's first parameter.
CAP_NAMES = {
    0: "algs", 1: "handles", 2: "commands", 3: "pp-commands", 4: "audit-commands",
    5: "pcrs", 6: "tpm-properties", 7: "pcr-properties", 8: "ecc-curves",
    9: "auth-policies", 10: "act",
}


class ProtocolError(Exception):
    pass


def recv_exact(sock, n, allow_eof=False):
    """n bytes from sock; b"" on a clean EOF before the first byte if allowed."""
    chunks = []
    got = 0
    while got < n:
        chunk = sock.recv(min(n - got, 65536))
        if not chunk:
            if got == 0 and allow_eof:
                return b""
            raise ProtocolError("connection closed after %d of %d bytes" % (got, n))
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_tpm_message(sock, first=b""):
    """One raw TPM command or response: 10-byte header with its size, then the rest."""
    head = first + recv_exact(sock, 10 - len(first))
    size = struct.unpack(">I", head[2:6])[0]
    if size < 10 or size > MAX_MESSAGE:
        raise ProtocolError("TPM message size %d out of range 10..%d" % (size, MAX_MESSAGE))
    return head + recv_exact(sock, size - 10)


def describe_command(cmd):
    """(code, name, detail, first two u32 after the header) of a raw TPM command."""
    cc = struct.unpack(">I", cmd[6:10])[0]
    name = CC_NAMES.get(cc, "CC_0x%03x" % cc)
    words = [struct.unpack(">I", cmd[o:o + 4])[0] for o in (10, 14) if len(cmd) >= o + 4]
    detail = ""
    if cc == 0x17A and len(cmd) >= 22:
        cap, prop, count = struct.unpack(">III", cmd[10:22])
        detail = "%s 0x%08x count %d" % (CAP_NAMES.get(cap, "cap-%d" % cap), prop, count)
    return cc, name, detail, ["0x%08x" % w for w in words]


class Log:
    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8", buffering=1)
        self.lock = threading.Lock()
        self.seq = 0
        self.conns = 0

    def new_conn(self):
        with self.lock:
            self.conns += 1
            return self.conns

    def write(self, rec):
        with self.lock:
            rec["seq"] = self.seq
            self.seq += 1
            self.f.write(json.dumps(rec, sort_keys=True) + "\n")


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (dst, src):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def copy_through(a, b):
    """Copy both directions until either side closes."""
    t = threading.Thread(target=pipe, args=(b, a), daemon=True)
    t.start()
    pipe(a, b)
    t.join(IO_TIMEOUT)


class CommandHandler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        client = self.request
        client.settimeout(IO_TIMEOUT)
        conn = srv.log.new_conn()
        try:
            with socket.create_connection(("127.0.0.1", srv.upstream_port), IO_TIMEOUT) as up:
                self.serve(conn, client, up)
        except (OSError, ProtocolError) as e:
            srv.log.write({"event": "error", "conn": conn, "error": str(e)})

    def serve(self, conn, client, up):
        log = self.server.log
        while True:
            first = recv_exact(client, 4, allow_eof=True)
            if not first:
                return
            if first[0] == 0x80 and first[1] in (0x01, 0x02):
                framing = "raw"
                cmd = read_tpm_message(client, first)
                wire = cmd
            else:
                framing = "mssim"
                code = struct.unpack(">I", first)[0]
                if code == TPM_SESSION_END:
                    up.sendall(first)
                    return
                if code != TPM_SEND_COMMAND:
                    log.write({"event": "unparsed", "conn": conn, "mssim_code": code})
                    up.sendall(first)
                    copy_through(client, up)
                    return
                locality_size = recv_exact(client, 5)
                size = struct.unpack(">I", locality_size[1:5])[0]
                if size < 10 or size > MAX_MESSAGE:
                    raise ProtocolError("mssim command size %d out of range" % size)
                cmd = recv_exact(client, size)
                wire = first + locality_size + cmd
            cc, name, detail, handles = describe_command(cmd)
            start = time.monotonic()
            up.sendall(wire)
            if framing == "raw":
                rsp = read_tpm_message(up)
                client.sendall(rsp)
            else:
                size = struct.unpack(">I", recv_exact(up, 4))[0]
                if size < 10 or size > MAX_MESSAGE:
                    raise ProtocolError("mssim response size %d out of range" % size)
                rsp = recv_exact(up, size)
                ack = recv_exact(up, 4)
                client.sendall(struct.pack(">I", size) + rsp + ack)
            us = int((time.monotonic() - start) * 1e6)
            rc = struct.unpack(">I", rsp[6:10])[0]
            log.write({"event": "command", "t": round(start, 6), "conn": conn, "framing": framing,
                       "cc": "0x%03x" % cc,
                       "name": name, "detail": detail, "handles": handles, "rc": "0x%03x" % rc,
                       "cmd_bytes": len(cmd), "rsp_bytes": len(rsp), "us": us})


class ControlHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(IO_TIMEOUT)
        try:
            with socket.create_connection(("127.0.0.1", self.server.upstream_port + 1),
                                          IO_TIMEOUT) as up:
                copy_through(self.request, up)
        except OSError as e:
            self.server.log.write({"event": "error", "control": True, "error": str(e)})


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def bind_pair(port):
    """Command and control servers on port and port + 1 (port 0: any free pair)."""
    for _ in range(100 if port == 0 else 1):
        cmd = Server(("127.0.0.1", port), CommandHandler)
        base = cmd.server_address[1]
        try:
            if base == 65535:
                raise OSError("no room for the control port")
            ctrl = Server(("127.0.0.1", base + 1), ControlHandler)
            return cmd, ctrl
        except OSError:
            cmd.server_close()
            if port != 0:
                raise
    raise OSError("found no free pair of loopback ports")


def write_small_file(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def cmd_serve(args):
    log = Log(args.log)
    cmd_srv, ctrl_srv = bind_pair(args.port)
    for s in (cmd_srv, ctrl_srv):
        s.log = log
        s.upstream_port = args.upstream_port
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (cmd_srv, ctrl_srv)]
    for t in threads:
        t.start()
    if args.pid_file:
        write_small_file(args.pid_file, "%d\n" % os.getpid())
    if args.port_file:
        write_small_file(args.port_file, "%d\n" % cmd_srv.server_address[1])
    while not stop.wait(1.0):
        pass
    for s in (cmd_srv, ctrl_srv):
        s.shutdown()
        s.server_close()
    return 0


def read_log(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def parse_range(text):
    a, _, b = text.partition(":")
    if not a.isdigit() or not b.isdigit() or int(a) > int(b):
        raise argparse.ArgumentTypeError("'%s' is not FROM:TO with FROM <= TO" % text)
    return int(a), int(b)


def parse_phase(text):
    name, sep, rng = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("'%s' is not NAME=FROM:TO" % text)
    return name, parse_range(rng)


def row_key(rec):
    if rec["name"] == "GetCapability" and rec["detail"]:
        return "GetCapability(%s)" % rec["detail"].split()[0]
    return rec["name"]


def tally(records, rng):
    counts = collections.Counter()
    failed = 0
    us = 0
    problems = []
    for rec in records[rng[0]:rng[1]]:
        if rec.get("event") != "command":
            problems.append(rec)
            continue
        counts[row_key(rec)] += 1
        us += rec["us"]
        if rec["rc"] != "0x000":
            failed += 1
    return counts, failed, us, problems


ESYS_LINE = re.compile(r"Esys_(\w+?)_Async\(\) context=(\S+?),?(?: (.*))?$")
ESYS_FIELD = re.compile(r"(\w+)=([0-9a-fA-Fx]+)")


def esys_key(command, fields):
    """The row of an ESYS trace line, named like row_key() names log records."""
    if command == "GetCapability" and "capability" in fields:
        cap = int(fields["capability"], 16)
        return "GetCapability(%s)" % CAP_NAMES.get(cap, "cap-%d" % cap)
    return command


def read_esys_process(path):
    """Counter of the commands one process sent, from its esys-traced.sh file."""
    sent = collections.Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = ESYS_LINE.search(line.rstrip("\n"))
            if not m:
                sys.exit("report: unexpected line in %s: %s" % (path, line.strip()))
            sent[esys_key(m.group(1), dict(ESYS_FIELD.findall(m.group(3) or "")))] += 1
    return sent


def read_esys_dir(directory):
    sent = collections.Counter()
    for name in sorted(os.listdir(directory)):
        if name.endswith(".esys"):
            sent.update(read_esys_process(os.path.join(directory, name)))
    return sent


def parse_named_dir(text):
    name, sep, directory = text.partition("=")
    if not sep or not name or not os.path.isdir(directory):
        raise argparse.ArgumentTypeError("'%s' is not NAME=DIRECTORY" % text)
    return name, directory


def cell(n):
    return str(n) if n else "·"


def cmd_report(args):
    records = read_log(args.log)
    esys = {}
    for name, directory in args.esys or []:
        esys[name] = read_esys_dir(directory)
    phases = []
    for name, (a, b) in args.phase:
        if b > len(records):
            sys.exit("report: phase %s ends at line %d, the log has %d" % (name, b, len(records)))
        phases.append((name, tally(records, (a, b))))
    names = [n for n, _ in phases]
    for n in list(esys) + list(args.direct or []):
        if n not in names:
            sys.exit("report: no phase named %s" % n)

    print("| phase | sent by fleetid | reached the TPM | resource manager's own "
          "| answered with an error | ms inside swtpm |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (wire, failed, us, _) in phases:
        total = sum(wire.values())
        if name in esys:
            sent = sum(esys[name].values())
            cells = [sent, total, "%+d" % (total - sent)]
        else:
            cells = ["", total, ""]
        print("| %s | %s | %d | %.1f |" % (name, " | ".join(str(c) for c in cells), failed, us / 1000.0))

    status = 0
    for name, (wire, _, _, problems) in phases:
        print()
        if name in esys:
            sent = esys[name]
            print("%s:\n" % name)
            print("| TPM command | sent by fleetid | reached the TPM | resource manager's own |")
            print("| --- | --- | --- | --- |")
            for k in sorted(set(wire) | set(sent)):
                extra = wire[k] - sent[k]
                print("| %s | %s | %s | %s |" % (k, cell(sent[k]), cell(wire[k]),
                                                 "%+d" % extra if extra else "·"))
            if name in (args.direct or []):
                diff = {k: (wire[k], sent[k]) for k in set(wire) | set(sent) if wire[k] != sent[k]}
                if diff:
                    print("\nWARNING: %s: without a resource manager the TPM must see exactly what "
                          "ESYS sent, but (reached, sent) differ: %s" % (name, diff), file=sys.stderr)
                    status = 1
        else:
            print("%s:\n" % name)
            print("| TPM command | reached the TPM |")
            print("| --- | --- |")
            for k in sorted(wire):
                print("| %s | %d |" % (k, wire[k]))
        for p in problems:
            print("WARNING: phase %s: %s" % (name, json.dumps(p, sort_keys=True)), file=sys.stderr)
            status = 1
    return status


def cmd_trace(args):
    records = read_log(args.log)[args.range[0]:args.range[1]]
    t0 = next((r["t"] for r in records if "t" in r), 0.0)
    print("#seq  +ms since the first  command             detail                             "
          "handles                 rc     us in swtpm")
    for rec in records:
        if rec.get("event") != "command":
            print("# %s" % json.dumps(rec, sort_keys=True))
            continue
        print("%4d  %8.1f  %-20s %-34s %-23s rc=%s %6d" % (
            rec["seq"], (rec["t"] - t0) * 1000.0, rec["name"], rec["detail"], " ".join(rec["handles"]),
            rec["rc"], rec["us"]))
    return 0


def cmd_probe(args):
    cmd = struct.pack(">HIIH", 0x8001, 12, 0x17B, 8)  # TPM2_GetRandom(bytesRequested = 8)
    with socket.create_connection(("127.0.0.1", args.port), IO_TIMEOUT) as s:
        s.settimeout(IO_TIMEOUT)
        s.sendall(cmd)
        raw = read_tpm_message(s)
    with socket.create_connection(("127.0.0.1", args.port), IO_TIMEOUT) as s:
        s.settimeout(IO_TIMEOUT)
        s.sendall(struct.pack(">IBI", TPM_SEND_COMMAND, 0, len(cmd)) + cmd)
        size = struct.unpack(">I", recv_exact(s, 4))[0]
        if size != 20:
            sys.exit("probe: mssim answer of %d bytes, expected 20" % size)
        mssim = recv_exact(s, size)
        if recv_exact(s, 4) != bytes(4):
            sys.exit("probe: no mssim acknowledgement")
        s.sendall(struct.pack(">I", TPM_SESSION_END))
    for what, rsp in (("raw", raw), ("mssim", mssim)):
        rc = struct.unpack(">I", rsp[6:10])[0]
        if len(rsp) != 20 or rc != 0:
            sys.exit("probe: GetRandom in %s framing answered rc 0x%x, %d bytes" % (what, rc, len(rsp)))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the proxy")
    s.add_argument("--upstream-port", type=int, required=True, help="swtpm's --server port")
    s.add_argument("--port", type=int, default=0, help="command port (control: +1); 0 = any")
    s.add_argument("--port-file", help="write the command port here once listening")
    s.add_argument("--pid-file")
    s.add_argument("--log", required=True, help="JSON lines, appended")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("report", help="markdown table of commands per phase")
    s.add_argument("--log", required=True)
    s.add_argument("--phase", type=parse_phase, action="append", required=True,
                   help="NAME=FROM:TO, 0-based log lines, TO excluded")
    s.add_argument("--esys", type=parse_named_dir, action="append",
                   help="NAME=DIR: esys-traced.sh files of phase NAME (what fleetid sent)")
    s.add_argument("--direct", action="append",
                   help="NAME: phase without a resource manager; ESYS and the wire must agree")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("trace", help="the commands of a log range, in order")
    s.add_argument("--log", required=True)
    s.add_argument("--range", type=parse_range, required=True, help="FROM:TO")
    s.set_defaults(func=cmd_trace)

    s = sub.add_parser("probe", help="one GetRandom in each framing through the proxy")
    s.add_argument("--port", type=int, required=True)
    s.set_defaults(func=cmd_probe)

    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
