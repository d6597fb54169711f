#!/usr/bin/env bash
# The p2porch demo on one machine: a 3-host sandbox (network namespaces, each with its own dockerd and
# p2porch daemon), then a tour of what works today. Every step prints what it does; any failing check
# stops the demo with a non-zero exit. Leaves the sandbox running for you to explore.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${P2PORCH_DEMO_SKIP_INSTALL:-0}" = 1 ] || bash scripts/install.sh
P2="$(pwd)/.venv/bin/p2porch"
NAME=${P2PORCH_DEMO_SANDBOX:-p2s}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
check() { if ! "$@"; then echo "demo: check failed: $*" >&2; exit 1; fi; }

step "Bringing up a 3-host sandbox '$NAME' (namespaces, dockerd and p2porch daemon per host)"
$P2 sandbox --name "$NAME" up --nodes 3

step "Each host runs its own p2porch daemon: p2porch status on n2"
$P2 sandbox --name "$NAME" exec n2 -- "$P2" status

step "Each host has its own Docker engine: a busybox container on every host"
for n in n1 n2 n3; do
  $P2 sandbox --name "$NAME" exec $n -- docker run -d --rm --name "demo-$n" p2porch/busybox:latest sleep 600 >/dev/null
  printf '%s: ' "$n"; $P2 sandbox --name "$NAME" exec $n -- docker ps --format '{{.Names}} ({{.Image}})'
done

step "Hosts reach each other over the underlay: n1 pings n2 and n3"
addr() { $P2 sandbox --name "$NAME" ls --json | .venv/bin/python -c "import json,sys; print([n['address'] for n in json.load(sys.stdin) if n['node']=='$1'][0])"; }
for n in n2 n3; do
  check $P2 sandbox --name "$NAME" exec n1 -- busybox ping -c 1 -W 2 "$(addr $n)"
done

step "Done. Explore:"
cat <<MSG
  $P2 sandbox --name $NAME ls
  $P2 sandbox --name $NAME exec n1 -- $P2 status
  $P2 sandbox --name $NAME exec n1 -- docker ps
Tear down (removes every namespace, link, dockerd and file the sandbox created):
  $P2 sandbox --name $NAME down
MSG
