"""An HTTP server that cuts bodies short: it serves the files of a directory with ranges and
a fixed ETag, but answers every range that does not start at byte 0 with half of its bytes
after announcing them all (the connection closes early, as when a proxy or a server dies).
A model's header (the first bytes) opens; its tensors arrive truncated.

Usage: short_server.py DIR PORT
"""
import http.server
import os
import re
import sys


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

    def do_HEAD(self):
        data = self._file()
        if data is None:
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", '"fixed"')
        self.end_headers()

    def do_GET(self):
        data = self._file()
        if data is None:
            return
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if not m:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", '"fixed"')
            self.end_headers()
            self.wfile.write(data)
            return
        start, end = int(m.group(1)), min(int(m.group(2)), len(data) - 1)
        body = data[start : end + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("ETag", '"fixed"')
        self.send_header("Content-Length", str(len(body)))
        if start != 0:
            body = body[: len(body) // 2]
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:
            pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
    server.root = sys.argv[1]
    server.serve_forever()


if __name__ == "__main__":
    main()
