package model

// Security groups: stateful rules by protocol, ports and remote.
import (
	"fmt"
	"strconv"
)

func validateSecurityGroup(c *check, g *SecurityGroup) *Error {
	if g.Rules == nil {
		g.Rules = []Rule{}
	}
	if len(g.Rules) > 1000 {
		return invalidf("rules", "at most 1000 rules")
	}
	for i := range g.Rules {
		r := &g.Rules[i]
		f := fmt.Sprintf("rules[%d].", i)
		if err := enum(f+"direction", r.Direction, "ingress", "egress"); err != nil {
			return err
		}
		if r.Ethertype == "" {
			r.Ethertype = "ipv4"
		}
		if err := enum(f+"ethertype", r.Ethertype, "ipv4", "ipv6"); err != nil {
			return err
		}
		switch r.Protocol {
		case "":
			r.Protocol = "any"
		case "tcp", "udp", "icmp", "any":
		default:
			n, err := strconv.Atoi(string(r.Protocol))
			if err != nil || n < 0 || n > 255 {
				return invalidf(f+"protocol", "protocol %q is not tcp, udp, icmp, any or a number 0-255", r.Protocol)
			}
			r.Protocol = Protocol(strconv.Itoa(n))
			switch n {
			case 6:
				r.Protocol = "tcp"
			case 17:
				r.Protocol = "udp"
			}
		}
		if r.Protocol != "tcp" && r.Protocol != "udp" {
			if r.PortMin != 0 {
				return invalidf(f+"port_min", "port_min is only for tcp and udp")
			}
			if r.PortMax != 0 {
				return invalidf(f+"port_max", "port_max is only for tcp and udp")
			}
		} else if r.PortMin != 0 || r.PortMax != 0 {
			if r.PortMin == 0 {
				return invalidf(f+"port_min", "port_min is required with port_max")
			}
			if err := intRange(f+"port_min", r.PortMin, 1, 65535); err != nil {
				return err
			}
			if r.PortMax == 0 {
				r.PortMax = r.PortMin
			}
			if err := intRange(f+"port_max", r.PortMax, 1, 65535); err != nil {
				return err
			}
			if r.PortMax < r.PortMin {
				return invalidf(f+"port_max", "port_max %d is less than port_min %d", r.PortMax, r.PortMin)
			}
		}
		if r.RemoteCIDR != "" {
			if r.RemoteGroup != "" {
				return invalidf(f+"remote_group", "give remote_cidr or remote_group, not both")
			}
			p, err := parsePrefix(f+"remote_cidr", &r.RemoteCIDR)
			if err != nil {
				return err
			}
			if p.Addr().Is4() != (r.Ethertype == "ipv4") {
				return invalidf(f+"remote_cidr", "%s is not an %s prefix", r.RemoteCIDR, r.Ethertype)
			}
		}
		if r.Stateful == nil {
			t := true
			r.Stateful = &t
		}
	}
	return nil
}
