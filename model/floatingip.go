package model

// Floating IPs: an external address NATed to a port.
import (
	"cmp"
	"net/netip"
	"slices"
)

func validateFloatingIP(c *check, f *FloatingIP) *Error {
	a, err := parseIP("ip", &f.IP)
	if err != nil {
		return err
	}
	if !a.Is4() {
		return invalidf("ip", "%s is not an IPv4 address", a)
	}
	if f.Network == "" {
		// The external network with a subnet containing ip (in the order
		// of their first routers by name).
		type ext struct {
			n      *Network
			router string
		}
		var exts []ext
		for id, rs := range c.cur.index().extRouters {
			n, ok := c.cur.Networks.Get(id)
			if !ok {
				continue
			}
			for _, s := range c.subnetsOf(n.ID, nil) {
				if netip.MustParsePrefix(s.CIDR).Contains(a) {
					exts = append(exts, ext{n, first(rs).Name})
					break
				}
			}
		}
		slices.SortFunc(exts, func(a, b ext) int { return cmp.Compare(a.router, b.router) })
		var found []*Network
		for _, e := range exts {
			found = append(found, e.n)
		}
		switch len(found) {
		case 0:
			return invalidf("ip", "%s is not inside a subnet of an external network (a router's external_network): give an address inside one, or network", a)
		case 1:
			f.Network = found[0].ID
		default:
			return invalidf("network", "%s is inside subnets of external networks %s and %s: give network", a, found[0].Name, found[1].Name)
		}
	}
	ext, _ := c.cur.Networks.Get(f.Network)
	routers := c.cur.routersOut(f.Network)
	if natRouter(c.cur, routers, f.Network, "") == nil {
		return invalidf("network", "network %s is not an external network: no router has it as external_network", ext.Name)
	}
	if why := inNetwork(c.subnetsOf(f.Network, nil), a); why != "" {
		return invalidf("ip", "ip %s %s", a, why)
	}
	if p := c.cur.portWithIP(f.Network, f.IP); p != nil {
		return conflictf("ip", "%s is an address of port %s", a, p.Name)
	}
	if lb := c.cur.vipUser(f.Network, f.IP); lb != nil {
		return conflictf("ip", "%s is the vip of load balancer %s", a, lb.Name)
	}
	if who := natUser(c.cur, f.Network, f.IP, f.ID); who != "" {
		return conflictf("ip", "%s is %s", a, who)
	}
	if f.Port == "" {
		return nil
	}
	p, _ := c.cur.Ports.Get(f.Port)
	if p.Network == f.Network {
		return invalidf("port", "port %s is on the external network %s itself: a floating ip maps to a port behind a router", p.Name, ext.Name)
	}
	if natRouter(c.cur, routers, f.Network, p.Network) == nil {
		pn, _ := c.cur.Networks.Get(p.Network)
		return invalidf("port", "port %s cannot have a floating ip of network %s: no subnet of its network %s is attached to a router whose external_network is %s, so the NAT cannot work",
			p.Name, ext.Name, pn.Name, ext.Name)
	}
	if o := c.cur.index().fipPorts[f.Port]; o != nil && o.ID != f.ID {
		return conflictf("port", "port %s already has floating ip %s (%s)", p.Name, o.Name, o.IP)
	}
	return nil
}
