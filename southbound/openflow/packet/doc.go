// Package packet decodes the Ethernet frames carried by OpenFlow PACKET_IN
// messages and builds the few frames the controller sends itself (LLDP
// probes) or that tests need (ARP, IPv4/UDP, ICMP echo).
//
// The decoders are pure and bounds-checked: every length is checked before it
// is used, every loop consumes input or has a hard bound, and no input makes
// them panic or allocate. Frames come from arbitrary hosts, so the fuzz
// targets in this package hold the code to that.
//
// # Decoding
//
// Frame.Decode fills a caller-owned Frame so that the hot path allocates
// nothing; reuse one Frame per goroutine. Decode resets the Frame first and
// then decodes the Ethernet header, up to two VLAN tags and one of ARP, IPv4
// (+ TCP, UDP or ICMP), IPv6 (+ extension headers, TCP, UDP or ICMPv6) or
// LLDP. Frame.Layers tells which layers were decoded: a layer's bit is set
// only when its whole header (including IPv4 options, IPv6 extension headers
// and TCP options) was present and valid. The fields of a layer whose bit is
// not set are unspecified.
//
// A malformed or truncated layer stops decoding: the layers below it stay
// decoded and Decode returns a *Error naming the layer and wrapping
// ErrTruncated or ErrMalformed. Frames truncated by the switch (PACKET_IN
// max_len) still decode as far as their headers go: the IPv4 total length,
// IPv6 payload length and UDP length are clamped to the bytes present.
// Unknown EtherTypes and IP protocols are not errors.
//
// # Ownership
//
// The slices in a decoded Frame or LLDP (L3, L4, Payload and the LLDP values)
// alias the buffer passed to Decode: they are valid while that buffer is and
// must not be kept after it is reused. To keep an LLDP beyond that, use
// LLDP.Clone; to keep a whole Frame, decode a copy of the buffer.
//
// The Append functions append to dst like the append built-in and never
// retain their arguments.
package packet
