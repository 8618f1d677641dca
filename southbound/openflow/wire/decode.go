package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// errShort builds the error every decoder returns for a body that is too
// short for what its header promises.
func errShort(what string, need, have int) error {
	return fmt.Errorf("%w: %s needs %d bytes, has %d", ErrTruncated, what, need, have)
}

var be = binary.BigEndian

// Hello is a decoded HELLO. Bitmap holds the version bitmap element's first
// 32-bit word when the switch sent one.
type Hello struct {
	Version   uint8
	HasBitmap bool
	Bitmap    uint32
}

// Supports reports whether the peer can speak the given version: from the
// bitmap when there is one, else from the header version (OF spec 6.3.1).
func (h Hello) Supports(v uint8) bool {
	if h.HasBitmap {
		return v < 32 && h.Bitmap&(1<<v) != 0
	}
	return h.Version >= v
}

// Hello element types.
const helloElemVersionBitmap = 1

// DecodeHello decodes a HELLO of any version. Elements of unknown type are
// skipped; an element whose length is shorter than its own header is an
// error (libOpenflow loops forever on it).
func DecodeHello(msg []byte) (Hello, error) {
	h := Hello{Version: msg[0]}
	b := msg[HeaderLen:]
	for len(b) > 0 {
		if len(b) < 4 {
			return h, errShort("hello element", 4, len(b))
		}
		typ, l := be.Uint16(b[0:2]), int(be.Uint16(b[2:4]))
		if l < 4 || l > len(b) {
			return h, fmt.Errorf("%w: hello element length %d (have %d)", ErrBadLength, l, len(b))
		}
		if typ == helloElemVersionBitmap && l >= 8 && !h.HasBitmap {
			h.HasBitmap, h.Bitmap = true, be.Uint32(b[4:8])
		}
		padded := (l + 7) &^ 7
		if padded > len(b) {
			padded = len(b) // the last element's padding may be omitted
		}
		b = b[padded:]
	}
	return h, nil
}

// Error is a decoded OFPT_ERROR. For experimenter errors (Type 0xffff)
// Code is the experimenter's type and Experimenter its id. Data holds the
// start of the offending request, whose xid is the error's xid.
type Error struct {
	Version      uint8
	Xid          uint32
	Type         uint16
	Code         uint16
	Experimenter uint32
	Data         []byte
}

// ErrorTypeExperimenter is OFPET_EXPERIMENTER.
const ErrorTypeExperimenter = 0xffff

// OF1.0 Nicira vendor errors (OFPET_VENDOR) arrive with type 0xb000 in
// version-1 headers.
const errorTypeNXVendor10 = 0xb000

func (e *Error) Error() string {
	if e.Type == ErrorTypeExperimenter {
		return fmt.Sprintf("openflow error: experimenter 0x%08x type %d", e.Experimenter, e.Code)
	}
	return fmt.Sprintf("openflow error: %s", ErrorName(e.Type, e.Code))
}

// DecodeError decodes an OFPT_ERROR of any version.
func DecodeError(msg []byte) (*Error, error) {
	b := msg[HeaderLen:]
	if len(b) < 4 {
		return nil, errShort("error", 4, len(b))
	}
	e := &Error{Version: msg[0], Xid: Xid(msg), Type: be.Uint16(b[0:2]), Code: be.Uint16(b[2:4]), Data: b[4:]}
	if e.Type == ErrorTypeExperimenter || (e.Version == 1 && e.Type == errorTypeNXVendor10) {
		if len(b) < 8 {
			return nil, errShort("experimenter error", 8, len(b))
		}
		e.Type = ErrorTypeExperimenter
		e.Experimenter = be.Uint32(b[4:8])
		e.Data = b[8:]
	}
	return e, nil
}

// Features is a decoded FEATURES_REPLY.
type Features struct {
	DatapathID   uint64
	NBuffers     uint32
	NTables      uint8
	AuxiliaryID  uint8
	Capabilities uint32
}

// DecodeFeatures decodes a FEATURES_REPLY.
func DecodeFeatures(msg []byte) (Features, error) {
	b := msg[HeaderLen:]
	if len(b) < 24 {
		return Features{}, errShort("features reply", 24, len(b))
	}
	return Features{
		DatapathID:   be.Uint64(b[0:8]),
		NBuffers:     be.Uint32(b[8:12]),
		NTables:      b[12],
		AuxiliaryID:  b[13],
		Capabilities: be.Uint32(b[16:20]),
	}, nil
}

// Port is a decoded ofp_port (64 bytes).
type Port struct {
	PortNo     uint32
	HWAddr     [6]byte
	Name       string
	Config     uint32
	State      uint32
	Curr       uint32
	Advertised uint32
	Supported  uint32
	Peer       uint32
	CurrSpeed  uint32
	MaxSpeed   uint32
}

// Port config and state bits used by the controller.
const (
	PortConfigDown    = 1 << 0
	PortStateLinkDown = 1 << 0
)

// Up reports whether the port is administratively and physically up.
func (p Port) Up() bool { return p.Config&PortConfigDown == 0 && p.State&PortStateLinkDown == 0 }

const portLen = 64

func decodePort(b []byte) Port {
	name := b[16:32]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	p := Port{
		PortNo:     be.Uint32(b[0:4]),
		Name:       string(name),
		Config:     be.Uint32(b[32:36]),
		State:      be.Uint32(b[36:40]),
		Curr:       be.Uint32(b[40:44]),
		Advertised: be.Uint32(b[44:48]),
		Supported:  be.Uint32(b[48:52]),
		Peer:       be.Uint32(b[52:56]),
		CurrSpeed:  be.Uint32(b[56:60]),
		MaxSpeed:   be.Uint32(b[60:64]),
	}
	copy(p.HWAddr[:], b[8:14])
	return p
}

// Port status reasons.
const (
	PortAdded    uint8 = 0
	PortDeleted  uint8 = 1
	PortModified uint8 = 2
)

// PortStatus is a decoded PORT_STATUS.
type PortStatus struct {
	Reason uint8
	Port   Port
}

// DecodePortStatus decodes a PORT_STATUS.
func DecodePortStatus(msg []byte) (PortStatus, error) {
	b := msg[HeaderLen:]
	if len(b) < 8+portLen {
		return PortStatus{}, errShort("port status", 8+portLen, len(b))
	}
	return PortStatus{Reason: b[0], Port: decodePort(b[8 : 8+portLen])}, nil
}

// Match is an encoded OXM match list (the TLVs, without the ofp_match
// header and padding).
type Match []byte

// decodeMatch reads an ofp_match at the start of b and returns its TLVs and
// the padded length it occupies.
func decodeMatch(b []byte) (Match, int, error) {
	m, n, err := matchBounds(b)
	if err != nil {
		return nil, 0, err
	}
	if err := m.Validate(); err != nil {
		return nil, 0, err
	}
	return m, n, nil
}

// matchBounds returns the TLVs of the ofp_match at the start of b, unchecked,
// and its padded length.
func matchBounds(b []byte) (Match, int, error) {
	if len(b) < 4 {
		return nil, 0, errShort("match", 4, len(b))
	}
	typ, l := be.Uint16(b[0:2]), int(be.Uint16(b[2:4]))
	if typ != 1 {
		return nil, 0, fmt.Errorf("openflow: match type %d is not OXM", typ)
	}
	padded := (l + 7) &^ 7
	if l < 4 || padded > len(b) {
		return nil, 0, fmt.Errorf("%w: match length %d (have %d)", ErrBadLength, l, len(b))
	}
	return Match(b[4:l]), padded, nil
}

// OXM classes.
const (
	OXMClassNXM0         = 0x0000
	OXMClassNXM1         = 0x0001
	OXMClassOpenFlow     = 0x8000
	OXMClassExperimenter = 0xffff
)

// OXM is one decoded match TLV. Value and Mask alias the match buffer.
type OXM struct {
	Class   uint16
	Field   uint8
	HasMask bool
	// Experimenter is set for class 0xffff; Value then excludes it.
	Experimenter uint32
	Value, Mask  []byte
}

// Next decodes the TLV at the start of m and returns the rest.
func (m Match) Next() (OXM, Match, error) {
	if len(m) < 4 {
		return OXM{}, nil, errShort("oxm", 4, len(m))
	}
	o := OXM{Class: be.Uint16(m[0:2]), Field: m[2] >> 1, HasMask: m[2]&1 == 1}
	l := int(m[3])
	if 4+l > len(m) {
		return OXM{}, nil, fmt.Errorf("%w: oxm length %d (have %d)", ErrBadLength, l, len(m)-4)
	}
	v := m[4 : 4+l]
	if o.Class == OXMClassExperimenter {
		if len(v) < 4 {
			return OXM{}, nil, errShort("experimenter oxm", 4, len(v))
		}
		o.Experimenter, v = be.Uint32(v[0:4]), v[4:]
	}
	if o.HasMask {
		if len(v)%2 != 0 {
			return OXM{}, nil, fmt.Errorf("%w: masked oxm with odd length %d", ErrBadLength, len(v))
		}
		o.Value, o.Mask = v[:len(v)/2], v[len(v)/2:]
	} else {
		o.Value = v
	}
	return o, m[4+l:], nil
}

// Validate checks that every TLV in m is well formed.
func (m Match) Validate() error {
	for len(m) > 0 {
		var err error
		if _, m, err = m.Next(); err != nil {
			return err
		}
	}
	return nil
}

// validateInPort is Validate and InPort in one pass with nothing built per
// TLV, for the packet-in path: the in_port (0 without one), or the error
// Validate returns.
func (m Match) validateInPort() (uint32, error) {
	var port uint32
	found := false
	for i := 0; i < len(m); {
		if len(m)-i < 4 {
			return 0, m[i:].Validate()
		}
		class, field, masked, l := be.Uint16(m[i:]), m[i+2]>>1, m[i+2]&1 == 1, int(m[i+3])
		if 4+l > len(m)-i {
			return 0, m[i:].Validate()
		}
		vl := l
		if class == OXMClassExperimenter {
			if l < 4 {
				return 0, m[i:].Validate()
			}
			vl -= 4
		}
		if masked {
			if vl%2 != 0 {
				return 0, m[i:].Validate()
			}
			vl /= 2
		}
		if !found && class == OXMClassOpenFlow && field == OXMInPort {
			found = true // InPort reads the first in_port TLV only
			if vl == 4 {
				port = be.Uint32(m[i+4:])
			}
		}
		i += 4 + l
	}
	return port, nil
}

// Lookup returns the first TLV of the given class and field.
func (m Match) Lookup(class uint16, field uint8) (OXM, bool) {
	for len(m) > 0 {
		o, rest, err := m.Next()
		if err != nil {
			return OXM{}, false
		}
		if o.Class == class && o.Field == field {
			return o, true
		}
		m = rest
	}
	return OXM{}, false
}

// OXM fields of the OpenFlow basic class that the controller reads from
// packet-ins.
const (
	OXMInPort   = 0
	OXMMetadata = 2
	OXMTunnelID = 38
)

// InPort returns the in_port of a packet-in match.
func (m Match) InPort() (uint32, bool) {
	o, ok := m.Lookup(OXMClassOpenFlow, OXMInPort)
	if !ok || len(o.Value) != 4 {
		return 0, false
	}
	return be.Uint32(o.Value), true
}

// Uint64 returns a TLV value of up to 8 bytes as an integer.
func (o OXM) Uint64() uint64 {
	var v uint64
	for _, c := range o.Value {
		v = v<<8 | uint64(c)
	}
	return v
}

// Packet-in reasons.
const (
	PacketInNoMatch    uint8 = 0
	PacketInAction     uint8 = 1
	PacketInInvalidTTL uint8 = 2
)

// PacketIn is a decoded PACKET_IN. Match and Data alias the message.
type PacketIn struct {
	BufferID uint32
	TotalLen uint16
	Reason   uint8
	TableID  uint8
	Cookie   uint64
	InPort   uint32
	Match    Match
	Data     []byte
}

// DecodePacketIn decodes a PACKET_IN into p without allocating.
func DecodePacketIn(msg []byte, p *PacketIn) error {
	b := msg[HeaderLen:]
	if len(b) < 16+4 {
		return errShort("packet-in", 20, len(b))
	}
	p.BufferID = be.Uint32(b[0:4])
	p.TotalLen = be.Uint16(b[4:6])
	p.Reason = b[6]
	p.TableID = b[7]
	p.Cookie = be.Uint64(b[8:16])
	m, n, err := matchBounds(b[16:])
	if err == nil {
		p.InPort, err = m.validateInPort()
	}
	if err != nil {
		return fmt.Errorf("packet-in: %w", err)
	}
	p.Match = m
	rest := b[16+n:]
	if len(rest) < 2 {
		return errShort("packet-in pad", 2, len(rest))
	}
	p.Data = rest[2:]
	return nil
}

// FlowRemoved is a decoded FLOW_REMOVED.
type FlowRemoved struct {
	Cookie       uint64
	Priority     uint16
	Reason       uint8
	TableID      uint8
	DurationSec  uint32
	DurationNsec uint32
	IdleTimeout  uint16
	HardTimeout  uint16
	PacketCount  uint64
	ByteCount    uint64
	Match        Match
}

// DecodeFlowRemoved decodes a FLOW_REMOVED.
func DecodeFlowRemoved(msg []byte) (FlowRemoved, error) {
	b := msg[HeaderLen:]
	if len(b) < 40 {
		return FlowRemoved{}, errShort("flow removed", 40, len(b))
	}
	m, _, err := decodeMatch(b[40:])
	if err != nil {
		return FlowRemoved{}, fmt.Errorf("flow removed: %w", err)
	}
	return FlowRemoved{
		Cookie:       be.Uint64(b[0:8]),
		Priority:     be.Uint16(b[8:10]),
		Reason:       b[10],
		TableID:      b[11],
		DurationSec:  be.Uint32(b[12:16]),
		DurationNsec: be.Uint32(b[16:20]),
		IdleTimeout:  be.Uint16(b[20:22]),
		HardTimeout:  be.Uint16(b[22:24]),
		PacketCount:  be.Uint64(b[24:32]),
		ByteCount:    be.Uint64(b[32:40]),
		Match:        m,
	}, nil
}

// Multipart types.
const (
	MultipartDesc       uint16 = 0
	MultipartFlow       uint16 = 1
	MultipartAggregate  uint16 = 2
	MultipartTable      uint16 = 3
	MultipartPortStats  uint16 = 4
	MultipartQueue      uint16 = 5
	MultipartGroup      uint16 = 6
	MultipartGroupDesc  uint16 = 7
	MultipartGroupFeat  uint16 = 8
	MultipartMeter      uint16 = 9
	MultipartMeterConf  uint16 = 10
	MultipartMeterFeat  uint16 = 11
	MultipartTableFeat  uint16 = 12
	MultipartPortDesc   uint16 = 13
	MultipartExperiment uint16 = 0xffff
)

// MultipartMore is OFPMPF_REPLY_MORE / OFPMPF_REQ_MORE.
const MultipartMore = 1

// MultipartReply is one part of a multipart reply. Body aliases the message.
type MultipartReply struct {
	Type  uint16
	Flags uint16
	Body  []byte
}

// More reports whether more parts follow.
func (r MultipartReply) More() bool { return r.Flags&MultipartMore != 0 }

// DecodeMultipartReply decodes the multipart header of one reply part.
func DecodeMultipartReply(msg []byte) (MultipartReply, error) {
	b := msg[HeaderLen:]
	if len(b) < 8 {
		return MultipartReply{}, errShort("multipart reply", 8, len(b))
	}
	return MultipartReply{Type: be.Uint16(b[0:2]), Flags: be.Uint16(b[2:4]), Body: b[8:]}, nil
}

// Desc is a decoded DESC multipart reply.
type Desc struct {
	Manufacturer, Hardware, Software, Serial, Datapath string
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// DecodeDesc decodes a DESC reply body.
func DecodeDesc(body []byte) (Desc, error) {
	if len(body) < 1056 {
		return Desc{}, errShort("desc", 1056, len(body))
	}
	return Desc{cstr(body[0:256]), cstr(body[256:512]), cstr(body[512:768]), cstr(body[768:800]), cstr(body[800:1056])}, nil
}

// DecodePortDesc decodes a PORT_DESC reply body.
func DecodePortDesc(body []byte) ([]Port, error) {
	if len(body)%portLen != 0 {
		return nil, fmt.Errorf("%w: port desc body %d is not a multiple of %d", ErrBadLength, len(body), portLen)
	}
	ports := make([]Port, 0, len(body)/portLen)
	for ; len(body) > 0; body = body[portLen:] {
		ports = append(ports, decodePort(body[:portLen]))
	}
	return ports, nil
}

// FlowStats is one entry of a FLOW multipart reply. Match and Instructions
// alias the reply.
type FlowStats struct {
	TableID      uint8
	DurationSec  uint32
	Priority     uint16
	IdleTimeout  uint16
	HardTimeout  uint16
	Flags        uint16
	Cookie       uint64
	PacketCount  uint64
	ByteCount    uint64
	Match        Match
	Instructions []byte
}

// eachEntry walks a multipart body made of entries whose first two bytes
// are their own length, calling fn with each (at least minLen bytes).
func eachEntry(body []byte, minLen int, what string, fn func(e []byte) error) error {
	for len(body) > 0 {
		if len(body) < minLen {
			return errShort(what, minLen, len(body))
		}
		l := int(be.Uint16(body[0:2]))
		if l < minLen || l > len(body) {
			return fmt.Errorf("%w: %s length %d (have %d)", ErrBadLength, what, l, len(body))
		}
		if err := fn(body[:l]); err != nil {
			return err
		}
		body = body[l:]
	}
	return nil
}

// DecodeFlowStats decodes a FLOW reply body, calling fn for every entry.
func DecodeFlowStats(body []byte, fn func(*FlowStats) error) error {
	var fs FlowStats
	return eachEntry(body, 56, "flow stats", func(e []byte) error {
		m, n, err := decodeMatch(e[48:])
		if err != nil {
			return fmt.Errorf("flow stats: %w", err)
		}
		fs = FlowStats{
			TableID:      e[2],
			DurationSec:  be.Uint32(e[4:8]),
			Priority:     be.Uint16(e[12:14]),
			IdleTimeout:  be.Uint16(e[14:16]),
			HardTimeout:  be.Uint16(e[16:18]),
			Flags:        be.Uint16(e[18:20]),
			Cookie:       be.Uint64(e[24:32]),
			PacketCount:  be.Uint64(e[32:40]),
			ByteCount:    be.Uint64(e[40:48]),
			Match:        m,
			Instructions: e[48+n:],
		}
		return fn(&fs)
	})
}

// GroupDesc is one entry of a GROUP_DESC reply. Buckets holds the encoded
// ofp_bucket list and aliases the reply.
type GroupDesc struct {
	Type    uint8
	GroupID uint32
	Buckets []byte
}

// DecodeGroupDesc decodes a GROUP_DESC reply body.
func DecodeGroupDesc(body []byte, fn func(*GroupDesc) error) error {
	return eachEntry(body, 8, "group desc", func(e []byte) error {
		return fn(&GroupDesc{Type: e[2], GroupID: be.Uint32(e[4:8]), Buckets: e[8:]})
	})
}

// MeterConfig is one entry of a METER_CONFIG reply. Bands aliases the reply.
type MeterConfig struct {
	Flags   uint16
	MeterID uint32
	Bands   []byte
}

// DecodeMeterConfig decodes a METER_CONFIG reply body.
func DecodeMeterConfig(body []byte, fn func(*MeterConfig) error) error {
	return eachEntry(body, 8, "meter config", func(e []byte) error {
		return fn(&MeterConfig{Flags: be.Uint16(e[2:4]), MeterID: be.Uint32(e[4:8]), Bands: e[8:]})
	})
}

// Controller roles.
const (
	RoleNoChange uint32 = 0
	RoleEqual    uint32 = 1
	RoleMaster   uint32 = 2
	RoleSlave    uint32 = 3
)

// RoleReply is a decoded ROLE_REPLY.
type RoleReply struct {
	Role         uint32
	GenerationID uint64
}

// DecodeRoleReply decodes a ROLE_REPLY.
func DecodeRoleReply(msg []byte) (RoleReply, error) {
	b := msg[HeaderLen:]
	if len(b) < 16 {
		return RoleReply{}, errShort("role reply", 16, len(b))
	}
	return RoleReply{Role: be.Uint32(b[0:4]), GenerationID: be.Uint64(b[8:16])}, nil
}

// RoleStatus is a decoded ROLE_STATUS.
type RoleStatus struct {
	Role         uint32
	Reason       uint8
	GenerationID uint64
}

// DecodeRoleStatus decodes the ONF ROLE_STATUS extension (an
// EXPERIMENTER message of type ONFTRoleStatus); false for any other
// experimenter message.
func DecodeRoleStatus(msg []byte) (RoleStatus, bool, error) {
	x, err := DecodeExperimenter(msg)
	if err != nil || x.Experimenter != ExperimenterONF || x.ExpType != ONFTRoleStatus {
		return RoleStatus{}, false, err
	}
	if len(x.Data) < 16 {
		return RoleStatus{}, true, errShort("role status", 16, len(x.Data))
	}
	return RoleStatus{Role: be.Uint32(x.Data[0:4]), Reason: x.Data[4], GenerationID: be.Uint64(x.Data[8:16])}, true, nil
}

// Experimenter ids.
const (
	ExperimenterNicira = 0x00002320
	ExperimenterONF    = 0x4f4e4600
)

// Experimenter is a decoded EXPERIMENTER message. Data aliases the message.
type Experimenter struct {
	Experimenter uint32
	ExpType      uint32
	Data         []byte
}

// DecodeExperimenter decodes an EXPERIMENTER message header.
func DecodeExperimenter(msg []byte) (Experimenter, error) {
	b := msg[HeaderLen:]
	if len(b) < 8 {
		return Experimenter{}, errShort("experimenter", 8, len(b))
	}
	return Experimenter{Experimenter: be.Uint32(b[0:4]), ExpType: be.Uint32(b[4:8]), Data: b[8:]}, nil
}

// ONF ext-230 bundle message types and control types.
const (
	BundleControlType uint32 = 2300
	BundleAddType     uint32 = 2301

	BundleOpenRequest    uint16 = 0
	BundleOpenReply      uint16 = 1
	BundleCloseRequest   uint16 = 2
	BundleCloseReply     uint16 = 3
	BundleCommitRequest  uint16 = 4
	BundleCommitReply    uint16 = 5
	BundleDiscardRequest uint16 = 6
	BundleDiscardReply   uint16 = 7

	BundleAtomic  uint16 = 1
	BundleOrdered uint16 = 2
)

// BundleControl is a decoded ONF bundle control message.
type BundleControl struct {
	BundleID uint32
	Type     uint16
	Flags    uint16
}

// ErrNotBundle is returned for experimenter messages that are not bundle
// control messages.
var ErrNotBundle = errors.New("openflow: not a bundle control message")

// DecodeBundleControl decodes an ONF bundle control reply.
func DecodeBundleControl(msg []byte) (BundleControl, error) {
	x, err := DecodeExperimenter(msg)
	if err != nil {
		return BundleControl{}, err
	}
	if x.Experimenter != ExperimenterONF || x.ExpType != BundleControlType {
		return BundleControl{}, ErrNotBundle
	}
	if len(x.Data) < 8 {
		return BundleControl{}, errShort("bundle control", 8, len(x.Data))
	}
	return BundleControl{BundleID: be.Uint32(x.Data[0:4]), Type: be.Uint16(x.Data[4:6]), Flags: be.Uint16(x.Data[6:8])}, nil
}

// FlowMod is a decoded FLOW_MOD. Switch emulators and tests decode what a
// controller sends with it; Match and Instructions alias the message.
type FlowMod struct {
	Cookie, CookieMask       uint64
	TableID, Command         uint8
	IdleTimeout, HardTimeout uint16
	Priority                 uint16
	BufferID                 uint32
	OutPort, OutGroup        uint32
	Flags                    uint16
	Match                    Match
	Instructions             []byte
}

// DecodeFlowMod decodes a FLOW_MOD.
func DecodeFlowMod(msg []byte) (FlowMod, error) {
	b := msg[HeaderLen:]
	if len(b) < 40 {
		return FlowMod{}, errShort("flow mod", 40, len(b))
	}
	m, n, err := decodeMatch(b[40:])
	if err != nil {
		return FlowMod{}, fmt.Errorf("flow mod: %w", err)
	}
	return FlowMod{
		Cookie: be.Uint64(b[0:8]), CookieMask: be.Uint64(b[8:16]),
		TableID: b[16], Command: b[17],
		IdleTimeout: be.Uint16(b[18:20]), HardTimeout: be.Uint16(b[20:22]),
		Priority: be.Uint16(b[22:24]), BufferID: be.Uint32(b[24:28]),
		OutPort: be.Uint32(b[28:32]), OutGroup: be.Uint32(b[32:36]), Flags: be.Uint16(b[36:38]),
		Match: m, Instructions: b[40+n:],
	}, nil
}
