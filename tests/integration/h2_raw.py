"""A raw HTTP/2 client for conformance tests: hyperframe parses what the server sends, hpack
decodes its field blocks, and everything we send is built byte by byte, so a test can send any
frame, valid or not (bad lengths, bad padding, frames on stream 0 that must not be, field blocks
interleaved with other frames, HPACK that no encoder would produce).

The reader also checks, on every frame it receives, the rules the *server* must follow whatever
the test is about, and raises ServerViolation (an AssertionError) at once when one is broken:

  - the first frame is a SETTINGS frame without ACK (RFC 9113 3.4);
  - reserved bit of the stream id unset (4.1); length within our SETTINGS_MAX_FRAME_SIZE (4.2);
  - frames of a field block contiguous, CONTINUATION only inside one (4.3, 6.10);
  - field blocks decodable with our HPACK limits (4.3, RFC 7541);
  - no frames on streams we never opened, none but PRIORITY after the server's END_STREAM or
    RST_STREAM (5.1); stream-0-only frames on stream 0 and the others never on it (6.x);
  - DATA within the flow-control windows we granted (6.9.1);
  - no PUSH_PROMISE after we disabled push (6.5.2, 8.4); with push on, promises only on open
    client streams, promised ids even and increasing, at most our SETTINGS_MAX_CONCURRENT_STREAMS
    pushed streams open (5.1.2, 6.6);
  - GOAWAY never raises its last stream id (6.8).

Usage:

    c = H2Conn(port)            # TCP connect only
    c.start()                   # preface + SETTINGS, reads the server's SETTINGS, ACKs both ways
    sid = c.request("GET", "/ok")
    r = c.response(sid)         # status, headers, body, trailers, data_frames, reset_code
    c.send_raw(frame(PING, 0, 1, b"12345678"))
    c.expect_connection_error(PROTOCOL_ERROR)

Also, run as a script: `h2_raw.py make-docroot DIR` writes the files the conformance suite asks
an external server (nghttpd, h2o) for: /ok ("ok") and /big/100000 (byte i is i % 251).

Python stdlib + hyperframe + hpack (Debian's python3-hyperframe, python3-hpack); timeouts from
casgi_harness (IO_TIMEOUT, scaled(), CASGI_TEST_TIME_SCALE). Only 127.0.0.1. Every wait is
bounded.
"""

import os
import select
import socket
import struct
import sys
import time

import hpack
import hpack.exceptions
import hyperframe.exceptions
import hyperframe.frame as hf

from casgi_harness import HOST, IO_TIMEOUT, scaled

CLOSE_TIMEOUT = scaled(5.0)  # how long a server may take to close after its GOAWAY
# How long an expected error may lag behind the ACK of a PING sent after the offending frame
# (servers may queue PING ACKs ahead of RST_STREAM and GOAWAY).
PROBE_GRACE = scaled(1.0)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 6).
DATA = 0x0
HEADERS = 0x1
PRIORITY = 0x2
RST_STREAM = 0x3
SETTINGS = 0x4
PUSH_PROMISE = 0x5
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9

FRAME_NAMES = {DATA: "DATA", HEADERS: "HEADERS", PRIORITY: "PRIORITY", RST_STREAM: "RST_STREAM",
               SETTINGS: "SETTINGS", PUSH_PROMISE: "PUSH_PROMISE", PING: "PING",
               GOAWAY: "GOAWAY", WINDOW_UPDATE: "WINDOW_UPDATE", CONTINUATION: "CONTINUATION"}

# Flags.
FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
FLAG_PADDED = 0x8
FLAG_PRIORITY = 0x20

# Error codes (RFC 9113 7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
SETTINGS_TIMEOUT = 0x4
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
CONNECT_ERROR = 0xa
ENHANCE_YOUR_CALM = 0xb
INADEQUATE_SECURITY = 0xc
HTTP_1_1_REQUIRED = 0xd

ERROR_NAMES = {NO_ERROR: "NO_ERROR", PROTOCOL_ERROR: "PROTOCOL_ERROR",
               INTERNAL_ERROR: "INTERNAL_ERROR", FLOW_CONTROL_ERROR: "FLOW_CONTROL_ERROR",
               SETTINGS_TIMEOUT: "SETTINGS_TIMEOUT", STREAM_CLOSED: "STREAM_CLOSED",
               FRAME_SIZE_ERROR: "FRAME_SIZE_ERROR", REFUSED_STREAM: "REFUSED_STREAM",
               CANCEL: "CANCEL", COMPRESSION_ERROR: "COMPRESSION_ERROR",
               CONNECT_ERROR: "CONNECT_ERROR", ENHANCE_YOUR_CALM: "ENHANCE_YOUR_CALM",
               INADEQUATE_SECURITY: "INADEQUATE_SECURITY",
               HTTP_1_1_REQUIRED: "HTTP_1_1_REQUIRED"}

# SETTINGS parameters (RFC 9113 6.5.2, RFC 8441 3, RFC 9218 2.1).
SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6
SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8
SETTINGS_NO_RFC7540_PRIORITIES = 0x9

SETTING_DEFAULTS = {SETTINGS_HEADER_TABLE_SIZE: 4096, SETTINGS_ENABLE_PUSH: 1,
                    SETTINGS_MAX_CONCURRENT_STREAMS: 1 << 32,  # unlimited
                    SETTINGS_INITIAL_WINDOW_SIZE: 65535, SETTINGS_MAX_FRAME_SIZE: 16384}

MAX_WINDOW = (1 << 31) - 1
DEFAULT_WINDOW = 65535
DEFAULT_MAX_FRAME_SIZE = 16384


def error_name(code):
    if code is None:
        return "None"
    return ERROR_NAMES.get(code, f"0x{code:x}")


def codes_text(codes):
    return "|".join(error_name(c) for c in codes)


class ServerViolation(AssertionError):
    """The server broke a rule of RFC 9113 / RFC 7541 that no test input excuses."""


class H2Timeout(AssertionError):
    """Nothing (or not the expected thing) arrived within the bound."""


# ---------------------------------------------------------------------------------------------
# Building frames by hand
# ---------------------------------------------------------------------------------------------

def frame(ftype, flags, stream_id, payload=b"", length=None, reserved=False):
    """One frame's bytes. `length` overrides the length field (the payload stays as given);
    `reserved` sets the R bit of the stream identifier."""
    n = len(payload) if length is None else length
    sid = (stream_id & 0x7FFFFFFF) | (0x80000000 if reserved else 0)
    return struct.pack(">I", n)[1:] + bytes([ftype & 0xFF, flags & 0xFF]) + \
        struct.pack(">I", sid) + bytes(payload)


def padded(payload, pad_length, pad_length_field=None):
    """PADDED layout: Pad Length byte, payload, padding (zeros). pad_length_field overrides the
    announced pad length (to announce more padding than there is)."""
    field = pad_length if pad_length_field is None else pad_length_field
    return bytes([field & 0xFF]) + bytes(payload) + bytes(pad_length)


def priority_fields(dependency=0, weight=16, exclusive=False):
    """Exclusive bit + stream dependency + weight (1..256) as in HEADERS and PRIORITY."""
    dep = (dependency & 0x7FFFFFFF) | (0x80000000 if exclusive else 0)
    return struct.pack(">IB", dep, (weight - 1) & 0xFF)


def settings_payload(pairs):
    """pairs: a dict or a list of (id, value), in order (duplicates allowed)."""
    if isinstance(pairs, dict):
        pairs = list(pairs.items())
    return b"".join(struct.pack(">HI", k, v & 0xFFFFFFFF) for k, v in pairs)


def goaway_payload(last_stream_id, code, debug=b""):
    return struct.pack(">II", last_stream_id & 0x7FFFFFFF, code) + debug


def u32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


# ---------------------------------------------------------------------------------------------
# HPACK by hand (RFC 7541), for the blocks no encoder would produce
# ---------------------------------------------------------------------------------------------

_HUFFMAN = hpack.huffman.HuffmanEncoder(hpack.huffman_constants.REQUEST_CODES,
                                        hpack.huffman_constants.REQUEST_CODES_LENGTH)


def hpack_int(value, prefix_bits, first_byte=0):
    """RFC 7541 5.1 integer with an N-bit prefix; `first_byte` carries the pattern bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _b(s):
    return s if isinstance(s, (bytes, bytearray)) else s.encode("latin-1")


def hpack_string(data, huffman=False):
    data = _b(data)
    if huffman:
        data = _HUFFMAN.encode(data)
        return hpack_int(len(data), 7, 0x80) + data
    return hpack_int(len(data), 7, 0) + data


def hpack_raw_string(encoded, huffman=True):
    """A string literal whose (already encoded) octets are given as they are: for bad Huffman."""
    return hpack_int(len(encoded), 7, 0x80 if huffman else 0) + encoded


def hpack_indexed(index):
    """6.1 Indexed Header Field."""
    return hpack_int(index, 7, 0x80)


def hpack_literal(name, value, indexing="without", huffman=False):
    """6.2 literal with a new name: indexing "incremental" (6.2.1), "without" (6.2.2) or
    "never" (6.2.3). Names go out exactly as given (no lower-casing)."""
    first = {"incremental": 0x40, "without": 0x00, "never": 0x10}[indexing]
    return bytes([first]) + hpack_string(name, huffman) + hpack_string(value, huffman)


def hpack_size_update(size):
    """6.3 Dynamic Table Size Update."""
    return hpack_int(size, 5, 0x20)


def hpack_block(headers, huffman=False):
    """A field block of literals without indexing: changes no dynamic table, so it can be sent
    on any connection at any time, whatever the server's decoder state."""
    return b"".join(hpack_literal(n, v, "without", huffman) for n, v in headers)


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------

class H2Stream:
    """What the server sent on one stream, plus our flow-control bookkeeping."""

    def __init__(self, sid):
        self.id = sid
        self.blocks = []  # [(fields [(name, value) str], end_stream)]
        self.data = bytearray()
        self.data_frames = []  # payload lengths (without padding)
        self.fc_received = 0  # flow-controlled bytes (with padding)
        self.updates_sent = 0  # WINDOW_UPDATE increments we granted
        self.server_end = False
        self.reset_code = None  # RST_STREAM from the server
        self.client_reset = False
        self.client_end = False
        self.frames = []  # every frame on it, as received
        self.request = None  # a pushed stream: the promised request's fields
        self.promises = []  # [(promised stream id, fields)] sent on this stream

    @property
    def done(self):
        return self.server_end or self.reset_code is not None


class H2Response:
    """One stream's response as the server sent it (so far, if not complete)."""

    def __init__(self, st, closed=False, goaway=None):
        self.stream_id = st.id
        self.informational = []  # field lists of 1xx responses
        self.fields = None  # the final response's field block, pseudo-headers included
        self.trailers = None
        self.extra_blocks = []  # blocks after the trailers (should never happen)
        for fields, _end in st.blocks:
            status = dict(fields).get(":status", "")
            if self.fields is None and status.startswith("1"):
                self.informational.append(fields)
            elif self.fields is None:
                self.fields = fields
            elif self.trailers is None:
                self.trailers = fields
            else:
                self.extra_blocks.append(fields)
        self.body = bytes(st.data)
        self.data_frames = list(st.data_frames)
        self.reset_code = st.reset_code
        self.complete = st.server_end
        self.connection_closed = closed
        self.goaway = goaway
        st_ = self.header(":status")
        self.status = int(st_) if st_ and st_.isdigit() else None

    @property
    def headers(self):
        """The final response's regular fields (no pseudo-headers)."""
        return [(n, v) for n, v in (self.fields or []) if not n.startswith(":")]

    def header(self, name):
        for n, v in self.fields or []:
            if n == name:
                return v
        return None

    def header_all(self, name):
        return [v for n, v in self.fields or [] if n == name]

    def trailer(self, name):
        for n, v in self.trailers or []:
            if n == name:
                return v
        return None

    def __repr__(self):
        body = self.body if len(self.body) < 200 else self.body[:200] + b"..."
        return (f"<H2Response stream={self.stream_id} status={self.status} "
                f"complete={self.complete} reset={error_name(self.reset_code)} "
                f"fields={self.fields} informational={self.informational} "
                f"body[{len(self.body)}]={body!r} data_frames={self.data_frames[:20]} "
                f"trailers={self.trailers} closed={self.connection_closed} "
                f"goaway={self.goaway}>")


# ---------------------------------------------------------------------------------------------
# The connection
# ---------------------------------------------------------------------------------------------

def describe_frame(f, direction="<-"):
    name = FRAME_NAMES.get(f.type, f"type=0x{f.type:x}")
    flags = ",".join(sorted(f.flags)) if getattr(f, "flags", None) else ""
    text = f"{direction} {name}[s={f.stream_id}{' ' + flags if flags else ''}]"
    if f.type == DATA:
        text += f" len={len(f.data)}"
    elif f.type == PUSH_PROMISE:
        text += f" promised={f.promised_stream_id}"
        if getattr(f, "decoded", None) is not None:
            text += f" {f.decoded}"
    elif f.type in (HEADERS, CONTINUATION) and getattr(f, "decoded", None) is not None:
        text += f" {f.decoded}"
    elif f.type == RST_STREAM:
        text += f" {error_name(f.error_code)}"
    elif f.type == GOAWAY:
        text += (f" last_stream_id={f.last_stream_id} {error_name(f.error_code)}"
                 f" debug={bytes(f.additional_data)[:100]!r}")
    elif f.type == SETTINGS:
        text += f" {dict(f.settings)}"
    elif f.type == WINDOW_UPDATE:
        text += f" +{f.window_increment}"
    elif f.type == PING:
        text += f" {bytes(f.opaque_data)!r}"
    return text


def describe_raw(data, touched=None):
    """A short description of frame bytes we send (for the log); adds their stream ids to
    `touched`."""
    out = []
    pos = 0
    if data.startswith(PREFACE):
        out.append("-> connection preface")
        pos = len(PREFACE)
    while pos + 9 <= len(data):
        n = int.from_bytes(data[pos:pos + 3], "big")
        t, fl = data[pos + 3], data[pos + 4]
        sid = int.from_bytes(data[pos + 5:pos + 9], "big")
        name = FRAME_NAMES.get(t, f"type=0x{t:x}")
        if touched is not None:
            touched.add(sid & 0x7FFFFFFF)
        body = bytes(data[pos + 9:pos + 9 + n])
        text = (f"-> {name}[s={sid & 0x7FFFFFFF}{' R' if sid >> 31 else ''} "
                f"flags=0x{fl:02x} len={n}]")
        if t in (RST_STREAM, WINDOW_UPDATE) and n == 4:
            v = int.from_bytes(body, "big")
            text += f" {error_name(v)}" if t == RST_STREAM else f" +{v & 0x7FFFFFFF}"
        elif t == SETTINGS and n % 6 == 0 and n:
            text += " " + str([struct.unpack(">HI", body[i:i + 6]) for i in range(0, n, 6)])
        elif t == PING:
            text += f" {body!r}"
        elif t == GOAWAY and n >= 8:
            text += (f" last_stream_id={int.from_bytes(body[:4], 'big') & 0x7FFFFFFF} "
                     f"{error_name(int.from_bytes(body[4:8], 'big'))}")
        out.append(text)
        pos += 9 + min(n, max(0, len(data) - pos - 9))
    if pos < len(data) or not out:
        out.append(f"-> raw {bytes(data[pos:pos + 40])!r}")
    return out


class H2Conn:
    """One HTTP/2 connection with prior knowledge over plain TCP.

    auto_window: after each DATA frame, grant its length back on the connection and the stream
        (off for flow-control tests, which then send WINDOW_UPDATE themselves).
    auto_ack_settings: ACK the server's SETTINGS frames (on by default).
    """

    def __init__(self, port, host=HOST, timeout=IO_TIMEOUT, auto_window=True):
        self.port = port
        self.host = host
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.closed = False  # the server closed (EOF or reset)
        self.reset = False
        self.send_failed = False
        self.auto_window = auto_window
        self.auto_ack_settings = True
        self.log = []
        self._log_slot = 0
        self.frames_seen = 0
        self.touched = set()  # stream ids we sent any frame on

        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.server_settings = {}
        self.server_settings_frames = 0
        self.settings_acks = 0
        self.first_frame = None

        # Our settings as the server may apply them: committed by its ACKs, pending until then.
        self.committed = dict(SETTING_DEFAULTS)
        self.pending = []

        self.streams = {}
        self.max_client_stream = 0
        self.next_stream_id = 1
        self.conn_fc_received = 0
        self.conn_updates_sent = 0
        self.cont_stream = None  # the stream whose field block is open (server side)
        self.block_frames = []
        self.block_promise = None  # the promised stream id when the open block is a promise
        self.last_promised = 0
        self.pushed_active = set()  # pushed streams the server has opened and not ended
        self.block_flags = set()  # flags of the HEADERS frame that opened the field block
        self.goaways = []
        self.ping_counter = 0
        self.probe_acked = False

        # Our send windows (for request bodies).
        self.send_conn_window = DEFAULT_WINDOW
        self.send_stream_delta = {}  # sid -> WINDOW_UPDATEs - data sent

    # -- plumbing -----------------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def note(self, text):
        self.log.append(text)

    def history(self, n=40):
        lines = self.log[-n:]
        skipped = len(self.log) - len(lines)
        head = f"  ... {skipped} earlier lines\n" if skipped else ""
        return "frames (-> sent, <- received):\n" + head + "\n".join("  " + s for s in lines)

    def fail(self, msg, cls=AssertionError):
        raise cls(f"{msg}\n{self.history()}")

    def send_raw(self, data):
        """Sends bytes as they are. A send into a connection the server already closed is noted,
        not raised: the expectation that follows reports what the server did."""
        for line in describe_raw(data, self.touched):
            self.note(line)
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, OSError) as e:
            self.send_failed = True
            self.note(f"-- send failed: {e!r}")

    # -- our settings -------------------------------------------------------------------------

    def upper(self, key):
        """The largest value of one of our settings the server may be using now."""
        vals = [self.committed.get(key, SETTING_DEFAULTS.get(key, 0))]
        vals += [p[key] for p in self.pending if key in p]
        return max(vals)

    def _track_settings(self, pairs):
        if isinstance(pairs, dict):
            pairs = list(pairs.items())
        d = {}
        for k, v in pairs:
            d[k] = v  # processed in order: the last one wins
        self.pending.append(d)
        if SETTINGS_HEADER_TABLE_SIZE in d:
            self.decoder.max_allowed_table_size = self.upper(SETTINGS_HEADER_TABLE_SIZE)

    # -- starting -----------------------------------------------------------------------------

    def start(self, settings=None, preface=PREFACE, wait_ack=True, push=False):
        """Sends the preface and our SETTINGS (ENABLE_PUSH=0 unless `push`, plus `settings`, a
        dict or a list of pairs), requires the server's first frame to be SETTINGS (RFC 9113
        3.4), ACKs it, and (wait_ack) waits for the ACK of ours."""
        pairs = [] if push else [(SETTINGS_ENABLE_PUSH, 0)]
        if settings:
            pairs += list(settings.items()) if isinstance(settings, dict) else list(settings)
        self.send_raw(preface + frame(SETTINGS, 0, 0, settings_payload(pairs)))
        self._track_settings(pairs)
        self.wait_server_settings()
        if wait_ack:
            self.wait_settings_ack()
        return self

    def wait_server_settings(self, timeout=None):
        self.wait_for(lambda f: self.server_settings_frames > 0, timeout,
                      "the server's SETTINGS")

    def wait_settings_ack(self, count=None, timeout=None):
        """Waits until the server has ACKed `count` of our SETTINGS frames (default: all)."""
        want = count if count is not None else self.settings_acks + len(self.pending)
        if self.settings_acks >= want:
            return
        self.wait_for(lambda f: self.settings_acks >= want, timeout, "SETTINGS ACK")

    def server_setting(self, key, default=None):
        if default is None:
            default = SETTING_DEFAULTS.get(key)
        return self.server_settings.get(key, default)

    # -- sending ------------------------------------------------------------------------------

    def new_stream_id(self):
        sid = self.next_stream_id
        self.next_stream_id += 2
        return sid

    def stream(self, sid):
        st = self.streams.get(sid)
        if st is None:
            st = self.streams[sid] = H2Stream(sid)
        return st

    def encode(self, headers):
        """HPACK with the stateful encoder (Huffman, indexing): for well-formed blocks."""
        return self.encoder.encode([(_b(n), _b(v)) for n, v in headers])

    def request_headers(self, method, path, extra=(), authority=True, scheme="http"):
        h = [(":method", method), (":scheme", scheme), (":path", path)]
        if authority:
            h.append((":authority", authority if isinstance(authority, str)
                      else f"{self.host}:{self.port}"))
        return h + list(extra)

    def send_headers(self, sid, headers=None, end_stream=True, end_headers=True, block=None,
                     raw=False, priority=None, pad_length=None, pad_length_field=None,
                     flags=0, length=None):
        """A HEADERS frame. The field block is `block` (bytes) when given, else `headers`
        encoded by the stateful encoder, or by hpack_block() when `raw` (names kept exactly as
        given, no dynamic table). priority: (dependency, weight, exclusive)."""
        if block is None:
            block = hpack_block(headers) if raw else self.encode(headers)
        payload = b""
        if priority is not None:
            flags |= FLAG_PRIORITY
            payload += priority_fields(*priority)
        payload += block
        if pad_length is not None:
            flags |= FLAG_PADDED
            payload = padded(payload, pad_length, pad_length_field)
        if end_stream:
            flags |= FLAG_END_STREAM
        if end_headers:
            flags |= FLAG_END_HEADERS
        self._opened(sid, end_stream)
        self.send_raw(frame(HEADERS, flags, sid, payload, length))
        return block

    def _opened(self, sid, end_stream):
        sid &= 0x7FFFFFFF
        if sid and sid % 2 == 1:
            self.max_client_stream = max(self.max_client_stream, sid)
            self.next_stream_id = max(self.next_stream_id, sid + 2)
            st = self.stream(sid)
            if end_stream:
                st.client_end = True

    def send_continuation(self, sid, fragment, end_headers=True, flags=0):
        if end_headers:
            flags |= FLAG_END_HEADERS
        self.send_raw(frame(CONTINUATION, flags, sid, fragment))

    def send_data(self, sid, data, end_stream=False, pad_length=None, pad_length_field=None,
                  flags=0, length=None):
        payload = bytes(data)
        if pad_length is not None:
            flags |= FLAG_PADDED
            payload = padded(payload, pad_length, pad_length_field)
        if end_stream:
            flags |= FLAG_END_STREAM
            if sid in self.streams:
                self.streams[sid].client_end = True
        self.send_conn_window -= len(payload)
        self.send_stream_delta[sid] = self.send_stream_delta.get(sid, 0) - len(payload)
        self.send_raw(frame(DATA, flags, sid, payload, length))

    def send_window(self, sid):
        iw = self.server_setting(SETTINGS_INITIAL_WINDOW_SIZE)
        return min(self.send_conn_window, iw + self.send_stream_delta.get(sid, 0))

    def send_body(self, sid, body, end_stream=True, timeout=None):
        """Sends `body` as DATA frames within the server's max frame size and flow-control
        windows (waiting for WINDOW_UPDATEs as needed)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        maxf = self.server_setting(SETTINGS_MAX_FRAME_SIZE)
        pos = 0
        body = bytes(body)
        if not body:
            self.send_data(sid, b"", end_stream=end_stream)
            return
        while pos < len(body):
            room = self.send_window(sid)
            if room <= 0:
                self.wait_for(lambda f: self.send_window(sid) > 0,
                              max(0.01, deadline - time.monotonic()),
                              f"a WINDOW_UPDATE to send the rest of the body of stream {sid}")
                continue
            n = min(room, maxf, len(body) - pos)
            last = pos + n == len(body)
            self.send_data(sid, body[pos:pos + n], end_stream=end_stream and last)
            pos += n

    def send_settings(self, settings=(), ack=False, stream_id=0, length=None):
        pairs = list(settings.items()) if isinstance(settings, dict) else list(settings)
        if not ack and stream_id == 0 and length is None:
            self._track_settings(pairs)
        self.send_raw(frame(SETTINGS, FLAG_ACK if ack else 0, stream_id,
                            settings_payload(pairs), length))

    def send_ping(self, data=b"\0" * 8, ack=False, stream_id=0, flags=0):
        self.send_raw(frame(PING, flags | (FLAG_ACK if ack else 0), stream_id, data))

    def send_rst_stream(self, sid, code=CANCEL):
        if sid in self.streams:
            self.streams[sid].client_reset = True
            self.pushed_active.discard(sid)
        self.send_raw(frame(RST_STREAM, 0, sid, u32(code)))

    def send_window_update(self, sid, increment):
        if sid == 0:
            self.conn_updates_sent += increment
        else:
            self.stream(sid).updates_sent += increment
        self.send_raw(frame(WINDOW_UPDATE, 0, sid, u32(increment)))

    def send_priority(self, sid, dependency=0, weight=16, exclusive=False):
        self.send_raw(frame(PRIORITY, 0, sid, priority_fields(dependency, weight, exclusive)))

    def send_goaway(self, last_stream_id=0, code=NO_ERROR, debug=b"", stream_id=0):
        self.send_raw(frame(GOAWAY, 0, stream_id, goaway_payload(last_stream_id, code, debug)))

    def request(self, method="GET", path="/", headers=(), body=None, end_stream=None,
                authority=True, sid=None):
        """Opens a stream with a request; returns its id. body: bytes sent after the HEADERS
        (END_STREAM on the last DATA). end_stream=False leaves the request open."""
        sid = self.new_stream_id() if sid is None else sid
        h = self.request_headers(method, path, headers, authority)
        if body is None:
            self.send_headers(sid, h, end_stream=True if end_stream is None else end_stream)
        else:
            self.send_headers(sid, h, end_stream=False)
            self.send_body(sid, body, end_stream=True if end_stream is None else end_stream)
        return sid

    # -- receiving ----------------------------------------------------------------------------

    def _recv(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        r, _, _ = select.select([self.sock], [], [], remaining)
        if not r:
            raise socket.timeout()
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            data = b""
        if not data:
            self.closed = True
            self.note("<- connection closed" + (" (reset)" if self.reset else ""))
        self.buf += data

    def read_frame(self, timeout=None, what="a frame"):
        """The next frame (checked and dispatched), or None once the server has closed. Raises
        H2Timeout when nothing complete arrives in time."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[0:3], "big")
                if len(self.buf) >= 9 + n or n > self.upper(SETTINGS_MAX_FRAME_SIZE):
                    return self._take_frame(n)
            if self.closed:
                if self.buf:
                    self.note(f"<- {len(self.buf)} trailing bytes: {bytes(self.buf[:60])!r}")
                    self.buf.clear()
                return None
            try:
                self._recv(deadline)
            except socket.timeout:
                raise H2Timeout(f"nothing (complete) within {limit:.1f}s while waiting for "
                                f"{what}\n{self.history()}") from None

    def _take_frame(self, n):
        header = bytes(self.buf[:9])
        if n > self.upper(SETTINGS_MAX_FRAME_SIZE):
            self.fail(f"server frame of {n} octets exceeds our SETTINGS_MAX_FRAME_SIZE "
                      f"{self.upper(SETTINGS_MAX_FRAME_SIZE)} (RFC 9113 4.2); header "
                      f"{header!r}", ServerViolation)
        body = memoryview(bytes(self.buf[9:9 + n]))
        del self.buf[:9 + n]
        try:
            f, _ = hf.Frame.parse_frame_header(memoryview(header))
            f.parse_body(body)
        except (hyperframe.exceptions.HyperframeError, ValueError, struct.error) as e:
            self.fail(f"server sent a malformed frame {header!r} + {bytes(body[:40])!r}: {e!r}",
                      ServerViolation)
        f.raw_flags = header[4]
        f.reserved_bit = bool(header[5] & 0x80)
        f.length = n
        f.decoded = None
        self.frames_seen += 1
        self._log_slot = len(self.log)
        self.log.append(describe_frame(f))
        self._dispatch(f)
        self.log[self._log_slot] = describe_frame(f)  # now with its decoded fields
        return f

    def _violation(self, f, msg):
        self.log[self._log_slot] = describe_frame(f)
        self.fail(f"server broke the protocol: {msg}", ServerViolation)

    def _dispatch(self, f):
        if self.first_frame is None:
            self.first_frame = f
            if f.type != SETTINGS or "ACK" in f.flags:
                self._violation(f, "the first frame from the server is not a SETTINGS frame "
                                   "(RFC 9113 3.4)")
        if f.reserved_bit:
            self._violation(f, "reserved bit of the stream identifier set (RFC 9113 4.1: it "
                               "MUST remain unset when sending)")
        if self.cont_stream is not None and (f.type != CONTINUATION
                                             or f.stream_id != self.cont_stream):
            self._violation(f, f"frame inside the field block of stream {self.cont_stream} "
                               f"(RFC 9113 4.3)")
        if f.type in (SETTINGS, PING, GOAWAY) and f.stream_id != 0:
            self._violation(f, "SETTINGS/PING/GOAWAY on a stream (RFC 9113 6.5/6.7/6.8)")
        if f.type in (DATA, HEADERS, PRIORITY, RST_STREAM, CONTINUATION, PUSH_PROMISE) \
                and f.stream_id == 0:
            self._violation(f, "stream frame on stream 0 (RFC 9113 6)")

        st = None
        if f.stream_id and f.type in FRAME_NAMES:
            promised = f.stream_id % 2 == 0 and f.stream_id in self.streams \
                and self.streams[f.stream_id].request is not None
            if not promised and (f.stream_id % 2 == 0 or f.stream_id > self.max_client_stream):
                # PRIORITY may name any stream; RST_STREAM may answer a frame we sent on an
                # idle stream (a stream error there is odd, but not ours to judge).
                if f.type != PRIORITY and not (f.type == RST_STREAM
                                               and f.stream_id in self.touched):
                    self._violation(f, f"frame on stream {f.stream_id}, which the client "
                                       f"never opened (push disabled; RFC 9113 5.1, 8.4)")
            else:
                st = self.stream(f.stream_id)
                st.frames.append(f)
                if (st.server_end or st.reset_code is not None) and \
                        f.type not in (PRIORITY, WINDOW_UPDATE, RST_STREAM):
                    self._violation(f, f"frame on stream {f.stream_id} after the server "
                                       f"{'ended' if st.server_end else 'reset'} it "
                                       f"(RFC 9113 5.1)")
                if st.reset_code is not None and f.type != PRIORITY:
                    self._violation(f, f"frame on stream {f.stream_id} after the server's "
                                       f"RST_STREAM (RFC 9113 6.4)")

        t = f.type
        if t == SETTINGS:
            if "ACK" in f.flags:
                if f.length:
                    self._violation(f, "SETTINGS ACK with a payload (RFC 9113 6.5)")
                self.settings_acks += 1
                if self.pending:
                    self.committed.update(self.pending.pop(0))
                self.decoder.max_allowed_table_size = self.upper(SETTINGS_HEADER_TABLE_SIZE)
            else:
                self.server_settings_frames += 1
                for k, v in f.settings.items():
                    self._apply_server_setting(k, v)
                if self.auto_ack_settings:
                    self.send_raw(frame(SETTINGS, FLAG_ACK, 0))
        elif t == PING:
            if "ACK" not in f.flags:
                self.send_raw(frame(PING, FLAG_ACK, 0, bytes(f.opaque_data)))
        elif t == GOAWAY:
            if self.goaways and f.last_stream_id > self.goaways[-1].last_stream_id:
                self._violation(f, f"GOAWAY raised the last stream id from "
                                   f"{self.goaways[-1].last_stream_id} (RFC 9113 6.8)")
            self.goaways.append(f)
        elif t == WINDOW_UPDATE:
            if f.stream_id == 0:
                self.send_conn_window += f.window_increment
            else:
                self.send_stream_delta[f.stream_id] = \
                    self.send_stream_delta.get(f.stream_id, 0) + f.window_increment
        elif t == PUSH_PROMISE:
            if self.upper(SETTINGS_ENABLE_PUSH) == 0:
                self._violation(f, "PUSH_PROMISE after SETTINGS_ENABLE_PUSH=0 (RFC 9113 6.5.2: "
                                   "a server MUST NOT send a PUSH_PROMISE frame if it receives "
                                   "this parameter set to a value of 0)")
            if st is None or st.id % 2 == 0:
                self._violation(f, "PUSH_PROMISE not on a client-initiated stream (RFC 9113 "
                                   "8.4.1)")
            pid = f.promised_stream_id
            if pid % 2 or pid <= self.last_promised:
                self._violation(f, f"promised stream id {pid} is not a valid new "
                                   f"server stream id (RFC 9113 6.6)")
            self.last_promised = pid
            self.block_frames = [f]
            self.block_promise = pid
            self.block_flags = set()
            if "END_HEADERS" in f.flags:
                self._decode_block(f, st)
            else:
                self.cont_stream = f.stream_id
        elif t == RST_STREAM:
            if st is not None:
                st.reset_code = f.error_code
                self.pushed_active.discard(st.id)
        elif t in (HEADERS, CONTINUATION):
            if t == CONTINUATION and self.cont_stream is None:
                self._violation(f, "CONTINUATION outside a field block (RFC 9113 6.10)")
            if t == HEADERS:
                self.block_frames = [f]
                self.block_promise = None
                if st.request is not None and not st.blocks:
                    self.pushed_active.add(st.id)
                    limit = self.upper(SETTINGS_MAX_CONCURRENT_STREAMS)
                    if len(self.pushed_active) > limit:
                        self._violation(f, f"{len(self.pushed_active)} pushed streams open, "
                                           f"our SETTINGS_MAX_CONCURRENT_STREAMS is {limit} "
                                           f"(RFC 9113 5.1.2: endpoints MUST NOT exceed the "
                                           f"limit set by their peer)")
                final = [b for b, _ in st.blocks
                         if not dict(b).get(":status", "").startswith("1")]
                if final and "END_STREAM" not in f.flags:
                    self._violation(f, "HEADERS without END_STREAM after the final response "
                                       "(trailers must end the stream; RFC 9113 8.1)")
                self.block_flags = f.flags
            else:
                self.block_frames.append(f)
            if "END_HEADERS" in f.flags:
                self.cont_stream = None
                self._decode_block(f, st)
            else:
                self.cont_stream = f.stream_id
        elif t == DATA:
            if not st.blocks:
                self._violation(f, "DATA before any HEADERS on the stream (RFC 9113 8.1)")
            fc = f.flow_controlled_length
            st.fc_received += fc
            self.conn_fc_received += fc
            if self.conn_fc_received > DEFAULT_WINDOW + self.conn_updates_sent:
                self._violation(f, f"DATA beyond the connection flow-control window: "
                                   f"{self.conn_fc_received} octets received, "
                                   f"{DEFAULT_WINDOW + self.conn_updates_sent} granted "
                                   f"(RFC 9113 6.9.1)")
            granted = self.upper(SETTINGS_INITIAL_WINDOW_SIZE) + st.updates_sent
            if st.fc_received > granted:
                self._violation(f, f"DATA beyond the flow-control window of stream "
                                   f"{st.id}: {st.fc_received} octets received, at most "
                                   f"{granted} granted (RFC 9113 6.9.1)")
            st.data += f.data
            st.data_frames.append(len(f.data))
            if "END_STREAM" in f.flags:
                st.server_end = True
                self.pushed_active.discard(st.id)
            if self.auto_window and fc:
                self.send_window_update(0, fc)
                if not st.server_end:
                    self.send_window_update(st.id, fc)

    def _apply_server_setting(self, k, v):
        if k == SETTINGS_INITIAL_WINDOW_SIZE:
            pass  # send_window() reads it live
        elif k == SETTINGS_HEADER_TABLE_SIZE:
            if v < self.encoder.header_table_size:
                self.encoder.header_table_size = v
        self.server_settings[k] = v

    def _decode_block(self, f, st):
        block = b"".join(bytes(x.data) for x in self.block_frames)
        self.block_frames = []
        try:
            fields = self.decoder.decode(block, raw=True)
        except (hpack.exceptions.HPACKError, IndexError, ValueError) as e:
            self._violation(f, f"undecodable field block {block[:60]!r}: {e!r} (RFC 7541)")
        fields = [(bytes(n).decode("latin-1"), bytes(v).decode("latin-1")) for n, v in fields]
        f.decoded = fields
        f.block = block
        if self.block_promise is not None:
            pid, self.block_promise = self.block_promise, None
            st.promises.append((pid, fields))
            self.stream(pid).request = fields
            return
        end = "END_STREAM" in self.block_flags
        st.blocks.append((fields, end))
        if end:
            st.server_end = True
            self.pushed_active.discard(st.id)

    # -- waiting ------------------------------------------------------------------------------

    def wait_for(self, predicate, timeout=None, what="a frame"):
        """Reads frames until predicate(frame) is true; returns that frame. Fails when the
        connection closes first or nothing matching arrives in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            f = self.read_frame(max(0.0, deadline - time.monotonic()), what)
            if f is None:
                self.fail(f"connection closed while waiting for {what}")
            if predicate(f):
                return f

    def frames_until_closed(self, timeout=None):
        """All frames until the server closes (fails when it does not close in time)."""
        out = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                f = self.read_frame(max(0.0, deadline - time.monotonic()),
                                    "the connection to close")
            except H2Timeout:
                self.fail(f"connection not closed within {timeout or self.timeout:.1f}s",
                          H2Timeout)
            if f is None:
                return out
            out.append(f)

    def drain(self, idle):
        """Reads frames until none arrives for `idle` seconds (or the server closes); returns
        them. For "the server stops sending" checks."""
        out = []
        while not self.closed:
            try:
                f = self.read_frame(idle, "more frames")
            except H2Timeout:
                break
            if f is None:
                break
            out.append(f)
        return out

    def sync(self, timeout=None):
        """Sends a PING and reads until its ACK: every frame we sent before was processed
        (RFC 9113 6.7). Returns the frames received meanwhile. Fails when the connection
        closes or a GOAWAY arrives first."""
        self.ping_counter += 1
        payload = b"sync" + struct.pack(">I", self.ping_counter)
        self.send_ping(payload)
        seen = []

        def done(f):
            seen.append(f)
            if f.type == GOAWAY:
                self.fail(f"GOAWAY({error_name(f.error_code)}) while expecting no error")
            return f.type == PING and "ACK" in f.flags and bytes(f.opaque_data) == payload

        self.wait_for(done, timeout, f"PING ACK {payload!r}")
        return seen[:-1]

    def _probe(self):
        """Sends a PING after the frame under test; returns a predicate that recognises its
        ACK. Once the ACK is in, the server has read past the frame under test, so an error
        that has not come within PROBE_GRACE after it is not coming."""
        self.ping_counter += 1
        payload = b"probe" + struct.pack(">I", self.ping_counter)[1:]
        self.send_ping(payload)
        return lambda f: (f.type == PING and "ACK" in f.flags
                          and bytes(f.opaque_data) == payload)

    def expect_no_error(self, timeout=None):
        """sync() and require that no RST_STREAM or GOAWAY arrived meanwhile."""
        seen = self.sync(timeout)
        bad = [f for f in seen if f.type in (RST_STREAM, GOAWAY)]
        if bad:
            self.fail(f"expected no error, got {describe_frame(bad[0])}")
        return seen

    def expect_ping_ack(self, payload, timeout=None):
        f = self.wait_for(lambda f: f.type in (PING, GOAWAY), timeout,
                          f"PING ACK {payload!r}")
        if f.type == GOAWAY:
            self.fail(f"expected PING ACK, got GOAWAY({error_name(f.error_code)})")
        if "ACK" not in f.flags or bytes(f.opaque_data) != bytes(payload):
            self.fail(f"expected PING ACK {payload!r}, got {describe_frame(f)}")
        return f

    def expect_goaway(self, code, timeout=None):
        """The next GOAWAY, which must carry `code` (an int or a tuple of ints)."""
        codes = code if isinstance(code, (tuple, list, set)) else (code,)
        f = self.wait_for(lambda f: f.type == GOAWAY, timeout,
                          f"GOAWAY({codes_text(codes)})")
        if f.error_code not in codes:
            self.fail(f"expected GOAWAY({codes_text(codes)}), got GOAWAY("
                      f"{error_name(f.error_code)}) last_stream_id={f.last_stream_id}")
        return f

    def expect_connection_closed(self, timeout=CLOSE_TIMEOUT):
        """The server closes the TCP connection within `timeout` (frames meanwhile allowed)."""
        return self.frames_until_closed(timeout)

    def expect_connection_error(self, code, allow_close=False, timeout=None, probe=True):
        """A connection error (RFC 9113 5.4.1): GOAWAY with `code` (one code or a tuple) and
        then the TCP close, which the RFC requires. allow_close: a close without GOAWAY also
        passes (h2spec's leniency; the RFC only says SHOULD send GOAWAY). Returns the GOAWAY
        (None when closed without one)."""
        codes = code if isinstance(code, (tuple, list, set)) else (code,)
        what = f"connection error GOAWAY({codes_text(codes)})"
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        probe = self._probe() if probe else (lambda f: False)
        while True:
            try:
                f = self.read_frame(max(0.0, deadline - time.monotonic()), what)
            except H2Timeout:
                if self.probe_acked:
                    self.fail(f"expected {what}; the server went on (it answered a PING sent "
                              f"after the offending frame) and sent no GOAWAY", H2Timeout)
                raise
            if f is not None and probe(f):
                self.probe_acked = True
                deadline = min(deadline, time.monotonic() + PROBE_GRACE)
            if f is None:
                if allow_close:
                    return None
                self.fail(f"expected {what}, the connection closed without a GOAWAY")
            if f.type == RST_STREAM:
                self.fail(f"expected {what}, got RST_STREAM({error_name(f.error_code)}) on "
                          f"stream {f.stream_id} (a stream error)")
            if f.type == GOAWAY:
                break
        if f.error_code not in codes:
            self.fail(f"expected {what}, got GOAWAY({error_name(f.error_code)}) "
                      f"last_stream_id={f.last_stream_id}")
        try:
            self.frames_until_closed(CLOSE_TIMEOUT)
        except H2Timeout:
            self.fail(f"GOAWAY({error_name(f.error_code)}) sent, but the TCP connection was "
                      f"not closed within {CLOSE_TIMEOUT:.1f}s (RFC 9113 5.4.1: after sending "
                      f"the GOAWAY frame for an error condition, the endpoint MUST close the "
                      f"TCP connection)")
        return f

    def expect_goaway_or_closed(self, code, timeout=None, probe=True):
        """h2spec's check: GOAWAY(code), or the connection closed."""
        return self.expect_connection_error(code, allow_close=True, timeout=timeout,
                                            probe=probe)

    def expect_rst_stream(self, sid, code, timeout=None):
        """RST_STREAM with `code` (one or a tuple) on stream `sid`; a GOAWAY first fails."""
        codes = code if isinstance(code, (tuple, list, set)) else (code,)
        what = f"RST_STREAM({codes_text(codes)}) on stream {sid}"
        f = self.wait_for(lambda f: (f.type == RST_STREAM and f.stream_id == sid)
                          or f.type == GOAWAY, timeout, what)
        if f.type == GOAWAY:
            self.fail(f"expected {what}, got GOAWAY({error_name(f.error_code)}) "
                      f"last_stream_id={f.last_stream_id}")
        if f.error_code not in codes:
            self.fail(f"expected {what}, got RST_STREAM({error_name(f.error_code)})")
        return f

    def expect_stream_error(self, sid, code, allow_close=False, malformed=False, timeout=None,
                            probe=True):
        """A stream error (RFC 9113 5.4.2) with `code` (one or a tuple): RST_STREAM on `sid`,
        or the same code as a connection error (5.4.1 lets an endpoint treat a stream error as
        one: GOAWAY, then the close). malformed: the request was malformed (8.1.1), so a 4xx
        response MAY precede the reset, but no other response may (the application must not
        have seen the request). Returns the RST_STREAM or GOAWAY frame (None on a bare close
        when allow_close)."""
        codes = code if isinstance(code, (tuple, list, set)) else (code,)
        what = f"stream error {codes_text(codes)} on stream {sid}"
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self.probe_acked = False
        probe = self._probe() if probe else (lambda f: False)
        while True:
            try:
                f = self.read_frame(max(0.0, deadline - time.monotonic()), what)
            except H2Timeout:
                st = self.streams.get(sid)
                if malformed and st is not None and st.server_end:
                    r = H2Response(st)
                    self.fail(f"expected {what}; the server completed a {r.status} response "
                              f"on the stream and sent no RST_STREAM", H2Timeout)
                if self.probe_acked:
                    self.fail(f"expected {what}; the server went on (it answered a PING sent "
                              f"after the offending frame) with no RST_STREAM or GOAWAY",
                              H2Timeout)
                raise
            if f is not None and probe(f):
                self.probe_acked = True
                deadline = min(deadline, time.monotonic() + PROBE_GRACE)
            if f is None:
                if allow_close:
                    return None
                self.fail(f"expected {what}, the connection closed without RST_STREAM or "
                          f"GOAWAY")
            if f.type == RST_STREAM and f.stream_id == sid:
                break
            if f.type == GOAWAY:
                break
            if f.type in (HEADERS, CONTINUATION) and f.stream_id == sid and malformed \
                    and f.decoded:
                status = dict(f.decoded).get(":status", "")
                if not status.startswith("4"):
                    self.fail(f"expected {what} for a malformed request, got a "
                              f"{status} response (the request reached the application)")
            st = self.streams.get(sid)
            if malformed and st is not None and st.server_end and st.reset_code is None:
                # RFC 9113 8.1.1: a server MAY send a response before resetting the stream;
                # the reset must still follow, at once.
                deadline = min(deadline, time.monotonic() + CLOSE_TIMEOUT / 5)
        kind = "RST_STREAM" if f.type == RST_STREAM else "GOAWAY"
        if f.error_code not in codes:
            self.fail(f"expected {what}, got {kind}({error_name(f.error_code)})")
        if f.type == GOAWAY:
            try:
                self.frames_until_closed(CLOSE_TIMEOUT)
            except H2Timeout:
                self.fail(f"GOAWAY({error_name(f.error_code)}) sent, but the TCP connection "
                          f"was not closed within {CLOSE_TIMEOUT:.1f}s (RFC 9113 5.4.1)")
        return f

    def response(self, sid, timeout=None):
        """Reads until stream `sid` is ended or reset by the server (or the connection closes);
        returns what it sent as an H2Response."""
        st = self.stream(sid)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not st.done and not self.closed:
            f = self.read_frame(max(0.0, deadline - time.monotonic()),
                                f"the response on stream {sid}")
            if f is None:
                break
        return H2Response(st, closed=self.closed and not st.done,
                          goaway=self.goaways[-1] if self.goaways else None)

    def get(self, path, headers=(), method="GET", body=None, timeout=None):
        """One request on a new stream; returns the response."""
        return self.response(self.request(method, path, headers, body), timeout)


# ---------------------------------------------------------------------------------------------
# Files for an external server
# ---------------------------------------------------------------------------------------------

def big_pattern(n):
    """/big/N's body: byte i is i % 251."""
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


def make_docroot(path):
    os.makedirs(os.path.join(path, "big"), exist_ok=True)
    with open(os.path.join(path, "ok"), "wb") as f:
        f.write(b"ok")
    with open(os.path.join(path, "big", "100000"), "wb") as f:
        f.write(big_pattern(100000))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make-docroot":
        make_docroot(sys.argv[2])
    else:
        sys.exit("usage: h2_raw.py make-docroot DIR")
