#!/usr/bin/env bash
# Debian packages ffcvx's set-up needs: libjpeg-turbo headers for the turbojpeg
# decoder backend, the Fashion-MNIST data for the demo, redis-server for the
# Redis cache tests, nginx-light (and its echo module, for injected latency) for the
# HTTP (Range) tests and benchmarks of remote files.
# Installs what is missing when run as root; otherwise prints the command to run.
set -euo pipefail
packages=(libjpeg62-turbo-dev libturbojpeg0-dev dataset-fashion-mnist redis-server nginx-light
          libnginx-mod-http-echo)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: ${missing[*]}" >&2
  echo "Run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"
