package loomd

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loom-sdn/loom/cluster"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/northbound/restapi"
	"github.com/loom-sdn/loom/view"
	"github.com/prometheus/client_golang/prometheus"
)

// Replicas on etcd (--store etcd:...): two sets of elections, each in
// package cluster. Switch elections decide which replica is each
// switch's OpenFlow master (candidates: the replicas the switch is
// connected to); host elections decide which replica manages each host's
// OVSDB (candidates: every replica, for every host of the model). Both
// rank replicas by the bridge's datapath id, so a host's manager is, as
// a rule, its switch's master too: the one that flushes conntrack zones
// it hands out (on the switch it is master of).

// switchMastership is the controller's Mastership: a switch that
// connects makes this replica a candidate; the elections' answers go to
// the controller (SetRole).
type switchMastership struct {
	c   *cluster.Cluster
	log *slog.Logger
}

func (m switchMastership) Connected(dpid uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.c.Campaign(ctx, dpid); err != nil {
		m.log.Warn("cannot campaign for a switch's mastership", "dpid", dpid, "error", err)
	}
}

func (m switchMastership) Disconnected(dpid uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.c.Withdraw(ctx, dpid); err != nil {
		m.log.Warn("cannot withdraw from a switch's election", "dpid", dpid, "error", err)
	}
}

// toController hands the elections' roles to the controller once it
// exists.
func toController(ctl *atomic.Pointer[controller.Controller]) func(uint64, cluster.Role) {
	return func(dpid uint64, r cluster.Role) {
		if c := ctl.Load(); c != nil {
			c.SetRole(dpid, controller.Role{Master: r.Master, Generation: r.Generation, MasterID: r.MasterID})
		}
	}
}

// hostElections decides which hosts this replica manages (hostLeader).
type hostElections struct {
	c       *cluster.Cluster
	log     *slog.Logger
	changed chan struct{}

	mu   sync.Mutex
	want map[uint64]bool // the hosts' datapath ids campaigned for
}

func newHostElections(log *slog.Logger) *hostElections {
	return &hostElections{log: log, changed: make(chan struct{}, 1), want: map[uint64]bool{}}
}

// onRole is the host cluster's OnRole: a host changed hands.
func (h *hostElections) onRole(uint64, cluster.Role) {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// Manages tells whether this replica manages host.
func (h *hostElections) Manages(host *model.Host) bool { return h.c.Role(view.DatapathID(host)).Master }

// Changed is poked when a host changes hands.
func (h *hostElections) Changed() <-chan struct{} { return h.changed }

// Want makes this replica a candidate for exactly these hosts.
func (h *hostElections) Want(hosts []*model.Host) {
	next := make(map[uint64]bool, len(hosts))
	for _, host := range hosts {
		next[view.DatapathID(host)] = true
	}
	h.mu.Lock()
	var add, drop []uint64
	for d := range next {
		if !h.want[d] {
			add = append(add, d)
		}
	}
	for d := range h.want {
		if !next[d] {
			drop = append(drop, d)
		}
	}
	h.want = next
	h.mu.Unlock()
	if len(add)+len(drop) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, d := range add {
			if err := h.c.Campaign(ctx, d); err != nil {
				h.log.Warn("cannot campaign to manage a host", "dpid", d, "error", err)
			}
		}
		for _, d := range drop {
			h.c.Withdraw(ctx, d)
		}
	}()
}

// clusterInfo is GET /cluster from the two sets of elections.
type clusterInfo struct{ switches, hosts *cluster.Cluster }

func (ci clusterInfo) Cluster() restapi.Cluster {
	out := restapi.Cluster{Self: ci.switches.ID(), Replicas: []restapi.Replica{}}
	hosts := map[string]int{}
	for _, m := range ci.hosts.Members() {
		hosts[m.ID] = m.Master
	}
	for _, m := range ci.switches.Members() {
		out.Replicas = append(out.Replicas, restapi.Replica{ID: m.ID, Address: m.Address, Lease: fmt.Sprintf("%x", m.Lease),
			Switches: m.Candidate, Masters: m.Master, Hosts: hosts[m.ID]})
	}
	return out
}

// registerClusterMetrics exports the elections' counts.
func registerClusterMetrics(reg prometheus.Registerer, switches, hosts *cluster.Cluster) {
	for _, c := range []struct {
		name, help string
		of         func(cluster.Stats) int64
	}{
		{"role_changes_total", "Changes of this replica's role in an election.", func(s cluster.Stats) int64 { return s.RoleChanges }},
		{"handovers_total", "Elections this replica handed to the preferred replica (balance).", func(s cluster.Stats) int64 { return s.HandOvers }},
		{"lease_losses_total", "Times this replica stopped being master everywhere: keep-alives unanswered or its lease lost.", func(s cluster.Stats) int64 { return s.LeaseLosses }},
	} {
		for kind, cl := range map[string]*cluster.Cluster{"switch": switches, "host": hosts} {
			of, cl := c.of, cl
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "loom", Subsystem: "cluster", Name: c.name,
				Help: c.help, ConstLabels: prometheus.Labels{"election": kind}}, func() float64 { return float64(of(cl.Stats())) }))
		}
	}
}
