package packet

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
)

// LLDP TLV types (IEEE 802.1AB).
const (
	tlvEnd             = 0
	tlvChassisID       = 1
	tlvPortID          = 2
	tlvTTL             = 3
	tlvPortDescription = 4
	tlvSystemName      = 5
	tlvOrgSpecific     = 127
)

// Chassis ID and Port ID subtypes.
const (
	ChassisSubtypeMAC    = 4
	ChassisSubtypeLocal  = 7
	PortSubtypeComponent = 2
	PortSubtypeMAC       = 3
	PortSubtypeName      = 5
	PortSubtypeLocal     = 7
)

// MaxOrgTLVs is how many organizationally specific TLVs LLDP keeps; further
// ones are skipped.
const MaxOrgTLVs = 4

// LLDPID is a Chassis ID or Port ID: a subtype and a 1..255-byte value.
type LLDPID struct {
	Subtype uint8
	Value   []byte
}

// OrgTLV is an organizationally specific TLV.
type OrgTLV struct {
	OUI     [3]byte
	Subtype uint8
	Value   []byte // at most 507 bytes
}

// LLDP is a decoded LLDPDU. Its slices alias the decoded buffer; see Clone.
type LLDP struct {
	ChassisID       LLDPID
	PortID          LLDPID
	TTL             uint16 // seconds
	PortDescription []byte // nil if absent
	SystemName      []byte // nil if absent
	Org             [MaxOrgTLVs]OrgTLV
	NumOrg          int
}

// Decode resets l and decodes the LLDPDU b (the payload of an EtherTypeLLDP
// frame). The slices in l alias b and are valid while b is. Chassis ID, Port
// ID and TTL must come first and in that order; decoding stops at the End
// TLV or at the end of b. Unknown TLVs are skipped.
func (l *LLDP) Decode(b []byte) error {
	*l = LLDP{}
	// Each iteration consumes at least the 2-byte TLV header.
	for i := 0; ; i++ {
		if len(b) == 0 {
			if i < 3 {
				return errLLDPMissing
			}
			return nil // a missing End TLV is tolerated
		}
		if len(b) < 2 {
			return errLLDPTLV
		}
		typ, n := int(b[0]>>1), int(be.Uint16(b)&0x1ff)
		if n > len(b)-2 {
			return errLLDPTLV
		}
		v := b[2 : 2+n]
		b = b[2+n:]
		switch {
		case i < 3 && typ != i+1:
			return errLLDPOrder
		case i >= 3 && typ >= tlvChassisID && typ <= tlvTTL:
			return errLLDPDup
		}
		switch typ {
		case tlvEnd:
			return nil
		case tlvChassisID, tlvPortID:
			if n < 2 || n > 256 {
				return errLLDPID
			}
			id := LLDPID{Subtype: v[0], Value: v[1:]}
			if typ == tlvChassisID {
				l.ChassisID = id
			} else {
				l.PortID = id
			}
		case tlvTTL:
			if n < 2 {
				return errLLDPTTL
			}
			l.TTL = be.Uint16(v)
		case tlvPortDescription:
			l.PortDescription = v
		case tlvSystemName:
			l.SystemName = v
		case tlvOrgSpecific:
			if n < 4 {
				return errLLDPOrg
			}
			if l.NumOrg < len(l.Org) {
				l.Org[l.NumOrg] = OrgTLV{OUI: [3]byte(v[:3]), Subtype: v[3], Value: v[4:]}
				l.NumOrg++
			}
		}
	}
}

// Clone returns a deep copy of l that does not alias the decoded buffer.
func (l *LLDP) Clone() LLDP {
	c := *l
	c.ChassisID.Value = bytes.Clone(l.ChassisID.Value)
	c.PortID.Value = bytes.Clone(l.PortID.Value)
	c.PortDescription = bytes.Clone(l.PortDescription)
	c.SystemName = bytes.Clone(l.SystemName)
	for i := range c.Org {
		c.Org[i].Value = bytes.Clone(l.Org[i].Value)
	}
	return c
}

// DPIDChassisID returns the Chassis ID Loom puts in its LLDP probes:
// "dpid:%016x" with the locally assigned subtype.
func DPIDChassisID(dpid uint64) LLDPID {
	return LLDPID{Subtype: ChassisSubtypeLocal, Value: fmt.Appendf(nil, "dpid:%016x", dpid)}
}

// DPID parses a Chassis ID made by DPIDChassisID.
func (id LLDPID) DPID() (uint64, bool) {
	h, ok := bytes.CutPrefix(id.Value, []byte("dpid:"))
	var d [8]byte
	if id.Subtype != ChassisSubtypeLocal || !ok || len(h) != 2*len(d) {
		return 0, false
	}
	if _, err := hex.Decode(d[:], h); err != nil {
		return 0, false
	}
	return be.Uint64(d[:]), true
}

// PortNumberID returns the Port ID Loom puts in its LLDP probes: the
// OpenFlow port number in decimal with the locally assigned subtype.
func PortNumberID(port uint32) LLDPID {
	return LLDPID{Subtype: PortSubtypeLocal, Value: strconv.AppendUint(nil, uint64(port), 10)}
}

// PortNumber parses a Port ID holding an OpenFlow port number: decimal text
// with the locally assigned subtype (PortNumberID), or a 2- or 4-byte
// big-endian number with the port component subtype (as other controllers
// send).
func (id LLDPID) PortNumber() (uint32, bool) {
	switch {
	case id.Subtype == PortSubtypeLocal:
		if n, err := strconv.ParseUint(string(id.Value), 10, 32); err == nil {
			return uint32(n), true
		}
	case id.Subtype == PortSubtypeComponent && len(id.Value) == 2:
		return uint32(be.Uint16(id.Value)), true
	case id.Subtype == PortSubtypeComponent && len(id.Value) == 4:
		return be.Uint32(id.Value), true
	}
	return 0, false
}

// LLDPInfo is what AppendLLDP puts in an LLDPDU.
type LLDPInfo struct {
	ChassisID  LLDPID
	PortID     LLDPID
	TTL        uint16   // seconds
	SystemName []byte   // omitted if empty
	Org        []OrgTLV // zero or more organizationally specific TLVs
}

// AppendLLDP appends an LLDP frame from src to LLDPMulticast carrying l's
// TLVs and an End TLV, zero-padded to the 60-byte Ethernet minimum. Values
// longer than their TLV allows (255 bytes for IDs and System Name, 507 for
// organizationally specific values) are truncated.
func AppendLLDP(dst []byte, src MAC, l LLDPInfo) []byte {
	start := len(dst)
	dst = AppendEthernet(dst, LLDPMulticast, src, EtherTypeLLDP)
	dst = appendTLV(dst, tlvChassisID, 256, []byte{l.ChassisID.Subtype}, l.ChassisID.Value)
	dst = appendTLV(dst, tlvPortID, 256, []byte{l.PortID.Subtype}, l.PortID.Value)
	dst = appendTLV(dst, tlvTTL, 2, nil, []byte{byte(l.TTL >> 8), byte(l.TTL)})
	if len(l.SystemName) > 0 {
		dst = appendTLV(dst, tlvSystemName, 255, nil, l.SystemName)
	}
	for _, o := range l.Org {
		dst = appendTLV(dst, tlvOrgSpecific, 511, []byte{o.OUI[0], o.OUI[1], o.OUI[2], o.Subtype}, o.Value)
	}
	dst = append(dst, tlvEnd, 0)
	return pad(dst, start)
}

// appendTLV appends a TLV whose value is head followed by as much of v as
// fits in limit bytes.
func appendTLV(dst []byte, typ, limit int, head, v []byte) []byte {
	v = v[:min(len(v), limit-len(head))]
	n := len(head) + len(v)
	dst = append(dst, byte(typ<<1|n>>8), byte(n))
	dst = append(dst, head...)
	return append(dst, v...)
}
