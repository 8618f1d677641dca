package model

// Routers: subnets they join, the way out (external network, SNAT) and its address.
import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// natUser names the floating IP or router whose address (ip, external_ip)
// in network is a ("" if none), skipping the object with id self.
func natUser(cur *Snapshot, network, a, self string) string {
	x := cur.index()
	if f := x.fipIPs[network][a]; f != nil && f.ID != self {
		return "the address of floating ip " + f.Name
	}
	if r := x.extIPs[network][a]; r != nil && r.ID != self {
		return "the external_ip of router " + r.Name
	}
	return ""
}

// natRouter returns the first of routers whose external_network is ext
// and, when network is not "", that has a subnet of network attached: the
// router that NATs between them.
func natRouter(cur *Snapshot, routers []*Router, ext, network string) *Router {
	for _, r := range routers {
		if r.ExternalNetwork != ext {
			continue
		}
		if network == "" {
			return r
		}
		for _, id := range r.Subnets {
			if s, ok := cur.Subnets.Get(id); ok && s.Network == network {
				return r
			}
		}
	}
	return nil
}

// fipBroken returns a floating IP that would stop working, and why, if
// router old became r (nil: were deleted): its network would no longer be
// an external network, or its port would lose the router to it.
func fipBroken(cur *Snapshot, old, r *Router) (*FloatingIP, string) {
	if old.ExternalNetwork == "" {
		return nil, ""
	}
	// The routers to the floating IPs' network: the others, and r.
	var routers []*Router
	for _, o := range cur.routersOut(old.ExternalNetwork) {
		if o.ID != old.ID {
			routers = append(routers, o)
		}
	}
	if r != nil {
		routers = append(routers, r)
	}
	for _, f := range byName(cur.index().fips[old.ExternalNetwork]) {
		ext, _ := cur.Networks.Get(f.Network)
		if natRouter(cur, routers, f.Network, "") == nil {
			return f, fmt.Sprintf("network %s would no longer be any router's external_network", ext.Name)
		}
		if p, ok := cur.Ports.Get(f.Port); ok && natRouter(cur, routers, f.Network, p.Network) == nil {
			return f, fmt.Sprintf("no router would connect port %s's network to network %s", p.Name, ext.Name)
		}
	}
	return nil, ""
}

// --- field helpers ---

func validateRouter(c *check, r *Router) *Error {
	if r.Subnets == nil {
		r.Subnets = []string{}
	}
	var attached []*Subnet
	for i, id := range r.Subnets {
		f := fmt.Sprintf("subnets[%d]", i)
		if slices.Contains(r.Subnets[:i], id) {
			return invalidf(f, "subnet %s is listed twice", id)
		}
		s, _ := c.cur.Subnets.Get(id)
		if o := c.cur.index().attached[id]; o != nil && o.ID != r.ID {
			return conflictf(f, "subnet %s is already attached to router %s", s.Name, o.Name)
		}
		p := netip.MustParsePrefix(s.CIDR)
		for _, a := range attached {
			if p.Overlaps(netip.MustParsePrefix(a.CIDR)) {
				return conflictf(f, "subnet %s (%s) overlaps subnet %s (%s) of this router", s.Name, s.CIDR, a.Name, a.CIDR)
			}
		}
		attached = append(attached, s)
	}
	if r.ExternalNetwork != "" {
		for _, s := range attached {
			if s.Network == r.ExternalNetwork {
				return invalidf("external_network", "the external network is also the network of subnet %s", s.Name)
			}
		}
	}
	if r.SNAT && r.ExternalNetwork == "" {
		return invalidf("snat", "snat needs external_network")
	}
	// external_ip is Loom's: kept while external_network stays, else
	// allocated (or released); the input's is ignored.
	old, _ := c.old.(*Router)
	r.ExternalIP = ""
	if old != nil && old.ExternalNetwork == r.ExternalNetwork {
		r.ExternalIP = old.ExternalIP
	}
	if r.ExternalNetwork != "" && r.ExternalIP == "" {
		var err *Error
		if r.ExternalIP, err = c.allocExternalIP(r); err != nil {
			return err
		}
	}
	if r.ExternalNetwork != "" && r.GatewayHost == "" {
		if h := first(c.cur.index().uplinks); h != nil {
			r.GatewayHost = h.ID
		}
	}
	reachable := slices.Clone(attached)
	if r.ExternalNetwork != "" {
		reachable = append(reachable, c.subnetsOf(r.ExternalNetwork, nil)...)
	}
	for i := range r.Routes {
		rt := &r.Routes[i]
		f := fmt.Sprintf("routes[%d]", i)
		d, err := parsePrefix(f+".destination", &rt.Destination)
		if err != nil {
			return err
		}
		nh, err := parseIP(f+".nexthop", &rt.Nexthop)
		if err != nil {
			return err
		}
		if d.Addr().Is4() != nh.Is4() {
			return invalidf(f+".nexthop", "nexthop %s is not of the destination's address family", nh)
		}
		ok := false
		for _, s := range reachable {
			ok = ok || netip.MustParsePrefix(s.CIDR).Contains(nh)
		}
		if !ok {
			return invalidf(f+".nexthop", "nexthop %s is not inside a subnet of the router", nh)
		}
	}
	if old != nil {
		if f, why := fipBroken(c.cur, old, r); f != nil {
			field := "subnets"
			if old.ExternalNetwork != r.ExternalNetwork {
				field = "external_network"
			}
			return conflictf(field, "floating ip %s would stop working: %s", f.Name, why)
		}
	}
	return nil
}

// allocExternalIP returns the lowest free host address of the first IPv4
// subnet (by CIDR) of r's external network that has one: not the subnet's
// network, broadcast or gateway address, nor an address of a port, load
// balancer, floating IP or other router in the network.
func (c *check) allocExternalIP(r *Router) (string, *Error) {
	network := r.ExternalNetwork
	ext, _ := c.cur.Networks.Get(network)
	x := c.cur.index()
	used := func(a string) bool {
		if x.ips[network][a] != nil || len(x.vips[network][a]) > 0 || x.fipIPs[network][a] != nil {
			return true
		}
		o := x.extIPs[network][a]
		return o != nil && o.ID != r.ID
	}
	var v4 []*Subnet
	for _, s := range c.subnetsOf(network, nil) {
		if netip.MustParsePrefix(s.CIDR).Addr().Is4() {
			v4 = append(v4, s)
		}
	}
	if len(v4) == 0 {
		return "", invalidf("external_network", "network %s has no IPv4 subnet: the router takes its external_ip from one", ext.Name)
	}
	slices.SortFunc(v4, func(a, b *Subnet) int {
		pa, pb := netip.MustParsePrefix(a.CIDR), netip.MustParsePrefix(b.CIDR)
		return cmp.Or(pa.Addr().Compare(pb.Addr()), cmp.Compare(pa.Bits(), pb.Bits()))
	})
	for _, s := range v4 {
		p := netip.MustParsePrefix(s.CIDR)
		for a := p.Addr().Next(); p.Contains(a); a = a.Next() {
			if hostAddr(s, a) == "" && !used(a.String()) {
				return a.String(), nil
			}
		}
	}
	return "", conflictf("external_network", "no free address left in the IPv4 subnets of network %s for the router's external_ip", ext.Name)
}
