#!/usr/bin/python3
"""Connection: close requests, one connection each, one after another (bench/perreq.sh's `close`
load, which h2load cannot make: it keeps its connections).

    close_client.py PORT N

Each connection sends `GET /` with `Connection: close` and reads until the server closes it. A
request succeeds when the answer is a 2xx status line and the server closed the connection.
Prints one line in h2load's words, which bench/perreq.sh checks:

    requests: N total, S succeeded, F failed
"""
import socket
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def one(port):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(REQUEST)
        answer = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer.startswith(b"HTTP/1.1 2") or answer.startswith(b"HTTP/1.0 2")


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    ok = 0
    for _ in range(n):
        try:
            ok += one(port)
        except OSError:
            pass
    print(f"requests: {n} total, {ok} succeeded, {n - ok} failed")
    return 0 if ok == n else 1


if __name__ == "__main__":
    sys.exit(main())
