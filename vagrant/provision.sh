#!/usr/bin/env bash
# Provisions one VM: installs p2porch exactly as the README does, then forms the cluster.
#   provision.sh NAME ADDRESS init|join FIRST_ADDRESS TOKEN
set -euo pipefail
name=$1 addr=$2 role=$3 first=$4 token=$5
cd /opt/p2porch
P2PORCH_SKIP_VAGRANT=1 bash scripts/install.sh
ln -sf /opt/p2porch/.venv/bin/p2porch /usr/local/bin/p2porch
systemctl enable --now docker

if [ "$role" = init ]; then
  p2porch init --name "$name" --advertise-addr "$addr" --token "$token"
else
  p2porch join "$first" --token "$token" --name "$name" --advertise-addr "$addr"
fi
p2porch node ls
