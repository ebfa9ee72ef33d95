#!/usr/bin/python3
"""Turns the raw results of bench/compare.sh and bench/perreq.sh into tables.

    report.py --out DIR [--perreq-only] [--command CMD] [--docs FILE.md --png FILE.png]

DIR holds what the scripts wrote: meta.tsv, versions.tsv, status.tsv, throughput.csv (HTTP
loads in req/s, WebSocket echo loads in messages/s), idle.csv, wsidle.csv, perreq.csv and
ws_perreq.csv (bench/ws_perreq.sh). The
tables go to stdout as Markdown; with --docs they are also written, with the
machine, the versions and the command that reproduces them, to FILE.md, and with --png a chart
drawn by gnuplot (bench/plot.gp) to FILE.png.
"""

import argparse
import csv
import os
import statistics
import subprocess
import sys

SERVERS = ["casgi", "nginx", "h2o", "uvicorn"]
PEERS = SERVERS[1:]

# load -> (label, compared per server core rather than in raw req/s: the keep-alive loads, where
# one wrk thread saturates its core first, and WebSocket echo, where bench/ws_load's one thread
# makes the same system calls per message as the server and saturates its core with it)
LOADS = {
    "ka64": ("keep-alive, 64 connections", True),
    "ka256": ("keep-alive, 256 connections", True),
    "pipe16": ("pipelined x16, 64 connections", False),
    "close": ("Connection: close, 64 connections", False),
    "h2c": ("h2c, 64 connections x 16 streams", False),
    "h2c1x100": ("h2c, 1 connection x 100 streams", False),
    "ws64": ("WebSocket echo, 64 B messages, 64 connections", True),
    "ws4k": ("WebSocket echo, 4 KiB messages, 64 connections", True),
}
WS_LOADS = ("ws64", "ws4k")  # figures in messages/s, against uvicorn with websockets only
H2_LOADS = ("h2c", "h2c1x100")  # h2load: a mean per request, no percentiles; uvicorn has no h2c
# A run during which other processes took more than this of the two pinned CPUs (in cores) is
# marked: its figures say more about the machine than about the servers.
BUSY_OTHER_CPU = 0.10

# Same-run targets from issue 5: load -> {peer: minimum ratio casgi / peer}.
RATIO_TARGETS = {
    "ka64": {"nginx": 1.0, "uvicorn": 3.0},
    "ka256": {"nginx": 1.0, "uvicorn": 3.0},
    "pipe16": {"nginx": 2.0, "uvicorn": 3.0},
    "close": {"nginx": 1.0, "uvicorn": 3.0},
    "h2c": {"h2o": 1.2},  # uvicorn has no HTTP/2, so its 3x does not apply
    "ws64": {"uvicorn": 5.0},
    "ws4k": {"uvicorn": 5.0},
}

# Server RSS growth per idle WebSocket (issue 5): mode -> (label, casgi target in bytes or None).
WSIDLE_ROWS = [
    ("plain", "per idle WebSocket, no extension", 2048),
    ("deflate", "per idle WebSocket, permessage-deflate offered", None),
]

# Per-request rows: (load, tool, label, casgi target).
PERREQ_ROWS = [
    ("ka", "callgrind", "instructions, HTTP/1.1 keep-alive", 3000),
    ("pipe16", "callgrind", "instructions, HTTP/1.1 pipelined x16", 2500),
    ("h2c", "callgrind", "instructions, h2c 16 streams", 4000),
    ("close", "callgrind", "instructions, HTTP/1.1 Connection: close", None),
    ("ka", "strace", "system calls, HTTP/1.1 keep-alive", 3.0),
    ("pipe16", "strace", "system calls, HTTP/1.1 pipelined x16", 0.25),
    ("h2c", "strace", "system calls, h2c 16 streams", 0.25),
    ("close", "strace", "system calls, HTTP/1.1 Connection: close", None),
]

# Per echoed WebSocket message rows (bench/ws_perreq.sh): (load, tool, label).
WS_PERREQ_ROWS = [
    ("ws64", "callgrind", "instructions, 64 B messages"),
    ("ws4k", "callgrind", "instructions, 4 KiB messages"),
    ("ws64", "strace", "system calls, 64 B messages"),
    ("ws4k", "strace", "system calls, 4 KiB messages"),
]


def read_tsv(path):
    result = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition("\t")
                result[key] = value
    return result


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_int(v):
    return "—" if v is None else f"{v:,.0f}"


class Throughput:
    """The median run of each (server, load), and why a figure is missing."""

    def __init__(self, rows, status):
        self.status = status  # server -> (state, note)
        self.runs = {}  # (server, load) -> [row, ...] with a req/s figure
        self.notes = {}  # (server, load) -> note
        self.errors = {}  # (server, load) -> errors summed over all runs
        self.nruns = {}
        for r in rows:
            key = (r["server"], r["load"])
            if num(r["rps"]) is not None:
                self.runs.setdefault(key, []).append(r)
                self.errors[key] = self.errors.get(key, 0) + int(num(r["errors"]) or 0)
            if r["note"]:
                self.notes.setdefault(key, r["note"])
            self.nruns[key] = self.nruns.get(key, 0) + (1 if r["run"] else 0)

    def loads(self):
        seen = [load for (_, load) in list(self.runs) + list(self.notes)]
        return [load for load in LOADS if load in seen]

    def servers(self):
        return [s for s in SERVERS if s in self.status]

    def median(self, server, load):
        """The run with the median req/s (the lower middle one for an even count)."""
        runs = self.runs.get((server, load))
        if not runs:
            return None
        runs = sorted(runs, key=lambda r: float(r["rps"]))
        return runs[(len(runs) - 1) // 2]

    def figure(self, server, load):
        """What is compared: req/s per server core on keep-alive loads, raw req/s otherwise."""
        run = self.median(server, load)
        if run is None:
            return None
        rps = float(run["rps"])
        if LOADS[load][1]:
            share = num(run["cpu_share"])
            return rps / share if share and share > 0.01 else None
        return rps

    def missing(self, server, load):
        state, note = self.status.get(server, ("", ""))
        if state == "not started":
            return "not started"
        note = self.notes.get((server, load), "")
        if note.startswith("n/a"):
            return "n/a"
        if note.startswith("not started"):
            return "not started"
        return "failed" if note else "—"


def busy(run):
    """What other processes took of the pinned CPUs during RUN (cores), if over BUSY_OTHER_CPU."""
    other = num(run.get("other_cpu")) if run else None  # absent from older results
    return other if other is not None and other > BUSY_OTHER_CPU else None


def throughput_tables(tp, versions):
    """The HTTP table, the WebSocket echo table and the table of casgi's ratios."""
    http_loads = [ld for ld in tp.loads() if ld not in WS_LOADS]
    ws_loads = [ld for ld in tp.loads() if ld in WS_LOADS]
    main = throughput_table(tp, versions, http_loads, "req/s")
    notes = []
    if "pipe16" in tp.loads():
        notes.append("\\* wrk's percentiles are unusable when pipelining (they read 0), so the "
                     "mean latency of a 16-request batch is shown instead.")
    if any(tp.median(s, ld) for ld in H2_LOADS for s in tp.servers()):
        notes.append("† h2load gives only the minimum, maximum, mean and standard deviation of "
                     "the request time; its per-request log, the one way to percentiles, costs "
                     "the client about a third of its throughput, so the mean is shown instead.")
    notes += busy_note(tp, http_loads)
    if notes:
        main += "\n\n" + "\n".join(notes)
    ws = throughput_table(tp, versions, ws_loads, "msg/s")
    if ws and busy_note(tp, ws_loads):
        ws += "\n\n" + "\n".join(busy_note(tp, ws_loads))
    return main, ws, ratio_table(tp)


def busy_note(tp, loads):
    """The footnote for the figures marked ‡ among LOADS, if any."""
    worst = [busy(tp.median(s, ld)) for ld in loads for s in tp.servers()]
    worst = [b for b in worst if b]
    if not worst:
        return []
    return [f"‡ other processes (a test suite, another benchmark) took up to "
            f"{max(worst) * 100:.0f}% of a core on the two pinned CPUs during that run: its "
            "figures, and the ratios drawn from them, are not to be trusted."]


def throughput_table(tp, versions, loads, unit):
    rows = []
    for load in loads:
        label, keepalive = LOADS[load]
        for s in tp.servers():
            run = tp.median(s, load)
            if run is None:
                if load in WS_LOADS and tp.missing(s, load) == "n/a":
                    continue  # no WebSocket echo in that server's configuration
                rows.append([label, name(s, versions), tp.missing(s, load), "", "", "", "", "",
                             ""])
                continue
            rps, share = float(run["rps"]), num(run["cpu_share"])
            client = num(run.get("client_cpu_share"))  # absent from older results
            per_core = rps / share if share and share > 0.01 else None
            ratio = ""
            if s != "casgi" and tp.figure("casgi", load) and tp.figure(s, load):
                ratio = f"{tp.figure('casgi', load) / tp.figure(s, load):.2f}x"
            nruns = len(tp.runs[(s, load)])
            shown = f"{rps:,.0f}"
            if nruns != tp.nruns[(s, load)]:
                shown += f" ({nruns} of {tp.nruns[(s, load)]} runs)"
            if busy(run):
                shown += " ‡"
            rows.append([
                label, name(s, versions), shown,
                run["p99_ms"] or (f"mean {run['mean_ms']}{'†' if load in H2_LOADS else '*'}"
                                  if run["mean_ms"] else "—"),
                tp.errors.get((s, load), 0),
                f"{share * 100:.0f}%" if share is not None else "—",
                f"{client * 100:.0f}%" if client is not None else "—",
                f"{per_core:,.0f}" if per_core else "—", ratio])
    if not rows:
        return ""
    return table(["load", "server", f"{unit} (median)", "p99 ms", "errors (all runs)",
                  "server CPU", "client CPU", f"{unit} per server core", "casgi ÷ server"], rows)


def shortfall(ratio, target):
    """How far below its target a ratio is, in percent ("<1%" rather than a misleading 0%)."""
    short = (1 - ratio / target) * 100
    return "<1%" if short < 1 else f"{short:.0f}%"


def ratio_table(tp):
    peers = [p for p in PEERS if p in tp.servers()]
    ratio_rows = []
    for load in tp.loads():
        label, keepalive = LOADS[load]
        unit = "msg/s" if load in WS_LOADS else "req/s"
        row = [label, f"{unit} per server core" if keepalive else unit]
        casgi = tp.figure("casgi", load)
        for peer in peers:
            peer_fig = tp.figure(peer, load)
            target = RATIO_TARGETS.get(load, {}).get(peer)
            if casgi is None or peer_fig is None:
                cell = tp.missing("casgi" if casgi is None else peer, load)
                if target:
                    cell += f" (target ≥ {target:g}x)"
            else:
                r = casgi / peer_fig
                cell = f"{r:.2f}x"
                if target:
                    cell += (f" ✓ (≥ {target:g}x)" if r >= target
                             else f" ✗ (target {target:g}x, short by {shortfall(r, target)})")
                if busy(tp.median("casgi", load)) or busy(tp.median(peer, load)):
                    cell += " ‡"
            row.append(cell)
        ratio_rows.append(row)
    text = table(["load", "compared"] + [f"casgi ÷ {p}" for p in peers], ratio_rows)
    if any(" ‡" in c for row in ratio_rows for c in row):
        text += ("\n\n‡ from a run during which other processes took part of the pinned CPUs "
                 "(see the tables above)")
    return text


def name(server, versions):
    """The server and its version, for a column heading."""
    v = versions.get(server, "")
    if not v.startswith(server):
        return server
    if server == "uvicorn":
        return "uvicorn " + v.split()[1] if len(v.split()) > 1 else "uvicorn"
    if server == "nginx":
        return v.replace("/", " ") if v else "nginx"
    return " ".join(v.split()[:2]) or server


def index_marginals(rows, column):
    """The rows of a per-request or per-message CSV by (server, load, tool): the figure (from
    `column`), the notes of the failed ones (or (server, load, "") for n/a, (server, "", "") not
    started), the servers measured with smaller counts under callgrind, and the servers present."""
    by, notes, small_n = {}, {}, {}
    for r in rows:
        key = (r["server"], r["load"], r["tool"])
        if r[column]:
            by[key] = float(r[column])
            if r["tool"] == "callgrind" and r["n1"] != rows_n(rows):
                small_n[r["server"]] = f"{r['n1']}/{r['n2']}"
        elif r["note"]:
            notes[key] = r["note"]
    servers = [s for s in SERVERS if any(r["server"] == s for r in rows)]
    return by, notes, small_n, servers


def marginal_cell(by, notes, small_n, s, load, tool):
    """One server's figure in a per-request or per-message table, or why there is none."""
    v = by.get((s, load, tool))
    if v is None:
        note = (notes.get((s, load, tool)) or notes.get((s, load, "")) or notes.get((s, "", ""))
                or "")
        return ("n/a" if note.startswith("n/a") else
                "not started" if note.startswith("not started") else
                "failed" if note else "—")
    if tool == "callgrind":
        return fmt_int(v) + ("¹" if s in small_n else "")
    return f"{v:.2f}"


def perreq_table(rows, versions):
    by, notes, small_n, servers = index_marginals(rows, "per_request")
    if not servers:
        return "", []
    out = []
    tools = {r["tool"] for r in rows if r["tool"]}
    for load, tool, label, target in PERREQ_ROWS:
        if not any(r["load"] == load for r in rows) or (tools and tool not in tools):
            continue
        row = [label] + [marginal_cell(by, notes, small_n, s, load, tool) for s in servers]
        casgi = by.get(("casgi", load, tool))
        if target is None:
            t = "reported"
        elif tool == "callgrind":
            t = f"≤ {target:,}"
        else:
            t = f"≤ {target:.2f}"
        if casgi is not None and target is not None:
            t += " ✓" if casgi <= target else f" ✗ ({casgi / target:.2f}x the target)"
        row.append(t)
        out.append(row)
    text = table(["per request"] + [name(s, versions) for s in servers] + ["casgi target"], out)
    footnotes = []
    if small_n:
        footnotes.append("¹ fewer requests under callgrind (N1/N2 = " +
                         ", ".join(f"{s} {n}" for s, n in small_n.items()) +
                         f"; the others {rows_n(rows)}/{rows_n(rows, 'n2')}), to keep the run "
                         "short: at about 15 times the others' instructions per request, a "
                         "Python server is slow under callgrind.")
    failures = [f"{' '.join(x for x in k if x)}: {v}" for k, v in notes.items()
                if not v.startswith("n/a")]
    footnotes += [f"- {f}" for f in failures]
    return text, footnotes


def ws_perreq_table(rows, versions):
    """Per echoed WebSocket message, as perreq_table, with casgi's ratio to each peer instead of
    a target."""
    by, notes, small_n, servers = index_marginals(rows, "per_message")
    if not servers:
        return "", []
    peers = [s for s in servers if s != "casgi"]
    out = []
    for load, tool, label in WS_PERREQ_ROWS:
        if not any(r["load"] == load and r["tool"] == tool for r in rows):
            continue
        row = [label] + [marginal_cell(by, notes, small_n, s, load, tool) for s in servers]
        casgi = by.get(("casgi", load, tool))
        for p in peers:
            peer = by.get((p, load, tool))
            row.append(f"{casgi / peer:.2g}x" if casgi is not None and peer else "—")
        out.append(row)
    text = table(["per echoed WebSocket message"] + [name(s, versions) for s in servers] +
                 [f"casgi ÷ {p}" for p in peers], out)
    footnotes = []
    if small_n:
        footnotes.append("¹ fewer messages under callgrind (N1/N2 = " +
                         ", ".join(f"{s} {n}" for s, n in small_n.items()) +
                         f"; the others {rows_n(rows)}/{rows_n(rows, 'n2')}), to keep the run "
                         "short: a Python server is slow under callgrind.")
    footnotes += [f"- {' '.join(k)}: {v}" for k, v in notes.items()]
    return text, footnotes


def h2c_breakdown(out_dir, rows):
    """A footnote: casgi's h2c instructions per request by object file (self cost, the same
    marginal as the table), from the callgrind profiles perreq.sh keeps; [] without them."""
    row = next((r for r in rows if r["server"] == "casgi" and r["load"] == "h2c"
                and r["tool"] == "callgrind" and r["per_request"]), None)
    if row is None:
        return []
    n1, n2 = int(row["n1"]), int(row["n2"])
    paths = [os.path.join(out_dir, "callgrind", f"casgi-h2c-{n}.out") for n in (n1, n2)]
    if n1 == n2 or not all(os.path.exists(p) for p in paths):
        return []
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import cgdiff
        a, b = (cgdiff.costs(p, False) for p in paths)
    except Exception as e:  # callgrind_annotate missing or failing: the table stands alone
        print(f"bench: no h2c breakdown: {e}", file=sys.stderr)
        return []
    objs = {}
    for k in set(a) | set(b):
        obj = k.rsplit(" [", 1)[1][:-1] if k.endswith("]") else "?"
        objs[obj] = objs.get(obj, 0) + (b.get(k, 0) - a.get(k, 0)) / (n2 - n1)
    total = sum(objs.values())
    if total <= 0:
        return []
    parts = [f"{o} {fmt_int(v)} ({100 * v / total:.0f}%)"
             for o, v in sorted(objs.items(), key=lambda kv: -kv[1]) if v >= 0.02 * total]
    return ["", f"Where casgi's {fmt_int(total)} instructions per h2c request go (self cost by object "
            f"file, the same marginal, `bench/cgdiff.py`): " + ", ".join(parts) + "."]


def idle_table(rows, versions):
    """Server RSS growth per idle keep-alive connection; target 1 KiB (issue 5)."""
    if not rows:
        return ""
    servers = [s for s in SERVERS if any(r["server"] == s for r in rows)]
    by = {r["server"]: r for r in rows}
    cells = []
    for s in servers:
        r = by[s]
        if num(r["bytes_per_connection"]) is None:
            cells.append("failed")
        else:
            extra = "" if r["open"] == r["connections"] else f" ({r['open']} stayed open)"
            cells.append(f"{num(r['bytes_per_connection']):,.0f} B{extra}")
    target = "≤ 1,024 B"
    casgi = num(by["casgi"]["bytes_per_connection"]) if "casgi" in by else None
    if casgi is not None:
        target += " ✓" if casgi <= 1024 else f" ✗ ({casgi / 1024:.1f}x the target)"
    n = rows[0]["connections"]
    return table([f"memory, {int(n):,} idle keep-alive connections"] +
                 [name(s, versions) for s in servers] + ["casgi target"],
                 [["server RSS growth per connection"] + cells + [target]])


def wsidle_table(rows, versions):
    """Server RSS growth per idle WebSocket, without and with permessage-deflate offered."""
    if not rows:
        return ""
    servers = [s for s in SERVERS if any(r["server"] == s for r in rows)]
    by = {(r["server"], r["mode"]): r for r in rows}
    out = []
    for mode, label, target in WSIDLE_ROWS:
        if not any(r["mode"] == mode for r in rows):
            continue
        row = [label]
        for s in servers:
            r = by.get((s, mode))
            if r is None:
                row.append("—")
            elif num(r["bytes_per_connection"]) is None:
                row.append("not started" if r["note"].startswith("not started") else "failed")
            else:
                extra = []
                if r["open"] != r["connections"]:
                    extra.append(f"{r['open']} stayed open")
                if mode == "deflate" and r["deflate_accepted"] != r["open"]:
                    extra.append(f"deflate accepted on {r['deflate_accepted']}")
                row.append(f"{num(r['bytes_per_connection']):,.0f} B" +
                           (f" ({', '.join(extra)})" if extra else ""))
        casgi = by.get(("casgi", mode))
        casgi = num(casgi["bytes_per_connection"]) if casgi else None
        if target is None:
            row.append("reported")
        else:
            t = f"≤ {target:,} B"
            if casgi is not None:
                t += " ✓" if casgi <= target else f" ✗ ({casgi / target:.1f}x the target)"
            row.append(t)
        out.append(row)
    n = rows[0]["connections"]
    return table([f"memory, {int(n):,} idle WebSockets"] + [name(s, versions) for s in servers] +
                 ["casgi target"], out)


def wsidle_notes(rows):
    return [f"- {r['server']} wsidle {r['mode']}: {r['note']}" for r in rows if r["note"]]


def rows_n(rows, field="n1"):
    """The request count most rows used (the default one)."""
    counts = [r[field] for r in rows if r[field]]
    return max(set(counts), key=counts.count) if counts else ""


def write_chart(tp, perreq_rows, out_dir, png):
    """Data files for bench/plot.gp (NaN where a figure is missing), then gnuplot."""
    servers = SERVERS
    tallest = {"throughput.dat": 1.0, "instructions.dat": 1.0, "syscalls.dat": 0.1}
    with open(os.path.join(out_dir, "throughput.dat"), "w") as f:
        f.write("load " + " ".join(servers) + "\n")
        for load in (tp.loads() if tp else []):
            label = {"ka64": "keep-alive-64*", "ka256": "keep-alive-256*", "pipe16": "pipelined-x16",
                     "close": "Connection:close", "h2c": "h2c-64x16", "h2c1x100": "h2c-1x100",
                     "ws64": "ws-echo-64B", "ws4k": "ws-echo-4KiB"}[load]
            if LOADS[load][1] and not label.endswith("*"):
                label += "*"
            vals = [tp.figure(s, load) for s in servers]
            tallest["throughput.dat"] = max([tallest["throughput.dat"]] + [v for v in vals if v])
            f.write(label + " " + " ".join("NaN" if v is None else f"{v:.0f}" for v in vals) + "\n")
    by = {(r["server"], r["load"], r["tool"]): float(r["per_request"])
          for r in perreq_rows if r["per_request"]}
    for tool, fname in (("callgrind", "instructions.dat"), ("strace", "syscalls.dat")):
        with open(os.path.join(out_dir, fname), "w") as f:
            f.write("load " + " ".join(servers) + "\n")
            for load, label in (("ka", "keep-alive"), ("pipe16", "pipelined-x16"),
                                ("h2c", "h2c-m16")):
                vals = [by.get((s, load, tool)) for s in servers]
                tallest[fname] = max([tallest[fname]] + [v for v in vals if v])
                f.write(label + " " + " ".join("NaN" if v is None else f"{v:.3f}" for v in vals)
                        + "\n")
    plot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plot.gp")
    cmd = ["gnuplot", "-e", f"dir='{out_dir}'; out='{png}'; tmax={tallest['throughput.dat']}; "
           f"imax={tallest['instructions.dat']}; smax={tallest['syscalls.dat']}", plot]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"bench: gnuplot failed: {r.stderr.strip()}", file=sys.stderr)
        return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--perreq-only", action="store_true")
    ap.add_argument("--command", default="bench/compare.sh")
    ap.add_argument("--docs")
    ap.add_argument("--png")
    args = ap.parse_args()

    meta = read_tsv(os.path.join(args.out, "meta.tsv"))
    versions = read_tsv(os.path.join(args.out, "versions.tsv"))
    perreq_rows = read_csv(os.path.join(args.out, "perreq.csv"))
    pr_text, pr_notes = perreq_table(perreq_rows, versions)
    pr_notes += h2c_breakdown(args.out, perreq_rows)

    if args.perreq_only:
        print("\nPer request (marginal over two request counts, one connection):\n")
        print(pr_text or "(no per-request figures)")
        print("\n" + "\n".join(pr_notes) if pr_notes else "")
        return 0

    status = {}
    for line in list(read_tsv(os.path.join(args.out, "status.tsv")).items())[1:]:
        state, _, note = line[1].partition("\t")
        status[line[0]] = (state, note)
    ws_pr_text, ws_pr_notes = ws_perreq_table(read_csv(os.path.join(args.out, "ws_perreq.csv")),
                                              versions)
    tp = Throughput(read_csv(os.path.join(args.out, "throughput.csv")), status)
    main_text, ws_text, ratio_text = throughput_tables(tp, versions)
    idle_text = idle_table(read_csv(os.path.join(args.out, "idle.csv")), versions)
    wsidle_rows = read_csv(os.path.join(args.out, "wsidle.csv"))
    wsidle_text = wsidle_table(wsidle_rows, versions)
    not_started = [f"- {s}: not started: {note}" for s, (state, note) in status.items()
                   if state == "not started"]
    failed = [f"- {s} {load}: {note}" for (s, load), note in tp.notes.items()
              if not note.startswith("n/a") and not note.startswith("not started")]
    ws_notes = wsidle_notes(wsidle_rows)
    duration, runs = meta.get("duration", "?"), meta.get("runs", "?")

    print(f"\nThroughput: {runs} runs of {duration}s per load, server on CPU "
          f"{meta.get('server_cpu', '0')}, load generator on CPU {meta.get('client_cpu', '1')}:\n")
    print(main_text or "(no HTTP loads in this run)")
    if ws_text:
        print("\nWebSocket echo (bench/ws_load, 1 message in flight per connection):\n")
        print(ws_text)
    print("\ncasgi's ratio to each peer (keep-alive and WebSocket echo: per server core; others: "
          "req/s):\n")
    print(ratio_text)
    if not_started + failed:
        print("\n" + "\n".join(not_started + failed))
    if idle_text:
        print("\nMemory (RSS growth of the server's processes, one request served on each "
              "connection):\n")
        print(idle_text)
    if wsidle_text:
        print("\nMemory per idle WebSocket (RSS growth, one 128-byte message echoed on each):\n")
        print(wsidle_text)
        if ws_notes:
            print("\n" + "\n".join(ws_notes))
    print("\nPer request (marginal over two request counts, one connection):\n")
    print(pr_text or "(no per-request figures)")
    print("\n" + "\n".join(pr_notes) if pr_notes else "")
    if ws_pr_text:
        print("\nPer echoed WebSocket message (marginal over two message counts, 64 connections, "
              "1 message in flight per connection):\n")
        print(ws_pr_text)
        print("\n" + "\n".join(ws_pr_notes) if ws_pr_notes else "")

    chart = ""
    if args.png:
        if write_chart(tp, perreq_rows, args.out, args.png):
            chart = f"\n![throughput and per-request costs]({os.path.basename(args.png)})\n"
            print(f"\nbench: wrote {args.png}", file=sys.stderr)
    if args.docs:
        write_docs(args, meta, versions, main_text, ws_text, ratio_text, not_started + failed,
                   idle_text, wsidle_text, ws_notes, pr_text, pr_notes, ws_pr_text, ws_pr_notes,
                   chart)
        print(f"bench: wrote {args.docs}", file=sys.stderr)
    return 0


def write_docs(args, meta, versions, main_text, ws_text, ratio_text, tp_notes, idle_text,
               wsidle_text, ws_notes, pr_text, pr_notes, ws_pr_text, ws_pr_notes, chart):
    duration, runs = meta.get("duration", "?"), meta.get("runs", "?")
    vrows = [[k, v] for k, v in versions.items()]
    doc = f"""# Benchmarks

Generated by `bench/compare.sh` on {meta.get('date', '?')}; rerun it rather than editing this
file. Compare only numbers from the same run: timings on a shared virtual machine drift by up to
2x within an hour, so a figure from another run, or another machine, says little. The
per-request counts (instructions, system calls) are deterministic and are the ones to track
across runs. `bench/README.md` says what each load measures.

## Machine

| | |
|---|---|
| CPU | {meta.get('cpu', '?')} |
| nproc | {meta.get('nproc', '?')} |
| memory | {meta.get('memory', '?')} |
| OS | {meta.get('os', '?')}, kernel {versions.get('kernel', '?')} |
| load average at start | {meta.get('load', '?')} |
| pinning | every server on CPU {meta.get('server_cpu', '0')}, the load generator on CPU {meta.get('client_cpu', '1')} (taskset) |

## Versions

{table(["what", "version"], vrows)}

## Throughput

{runs} runs of {duration} s per load and server, interleaved (run 1 of every server, then run 2,
...). req/s is the median run's; p99 latency and the CPU shares of the server and of the load
generator (its CPU time over the run's wall time: near 100%, the figure measures the client) are
from that same run; errors are socket errors plus non-2xx and failed requests over all runs. wrk
-t1 drives the HTTP/1.1 loads, h2load -t1 the two h2c ones (prior knowledge, on the same port as
HTTP/1.1 except for nginx, whose h2c is on a second `listen ... http2` port): 64 connections with
16 streams each, and one connection with 100 streams. h2load reports no percentiles, only the
mean request time (†). On keep-alive loads one wrk thread saturates its core before the server
does, so those are compared per server core (req/s divided by the server's CPU share);
pipelined, Connection: close and h2c are compared in raw req/s. On h2c with one connection
neither side saturates its core (each waits for the other's next batch), so the server CPU
column matters there.

{main_text or "(no HTTP loads in this run)"}

WebSocket echo: `bench/ws_load -c 64 -s SIZE` (C on libuv, one thread), 64 connections each
with one binary message in flight: it sends, waits for the echo, checks it and sends the next.
It speaks RFC 6455 with the server's own framing code, no WebSocket library: it masks its
messages eight bytes a word as the server unmasks them and checks each echo in place as it
arrives, with no copy and no allocation per message (with wslay reading the server's frames the
client spent more instructions per message than the server: 1,870 against 1,330 at 64 bytes).
Messages/s counts the echoes received in the run; p99 is the round trip from sending a message
to having its echo whole. casgi runs `apps/ws_echo.so`, uvicorn a 15-line ASGI echo app
with `--ws websockets`; nginx and h2o have no WebSocket echo. The client makes the same system
calls per message as the server (a read and a write), so its one core saturates about when
casgi's does; like the keep-alive loads these are compared per server core (messages/s divided
by the server's CPU share).

{ws_text or "(not measured in this run)"}

casgi's ratio to each peer, with the same-run targets of issue 5 where there is one:

{ratio_text}
{chr(10).join(tp_notes)}

## Memory

Growth of the server's resident set (VmRSS, summed over its processes) between a warm server
and the same server holding the idle keep-alive connections of `bench/idle.py`, each of which
has served one request; socket buffers in the kernel are not included.

{idle_text or "(not measured in this run)"}

The same for idle WebSockets (`bench/ws_idle.py`), each of which has done its handshake and
echoed one 128-byte binary message, against the echo servers above, started afresh for each of
the two runs: without extensions, and with `permessage-deflate; client_max_window_bits` offered
(both servers accept it by default; the message then goes out compressed, so both of the
server's zlib streams have been used). The warm-up opens, uses and closes 20 WebSockets first.

{wsidle_text or "(not measured in this run)"}
{chr(10).join(ws_notes)}
## Per request

User-space instructions (valgrind --tool=callgrind, every instruction the server process runs,
libraries included) and system calls (strace -c -f) per request. Each is a marginal over two
runs, `(total(N2) - total(N1)) / (N2 - N1)`, one connection driven by h2load (`--h1 -m1`
keep-alive, `--h1 -m16` pipelined, `-m16` h2c), and for Connection: close one new connection per
request, one after another (`bench/close_client.py`: accept, request, response, close), so
start-up and shutdown cancel out. nginx runs
as one process (`master_process off`). Instruction counts repeat to within about 1%. System
calls per request under pipelining and h2c depend on how many requests each read happens to
find, so they vary a little from run to run (and more for uvicorn). Where the instructions go:
`bench/cgdiff.py build/bench/results/callgrind/casgi-h2c-{{2000,4000}}.out` (per function, the
same marginal; `--inclusive` with callees).

{pr_text or "(not measured in this run)"}

{chr(10).join(pr_notes)}

The same per echoed WebSocket message (`bench/ws_perreq.sh`), against the echo servers below:
`bench/ws_load -c 64 -s SIZE -m N` echoes exactly N binary messages over 64 connections, one in
flight on each, and the server is stopped; the marginal over N1 and N2 cancels start-up, the
handshakes and the closes. The fewest system calls are one read and one write per message, plus
a share of epoll_wait. Per call name: the log of `bench/ws_perreq.sh`; where the instructions go:
`bench/cgdiff.py build/bench/results/callgrind/casgi-ws4k-{{5000,10000}}.out`.

{ws_pr_text or "(not measured in this run)"}

{chr(10).join(ws_pr_notes)}
{chart}
## The servers

Each answers `GET /` on 127.0.0.1 with the 13 bytes `Hello, World!` as `text/plain`, with a
configuration generated by `bench/common.sh`:

- **casgi**: `apps/hello.so` through the full application API (the app receives its scope and
  sends `http.response.start` and `http.response.body`), Release build, `--no-access-log`.
- **nginx**: one worker, `return 200 "Hello, World!"`, `default_type text/plain`, `access_log
  off`, `keepalive_requests` unlimited; h2c on a second `listen ... http2` port, because nginx
  1.22 speaks only HTTP/2 there.
- **h2o**: `num-threads: 1`, `file.dir` of a directory holding a 13-byte `index.txt`, no access
  log. That is h2o's cheapest way to a fixed answer: an `mruby.handler` returning the same
  response costs about three times the instructions per request.
- **uvicorn**: a six-line ASGI app, `--loop uvloop --http httptools --workers 1
  --no-access-log --lifespan off`, run by Debian's `/usr/bin/python3`.

For the WebSocket loads casgi and uvicorn run a second time, as echo servers with their default
WebSocket settings: casgi with `apps/ws_echo.so`, uvicorn with a 15-line ASGI echo app and `--ws
websockets` (Debian's python3-websockets), with the options above.

## Reproduce

```sh
{args.command}
```

Only the per-request part: `bench/perreq.sh`. Only HTTP/2 (both h2c loads and the h2c
per-request counts for casgi, nginx and h2o; results in `build/bench/results-h2`, this file left
alone): `bench/compare.sh --only h2`. Shorter runs while developing:
`BENCH_DURATION=2 BENCH_RUNS=1 BENCH_PERREQ=0 BENCH_DOCS=0 bench/compare.sh`.
"""
    with open(args.docs, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    sys.exit(main())
