#!/usr/bin/env bash
# Installs everything p2porch, its tests and its demo need on Debian bookworm (as root):
# system packages with apt, and p2porch with its test extras into ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (it installs Debian packages and the sandbox needs root)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(
  python3 python3-venv python3-pip   # runtime
  docker.io busybox-static iproute2 iptables ipset util-linux   # sandbox hosts: netns, dockerd, busybox image; ipset: network isolation
  dnsutils dnsmasq-base dnsperf   # DNS tests and benchmark (dig, upstream resolver, load generator)
  etcd-server serf iperf3   # baselines for the Raft, gossip and overlay benchmarks
  chromium chromium-driver fonts-liberation   # headless browser tests of the web UI (Selenium)
  tar ca-certificates
)
# vagrant (with the libvirt provider the Vagrantfile names) only validates vagrant/Vagrantfile in the tests.
[ "${P2PORCH_SKIP_VAGRANT:-0}" = 1 ] || PACKAGES+=(vagrant vagrant-libvirt)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
echo "install.sh: p2porch $(.venv/bin/p2porch version --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["client"]["version"])') installed in $(pwd)/.venv" >&2
