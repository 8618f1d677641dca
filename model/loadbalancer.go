package model

// Load balancers: a VIP and its backends, health checks and affinity.
import (
	"fmt"
)

func validateLoadBalancer(c *check, lb *LoadBalancer) *Error {
	if lb.Network == "" {
		return invalidf("network", "network is required")
	}
	if c.old != nil {
		if err := immutable("network", c.old.(*LoadBalancer).Network, lb.Network); err != nil {
			return err
		}
	}
	if err := enum("protocol", lb.Protocol, "tcp", "udp"); err != nil {
		return err
	}
	if lb.Port == 0 {
		return invalidf("port", "port is required")
	}
	if err := intRange("port", lb.Port, 1, 65535); err != nil {
		return err
	}
	vip, err := parseIP("vip", &lb.VIP)
	if err != nil {
		return err
	}
	if why := inNetwork(c.subnetsOf(lb.Network, nil), vip); why != "" {
		return invalidf("vip", "vip %s %s", vip, why)
	}
	if p := c.cur.portWithIP(lb.Network, lb.VIP); p != nil {
		return conflictf("vip", "%s is an address of port %s", vip, p.Name)
	}
	if who := natUser(c.cur, lb.Network, lb.VIP, ""); who != "" {
		return conflictf("vip", "%s is %s", vip, who)
	}
	for _, o := range byName(c.cur.index().vips[lb.Network][lb.VIP]) {
		if o.ID != lb.ID && o.Protocol == lb.Protocol && o.Port == lb.Port {
			return conflictf("vip", "load balancer %s already serves %s %s:%d", o.Name, lb.Protocol, vip, lb.Port)
		}
	}
	if lb.Backends == nil {
		lb.Backends = []Backend{}
	}
	if len(lb.Backends) > 1000 {
		return invalidf("backends", "at most 1000 backends")
	}
	for i := range lb.Backends {
		b := &lb.Backends[i]
		b.Status, b.Since = "", nil // read only
		f := fmt.Sprintf("backends[%d].", i)
		a, err := parseIP(f+"ip", &b.IP)
		if err != nil {
			return err
		}
		if a.Is4() != vip.Is4() {
			return invalidf(f+"ip", "%s is not of the vip's address family", a)
		}
		if b.Port == 0 {
			b.Port = lb.Port
		}
		if err := intRange(f+"port", b.Port, 1, 65535); err != nil {
			return err
		}
		if b.Weight == nil {
			w := 1
			b.Weight = &w
		}
		if err := intRange(f+"weight", *b.Weight, 1, 256); err != nil {
			return err
		}
		for _, o := range lb.Backends[:i] {
			if o.IP == b.IP && o.Port == b.Port {
				return invalidf(f+"ip", "backend %s port %d is listed twice", b.IP, b.Port)
			}
		}
	}
	if hc := lb.HealthCheck; hc != nil {
		if hc.Protocol == "" {
			hc.Protocol = lb.Protocol
		}
		if err := enum("health_check.protocol", hc.Protocol, "tcp", "udp"); err != nil {
			return err
		}
		if hc.IntervalMS == 0 {
			hc.IntervalMS = 5000
		}
		if err := intRange("health_check.interval_ms", hc.IntervalMS, 100, 3600000); err != nil {
			return err
		}
		if hc.TimeoutMS == 0 {
			hc.TimeoutMS = min(2000, hc.IntervalMS/2)
		}
		if hc.TimeoutMS < 1 || hc.TimeoutMS >= hc.IntervalMS {
			return invalidf("health_check.timeout_ms", "timeout_ms %d must be 1 to interval_ms-1 (%d)", hc.TimeoutMS, hc.IntervalMS-1)
		}
		if hc.Fall == 0 {
			hc.Fall = 3
		}
		if err := intRange("health_check.fall", hc.Fall, 1, 10); err != nil {
			return err
		}
		if hc.Rise == 0 {
			hc.Rise = 2
		}
		if err := intRange("health_check.rise", hc.Rise, 1, 10); err != nil {
			return err
		}
	}
	return optRange("affinity_seconds", lb.AffinitySeconds, 1, 86400)
}
