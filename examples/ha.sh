#!/usr/bin/env bash
# ha.sh - Loom as a cluster on one machine: three loomd replicas share a three-member etcd,
# two simulated hypervisors connect to all three, and each switch has one master by OpenFlow
# roles. The demo pings across hosts every 20 ms, kills the master of host1's switch with
# SIGKILL, and shows that no ping is lost while another replica takes over.
#
#   sudo examples/ha.sh          # runs until Ctrl-C
#   sudo examples/ha.sh --once   # up, fail over, show, tear down; exits 1 if a ping was lost
#
# 1. Builds loomd, loomctl and examples/ha/etcd (three etcd members in one process, the
#    embedded etcd Loom's tests use; for anything but a lab, run a real etcd cluster, e.g.
#    Debian's etcd-server) and starts etcd, then replicas r1, r2, r3: OpenFlow on tcp ports
#    6653, 6654, 6655, APIs on 127.0.0.1:8081-8083, all with --store etcd:ENDPOINTS.
# 2. Brings up host1 and host2 (examples/lab/lab.sh up --hosts 2 --no-bridge --underlay) and
#    registers them through r1 with all three replicas as controllers; the replica that
#    wins a host's election manages its OVSDB and creates br-int with three controller rows.
# 3. Creates network blue and VMs blue-1 (host1) and blue-2 (host2) through r2 and r3: every
#    replica serves the whole API. Shows GET /cluster and each replica's view of the switches
#    (role: master or slave, the generation, the master's name).
# 4. Pings blue-1 -> blue-2 every 20 ms (400 pings), kills host1's master after 2 s (kill -9), and
#    shows the new master, when the switch accepted it, and the ping summary.
# Everything (replicas, etcd, the lab) is removed on exit; the logs stay in /tmp/loom-ha.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
top=$PWD
once=0
while [ $# -gt 0 ]; do
    case $1 in
    --once) once=1 ;;
    -h|--help) sed -n '2,/^set -/{/^set -/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "ha.sh: unknown argument $1 (see: $0 --help)" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "ha.sh: run as root (it creates network namespaces and OVS daemons)" >&2; exit 1; }

run=/tmp/loom-ha
labdir=/tmp/loom-lab
lab="$top/examples/lab/lab.sh"
export PATH=$PATH:/usr/local/go/bin
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
api() { echo "127.0.0.1:808$1"; }
lc() { local r=$1; shift; echo "  \$ loomctl --api http://$(api "$r") $*"; bin/loomctl --api "http://$(api "$r")" "$@" >/dev/null; }
get() { curl -sf "http://$(api "$1")/api/v1/$2"; }
fail() { echo "ha.sh: $*" >&2; exit 1; }
wait_until() {
    local secs=$1 what=$2 i
    shift 2
    for ((i = 0; i < secs * 10; i++)); do "$@" && return 0; sleep 0.1; done
    fail "timed out after $secs s waiting for $what"
}
result=""
cleanup() {
    local rc=$?
    set +e
    trap - INT TERM ERR
    [ -n "$result" ] || say "ha demo FAILED (exit status $rc)"
    say "tearing down"
    for f in "$run"/*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    for _ in $(seq 50); do
        alive=0
        for f in "$run"/*.pid; do [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for f in "$run"/*.pid; do [ -e "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; rm -f "$f"; done
    "$lab" down >/dev/null 2>&1
    echo "  done (logs in $run)"
}
trap cleanup EXIT
trap 'echo "ha.sh: line $LINENO: $BASH_COMMAND: exit status $?" >&2' ERR
trap 'exit 130' INT TERM

say "building loomd, loomctl and the lab's etcd"
go build -o bin/ ./cmd/loomd ./cmd/loomctl
go build -o bin/loom-lab-etcd ./examples/ha/etcd
bash "$top/.ci/check-tools"
"$lab" down >/dev/null 2>&1 || true
mkdir -p "$run"
rm -f "$run"/*.pid "$run/endpoints"

say "etcd: three members in one process"
bin/loom-lab-etcd -endpoints-file "$run/endpoints" >"$run/etcd.log" 2>&1 &
echo $! >"$run/etcd.pid"
disown
wait_until 20 "etcd" test -s "$run/endpoints"
endpoints=$(cat "$run/endpoints")
echo "  endpoints $endpoints"

say "three loomd replicas on it"
for r in 1 2 3; do
    bin/loomd --openflow-listen tcp:0.0.0.0:665$((r + 2)) --api-listen "$(api $r)" --data-dir "$run/data-r$r" \
        --store "etcd:$endpoints" --replica-id "r$r" --apps lldp,overlay >"$run/r$r.log" 2>&1 &
    echo $! >"$run/r$r.pid"
    disown
done
for r in 1 2 3; do wait_until 20 "r$r's API" bin/loomctl --api "http://$(api $r)" health; done

say "two hypervisors, registered through r1 with all three replicas as their controllers"
"$lab" up --hosts 2 --no-bridge --underlay
for n in 1 2; do
    base=$(cat "$labdir/host$n/controller")   # tcp:172.31.N.1:6653, the root side of host N
    targets="${base%:*}:6653,${base%:*}:6654,${base%:*}:6655"
    lc 1 create hosts name=host$n ovsdb=unix:$labdir/host$n/db.sock controller="$targets" datapath_type=netdev vtep_ip=10.200.0.$n
done

say "network blue and a VM on each host, through r2 and r3"
lc 2 create networks name=blue type=vxlan vni=5001
lc 3 create subnets name=blue-a network=blue cidr=10.1.0.0/24 gateway=10.1.0.1
lc 2 create ports name=blue-1 network=blue mac=02:00:00:00:01:01 'ips=["10.1.0.11"]'
lc 3 create ports name=blue-2 network=blue mac=02:00:00:00:01:02 'ips=["10.1.0.12"]'
"$lab" vm-add host1 blue-1 02:00:00:00:01:01 10.1.0.11/24 >/dev/null
"$lab" vm-add host2 blue-2 02:00:00:00:01:02 10.1.0.12/24 >/dev/null
pings() { "$lab" vm blue-1 ping -c 1 -W 1 10.1.0.12 >/dev/null 2>&1; }
wait_until 30 "blue-1 pinging blue-2" pings
masters() { get "$1" switches | grep -c '"role": "master"' || true; }
two_masters() { [ $(($(masters 1) + $(masters 2) + $(masters 3))) = 2 ]; }
wait_until 20 "one master per switch" two_masters

say "the cluster (GET /cluster on r1)"
get 1 cluster
dpid1=$(get 1 hosts/host1/status | sed -n 's/.*"datapath_id": "\([0-9a-fA-F]*\)".*/\1/p')
master=$(get 1 switches | tr -d ' \n' | grep -o "{[^}]*\"datapath_id\":\"$dpid1\"[^}]*}" | sed -n 's/.*"master":"\([^"]*\)".*/\1/p')
for r in 1 2 3; do
    echo "  r$r sees host1's switch $dpid1 as: $(get $r switches | tr -d ' \n' | grep -o "{[^}]*\"datapath_id\":\"$dpid1\"[^}]*}" | grep -o '"role":"[a-z]*"')"
done
[ -n "$master" ] || fail "no master named for host1's switch"

say "400 pings, one every 20 ms; kill -9 $master (host1's master) after 2 s"
"$lab" vm blue-1 ping -n -q -i 0.02 -c 400 -w 20 10.1.0.12 >"$run/ping.out" 2>&1 &
pingpid=$!
sleep 2
kill -9 "$(cat "$run/$master.pid")"
rm -f "$run/$master.pid"
killed=$(date +%s.%N)
echo "  killed $master at $(date +%T.%N | cut -c1-12)"
wait "$pingpid" || true
sed -n 's/^/  /p' "$run/ping.out" | tail -n 3
for r in 1 2 3; do
    [ "r$r" = "$master" ] && continue
    line=$(grep 'msg="master role accepted"' "$run/r$r.log" | grep "dpid=$dpid1" | tail -n 1 || true)
    [ -n "$line" ] || continue
    at=$(date -d "$(sed 's/^time=\([^ ]*\).*/\1/' <<<"$line")" +%s.%N)
    echo "  r$r is host1's master now: the switch accepted its MASTER request $(awk "BEGIN{printf \"%.2f\", $at - $killed}") s after the kill"
done
loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$run/ping.out")
if [ "$loss" = 0 ]; then result="ok"; say "ha demo OK: no ping lost across the failover"; else fail "pings lost: $loss%"; fi
if [ "$once" = 0 ]; then
    echo "  the cluster runs until Ctrl-C (APIs on 127.0.0.1:8081-8083)"
    while sleep 3600; do :; done
fi
