#!/usr/bin/env bash
# Loom and its peers, side by side, in one run (make bench-peers).
#
# For each controller in turn — the do-nothing ceiling built into loombench,
# Loom (loomd --apps l2switch), os-ken running the classic simple_switch_13
# (examples/bench/simple_switch_13.py) and ovs-testcontroller — start it,
# run loombench throughput (SWITCHES x MACS, unbuffered by default) and
# latency (LAT_SWITCHES switch, one PACKET_IN in flight), stop it, then print
# one table with the ratios of Loom to each peer. Every controller runs on
# the same machine as loombench: the figures are for comparison, not
# absolutes (see cmd/loombench's package doc).
#
# Environment (defaults in brackets):
#   SWITCHES [16] MACS [1000] LOOPS [3] DURATION [5s] WARMUP [2s] WINDOW [64]
#   BUFFERED [0]          1: buffered PACKET_INs (cbench's tradition)
#   LAT_SWITCHES [1] LAT_LOOPS [$LOOPS] LAT_DURATION [$DURATION]
#   PEERS ["ceiling loom osken ovs"]   which controllers to run, in order
#   BASE_PORT [16650]     OpenFlow ports BASE_PORT..BASE_PORT+3, Loom's API on BASE_PORT+10
#   KEEP=1                keep the work directory (logs and JSON results)
#
# Installs python3-os-ken and openvswitch-testcontroller when missing (root).
# Every process it starts is stopped on exit, and its work directory removed.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

SWITCHES=${SWITCHES:-16} MACS=${MACS:-1000} LOOPS=${LOOPS:-3} DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-2s} WINDOW=${WINDOW:-64} BUFFERED=${BUFFERED:-0}
LAT_SWITCHES=${LAT_SWITCHES:-1} LAT_LOOPS=${LAT_LOOPS:-$LOOPS} LAT_DURATION=${LAT_DURATION:-$DURATION}
PEERS=${PEERS:-"ceiling loom osken ovs"} BASE_PORT=${BASE_PORT:-16650} KEEP=${KEEP:-0}
GO=${GO:-go}

WORK=$(mktemp -d /tmp/loom-bench.XXXXXX)
PID=""
MADE_OVS_RUNDIR=""

stop() { # stop the running controller, TERM then KILL
	[ -n "$PID" ] || return 0
	if kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$PID" 2>/dev/null || true
	fi
	wait "$PID" 2>/dev/null || true
	PID=""
}
cleanup() {
	stop
	[ -z "$MADE_OVS_RUNDIR" ] || rmdir "$MADE_OVS_RUNDIR" 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Peers, when missing.
missing=""
command -v osken-manager >/dev/null 2>&1 || [ -x /usr/bin/osken-manager ] || missing="$missing python3-os-ken"
command -v ovs-testcontroller >/dev/null 2>&1 || missing="$missing openvswitch-testcontroller"
if [ -n "$missing" ]; then
	echo "installing:$missing"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -q $missing ||
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -q $missing; }
fi
if [ ! -d /var/run/openvswitch ]; then # ovs-testcontroller exits without it
	mkdir -p /var/run/openvswitch && MADE_OVS_RUNDIR=/var/run/openvswitch
fi

echo "building loomd and loombench"
$GO build -o "$WORK/bin/" ./cmd/loomd ./cmd/loombench
LB=$WORK/bin/loombench
buffered=""
[ "$BUFFERED" = 1 ] && buffered="--buffered"

port_of() { case $1 in ceiling) echo $((BASE_PORT));; loom) echo $((BASE_PORT + 1));; osken) echo $((BASE_PORT + 2));; ovs) echo $((BASE_PORT + 3));; esac; }

start() { # start controller $1 listening on port $2, output in $WORK/$1.log
	local log=$WORK/$1.log
	case $1 in
	ceiling) "$LB" ceiling --listen "tcp:127.0.0.1:$2" >"$log" 2>&1 & ;;
	loom)
		mkdir -p "$WORK/loom-data"
		"$WORK/bin/loomd" --apps l2switch --openflow-listen "tcp:127.0.0.1:$2" \
			--api-listen "127.0.0.1:$((BASE_PORT + 10))" --data-dir "$WORK/loom-data" \
			--packet-in-rate 0 >"$log" 2>&1 & ;;
	osken) /usr/bin/osken-manager --ofp-tcp-listen-port "$2" "$ROOT/examples/bench/simple_switch_13.py" >"$log" 2>&1 & ;;
	ovs) ovs-testcontroller -O OpenFlow13 "ptcp:$2:127.0.0.1" >"$log" 2>&1 & ;;
	esac
	PID=$!
}

bench() { # name port mode out.json: loombench's progress lines go to the console
	local n=$1 port=$2 mode=$3 out=$4
	if [ "$mode" = throughput ]; then
		set -- --switches "$SWITCHES" --loops "$LOOPS" --duration "$DURATION"
	else
		set -- --switches "$LAT_SWITCHES" --loops "$LAT_LOOPS" --duration "$LAT_DURATION"
	fi
	"$LB" --controller "tcp:127.0.0.1:$port" --mode "$mode" --macs "$MACS" --window "$WINDOW" \
		--warmup "$WARMUP" --connect-timeout 30s $buffered --json "$@" >"$out" 2>"$out.log" ||
		{ echo "  $n $mode: loombench failed: $(tail -1 "$out.log")"; rm -f "$out"; }
	sed "s/^/  [$n] /" "$out.log"
}

for n in $PEERS; do
	port=$(port_of "$n")
	[ -n "$port" ] || { echo "unknown peer $n (want ceiling, loom, osken or ovs)"; exit 2; }
	echo "== $n (port $port)"
	start "$n" "$port"
	bench "$n" "$port" throughput "$WORK/$n-tp.json"
	bench "$n" "$port" latency "$WORK/$n-lat.json"
	note=""
	kill -0 "$PID" 2>/dev/null || note="controller exited during the run"
	if [ "$n" = loom ] && [ -z "$note" ]; then
		curl -sf "127.0.0.1:$((BASE_PORT + 10))/metrics" >"$WORK/loom.metrics" || true
	fi
	stop
	echo "$note" >"$WORK/$n.note"
done

# Anomalies worth a line: lost PACKET_INs, errors, disconnects (from
# loombench), loomd's warnings and errors and its drop/error/panic counters.
anomalies() {
	local n=$1 f out=()
	for f in "$WORK/$n-tp.json" "$WORK/$n-lat.json"; do
		[ -s "$f" ] || { out+=("no result from $(basename "$f" .json)"); continue; }
		out+=("$(jq -r '[ (if .packet_ins_lost > 0 then "\(.packet_ins_lost) lost" else empty end),
			(if .errors_from_controller > 0 then "\(.errors_from_controller) OFPT_ERRORs" else empty end),
			(if (.disconnects // []) | length > 0 then "\(.disconnects | length) disconnects" else empty end) ] | join(", ")' "$f")")
	done
	[ ! -s "$WORK/$n.note" ] || out+=("$(cat "$WORK/$n.note")")
	if [ "$n" = loom ]; then
		local warn
		warn=$(grep -cE 'level=(WARN|ERROR)' "$WORK/loom.log" || true)
		[ "$warn" = 0 ] || out+=("$warn WARN/ERROR log lines")
		if [ -s "$WORK/loom.metrics" ]; then
			out+=("$(awk '/^loom_(packet_ins_dropped_total|openflow_errors_total|switch_panics_total) / && $2 > 0 {printf "%s=%s ", $1, $2}' "$WORK/loom.metrics")")
		fi
	fi
	local s
	s=$(printf '%s; ' "${out[@]}" | sed -E 's/(; )+/; /g; s/^; //; s/; $//')
	echo "${s:-none}"
}

echo
echo "Throughput: $SWITCHES switches x $MACS MACs, window $WINDOW, $([ "$BUFFERED" = 1 ] && echo buffered || echo unbuffered), $LOOPS x $DURATION after $WARMUP warm-up; latency: $LAT_SWITCHES switch, one PACKET_IN in flight"
echo "answered/s: PACKET_INs answered per second (avg over loops); responses/s: FLOW_MODs + PACKET_OUTs per second (cbench's count)"
printf '%-20s %14s %14s %12s %10s %10s  %s\n' controller answered/s responses/s "resp/pkt-in" "p50 µs" "p99 µs" anomalies
declare -A ANS RESP P50
for n in $PEERS; do
	name=$(case $n in ceiling) echo "ceiling (no-op Go)";; loom) echo Loom;; osken) echo "os-ken simple_sw13";; ovs) echo ovs-testcontroller;; esac)
	a=- r=- rp=- p50=- p99=-
	if [ -s "$WORK/$n-tp.json" ]; then
		read -r a r rp < <(jq -r '[.answered_per_s.avg, .responses_per_s.avg] | "\(.[0]|floor) \(.[1]|floor) \(if .[0] > 0 then (.[1]/.[0]*100|round/100) else "-" end)"' "$WORK/$n-tp.json")
	fi
	if [ -s "$WORK/$n-lat.json" ]; then
		read -r p50 p99 < <(jq -r 'if .latency then "\(.latency.p50_us*10|round/10) \(.latency.p99_us*10|round/10)" else "- -" end' "$WORK/$n-lat.json")
	fi
	ANS[$n]=$a RESP[$n]=$r P50[$n]=$p50
	printf '%-20s %14s %14s %12s %10s %10s  %s\n' "$name" "$a" "$r" "$rp" "$p50" "$p99" "$(anomalies "$n")"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
if [[ " $PEERS " == *" loom "* ]]; then
	echo
	printf '%-28s %12s %12s %14s\n' "Loom / peer" answered/s responses/s "p50 latency"
	for n in osken ovs ceiling; do
		[[ " $PEERS " == *" $n "* ]] || continue
		label=$(case $n in osken) echo "Loom / os-ken";; ovs) echo "Loom / ovs-testcontroller";; ceiling) echo "Loom / ceiling";; esac)
		printf '%-28s %12s %12s %14s\n' "$label" "$(ratio "${ANS[loom]}" "${ANS[$n]}")" \
			"$(ratio "${RESP[loom]}" "${RESP[$n]}")" "$(ratio "${P50[loom]}" "${P50[$n]}")"
	done
	echo "(throughput ratios above 1 and latency ratios below 1 favour Loom)"
fi
