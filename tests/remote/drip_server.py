"""An HTTP server that drips: it serves the files of a directory with ranges and a fixed ETag,
answers every range that starts at byte 0 (a model's header) at once, and sends the bytes of
any other range (its tensors) one every DELAY seconds after announcing them all, as a stalled
server or link does.

Usage: drip_server.py DIR PORT DELAY
"""
import http.server
import os
import re
import sys
import time


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
        start, end = (0, len(data) - 1) if not m else (int(m.group(1)), min(int(m.group(2)), len(data) - 1))
        body = data[start : end + 1]
        self.send_response(206 if m else 200)
        if m:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("ETag", '"fixed"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if start == 0:
                self.wfile.write(body)
                return
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(self.server.delay)
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
    server.daemon_threads = True
    server.root = sys.argv[1]
    server.delay = float(sys.argv[3])
    server.serve_forever()


if __name__ == "__main__":
    main()
