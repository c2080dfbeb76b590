"""An HTTP server that answers data requests only together: it serves the files of a directory
with ranges and a fixed ETag, but holds the first N requests of ranges that do not start at
byte 0 (a model's data, not its header) until N of them are open at once, then answers them
all. A client that keeps N requests in flight passes; one that waits for each answer before it
asks again never does, and gets 504 when the server gives up (after 20 s).

It counts data requests and the most of them open at once; GET /stats answers "COUNT PEAK".
A request stops counting as open before its answer is sent, so the peak never exceeds what
the client had in flight.

Usage: barrier_server.py DIR PORT N
"""
import http.server
import os
import re
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def _file(self):
        path = os.path.join(self.server.root, self.path.lstrip("/"))
        if ".." in self.path or not os.path.isfile(path):
            self.send_error(404)
            return None
        with open(path, "rb") as f:
            return f.read()

    def _send(self, status, body, headers=()):
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("ETag", '"fixed"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:
            pass

    def do_HEAD(self):
        data = self._file()
        if data is None:
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", '"fixed"')
        self.end_headers()

    def do_GET(self):
        server = self.server
        if self.path == "/stats":
            with server.lock:
                text = f"{server.requests} {server.peak}\n"
            self._send(200, text.encode())
            return
        data = self._file()
        if data is None:
            return
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if not m:
            self._send(200, data)
            return
        start, end = int(m.group(1)), min(int(m.group(2)), len(data) - 1)
        together = True
        if start != 0:
            with server.lock:
                server.requests += 1
                server.open += 1
                server.peak = max(server.peak, server.open)
                held = server.held < server.n
                server.held += held
            if held:
                try:
                    server.barrier.wait(timeout=20)
                except threading.BrokenBarrierError:
                    together = False
            with server.lock:
                server.open -= 1
        if not together:
            self._send(504, b"the requests never came together\n")
            return
        headers = [("Content-Range", f"bytes {start}-{end}/{len(data)}")]
        self._send(206, data[start : end + 1], headers)


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
    server.root = sys.argv[1]
    server.n = int(sys.argv[3])
    server.barrier = threading.Barrier(server.n)
    server.lock = threading.Lock()
    server.requests = 0
    server.open = 0
    server.peak = 0
    server.held = 0
    server.serve_forever()


if __name__ == "__main__":
    main()
