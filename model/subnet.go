package model

// Subnets: a CIDR of a network, its gateway and DHCP options.
import (
	"fmt"
	"net/netip"
)

func validateSubnet(c *check, s *Subnet) *Error {
	if s.Network == "" {
		return invalidf("network", "network is required")
	}
	if c.old != nil {
		if err := immutable("network", c.old.(*Subnet).Network, s.Network); err != nil {
			return err
		}
	}
	p, err := parsePrefix("cidr", &s.CIDR)
	if err != nil {
		return err
	}
	if p.Addr().Is4() && p.Bits() > 30 || p.Addr().Is6() && p.Bits() > 126 {
		return invalidf("cidr", "%s is too small: at most /30 (IPv4) or /126 (IPv6)", s.CIDR)
	}
	if s.Gateway == "" {
		s.Gateway = p.Addr().Next().String()
	}
	gw, err := parseIP("gateway", &s.Gateway)
	if err != nil {
		return err
	}
	if why := hostAddr(&Subnet{Meta: Meta{Name: s.Name}, CIDR: s.CIDR}, gw); why != "" {
		return invalidf("gateway", "gateway %s %s", gw, why)
	}
	if s.DHCP == nil {
		t := true
		s.DHCP = &t
	}
	if len(s.DNSServers) > 8 {
		return invalidf("dns_servers", "at most 8 dns_servers")
	}
	for i := range s.DNSServers {
		f := fmt.Sprintf("dns_servers[%d]", i)
		a, err := parseIP(f, &s.DNSServers[i])
		if err != nil {
			return err
		}
		if a.Is4() != p.Addr().Is4() {
			return invalidf(f, "%s is not of the subnet's address family (DHCP hands out servers of its own)", a)
		}
	}
	if s.LeaseSeconds != 0 {
		if err := intRange("lease_seconds", s.LeaseSeconds, 60, 31536000); err != nil {
			return err
		}
	}
	for i := range s.HostRoutes {
		r := &s.HostRoutes[i]
		f := fmt.Sprintf("host_routes[%d]", i)
		d, err := parsePrefix(f+".destination", &r.Destination)
		if err != nil {
			return err
		}
		if d.Addr().Is4() != p.Addr().Is4() {
			return invalidf(f+".destination", "%s is not of the subnet's address family", r.Destination)
		}
		nh, err := parseIP(f+".nexthop", &r.Nexthop)
		if err != nil {
			return err
		}
		if !p.Contains(nh) || nh == p.Addr() || nh == broadcast(p) {
			return invalidf(f+".nexthop", "nexthop %s is not a host address of %s", nh, s.CIDR)
		}
	}
	for _, o := range c.subnetsOf(s.Network, nil) {
		if o.ID != s.ID && p.Overlaps(netip.MustParsePrefix(o.CIDR)) {
			return conflictf("cidr", "%s overlaps subnet %s (%s) of the same network", s.CIDR, o.Name, o.CIDR)
		}
	}
	if c.old == nil {
		return nil
	}
	if r := c.cur.index().attached[s.ID]; r != nil {
		for _, id := range r.Subnets {
			if o, ok := c.cur.Subnets.Get(id); ok && id != s.ID && p.Overlaps(netip.MustParsePrefix(o.CIDR)) {
				return conflictf("cidr", "%s overlaps subnet %s (%s) of router %s", s.CIDR, o.Name, o.CIDR, r.Name)
			}
		}
	}
	// The addresses in use in the network must stay usable.
	subnets := c.subnetsOf(s.Network, s)
	return ipsInUse(c.cur, s.Network, func(a netip.Addr) (string, string) {
		if why := inNetwork(subnets, a); why != "" {
			field := "cidr"
			if a == gw {
				field = "gateway"
			}
			return field, fmt.Sprintf("the address would no longer be usable (it %s): used by", why)
		}
		return "", ""
	})
}
