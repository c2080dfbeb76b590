"""An HTTP server that fails the way a dying or stalled server does. It serves the files of a
directory with ranges and a fixed ETag and answers every range that starts at byte 0 (a
model's header) in full, so the model opens; every other range (its tensors) is announced
whole and then, by MODE:
  short  half of its bytes are sent and the connection closes (a proxy or server that died);
  drip   its bytes are sent one every DELAY seconds (a stalled server or link).

Usage: faulty_server.py DIR PORT short|drip [DELAY]
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
            elif self.server.mode == "short":
                self.wfile.write(body[: len(body) // 2])
            else:
                for i in range(len(body)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(self.server.delay)
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    if len(sys.argv) < 4 or sys.argv[3] not in ("short", "drip"):
        sys.exit(__doc__)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
    server.daemon_threads = True
    server.root = sys.argv[1]
    server.mode = sys.argv[3]
    server.delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    server.serve_forever()


if __name__ == "__main__":
    main()
