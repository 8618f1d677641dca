#!/usr/bin/env bash
# demo.sh - Loom's main job on one machine: loomd (with its embedded store)
# controlling an Open vSwitch lab whose VMs talk through it.
#
#   sudo examples/demo.sh [--hosts N] [--vms-per-host M]   # runs until Ctrl-C
#   sudo examples/demo.sh --once                           # up, ping, show, down
#
# It builds loomd and loomctl into bin/, installs Open vSwitch when missing
# (apt-get), starts loomd on tcp:0.0.0.0:6653 with its API on
# 127.0.0.1:8080 and its store in /tmp/loom-demo/data, brings up the lab
# (examples/lab/lab.sh: secure-mode bridges, no NORMAL flow anywhere), and
# has every VM ping every other one through the flows loomd installs.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
once=0 hosts=1 vms=3
while [ $# -gt 0 ]; do
    case $1 in
    --once) once=1 ;;
    --hosts) hosts=$2; shift ;;
    --vms-per-host) vms=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (it creates network namespaces and OVS daemons)" >&2; exit 1; }

run=/tmp/loom-demo
lab="$top/examples/lab/lab.sh"
export PATH=$PATH:/usr/local/go/bin
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building loomd and loomctl"
go build -o bin/ ./cmd/...

cleanup() {
    set +e
    say "tearing down"
    "$lab" down >/dev/null 2>&1
    if [ -f "$run/loomd.pid" ]; then kill "$(cat "$run/loomd.pid")" 2>/dev/null; wait 2>/dev/null; fi
    rm -f "$run/loomd.pid"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$lab" down >/dev/null 2>&1 || true
mkdir -p "$run"
say "starting loomd (store: $run/data, log: $run/loomd.log)"
bin/loomd --openflow-listen tcp:0.0.0.0:6653 --api-listen 127.0.0.1:8080 --data-dir "$run/data" \
    >"$run/loomd.log" 2>&1 &
echo $! >"$run/loomd.pid"
for _ in $(seq 50); do bin/loomctl health >/dev/null 2>&1 && break; sleep 0.1; done
bin/loomctl health

say "bringing up the lab: $hosts host(s), $vms VM(s) each, bridges pointed at loomd"
"$lab" up --hosts "$hosts" --vms-per-host "$vms" --controller tcp:auto:6653
for _ in $(seq 100); do
    [ "$(bin/loomctl switches | tail -n +2 | wc -l)" -ge "$hosts" ] && break; sleep 0.1
done
bin/loomctl switches

say "every VM pings every other VM"
status=0
"$lab" ping-all || status=$?

dpid=$(bin/loomctl switches | awk 'NR==2 {print $1}')
say "loomd's desired flows on $dpid (loomctl flows $dpid)"
bin/loomctl flows "$dpid"
say "what the switch has (ovs-ofctl dump-flows): no NORMAL anywhere"
"$lab" ofctl host1 dump-flows br-int --no-stats
grep -E 'reconciled|switch ready' "$run/loomd.log" | sed 's/^/  /'
say "topology: switches, links found by LLDP, endpoints learned from ARP (loomctl topology)"
bin/loomctl topology

if [ "$once" = 1 ]; then
    [ "$status" = 0 ] && say "demo OK" || say "demo FAILED"
    exit "$status"
fi
say "running. Try: sudo $lab vm vm1 ping 10.0.0.2 | bin/loomctl switch $dpid | curl -s 127.0.0.1:8080/metrics | Ctrl-C to stop"
wait "$(cat "$run/loomd.pid")"
