package packet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// hx decodes hex with spaces and newlines for readability.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

var (
	mac1 = MAC{2, 0, 0, 0, 0, 1}
	mac2 = MAC{2, 0, 0, 0, 0, 2}
	ip   = netip.MustParseAddr
)

// Building blocks of the hand-made frames.
const (
	macs    = "020000000002 020000000001" // dst mac2, src mac1
	ipHosts = "0a000001 0a000002"         // 10.0.0.1 -> 10.0.0.2
	v6Hosts = "fe800000000000000000000000000001 ff020000000000000000000000000001"
	arpReq  = "0001 0800 06 04 0001 020000000001 c0a80001 000000000000 c0a80002"
	lldpMin = "0207 04 020000000001  0403 02 0001  0602 0078" // Chassis MAC, Port component 1, TTL 120
)

var decodeTests = []struct {
	name string
	in   string
	err  error
	want Frame // L3 is checked separately: it is always the frame from L3Offset on
}{
	{
		name: "short ethernet",
		in:   macs + "08",
		err:  errEthernet,
	},
	{
		name: "unknown ethertype",
		in:   macs + "88b5 deadbeef",
		want: Frame{Dst: mac2, Src: mac1, EtherType: 0x88b5, L3Offset: 14},
	},
	{
		name: "802.1Q ARP request",
		in:   macs + "8100 a064 0806" + arpReq,
		want: Frame{
			Layers: HasVLAN | HasARP, Dst: mac2, Src: mac1,
			VLANs: [2]VLAN{{TPID: 0x8100, PCP: 5, VID: 100}}, NumVLANs: 1,
			EtherType: EtherTypeARP, L3Offset: 18,
			ARP: ARP{Op: ARPRequest, SHA: mac1, SPA: ip("192.168.0.1"), TPA: ip("192.168.0.2")},
		},
	},
	{
		name: "QinQ IPv4 UDP",
		in: macs + "88a8 f0c8 8100 200a 0800" +
			"45 00 0020 1234 0000 40 11 0000" + ipHosts +
			"1234 0035 000c 0000 cafebabe",
		want: Frame{
			Layers: HasVLAN | HasIPv4 | HasUDP, Dst: mac2, Src: mac1,
			VLANs:    [2]VLAN{{TPID: 0x88a8, PCP: 7, DEI: true, VID: 200}, {TPID: 0x8100, PCP: 1, VID: 10}},
			NumVLANs: 2, EtherType: EtherTypeIPv4, L3Offset: 22, L4Offset: 42,
			L4:      hx("1234 0035 000c 0000 cafebabe"),
			Payload: hx("cafebabe"),
			IPv4:    IPv4{IHL: 5, Length: 32, ID: 0x1234, TTL: 64, Proto: ProtoUDP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
			UDP:     UDP{SrcPort: 0x1234, DstPort: 53, Length: 12},
		},
	},
	{
		name: "truncated 802.1Q tag",
		in:   "01020304050601020304050681000001",
		err:  errVLAN,
		want: Frame{Dst: MAC{1, 2, 3, 4, 5, 6}, Src: MAC{1, 2, 3, 4, 5, 6}, EtherType: EtherTypeVLAN},
	},
	{
		name: "third tag left undecoded",
		in:   macs + "8100 0001 8100 0002 8100 0003 0800",
		want: Frame{
			Layers: HasVLAN, Dst: mac2, Src: mac1,
			VLANs:    [2]VLAN{{TPID: 0x8100, VID: 1}, {TPID: 0x8100, VID: 2}},
			NumVLANs: 2, EtherType: EtherTypeVLAN, L3Offset: 22,
		},
	},
	{
		name: "ARP reply padded",
		in:   macs + "0806 0001 0800 06 04 0002 020000000002 c0a80002 020000000001 c0a80001" + strings.Repeat("00", 18),
		want: Frame{
			Layers: HasARP, Dst: mac2, Src: mac1, EtherType: EtherTypeARP, L3Offset: 14,
			ARP: ARP{Op: ARPReply, SHA: mac2, SPA: ip("192.168.0.2"), THA: mac1, TPA: ip("192.168.0.1")},
		},
	},
	{
		name: "ARP not Ethernet/IPv4",
		in:   macs + "0806 0006 0800 06 04 0001 020000000001 c0a80001 000000000000 c0a80002",
		want: Frame{Dst: mac2, Src: mac1, EtherType: EtherTypeARP, L3Offset: 14},
	},
	{
		name: "ARP truncated",
		in:   macs + "0806 0001 0800 06 04 0001",
		err:  errARP,
		want: Frame{Dst: mac2, Src: mac1, EtherType: EtherTypeARP, L3Offset: 14},
	},
	{
		name: "IPv4 options TCP options padded",
		in: macs + "0800" +
			"46 10 0033 0001 4000 40 06 0000" + ipHosts + "01010100" +
			"c000 0050 00000001 00000002 60 18 ffff 0000 0000 020405b4 474554" +
			"0000",
		want: Frame{
			Layers: HasIPv4 | HasTCP, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 38,
			L4:      hx("c000 0050 00000001 00000002 60 18 ffff 0000 0000 020405b4 474554"),
			Payload: []byte("GET"),
			IPv4:    IPv4{IHL: 6, TOS: 0x10, Length: 51, ID: 1, DontFragment: true, TTL: 64, Proto: ProtoTCP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
			TCP:     TCP{SrcPort: 49152, DstPort: 80, Seq: 1, Ack: 2, DataOffset: 6, Flags: TCPPsh | TCPAck, Window: 0xffff},
		},
	},
	{
		name: "IPv4 UDP truncated by the switch",
		in:   macs + "0800 45 00 0080 0000 0000 40 11 0000" + ipHosts + "0044 0043 0064 0000 01020304",
		want: Frame{
			Layers: HasIPv4 | HasUDP, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 34,
			L4:      hx("0044 0043 0064 0000 01020304"),
			Payload: hx("01020304"),
			IPv4:    IPv4{IHL: 5, Length: 128, TTL: 64, Proto: ProtoUDP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
			UDP:     UDP{SrcPort: 68, DstPort: 67, Length: 100},
		},
	},
	{
		name: "UDP length below IP length",
		in:   macs + "0800 45 00 0020 0000 0000 40 11 0000" + ipHosts + "0001 0002 000a 0000 6869 beef",
		want: Frame{
			Layers: HasIPv4 | HasUDP, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 34,
			L4:      hx("0001 0002 000a 0000 6869 beef"),
			Payload: []byte("hi"),
			IPv4:    IPv4{IHL: 5, Length: 32, TTL: 64, Proto: ProtoUDP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
			UDP:     UDP{SrcPort: 1, DstPort: 2, Length: 10},
		},
	},
	{
		name: "IPv4 first fragment",
		in:   macs + "0800 45 00 0024 abcd 2000 40 11 0000" + ipHosts + "0001 0002 0100 0000 0001020304050607",
		want: Frame{
			Layers: HasIPv4 | HasUDP, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 34,
			L4:      hx("0001 0002 0100 0000 0001020304050607"),
			Payload: hx("0001020304050607"),
			IPv4:    IPv4{IHL: 5, Length: 36, ID: 0xabcd, MoreFragments: true, TTL: 64, Proto: ProtoUDP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
			UDP:     UDP{SrcPort: 1, DstPort: 2, Length: 256},
		},
	},
	{
		name: "IPv4 later fragment",
		in:   macs + "0800 45 00 001c abcd 00b9 40 11 0000" + ipHosts + "08090a0b0c0d0e0f",
		want: Frame{
			Layers: HasIPv4, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 34,
			L4:   hx("08090a0b0c0d0e0f"),
			IPv4: IPv4{IHL: 5, Length: 28, ID: 0xabcd, FragOffset: 185, TTL: 64, Proto: ProtoUDP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
		},
	},
	{
		name: "IPv4 ICMP echo padded",
		in:   macs + "0800 45 00 001e 0000 0000 40 01 0000" + ipHosts + "08 00 1234 0042 0007 6869" + strings.Repeat("00", 16),
		want: Frame{
			Layers: HasIPv4 | HasICMP, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 34,
			L4:      hx("08 00 1234 0042 0007 6869"),
			Payload: hx("0042 0007 6869"),
			IPv4:    IPv4{IHL: 5, Length: 30, TTL: 64, Proto: ProtoICMP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
			ICMP:    ICMP{Type: ICMPv4EchoRequest, Checksum: 0x1234},
		},
	},
	{
		name: "ICMPv6 in IPv4 is not ICMP",
		in:   macs + "0800 45 00 0018 0000 0000 40 3a 0000" + ipHosts + "80 00 1234",
		want: Frame{
			Layers: HasIPv4, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 34,
			L4:   hx("80 00 1234"),
			IPv4: IPv4{IHL: 5, Length: 24, TTL: 64, Proto: ProtoICMPv6, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
		},
	},
	{
		name: "IPv4 IHL 0",
		in:   macs + "0800 40 00 0014 0000 0000 40 06 0000" + ipHosts,
		err:  errIPv4IHL,
		want: Frame{Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14},
	},
	{
		name: "IPv4 IHL beyond frame",
		in:   macs + "0800 4f 00 003c 0000 0000 40 06 0000" + ipHosts,
		err:  errIPv4Options,
		want: Frame{Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14},
	},
	{
		name: "IPv4 short",
		in:   macs + "0800 45 00 0014 0000",
		err:  errIPv4Short,
		want: Frame{Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14},
	},
	{
		name: "IPv4 total length below IHL",
		in:   macs + "0800 45 00 0010 0000 0000 40 06 0000" + ipHosts,
		err:  errIPv4Length,
		want: Frame{Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14},
	},
	{
		name: "IPv4 wrong version",
		in:   macs + "0800 65 00 0014 0000 0000 40 06 0000" + ipHosts,
		err:  errIPv4Version,
		want: Frame{Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14},
	},
	{
		name: "TCP data offset 4",
		in:   macs + "0800 45 00 0028 0000 0000 40 06 0000" + ipHosts + "0001 0002 00000000 00000000 40 02 0000 0000 0000",
		err:  errTCPOffset,
		want: Frame{
			Layers: HasIPv4, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 34,
			L4:   hx("0001 0002 00000000 00000000 40 02 0000 0000 0000"),
			IPv4: IPv4{IHL: 5, Length: 40, TTL: 64, Proto: ProtoTCP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
		},
	},
	{
		name: "TCP options beyond packet",
		in:   macs + "0800 45 00 0028 0000 0000 40 06 0000" + ipHosts + "0001 0002 00000000 00000000 f0 02 0000 0000 0000",
		err:  errTCPOptions,
		want: Frame{
			Layers: HasIPv4, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 34,
			L4:   hx("0001 0002 00000000 00000000 f0 02 0000 0000 0000"),
			IPv4: IPv4{IHL: 5, Length: 40, TTL: 64, Proto: ProtoTCP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
		},
	},
	{
		name: "TCP short",
		in:   macs + "0800 45 00 001e 0000 0000 40 06 0000" + ipHosts + "0001 0002 00000000 0000",
		err:  errTCPShort,
		want: Frame{
			Layers: HasIPv4, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 34,
			L4:   hx("0001 0002 00000000 0000"),
			IPv4: IPv4{IHL: 5, Length: 30, TTL: 64, Proto: ProtoTCP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
		},
	},
	{
		name: "UDP length below 8",
		in:   macs + "0800 45 00 001c 0000 0000 40 11 0000" + ipHosts + "0001 0002 0004 0000",
		err:  errUDPLength,
		want: Frame{
			Layers: HasIPv4, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 34,
			L4:   hx("0001 0002 0004 0000"),
			IPv4: IPv4{IHL: 5, Length: 28, TTL: 64, Proto: ProtoUDP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
		},
	},
	{
		name: "UDP short",
		in:   macs + "0800 45 00 0018 0000 0000 40 11 0000" + ipHosts + "0001 0002",
		err:  errUDPShort,
		want: Frame{
			Layers: HasIPv4, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 34,
			L4:   hx("0001 0002"),
			IPv4: IPv4{IHL: 5, Length: 24, TTL: 64, Proto: ProtoUDP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
		},
	},
	{
		name: "ICMP short",
		in:   macs + "0800 45 00 0016 0000 0000 40 01 0000" + ipHosts + "0800",
		err:  errICMPShort,
		want: Frame{
			Layers: HasIPv4, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv4, L3Offset: 14, L4Offset: 34,
			L4:   hx("0800"),
			IPv4: IPv4{IHL: 5, Length: 22, TTL: 64, Proto: ProtoICMP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")},
		},
	},
	{
		name: "IPv6 HBH Fragment ICMPv6",
		in: macs + "86dd 60a12345 0018 00 40" + v6Hosts +
			"2c 00 0104 00000000" + // Hop-by-Hop: PadN
			"3a 00 0001 12345678" + // Fragment: offset 0, M
			"80 00 abcd 0001 0002", // echo request
		want: Frame{
			Layers: HasIPv6 | HasICMP, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv6, L3Offset: 14, L4Offset: 70,
			L4:      hx("80 00 abcd 0001 0002"),
			Payload: hx("0001 0002"),
			IPv6: IPv6{
				TrafficClass: 0x0a, FlowLabel: 0x12345, Length: 24, NextHeader: ProtoICMPv6, HopLimit: 64,
				Src: ip("fe80::1"), Dst: ip("ff02::1"), MoreFragments: true,
			},
			ICMP: ICMP{Type: 128, Checksum: 0xabcd},
		},
	},
	{
		name: "IPv6 later fragment",
		in:   macs + "86dd 60000000 0010 2c 40" + v6Hosts + "11 00 05a8 12345678 08090a0b0c0d0e0f",
		want: Frame{
			Layers: HasIPv6, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv6, L3Offset: 14, L4Offset: 62,
			L4:   hx("08090a0b0c0d0e0f"),
			IPv6: IPv6{Length: 16, NextHeader: ProtoUDP, HopLimit: 64, Src: ip("fe80::1"), Dst: ip("ff02::1"), FragOffset: 181},
		},
	},
	{
		name: "IPv6 UDP padded",
		in:   macs + "86dd 60000000 000c 11 ff" + v6Hosts + "0222 0223 000c 0000 61626364 0000",
		want: Frame{
			Layers: HasIPv6 | HasUDP, Dst: mac2, Src: mac1, EtherType: EtherTypeIPv6, L3Offset: 14, L4Offset: 54,
			L4:      hx("0222 0223 000c 0000 61626364"),
			Payload: []byte("abcd"),
			IPv6:    IPv6{Length: 12, NextHeader: ProtoUDP, HopLimit: 255, Src: ip("fe80::1"), Dst: ip("ff02::1")},
			UDP:     UDP{SrcPort: 546, DstPort: 547, Length: 12},
		},
	},
	{
		name: "IPv6 HBH next 0 length 255",
		in:   macs + "86dd 60000000 0008 00 40" + v6Hosts + "00 ff 0000 00000000",
		err:  errIPv6Ext,
		want: Frame{
			Dst: mac2, Src: mac1, EtherType: EtherTypeIPv6, L3Offset: 14,
			IPv6: IPv6{Length: 8, HopLimit: 64, Src: ip("fe80::1"), Dst: ip("ff02::1")},
		},
	},
	{
		name: "IPv6 extension header chain too long",
		in:   macs + "86dd 60000000 0048 00 40" + v6Hosts + strings.Repeat("00 00 0000 00000000", 9),
		err:  errIPv6ExtCount,
		want: Frame{
			Dst: mac2, Src: mac1, EtherType: EtherTypeIPv6, L3Offset: 14,
			IPv6: IPv6{Length: 72, HopLimit: 64, Src: ip("fe80::1"), Dst: ip("ff02::1")},
		},
	},
	{
		name: "IPv6 short",
		in:   macs + "86dd 60000000 0000 3b 40",
		err:  errIPv6Short,
		want: Frame{Dst: mac2, Src: mac1, EtherType: EtherTypeIPv6, L3Offset: 14},
	},
	{
		name: "IPv6 wrong version",
		in:   macs + "86dd 40000000 0000 3b 40" + v6Hosts,
		err:  errIPv6Version,
		want: Frame{Dst: mac2, Src: mac1, EtherType: EtherTypeIPv6, L3Offset: 14},
	},
	{
		name: "LLDP all TLVs",
		in: macs + "88cc" + lldpMin +
			"0804 65746830" + // Port Description "eth0"
			"0a02 7377" + // System Name "sw"
			"fe06 0026e1 01 abcd" + // organizationally specific
			"0000" + "0000000000",
		want: Frame{
			Layers: HasLLDP, Dst: mac2, Src: mac1, EtherType: EtherTypeLLDP, L3Offset: 14,
			LLDP: LLDP{
				ChassisID:       LLDPID{Subtype: ChassisSubtypeMAC, Value: mac1[:]},
				PortID:          LLDPID{Subtype: PortSubtypeComponent, Value: []byte{0, 1}},
				TTL:             120,
				PortDescription: []byte("eth0"),
				SystemName:      []byte("sw"),
				Org:             [MaxOrgTLVs]OrgTLV{{OUI: [3]byte{0x00, 0x26, 0xe1}, Subtype: 1, Value: []byte{0xab, 0xcd}}},
				NumOrg:          1,
			},
		},
	},
	{
		name: "LLDP TLV overruns frame",
		in:   macs + "88cc" + "0207 04 020000000001  0403 02 0001  07ff 0078",
		err:  errLLDPTLV,
		want: Frame{
			Dst: mac2, Src: mac1, EtherType: EtherTypeLLDP, L3Offset: 14,
			LLDP: LLDP{
				ChassisID: LLDPID{Subtype: ChassisSubtypeMAC, Value: mac1[:]},
				PortID:    LLDPID{Subtype: PortSubtypeComponent, Value: []byte{0, 1}},
			},
		},
	},
}

func TestDecode(t *testing.T) {
	var used Frame // reused across cases: Decode must reset it
	for _, tc := range decodeTests {
		t.Run(tc.name, func(t *testing.T) {
			in := hx(tc.in)
			var got Frame
			err := got.Decode(in)
			if err != tc.err {
				t.Errorf("err = %v, want %v", err, tc.err)
			}
			checkFrame(t, in, &got, err)
			want := tc.want
			if want.L3Offset > 0 {
				want.L3 = in[want.L3Offset:]
			}
			if !reflect.DeepEqual(norm(got), norm(want)) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
			if err := used.Decode(in); err != tc.err || !reflect.DeepEqual(norm(used), norm(got)) {
				t.Errorf("decoding into a used Frame gives\n%+v", used)
			}
		})
	}
}

// norm maps empty slices to nil so that DeepEqual compares contents only.
func norm(f Frame) Frame {
	l := &f.LLDP
	for _, s := range []*[]byte{&f.L3, &f.L4, &f.Payload, &l.ChassisID.Value, &l.PortID.Value, &l.PortDescription, &l.SystemName} {
		if len(*s) == 0 {
			*s = nil
		}
	}
	for i := range l.Org {
		if len(l.Org[i].Value) == 0 {
			l.Org[i].Value = nil
		}
	}
	return f
}

func TestLLDPDecode(t *testing.T) {
	org := "fe05 0026e1 01 00"
	for _, tc := range []struct {
		name   string
		in     string
		err    error
		numOrg int
	}{
		{"no End TLV", lldpMin, nil, 0},
		{"stops at End", lldpMin + "0000 ffff", nil, 0},
		{"extra org TLVs skipped", lldpMin + strings.Repeat(org, MaxOrgTLVs+2) + "0000", nil, MaxOrgTLVs},
		{"unknown TLV skipped", lldpMin + "0c01 00 " + org, nil, 1},
		{"empty", "", errLLDPMissing, 0},
		{"no TTL", "0207 04 020000000001  0403 02 0001", errLLDPMissing, 0},
		{"End first", "0000", errLLDPOrder, 0},
		{"Port ID first", "0403 02 0001  0207 04 020000000001  0602 0078", errLLDPOrder, 0},
		{"TTL before Port ID", "0207 04 020000000001  0602 0078  0403 02 0001", errLLDPOrder, 0},
		{"chassis ID without value", "0201 04", errLLDPID, 0},
		{"chassis ID too long", "0301" + strings.Repeat("00", 257), errLLDPID, 0},
		{"half a TLV header", "02", errLLDPTLV, 0},
		{"chassis ID overruns", "02ff 04 0200", errLLDPTLV, 0},
		{"length 511 overruns", lldpMin + "fffe 0000", errLLDPTLV, 0},
		{"short TTL", "0207 04 020000000001  0403 02 0001  0601 00", errLLDPTTL, 0},
		{"short org TLV", lldpMin + "fe03 0026e1", errLLDPOrg, 0},
		{"duplicate chassis ID", lldpMin + "0207 04 020000000001", errLLDPDup, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := hx(tc.in)
			var l LLDP
			err := l.Decode(in)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			checkLLDP(t, in, &l)
			if err == nil && (l.TTL != 120 || l.NumOrg != tc.numOrg) {
				t.Errorf("TTL %d, NumOrg %d, want 120, %d", l.TTL, l.NumOrg, tc.numOrg)
			}
		})
	}
}

func TestLLDPRoundTrip(t *testing.T) {
	info := LLDPInfo{
		ChassisID:  DPIDChassisID(0x1234),
		PortID:     PortNumberID(7),
		TTL:        120,
		SystemName: []byte("loom"),
		Org:        []OrgTLV{{OUI: [3]byte{0x00, 0x26, 0xe1}, Subtype: 1, Value: []byte("x")}},
	}
	b := AppendLLDP([]byte("prefix"), mac1, info)
	want := hx("0180c200000e 020000000001 88cc" +
		"0216 07 647069643a30303030303030303030303031323334" + // "dpid:0000000000001234"
		"0402 07 37" + // "7"
		"0602 0078" +
		"0a04 6c6f6f6d" + // "loom"
		"fe05 0026e1 01 78" +
		"0000")
	if !bytes.Equal(b, append([]byte("prefix"), want...)) {
		t.Fatalf("AppendLLDP =\n%x\nwant prefix +\n%x", b, want)
	}
	var f Frame
	if err := f.Decode(b[6:]); err != nil {
		t.Fatal(err)
	}
	l := f.LLDP
	if f.Layers != HasLLDP || f.Dst != LLDPMulticast || f.Src != mac1 || l.TTL != 120 ||
		string(l.SystemName) != "loom" || l.NumOrg != 1 || l.Org[0].OUI != info.Org[0].OUI ||
		l.Org[0].Subtype != 1 || string(l.Org[0].Value) != "x" {
		t.Fatalf("decoded %+v", f)
	}
	if dpid, ok := l.ChassisID.DPID(); !ok || dpid != 0x1234 {
		t.Errorf("DPID() = %#x, %v", dpid, ok)
	}
	if port, ok := l.PortID.PortNumber(); !ok || port != 7 {
		t.Errorf("PortNumber() = %d, %v", port, ok)
	}

	c := l.Clone()
	if !reflect.DeepEqual(c, l) {
		t.Fatalf("Clone() = %+v, want %+v", c, l)
	}
	clear(b)
	if dpid, _ := c.ChassisID.DPID(); dpid != 0x1234 || string(c.SystemName) != "loom" || string(c.Org[0].Value) != "x" {
		t.Errorf("Clone aliases the frame: %+v", c)
	}
}

func TestAppendLLDPTruncatesAndPads(t *testing.T) {
	long := bytes.Repeat([]byte{'a'}, 600)
	b := AppendLLDP(nil, mac1, LLDPInfo{
		ChassisID:  LLDPID{Subtype: ChassisSubtypeLocal, Value: long},
		PortID:     LLDPID{Subtype: PortSubtypeName, Value: long},
		SystemName: long,
		Org:        []OrgTLV{{Value: long}, {}},
	})
	var f Frame
	if err := f.Decode(b); err != nil {
		t.Fatal(err)
	}
	l := f.LLDP
	if len(l.ChassisID.Value) != 255 || len(l.PortID.Value) != 255 || len(l.SystemName) != 255 ||
		l.NumOrg != 2 || len(l.Org[0].Value) != 507 || len(l.Org[1].Value) != 0 {
		t.Errorf("lengths %d %d %d %d %d", len(l.ChassisID.Value), len(l.PortID.Value), len(l.SystemName), l.NumOrg, len(l.Org[0].Value))
	}

	b = AppendLLDP(nil, mac1, LLDPInfo{ChassisID: LLDPID{1, []byte{1}}, PortID: LLDPID{1, []byte{1}}})
	if len(b) != minFrame || f.Decode(b) != nil || f.Layers != HasLLDP {
		t.Errorf("minimal LLDP frame %x: %+v", b, f)
	}
}

func TestLLDPIDParse(t *testing.T) {
	for _, tc := range []struct {
		id     LLDPID
		dpid   uint64
		dpidOK bool
		port   uint32
		portOK bool
	}{
		{id: DPIDChassisID(0xfedcba9876543210), dpid: 0xfedcba9876543210, dpidOK: true},
		{id: LLDPID{ChassisSubtypeMAC, []byte("dpid:0000000000000001")}},
		{id: LLDPID{ChassisSubtypeLocal, []byte("dpid:000000000000001")}},
		{id: LLDPID{ChassisSubtypeLocal, []byte("dpid:000000000000000g")}},
		{id: PortNumberID(0xfffffffe), port: 0xfffffffe, portOK: true},
		{id: LLDPID{PortSubtypeLocal, []byte("4294967296")}},
		{id: LLDPID{PortSubtypeLocal, []byte("-1")}},
		{id: LLDPID{PortSubtypeComponent, []byte{0, 5}}, port: 5, portOK: true},
		{id: LLDPID{PortSubtypeComponent, []byte{0, 0, 1, 0}}, port: 256, portOK: true},
		{id: LLDPID{PortSubtypeComponent, []byte{0, 0, 1}}},
		{id: LLDPID{PortSubtypeName, []byte("eth0")}},
	} {
		dpid, dpidOK := tc.id.DPID()
		port, portOK := tc.id.PortNumber()
		if dpid != tc.dpid || dpidOK != tc.dpidOK || port != tc.port || portOK != tc.portOK {
			t.Errorf("%d/%q: DPID() = %#x, %v; PortNumber() = %d, %v", tc.id.Subtype, tc.id.Value, dpid, dpidOK, port, portOK)
		}
	}
}

func TestAppendARP(t *testing.T) {
	b := AppendARP(nil, ARPRequest, mac1, ip("10.0.0.1"), MAC{}, ip("10.0.0.2"))
	want := hx("ffffffffffff 020000000001 0806 0001 0800 06 04 0001 020000000001 0a000001 000000000000 0a000002" + strings.Repeat("00", 18))
	if !bytes.Equal(b, want) {
		t.Fatalf("request\n%x\nwant\n%x", b, want)
	}

	b = AppendARP(nil, ARPReply, mac2, ip("::ffff:10.0.0.2"), mac1, ip("2001:db8::1"))
	var f Frame
	if err := f.Decode(b); err != nil {
		t.Fatal(err)
	}
	wantARP := ARP{Op: ARPReply, SHA: mac2, SPA: ip("10.0.0.2"), THA: mac1, TPA: ip("0.0.0.0")}
	if f.Layers != HasARP || f.Dst != mac1 || f.Src != mac2 || f.ARP != wantARP {
		t.Errorf("reply decodes as %+v", f)
	}
}

func TestAppendIPv4UDP(t *testing.T) {
	b := AppendIPv4UDP(nil, mac2, mac1, ip("10.0.0.1"), ip("10.0.0.2"), 68, 67, []byte("odd"))
	if len(b) != minFrame {
		t.Errorf("len = %d, want %d", len(b), minFrame)
	}
	var f Frame
	if err := f.Decode(b); err != nil {
		t.Fatal(err)
	}
	wantIP := IPv4{IHL: 5, Length: 31, TTL: 64, Proto: ProtoUDP, Src: ip("10.0.0.1"), Dst: ip("10.0.0.2")}
	if f.Layers != HasIPv4|HasUDP || f.IPv4 != wantIP || f.UDP.SrcPort != 68 || f.UDP.DstPort != 67 ||
		f.UDP.Length != 11 || string(f.Payload) != "odd" {
		t.Errorf("decodes as %+v", f)
	}
	if c := checksum(sum(0, b[14:34])); c != 0 {
		t.Errorf("IPv4 header does not check: %#x", c)
	}
	if c := checksum(sum(ProtoUDP+11, b[26:45])); c != 0 || f.UDP.Checksum == 0 {
		t.Errorf("UDP checksum %#x does not check: %#x", f.UDP.Checksum, c)
	}

	b = AppendIPv4UDP(nil, mac2, mac1, ip("10.0.0.1"), ip("10.0.0.2"), 1, 2, make([]byte, 70000))
	if err := f.Decode(b); err != nil || f.IPv4.Length != 0xffff || f.UDP.Length != 0xffff-20 || len(b) != 14+0xffff {
		t.Errorf("oversized payload: err %v, IPv4 %d, UDP %d, frame %d", err, f.IPv4.Length, f.UDP.Length, len(b))
	}
}

func TestAppendIPv4ICMPEcho(t *testing.T) {
	b := AppendIPv4ICMPEcho(nil, mac2, mac1, ip("10.0.0.1"), ip("10.0.0.2"), ICMPv4EchoReply, 0x42, 7, []byte("hi"))
	var f Frame
	if err := f.Decode(b); err != nil {
		t.Fatal(err)
	}
	if f.Layers != HasIPv4|HasICMP || f.IPv4.Length != 30 || f.ICMP.Type != ICMPv4EchoReply || f.ICMP.Code != 0 ||
		!bytes.Equal(f.Payload, hx("0042 0007 6869")) {
		t.Errorf("decodes as %+v", f)
	}
	if checksum(sum(0, b[14:34])) != 0 || checksum(sum(0, f.L4)) != 0 {
		t.Errorf("checksums do not check: %x", b)
	}
}

func TestChecksum(t *testing.T) {
	// RFC 1071, section 3.
	if c := checksum(sum(0, hx("0001 f203 f4f5 f6f7"))); c != ^uint16(0xddf2) {
		t.Errorf("checksum = %#x", c)
	}
	if c := checksum(sum(0, hx("0001 f203 f4f5 f6f7 01"))); c != ^uint16(0xdef2) {
		t.Errorf("odd checksum = %#x", c)
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{MAC{0x0a, 0xbb, 0, 1, 0xff, 0x10}.String(), "0a:bb:00:01:ff:10"},
		{(HasVLAN | HasIPv4 | HasUDP).String(), "vlan|ipv4|udp"},
		{Layers(0).String(), "none"},
		{errIPv4IHL.Error(), "packet: ipv4: IHL below 5"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if !errors.Is(errVLAN, ErrTruncated) || !errors.Is(errIPv4IHL, ErrMalformed) || errors.Is(errVLAN, ErrMalformed) {
		t.Error("error kinds do not unwrap")
	}
}

// allocFrames are the frames whose decoding must not allocate.
var allocFrames = map[string][]byte{
	"udp":  AppendIPv4UDP(nil, mac2, mac1, ip("10.0.0.1"), ip("10.0.0.2"), 68, 67, []byte("payload")),
	"arp":  AppendARP(nil, ARPRequest, mac1, ip("10.0.0.1"), MAC{}, ip("10.0.0.2")),
	"lldp": AppendLLDP(nil, mac1, LLDPInfo{ChassisID: DPIDChassisID(1), PortID: PortNumberID(1), TTL: 120}),
	"ipv6": tableFrame("IPv6 HBH Fragment ICMPv6"),
	"bad":  hx("01020304050601020304050681000001"),
}

// tableFrame returns the input of the named decodeTests case.
func tableFrame(name string) []byte {
	for _, tc := range decodeTests {
		if tc.name == name {
			return hx(tc.in)
		}
	}
	panic("no test case " + name)
}

func TestDecodeAllocs(t *testing.T) {
	var f Frame
	for name, b := range allocFrames {
		if n := testing.AllocsPerRun(100, func() { _ = f.Decode(b) }); n != 0 {
			t.Errorf("%s: %v allocs per Decode", name, n)
		}
	}
}

func BenchmarkDecodeIPv4UDP(b *testing.B) { benchDecode(b, allocFrames["udp"]) }

func BenchmarkDecodeARP(b *testing.B) { benchDecode(b, allocFrames["arp"]) }

func benchDecode(b *testing.B, frame []byte) {
	var f Frame
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := f.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}
