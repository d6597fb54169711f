#!/usr/bin/env bash
# Provisions one VM: installs p2porch exactly as the README does, then forms the cluster.
#   provision.sh NAME ADDRESS init|join FIRST_ADDRESS
# The join token comes from the synced vagrant/.join-token file (never an argument: argv shows in ps).
set -euo pipefail
name=$1 addr=$2 role=$3 first=$4
token_file=/opt/p2porch/vagrant/.join-token
cd /opt/p2porch
P2PORCH_SKIP_VAGRANT=1 bash scripts/install.sh
ln -sf /opt/p2porch/.venv/bin/p2porch /usr/local/bin/p2porch
systemctl enable --now docker

if [ "$role" = init ]; then
  p2porch init --name "$name" --advertise-addr "$addr" --token-file "$token_file"
else
  p2porch join "$first" --token-file "$token_file" --name "$name" --advertise-addr "$addr"
fi
p2porch node ls
