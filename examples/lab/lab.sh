#!/usr/bin/env bash
# lab.sh - a small Open vSwitch lab on one Linux machine, to run Loom (loomd) against by hand.
#
# Each simulated hypervisor ("host") runs its own ovsdb-server and ovs-vswitchd inside network
# namespace loom-HOST, with all sockets, logs and pidfiles in /tmp/loom-lab/HOST. By default it
# has one bridge br-int: userspace datapath (netdev, so no kernel module), OpenFlow13,
# fail_mode=secure, in-band control off, datapath ID = host number, controller max_backoff=1000.
# Each VM is a namespace loom-VM whose eth0 (TX checksum offload off) is the peer of br-int port
# VM, with external_ids:iface-id=VM and attached-mac=MAC. With several hosts and br-int, they are
# chained host1 - host2 - ... by veth links that are ports of both br-ints (to-hostN).
#
# Usage (as root):  lab.sh COMMAND [ARGS...]
#              or:  . lab.sh; lab COMMAND [ARGS...]    (sourcing defines lab and lab_* helpers)
#
#   up [--hosts N] [--vms-per-host M] [--controller TARGET] [--underlay] [--no-bridge]
#                       start the lab; defaults: 1 host, 3 VMs, tcp:auto:6653. The K-th VM
#                       (counting over all hosts) is vmK with IP 10.0.0.K/24 and MAC
#                       02:00:00:00:HH:II (HH = host number, II = its number on the host).
#     --underlay        give host N a VXLAN underlay: bridge br-phy (netdev, MAC
#                       02:00:0a:c8:00:NN, not touched by any controller) holds 10.200.0.N/24;
#                       its port ul0 is a veth into Linux bridge ul-br in namespace loom-underlay
#                       (MTU 1600, so VMs keep 1500 inside VXLAN), and every host's tunnel
#                       neighbour cache is seeded with the others' br-phy MACs (ovs-appctl
#                       tnl/neigh/set), so no first packet is lost to ARP. If the lab creates
#                       br-int, it also gets vxlan0: type vxlan, ofport 1000, options
#                       remote_ip=flow key=flow local_ip=10.200.0.N.
#     --no-bridge       create no br-int (hence no links between hosts and no VMs: M defaults
#                       to 0): for a controller that creates the bridge itself over OVSDB, as
#                       Loom does for the hosts registered with it. The controller link is still
#                       made; status shows the target to give the controller. For example:
#                         lab.sh up --hosts 2 --no-bridge --underlay
#                         loomctl create hosts name=host1 ovsdb=unix:/tmp/loom-lab/host1/db.sock \
#                           controller=tcp:172.31.1.1:6653 datapath_type=netdev vtep_ip=10.200.0.1
#                       then, once Loom has made br-int, plug VMs in with vm-add.
#   down                stop the lab's daemons (by pidfile), delete the loom-* namespaces and
#                       loom-c-* links, remove /tmp/loom-lab
#   vm-add HOST VM MAC IP/LEN [IFACE-ID]
#                       add VM (a namespace loom-VM, at most 15 characters) on HOST's br-int, which
#                       must exist; its interface gets external_ids:iface-id=IFACE-ID (default: VM,
#                       so a Loom port named VM binds to it) and attached-mac=MAC
#   vm-del VM           unplug VM from its host's br-int and delete it
#   vm VM CMD...        run CMD in the VM's namespace         (lab.sh vm vm1 ping -c1 10.0.0.2)
#   ofctl HOST ARGS...  ovs-ofctl -O OpenFlow13 against HOST   (lab.sh ofctl host1 dump-flows br-int)
#   vsctl HOST ARGS...  ovs-vsctl against HOST's database      (lab.sh vsctl host1 show)
#   appctl HOST ARGS... ovs-appctl against HOST's ovs-vswitchd (lab.sh appctl host1 tnl/neigh/show)
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
# The resolved target is kept in /tmp/loom-lab/HOST/controller.
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
LAB_UNDERLAY_NS=loom-underlay
LAB_UNDERLAY_MTU=1600   # room for VXLAN's 50 bytes: VMs keep MTU 1500
LAB_TUNNEL_OFPORT=1000
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
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $LAB_PACKAGES ||
            { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $LAB_PACKAGES; } ||
            _lab_die "could not install $LAB_PACKAGES" || return 1
        break
    done
}

_lab_need_host() { [ -S "$LAB_ROOT/$1/db.sock" ] || _lab_die "no host '$1' (is the lab up? see: lab.sh status)"; }

lab_vsctl() { _lab_need_host "$1" || return 1; local h=$1; shift; ovs-vsctl --timeout=10 --db="unix:$LAB_ROOT/$h/db.sock" "$@"; }
lab_ofctl() { _lab_need_host "$1" || return 1; local h=$1; shift; OVS_RUNDIR="$LAB_ROOT/$h" ovs-ofctl -O OpenFlow13 "$@"; }
lab_appctl() { _lab_need_host "$1" || return 1; local h=$1; shift; ovs-appctl --timeout=10 -t "$LAB_ROOT/$h/ovs-vswitchd.ctl" "$@"; }
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

# _lab_underlay_ip N / _lab_underlay_mac N: host N's underlay address (br-phy) and br-phy's MAC.
_lab_underlay_ip()  { echo "10.200.0.$1"; }
_lab_underlay_mac() { printf '02:00:0a:c8:00:%02x' "$1"; }

# _lab_host_up HOST N CONTROLLER UNDERLAY NOBRIDGE: start host HOST (number N) with its bridges
# and controller. UNDERLAY=1 adds br-phy (and vxlan0 on br-int); NOBRIDGE=1 leaves out br-int.
_lab_host_up() {
    local h=$1 n=$2 ul=$4 nobr=$5 d=$LAB_ROOT/$1 target args=()
    mkdir -p "$d" && _lab_netns "loom-$h" || return 1
    ovsdb-tool create "$d/conf.db" "$LAB_SCHEMA" || return 1
    _lab_daemon "$h" ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" || return 1
    lab_vsctl "$h" --no-wait init || return 1
    _lab_daemon "$h" ovs-vswitchd "unix:$d/db.sock" || return 1
    target=$(_lab_target "$h" "$n" "$3") || return 1
    echo "${target:-none}" >"$d/controller"
    if [ "$nobr" != 1 ]; then
        args=(add-br br-int -- set bridge br-int datapath_type=netdev protocols=OpenFlow13 fail_mode=secure
              other-config:datapath-id="$(printf %016x "$n")" other-config:disable-in-band=true)
        if [ -n "$target" ]; then   # in the same transaction: adding a first controller later flushes flows
            args+=(-- --id=@c create controller target="\"$target\"" max_backoff=1000
                   -- set bridge br-int controller=@c)
        fi
        if [ "$ul" = 1 ]; then
            args+=(-- add-port br-int vxlan0 -- set interface vxlan0 type=vxlan
                   "ofport_request=$LAB_TUNNEL_OFPORT" options:remote_ip=flow options:key=flow
                   options:local_ip="$(_lab_underlay_ip "$n")")
        fi
    fi
    if [ "$ul" = 1 ]; then
        [ ${#args[@]} -gt 0 ] && args+=(--)
        args+=(add-br br-phy -- set bridge br-phy datapath_type=netdev
               other-config:hwaddr="$(_lab_underlay_mac "$n")")
    fi
    if [ ${#args[@]} -gt 0 ]; then
        lab_vsctl "$h" "${args[@]}" >/dev/null || return 1   # (it prints the new controller's UUID)
    fi
    if [ "$ul" = 1 ]; then
        _lab_underlay_ip "$n" >"$d/underlay" && _lab_underlay_attach "$h" "$n" || return 1
    fi
}

# _lab_underlay_attach HOST N: plug HOST's br-phy into the underlay segment (Linux bridge ul-br
# in namespace loom-underlay, made on first use) through veth ul0 (HOST) <-> HOST (underlay),
# and give br-phy its address. vswitchd reads the route to 10.200.0.0/24 from its namespace.
_lab_underlay_attach() {
    local h=$1 n=$2 u=$LAB_UNDERLAY_NS
    if [ ! -e "/run/netns/$u" ]; then
        _lab_netns "$u" && ip -n "$u" link add name ul-br mtu "$LAB_UNDERLAY_MTU" type bridge &&
            ip -n "$u" link set dev ul-br up || return 1
    fi
    ip -n "loom-$h" link add name ul0 mtu "$LAB_UNDERLAY_MTU" type veth \
        peer name "$h" mtu "$LAB_UNDERLAY_MTU" netns "$u" &&
        ip -n "$u" link set dev "$h" master ul-br up && ip -n "loom-$h" link set dev ul0 up &&
        lab_vsctl "$h" add-port br-phy ul0 &&
        ip -n "loom-$h" link set dev br-phy mtu "$LAB_UNDERLAY_MTU" up &&
        ip -n "loom-$h" addr add "$(_lab_underlay_ip "$n")/24" dev br-phy
}

# _lab_underlay_seed N: seed the tunnel neighbour caches of hosts 1..N with each other's br-phy
# MAC: with an empty cache OVS drops the first packet to a VTEP while it ARPs for it. Entries age
# out after 900 s and are then learned by ARP as usual.
_lab_underlay_seed() {
    local a b
    for ((a = 1; a <= $1; a++)); do
        for ((b = 1; b <= $1; b++)); do
            [ $a = $b ] && continue
            lab_appctl "host$a" tnl/neigh/set br-phy "$(_lab_underlay_ip $b)" "$(_lab_underlay_mac $b)" >/dev/null ||
                return 1
        done
    done
}

# _lab_trunk A B: link hosts A and B with a veth pair, a br-int port on each side.
_lab_trunk() {
    ip -n "loom-$1" link add name "to-$2" type veth peer name "to-$1" netns "loom-$2" &&
        ip -n "loom-$1" link set dev "to-$2" up && ip -n "loom-$2" link set dev "to-$1" up &&
        lab_vsctl "$1" add-port br-int "to-$2" && lab_vsctl "$2" add-port br-int "to-$1"
}

# _lab_vm_add HOST VM MAC IP/LEN [IFACE-ID]: create a VM on HOST and record it in $LAB_ROOT/vms.
_lab_vm_add() {
    local h=$1 vm=$2 mac=$3 cidr=$4 id=${5:-$2} port i
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
    lab_vsctl "$h" add-port br-int "$vm" -- set interface "$vm" external_ids:iface-id="$id" \
        external_ids:attached-mac="$mac" || return 1
    for ((i = 0; i < 100; i++)); do   # vswitchd assigns the OpenFlow port number
        port=$(lab_vsctl "$h" get interface "$vm" ofport) || return 1
        [ "${port:-0}" -gt 0 ] 2>/dev/null && break
        sleep 0.05
    done
    echo "$vm $h $mac ${cidr%/*} $port" >>"$LAB_ROOT/vms"
}

# lab_vm_add HOST VM MAC IP/LEN [IFACE-ID]: the vm-add command (checks its arguments).
lab_vm_add() {
    if [ $# -lt 4 ] || [ $# -gt 5 ]; then _lab_die "usage: vm-add HOST VM MAC IP/LEN [IFACE-ID]"; return 2; fi
    local h=$1 vm=$2
    _lab_need_host "$h" || return 1
    [[ $vm =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$ ]] ||
        { _lab_die "vm-add: VM name '$vm': 1-15 letters, digits, '.', '_' or '-'"; return 2; }
    [[ $3 =~ ^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$ ]] || { _lab_die "vm-add: bad MAC '$3'"; return 2; }
    [[ $4 =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] || { _lab_die "vm-add: want IP/LEN, not '$4'"; return 2; }
    [ -e "/run/netns/loom-$vm" ] && { _lab_die "vm-add: namespace loom-$vm exists already"; return 1; }
    lab_vsctl "$h" br-exists br-int ||
        { _lab_die "vm-add: $h has no br-int (yet): with up --no-bridge, the controller creates it"; return 1; }
    _lab_vm_add "$@" || { _lab_die "vm-add: $vm failed; removing it"; _lab_vm_del "$vm"; return 1; }
    awk -v vm="$vm" '$1 == vm {print "  " $1 " on " $2 ", ofport " $5}' "$LAB_ROOT/vms"
}

# _lab_vm_del VM: unplug VM (if plugged), delete its namespace (and so its veth pair), forget it.
_lab_vm_del() {
    local vm=$1 h hosts
    hosts=$(awk -v vm="$vm" '$1 == vm {print $2}' "$LAB_ROOT/vms" 2>/dev/null)
    [ -n "$hosts" ] || hosts=$(ls "$LAB_ROOT")   # a half-made VM is not recorded yet
    for h in $hosts; do
        [ -S "$LAB_ROOT/$h/db.sock" ] && lab_vsctl "$h" --if-exists del-port br-int "$vm" 2>/dev/null
    done
    ip netns del "loom-$vm" 2>/dev/null
    if [ -f "$LAB_ROOT/vms" ]; then
        awk -v vm="$vm" '$1 != vm' "$LAB_ROOT/vms" >"$LAB_ROOT/vms.new" && mv "$LAB_ROOT/vms.new" "$LAB_ROOT/vms"
    fi
}

lab_vm_del() {
    [ $# = 1 ] || { _lab_die "usage: vm-del VM"; return 2; }
    if ! awk -v vm="$1" '$1 == vm {f = 1} END {exit !f}' "$LAB_ROOT/vms" 2>/dev/null; then
        _lab_die "no VM '$1'"; return 1
    fi
    _lab_vm_del "$1"
}

lab_up() {
    local hosts=1 per="" ctl=tcp:auto:6653 ul=0 nobr=0 h i k=0
    while [ $# -gt 0 ]; do
        case $1 in
            --hosts) hosts=$2; shift 2 ;;
            --vms-per-host) per=$2; shift 2 ;;
            --controller) ctl=$2; shift 2 ;;
            --underlay) ul=1; shift ;;
            --no-bridge) nobr=1; shift ;;
            *) _lab_die "up: unknown argument '$1' (see: lab.sh help)"; return 2 ;;
        esac
    done
    if [ -z "$per" ]; then per=3; [ $nobr = 1 ] && per=0; fi
    if ! [[ $hosts =~ ^[0-9]+$ && $per =~ ^[0-9]+$ ]] || [ "$hosts" -lt 1 ] || [ "$hosts" -gt 127 ] ||
        [ $((hosts * per)) -gt 254 ]; then
        _lab_die "up: want 1-127 hosts and at most 254 VMs"; return 2
    fi
    [ $nobr = 1 ] && [ "$per" -gt 0 ] && { _lab_die "up: --no-bridge has no br-int to plug VMs into (use --vms-per-host 0, then vm-add)"; return 2; }
    _lab_need_root && _lab_need_tools || return 1
    [ -e "$LAB_ROOT" ] && { _lab_die "a lab is already up ($LAB_ROOT exists); run: lab.sh down"; return 1; }
    if [ $ul = 1 ] && [ -e "/run/netns/$LAB_UNDERLAY_NS" ]; then
        _lab_die "namespace $LAB_UNDERLAY_NS exists already; run: lab.sh down"; return 1
    fi
    mkdir -p "$LAB_ROOT" && : >"$LAB_ROOT/vms" || return 1
    for ((h = 1; h <= hosts; h++)); do
        _lab_host_up "host$h" "$h" "$ctl" "$ul" "$nobr" || { _lab_die "host$h failed; cleaning up"; lab_down; return 1; }
    done
    if [ $ul = 1 ]; then
        _lab_underlay_seed "$hosts" || { _lab_die "underlay failed; cleaning up"; lab_down; return 1; }
    fi
    if [ $nobr = 0 ]; then
        for ((h = 1; h < hosts; h++)); do
            _lab_trunk "host$h" "host$((h + 1))" || { _lab_die "trunk failed; cleaning up"; lab_down; return 1; }
        done
    fi
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
    local vms=() ips=() vm ip s d cell fail=0 n w=6
    while read -r vm _ _ ip _; do vms+=("$vm"); ips+=("$ip"); [ ${#vm} -ge $w ] && w=$((${#vm} + 1)); done <"$LAB_ROOT/vms"
    n=${#vms[@]}
    printf "%-$((w > 7 ? w : 8))s" 'from\to'; printf "%-${w}s" "${vms[@]}"; echo
    for ((s = 0; s < n; s++)); do
        printf "%-$((w > 7 ? w : 8))s" "${vms[s]}"
        for ((d = 0; d < n; d++)); do
            if [ $s = $d ]; then cell=-
            elif ip netns exec "loom-${vms[s]}" ping -n -q -c1 -W2 "${ips[d]}" >/dev/null 2>&1; then cell=ok
            else cell=FAIL; fail=$((fail + 1)); fi
            printf "%-${w}s" "$cell"
        done
        echo
    done
    echo "$((n * (n - 1) - fail))/$((n * (n - 1))) pings answered"
    [ $fail = 0 ]
}

lab_status() {
    [ -d "$LAB_ROOT" ] || { echo "no lab is up"; return 0; }
    local d h prog pid state ctl conn dpid ul vm mac ip port w
    for d in "$LAB_ROOT"/*/; do
        h=$(basename "$d") state=""
        [ -e "$d/conf.db" ] || continue
        for prog in ovsdb-server ovs-vswitchd; do
            pid=$(cat "$d/$prog.pid" 2>/dev/null)
            if [ -n "$pid" ] && [ -e "/proc/$pid" ]; then state+=" $prog=$pid"; else state+=" $prog=DOWN"; fi
        done
        if lab_vsctl "$h" br-exists br-int 2>/dev/null; then
            dpid=$(lab_vsctl "$h" get bridge br-int datapath_id 2>/dev/null | tr -d '"')
            dpid="br-int dpid ${dpid:-none}"
        else
            dpid="no br-int"
        fi
        ul=$(cat "$d/underlay" 2>/dev/null)
        echo "$h: netns loom-$h, $dpid${ul:+, underlay $ul on br-phy},$state"
        ctl=$(lab_vsctl "$h" --bare --columns=target list controller 2>/dev/null)
        conn=$(lab_vsctl "$h" --bare --columns=is_connected list controller 2>/dev/null)
        if [ -n "$ctl" ]; then
            echo "    controller: $ctl (is_connected: $conn; OVSDB lags up to 5 s)"
        else
            echo "    controller: none yet (the lab's target: $(cat "$d/controller" 2>/dev/null))"
        fi
    done
    if [ -s "$LAB_ROOT/vms" ]; then
        w=$(awk 'length($1) >= w {w = length($1) + 1} END {print w}' w=7 "$LAB_ROOT/vms")
        printf "%-${w}s %-8s %-18s %-11s %s\n" VM HOST MAC IP OFPORT
        while read -r vm h mac ip port; do
            printf "%-${w}s %-8s %-18s %-11s %s\n" "$vm" "$h" "$mac" "$ip" "$port"
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
        vm-add) lab_vm_add "$@" ;;
        vm-del) lab_vm_del "$@" ;;
        appctl) lab_appctl "$@" ;;
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
