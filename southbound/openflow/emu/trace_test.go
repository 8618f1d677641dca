package emu

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
)

func newTraceSwitch(flows []*flow.Flow, groups ...*flow.Group) *Switch {
	return &Switch{Datapath: NewDatapath(flows, groups, nil)}
}

func TestTrace(t *testing.T) {
	vm1, vm2 := packet.MAC{2, 0, 0, 0, 0, 1}, packet.MAC{2, 0, 0, 0, 0, 2}
	a1, a2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	udp := packet.AppendIPv4UDP(nil, vm2, vm1, a1, a2, 1000, 53, []byte("q"))
	arp := packet.AppendARP(nil, packet.ARPRequest, vm1, a1, packet.MAC{}, a2)
	s := newTraceSwitch([]*flow.Flow{
		flow.New(0, 100, flow.Match{}.InPort(1)).Act(flow.SetField(flow.Reg7, 9)).Goto(1),
		flow.New(0, 0, nil), // miss: drop
		flow.New(1, 200, flow.Match{}.EthType(packet.EtherTypeARP)).Act(flow.Output(flow.PortController)),
		flow.New(1, 100, flow.Match{}.Reg(7, 9).EthDst(flow.MACFrom(vm2))).Act(flow.ToGroup(5)),
		flow.New(1, 50, flow.Match{}.EthType(packet.EtherTypeIPv4).Set(flow.UDPDst, 53)).Act(flow.Output(7)),
	}, &flow.Group{ID: 5, Type: flow.GroupAll, Buckets: []flow.Bucket{flow.NewBucket(flow.Output(2)), flow.NewBucket(flow.Output(flow.PortInPort))}})

	if tr := s.Trace(1, arp); !tr.ToController() || len(tr.Path) != 2 || tr.Stopped != "" {
		t.Errorf("ARP: %v", tr)
	}
	// The group's buckets both run, the in port resolved; the lower
	// priority UDP flow is not hit.
	if tr := s.Trace(1, udp); !slices.Equal(tr.Outputs, []uint32{2, 1}) || tr.Stopped != "" {
		t.Errorf("UDP to vm2: %v", tr)
	}
	// From port 3: table 0's drop flow (a flow of table 0 has no table=
	// in its text, as in ovs-ofctl's).
	if tr := s.Trace(3, udp); !tr.Dropped() || tr.Path[0] != "priority=0 actions=drop" {
		t.Errorf("from port 3: %v", tr)
	}
	// What the emulator does not run stops the trace, named.
	s = newTraceSwitch([]*flow.Flow{flow.New(0, 10, nil).Act(flow.CT(flow.CTSpec{Zone: 1, Table: 1}))})
	if tr := s.Trace(1, udp); tr.Stopped == "" || !tr.Dropped() {
		t.Errorf("ct: %v", tr)
	}
	// write_metadata and the action set.
	meta := flow.New(0, 10, nil).Goto(1)
	meta.WriteMetadata, meta.Metadata, meta.MetadataMask = true, 0x5, 0xff
	set := flow.New(1, 10, flow.Match{}.SetMasked(flow.Metadata, 0x5, 0xff))
	set.Write = []flow.Action{flow.Output(4)}
	s = newTraceSwitch([]*flow.Flow{meta, set})
	if tr := s.Trace(1, udp); !slices.Equal(tr.Outputs, []uint32{4}) {
		t.Errorf("metadata: %v", tr)
	}
}
