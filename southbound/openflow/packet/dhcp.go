package packet

import "net/netip"

// DHCPv4 (RFC 2131, options RFC 2132, classless static routes RFC 3442):
// DHCP.Decode reads a message from a UDP payload without allocating, and
// AppendDHCP / AppendDHCPFrame encode the replies a server sends.

// UDP ports of DHCPv4.
const (
	DHCPServerPort = 67
	DHCPClientPort = 68
)

// BOOTP operations (the op field).
const (
	BootRequest = 1
	BootReply   = 2
)

// DHCP message types (option 53).
const (
	DHCPDiscover = 1
	DHCPOffer    = 2
	DHCPRequest  = 3
	DHCPDecline  = 4
	DHCPAck      = 5
	DHCPNak      = 6
	DHCPRelease  = 7
	DHCPInform   = 8
)

// DHCPBroadcast is the BOOTP broadcast flag: the client cannot receive
// unicast IP datagrams before it is configured (RFC 2131 §4.1).
const DHCPBroadcast = 0x8000

// DHCP option codes Loom reads or writes.
const (
	DHCPOptPad          = 0
	DHCPOptSubnetMask   = 1
	DHCPOptRouter       = 3
	DHCPOptDNS          = 6
	DHCPOptHostname     = 12
	DHCPOptMTU          = 26
	DHCPOptRequestedIP  = 50
	DHCPOptLeaseTime    = 51
	DHCPOptOverload     = 52
	DHCPOptMessageType  = 53
	DHCPOptServerID     = 54
	DHCPOptParamList    = 55
	DHCPOptMaxSize      = 57
	DHCPOptRenewalT1    = 58
	DHCPOptRebindingT2  = 59
	DHCPOptClientID     = 61
	DHCPOptStaticRoutes = 121
	DHCPOptEnd          = 255
)

// dhcpMagic is the magic cookie that starts the options (RFC 2131 §3).
var dhcpMagic = [4]byte{99, 130, 83, 99}

// Layout of the fixed part of a BOOTP/DHCP message.
const (
	dhcpFixedLen = 236              // op .. file
	dhcpHeadLen  = dhcpFixedLen + 4 // with the magic cookie
	dhcpSName    = 44               // offset of sname (64 bytes)
	dhcpFile     = 108              // offset of file (128 bytes)
	dhcpMinLen   = 300              // BOOTP's minimum message, which replies are padded to
	dhcpMinMax   = 576 - 20 - 8     // the DHCP message every client accepts (RFC 2131 §2)
	dhcpMaxLen   = 1500 - 20 - 8    // what one unfragmented packet carries on Ethernet
	dhcpLayer    = "dhcp"
)

var (
	errDHCPShort    = truncated(dhcpLayer, "short message")
	errDHCPMagic    = malformed(dhcpLayer, "no magic cookie")
	errDHCPHLen     = malformed(dhcpLayer, "hardware address longer than 16 bytes")
	errDHCPOption   = truncated(dhcpLayer, "option exceeds its field")
	errDHCPLength   = malformed(dhcpLayer, "option of the wrong length")
	errDHCPRepeated = malformed(dhcpLayer, "option repeated")
	errDHCPType     = malformed(dhcpLayer, "message type 0")
	errDHCPRoutes   = malformed(dhcpLayer, "bad classless static route")
)

// DHCP is a decoded DHCPv4 message: the fixed BOOTP fields and the
// options Loom uses. An option that is absent leaves its field zero
// (netip.Addr{} for addresses, nil for byte strings). The slices alias the
// decoded buffer.
type DHCP struct {
	Op    uint8 // BootRequest or BootReply
	HType uint8 // 1 for Ethernet
	HLen  uint8 // at most 16; 6 for Ethernet
	Hops  uint8
	Xid   uint32
	Secs  uint16
	Flags uint16 // DHCPBroadcast

	CIAddr, YIAddr, SIAddr, GIAddr netip.Addr // always IPv4, 0.0.0.0 when unset
	CHAddr                         [16]byte   // the first HLen bytes are the client's hardware address

	MessageType uint8      // option 53; 0 for plain BOOTP
	RequestedIP netip.Addr // option 50
	ServerID    netip.Addr // option 54
	ClientID    []byte     // option 61
	ParamList   []byte     // option 55: the option codes the client asks for
	Hostname    []byte     // option 12
	MaxSize     uint16     // option 57: the largest DHCP message (IP and UDP headers included) the client accepts

	// Options of replies.
	SubnetMask   netip.Addr // option 1
	Routers      []byte     // option 3: IPv4 addresses, 4 bytes each
	DNS          []byte     // option 6: IPv4 addresses, 4 bytes each
	LeaseTime    uint32     // option 51, seconds
	T1, T2       uint32     // options 58 and 59, seconds
	MTU          uint16     // option 26
	StaticRoutes []byte     // option 121, RFC 3442 encoded (checked by Decode)

	seen [256 / 64]uint64 // options met while decoding
}

// ClientMAC returns the client's Ethernet address from chaddr.
func (d *DHCP) ClientMAC() MAC { return MAC(d.CHAddr[:6]) }

// Requests reports whether the client asked for option code in its
// parameter request list.
func (d *DHCP) Requests(code uint8) bool {
	for _, c := range d.ParamList {
		if c == code {
			return true
		}
	}
	return false
}

// Decode resets d and decodes the DHCP message b (a UDP payload). The
// slices in d alias b. It returns nil or a *Error (layer "dhcp") when the
// message is truncated or malformed: shorter than the fixed fields and
// the magic cookie, an option running past its field, a repeated or
// wrongly sized option Loom decodes, message type 0, or bad classless
// static routes. Options in sname and file are decoded when option 52
// says so; unknown options are skipped; a missing End is tolerated.
func (d *DHCP) Decode(b []byte) error {
	*d = DHCP{}
	if len(b) < dhcpHeadLen {
		return errDHCPShort
	}
	if [4]byte(b[dhcpFixedLen:]) != dhcpMagic {
		return errDHCPMagic
	}
	d.Op, d.HType, d.HLen, d.Hops = b[0], b[1], b[2], b[3]
	if d.HLen > 16 {
		return errDHCPHLen
	}
	d.Xid, d.Secs, d.Flags = be.Uint32(b[4:]), be.Uint16(b[8:]), be.Uint16(b[10:])
	d.CIAddr = netip.AddrFrom4([4]byte(b[12:16]))
	d.YIAddr = netip.AddrFrom4([4]byte(b[16:20]))
	d.SIAddr = netip.AddrFrom4([4]byte(b[20:24]))
	d.GIAddr = netip.AddrFrom4([4]byte(b[24:28]))
	d.CHAddr = [16]byte(b[28:44])

	overload, err := d.options(b[dhcpHeadLen:], true)
	if err != nil {
		return err
	}
	// RFC 2131 §4.1: file first, then sname.
	if overload&1 != 0 {
		if _, err := d.options(b[dhcpFile:dhcpFixedLen], false); err != nil {
			return err
		}
	}
	if overload&2 != 0 {
		if _, err := d.options(b[dhcpSName:dhcpFile], false); err != nil {
			return err
		}
	}
	return nil
}

// options decodes one options field. The main one may carry option 52
// (overload), whose value it returns.
func (d *DHCP) options(b []byte, main bool) (overload uint8, err error) {
	// Every iteration consumes at least one byte.
	for len(b) > 0 {
		code := b[0]
		switch code {
		case DHCPOptPad:
			b = b[1:]
			continue
		case DHCPOptEnd:
			return overload, nil
		}
		if len(b) < 2 || int(b[1]) > len(b)-2 {
			return 0, errDHCPOption
		}
		v := b[2 : 2+int(b[1])]
		b = b[2+len(v):]
		if !knownOption(code) {
			continue
		}
		if d.seen[code/64]&(1<<(code%64)) != 0 {
			return 0, errDHCPRepeated
		}
		d.seen[code/64] |= 1 << (code % 64)
		if err := d.option(code, v); err != nil {
			return 0, err
		}
		if code == DHCPOptOverload {
			if !main || len(v) != 1 || v[0] < 1 || v[0] > 3 {
				return 0, errDHCPLength
			}
			overload = v[0]
		}
	}
	return overload, nil // a missing End is tolerated
}

// knownOption reports whether Decode keeps option code.
func knownOption(code uint8) bool {
	switch code {
	case DHCPOptSubnetMask, DHCPOptRouter, DHCPOptDNS, DHCPOptHostname, DHCPOptMTU, DHCPOptRequestedIP,
		DHCPOptLeaseTime, DHCPOptOverload, DHCPOptMessageType, DHCPOptServerID, DHCPOptParamList,
		DHCPOptMaxSize, DHCPOptRenewalT1, DHCPOptRebindingT2, DHCPOptClientID, DHCPOptStaticRoutes:
		return true
	}
	return false
}

func (d *DHCP) option(code uint8, v []byte) error {
	addr := func(a *netip.Addr) error {
		if len(v) != 4 {
			return errDHCPLength
		}
		*a = netip.AddrFrom4([4]byte(v))
		return nil
	}
	u32 := func(x *uint32) error {
		if len(v) != 4 {
			return errDHCPLength
		}
		*x = be.Uint32(v)
		return nil
	}
	addrs := func(s *[]byte) error {
		if len(v) == 0 || len(v)%4 != 0 {
			return errDHCPLength
		}
		*s = v
		return nil
	}
	nonEmpty := func(s *[]byte) error {
		if len(v) == 0 {
			return errDHCPLength
		}
		*s = v
		return nil
	}
	switch code {
	case DHCPOptMessageType:
		if len(v) != 1 {
			return errDHCPLength
		}
		if v[0] == 0 {
			return errDHCPType
		}
		d.MessageType = v[0]
	case DHCPOptRequestedIP:
		return addr(&d.RequestedIP)
	case DHCPOptServerID:
		return addr(&d.ServerID)
	case DHCPOptSubnetMask:
		return addr(&d.SubnetMask)
	case DHCPOptClientID:
		return nonEmpty(&d.ClientID)
	case DHCPOptParamList:
		return nonEmpty(&d.ParamList)
	case DHCPOptHostname:
		return nonEmpty(&d.Hostname)
	case DHCPOptMaxSize, DHCPOptMTU:
		if len(v) != 2 {
			return errDHCPLength
		}
		if code == DHCPOptMaxSize {
			d.MaxSize = be.Uint16(v)
		} else {
			d.MTU = be.Uint16(v)
		}
	case DHCPOptRouter:
		return addrs(&d.Routers)
	case DHCPOptDNS:
		return addrs(&d.DNS)
	case DHCPOptLeaseTime:
		return u32(&d.LeaseTime)
	case DHCPOptRenewalT1:
		return u32(&d.T1)
	case DHCPOptRebindingT2:
		return u32(&d.T2)
	case DHCPOptStaticRoutes:
		if err := eachStaticRoute(v, func(netip.Prefix, netip.Addr) {}); err != nil {
			return err
		}
		d.StaticRoutes = v
	}
	return nil
}

// DHCPRoute is a classless static route (option 121).
type DHCPRoute struct {
	Dst     netip.Prefix // IPv4; 0.0.0.0/0 for the default route
	Gateway netip.Addr   // IPv4; 0.0.0.0 for a route on the link
}

// Routes returns the decoded option 121.
func (d *DHCP) Routes() []DHCPRoute {
	var out []DHCPRoute
	eachStaticRoute(d.StaticRoutes, func(p netip.Prefix, gw netip.Addr) { out = append(out, DHCPRoute{p, gw}) })
	return out
}

// RouterAddrs returns the addresses of option 3.
func (d *DHCP) RouterAddrs() []netip.Addr { return addrList(d.Routers) }

// DNSAddrs returns the addresses of option 6.
func (d *DHCP) DNSAddrs() []netip.Addr { return addrList(d.DNS) }

func addrList(b []byte) []netip.Addr {
	var out []netip.Addr
	for ; len(b) >= 4; b = b[4:] {
		out = append(out, netip.AddrFrom4([4]byte(b)))
	}
	return out
}

// eachStaticRoute walks RFC 3442's encoding: a prefix length (0-32), the
// significant octets of the destination, and the router's 4 octets.
func eachStaticRoute(b []byte, fn func(netip.Prefix, netip.Addr)) error {
	if len(b) == 0 {
		return errDHCPRoutes
	}
	// Every iteration consumes at least 5 bytes.
	for len(b) > 0 {
		bits := int(b[0])
		if bits > 32 {
			return errDHCPRoutes
		}
		n := (bits + 7) / 8
		if len(b) < 1+n+4 {
			return errDHCPRoutes
		}
		var dst [4]byte
		copy(dst[:], b[1:1+n])
		p, err := netip.AddrFrom4(dst).Prefix(bits)
		if err != nil || p.Addr() != netip.AddrFrom4(dst) {
			return errDHCPRoutes // bits set beyond the prefix length
		}
		fn(p, netip.AddrFrom4([4]byte(b[1+n:])))
		b = b[1+n+4:]
	}
	return nil
}

// DHCPReply is a server's answer: what AppendDHCP encodes. NewDHCPReply
// fills the fields that come from the request.
type DHCPReply struct {
	Type   uint8 // DHCPOffer, DHCPAck or DHCPNak
	HType  uint8
	HLen   uint8
	Xid    uint32
	Flags  uint16
	CIAddr netip.Addr
	YIAddr netip.Addr
	GIAddr netip.Addr
	CHAddr [16]byte

	// Options; zero values are left out, except the server id, which a
	// reply must carry. They are written in this order; one that would
	// make the message longer than MaxSize (IP and UDP headers included;
	// 576 if below) is left out, so a long list of routes costs the
	// client its routes, not the lease.
	ServerID  netip.Addr   // option 54
	LeaseTime uint32       // option 51
	T1, T2    uint32       // options 58, 59
	Mask      netip.Addr   // option 1
	Router    netip.Addr   // option 3
	DNS       []netip.Addr // option 6
	MTU       uint16       // option 26
	Routes    []DHCPRoute  // option 121
	MaxSize   uint16
}

// NewDHCPReply starts the reply of type typ to req: the transaction,
// flags, relay and client hardware address are the request's, and so is
// ciaddr in an ACK (RFC 2131, table 3). Its MaxSize is what the client
// accepts, capped at one Ethernet packet.
func NewDHCPReply(req *DHCP, typ uint8) DHCPReply {
	r := DHCPReply{Type: typ, HType: req.HType, HLen: req.HLen, Xid: req.Xid, Flags: req.Flags,
		CIAddr: netip.IPv4Unspecified(), YIAddr: netip.IPv4Unspecified(), GIAddr: req.GIAddr,
		CHAddr: req.CHAddr, MaxSize: req.MaxSize}
	if !r.GIAddr.IsValid() {
		r.GIAddr = netip.IPv4Unspecified()
	}
	if typ == DHCPAck && req.CIAddr.IsValid() {
		r.CIAddr = req.CIAddr
	}
	return r
}

// maxLen is the longest DHCP message the reply may be.
func (r *DHCPReply) maxLen() int {
	n := int(r.MaxSize) - 20 - 8
	return min(max(n, dhcpMinMax), dhcpMaxLen)
}

// AppendDHCP appends r encoded as a DHCP message (a UDP payload), padded
// to BOOTP's 300 bytes. A NAK gets no addresses and no options but its
// type and the server id.
func AppendDHCP(dst []byte, r *DHCPReply) []byte {
	start := len(dst)
	ci, yi, gi := ipv4Bytes(r.CIAddr), ipv4Bytes(r.YIAddr), ipv4Bytes(r.GIAddr)
	if r.Type == DHCPNak {
		ci, yi = [4]byte{}, [4]byte{}
	}
	hlen := min(r.HLen, 16)
	dst = append(dst, BootReply, r.HType, hlen, 0,
		byte(r.Xid>>24), byte(r.Xid>>16), byte(r.Xid>>8), byte(r.Xid), 0, 0, byte(r.Flags>>8), byte(r.Flags))
	dst = append(dst, ci[:]...)
	dst = append(dst, yi[:]...)
	dst = append(dst, 0, 0, 0, 0) // siaddr: no next server
	dst = append(dst, gi[:]...)
	dst = append(dst, r.CHAddr[:]...)
	dst = append(dst, make([]byte, 64+128)...) // sname, file
	dst = append(dst, dhcpMagic[:]...)

	limit := start + r.maxLen() - 1 // room for End
	// An option is written in place, then dropped again if it went
	// past the limit or grew too long for its length byte.
	var at int
	begin := func(code uint8) { at = len(dst); dst = append(dst, code, 0) }
	end := func() {
		if n := len(dst) - at - 2; n == 0 || n > 255 || len(dst) > limit {
			dst = dst[:at]
		} else {
			dst[at+1] = byte(n)
		}
	}
	u32 := func(code uint8, x uint32) {
		if x != 0 {
			begin(code)
			dst = be.AppendUint32(dst, x)
			end()
		}
	}
	addr := func(a netip.Addr) { b := ipv4Bytes(a); dst = append(dst, b[:]...) }

	begin(DHCPOptMessageType)
	dst = append(dst, r.Type)
	end()
	begin(DHCPOptServerID)
	addr(r.ServerID)
	end()
	if r.Type == DHCPNak {
		// A NAK carries nothing else (RFC 2131, table 3).
		dst = append(dst, DHCPOptEnd)
		return padDHCP(dst, start)
	}
	u32(DHCPOptLeaseTime, r.LeaseTime)
	u32(DHCPOptRenewalT1, r.T1)
	u32(DHCPOptRebindingT2, r.T2)
	if r.Mask.IsValid() {
		begin(DHCPOptSubnetMask)
		addr(r.Mask)
		end()
	}
	if r.Router.IsValid() {
		begin(DHCPOptRouter)
		addr(r.Router)
		end()
	}
	if len(r.DNS) > 0 {
		begin(DHCPOptDNS)
		for _, a := range r.DNS[:min(len(r.DNS), 63)] {
			addr(a)
		}
		end()
	}
	if r.MTU != 0 {
		begin(DHCPOptMTU)
		dst = be.AppendUint16(dst, r.MTU)
		end()
	}
	if len(r.Routes) > 0 {
		begin(DHCPOptStaticRoutes)
		for _, rt := range r.Routes {
			bits := rt.Dst.Bits()
			if !rt.Dst.Addr().Is4() || bits < 0 || len(dst)-at-2 > 255-9 {
				continue // not IPv4, or no room left in one option
			}
			d := ipv4Bytes(rt.Dst.Masked().Addr())
			dst = append(dst, byte(bits))
			dst = append(dst, d[:(bits+7)/8]...)
			addr(rt.Gateway)
		}
		end()
	}
	dst = append(dst, DHCPOptEnd)
	return padDHCP(dst, start)
}

// padDHCP zero-pads the message that starts at dst[start] to BOOTP's
// minimum length.
func padDHCP(dst []byte, start int) []byte {
	if n := dhcpMinLen - (len(dst) - start); n > 0 {
		dst = append(dst, make([]byte, n)...)
	}
	return dst
}

// DHCPDestination is where a server sends a reply (RFC 2131 §4.1): to
// the relay at giaddr (port 67) when there is one; a NAK is broadcast;
// to ciaddr when the client has an address; broadcast when the client
// set the broadcast flag; otherwise to yiaddr at chaddr. peer is the
// Ethernet source of the request (the client, or the relay); it is the
// destination of unicast replies.
func DHCPDestination(r *DHCPReply, peer MAC) (MAC, netip.Addr, uint16) {
	bcast := netip.AddrFrom4([4]byte{255, 255, 255, 255})
	switch {
	case r.GIAddr.IsValid() && !r.GIAddr.IsUnspecified():
		return peer, r.GIAddr, DHCPServerPort
	case r.Type == DHCPNak:
		return Broadcast, bcast, DHCPClientPort
	case r.CIAddr.IsValid() && !r.CIAddr.IsUnspecified():
		return peer, r.CIAddr, DHCPClientPort
	case r.Flags&DHCPBroadcast != 0 || !r.YIAddr.IsValid() || r.YIAddr.IsUnspecified():
		return Broadcast, bcast, DHCPClientPort
	}
	return MAC(r.CHAddr[:6]), r.YIAddr, DHCPClientPort
}

// AppendDHCPFrame appends the whole reply frame: Ethernet from the
// server's MAC, IPv4 from its address (TTL 64, header checksum), UDP from
// port 67 (with its checksum) and the DHCP message, addressed as
// DHCPDestination says.
func AppendDHCPFrame(dst []byte, serverMAC MAC, serverIP netip.Addr, peer MAC, r *DHCPReply) []byte {
	toMAC, toIP, toPort := DHCPDestination(r, peer)
	start := len(dst)
	dst = AppendEthernet(dst, toMAC, serverMAC, EtherTypeIPv4)
	ip := len(dst)
	s, d := ipv4Bytes(serverIP), ipv4Bytes(toIP)
	dst = append(dst, 0x45, 0, 0, 0, 0, 0, 0, 0, 64, ProtoUDP, 0, 0)
	dst = append(dst, s[:]...)
	dst = append(dst, d[:]...)
	u := len(dst)
	dst = append(dst, 0, DHCPServerPort, byte(toPort>>8), byte(toPort), 0, 0, 0, 0)
	dst = AppendDHCP(dst, r)
	n := len(dst) - u
	be.PutUint16(dst[ip+2:], uint16(20+n))
	be.PutUint16(dst[ip+10:], checksum(sum(0, dst[ip:u])))
	be.PutUint16(dst[u+4:], uint16(n))
	// The pseudo-header: addresses, protocol and UDP length.
	c := checksum(sum(uint32(ProtoUDP)+uint32(n), dst[ip+12:]))
	if c == 0 {
		c = 0xffff
	}
	be.PutUint16(dst[u+6:], c)
	return pad(dst, start)
}
