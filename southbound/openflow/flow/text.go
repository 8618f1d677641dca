package flow

import (
	"encoding/hex"
	"math/bits"
	"net/netip"
	"strconv"
)

// Text forms. Flow.String prints a flow exactly as
// `ovs-ofctl -O OpenFlow13 --no-names --no-stats dump-flows` (Open vSwitch
// 3.1) prints the same entry, without the leading space: OVS's
// ofputil_flow_stats_format and match_format (lib/ofp-flow.c, lib/match.c)
// with no port or table names. TestStringIsOfctlText checks it against
// ovs-ofctl itself.

// defaultPriority is OFP_DEFAULT_PRIORITY, the priority ovs-ofctl leaves
// out.
const defaultPriority = 0x8000

// appendText appends the flow's text: the entry's header, the match with
// the priority, " actions=" and the instructions.
func (f *Flow) appendText(b []byte) []byte {
	if f.Cookie != 0 {
		b = append(b, "cookie=0x"...)
		b = strconv.AppendUint(b, f.Cookie, 16)
		b = append(b, ", "...)
	}
	if f.Table != 0 {
		b = append(b, "table="...)
		b = strconv.AppendUint(b, uint64(f.Table), 10)
		b = append(b, ", "...)
	}
	if f.IdleTimeout != 0 {
		b = append(b, "idle_timeout="...)
		b = strconv.AppendUint(b, uint64(f.IdleTimeout), 10)
		b = append(b, ", "...)
	}
	if f.HardTimeout != 0 {
		b = append(b, "hard_timeout="...)
		b = strconv.AppendUint(b, uint64(f.HardTimeout), 10)
		b = append(b, ", "...)
	}
	// ovs-ofctl ends each flag with a space, not a comma.
	if f.Flags&FlagSendFlowRem != 0 {
		b = append(b, "send_flow_rem "...)
	}
	if f.Flags&FlagCheckOverlap != 0 {
		b = append(b, "check_overlap "...)
	}
	if f.Flags&FlagResetCounts != 0 {
		b = append(b, "reset_counts "...)
	}
	n := len(b)
	b = f.Match.appendText(b, f.Priority)
	if len(b) != n {
		b = append(b, ' ')
	}
	b = append(b, "actions="...)
	return append(b, f.Instructions.String()...)
}

// appendText appends the match as OVS's match_format writes it: the
// priority unless it is the default, then the fields in OVS's order, the
// protocol as a shorthand (ip, tcp, udp6, arp...) where there is one and
// the fields under the names OVS gives them (tp_src for the TCP and UDP
// ports, icmp_type for ICMPv4 and ICMPv6, nw_tos for the DSCP, dl_vlan,
// dl_vlan_pcp or vlan_tci for the VLAN fields). Fields Loom has no name
// for come last, as oxm(HEX).
func (m Match) appendText(b []byte, priority uint16) []byte {
	var by [numFields]*MatchField
	var ipv6Src, ipv6Dst, raws []MatchField
	for i := range m {
		switch mf := &m[i]; {
		case mf.Field < numFields:
			by[mf.Field] = mf
		case ipv6Name(mf.Raw) == "ipv6_src":
			ipv6Src = append(ipv6Src, *mf)
		case ipv6Name(mf.Raw) == "ipv6_dst":
			ipv6Dst = append(ipv6Dst, *mf)
		default:
			raws = append(raws, *mf)
		}
	}
	start := len(b)
	if priority != defaultPriority {
		b = append(b, "priority="...)
		b = strconv.AppendUint(b, uint64(priority), 10)
		b = append(b, ',')
	}
	b = appendHexMasked(b, "pkt_mark", by[PktMark])
	if f := by[ConjID]; f != nil {
		b = append(b, "conj_id="...)
		b = strconv.AppendUint(b, f.Value, 10)
		b = append(b, ',')
	}
	if f := by[CTState]; f != nil {
		b = appendCTState(b, f)
	}
	b = appendIntMasked(b, "ct_zone", by[CTZone])
	b = appendHexMasked(b, "ct_mark", by[CTMark])

	// The protocol shorthand, which stands for dl_type and, where it names
	// one, nw_proto.
	dlType, proto := -1, -1
	if f := by[EthType]; f != nil {
		dlType = int(f.Value)
	}
	if f := by[IPProto]; f != nil {
		proto = int(f.Value)
	}
	shortType, shortProto := true, false
	switch dlType {
	case 0x0800:
		name := map[int]string{1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}[proto]
		if shortProto = name != ""; !shortProto {
			name = "ip"
		}
		b = append(append(b, name...), ',')
	case 0x86dd:
		name := map[int]string{58: "icmp6", 6: "tcp6", 17: "udp6", 132: "sctp6"}[proto]
		if shortProto = name != ""; !shortProto {
			name = "ipv6"
		}
		b = append(append(b, name...), ',')
	case 0x0806:
		b = append(b, "arp,"...)
	case 0x8035:
		b = append(b, "rarp,"...)
	case 0x8847:
		b = append(b, "mpls,"...)
	case 0x8848:
		b = append(b, "mplsm,"...)
	default:
		shortType = false
	}

	for r := Reg0; r <= Reg7; r++ {
		b = appendHexMasked(b, fields[r].name, by[r])
	}
	b = appendHexMasked(b, "tun_id", by[TunnelID])
	b = appendIPMasked(b, "tun_src", by[TunSrc])
	b = appendIPMasked(b, "tun_dst", by[TunDst])
	b = appendHexMasked(b, "metadata", by[Metadata])
	if f := by[InPort]; f != nil {
		b = append(b, "in_port="...)
		b = append(b, PortName(uint32(f.Value))...)
		b = append(b, ',')
	}
	b = appendVLAN(b, by[VlanVID], by[VlanPCP])
	b = appendMACMasked(b, "dl_src", by[EthSrc])
	b = appendMACMasked(b, "dl_dst", by[EthDst])
	if !shortType && dlType >= 0 {
		b = append(b, "dl_type=0x"...)
		b = appendPadHex(b, uint64(dlType), 4)
		b = append(b, ',')
	}
	for _, f := range ipv6Src {
		b = append(append(b, ipv6String([]byte(f.Raw))...), ',')
	}
	for _, f := range ipv6Dst {
		b = append(append(b, ipv6String([]byte(f.Raw))...), ',')
	}
	b = appendIPMasked(b, "arp_spa", by[ARPSpa])
	b = appendIPMasked(b, "arp_tpa", by[ARPTpa])
	b = appendIPMasked(b, "nw_src", by[IPv4Src])
	b = appendIPMasked(b, "nw_dst", by[IPv4Dst])
	if f := by[IPProto]; f != nil && !shortProto {
		b = append(b, "nw_proto="...)
		b = strconv.AppendUint(b, f.Value, 10)
		b = append(b, ',')
	}
	if f := by[ARPOp]; f != nil {
		// OVS keeps the ARP opcode in nw_proto's place.
		b = append(b, "arp_op="...)
		b = strconv.AppendUint(b, f.Value&0xff, 10)
		b = append(b, ',')
	}
	b = appendMACMasked(b, "arp_sha", by[ARPSha])
	b = appendMACMasked(b, "arp_tha", by[ARPTha])
	if f := by[IPDSCP]; f != nil {
		b = append(b, "nw_tos="...)
		b = strconv.AppendUint(b, f.Value<<2&0xfc, 10)
		b = append(b, ',')
	}
	b = appendIntMasked(b, "icmp_type", by[ICMPv4Type])
	b = appendIntMasked(b, "icmp_code", by[ICMPv4Code])
	b = appendIntMasked(b, "icmp_type", by[ICMPv6Type])
	b = appendIntMasked(b, "icmp_code", by[ICMPv6Code])
	b = appendIntMasked(b, "tp_src", by[TCPSrc])
	b = appendIntMasked(b, "tp_src", by[UDPSrc])
	b = appendIntMasked(b, "tp_dst", by[TCPDst])
	b = appendIntMasked(b, "tp_dst", by[UDPDst])
	for _, f := range raws {
		b = append(b, "oxm("...)
		b = hex.AppendEncode(b, []byte(f.Raw))
		b = append(b, "),"...)
	}
	if len(b) > start && b[len(b)-1] == ',' {
		b = b[:len(b)-1]
	}
	return b
}

// appendHexMasked is OVS's format_uint32_masked and format_be64_masked:
// NAME=VALUE[/MASK] in C's %#x ("0" for zero).
func appendHexMasked(b []byte, name string, f *MatchField) []byte {
	if f == nil {
		return b
	}
	b = append(append(b, name...), '=')
	b = appendCHex(b, f.Value)
	if f.Masked {
		b = appendCHex(append(b, '/'), f.Mask)
	}
	return append(b, ',')
}

// appendCHex appends v as C's printf("%#x") does: "0" for zero, else 0x
// and the digits.
func appendCHex(b []byte, v uint64) []byte {
	if v == 0 {
		return append(b, '0')
	}
	return strconv.AppendUint(append(b, "0x"...), v, 16)
}

// appendIntMasked is OVS's format_be16_masked: NAME=DECIMAL, or
// NAME=0xVALUE/0xMASK when masked.
func appendIntMasked(b []byte, name string, f *MatchField) []byte {
	if f == nil {
		return b
	}
	b = append(append(b, name...), '=')
	if !f.Masked {
		b = strconv.AppendUint(b, f.Value, 10)
	} else {
		b = strconv.AppendUint(append(b, "0x"...), f.Value, 16)
		b = strconv.AppendUint(append(b, "/0x"...), f.Mask, 16)
	}
	return append(b, ',')
}

// appendIPMasked is OVS's format_ip_netmask: A.B.C.D, A.B.C.D/N for a
// prefix mask, A.B.C.D/M.A.S.K otherwise.
func appendIPMasked(b []byte, name string, f *MatchField) []byte {
	if f == nil || (f.Masked && f.Mask == 0) {
		return b
	}
	b = append(append(b, name...), '=')
	b = appendIPv4(b, f.Value)
	if f.Masked {
		m := uint32(f.Mask)
		if ones := bits.LeadingZeros32(^m); m<<ones == 0 {
			b = strconv.AppendInt(append(b, '/'), int64(ones), 10)
		} else {
			b = appendIPv4(append(b, '/'), f.Mask)
		}
	}
	return append(b, ',')
}

func appendIPv4(b []byte, v uint64) []byte {
	for i := 3; i >= 0; i-- {
		b = strconv.AppendUint(b, v>>(8*uint(i))&0xff, 10)
		if i > 0 {
			b = append(b, '.')
		}
	}
	return b
}

// appendMACMasked is OVS's format_eth_masked.
func appendMACMasked(b []byte, name string, f *MatchField) []byte {
	if f == nil || (f.Masked && f.Mask == 0) {
		return b
	}
	b = append(append(b, name...), '=')
	b = append(b, MAC(f.Value).String()...)
	if f.Masked {
		b = append(append(b, '/'), MAC(f.Mask).String()...)
	}
	return append(b, ',')
}

func appendPadHex(b []byte, v uint64, width int) []byte {
	s := strconv.FormatUint(v, 16)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// ctStateNames are OVS's names of the ct_state bits, from bit 0.
var ctStateNames = [8]string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}

// appendCTState is match_format's ct_state: the set flags joined by "|"
// (or 0) for an exact match, else +FLAG or -FLAG for each bit of the mask,
// lowest first. OVS holds the state in 8 bits.
func appendCTState(b []byte, f *MatchField) []byte {
	v, mask := uint8(f.Value), uint8(0xff)
	if f.Masked {
		mask = uint8(f.Mask)
	}
	b = append(b, "ct_state="...)
	switch mask {
	case 0xff:
		if v == 0 {
			b = append(b, '0')
			break
		}
		for i, sep := 0, false; i < 8; i++ {
			if v&(1<<i) != 0 {
				if sep {
					b = append(b, '|')
				}
				b, sep = append(b, ctStateNames[i]...), true
			}
		}
	case 0:
		b = append(b, "0/0"...)
	default:
		for i := 0; i < 8; i++ {
			if mask&(1<<i) != 0 {
				if v&(1<<i) != 0 {
					b = append(b, '+')
				} else {
					b = append(b, '-')
				}
				b = append(b, ctStateNames[i]...)
			}
		}
	}
	return append(b, ',')
}

// VLAN TCI bits as OVS keeps them: the OXM VLAN_VID's OFPVID_PRESENT bit is
// the TCI's CFI bit.
const (
	tciVID = 0x0fff
	tciCFI = 0x1000
	tciPCP = 0xe000
)

// appendVLAN converts the OXM VLAN_VID and VLAN_PCP fields to the TCI
// match OVS keeps (match_set_vlan_vid_masked, match_set_dl_vlan_pcp) and
// prints that as match_format does: dl_vlan and dl_vlan_pcp for a tagged
// frame's whole VID or PCP, vlan_tci=TCI[/MASK] otherwise.
func appendVLAN(b []byte, vid, pcp *MatchField) []byte {
	var tci, mask uint16
	if vid != nil {
		m := uint16(0xffff)
		if vid.Masked {
			m = uint16(vid.Mask)
		}
		m &= tciVID | tciCFI
		tci, mask = uint16(vid.Value)&m, m
	}
	if pcp != nil {
		tci = tci&^tciPCP | uint16(pcp.Value&7)<<13 | tciCFI
		mask |= tciCFI | tciPCP
	}
	if mask == 0 {
		return b
	}
	vidMask, pcpMask := mask&tciVID, mask&tciPCP
	switch {
	case mask&tciCFI != 0 && tci&tciCFI != 0 && (vidMask == 0 || vidMask == tciVID) &&
		(pcpMask == 0 || pcpMask == tciPCP) && (vidMask != 0 || pcpMask != 0):
		if vidMask != 0 {
			b = strconv.AppendUint(append(b, "dl_vlan="...), uint64(tci&tciVID), 10)
			b = append(b, ',')
		}
		if pcpMask != 0 {
			b = strconv.AppendUint(append(b, "dl_vlan_pcp="...), uint64(tci>>13), 10)
			b = append(b, ',')
		}
	case mask == 0xffff:
		b = appendPadHex(append(b, "vlan_tci=0x"...), uint64(tci), 4)
		b = append(b, ',')
	default:
		b = appendPadHex(append(b, "vlan_tci=0x"...), uint64(tci), 4)
		b = appendPadHex(append(b, "/0x"...), uint64(mask), 4)
		b = append(b, ',')
	}
	return b
}

// ipv6Name names a raw IPv6 address field ("ipv6_src", "ipv6_dst"), or
// returns "".
func ipv6Name(raw string) string {
	if len(raw) < 4 || raw[0] != 0x80 || raw[1] != 0 {
		return ""
	}
	n := map[byte]string{26: "ipv6_src", 27: "ipv6_dst"}[raw[2]>>1]
	if n == "" || !(raw[2]&1 == 0 && raw[3] == 16 && len(raw) == 20 || raw[2]&1 == 1 && raw[3] == 32 && len(raw) == 36) {
		return ""
	}
	return n
}

// ipv6String renders a raw IPv6 address field as ovs-ofctl does
// (format_ipv6_netmask: ADDR, ADDR/N for a prefix mask, ADDR/MASK
// otherwise), or "".
func ipv6String(r []byte) string {
	name := ipv6Name(string(r))
	if name == "" {
		return ""
	}
	addr := ipv6Text([16]byte(r[4:20]))
	if len(r) == 20 {
		return name + "=" + addr
	}
	mask := [16]byte(r[20:])
	// n leading ones; a prefix mask has nothing after them.
	n := 0
	for _, c := range mask {
		ones := bits.LeadingZeros8(^c)
		if n += ones; ones < 8 {
			break
		}
	}
	var want [16]byte
	for i := range n {
		want[i/8] |= 0x80 >> (i % 8)
	}
	switch {
	case n == 128:
		return name + "=" + addr
	case mask == want:
		return name + "=" + addr + "/" + strconv.Itoa(n)
	}
	return name + "=" + addr + "/" + ipv6Text(mask)
}

// ipv6Text is glibc's inet_ntop, which Go's netip matches except for the
// IPv4-compatible addresses ::A.B.C.D (six zero groups, then a nonzero
// one).
func ipv6Text(a [16]byte) string {
	if [12]byte(a[:12]) == [12]byte{} && a[12]|a[13] != 0 {
		return "::" + string(appendIPv4(nil, uint64(a[12])<<24|uint64(a[13])<<16|uint64(a[14])<<8|uint64(a[15])))
	}
	return netip.AddrFrom16(a).String()
}
