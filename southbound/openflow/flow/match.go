package flow

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
)

// MatchField is one field of a match. Masked fields carry Mask; a mask of
// all ones is stored as no mask and value bits outside the mask are cleared,
// the same normalisation Open vSwitch applies, so a flow read back from a
// switch compares equal to the one Loom sent.
type MatchField struct {
	Field  Field
	Masked bool
	Value  uint64
	Mask   uint64
	// Raw holds the whole TLV of a field Loom has no name for.
	Raw string
}

// Match is a list of fields in canonical (Field) order. Build one with the
// chaining helpers: flow.Match{}.InPort(1).EthDst(mac).
type Match []MatchField

// With returns m with f set (replacing an earlier value of the same field),
// kept in canonical order.
func (m Match) With(f MatchField) Match {
	if f.Field != FieldRaw {
		full := f.Field.fullMask()
		if f.Masked && f.Mask&full == full {
			f.Masked, f.Mask = false, 0
		}
		if f.Masked {
			f.Value &= f.Mask
		}
		f.Value &= full
	}
	i, found := slices.BinarySearchFunc(m, f, cmpField)
	if found && f.Field != FieldRaw {
		out := slices.Clone(m)
		out[i] = f
		return out
	}
	out := make(Match, 0, len(m)+1)
	out = append(out, m[:i]...)
	out = append(out, f)
	return append(out, m[i:]...)
}

func cmpField(a, b MatchField) int {
	if a.Field != b.Field {
		return int(a.Field) - int(b.Field)
	}
	return strings.Compare(a.Raw, b.Raw)
}

// Set sets an exact-match field.
func (m Match) Set(f Field, v uint64) Match { return m.With(MatchField{Field: f, Value: v}) }

// SetMasked sets a masked field.
func (m Match) SetMasked(f Field, v, mask uint64) Match {
	return m.With(MatchField{Field: f, Value: v, Mask: mask, Masked: true})
}

// Convenience setters for the common fields.
func (m Match) InPort(p uint32) Match     { return m.Set(InPort, uint64(p)) }
func (m Match) EthSrc(a MAC) Match        { return m.Set(EthSrc, uint64(a)) }
func (m Match) EthDst(a MAC) Match        { return m.Set(EthDst, uint64(a)) }
func (m Match) EthType(t uint16) Match    { return m.Set(EthType, uint64(t)) }
func (m Match) TunnelID(id uint64) Match  { return m.Set(TunnelID, id) }
func (m Match) IPProto(p uint8) Match     { return m.Set(IPProto, uint64(p)) }
func (m Match) Reg(n int, v uint32) Match { return m.Set(Reg0+Field(n), uint64(v)) }

// Multicast matches frames whose destination has the group bit set.
func (m Match) Multicast() Match {
	return m.SetMasked(EthDst, 0x010000000000, 0x010000000000)
}

// Get returns the field's entry.
func (m Match) Get(f Field) (MatchField, bool) {
	for _, x := range m {
		if x.Field == f {
			return x, true
		}
	}
	return MatchField{}, false
}

// appendKey appends a compact binary encoding of m that is equal for equal
// matches; it is the match part of a flow's identity.
func (m Match) appendKey(b []byte) []byte {
	for _, f := range m {
		b = append(b, byte(f.Field))
		if f.Field == FieldRaw {
			b = append(b, byte(len(f.Raw)))
			b = append(b, f.Raw...)
			continue
		}
		b = binary.BigEndian.AppendUint64(b, f.Value)
		if f.Masked {
			b = append(b, 1)
			b = binary.BigEndian.AppendUint64(b, f.Mask)
		} else {
			b = append(b, 0)
		}
	}
	return b
}

// Equal reports whether two matches are identical.
func (m Match) Equal(o Match) bool { return slices.Equal(m, o) }

// String renders the match as ovs-ofctl prints it (see Flow.String), the
// default priority's: "tcp,in_port=1,nw_src=10.0.0.0/24,tp_dst=80".
func (m Match) String() string { return string(m.appendText(nil, defaultPriority)) }

// String renders the field alone as ovs-ofctl prints it in a match.
func (f MatchField) String() string { return Match{f}.String() }

func appendN(b []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*uint(i))))
	}
	return b
}

func isPort(f Field) bool { return f == TCPSrc || f == TCPDst || f == UDPSrc || f == UDPDst }

// PortRange returns the masked matches (value, mask) that together match
// the transport ports lo through hi: the fewest aligned power-of-two
// blocks that cover the range exactly, at most 30 for 16-bit ports (a
// mask of 0xffff is an exact match). Set each with SetMasked on TCPDst,
// UDPDst and the like, one flow (or conjunction clause flow) each.
func PortRange(lo, hi uint16) [][2]uint64 {
	var out [][2]uint64
	for v := uint32(lo); v <= uint32(hi); {
		// The largest block that starts at v and stays within hi.
		size := uint32(1)
		for v&(size*2-1) == 0 && v+size*2-1 <= uint32(hi) && size < 1<<16 {
			size *= 2
		}
		out = append(out, [2]uint64{uint64(v), uint64(0xffff &^ (size - 1))})
		v += size
	}
	return out
}

// OXM IPV6_SRC (class 0x8000, field 26, 16 bytes), which Match carries as
// a raw TLV: its value does not fit a uint64.
const oxmIPv6Src = 0x8000<<16 | 26<<9 | 16

// IPv6Src matches an exact IPv6 source address (needs dl_type=0x86dd).
func (m Match) IPv6Src(a [16]byte) Match {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 20), oxmIPv6Src)
	return m.With(MatchField{Field: FieldRaw, Raw: string(append(b, a[:]...))})
}

// OXM IPV6_DST (field 27); the hasmask bit of an OXM header.
const (
	oxmIPv6Dst  = 0x8000<<16 | 27<<9 | 16
	oxmHasMask  = 1 << 8
	oxmIPv6Mask = 0xffffffff &^ 0xff // header bits without the length
)

// IPv6Prefix matches the IPv6 source (or destination, dst) within p (needs
// dl_type=0x86dd), encoded as Open vSwitch reports it back: nothing for
// /0, an exact match for /128, else the masked field with the address's
// host bits cleared.
func (m Match) IPv6Prefix(dst bool, p netip.Prefix) Match {
	hdr := uint32(oxmIPv6Src)
	if dst {
		hdr = oxmIPv6Dst
	}
	p = p.Masked()
	a := p.Addr().As16()
	switch p.Bits() {
	case 0:
		return m
	case 128:
		b := binary.BigEndian.AppendUint32(make([]byte, 0, 20), hdr)
		return m.With(MatchField{Field: FieldRaw, Raw: string(append(b, a[:]...))})
	}
	var mask [16]byte
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 36), hdr&oxmIPv6Mask|oxmHasMask|32)
	b = append(append(b, a[:]...), mask[:]...)
	return m.With(MatchField{Field: FieldRaw, Raw: string(b)})
}
