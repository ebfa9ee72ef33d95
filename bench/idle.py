#!/usr/bin/python3
"""Server memory per idle keep-alive connection.

    idle.py PORT PID [CONNECTIONS]

Opens CONNECTIONS (default 10,000) HTTP/1.1 connections to 127.0.0.1:PORT, sends one GET / on
each and reads its answer, so every connection has served a request and is now idle in
keep-alive. Prints one line of tab-separated fields:

    rss_before_kib  rss_after_kib  connections_open  bytes_per_connection

where RSS is the sum of VmRSS over PID and its descendants (nginx's master and worker), read
after a warm-up request and again once all connections are idle. Connections the server closed
before the second reading are not counted. Needs a file-descriptor limit above CONNECTIONS.
"""

import os
import selectors
import socket
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def tree(pid):
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for child in f.read().split():
                pids += tree(int(child))
    except OSError:
        pass
    return pids


def rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def get_once(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        while s.recv(65536):
            pass


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    for _ in range(20):  # warm-up: the server's first requests allocate what every one shares
        get_once(port)
    time.sleep(0.2)
    before = rss_kib(pid)

    socks = []
    sel = selectors.DefaultSelector()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(REQUEST)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, bytearray())
        socks.append(s)
    # Read until each connection has a whole answer (the 13-byte body ends it) or was closed.
    pending = n
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            try:
                data = key.fileobj.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            key.data.extend(data)
            if not data or key.data.endswith(b"Hello, World!"):
                sel.unregister(key.fileobj)
                pending -= 1
    time.sleep(0.5)
    after = rss_kib(pid)

    open_count = 0
    for s in socks:
        try:
            open_count += s.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            open_count += 1  # nothing to read and not closed: idle and open
        except OSError:
            pass
    per = (after - before) * 1024 / open_count if open_count else float("nan")
    print(f"{before}\t{after}\t{open_count}\t{per:.0f}")
    for s in socks:
        s.close()
    return 0 if open_count else 1


if __name__ == "__main__":
    sys.exit(main())
