#!/usr/bin/env bash
# The p2porch demo on one machine: a 3-host sandbox (network namespaces, each with its own dockerd and
# p2porch daemon) becomes a cluster, runs a two-service app (a web front calling a backend by name),
# resolves names through the cluster DNS, fetches the front over the overlay, then loses a node to a crash.
# Every step prints what it does; any failing check stops the demo with a non-zero exit.
# The sandbox stays up for you to explore; the last lines say how to tear it down.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${P2PORCH_DEMO_SKIP_INSTALL:-0}" = 1 ] || bash scripts/install.sh
P2="$(pwd)/.venv/bin/p2porch"
NAME=${P2PORCH_DEMO_SANDBOX:-p2s}
SUBNET=${P2PORCH_DEMO_SUBNET:-10.77.0.0/24}
PY="$(pwd)/.venv/bin/python"
IMAGE=p2porch/busybox:latest

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { echo "demo: check failed: $*" >&2; exit 1; }
on() { local node=$1; shift; "$P2" sandbox --name "$NAME" exec "$node" -- "$@"; }
p2() { local node=$1; shift; on "$node" "$P2" "$@"; }
json() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what (not within ${seconds}s)"
    printf '.'; sleep 1
  done
  echo " $what"
}
running_is() { [ "$(p2 n1 service ls --json | json "{s['name']: s['running'] for s in d}.get('$1')")" = "$2" ]; }

step "1/9 Bringing up a 3-host sandbox '$NAME' (namespaces, a dockerd and a p2porch daemon per host)"
"$P2" sandbox --name "$NAME" up --nodes 3 --subnet "$SUBNET"
addr() { "$P2" sandbox --name "$NAME" ls --json | json "[n['address'] for n in d if n['node']=='$1'][0]"; }
A1=$(addr n1)

step "2/9 p2porch init on n1: creates the cluster and prints the join command"
p2 n1 init
TOKEN=$(p2 n1 token --json | json "d['token']")

step "3/9 p2porch join on n2 and n3 (through n1's join port)"
p2 n2 join "$A1" --token "$TOKEN"
p2 n3 join "$A1" --token "$TOKEN"
p2 n2 node ls

step "4/9 A Compose stack: 'demo-backend' and a 'demo-web' front that calls http://backend/ by its short name"
cat scripts/demo-stack.yml
p2 n1 stack deploy -c "$(pwd)/scripts/demo-stack.yml" demo
wait_until 60 "demo-backend 2/2 running" running_is demo-backend 2
wait_until 60 "demo-web 3/3 running" running_is demo-web 3
p2 n3 service ls
p2 n3 stack ps demo

step "5/9 Cluster DNS from the host namespace: dig @$A1"
for q in demo-web.p2p tasks.demo-backend.p2p 1.demo-web.p2p n2.node.p2p; do
  printf '%-20s ' "$q"; on n1 dig +short "@$A1" "$q" | tr '\n' ' '; echo
done
on n1 dig "@$A1" +short SRV _80._tcp.demo-web.p2p
[ -n "$(on n1 dig +short "@$A1" demo-web.p2p)" ] || fail "demo-web.p2p has no A records"

GW3=$(p2 n3 node inspect n3 --json | json "__import__('ipaddress').ip_network(d['subnet'])[1]")
client() { on n3 docker run --rm --network p2porch --dns "$GW3" --dns-search p2p "$IMAGE" "$@"; }

step "6/9 Cluster DNS from a container on n3 (resolver $GW3, search domain p2p)"
client nslookup demo-web.p2p "$GW3"
client ping -c 1 -W 2 demo-backend   # the bare name resolves through the search domain, answers over the overlay

step "7/9 The web front through the overlay, from n3: each request lands on some web task, which calls backend"
out=$(client sh -c 'for i in 1 2 3 4 5 6; do wget -q -O- http://demo-web/cgi-bin/index.cgi; done')
echo "$out"
echo "$out" | grep -q "got: backend on" || fail "web did not reach backend"

step "8/9 Logs of every demo-backend task (its access log), gathered from every node"
p2 n1 service logs demo-backend --tail 3

step "9/9 Node n2 crashes (kill -9 of its p2porch daemon and its dockerd): gossip declares it dead, its tasks move"
RUN_N2=/run/p2porch-sandbox/$NAME/n2
kill -9 "$(cat "$RUN_N2/p2porch-daemon.pid")" "$(cat "$RUN_N2/docker.pid")"
killed_at=$SECONDS
node_down() { [ "$(p2 n1 node ls --json | json "[n['status'] for n in d if n['name']=='n2'][0]")" = down ]; }
wait_until 60 "n2 is down" node_down
on_live_nodes() { [ -z "$(p2 n1 service ps demo-web --running --json | json "' '.join(t['node'] for t in d if t['node']=='n2' or t['state']!='running')")" ]; }
wait_until 60 "demo-web runs 3/3 on n1 and n3 only" on_live_nodes
echo "tasks moved $((SECONDS - killed_at)) s after the crash"
p2 n1 node ls
p2 n1 service ps demo-web --running
echo "DNS answers only live tasks: $(on n1 dig +short "@$A1" demo-web.p2p | tr '\n' ' ')"

step "Done. Explore:"
cat <<MSG
  $P2 sandbox --name $NAME ls                       # hosts, addresses, sockets
  $P2 sandbox --name $NAME exec n1 -- $P2 status
  $P2 sandbox --name $NAME exec n1 -- $P2 service ps demo-web
  $P2 sandbox --name $NAME exec n3 -- dig @$A1 demo-web.p2p
  $P2 sandbox --name $NAME exec n1 -- $P2 events       # then kill something in another terminal
  $P2 sandbox --name $NAME exec n1 -- docker ps
Tear down (removes every namespace, link, dockerd and file the sandbox created):
  $P2 sandbox --name $NAME down
MSG
