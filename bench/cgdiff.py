#!/usr/bin/python3
"""Where a server's instructions per request go: the marginal cost of each function between two
callgrind profiles of the same load at two request counts (bench/perreq.sh keeps them).

    bench/cgdiff.py [--top N] [--inclusive] N1.out N2.out
    bench/cgdiff.py build/bench/results/callgrind/casgi-h2c-{2000,4000}.out

The request counts are read from the file names (SERVER-LOAD-N.out) unless --n1/--n2 are given.
For each function it prints (cost in N2 - cost in N1) / (N2 - N1): self cost by default, the cost
including callees with --inclusive, so that start-up and shutdown cancel out as in perreq.sh.
Functions of stripped libraries show as their address (libnghttp2's internal ones, for example);
the last table sums the self cost per object file.
"""

import argparse
import os
import re
import subprocess
import sys

LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*?)\s*$")


def costs(path, inclusive):
    """{function: Ir} from callgrind_annotate, every function (no threshold)."""
    cmd = ["callgrind_annotate", "--threshold=100", f"--inclusive={'yes' if inclusive else 'no'}",
           path]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result, started = {}, False
    for line in out.splitlines():
        if "file:function" in line:
            started = True
            continue
        if not started or line.startswith("-"):
            continue
        m = LINE.match(line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        fn = m.group(2)
        # "./malloc/./malloc/malloc.c:_int_free [/usr/lib/.../libc.so.6]" -> "_int_free [libc.so.6]"
        obj = ""
        if fn.endswith("]") and " [" in fn:
            fn, obj = fn.rsplit(" [", 1)
            obj = os.path.basename(obj[:-1])
        fn = fn.split(":", 1)[1] if ":" in fn and not fn.startswith("0x") else fn
        key = f"{fn} [{obj}]" if obj else fn
        result[key] = result.get(key, 0) + int(m.group(1).replace(",", ""))
    return result


def count_from_name(path):
    m = re.search(r"-(\d+)\.out", os.path.basename(path))
    return int(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n1_out")
    ap.add_argument("n2_out")
    ap.add_argument("--n1", type=int)
    ap.add_argument("--n2", type=int)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--inclusive", action="store_true")
    args = ap.parse_args()
    n1 = args.n1 or count_from_name(args.n1_out)
    n2 = args.n2 or count_from_name(args.n2_out)
    if not n1 or not n2 or n1 == n2:
        sys.exit("cgdiff: give the two request counts (--n1, --n2) or name the files *-N.out")

    a, b = costs(args.n1_out, args.inclusive), costs(args.n2_out, args.inclusive)
    per = {k: (b.get(k, 0) - a.get(k, 0)) / (n2 - n1) for k in set(a) | set(b)}
    total = (sum(b.values()) - sum(a.values())) / (n2 - n1) if not args.inclusive else None
    kind = "inclusive" if args.inclusive else "self"
    print(f"instructions per request ({kind}), marginal over {n1} -> {n2} requests"
          + (f"; all functions: {total:,.0f}" if total is not None else ""))
    for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:args.top]:
        share = f"  {100 * v / total:5.1f}%" if total else ""
        print(f"{v:10,.0f}{share}  {k}")
    if not args.inclusive:
        objs = {}
        for k, v in per.items():
            obj = k.rsplit(" [", 1)[1][:-1] if k.endswith("]") else "?"
            objs[obj] = objs.get(obj, 0) + v
        print("\nper object file (self):")
        for o, v in sorted(objs.items(), key=lambda kv: -kv[1]):
            if abs(v) >= 0.5:
                print(f"{v:10,.0f}  {100 * v / total:5.1f}%  {o}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
