package flow

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"testing"

	of "github.com/contiv/libOpenflow/openflow13"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const mac1 MAC = 0x020000000001

func TestStringIsOfctlSyntax(t *testing.T) {
	for _, tc := range []struct {
		f    *Flow
		want string
	}{
		{New(0, 100, Match{}.EthSrc(mac1).InPort(1)).Goto(1),
			"priority=100,in_port=1,dl_src=02:00:00:00:00:01 actions=goto_table:1"},
		{New(1, 0, nil).Act(Output(PortFlood)), "table=1, priority=0 actions=FLOOD"},
		{New(0, 0, nil).WithMeter(1).Act(Output(PortController)), "priority=0 actions=meter:1,CONTROLLER:65535"},
		{New(2, 5, Match{}.SetMasked(EthDst, 0x010000000000, 0x010000000000).TunnelID(100)).
			Act(SetField(TunDst, IPv4(net.ParseIP("10.200.0.2"))), Output(1000)),
			"table=2, priority=5,tun_id=0x64,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=set_field:10.200.0.2->tun_dst,output:1000"},
		{New(0, 1, Match{}.EthType(0x0800).Set(IPv4Dst, IPv4(net.ParseIP("10.0.0.1")))).Act(DecTTL(), PopVLAN(), ToGroup(7)),
			"priority=1,ip,nw_dst=10.0.0.1 actions=dec_ttl,pop_vlan,group:7"},
		{New(0, 0, nil), "priority=0 actions=drop"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestMatchNormalisation(t *testing.T) {
	a := Match{}.InPort(1).EthSrc(mac1)
	b := Match{}.EthSrc(mac1).InPort(1)
	if !a.Equal(b) || New(0, 1, a).Key() != New(0, 1, b).Key() {
		t.Error("field order must not matter")
	}
	full := Match{}.SetMasked(EthDst, uint64(mac1), 0xffffffffffff)
	if f, _ := full.Get(EthDst); f.Masked {
		t.Error("an all-ones mask must become an exact match")
	}
	m := Match{}.SetMasked(Reg0, 0xff, 0x0f)
	if f, _ := m.Get(Reg0); f.Value != 0x0f {
		t.Errorf("value bits outside the mask must be cleared: %#x", f.Value)
	}
	if New(0, 1, a).Key() == New(0, 2, a).Key() || New(0, 1, a).Key() == New(1, 1, a).Key() {
		t.Error("priority and table are part of the key")
	}
}

// TestFlowModGolden checks libOpenflow's encoding through our model byte
// for byte, including the two encoder bugs we patch.
func TestFlowModGolden(t *testing.T) {
	f := New(1, 100, Match{}.InPort(3).EthDst(mac1)).Act(Output(2))
	f.Cookie, f.IdleTimeout, f.Flags = 0x0001000000000000, 300, FlagSendFlowRem
	got, err := f.AppendFlowMod(nil, CmdAdd, 0x11)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "040e0060 00000011"+
		"0001000000000000 0000000000000000 01 00 012c 0000 0064 ffffffff ffffffff ffffffff 0001 0000"+
		"0001 0016 80000004 00000003 80000606 020000000001 0000"+
		"0004 0018 00000000 0000 0010 00000002 0000 000000000000")
	if !bytes.Equal(got, want) {
		t.Fatalf("ADD:\n got %x\nwant %x", got, want)
	}
	// The same bytes as libOpenflow's own constructors produce (apart
	// from the out_group slot it gets wrong and max_len it defaults).
	fm := of.NewFlowMod()
	fm.Xid, fm.TableId, fm.Priority, fm.Cookie, fm.IdleTimeout, fm.Flags = 0x11, 1, 100, f.Cookie, 300, 1
	fm.Match.AddField(*of.NewInPortField(3))
	fm.Match.AddField(*of.NewEthDstField(net.HardwareAddr{2, 0, 0, 0, 0, 1}, nil))
	ia := of.NewInstrApplyActions()
	out := of.NewActionOutput(2)
	out.MaxLen = 0
	ia.AddAction(out, false)
	fm.AddInstruction(ia)
	lib, _ := fm.MarshalBinary()
	binary.BigEndian.PutUint32(lib[flowModOutGroup:], of.OFPG_ANY)
	if !bytes.Equal(got, lib) {
		t.Errorf("differs from libOpenflow constructors:\n ours %x\n  lib %x", got, lib)
	}

	// DELETE_STRICT: no instructions, length consistent, cookie mask set,
	// out_port and out_group ANY.
	del, err := f.AppendFlowMod(nil, CmdDeleteStrict, 0x12)
	if err != nil {
		t.Fatal(err)
	}
	if int(binary.BigEndian.Uint16(del[2:])) != len(del) || len(del) != 8+40+24 {
		t.Errorf("DELETE length field %d, bytes %d", binary.BigEndian.Uint16(del[2:]), len(del))
	}
	if del[25] != CmdDeleteStrict || binary.BigEndian.Uint64(del[16:]) != ^uint64(0) ||
		binary.BigEndian.Uint32(del[flowModOutPort:]) != of.P_ANY || binary.BigEndian.Uint32(del[flowModOutGroup:]) != of.OFPG_ANY {
		t.Errorf("DELETE header fields: %x", del[:48])
	}
}

// statsEntry turns an encoded FLOW_MOD into the flow-stats entry a switch
// would report for it.
func statsEntry(t *testing.T, fm []byte) []byte {
	t.Helper()
	body := fm[8:]
	matchLen := int(binary.BigEndian.Uint16(body[42:]))
	padded := (matchLen + 7) &^ 7
	match, instr := body[40:40+padded], body[40+padded:]
	e := make([]byte, 48, 48+len(match)+len(instr))
	binary.BigEndian.PutUint16(e[0:], uint16(48+len(match)+len(instr)))
	e[2] = body[16]                           // table
	copy(e[12:14], body[22:24])               // priority
	copy(e[14:18], body[18:22])               // idle, hard
	copy(e[18:20], body[36:38])               // flags
	copy(e[24:32], body[0:8])                 // cookie
	e = append(append(e, match...), instr...) // match, instructions
	return e
}

func TestDecodeRoundTrip(t *testing.T) {
	flows := []*Flow{
		New(0, 100, Match{}.InPort(1).EthSrc(mac1)).Goto(1),
		New(0, 0, nil).WithMeter(1).Act(Output(PortController)),
		New(1, 0, nil).Act(Output(PortFlood)),
		New(2, 90, Match{}.TunnelID(5001).Multicast()).Act(Output(3), SetField(TunDst, 0x0ac80002), Output(1000)),
		New(3, 10, Match{}.EthType(0x0806).Set(ARPOp, 1).Set(ARPTpa, 0x0a000001)).
			Act(SetField(EthSrc, 0x02000000ff01), PushVLAN(), SetField(VlanVID, 0x1064), PopVLAN(), DecTTL(), SetQueue(2), ToGroup(9)),
		New(4, 7, Match{}.SetMasked(Reg0, 1, 0xff).Set(CTState, 0x21).Set(CTZone, 9)).Act(Output(PortInPort)),
		New(5, 100, Match{}.EthType(0x0806).Set(ARPOp, 1)).Act(Move(EthSrc, EthDst), Move(ARPSpa, ARPTpa), Output(PortInPort)),
	}
	flows[0].IdleTimeout, flows[0].Flags, flows[0].Cookie = 300, FlagSendFlowRem, 0x0001000000000000
	flows[3].Instructions.Write = []Action{Output(4)}
	flows[3].WriteMetadata, flows[3].Metadata, flows[3].MetadataMask = true, 0x10, 0xff
	flows[3].ClearActions = true
	for _, f := range flows {
		fm, err := f.AppendFlowMod(nil, CmdAdd, 1)
		if err != nil {
			t.Fatal(err)
		}
		var got *Flow
		err = wire.DecodeFlowStats(statsEntry(t, fm), func(fs *wire.FlowStats) error {
			got, err = FromStats(fs)
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !got.Equal(f) || got.Key() != f.Key() {
			t.Errorf("round trip:\n sent %s\n read %s", f, got)
		}
	}
}

func TestUnknownFieldsAndActionsSurvive(t *testing.T) {
	// An OXM field and an action Loom has no name for (NXM1 field 104,
	// an NX resubmit) are kept raw, compare equal and re-encode the same.
	m, err := DecodeMatch(wire.Match(unhex(t, "0001d002 0001 80000004 00000002")))
	if err != nil || len(m) != 2 || m[1].Field != FieldRaw {
		t.Fatalf("%v %v", m, err)
	}
	acts, err := DecodeActions(unhex(t, "ffff0010 00002320 0001 0005 00000000"))
	if err != nil || len(acts) != 1 || acts[0].Kind != ActRaw {
		t.Fatalf("%v %v", acts, err)
	}
	f := New(0, 1, m).Act(acts...)
	fm, err := f.AppendFlowMod(nil, CmdAdd, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got *Flow
	wire.DecodeFlowStats(statsEntry(t, fm), func(fs *wire.FlowStats) error { got, err = FromStats(fs); return err })
	if err != nil || !got.Equal(f) {
		t.Fatalf("raw round trip: %v\n sent %s\n read %s", err, f, got)
	}
}

func TestGroupAndMeterRoundTrip(t *testing.T) {
	g := &Group{ID: 5, Type: GroupAll, Buckets: []Bucket{NewBucket(Output(1)), NewBucket(SetField(TunDst, 0x0ac80002), Output(1000))}}
	b, err := g.AppendMod(nil, ModAdd, 1)
	if err != nil {
		t.Fatal(err)
	}
	// GROUP_MOD body: command(2) type(1) pad(1) group_id(4) buckets; a
	// GROUP_DESC entry is length(2) type(1) pad(1) group_id(4) buckets.
	got, err := GroupFromDesc(&wire.GroupDesc{Type: b[10], GroupID: binary.BigEndian.Uint32(b[12:]), Buckets: b[16:]})
	if err != nil || !got.Equal(g) {
		t.Fatalf("group: %v\n sent %s\n read %s", err, g, got)
	}
	if want := "group_id=5,type=all,bucket=actions=output:1,bucket=actions=set_field:10.200.0.2->tun_dst,output:1000"; g.String() != want {
		t.Errorf("group string %s", g)
	}
	m := &Meter{ID: 1, Flags: MeterPktps | MeterBurst | MeterStats, Bands: []Band{{Rate: 2000, Burst: 200}}}
	mb, err := m.AppendMod(nil, ModAdd, 1)
	if err != nil {
		t.Fatal(err)
	}
	// METER_MOD body: command(2) flags(2) meter_id(4) bands.
	gm, err := MeterFromConfig(&wire.MeterConfig{Flags: binary.BigEndian.Uint16(mb[10:]), MeterID: binary.BigEndian.Uint32(mb[12:]), Bands: mb[16:]})
	if err != nil || !gm.Equal(m) {
		t.Fatalf("meter: %v\n sent %s\n read %s", err, m, gm)
	}
	if want := "meter=1,pktps,burst,stats,band=type=drop,rate=2000,burst_size=200"; m.String() != want {
		t.Errorf("meter string %s", m)
	}
}

func FuzzFlowStats(f *testing.F) {
	f.Add(unhex(f, "0048 03 00 0000000a 00000000 0064 012c 0000 0001 00000000 00000000000000ff 0000000000000005 0000000000000200 0001 000c 80000004 00000001 00000000 0001 0008 02000000"))
	f.Add(unhex(f, "0040 00 00 00000000 00000000 0001 0000 0000 0000 00000000 0000000000000000 0000000000000000 0000000000000000 0001 0004 00000000 0004 0008 00000000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		wire.DecodeFlowStats(b, func(fs *wire.FlowStats) error {
			fl, err := FromStats(fs)
			if err != nil {
				return err
			}
			_ = fl.String()
			fm, err := fl.AppendFlowMod(nil, CmdAdd, 1)
			if err != nil {
				return err
			}
			// Round trip: the flow-mod decodes to the same flow.
			back, err := flowFromMod(fm)
			if err != nil {
				t.Fatalf("%s: its flow-mod does not decode: %v", fl, err)
			}
			if !back.Equal(fl) || back.String() != fl.String() {
				t.Fatalf("round trip:\n%s\n%s", fl, back)
			}
			return nil
		})
	})
}

// flowFromMod decodes an ADD flow-mod, as a switch would read it.
func flowFromMod(msg []byte) (*Flow, error) {
	fm, err := wire.DecodeFlowMod(msg)
	if err != nil {
		return nil, err
	}
	m, err := DecodeMatch(fm.Match)
	if err != nil {
		return nil, err
	}
	f := &Flow{Table: fm.TableID, Priority: fm.Priority, Match: m, Cookie: fm.Cookie,
		IdleTimeout: fm.IdleTimeout, HardTimeout: fm.HardTimeout, Flags: fm.Flags}
	f.Instructions, err = DecodeInstructions(fm.Instructions)
	return f, err
}

func FuzzGroupMeter(f *testing.F) {
	f.Add(unhex(f, "0020 0000 ffffffff ffffffff 00000000 0000 0010 00000001 0000 000000000000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if g, err := GroupFromDesc(&wire.GroupDesc{Type: GroupSelect, GroupID: 7, Buckets: b}); err == nil {
			_ = g.String()
			// Round trip: the group-mod decodes to the same group.
			gm, err := g.AppendMod(nil, ModAdd, 1)
			if err != nil {
				t.Fatalf("%s: %v", g, err)
			}
			back, err := GroupFromDesc(&wire.GroupDesc{Type: gm[10], GroupID: binary.BigEndian.Uint32(gm[12:]), Buckets: gm[16:]})
			if err != nil || !back.Equal(g) || back.String() != g.String() {
				t.Fatalf("round trip: %v\n%s\n%v", err, g, back)
			}
		}
		if m, err := MeterFromConfig(&wire.MeterConfig{Flags: MeterKbps, MeterID: 9, Bands: b}); err == nil {
			_ = m.String()
			mm, err := m.AppendMod(nil, ModAdd, 1)
			if err != nil {
				t.Fatalf("%s: %v", m, err)
			}
			back, err := MeterFromConfig(&wire.MeterConfig{Flags: binary.BigEndian.Uint16(mm[10:]), MeterID: binary.BigEndian.Uint32(mm[12:]), Bands: mm[16:]})
			if err != nil || !back.Equal(m) || back.String() != m.String() {
				t.Fatalf("round trip: %v\n%s\n%v", err, m, back)
			}
		}
	})
}

func TestMoveString(t *testing.T) {
	for _, c := range []struct {
		a    Action
		want string
	}{
		{Move(EthSrc, EthDst), "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]"},
		{Move(ARPSha, ARPTha), "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]"},
		{Move(ARPSpa, ARPTpa), "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]"},
		{Move(Reg0, TunDst), "move:NXM_NX_REG0[]->NXM_NX_TUN_IPV4_DST[]"},
		{MoveBits(Reg5, 0, VlanPCP, 0, 3), "move:NXM_NX_REG5[0..2]->OXM_OF_VLAN_PCP[]"},
		{MoveBits(Reg5, 4, Reg6, 31, 1), "move:NXM_NX_REG5[4]->NXM_NX_REG6[31]"},
		{RawAction([]byte{0xff, 0xff, 0, 8, 0, 0, 0x23, 0x20}), "raw(ffff000800002320)"},
	} {
		if got := c.a.String(); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Move between fields of different sizes did not panic")
		}
	}()
	Move(EthSrc, ARPSpa)
}

func TestCTString(t *testing.T) {
	for _, c := range []struct {
		s    CTSpec
		want string
	}{
		{CTSpec{Zone: 5, Table: 9, NAT: NATRestore}, "ct(table=9,zone=5,nat)"},
		{CTSpec{Commit: true, Zone: 5, Table: NoRecirc, NAT: NATSrc, Addr: 0xac180002}, "ct(commit,zone=5,nat(src=172.24.0.2))"},
		{CTSpec{Commit: true, Zone: 7, Table: 3, NAT: NATDst, Addr: 0x0a01000b}, "ct(commit,table=3,zone=7,nat(dst=10.1.0.11))"},
		{CTSpec{Zone: 1, Table: 2}, "ct(table=2,zone=1)"},
		{CTSpec{Commit: true, Table: NoRecirc, ZoneFromField: true, ZoneFrom: CTZone}, "ct(commit,zone=NXM_NX_CT_ZONE[])"},
		{CTSpec{Table: 4, ZoneFromField: true, ZoneFrom: Reg7}, "ct(table=4,zone=NXM_NX_REG7[0..15])"},
	} {
		if got := CT(c.s).String(); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
}

func TestIPv6SrcRoundTrip(t *testing.T) {
	a := netip.MustParseAddr("fd00::11").As16()
	f := New(2, 100, Match{}.InPort(5).EthType(0x86dd).IPv6Src(a)).Goto(3)
	if got, want := f.String(), "table=2, priority=100,ipv6,in_port=5,ipv6_src=fd00::11 actions=goto_table:3"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	fm, err := f.AppendFlowMod(nil, CmdAdd, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got *Flow
	err = wire.DecodeFlowStats(statsEntry(t, fm), func(fs *wire.FlowStats) error {
		got, err = FromStats(fs)
		return err
	})
	if err != nil || !got.Equal(f) || got.Key() != f.Key() {
		t.Errorf("round trip: %v\n sent %s\n read %s", err, f, got)
	}
}
