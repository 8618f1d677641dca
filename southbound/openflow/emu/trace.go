package emu

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
)

// Trace is where a frame went through the switch's flow tables: what a
// unit test checks instead of a real datapath.
type Trace struct {
	// Outputs are the ports the frame left by, in order (flow.PortController
	// for a packet-in, flow.PortInPort resolved to the in port).
	Outputs []uint32
	// Path is every flow the frame hit, in ovs-ofctl syntax, or
	// "table=N miss" where none matched (and the frame was dropped).
	Path []string
	// Stopped says why the trace ended early: an action or match field the
	// emulator does not run (conntrack, resubmit, learn, ... ); "" when it
	// ran to the end.
	Stopped string
}

// ToController reports whether the frame went to the controller.
func (t Trace) ToController() bool { return slices.Contains(t.Outputs, flow.PortController) }

// Dropped reports whether the frame left by no port.
func (t Trace) Dropped() bool { return len(t.Outputs) == 0 }

func (t Trace) String() string {
	return fmt.Sprintf("outputs %v via %v%s", t.Outputs, t.Path, map[bool]string{true: " (stopped: " + t.Stopped + ")", false: ""}[t.Stopped != ""])
}

// packetState is a frame's match fields as the pipeline sees them.
type packetState struct {
	inPort uint32
	set    [64]bool // by flow.Field
	val    [64]uint64
}

func (p *packetState) put(f flow.Field, v uint64) { p.set[f], p.val[f] = true, v }

func stateOf(inPort uint32, frame []byte) (*packetState, error) {
	var f packet.Frame
	err := f.Decode(frame)
	p := &packetState{inPort: inPort}
	p.put(flow.InPort, uint64(inPort))
	for _, fl := range []flow.Field{flow.Metadata, flow.TunnelID, flow.Reg0, flow.Reg1, flow.Reg2, flow.Reg3, flow.Reg4,
		flow.Reg5, flow.Reg6, flow.Reg7, flow.PktMark, flow.CTState, flow.CTZone, flow.CTMark} {
		p.put(fl, 0)
	}
	if len(frame) < 14 {
		return p, err
	}
	p.put(flow.EthSrc, uint64(flow.MACFrom(f.Src)))
	p.put(flow.EthDst, uint64(flow.MACFrom(f.Dst)))
	p.put(flow.EthType, uint64(f.EtherType))
	p.put(flow.VlanVID, 0)
	if f.NumVLANs > 0 {
		p.put(flow.VlanVID, 0x1000|uint64(f.VLANs[0].VID))
		p.put(flow.VlanPCP, uint64(f.VLANs[0].PCP))
	}
	ip4 := func(a interface{ As4() [4]byte }) uint64 {
		b := a.As4()
		return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	}
	switch {
	case f.Layers&packet.HasARP != 0:
		p.put(flow.ARPOp, uint64(f.ARP.Op))
		p.put(flow.ARPSha, uint64(flow.MACFrom(f.ARP.SHA)))
		p.put(flow.ARPTha, uint64(flow.MACFrom(f.ARP.THA)))
		if f.ARP.SPA.Is4() {
			p.put(flow.ARPSpa, ip4(f.ARP.SPA))
		}
		if f.ARP.TPA.Is4() {
			p.put(flow.ARPTpa, ip4(f.ARP.TPA))
		}
	case f.Layers&packet.HasIPv4 != 0:
		p.put(flow.IPProto, uint64(f.IPv4.Proto))
		p.put(flow.IPDSCP, uint64(f.IPv4.TOS>>2))
		p.put(flow.IPv4Src, ip4(f.IPv4.Src))
		p.put(flow.IPv4Dst, ip4(f.IPv4.Dst))
	case f.Layers&packet.HasIPv6 != 0:
		p.put(flow.IPProto, uint64(f.IPv6.NextHeader))
	}
	switch {
	case f.Layers&packet.HasTCP != 0:
		p.put(flow.TCPSrc, uint64(f.TCP.SrcPort))
		p.put(flow.TCPDst, uint64(f.TCP.DstPort))
	case f.Layers&packet.HasUDP != 0:
		p.put(flow.UDPSrc, uint64(f.UDP.SrcPort))
		p.put(flow.UDPDst, uint64(f.UDP.DstPort))
	case f.Layers&packet.HasICMP != 0 && f.EtherType == packet.EtherTypeIPv4:
		p.put(flow.ICMPv4Type, uint64(f.ICMP.Type))
		p.put(flow.ICMPv4Code, uint64(f.ICMP.Code))
	case f.Layers&packet.HasICMP != 0:
		p.put(flow.ICMPv6Type, uint64(f.ICMP.Type))
		p.put(flow.ICMPv6Code, uint64(f.ICMP.Code))
	}
	return p, err
}

// matches reports whether the packet matches m; unknown reports a field
// the emulator cannot evaluate (a raw TLV).
func (p *packetState) matches(m flow.Match) (ok bool, unknown string) {
	for _, mf := range m {
		if mf.Field == flow.FieldRaw || int(mf.Field) >= len(p.set) {
			return false, "match field " + mf.Field.String()
		}
		if !p.set[mf.Field] {
			return false, ""
		}
		v := p.val[mf.Field]
		if mf.Masked {
			v &= mf.Mask
		}
		if v != mf.Value {
			return false, ""
		}
	}
	return true, ""
}

// maxTraceSteps bounds a trace (goto only goes forward, but groups of
// groups could loop).
const maxTraceSteps = 256

// Trace runs a frame that arrives on inPort through the flow tables, from
// table 0, as OVS would (highest priority first; goto_table, apply
// actions, write_metadata; output, set_field, groups (all: every bucket;
// select and indirect: the first), push/pop VLAN; the action set at the
// end), and reports where it went. It stops at what it does not run
// (Nicira extensions such as ct, resubmit and learn; raw match fields).
func (s *Switch) Trace(inPort uint32, frame []byte) Trace {
	p, _ := stateOf(inPort, frame)
	s.mu.Lock()
	defer s.mu.Unlock()
	var t Trace
	s.trace(p, 0, &t, 0)
	return t
}

func (s *Switch) trace(p *packetState, table uint8, t *Trace, depth int) {
	for steps := 0; steps < maxTraceSteps; steps++ {
		var best *flow.Flow
		for _, f := range s.flows {
			if f.Table != table {
				continue
			}
			ok, unknown := p.matches(f.Match)
			if unknown != "" && (best == nil || f.Priority > best.Priority) {
				t.Stopped = fmt.Sprintf("%s in %s", unknown, f)
				return
			}
			if ok && (best == nil || f.Priority > best.Priority ||
				f.Priority == best.Priority && cmp.Compare(f.String(), best.String()) < 0) {
				best = f
			}
		}
		if best == nil {
			t.Path = append(t.Path, fmt.Sprintf("table=%d miss", table))
			return
		}
		t.Path = append(t.Path, best.String())
		var actionSet []flow.Action
		if !s.run(p, best.Apply, t, depth) {
			return
		}
		if best.ClearActions {
			actionSet = nil
		}
		actionSet = append(actionSet, best.Write...)
		if best.WriteMetadata {
			p.val[flow.Metadata] = p.val[flow.Metadata]&^best.MetadataMask | best.Metadata&best.MetadataMask
		}
		if best.GotoTable < 0 || best.GotoTable <= int16(table) {
			s.run(p, actionSet, t, depth)
			return
		}
		table = uint8(best.GotoTable)
	}
	t.Stopped = "too many steps"
}

// run applies actions to the packet; false means the trace stopped.
func (s *Switch) run(p *packetState, acts []flow.Action, t *Trace, depth int) bool {
	for _, a := range acts {
		switch a.Kind {
		case flow.ActOutput:
			port := a.Arg
			if port == flow.PortInPort {
				port = p.inPort
			}
			t.Outputs = append(t.Outputs, port)
		case flow.ActSetField:
			p.put(a.Field, a.Value)
			if a.Field == flow.InPort {
				p.inPort = uint32(a.Value)
			}
		case flow.ActPushVLAN:
			p.put(flow.VlanVID, 0x1000)
		case flow.ActPopVLAN:
			p.put(flow.VlanVID, 0)
		case flow.ActDecTTL, flow.ActSetQueue:
		case flow.ActGroup:
			g, ok := s.groups[a.Arg]
			if !ok || depth > 8 {
				t.Stopped = fmt.Sprintf("group %d (missing or nested too deep)", a.Arg)
				return false
			}
			buckets := g.Buckets
			if g.Type != flow.GroupAll && len(buckets) > 1 {
				buckets = buckets[:1]
			}
			for _, b := range buckets {
				cp := *p
				if !s.run(&cp, b.Actions, t, depth+1) {
					return false
				}
			}
		default:
			t.Stopped = "action " + a.String()
			return false
		}
	}
	return true
}
