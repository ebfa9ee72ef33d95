"""The HTTP scope the app sees (testapp's /scope lists it): versions, method, path decoding,
raw_path, query_string, root_path, headers (lower-cased, raw values, order and duplicates kept),
client and server addresses over TCP and a Unix socket, state from lifespan, extensions."""

import os
import shutil
import socket
import tempfile
import time
import unittest

from casgi_harness import Conn, ServerTestCase, exchange, parse_scope, scaled


class Scope(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server()
        self.port = self.srv.port

    def scope(self, target, headers=None, method="GET", version="HTTP/1.1"):
        r = exchange(self.port, method, target, headers, version=version)
        self.assertResponse(r, 200)
        return parse_scope(r.body)

    def test_basic_keys(self):
        s = self.scope("/scope")
        self.assertEqual(s["type"], "http")
        self.assertEqual(s["asgi_version"], "3.0")
        self.assertEqual(s["spec_version"], "2.5")
        self.assertEqual(s["http_version"], "1.1")
        self.assertEqual(s["method"], "GET")
        self.assertEqual(s["scheme"], "http")
        self.assertEqual(s["path"], "/scope")
        self.assertEqual(s["raw_path"], "/scope")
        self.assertEqual(s["query_string"], "")
        self.assertEqual(s["root_path"], "")

    def test_http10(self):
        r = exchange(self.port, "GET", "/scope", headers=[], version="HTTP/1.0")
        s = parse_scope(r.body)
        self.assertEqual(s["http_version"], "1.0")
        self.assertEqual(s["headers"], [])

    def test_methods(self):
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            with self.subTest(method=method):
                r = exchange(self.port, method, "/scope", body=b"")
                self.assertEqual(parse_scope(r.body)["method"], method)

    def test_path_percent_decoded_raw_path_kept(self):
        s = self.scope("/scope/a%20b%2Fc%C3%A9/~x?x=%20y&z")
        self.assertEqual(s["path"], "/scope/a b/c\xc3\xa9/~x")
        self.assertEqual(s["raw_path"], "/scope/a%20b%2Fc%C3%A9/~x")
        self.assertEqual(s["query_string"], "x=%20y&z")

    def test_plus_is_not_space_in_path(self):
        s = self.scope("/scope/a+b")
        self.assertEqual(s["path"], "/scope/a+b")

    def test_query_string_edge_cases(self):
        self.assertEqual(self.scope("/scope?")["query_string"], "")
        self.assertEqual(self.scope("/scope?a=1?b=2")["query_string"], "a=1?b=2")
        self.assertEqual(self.scope("/scope?%41=%42")["query_string"], "%41=%42")

    def test_headers_lower_cased_in_order_with_duplicates(self):
        s = self.scope("/scope", headers=[
            ("Host", "127.0.0.1"),
            ("X-Dup", "1"),
            ("X-MiXeD-Case", "Value With Spaces"),
            ("X-Dup", "2"),
            ("X-Space", "   padded   "),
            ("X-Empty", ""),
            ("Accept", "*/*"),
        ])
        self.assertEqual(s["headers"], [
            ("host", "127.0.0.1"),
            ("x-dup", "1"),
            ("x-mixed-case", "Value With Spaces"),
            ("x-dup", "2"),
            ("x-space", "padded"),
            ("x-empty", ""),
            ("accept", "*/*"),
        ])
        self.assertEqual(s["num_headers"], "7")

    def test_header_values_raw_bytes(self):
        # obs-text (0x80-0xff) is legal in values and passed through untouched.
        s = self.scope("/scope", headers=[("Host", "x"), ("X-Bytes", "caf\xe9 \tq")])
        self.assertEqual(s["headers"][1], ("x-bytes", "caf\xe9 \tq"))

    def test_many_headers(self):
        hs = [("Host", "x")] + [(f"X-H{i}", f"v{i}") for i in range(60)]
        s = self.scope("/scope", headers=hs)
        self.assertEqual(s["headers"], [(n.lower(), v) for n, v in hs])

    def test_head_arriving_in_pieces_gives_the_same_scope(self):
        # The server copies each read's part of a head at once: a head cut anywhere, inside the
        # target, a name or a value, must give the scope of the same head sent whole.
        head = (b"GET /sc%6fpe?q=1&r=two HTTP/1.1\r\nHost: piece.example\r\n"
                b"X-Long-Header-Name: a value, with spaces  \r\nAccept: */*\r\n\r\n")
        whole = self.scope_of_raw([head])
        self.assertEqual(whole["path"], "/scope")
        self.assertEqual(whole["query_string"], "q=1&r=two")
        self.assertEqual(whole["headers"], [("host", "piece.example"),
                                            ("x-long-header-name", "a value, with spaces"),
                                            ("accept", "*/*")])
        cuts = [3, 9, 17, 30, 40, 52, 70, 80, len(head) - 2]
        for cut in cuts:
            with self.subTest(cut=cut):
                self.assertEqual(self.scope_of_raw([head[:cut], head[cut:]]), whole)
        # byte by byte, twice on one keep-alive connection
        with Conn(self.port) as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(2):
                for i in range(len(head)):
                    c.send(head[i:i + 1])
                    time.sleep(0.001)
                r = c.read_response()
                self.assertResponse(r, 200)
                self.assertEqual(self.without_client_port(parse_scope(r.body)), whole)

    def scope_of_raw(self, pieces):
        with Conn(self.port) as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for piece in pieces:
                c.send(piece)
                time.sleep(0.02)  # a read of its own
            r = c.read_response()
        self.assertResponse(r, 200)
        return self.without_client_port(parse_scope(r.body))

    @staticmethod
    def without_client_port(scope):
        scope.pop("client_port")  # each connection has its own
        return scope

    def test_client_and_server_addresses(self):
        with Conn(self.port) as c:
            c.request("GET", "/scope")
            s = parse_scope(c.read_response().body)
            self.assertEqual(s["client_host"], "127.0.0.1")
            self.assertEqual(int(s["client_port"]), c.local_port())
            self.assertEqual(s["server_host"], "127.0.0.1")
            self.assertEqual(int(s["server_port"]), self.port)

    def test_state_from_lifespan(self):
        self.assertEqual(self.scope("/scope")["state"], "state-from-startup")

    def test_trailers_extension_advertised(self):
        self.assertEqual(int(self.scope("/scope")["extensions"]) & 1, 1)


class RootPath(ServerTestCase):
    def test_root_path(self):
        srv = self.start_server("--root-path", "/api")
        # The proxy in front stripped the mount point; path and raw_path carry it again
        # (ASGI; Uvicorn since 0.26).
        r = exchange(srv.port, "GET", "/scope/x%20y?q=1")
        self.assertResponse(r, 200)
        s = parse_scope(r.body)
        self.assertEqual(s["root_path"], "/api")
        self.assertEqual(s["path"], "/api/scope/x y")
        self.assertEqual(s["raw_path"], "/api/scope/x%20y")
        self.assertEqual(s["query_string"], "q=1")

    def test_root_path_in_every_scope(self):
        srv = self.start_server("--root-path", "/mount/point")
        with Conn(srv.port) as c:
            for _ in range(3):
                c.request("GET", "/scope")
                self.assertEqual(parse_scope(c.read_response().body)["root_path"],
                                 "/mount/point")


class NoLifespanState(ServerTestCase):
    def test_state_null_without_lifespan(self):
        srv = self.start_server("--lifespan", "off")
        r = exchange(srv.port, "GET", "/scope")
        self.assertEqual(parse_scope(r.body)["state"], "NULL")


class UnixSocket(ServerTestCase):
    def test_unix_socket_scope(self):
        d = tempfile.mkdtemp(prefix="casgi-uds-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "casgi.sock")

        def ready(srv):
            if not os.path.exists(path):
                return False
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return True
            except OSError:
                return False
            finally:
                s.close()

        self.start_server("--uds", path, tcp=False, ready=ready)
        with Conn(uds=path, timeout=scaled(20)) as c:
            c.request("GET", "/scope")
            r = c.read_response()
            self.assertResponse(r, 200)
            s = parse_scope(r.body)
            self.assertEqual(s["server_host"], path)
            self.assertEqual(s["server_port"], "-1")
            self.assertEqual(s["client_host"], "None")
            # Keep-alive works over the Unix socket too.
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")
        with Conn(uds=path) as c:
            c.send(b"POST /read-body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            self.assertIn(b"len=3 ", c.read_response().body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
