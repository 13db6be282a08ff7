# SPDX-License-Identifier: GPL-2.0-only
"""HTTP backend and clients for selftests/e2e/lb.sh (python3, stdlib only).

  serve NAME PORT PEERLOG
      HTTP/1.1 server on 0.0.0.0:PORT, one thread per connection, keep-alive
      for HTTP/1.1 requests. Every answer's body is NAME. Each accepted
      connection appends one line "PEER_IP PEER_PORT" to PEERLOG.

  spread IP PORT COUNT FIRST_SPORT
      COUNT sequential connections to IP:PORT, the i-th from source port
      FIRST_SPORT + i (fixed ports: the same flows, hence the same Maglev
      entries, in every run), each one "GET / HTTP/1.0" read to the end.
      Prints {"counts": {NAME: n, ...}, "errors": [...]} on stdout; stops
      after 10 errors. Exit status 0 when every connection was answered.

  hold IP PORT SPORT STATUS STOPFILE DEADLINE_S
      One connection from SPORT, kept: a "GET /hold HTTP/1.1" every 100 ms,
      each answer read before the next request. After every answer STATUS
      is replaced (rename) by {"answers", "names": {NAME: n}, "first",
      "max_gap_ms", "error"}. Ends when STOPFILE exists (exit 0) or after
      DEADLINE_S seconds, or on the first error (a reset, a close, a 10 s
      silence, an answer that is not 200): "error" says which, exit 1.
"""
import http.server
import json
import os
import socket
import sys
import threading
import time

TIMEOUT_S = 10


def serve(name, port, peerlog):
    lock = threading.Lock()
    body = (name + "\n").encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle(self):
            with lock, open(peerlog, "a") as f:
                f.write("%s %d\n" % self.client_address[:2])
            super().handle()

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = 128

    Server(("0.0.0.0", int(port)), Handler).serve_forever()


def connect(ip, port, sport):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(TIMEOUT_S)
    s.bind(("0.0.0.0", sport))
    s.connect((ip, port))
    return s


def read_response(f):
    """One HTTP response from the file object f: (status, body)."""
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed by the peer")
    parts = line.split()
    if len(parts) < 2:
        raise ValueError("bad status line %r" % line)
    length = None
    while True:
        h = f.readline()
        if not h:
            raise ConnectionError("connection closed in the headers")
        if h in (b"\r\n", b"\n"):
            break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    body = f.read(length) if length is not None else f.read()
    if length is not None and len(body) != length:
        raise ConnectionError("connection closed in the body")
    return int(parts[1]), body.decode().strip()


def spread(ip, port, count, first_sport):
    counts, errors = {}, []
    for i in range(int(count)):
        sport = int(first_sport) + i
        try:
            with connect(ip, int(port), sport) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                with s.makefile("rb") as f:
                    status, name = read_response(f)
            if status != 200:
                raise ValueError("status %d" % status)
            counts[name] = counts.get(name, 0) + 1
        except (OSError, ValueError) as e:
            errors.append("sport %d: %s" % (sport, e))
            if len(errors) >= 10:
                break
    json.dump({"counts": counts, "errors": errors}, sys.stdout)
    print()
    return 0 if not errors else 1


def write_status(path, st):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st, f)
    os.replace(tmp, path)


def hold(ip, port, sport, status, stopfile, deadline_s):
    st = {"answers": 0, "names": {}, "first": None, "max_gap_ms": 0,
          "error": None}
    end = time.monotonic() + float(deadline_s)
    try:
        s = connect(ip, int(port), int(sport))
        f = s.makefile("rb")
        last = time.monotonic()
        while not os.path.exists(stopfile):
            if time.monotonic() > end:
                raise TimeoutError("deadline reached before the stop file")
            s.sendall(b"GET /hold HTTP/1.1\r\nHost: vip\r\n\r\n")
            code, name = read_response(f)
            if code != 200:
                raise ValueError("status %d" % code)
            now = time.monotonic()
            gap = int((now - last) * 1000)
            last = now
            st["answers"] += 1
            st["names"][name] = st["names"].get(name, 0) + 1
            st["first"] = st["first"] or name
            st["max_gap_ms"] = max(st["max_gap_ms"], gap)
            write_status(status, st)
            time.sleep(0.1)
        s.close()
        return 0
    except (OSError, ValueError) as e:
        st["error"] = "%s: %s" % (type(e).__name__, e)
        write_status(status, st)
        return 1


def main(argv):
    cmds = {"serve": (serve, 3), "spread": (spread, 4), "hold": (hold, 6)}
    if len(argv) < 2 or argv[1] not in cmds or \
       len(argv) - 2 != cmds[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    fn = cmds[argv[1]][0]
    return fn(*argv[2:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
