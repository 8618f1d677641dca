#!/usr/bin/env bash
# lab.sh - a small Open vSwitch lab on one Linux machine, to run Loom (loomd) against by hand.
#
# Each simulated hypervisor ("host") runs its own ovsdb-server and ovs-vswitchd inside network
# namespace loom-HOST, with all sockets, logs and pidfiles in /tmp/loom-lab/HOST. It has one
# bridge br-int: userspace datapath (netdev, so no kernel module), OpenFlow13, fail_mode=secure,
# in-band control off, datapath ID = host number, controller max_backoff=1000. Each VM is a
# namespace loom-VM whose eth0 is the peer of br-int port VM. With several hosts, they are
# chained host1 - host2 - ... by veth links that are ports of both br-ints (to-hostN).
#
# Usage (as root):  lab.sh COMMAND [ARGS...]
#              or:  . lab.sh; lab COMMAND [ARGS...]    (sourcing defines lab and lab_* helpers)
#
#   up [--hosts N] [--vms-per-host M] [--controller TARGET]
#                       start the lab; defaults: 1 host, 3 VMs, tcp:auto:6653. The K-th VM
#                       (counting over all hosts) is vmK with IP 10.0.0.K/24 and MAC
#                       02:00:00:00:HH:II (HH = host number, II = its number on the host).
#   down                stop the lab's daemons (by pidfile), delete the loom-* namespaces and
#                       loom-c-* links, remove /tmp/loom-lab
#   vm VM CMD...        run CMD in the VM's namespace         (lab.sh vm vm1 ping -c1 10.0.0.2)
#   ofctl HOST ARGS...  ovs-ofctl -O OpenFlow13 against HOST   (lab.sh ofctl host1 dump-flows br-int)
#   vsctl HOST ARGS...  ovs-vsctl against HOST's database      (lab.sh vsctl host1 show)
#   ping-all            every VM pings every other VM once; prints a matrix, fails if a ping fails
#   status              hosts, daemons, controller connections, VMs and their OpenFlow ports
#
# Controller TARGET (the switch runs in its own namespace, so 127.0.0.1 is not the controller's):
#   tcp:auto:PORT  a veth pair links the root namespace (loom-c-HOST, 172.31.N.1/30) with the
#                  host (ctl0, 172.31.N.2/30), N = host number, and the bridge dials
#                  tcp:172.31.N.1:PORT: "auto" is the root-side address, where a controller
#                  listening on 0.0.0.0:PORT (e.g. loomd on :6653) in the root namespace answers.
#   tcp:IP:PORT    the same link, with the host's default route through it: IP can be any
#                  address of the root namespace except 127.x.
#   unix:/PATH     vswitchd only dials unix sockets in its run directory, so
#                  /tmp/loom-lab/HOST/ctl.sock becomes a symlink to /PATH and the bridge dials it.
#   none           no controller. Other targets (ssl:..., punix:...) go to OVS unchanged.
# Note: OVS applies max_backoff only after a first connection; before that it retries after
# 1, 2, 4, 8, 8... s, so start the controller first. Controller.is_connected in OVSDB (status)
# lags by up to 5 s.
#
# Missing tools are installed with apt-get (openvswitch-switch iproute2 iputils-ping ethtool).
# Only the lab's own daemons (by pidfile), loom-* namespaces, loom-c-* links and /tmp/loom-lab
# are touched.

LAB_ROOT=/tmp/loom-lab
LAB_SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
LAB_PACKAGES="openvswitch-switch iproute2 iputils-ping ethtool"
_LAB_SELF=${BASH_SOURCE[0]}

_lab_die() { echo "lab: $*" >&2; return 1; }

_lab_need_root() {
    [ "$(id -u)" = 0 ] || _lab_die "must run as root: it creates network namespaces and starts Open vSwitch (try: sudo $_LAB_SELF ...)"
}

# _lab_need_tools: install the Debian packages that provide missing tools.
_lab_need_tools() {
    local t
    for t in ovs-vswitchd ovsdb-server ovsdb-tool ovs-vsctl ovs-ofctl ovs-appctl ip ping ethtool; do
        command -v "$t" >/dev/null && continue
        echo "lab: $t is missing; installing $LAB_PACKAGES" >&2
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y $LAB_PACKAGES ||
            { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $LAB_PACKAGES; } ||
            _lab_die "could not install $LAB_PACKAGES" || return 1
        break
    done
}

_lab_need_host() { [ -S "$LAB_ROOT/$1/db.sock" ] || _lab_die "no host '$1' (is the lab up? see: lab.sh status)"; }

lab_vsctl() { _lab_need_host "$1" || return 1; local h=$1; shift; ovs-vsctl --timeout=10 --db="unix:$LAB_ROOT/$h/db.sock" "$@"; }
lab_ofctl() { _lab_need_host "$1" || return 1; local h=$1; shift; OVS_RUNDIR="$LAB_ROOT/$h" ovs-ofctl -O OpenFlow13 "$@"; }
lab_vm()    { [ -e "/run/netns/loom-$1" ] || _lab_die "no VM '$1'" || return 1; local v=$1; shift; ip netns exec "loom-$v" "$@"; }

# _lab_netns NS: create a namespace with loopback up and IPv6 off (no ND/MLD noise in the bridges).
_lab_netns() {
    ip netns add "$1" && ip netns exec "$1" sh -ec 'ip link set lo up
        if [ -d /proc/sys/net/ipv6 ]; then
            echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6
            echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6
        fi'
}

# _lab_daemon HOST PROGRAM ARGS...: start an OVS daemon in loom-HOST; it returns when the daemon
# is ready. Its stderr goes to a file: a detached OVS daemon keeps it open.
_lab_daemon() {
    local h=$1 prog=$2 d=$LAB_ROOT/$1
    shift 2
    ip netns exec "loom-$h" env OVS_RUNDIR="$d" OVS_LOGDIR="$d" OVS_DBDIR="$d" \
        "$prog" "$@" --pidfile="$d/$prog.pid" --unixctl="$d/$prog.ctl" --log-file="$d/$prog.log" \
        -vconsole:err --detach 2>>"$d/$prog.stderr" || { cat "$d/$prog.stderr" >&2; return 1; }
}

# _lab_ctl_link HOST N: veth loom-c-HOST (172.31.N.1/30) <-> ctl0 (172.31.N.2/30 in loom-HOST),
# with the host's default route through it.
_lab_ctl_link() {
    local h=$1 n=$2 link=loom-c-$1
    if ip -4 -o addr show | grep -q " 172\.31\.$n\.[0-3]/"; then
        _lab_die "172.31.$n.0/30 is already used in the root namespace"; return 1
    fi
    ip link add name "$link" type veth peer name ctl0 netns "loom-$h" || return 1
    echo 1 >"/proc/sys/net/ipv6/conf/$link/disable_ipv6" 2>/dev/null
    ip addr add "172.31.$n.1/30" dev "$link" && ip link set dev "$link" up &&
        ip -n "loom-$h" addr add "172.31.$n.2/30" dev ctl0 && ip -n "loom-$h" link set dev ctl0 up &&
        ip -n "loom-$h" route add default via "172.31.$n.1"
}

# _lab_target HOST N TARGET: prepare what TARGET needs on HOST and print the target for OVS.
_lab_target() {
    local h=$1 n=$2 t=$3
    case $t in
        none) ;;
        tcp:*)
            _lab_ctl_link "$h" "$n" || return 1
            case $t in tcp:auto:*) t=tcp:172.31.$n.1:${t#tcp:auto:} ;; esac
            echo "$t" ;;
        unix:/*)
            ln -s "${t#unix:}" "$LAB_ROOT/$h/ctl.sock" || return 1
            echo "unix:$LAB_ROOT/$h/ctl.sock" ;;
        unix:*) _lab_die "unix: controller path must be absolute: $t" ;;
        *) echo "$t" ;;
    esac
}

# _lab_host_up HOST N CONTROLLER: start host HOST (number N) with its bridge and controller.
_lab_host_up() {
    local h=$1 n=$2 d=$LAB_ROOT/$1 target args
    mkdir -p "$d" && _lab_netns "loom-$h" || return 1
    ovsdb-tool create "$d/conf.db" "$LAB_SCHEMA" || return 1
    _lab_daemon "$h" ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" || return 1
    lab_vsctl "$h" --no-wait init || return 1
    _lab_daemon "$h" ovs-vswitchd "unix:$d/db.sock" || return 1
    target=$(_lab_target "$h" "$n" "$3") || return 1
    args=(add-br br-int -- set bridge br-int datapath_type=netdev protocols=OpenFlow13 fail_mode=secure
          other-config:datapath-id="$(printf %016x "$n")" other-config:disable-in-band=true)
    if [ -n "$target" ]; then   # in the same transaction: adding a first controller later flushes flows
        args+=(-- --id=@c create controller target="\"$target\"" max_backoff=1000
               -- set bridge br-int controller=@c)
    fi
    lab_vsctl "$h" "${args[@]}" >/dev/null   # (it prints the new controller's UUID)
}

# _lab_trunk A B: link hosts A and B with a veth pair, a br-int port on each side.
_lab_trunk() {
    ip -n "loom-$1" link add name "to-$2" type veth peer name "to-$1" netns "loom-$2" &&
        ip -n "loom-$1" link set dev "to-$2" up && ip -n "loom-$2" link set dev "to-$1" up &&
        lab_vsctl "$1" add-port br-int "to-$2" && lab_vsctl "$2" add-port br-int "to-$1"
}

# _lab_vm_add HOST VM MAC IP/LEN: create a VM on HOST and record it in $LAB_ROOT/vms.
_lab_vm_add() {
    local h=$1 vm=$2 mac=$3 cidr=$4 port
    _lab_netns "loom-$vm" || return 1
    ip -n "loom-$h" link add name "$vm" type veth peer name eth0 netns "loom-$vm" || return 1
    # TX checksum offload off: the userspace datapath forwards partial checksums as they are,
    # which breaks TCP.
    # shellcheck disable=SC2016 # $1 and $2 are expanded by sh -c
    ip netns exec "loom-$vm" sh -ec 'ip link set dev eth0 address "$1"
        ip addr add "$2" dev eth0
        ethtool -K eth0 tx off >/dev/null
        ip link set dev eth0 up' _ "$mac" "$cidr" || return 1
    ip -n "loom-$h" link set dev "$vm" up || return 1
    lab_vsctl "$h" add-port br-int "$vm" -- set interface "$vm" external_ids:iface-id="$vm" \
        external_ids:attached-mac="$mac" || return 1
    port=$(lab_vsctl "$h" get interface "$vm" ofport) || return 1
    echo "$vm $h $mac ${cidr%/*} $port" >>"$LAB_ROOT/vms"
}

lab_up() {
    local hosts=1 per=3 ctl=tcp:auto:6653 h i k=0
    while [ $# -gt 0 ]; do
        case $1 in
            --hosts) hosts=$2; shift 2 ;;
            --vms-per-host) per=$2; shift 2 ;;
            --controller) ctl=$2; shift 2 ;;
            *) _lab_die "up: unknown argument '$1' (see: lab.sh help)"; return 2 ;;
        esac
    done
    if ! [[ $hosts =~ ^[0-9]+$ && $per =~ ^[0-9]+$ ]] || [ "$hosts" -lt 1 ] || [ "$hosts" -gt 127 ] ||
        [ $((hosts * per)) -gt 254 ]; then
        _lab_die "up: want 1-127 hosts and at most 254 VMs"; return 2
    fi
    _lab_need_root && _lab_need_tools || return 1
    [ -e "$LAB_ROOT" ] && { _lab_die "a lab is already up ($LAB_ROOT exists); run: lab.sh down"; return 1; }
    mkdir -p "$LAB_ROOT" && : >"$LAB_ROOT/vms" || return 1
    for ((h = 1; h <= hosts; h++)); do
        _lab_host_up "host$h" "$h" "$ctl" || { _lab_die "host$h failed; cleaning up"; lab_down; return 1; }
    done
    for ((h = 1; h < hosts; h++)); do
        _lab_trunk "host$h" "host$((h + 1))" || { _lab_die "trunk failed; cleaning up"; lab_down; return 1; }
    done
    for ((h = 1; h <= hosts; h++)); do
        for ((i = 1; i <= per; i++)); do
            k=$((k + 1))
            _lab_vm_add "host$h" "vm$k" "$(printf '02:00:00:00:%02x:%02x' "$h" "$i")" "10.0.0.$k/24" ||
                { _lab_die "vm$k failed; cleaning up"; lab_down; return 1; }
        done
    done
    lab_status
}

# _lab_gone PID: wait up to 5 s for PID to exit (a zombie counts: reaping is init's job), then kill -9.
_lab_gone() {
    local i
    for ((i = 0; i < 50; i++)); do
        [ -e "/proc/$1" ] || return 0
        [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" = Z ] && return 0
        sleep 0.1
    done
    kill -9 "$1" 2>/dev/null
}

lab_down() {
    _lab_need_root || return 1
    local pf pid pids=() ns link
    for pf in "$LAB_ROOT"/*/*.pid; do   # every daemon first, so they all exit in parallel
        read -r pid 2>/dev/null <"$pf" || continue
        # only a process that is still ours: its command line names this lab's directory
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$LAB_ROOT/" && kill "$pid" && pids+=("$pid")
    done
    for pid in "${pids[@]}"; do _lab_gone "$pid"; done
    # Links first: deleting a namespace removes its end of a veth pair asynchronously.
    for link in $(ip -o link show | awk -F': ' '$2 ~ /^loom-c-/ {sub(/@.*/, "", $2); print $2}'); do
        ip link del dev "$link"
    done
    for ns in $(ip netns list | awk '$1 ~ /^loom-/ {print $1}'); do ip netns del "$ns"; done
    rm -rf "$LAB_ROOT"
}

lab_ping_all() {
    [ -s "$LAB_ROOT/vms" ] || { _lab_die "no VMs (is the lab up?)"; return 1; }
    local vms=() ips=() vm ip s d cell fail=0 n
    while read -r vm _ _ ip _; do vms+=("$vm"); ips+=("$ip"); done <"$LAB_ROOT/vms"
    n=${#vms[@]}
    printf '%-8s' 'from\to'; printf '%-6s' "${vms[@]}"; echo
    for ((s = 0; s < n; s++)); do
        printf '%-8s' "${vms[s]}"
        for ((d = 0; d < n; d++)); do
            if [ $s = $d ]; then cell=-
            elif ip netns exec "loom-${vms[s]}" ping -n -q -c1 -W2 "${ips[d]}" >/dev/null 2>&1; then cell=ok
            else cell=FAIL; fail=$((fail + 1)); fi
            printf '%-6s' "$cell"
        done
        echo
    done
    echo "$((n * (n - 1) - fail))/$((n * (n - 1))) pings answered"
    [ $fail = 0 ]
}

lab_status() {
    [ -d "$LAB_ROOT" ] || { echo "no lab is up"; return 0; }
    local d h prog pid state ctl conn vm mac ip port
    for d in "$LAB_ROOT"/*/; do
        h=$(basename "$d") state=""
        for prog in ovsdb-server ovs-vswitchd; do
            pid=$(cat "$d/$prog.pid" 2>/dev/null)
            if [ -n "$pid" ] && [ -e "/proc/$pid" ]; then state+=" $prog=$pid"; else state+=" $prog=DOWN"; fi
        done
        ctl=$(lab_vsctl "$h" --bare --columns=target list controller 2>/dev/null)
        conn=$(lab_vsctl "$h" --bare --columns=is_connected list controller 2>/dev/null)
        echo "$h: netns loom-$h, dpid $(lab_vsctl "$h" get bridge br-int other-config:datapath-id 2>/dev/null | tr -d '"'),$state"
        echo "    controller: ${ctl:-none}${ctl:+ (is_connected: $conn; OVSDB lags up to 5 s)}"
    done
    if [ -s "$LAB_ROOT/vms" ]; then
        printf '%-7s %-8s %-18s %-11s %s\n' VM HOST MAC IP OFPORT
        while read -r vm h mac ip port; do
            printf '%-7s %-8s %-18s %-11s %s\n' "$vm" "$h" "$mac" "$ip" "$port"
        done <"$LAB_ROOT/vms"
    fi
}

_lab_usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$_LAB_SELF"; }

# lab COMMAND [ARGS...]: the commands listed at the top of this file.
lab() {
    local cmd=${1:-help}
    [ $# -gt 0 ] && shift
    case $cmd in help | -h | --help) _lab_usage; return 0 ;; esac
    _lab_need_root || return 1
    case $cmd in
        up) lab_up "$@" ;;
        down) lab_down ;;
        vm) lab_vm "$@" ;;
        ofctl) lab_ofctl "$@" ;;
        vsctl) lab_vsctl "$@" ;;
        ping-all) lab_ping_all ;;
        status) lab_status ;;
        *) _lab_usage >&2; _lab_die "unknown command '$cmd'"; return 2 ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    lab "$@"
fi
