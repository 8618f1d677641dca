package model

// Ports: a VM interface in a network, its MAC and addresses.
import (
	"crypto/rand"
	"fmt"
	"net"
	"slices"
)

func validatePort(c *check, p *Port) *Error {
	if p.Network == "" {
		return invalidf("network", "network is required")
	}
	if c.old != nil {
		if err := immutable("network", c.old.(*Port).Network, p.Network); err != nil {
			return err
		}
	}
	generated := p.MAC == ""
	if generated {
		p.MAC = randomMAC()
	}
	hw, err := net.ParseMAC(p.MAC)
	switch {
	case err != nil || len(hw) != 6:
		return invalidf("mac", "%q is not a MAC address", p.MAC)
	case hw[0]&1 != 0:
		return invalidf("mac", "%s is a multicast address", hw)
	case [6]byte(hw) == [6]byte{}:
		return invalidf("mac", "the MAC address must not be all zero")
	}
	p.MAC = hw.String()
	if p.IPs == nil {
		p.IPs = []string{}
	}
	subnets := c.subnetsOf(p.Network, nil)
	for i := range p.IPs {
		f := fmt.Sprintf("ips[%d]", i)
		a, err := parseIP(f, &p.IPs[i])
		if err != nil {
			return err
		}
		if slices.Contains(p.IPs[:i], p.IPs[i]) {
			return invalidf(f, "%s is listed twice", a)
		}
		if why := inNetwork(subnets, a); why != "" {
			return invalidf(f, "%s %s", a, why)
		}
	}
	if err := c.cur.index().portClash(p, generated); err != nil {
		return err
	}
	for i, ip := range p.IPs {
		if lb := c.cur.vipUser(p.Network, ip); lb != nil {
			return conflictf(fmt.Sprintf("ips[%d]", i), "%s is the vip of load balancer %s", lb.VIP, lb.Name)
		}
	}
	for i, ip := range p.IPs {
		if who := natUser(c.cur, p.Network, ip, ""); who != "" {
			return conflictf(fmt.Sprintf("ips[%d]", i), "%s is %s", ip, who)
		}
	}
	for i, sg := range p.SecurityGroups {
		if slices.Contains(p.SecurityGroups[:i], sg) {
			return invalidf(fmt.Sprintf("security_groups[%d]", i), "security group %s is listed twice", sg)
		}
	}
	return nil
}

// randomMAC returns a random locally administered unicast MAC.
func randomMAC() string {
	var b [6]byte
	rand.Read(b[:])
	b[0] = 0x02
	return net.HardwareAddr(b[:]).String()
}
