package loadbalancer

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/view"
)

// Health checks. The switch of a backend's host probes it: a TCP SYN from
// VIP:64512-65535 (VIPMAC), sent by packet-out into the to-VM tables of
// the backend's port (its firewall must let it in, as a client's SYN); a
// SYN/ACK back is a success, a RST or no answer within timeout_ms a
// failure. The answers reach the controller through a flow in lb
// (from B:BP to the VIP's probe ports). fall failures in a row take a
// backend down: its bucket leaves the group on every host (established
// connections keep it); rise successes bring it back. Backends start up.
// UDP health checks are not implemented: such backends stay up.

// probePortBase..+1023 are the probes' source ports (tp_dst 0xfc00/0xfc00
// of the answers), above Linux's ephemeral range, so a hairpin
// connection's source port never collides with them.
const probePortBase = 0xfc00

const prioProbe = 150

// Status is a backend's health.
type Status struct {
	LoadBalancer string    `json:"load_balancer"`
	IP           string    `json:"ip"`
	Port         int       `json:"port"`
	Up           bool      `json:"up"`
	Checked      bool      `json:"checked"`        // probed by a health check
	Since        time.Time `json:"since,omitzero"` // the last change (or the first probe)
}

type hkey struct {
	lb   string
	ip   string
	port int
}

type hstate struct {
	up        bool
	since     time.Time
	ok, fail  int
	lastProbe time.Time
	pending   bool
	sentAt    time.Time
}

type health struct {
	mu       sync.Mutex
	st       map[hkey]*hstate
	seq      uint64 // grows with every up/down change
	seqPort  uint16
	log      *slog.Logger
	onChange func(lbID string)
	events   *events.Bus // backend up/down, on /events (topic "loadbalancer")
}

func (h *health) state(k hkey, now time.Time) *hstate {
	s := h.st[k]
	if s == nil {
		s = &hstate{up: true, since: now}
		h.st[k] = s
	}
	return s
}

// adoptDown records a backend an earlier loomd had taken down, unless
// this one knows it already.
func (h *health) adoptDown(k hkey, p checkParams, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st[k] == nil {
		h.st[k] = &hstate{up: false, since: now, fail: p.fall}
		h.log.Info("load balancer backend down, as the switch's group says", "load_balancer", k.lb, "backend", k.ip, "port", k.port)
	}
}

// prune forgets the health of backends no longer checked: a load
// balancer, a backend or a health check gone. A backend that comes back,
// or whose load balancer gets a health check again, starts afresh (up);
// one whose health check is removed takes connections again at once.
func (h *health) prune(lbs []*lbEntry) {
	keep := map[hkey]bool{}
	for _, e := range lbs {
		if _, ok := paramsOf(e.lb); !ok {
			continue
		}
		for _, be := range e.backends {
			keep[hkey{e.lb.ID, formatIP(be.ip), int(be.port)}] = true
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, s := range h.st {
		if !keep[k] {
			delete(h.st, k)
			if !s.up {
				h.seq++ // compiled without it: compile again
			}
		}
	}
}

// up tells whether a backend takes new connections.
func (h *health) up(lb, ip string, port int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.st[hkey{lb, ip, port}]
	return s == nil || s.up
}

// Statuses returns the health of every probed backend.
func (h *health) Statuses() []Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Status, 0, len(h.st))
	for k, s := range h.st {
		out = append(out, Status{LoadBalancer: k.lb, IP: k.ip, Port: k.port, Up: s.up, Since: s.since})
	}
	return out
}

// result records a probe's outcome; h.mu is held.
func (h *health) result(k hkey, s *hstate, hc checkParams, ok bool, now time.Time) {
	s.pending = false
	changed := false
	if ok {
		s.ok, s.fail = s.ok+1, 0
		if !s.up && s.ok >= hc.rise {
			s.up, changed = true, true
		}
	} else {
		s.fail, s.ok = s.fail+1, 0
		if s.up && s.fail >= hc.fall {
			s.up, changed = false, true
		}
	}
	if changed {
		s.since = now
		h.seq++
		h.log.Info("load balancer backend health changed", "load_balancer", k.lb, "backend", k.ip, "port", k.port, "up", s.up)
		typ := "backend-down"
		if s.up {
			typ = "backend-up"
		}
		h.events.Publish(events.Event{Topic: "loadbalancer", Type: typ, Kind: "load_balancer", ID: k.lb,
			Object: Status{LoadBalancer: k.lb, IP: k.ip, Port: k.port, Up: s.up, Since: s.since}})
		go h.onChange(k.lb)
	}
}

type checkParams struct {
	interval, timeout time.Duration
	fall, rise        int
	udp               bool // a UDP probe: an ICMP unreachable fails it, silence passes
}

func paramsOf(lb *model.LoadBalancer) (checkParams, bool) {
	hc := lb.HealthCheck
	if hc == nil {
		return checkParams{}, false
	}
	proto := hc.Protocol
	if proto == "" {
		proto = lb.Protocol
	}
	if proto != "tcp" && proto != "udp" {
		return checkParams{}, false
	}
	p := checkParams{interval: 5 * time.Second, fall: 3, rise: 2, udp: proto == "udp"}
	if hc.IntervalMS > 0 {
		p.interval = time.Duration(hc.IntervalMS) * time.Millisecond
	}
	p.timeout = min(2*time.Second, p.interval/2)
	if hc.TimeoutMS > 0 {
		p.timeout = time.Duration(hc.TimeoutMS) * time.Millisecond
	}
	if hc.Fall > 0 {
		p.fall = hc.Fall
	}
	if hc.Rise > 0 {
		p.rise = hc.Rise
	}
	return p, true
}

// localBackend is a health-checked backend bound on this switch.
type localBackend struct {
	k      hkey
	p      checkParams
	vip    netip.Addr
	vmac   flow.MAC
	ip     netip.Addr
	mac    flow.MAC
	port   uint16
	ofport uint32
	key    uint32 // the network's (metadata)
	net    string // the network's id
}

// probeFlows catches the answers to probes of the backends bound on host.
func probeFlows(s *view.Snapshot, host string, t Tables) []*flow.Flow {
	return probeFlowsOf(buildIndex(s).checked[host], t)
}

// probeFlowsOf catches the answers to probes of backends.
func probeFlowsOf(bes []localBackend, t Tables) []*flow.Flow {
	var out []*flow.Flow
	for _, b := range bes {
		m := flow.Match{}.SetMasked(flow.Metadata, uint64(b.key), kit.MetadataMask).EthType(packet.EtherTypeIPv4).IPProto(packet.ProtoTCP).
			Set(flow.IPv4Src, ip4(b.ip)).Set(flow.IPv4Dst, ip4(b.vip)).Set(flow.TCPSrc, uint64(b.port)).
			SetMasked(flow.TCPDst, probePortBase, probePortBase)
		if b.p.udp {
			// What a closed UDP port answers: ICMP port unreachable.
			m = flow.Match{}.SetMasked(flow.Metadata, uint64(b.key), kit.MetadataMask).EthType(packet.EtherTypeIPv4).IPProto(packet.ProtoICMP).
				Set(flow.IPv4Src, ip4(b.ip)).Set(flow.IPv4Dst, ip4(b.vip)).Set(flow.ICMPv4Type, packet.ICMPv4DestUnreachable)
		}
		out = append(out, flow.New(t.LB, prioProbe, m).Act(flow.Output(flow.PortController)))
	}
	return out
}

// tick sends the probes that are due on this switch and fails those
// unanswered for longer than their timeout.
func (h *health) tick(ctx *controller.Context, bes []localBackend, toVM uint8, now time.Time) {
	if len(bes) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range bes {
		st := h.state(b.k, now)
		if st.pending && now.Sub(st.sentAt) > b.p.timeout {
			h.result(b.k, st, b.p, b.p.udp, now) // UDP: no unreachable in time passes
		}
		if st.pending || now.Sub(st.lastProbe) < b.p.interval {
			continue
		}
		h.seqPort++
		sport := probePortBase + h.seqPort%1024
		frame := packet.AppendIPv4TCP(nil, packet.MAC(b.mac.Bytes()), packet.MAC(b.vmac.Bytes()), b.vip, b.ip, sport, b.port, uint32(now.UnixNano()), packet.TCPSyn)
		if b.p.udp {
			frame = packet.AppendIPv4UDP(nil, packet.MAC(b.mac.Bytes()), packet.MAC(b.vmac.Bytes()), b.vip, b.ip, sport, b.port, []byte("loom health check\n"))
		}
		// Into the to-VM path (lb-reply, the backend's firewall, ...,
		// overlay-deliver) as the overlay forwards to the port: the
		// backend's security groups see (and conntrack commits) the
		// probe, so its answer is a reply, not an invalid packet.
		if err := ctx.PacketOut(flow.PortController, frame, b.toVM(toVM)...); err != nil {
			ctx.Log().Warn("load balancer probe not sent", "error", err)
			continue
		}
		st.pending, st.sentAt, st.lastProbe = true, now, now
	}
}

// answer handles a probe's answer from the switch.
func (h *health) answer(ctx *controller.Context, bes []localBackend, toVM uint8, f *packet.Frame, now time.Time) {
	if f.EtherType == packet.EtherTypeIPv4 && f.IPv4.Proto == packet.ProtoICMP && f.Layers&packet.HasICMP != 0 &&
		f.ICMP.Type == packet.ICMPv4DestUnreachable {
		// A UDP probe's port is closed: the backend is failing.
		for _, b := range bes {
			if b.p.udp && b.ip == f.IPv4.Src && b.vip == f.IPv4.Dst {
				h.mu.Lock()
				if st := h.state(b.k, now); st.pending {
					h.result(b.k, st, b.p, false, now)
				}
				h.mu.Unlock()
			}
		}
		return
	}
	if f.EtherType != packet.EtherTypeIPv4 || f.IPv4.Proto != packet.ProtoTCP || f.TCP.DstPort&probePortBase != probePortBase {
		return
	}
	for _, b := range bes {
		if b.p.udp || b.ip != f.IPv4.Src || b.vip != f.IPv4.Dst || b.port != f.TCP.SrcPort {
			continue
		}
		h.mu.Lock()
		if st := h.state(b.k, now); st.pending {
			switch {
			case f.TCP.Flags&(packet.TCPSyn|packet.TCPAck) == packet.TCPSyn|packet.TCPAck:
				h.result(b.k, st, b.p, true, now)
				// Reset the half-open connection, which would otherwise
				// hold a place in the server's backlog for a minute.
				rst := packet.AppendIPv4TCP(nil, packet.MAC(b.mac.Bytes()), packet.MAC(b.vmac.Bytes()), b.vip, b.ip, f.TCP.DstPort, b.port, f.TCP.Ack, packet.TCPRst)
				if err := ctx.PacketOut(flow.PortController, rst, b.toVM(toVM)...); err != nil {
					ctx.Log().Warn("load balancer probe reset not sent", "error", err)
				}
			case f.TCP.Flags&packet.TCPRst != 0:
				h.result(b.k, st, b.p, false, now)
			}
		}
		h.mu.Unlock()
	}
}

// toVM are the packet-out actions that hand a probe to the backend's
// to-VM tables (table toVM on), as overlay-forward would.
func (b localBackend) toVM(toVM uint8) []flow.Action {
	return []flow.Action{flow.SetField(flow.Metadata, uint64(b.key)), flow.SetField(kit.RegOutPort, uint64(b.ofport)), flow.Resubmit(toVM)}
}
