package loomd

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/loom-sdn/loom/apps/loadbalancer"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/northbound"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/ovsdb"
	"github.com/loom-sdn/loom/topology"
	"github.com/loom-sdn/loom/view"
)

// declareEndpoints keeps the topology's declared endpoints (source
// "model") equal to the model's ports, MACs and IPs: level-triggered, so a
// lost event (a gap) costs nothing but a re-read.
func declareEndpoints(ctx context.Context, svc *model.Service, topo *topology.Graph, log *slog.Logger) {
	sub := svc.Subscribe(1024)
	defer sub.Close()
	declared := map[topology.MAC][]netip.Addr{}
	sync := func() {
		want := map[topology.MAC][]netip.Addr{}
		for _, p := range svc.Snapshot().Ports.All() {
			mac, err := topology.ParseMAC(p.MAC)
			if err != nil {
				continue
			}
			var ips []netip.Addr
			for _, s := range p.IPs {
				if ip, err := netip.ParseAddr(s); err == nil {
					ips = append(ips, ip)
				}
			}
			want[mac] = ips
		}
		for mac, ips := range want {
			if old, ok := declared[mac]; ok && slices.Equal(old, ips) {
				continue
			}
			if err := topo.SetEndpoint(topology.Endpoint{MAC: mac, IPs: ips, Source: "model"}); err != nil {
				log.Warn("cannot declare endpoint", "mac", mac, "error", err)
			}
		}
		for mac := range declared {
			if _, ok := want[mac]; !ok {
				topo.DeleteEndpoint(mac, "model")
			}
		}
		declared = want
	}
	followModel(ctx, sub, model.KindPort, sync)
}

// manageHosts keeps the OVSDB manager's hosts equal to the model's, with
// the model's mirrors and flow exports, and their conntrack zones:
// level-triggered like declareEndpoints.
//
// It is the one writer of zones. A host's zone users are what it serves
// in the view (kit.ZoneUsers); once the host's agent has reported the
// zones its bridge holds (OnZones -> the view), they are the starting
// point: existing users keep their numbers, new ones get the lowest free,
// and the agent writes the result to the bridge and reports it back to
// the view, where the apps find it. Until that first report the host's
// zones are left alone, so a restarted loomd finds and keeps the zones
// of the one before (no conntrack entry orphaned by an upgrade).
//
// A zone number that changes hands is flushed on the host's switch
// before the agent writes it (flush): the new user must not meet the
// connections its last user left there. Until the switch has confirmed
// the flush (it may not be connected yet) the new user gets no zone,
// and the flush is tried again a second later.
func manageHosts(ctx context.Context, svc *model.Service, mgr *ovsdb.Manager, v *view.View, flush zoneFlusher, lead hostLeader, log *slog.Logger) {
	sub := svc.Subscribe(1024)
	defer sub.Close()
	managed := map[string]ovsdb.HostConfig{}
	assigned := map[string]map[string]uint16{} // zones by host, once the host has reported its own
	var mu sync.Mutex                          // sync runs on model changes and on binding changes
	retrying := false                          // a sync is due to flush zones held back
	var sync func()
	sync = func() {
		mu.Lock()
		defer mu.Unlock()
		want := map[string]ovsdb.HostConfig{}
		held := false
		snap, vs := svc.Snapshot(), v.Snapshot()
		if lead != nil {
			var all []*model.Host
			for _, h := range snap.Hosts.All() {
				all = append(all, h)
			}
			lead.Want(all)
		}
		for _, h := range snap.Hosts.All() {
			cfg := ovsdb.HostConfig{Name: h.Name, Address: h.OVSDB, Bridge: h.Bridge, DatapathType: h.DatapathType,
				Controller: h.Controller, VTEPIP: h.VTEPIP, Uplink: h.Uplink, DatapathID: view.DatapathID(h),
				Mirrors: mirrorConfigs(snap, vs, h.Name)}
			cfg.SFlow, cfg.IPFIX, cfg.NetFlow = exportConfigs(snap, h.ID)
			if lead != nil && !lead.Manages(h) {
				// Another replica manages it: watch its bindings and the
				// zones its manager allocates, write nothing.
				cfg.Observe = true
				delete(assigned, h.Name)
				want[h.Name] = cfg
				continue
			}
			// Zones once the host has reported its own, and the view's
			// model (which may lag svc's at start) knows the host: an
			// empty view must not free them all.
			have, ok := assigned[h.Name]
			if !ok {
				have, ok = vs.Zones(h.Name)
			}
			if _, known := vs.Model.Hosts.ByName(h.Name); ok && known {
				zones, full := kit.AllocateZones(have, kit.ZoneUsers(vs, h.Name))
				if !full {
					log.Warn("out of conntrack zones: some users get none", "host", h.Name)
				}
				if fresh := freshZones(have, zones); len(fresh) > 0 {
					fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					err := flush(fctx, view.DatapathID(h), fresh...)
					cancel()
					if err != nil {
						held = true
						log.Debug("conntrack zones held back until their flush is confirmed", "host", h.Name, "zones", fresh, "error", err)
						zones = withoutFresh(have, zones)
					}
				}
				assigned[h.Name] = zones
				cfg.ManageZones, cfg.Zones = true, zones
			} else if ok {
				cfg.ManageZones, cfg.Zones = true, have
			}
			want[h.Name] = cfg
		}
		for name := range assigned {
			if _, ok := want[name]; !ok {
				delete(assigned, name)
			}
		}
		for name, cfg := range want {
			old, ok := managed[name]
			var err error
			switch {
			case !ok:
				err = mgr.Add(cfg)
			case !old.Equal(cfg):
				err = mgr.Update(cfg)
			}
			if err != nil {
				log.Warn("cannot manage host", "host", name, "error", err)
			}
		}
		for name := range managed {
			if _, ok := want[name]; !ok {
				if err := mgr.Remove(name); err != nil {
					log.Warn("cannot stop managing host", "host", name, "error", err)
				}
			}
		}
		managed = want
		if held && !retrying {
			retrying = true
			time.AfterFunc(time.Second, func() {
				mu.Lock()
				retrying = false
				mu.Unlock()
				if ctx.Err() == nil {
					sync()
				}
			})
		}
	}
	// Hosts, and what their agents apply besides: mirrors (their ports
	// by name, and where their analyzers are bound), flow exports and
	// zones (from bindings and the model the view shows).
	v.Follow(ctx, func(*view.Snapshot) { sync() })
	if lead != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-lead.Changed():
					sync()
				}
			}
		}()
	}
	followModel(ctx, sub, "", sync)
}

// feedView keeps the apps' view of the model current.
func feedView(ctx context.Context, svc *model.Service, v *view.View) {
	sub := svc.Subscribe(1024)
	defer sub.Close()
	followModel(ctx, sub, "", func() { v.SetModel(svc.Snapshot()) })
}

// bindView records OVSDB port bindings in the apps' view.
func bindView(v *view.View) func(ovsdb.BindingEvent) {
	return func(e ovsdb.BindingEvent) {
		if e.Type == ovsdb.BindingRemoved {
			v.Unbind(e.IfaceID, e.Host, e.Interface)
			return
		}
		if e.Type == ovsdb.BindingChanged {
			// The iface-id may have changed: drop the interface's
			// binding to any other port.
			for _, port := range v.Snapshot().PortsOf(e.Host, e.Interface) {
				if port != e.IfaceID {
					v.Unbind(port, e.Host, e.Interface)
				}
			}
		}
		v.Bind(view.Binding{Port: e.IfaceID, Host: e.Host, Interface: e.Interface, OFPort: uint32(e.OFPort),
			Up: e.AdminUp && e.LinkUp})
	}
}

// followModel runs sync now and again after every change of kind (any
// kind if kind is "") or a gap in the feed, until ctx ends. Level
// triggered: the events already queued are taken together, so a batch of
// 10,000 writes costs one sync, not 10,000.
func followModel(ctx context.Context, sub *events.Subscription, kind model.Kind, sync func()) {
	sync()
	relevant := func(e events.Event) bool {
		return kind == "" && e.Topic == model.Topic || e.Kind == string(kind) || e.Type == events.Gap
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.C:
			if !ok {
				return
			}
			due := relevant(e)
			for more := true; more; {
				select {
				case e, ok := <-sub.C:
					if !ok {
						return
					}
					due = due || relevant(e)
				default:
					more = false
				}
			}
			if due {
				sync()
			}
		}
	}
}

// publishBinding puts OVSDB port bindings on the change feed.
func publishBinding(bus *events.Bus) func(ovsdb.BindingEvent) {
	return func(e ovsdb.BindingEvent) {
		typ := map[ovsdb.BindingEventType]string{ovsdb.BindingAdded: "bound", ovsdb.BindingChanged: "changed",
			ovsdb.BindingRemoved: "unbound"}[e.Type]
		bus.Publish(events.Event{Topic: "port", Type: typ, Kind: "binding", ID: e.IfaceID, Object: e.Binding})
	}
}

// backendHealth hands the running load balancer app's backend health to
// the API (nil when the app does not run).
func backendHealth(ctl *controller.Controller) northbound.BackendHealth {
	lb, ok := ctl.App(loadbalancer.Name).(interface {
		BackendStatus(*model.LoadBalancer) []loadbalancer.Status
	})
	if !ok {
		return nil
	}
	return func(m *model.LoadBalancer) ([]northbound.BackendStatus, bool) {
		st := lb.BackendStatus(m)
		out := make([]northbound.BackendStatus, len(st))
		for i, s := range st {
			out[i] = northbound.BackendStatus(s)
		}
		return out, true
	}
}

// zoneFlusher flushes conntrack zones on a switch and returns once it
// confirmed (controller.Controller.FlushConntrackZones).
type zoneFlusher func(ctx context.Context, dpid uint64, zones ...uint16) error

// freshZones returns the numbers of zones that change hands: given to a
// user that did not hold them in have.
func freshZones(have, zones map[string]uint16) []uint16 {
	var fresh []uint16
	for u, z := range zones {
		if have[u] != z {
			fresh = append(fresh, z)
		}
	}
	slices.Sort(fresh)
	return fresh
}

// withoutFresh returns zones without the users whose number changes
// hands (freshZones).
func withoutFresh(have, zones map[string]uint16) map[string]uint16 {
	kept := make(map[string]uint16, len(zones))
	for u, z := range zones {
		if have[u] == z {
			kept[u] = z
		}
	}
	return kept
}

// hostLeader says which hosts this loomd manages when replicas share the
// model (hostElections); nil: it manages every host.
type hostLeader interface {
	// Want makes this replica a candidate for exactly these hosts.
	Want(hosts []*model.Host)
	// Manages tells whether it manages host now.
	Manages(host *model.Host) bool
	// Changed is poked when a host changes hands.
	Changed() <-chan struct{}
}
