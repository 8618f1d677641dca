package controller

import (
	"errors"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	switches           prometheus.Gauge
	packetIns          prometheus.Counter
	packetInsDropped   prometheus.Counter
	packetOuts         prometheus.Counter
	errors             prometheus.Counter
	panics             prometheus.Counter
	flowMods           [flow.CmdDeleteStrict + 1]prometheus.Counter
	reconciles         prometheus.Counter
	roleChanges        *prometheus.CounterVec
	staleRoleRequests  prometheus.Counter
	reconcileSeconds   prometheus.Histogram
	sessionsClosed     *prometheus.CounterVec
	echoRepliesDropped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "loom"
	m := &metrics{
		switches: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "switches_connected",
			Help: "OpenFlow switches connected now."}),
		packetIns: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "packet_ins_total",
			Help: "PACKET_IN messages handled."}),
		packetInsDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "packet_ins_dropped_total",
			Help: "PACKET_IN messages dropped because their switch's queue was full."}),
		packetOuts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "packet_outs_total",
			Help: "PACKET_OUT messages sent."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "openflow_errors_total",
			Help: "OFPT_ERROR messages received from switches."}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "switch_panics_total",
			Help: "Panics while handling a switch's messages (each closed that switch's session)."}),
		roleChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "role_changes_total",
			Help: "Switches this controller became master or slave of (several controllers, OpenFlow roles)."}, []string{"role"}),
		staleRoleRequests: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "stale_role_requests_total",
			Help: "Role requests a switch refused as stale (another controller holds a newer generation)."}),
		reconciles: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "reconciles_total",
			Help: "Full reconciliations of a switch (on connect and audits)."}),
		reconcileSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "reconcile_seconds",
			Help: "Time to dump, diff and repair one switch, confirmed by barrier.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}),
		sessionsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "openflow_sessions_closed_total",
			Help: "OpenFlow connections closed or refused by policy, by reason (queue_overflow, max_conns, max_conns_per_source, duplicate_dpid, cert_dpid_mismatch)."},
			[]string{"reason"}),
		echoRepliesDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "openflow_echo_replies_dropped_total",
			Help: "ECHO_REPLY messages not queued because the switch was not reading (one was already waiting, or its write queue was long)."}),
	}
	fm := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "flow_mods_total",
		Help: "FLOW_MOD messages sent, by command."}, []string{"command"})
	for cmd, name := range []string{"add", "modify", "modify_strict", "delete", "delete_strict"} {
		m.flowMods[cmd] = fm.WithLabelValues(name)
	}
	if reg != nil {
		reg.MustRegister(m.switches, m.packetIns, m.packetInsDropped, m.packetOuts, m.errors, m.panics, fm, m.reconciles, m.reconcileSeconds, m.sessionsClosed, m.echoRepliesDropped, m.roleChanges, m.staleRoleRequests)
	}
	return m
}

// RegisterCollector registers an app's collector with reg (nil: none),
// or returns the one already registered under the same description (two
// controllers in one process, as in tests, share it).
func RegisterCollector[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return c, err
		}
		existing, ok := are.ExistingCollector.(C)
		if !ok {
			return c, err
		}
		return existing, nil
	}
	return c, nil
}

// CompileHistogram registers (or finds) the histogram of an app's time to
// compute one switch's state: loom_<app>_compile_seconds.
func CompileHistogram(reg prometheus.Registerer, app, what string) (prometheus.Histogram, error) {
	return RegisterCollector(reg, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "loom_" + app + "_compile_seconds",
		Help: "Time to compute one switch's " + what + ".", Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10)}))
}
