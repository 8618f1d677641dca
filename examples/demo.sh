#!/usr/bin/env bash
# demo.sh - Loom's distributed virtual switch on one machine: loomd (with its embedded store)
# manages two simulated hypervisors; two tenants with the same subnet get four VMs, all made
# through the REST API, and pings show reachability inside a tenant (across hosts, over VXLAN)
# and isolation between tenants.
#
#   sudo examples/demo.sh          # runs until Ctrl-C
#   sudo examples/demo.sh --once   # up, ping, show, tear down; exits 1 if any expectation fails
#
# 1. Builds loomd and loomctl into bin/, checks that Open vSwitch, curl and the rest of
#    .ci/packages are there (`make demo` installs them first: make deps), and starts loomd (its default apps: lldp,overlay,router,dhcp,portpolicy,firewall,loadbalancer) on tcp:0.0.0.0:6653 with its API on
#    127.0.0.1:8080 and a fresh store in /tmp/loom-demo/data (log: /tmp/loom-demo/loomd.log).
# 2. Brings up hypervisors host1 and host2 (examples/lab/lab.sh up --hosts 2 --no-bridge
#    --underlay): each its own ovsdb-server and ovs-vswitchd (userspace datapath) with only
#    br-phy, which holds the VXLAN underlay address 10.200.0.1 or .2, and NO br-int. It
#    registers both (loomctl create hosts ...), and Loom creates br-int over OVSDB: secure
#    mode, OpenFlow13, controller loomd, flow-based VXLAN port vxlan0 (ofport 1000).
# 3. Creates tenants blue (VXLAN VNI 5001) and red (VNI 5002), both with subnet 10.1.0.0/24,
#    and ports blue-1 (10.1.0.11) and red-1 (10.1.0.11) on host1, blue-2 (10.1.0.12) and
#    red-2 (10.1.0.12) on host2; each VM is plugged into br-int with
#    external_ids:iface-id=PORT (lab.sh vm-add), and the demo waits until every port is bound.
# 4. Pings, printed as a matrix: blue-1 -> blue-2 and red-1 -> red-2 answer (and back): the
#    same addresses, each answered by its own tenant's VM (Loom answers ARP per tenant). Then
#    blue-1 sends straight to a VM's MAC (ip neigh replace 10.1.0.9x lladdr MAC dev eth0;
#    ping 10.1.0.9x) and the demo counts the IPv4 packets that reach that VM's kernel:
#    blue-2's MAC (a control) gets them; red-1's (same host) and red-2's (other host) get
#    none, and no ping is answered. Ends with "demo OK" or "demo FAILED".
# 5. Shows loomctl switches, loomctl flows (host1), ovs-ofctl dump-flows br-int (host1) and
#    loomctl list ports.
# Everything (loomd, the lab's daemons and loom-* namespaces, the store) is removed on exit,
# Ctrl-C included; the log stays.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
top=$PWD
once=0
while [ $# -gt 0 ]; do
    case $1 in
    --once) once=1 ;;
    -h|--help) sed -n '2,/^set -/{/^set -/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (see: $0 --help)" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (it creates network namespaces and OVS daemons)" >&2; exit 1; }

run=/tmp/loom-demo
labdir=/tmp/loom-lab
lab="$top/examples/lab/lab.sh"
api=127.0.0.1:8080
export PATH=$PATH:/usr/local/go/bin
say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now()  { echo "${EPOCHREALTIME/./}"; }                      # microseconds
since() { local d=$(($(now) - $1)); printf '%d.%02d s' $((d / 1000000)) $((d % 1000000 / 10000)); }
# lc ARGS...: show "$ loomctl ARGS", run it, and show its output only if it fails.
lc() {
    local out a shown=""
    for a in "$@"; do [[ $a == *[][\"\ ]* ]] && a="'$a'"; shown+=" $a"; done
    echo "  \$ loomctl$shown"
    out=$(bin/loomctl "$@" 2>&1) || { echo "$out" >&2; fail "loomctl $* failed"; }
}
get()  { curl -sf "http://$api/api/v1/$1"; }

t0=$(now)
result=""
cleanup() {
    local rc=$?
    set +e
    trap - INT TERM ERR
    if [ -z "$result" ]; then
        if [ "$rc" = 130 ]; then say "interrupted"; else say "demo FAILED (exit status $rc)"; fi
    fi
    say "tearing down"
    stop_loomd
    "$lab" down >/dev/null 2>&1
    rm -rf "$run/data"
    echo "  done after $(since "$t0") (loomd's log stays in $run/loomd.log)"
}
# stop_loomd: the loomd of this demo (pidfile, and its command line names the demo's store).
stop_loomd() {
    local pid i
    pid=$(cat "$run/loomd.pid" 2>/dev/null) || return 0
    if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "--data-dir $run/data"; then
        kill "$pid" 2>/dev/null
        for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -f "$run/loomd.pid"
}
# fail MESSAGE: show what went wrong and exit (cleanup says "demo FAILED").
fail() {
    echo "demo.sh: $*" >&2
    echo "--- last lines of $run/loomd.log:" >&2
    tail -n 15 "$run/loomd.log" >&2 2>/dev/null
    exit 1
}
# wait_until SECONDS WHAT COMMAND...: poll COMMAND every 0.1 s until it succeeds.
wait_until() {
    local secs=$1 what=$2 i
    shift 2
    for ((i = 0; i < secs * 10; i++)); do "$@" && return 0; sleep 0.1; done
    fail "timed out after $secs s waiting for $what"
}
trap cleanup EXIT
trap 'echo "demo.sh: line $LINENO: $BASH_COMMAND: exit status $?" >&2' ERR
trap 'exit 130' INT TERM

say "building loomd and loomctl"
go build -o bin/ ./cmd/...
bash "$top/.ci/check-tools" # Open vSwitch, curl, ...: `make demo` installs them first (make deps)

# A previous run that was killed (not interrupted) may have left all of it behind.
stop_loomd
"$lab" down >/dev/null 2>&1 || true
rm -rf "$run/data"
mkdir -p "$run"

say "starting loomd (apps lldp,overlay,router,dhcp,portpolicy,firewall,loadbalancer; store: $run/data, log: $run/loomd.log)"
bin/loomd --openflow-listen tcp:0.0.0.0:6653 --api-listen "$api" --data-dir "$run/data" \
    >"$run/loomd.log" 2>&1 &
echo $! >"$run/loomd.pid"
loomd_up() { kill -0 "$(cat "$run/loomd.pid")" 2>/dev/null || fail "loomd exited"; bin/loomctl health >/dev/null 2>&1; }
wait_until 10 "loomd's API" loomd_up
bin/loomctl health

say "two hypervisors: an underlay (br-phy 10.200.0.1 and .2), no br-int yet"
"$lab" up --hosts 2 --no-bridge --underlay

say "registering them with Loom (REST): Loom creates br-int, its controller and vxlan0 over OVSDB"
t=$(now)
for n in 1 2; do
    lc create hosts name=host$n ovsdb=unix:$labdir/host$n/db.sock \
        controller="$(cat $labdir/host$n/controller)" datapath_type=netdev vtep_ip=10.200.0.$n
done
host_ready() {
    local st
    st=$(get "hosts/$1/status") || return 1
    grep -q '"bridge_ready": true' <<<"$st" && grep -q '"openflow_connected": true' <<<"$st"
}
wait_until 20 "host1's bridge and OpenFlow connection" host_ready host1
wait_until 20 "host2's bridge and OpenFlow connection" host_ready host2
dpid1=$(get hosts/host1/status | sed -n 's/.*"datapath_id": "\([0-9a-fA-F]*\)".*/\1/p')
dpid2=$(get hosts/host2/status | sed -n 's/.*"datapath_id": "\([0-9a-fA-F]*\)".*/\1/p')
echo "  both bridges ready and connected to loomd after $(since "$t"): host1 = $dpid1, host2 = $dpid2"
"$lab" vsctl host1 show | sed 's/^/  host1| /'

say "two tenants with the same subnet, four ports, four VMs (REST, then plug each VM in)"
lc create networks name=blue type=vxlan vni=5001
lc create networks name=red type=vxlan vni=5002
lc create subnets name=blue-a network=blue cidr=10.1.0.0/24 gateway=10.1.0.1
lc create subnets name=red-a network=red cidr=10.1.0.0/24 gateway=10.1.0.1
#      port   network host  MAC               IP
vms=( "blue-1 blue    host1 02:00:00:00:01:01 10.1.0.11"
      "blue-2 blue    host2 02:00:00:00:01:02 10.1.0.12"
      "red-1  red     host1 02:00:00:00:02:01 10.1.0.11"
      "red-2  red     host2 02:00:00:00:02:02 10.1.0.12" )
declare -A mac_of
t=$(now)
for v in "${vms[@]}"; do
    read -r port net host mac ip <<<"$v"
    mac_of[$port]=$mac
    lc create ports name="$port" network="$net" mac="$mac" "ips=[\"$ip\"]"
    echo "  \$ lab.sh vm-add $host $port $mac $ip/24     # iface-id=$port"
    "$lab" vm-add "$host" "$port" "$mac" "$ip/24" >/dev/null
done
port_bound() {
    local st
    st=$(get "ports/$1/status") || return 1
    grep -q '"bound": true' <<<"$st" && grep -q "\"host\": \"$2\"" <<<"$st"
}
for v in "${vms[@]}"; do
    read -r port _ host _ <<<"$v"
    wait_until 10 "port $port bound on $host" port_bound "$port" "$host"
done
# Every host's flows equal loomd's desired flows (which now include all four ports).
converged() {
    local fl all ok
    fl=$(bin/loomctl -o json flows "$1") || return 1
    all=$(grep -c '"state":' <<<"$fl" || true) ok=$(grep -c '"state": "ok"' <<<"$fl" || true)
    [ "$ok" -gt 0 ] && [ "$ok" = "$all" ]
}
wait_until 10 "host1's flows" converged "$dpid1"
wait_until 10 "host2's flows" converged "$dpid2"
echo "  4 ports bound and both hosts' flows as desired after $(since "$t"):"
for v in "${vms[@]}"; do
    read -r port _ <<<"$v"
    b=$(get "ports/$port/status" | tr -d '\n ' |
        sed -n 's/.*"binding":{"host":"\([^"]*\)","iface_id":"[^"]*","interface":"\([^"]*\)","ofport":\([0-9]*\).*/\1 \2 \3/p')
    read -r h i o <<<"$b"
    echo "    GET /api/v1/ports/$port/status: bound on $h, interface $i, ofport $o"
done

say "reachability and isolation"
bad=0
fmt='  %-7s %-27s %-38s %-10s %-19s %s\n'
# shellcheck disable=SC2059
printf "$fmt" FROM TO PATH EXPECTED GOT ""
row() {   # FROM TO PATH EXPECTED GOT MET(0|1): print a row of the matrix, count a miss
    local ok=ok
    [ "$6" = 1 ] || { ok=FAIL; bad=$((bad + 1)); }
    # shellcheck disable=SC2059
    printf "$fmt" "$1" "$2" "$3" "$4" "$5" "$ok"
}
# ip_in VM: how many IPv4 packets VM's kernel has received (Ip InReceives in its /proc/net/snmp).
ip_in() {
    # shellcheck disable=SC2016 # an awk program
    "$lab" vm "$1" awk '$1 == "Ip:" { if (n++) print $(c); else for (i = 1; i <= NF; i++) if ($i == "InReceives") c = i }' /proc/net/snmp
}
# ping_ok FROM IP: at least one of 3 echo requests answered.
ping_ok() { "$lab" vm "$1" ping -n -q -c 3 -i 0.2 -W 1 "$2" >/dev/null 2>&1; }
# reach FROM TO IP PATH: FROM pings IP and the answer must come from TO (FROM's neighbour entry
# for IP, answered by Loom's ARP responder in FROM's network, is TO's MAC).
reach() {
    local from=$1 to=$2 ip=$3 got=none seen
    if ping_ok "$from" "$ip"; then
        seen=$("$lab" vm "$from" ip neigh show "$ip" | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}')
        got=reply; [ "$seen" = "${mac_of[$to]}" ] || got="reply from $seen"
    fi
    row "$from" "$to $ip" "$4" reply "$got" "$([ "$got" = reply ] && echo 1)"
}
# by_mac FROM TO IP PATH delivered|dropped: FROM sends to TO's MAC directly (IP pinned to it
# in FROM's neighbour table: no ARP, no IP of TO's) and we count what reaches TO's kernel.
# IP is not TO's address, so there is never a reply: a reply is a failure.
by_mac() {
    local from=$1 to=$2 ip=$3 n0 n=0 got met=0
    "$lab" vm "$from" ip neigh replace "$ip" lladdr "${mac_of[$to]}" dev eth0
    n0=$(ip_in "$to")
    if "$lab" vm "$from" ping -n -q -c 2 -i 0.2 -W 1 "$ip" >/dev/null 2>&1; then got=reply
    else
        n=$(($(ip_in "$to") - n0))
        if [ "$n" -gt 0 ]; then got="delivered ($n pkts)"; else got="dropped, no reply"; fi
    fi
    if [ "$got" != reply ] && { { [ "$5" = delivered ] && [ "$n" -gt 0 ]; } || { [ "$5" = dropped ] && [ "$n" = 0 ]; }; }; then
        met=1
    fi
    row "$from" "$to's MAC, as $ip" "$4" "$5" "$got" "$met"
}
reach  blue-1 blue-2 10.1.0.12 "blue (VNI 5001), host1 -> host2"
reach  blue-2 blue-1 10.1.0.11 "blue (VNI 5001), host2 -> host1"
reach  red-1  red-2  10.1.0.12 "red (VNI 5002): same IPs as blue"
reach  red-2  red-1  10.1.0.11 "red (VNI 5002), host2 -> host1"
by_mac blue-1 blue-2 10.1.0.97 "control: blue -> blue by MAC"           delivered
by_mac blue-1 red-1  10.1.0.98 "blue -> red, same host"                 dropped
by_mac blue-1 red-2  10.1.0.99 "blue -> red, across hosts (VXLAN)"      dropped
echo "  (each tenant's 10.1.0.12 is its own VM; the control row shows that a frame sent to a VM's"
echo "   MAC does reach it inside its tenant, so the red rows' 0 packets are Loom's isolation)"

say "Loom's view: connected switches (loomctl switches)"
bin/loomctl switches
say "desired against installed flows on host1 (loomctl flows $dpid1)"
bin/loomctl flows "$dpid1"
say "host1's br-int as OVS has it (ovs-ofctl -O OpenFlow13 dump-flows br-int --no-stats)"
"$lab" ofctl host1 dump-flows br-int --no-stats
say "the ports in Loom's model (loomctl list ports)"
bin/loomctl list ports

if [ "$bad" = 0 ]; then result=OK; say "demo OK (up and checked in $(since "$t0"))"
else result=FAILED; say "demo FAILED: $bad of 7 expectations not met"; fi
[ "$once" = 1 ] && exit $((bad > 0))
say "running; Ctrl-C to stop. Try (as root):"
cat <<EOF
  examples/lab/lab.sh vm blue-1 ping 10.1.0.12            # blue-1 -> blue-2 across hosts
  examples/lab/lab.sh vm red-1 ip neigh                   # red's 10.1.0.12 is red-2's MAC
  examples/lab/lab.sh status                              # hosts, controllers, VMs
  examples/lab/lab.sh ofctl host2 dump-flows br-int
  bin/loomctl switch $dpid1                # ports and desired flows with owners
  curl -s $api/api/v1/hosts/host1/status; curl -s $api/api/v1/ports/blue-1/status
  bin/loomctl create ports name=blue-3 network=blue mac=02:00:00:00:01:03 'ips=["10.1.0.13"]'
  examples/lab/lab.sh vm-add host2 blue-3 02:00:00:00:01:03 10.1.0.13/24
  bin/loomctl create load-balancers name=web network=blue vip=10.1.0.100 protocol=tcp port=80 \
      'backends=[{"ip":"10.1.0.11"},{"ip":"10.1.0.12"}]'   # a VIP on both hosts
  http://$api/ui/              # the live fabric page (a browser on this machine)
EOF
wait "$(cat "$run/loomd.pid")"
