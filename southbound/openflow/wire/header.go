package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the only OpenFlow version Loom speaks (OpenFlow 1.3).
const Version = 4

// HeaderLen is the size of the fixed OpenFlow header.
const HeaderLen = 8

// MaxMessageLen is the largest OpenFlow message (the length field is 16 bits).
const MaxMessageLen = 65535

// Message types (OpenFlow 1.3, section A.1).
const (
	TypeHello                 uint8 = 0
	TypeError                 uint8 = 1
	TypeEchoRequest           uint8 = 2
	TypeEchoReply             uint8 = 3
	TypeExperimenter          uint8 = 4
	TypeFeaturesRequest       uint8 = 5
	TypeFeaturesReply         uint8 = 6
	TypeGetConfigRequest      uint8 = 7
	TypeGetConfigReply        uint8 = 8
	TypeSetConfig             uint8 = 9
	TypePacketIn              uint8 = 10
	TypeFlowRemoved           uint8 = 11
	TypePortStatus            uint8 = 12
	TypePacketOut             uint8 = 13
	TypeFlowMod               uint8 = 14
	TypeGroupMod              uint8 = 15
	TypePortMod               uint8 = 16
	TypeTableMod              uint8 = 17
	TypeMultipartRequest      uint8 = 18
	TypeMultipartReply        uint8 = 19
	TypeBarrierRequest        uint8 = 20
	TypeBarrierReply          uint8 = 21
	TypeQueueGetConfigRequest uint8 = 22
	TypeQueueGetConfigReply   uint8 = 23
	TypeRoleRequest           uint8 = 24
	TypeRoleReply             uint8 = 25
	TypeGetAsyncRequest       uint8 = 26
	TypeGetAsyncReply         uint8 = 27
	TypeSetAsync              uint8 = 28
	TypeMeterMod              uint8 = 29
)

var typeNames = [...]string{
	"HELLO", "ERROR", "ECHO_REQUEST", "ECHO_REPLY", "EXPERIMENTER", "FEATURES_REQUEST",
	"FEATURES_REPLY", "GET_CONFIG_REQUEST", "GET_CONFIG_REPLY", "SET_CONFIG", "PACKET_IN",
	"FLOW_REMOVED", "PORT_STATUS", "PACKET_OUT", "FLOW_MOD", "GROUP_MOD", "PORT_MOD",
	"TABLE_MOD", "MULTIPART_REQUEST", "MULTIPART_REPLY", "BARRIER_REQUEST", "BARRIER_REPLY",
	"QUEUE_GET_CONFIG_REQUEST", "QUEUE_GET_CONFIG_REPLY", "ROLE_REQUEST", "ROLE_REPLY",
	"GET_ASYNC_REQUEST", "GET_ASYNC_REPLY", "SET_ASYNC", "METER_MOD",
}

// TypeName returns the OpenFlow name of a message type.
func TypeName(t uint8) string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("TYPE_%d", t)
}

// Header is the fixed header of every OpenFlow message.
type Header struct {
	Version uint8
	Type    uint8
	Length  uint16
	Xid     uint32
}

// Framing errors. A session that sees one of them cannot find the next
// message boundary and must be closed.
var (
	ErrBadVersion = errors.New("openflow: unsupported version")
	ErrBadLength  = errors.New("openflow: bad message length")
	ErrTruncated  = errors.New("openflow: truncated message")
)

// ParseHeader decodes the header at the start of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, ErrTruncated
	}
	return Header{
		Version: b[0],
		Type:    b[1],
		Length:  binary.BigEndian.Uint16(b[2:4]),
		Xid:     binary.BigEndian.Uint32(b[4:8]),
	}, nil
}

// CheckHeader applies Loom's framing rules: the length must cover at least
// the header, and the version must be 1.3. Two exceptions follow what real
// switches send inside a 1.3 session: HELLO may carry any version (that is
// how versions are negotiated), and ERROR may carry the version of the
// request it answers (Open vSwitch does this for OF1.0 Nicira errors).
func CheckHeader(h Header) error {
	if h.Length < HeaderLen {
		return fmt.Errorf("%w: %d < %d", ErrBadLength, h.Length, HeaderLen)
	}
	if h.Version != Version && h.Type != TypeHello && h.Type != TypeError {
		return fmt.Errorf("%w: 0x%02x (type %d)", ErrBadVersion, h.Version, h.Type)
	}
	return nil
}

// ReadMessage reads one framed message from r into a new buffer of exactly
// the message's length. The buffer belongs to the caller. It grows as the
// bytes arrive (from readChunk), so a peer that announces 65,535 bytes and
// sends a few costs only what it sent.
func ReadMessage(r io.Reader) (Header, []byte, error) {
	var hb [HeaderLen]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return Header{}, nil, err
	}
	h, _ := ParseHeader(hb[:])
	if err := CheckHeader(h); err != nil {
		return h, hb[:], err
	}
	n := int(h.Length)
	msg := make([]byte, HeaderLen, min(n, readChunk))
	copy(msg, hb[:])
	for len(msg) < n {
		if len(msg) == cap(msg) {
			msg = append(make([]byte, 0, min(n, 2*cap(msg))), msg...)
		}
		m, err := io.ReadFull(r, msg[len(msg):cap(msg)])
		msg = msg[:len(msg)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return h, msg, err
		}
	}
	return h, msg, nil
}

// readChunk is the most ReadMessage allocates before the bytes arrive.
const readChunk = 4 << 10

// PutHeader writes an OpenFlow 1.3 header into b[0:8].
func PutHeader(b []byte, typ uint8, length uint16, xid uint32) {
	b[0] = Version
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:4], length)
	binary.BigEndian.PutUint32(b[4:8], xid)
}

// SetXid rewrites the xid of an encoded message in place.
func SetXid(msg []byte, xid uint32) {
	binary.BigEndian.PutUint32(msg[4:8], xid)
}

// Xid returns the xid of an encoded message.
func Xid(msg []byte) uint32 { return binary.BigEndian.Uint32(msg[4:8]) }
