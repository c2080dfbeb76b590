#!/usr/bin/env bash
# Installs what the remote-model tests start: s3s-fs (an S3-compatible server, built from
# crates.io once and cached in target/tools) and Debian's nginx-light when nginx is missing.
# Usage: tests/remote/install.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tools="$root/target/tools"
# 0.14.1: the newest release that builds with the stable Rust this project pins.
s3s_version=0.14.1
if ! "$tools/bin/s3s-fs" --version 2>/dev/null | grep -q "$s3s_version"; then
    echo "installing s3s-fs $s3s_version into $tools"
    cargo install s3s-fs@"$s3s_version" --features binary --locked --root "$tools" --quiet
fi
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
