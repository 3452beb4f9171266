#!/usr/bin/env python3
"""http_upstream.py: a misbehaving HTTP/1.1 upstream for moongate.http's tests.

Usage: http_upstream.py PORT_FILE. Binds 127.0.0.1:0, writes the port to PORT_FILE, serves
until killed. Routes:
  /echo              200, JSON {method, path, headers, body} of the request
  /status/N          N with body "status N"
  /stall?s=S         reads the request, sends nothing for S seconds (default 30)
  /stall-body        headers and half the body, then silence
  /reset             reads the request, then resets the connection (RST, SO_LINGER 0)
  /reset-mid         headers and part of a Content-Length body, then RST
  /close             reads the request, closes without answering
  /truncated         Content-Length 100, 10 bytes, then a clean close
  /stream?n=N&gap=G  chunked: N chunks "chunk i\\n", G seconds apart
  /big?mb=M          M MiB of 'x', Content-Length set, written as fast as the client takes it
  /redirect?n=N      302 to /redirect?n=N-1 ... to /echo
  /redirect307       307 to /echo (the body must be sent again)
  /headers           repeated headers, padded values
  /huge-headers      400 KB of response headers
  /reset-reused      200 on a connection's first request, a reset on any later one
  /hits?path=P       how many requests P received
"""
import json
import socket
import socketserver
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit


HITS = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body, ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _rst(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _route(self):
        self.served = getattr(self, "served", 0) + 1   # requests on this connection
        u = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        body = self._body()
        p = u.path
        if p == "/echo":
            out = {"method": self.command, "path": self.path,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body.decode("latin-1")}
            self._send(200, json.dumps(out, sort_keys=True).encode(), "application/json")
        elif p.startswith("/status/"):
            n = int(p.split("/")[2])
            self._send(n, ("status %d" % n).encode())
        elif p == "/stall":
            time.sleep(float(q.get("s", 30)))
            self.close_connection = True
        elif p == "/stall-body":
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"01234")
            self.wfile.flush()
            time.sleep(float(q.get("s", 30)))
            self.close_connection = True
        elif p == "/reset":
            self._rst()
        elif p == "/reset-mid":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            time.sleep(0.05)
            self._rst()
        elif p == "/close":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif p == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif p == "/stream":
            n, gap = int(q.get("n", 3)), float(q.get("gap", 0.2))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            for i in range(n):
                if i:
                    time.sleep(gap)
                data = ("chunk %d\n" % (i + 1)).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif p == "/big":
            size = int(float(q.get("mb", 1)) * 1048576)
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block = b"x" * 65536
            left = size
            while left > 0:
                self.wfile.write(block[:min(left, len(block))])
                left -= len(block)
        elif p == "/redirect":
            n = int(q.get("n", 1))
            loc = "/echo" if n <= 1 else "/redirect?n=%d" % (n - 1)
            self._send(302, b"moved", extra=[("Location", loc)])
        elif p == "/reset-reused":
            HITS[p] = HITS.get(p, 0) + 1
            if self.served > 1:
                self._rst()
            else:
                self._send(200, b"first")
        elif p == "/hits":
            self._send(200, str(HITS.get(q.get("path"), 0)).encode())
        elif p == "/huge-headers":
            self.send_response(200)
            for i in range(400):
                self.send_header("X-Filler-%d" % i, "y" * 1000)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif p == "/redirect307":
            self._send(307, b"again", extra=[("Location", "/echo")])
        elif p == "/headers":
            raw = (b"HTTP/1.1 200 OK\r\nX-Multi: a\r\nX-Multi: b\r\nX-Spaced:   v  \r\n"
                   b"Set-Cookie: c=1\r\nSet-Cookie: d=2\r\nContent-Length: 2\r\n\r\nok")
            self.wfile.write(raw)
        else:
            self._send(404, b"not found")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _route


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
