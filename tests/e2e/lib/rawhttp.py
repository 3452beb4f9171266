"""Raw-socket HTTP helpers for the server's end-to-end tests: send exact bytes (also slowly,
or never), read the status, headers and JSON body the server answers, and note resets."""
import json, os, socket, time

PORT = int(os.environ["PORT"])
FAILED = []


def connect():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=15)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


_left = {}   # bytes read past the end of a response, per socket (pipelining)


def read_response(s, head_only=False):
    """-> (status, headers dict, body bytes); status None when the connection closed first."""
    r = _read_response(s, head_only)
    st, h, body = r
    return r


def _read_response(s, head_only):
    data = _left.pop(id(s), b"")
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return None, {}, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    if head_only or status in (100, 204, 304):
        return status, headers, rest
    if "content-length" in headers:
        n = int(headers["content-length"])
        acc = bytearray(rest)
        while len(acc) < n:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            acc += chunk
        rest = bytes(acc)
        _left[id(s)] = rest[n:]
        return status, headers, rest[:n]
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += s.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            while len(rest) < size + 2:
                rest += s.recv(65536)
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                _left[id(s)] = rest
                return status, headers, body
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return status, headers, rest
        rest += chunk


def exchange(raw, delay=0):
    s = connect()
    s.sendall(raw)
    if delay:
        time.sleep(delay)
    r = read_response(s)
    s.close()
    return r


def check(name, cond, detail=""):
    if cond:
        print("ok:", name)
    else:
        print("FAIL:", name, detail)
        FAILED.append(name)


def check_error(name, resp, status, message, code, typ="invalid_request_error"):
    st, h, body = resp
    try:
        doc = json.loads(body)
    except Exception:
        check(name, False, "status %r, body not JSON: %r" % (st, body[:200]))
        return
    want = {"error": {"message": message, "type": typ, "code": code,
                      "request_id": h.get("x-request-id")}}
    check(name, st == status and doc == want and h.get("content-type") == "application/json",
          "got %r %r %r" % (st, h, doc))


def closed_cleanly(s, timeout=10):
    """After an error answer: the server closes with FIN (recv -> b""), not a reset."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return False
    except socket.timeout:
        return False


def done():
    if FAILED:
        print("failed:", FAILED)
        raise SystemExit(1)
