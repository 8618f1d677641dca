package dhcp

import "github.com/loom-sdn/loom/southbound/openflow/packet"

// Result is what the server made of one request; it labels the
// loom_dhcp_requests_total metric.
type Result uint8

// Results.
const (
	Offer       Result = iota // DISCOVER answered
	Ack                       // REQUEST or INFORM answered
	Nak                       // REQUEST for an address that is not the port's, or from a port without one
	NoLease                   // DISCOVER or INFORM from a port without an address in a DHCP-enabled subnet: no answer
	Released                  // RELEASE: nothing to do (the address stays the port's)
	Declined                  // DECLINE: the client found the port's address in use
	OtherServer               // REQUEST for another server's offer
	UnknownPort               // no model port of a served network is bound there
	UnknownMAC                // the frame's source or chaddr is not the port's MAC: ignored
	Malformed                 // not a DHCP request Loom can answer
	numResults
)

var resultNames = [numResults]string{"offer", "ack", "nak", "no_lease", "released", "declined", "other_server",
	"unknown_port", "unknown_mac", "malformed"}

func (r Result) String() string {
	if r < numResults {
		return resultNames[r]
	}
	return "invalid"
}

// Serve answers one DHCP request, which arrived in frame fr on OpenFlow
// port inPort of the switch with datapath id dpid: it appends the reply
// frame to buf (unchanged when there is none) and says what it did. req
// is scratch space, reused between calls. It does not allocate.
func (x *Index) Serve(buf []byte, req *packet.DHCP, dpid uint64, inPort uint32, fr *packet.Frame) ([]byte, Result) {
	if fr.Layers&packet.HasUDP == 0 || fr.Layers&packet.HasIPv4 == 0 || fr.NumVLANs != 0 ||
		fr.UDP.SrcPort != packet.DHCPClientPort || fr.UDP.DstPort != packet.DHCPServerPort {
		return buf, Malformed
	}
	if req.Decode(fr.Payload) != nil || req.Op != packet.BootRequest || req.HType != 1 || req.HLen != 6 ||
		!req.GIAddr.IsUnspecified() {
		return buf, Malformed // relayed requests included: a VM is no relay
	}
	p, ok := x.Port(dpid, inPort)
	if !ok {
		return buf, UnknownPort
	}
	if fr.Src != p.MAC || req.ClientMAC() != p.MAC {
		return buf, UnknownMAC
	}
	sn := p.Subnet
	reply := func(typ uint8) packet.DHCPReply {
		r := packet.NewDHCPReply(req, typ)
		r.ServerID = sn.ServerIP
		if typ == packet.DHCPNak {
			return r
		}
		r.Mask, r.Router, r.DNS, r.MTU, r.Routes = sn.Mask, sn.Router, sn.DNS, sn.MTU, sn.Routes
		return r
	}
	lease := func(r *packet.DHCPReply) {
		r.YIAddr, r.LeaseTime = p.IP, sn.Lease
		r.T1, r.T2 = sn.Lease/2, uint32(uint64(sn.Lease)*7/8)
	}
	send := func(r *packet.DHCPReply) []byte {
		return packet.AppendDHCPFrame(buf, sn.ServerMAC, sn.ServerIP, fr.Src, r)
	}
	switch req.MessageType {
	case packet.DHCPDiscover:
		if !p.IP.IsValid() {
			return buf, NoLease
		}
		r := reply(packet.DHCPOffer)
		lease(&r)
		return send(&r), Offer
	case packet.DHCPRequest:
		if req.ServerID.IsValid() && req.ServerID != sn.ServerIP {
			return buf, OtherServer // the client took another server's offer
		}
		want := req.RequestedIP // selecting, init-reboot
		if !want.IsValid() {
			want = req.CIAddr // renewing, rebinding
		}
		if !p.IP.IsValid() || want != p.IP {
			r := reply(packet.DHCPNak)
			return send(&r), Nak
		}
		r := reply(packet.DHCPAck)
		lease(&r)
		return send(&r), Ack
	case packet.DHCPInform:
		if !p.IP.IsValid() {
			return buf, NoLease
		}
		r := reply(packet.DHCPAck) // configuration only: no lease, no yiaddr
		return send(&r), Ack
	case packet.DHCPRelease:
		return buf, Released
	case packet.DHCPDecline:
		return buf, Declined
	}
	return buf, Malformed
}
