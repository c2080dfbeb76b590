#!/usr/bin/env bash
# Starts the servers the remote-model tests read from, on loopback ports chosen free:
#   - s3s-fs (an S3-compatible server over a directory), at $STLOAD_TEST_S3_ENDPOINT;
#   - nginx serving a directory over HTTP with ranges and ETags, at $STLOAD_TEST_HTTP_URL,
#     and the same directory over HTTPS (a self-signed certificate) at $STLOAD_TEST_HTTPS_URL;
#   - nginx proxying to s3s-fs, at $STLOAD_TEST_S3_FLAKY_ENDPOINT: it answers 503 to every
#     request while the file $STLOAD_TEST_FLAKY_SWITCH exists (a throttling storm at will).
# Usage: servers.sh DIR WATCH_PID
# Writes DIR/env (KEY=VALUE lines to export) and DIR/pids; the servers stop when WATCH_PID
# exits (a watchdog polls it) or when the pids in DIR/pids are killed.
set -euo pipefail
dir="$1"
watch="$2"
root="$(cd "$(dirname "$0")/../.." && pwd)"
s3s="${STLOAD_S3S_FS:-$root/target/tools/bin/s3s-fs}"
nginx="${STLOAD_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
python="${STLOAD_PYTHON:-$root/.venv/bin/python}"
[ -x "$s3s" ] || { echo "servers.sh: no s3s-fs at $s3s (tests/remote/run.sh installs it)" >&2; exit 1; }
[ -x "$nginx" ] || { echo "servers.sh: no nginx (apt-get install nginx-light)" >&2; exit 1; }

free_port() {
    "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
s3_port="$(free_port)"
http_port="$(free_port)"
flaky_port="$(free_port)"
https_port="$(free_port)"
mkdir -p "$dir/s3" "$dir/www" "$dir/nginx"
# The HTTPS server's certificate: self-signed for 127.0.0.1, made anew for each run.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$dir/nginx/tls.key" -out "$dir/nginx/tls.crt" >/dev/null 2>&1
# nginx workers run as an unprivileged user: they must be able to read the files served.
chmod 755 "$dir" "$dir/www"
key=stloadtest
secret=stloadtestsecret

"$s3s" --host 127.0.0.1 --port "$s3_port" --access-key "$key" --secret-key "$secret" \
    "$dir/s3" >"$dir/s3s-fs.log" 2>&1 &
s3_pid=$!

cat >"$dir/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/nginx/body;
    proxy_temp_path $dir/nginx/proxy;
    fastcgi_temp_path $dir/nginx/fastcgi;
    uwsgi_temp_path $dir/nginx/uwsgi;
    scgi_temp_path $dir/nginx/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$http_port;
        root $dir/www;
        location / {
            if (-f $dir/flaky) { return 503; }
        }
    }
    server {
        listen 127.0.0.1:$https_port ssl;
        ssl_certificate $dir/nginx/tls.crt;
        ssl_certificate_key $dir/nginx/tls.key;
        root $dir/www;
    }
    server {
        listen 127.0.0.1:$flaky_port;
        client_max_body_size 0;
        location / {
            if (-f $dir/flaky) { return 503; }
            proxy_pass http://127.0.0.1:$s3_port;
            proxy_set_header Host \$http_host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_http_version 1.1;
        }
    }
}
CONF
"$nginx" -c "$dir/nginx/nginx.conf" -p "$dir/nginx" >"$dir/nginx/stdout.log" 2>&1 &
nginx_pid=$!
echo "$s3_pid $nginx_pid" >"$dir/pids"

# The servers stop when the process that asked for them does.
(
    while kill -0 "$watch" 2>/dev/null; do sleep 1; done
    kill "$s3_pid" "$nginx_pid" 2>/dev/null || true
) >/dev/null 2>&1 </dev/null &

ready() { "$python" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$1" 2>/dev/null; }
for _ in $(seq 100); do
    if ready "$s3_port" && ready "$http_port" && ready "$flaky_port" && ready "$https_port"; then
        cat >"$dir/env" <<ENV
STLOAD_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
STLOAD_TEST_S3_FLAKY_ENDPOINT=http://127.0.0.1:$flaky_port
STLOAD_TEST_S3_ROOT=$dir/s3
STLOAD_TEST_HTTP_URL=http://127.0.0.1:$http_port
STLOAD_TEST_HTTP_ROOT=$dir/www
STLOAD_TEST_HTTPS_URL=https://127.0.0.1:$https_port
STLOAD_TEST_FLAKY_SWITCH=$dir/flaky
STLOAD_TEST_S3S_FS=$s3s
AWS_ACCESS_KEY_ID=$key
AWS_SECRET_ACCESS_KEY=$secret
AWS_REGION=us-east-1
AWS_ALLOW_HTTP=true
ENV
        exit 0
    fi
    sleep 0.1
done
echo "servers.sh: servers did not start; logs:" >&2
cat "$dir/s3s-fs.log" "$dir/nginx/error.log" "$dir/nginx/stdout.log" >&2 2>/dev/null || true
kill "$s3_pid" "$nginx_pid" 2>/dev/null || true
exit 1
