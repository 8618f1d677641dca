package packet

import "errors"

// The kinds of decoding failure. Every error returned by Frame.Decode and
// LLDP.Decode is a *Error wrapping one of them.
var (
	ErrTruncated = errors.New("packet: truncated")
	ErrMalformed = errors.New("packet: malformed")
)

// Error is a decoding failure in one layer. The decoders return only the
// preallocated values below, so failing allocates no more than succeeding.
type Error struct {
	Layer  string // "ethernet", "vlan", "arp", "ipv4", "ipv6", "tcp", "udp", "icmp" or "lldp"
	Reason string
	Err    error // ErrTruncated or ErrMalformed
}

func (e *Error) Error() string { return "packet: " + e.Layer + ": " + e.Reason }

func (e *Error) Unwrap() error { return e.Err }

func truncated(layer, reason string) *Error { return &Error{layer, reason, ErrTruncated} }

func malformed(layer, reason string) *Error { return &Error{layer, reason, ErrMalformed} }

var (
	errEthernet = truncated("ethernet", "short header")
	errVLAN     = truncated("vlan", "short tag")
	errARP      = truncated("arp", "short packet")

	errIPv4Short   = truncated("ipv4", "short header")
	errIPv4Version = malformed("ipv4", "version is not 4")
	errIPv4IHL     = malformed("ipv4", "IHL below 5")
	errIPv4Options = truncated("ipv4", "options exceed frame")
	errIPv4Length  = malformed("ipv4", "total length below header length")

	errIPv6Short    = truncated("ipv6", "short header")
	errIPv6Version  = malformed("ipv6", "version is not 6")
	errIPv6Ext      = truncated("ipv6", "extension header exceeds packet")
	errIPv6ExtCount = malformed("ipv6", "too many extension headers")

	errTCPShort   = truncated("tcp", "short header")
	errTCPOffset  = malformed("tcp", "data offset below 5")
	errTCPOptions = truncated("tcp", "options exceed packet")
	errUDPShort   = truncated("udp", "short header")
	errUDPLength  = malformed("udp", "length below 8")
	errICMPShort  = truncated("icmp", "short header")

	errLLDPTLV     = truncated("lldp", "TLV exceeds frame")
	errLLDPMissing = truncated("lldp", "missing mandatory TLV")
	errLLDPOrder   = malformed("lldp", "mandatory TLVs not Chassis ID, Port ID, TTL")
	errLLDPDup     = malformed("lldp", "duplicate mandatory TLV")
	errLLDPID      = malformed("lldp", "chassis or port ID length not in 2..256")
	errLLDPTTL     = malformed("lldp", "TTL shorter than 2")
	errLLDPOrg     = malformed("lldp", "organizationally specific TLV shorter than 4")
)
