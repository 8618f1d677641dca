package model

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// check is the context of one validation: the state before the write and
// the object's previous version (nil on create).
type check struct {
	cur *Snapshot
	old Object
}

// prepare validates o against cur and normalizes it in place: defaults
// filled in, addresses in canonical form, references as ids.
func prepare(cur *Snapshot, o Object, old Object) *Error {
	ki := Info(o.Kind())
	m := o.Base()
	if err := validName(m.Name); err != nil {
		return err
	}
	if other, ok := ki.set(cur).lookup(m.Name); ok && other.Base().ID != m.ID {
		if other.Base().Name == m.Name {
			return conflictf("name", "a %s named %q already exists", ki.Kind, m.Name)
		}
		return conflictf("name", "%q is the id of another %s", m.Name, ki.Kind)
	}
	var rerr *Error
	walkRefs(o, func(r ref) {
		if rerr != nil {
			return
		}
		if *r.id == "" {
			switch {
			case r.list:
				rerr = invalidf(r.path, "%s is empty or null: each entry names a %s (name or id)", r.path, r.kind)
			case r.required:
				rerr = invalidf(r.path, "%s is required: a %s (name or id)", r.path, r.kind)
			}
			return // an empty optional reference: none
		}
		if r.kind == o.Kind() && (*r.id == m.ID || *r.id == m.Name) {
			*r.id = m.ID // a reference to itself
			return
		}
		t, ok := cur.Lookup(r.kind, *r.id)
		if !ok {
			rerr = invalidf(r.path, "no %s named or with id %q", r.kind, *r.id)
			return
		}
		*r.id = t.Base().ID
	})
	if rerr != nil {
		return rerr
	}
	return ki.validate(&check{cur: cur, old: old}, o)
}

func validName(n string) *Error {
	if n == "" {
		return invalidf("name", "name is required")
	}
	ok := len(n) <= 63 && isAlnum(n[0]) && isAlnum(n[len(n)-1])
	for i := 0; ok && i < len(n); i++ {
		ok = isAlnum(n[i]) || n[i] == '-' || n[i] == '_' || n[i] == '.'
	}
	if !ok {
		return invalidf("name", "%q is not a valid name: 1-63 of letters, digits, -, _ and ., starting and ending with a letter or digit", n)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// checkDelete refuses to delete o while something refers to it.
func checkDelete(cur *Snapshot, o Object) *Error {
	m := o.Base()
	if by, path := cur.referrer(o); by != nil {
		return conflictf("", "%s %s is still used by %s %s (%s)", o.Kind(), m.Name, by.Kind(), by.Base().Name, path)
	}
	if r, ok := o.(*Router); ok {
		if f, why := fipBroken(cur, r, nil); f != nil {
			return conflictf("", "router %s is still used by floating_ip %s (%s)", r.Name, f.Name, why)
		}
	}
	if sub, ok := o.(*Subnet); ok {
		p, _ := netip.ParsePrefix(sub.CIDR)
		return ipsInUse(cur, sub.Network, func(a netip.Addr) (string, string) {
			if p.Contains(a) {
				return "", fmt.Sprintf("subnet %s is still used by", sub.Name)
			}
			return "", ""
		})
	}
	return nil
}

// ipsInUse calls bad for every address of a port, load balancer, floating
// IP or router (external_ip) of the network; the first answer with a
// reason becomes a conflict on the field it names, naming the user of the
// address.
func ipsInUse(cur *Snapshot, network string, bad func(netip.Addr) (field, why string)) *Error {
	x := cur.index()
	for _, p := range byName(x.ports[network]) {
		for _, s := range p.IPs {
			a, _ := netip.ParseAddr(s)
			if field, why := bad(a); why != "" {
				return conflictf(field, "%s port %s (%s)", why, p.Name, s)
			}
		}
	}
	for _, lb := range byName(x.lbs[network]) {
		a, _ := netip.ParseAddr(lb.VIP)
		if field, why := bad(a); why != "" {
			return conflictf(field, "%s load balancer %s (vip %s)", why, lb.Name, lb.VIP)
		}
	}
	for _, f := range byName(x.fips[network]) {
		a, _ := netip.ParseAddr(f.IP)
		if field, why := bad(a); why != "" {
			return conflictf(field, "%s floating ip %s (%s)", why, f.Name, f.IP)
		}
	}
	for _, r := range byName(x.extRouters[network]) {
		if r.ExternalIP == "" {
			continue
		}
		a, _ := netip.ParseAddr(r.ExternalIP)
		if field, why := bad(a); why != "" {
			return conflictf(field, "%s router %s (external_ip %s)", why, r.Name, r.ExternalIP)
		}
	}
	return nil
}

func intRange(field string, v, lo, hi int) *Error {
	if v < lo || v > hi {
		return invalidf(field, "%s %d is out of range %d-%d", field, v, lo, hi)
	}
	return nil
}

// optRange checks an optional integer: 0 means unset.
func optRange(field string, v, lo, hi int) *Error {
	if v == 0 {
		return nil
	}
	return intRange(field, v, lo, hi)
}

func enum(field, v string, allowed ...string) *Error {
	if v == "" {
		return invalidf(field, "%s is required (%s)", field, strings.Join(allowed, ", "))
	}
	if !slices.Contains(allowed, v) {
		return invalidf(field, "%s %q is not one of %s", field, v, strings.Join(allowed, ", "))
	}
	return nil
}

// parseIP parses and canonicalizes *s, a required unicast address.
func parseIP(field string, s *string) (netip.Addr, *Error) {
	if *s == "" {
		return netip.Addr{}, invalidf(field, "%s is required", field)
	}
	a, err := netip.ParseAddr(*s)
	if err != nil || a.Zone() != "" {
		return a, invalidf(field, "%q is not an IP address", *s)
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return a, invalidf(field, "%s is not a unicast address", a)
	}
	*s = a.String()
	return a, nil
}

// parsePrefix parses and canonicalizes *s, a required CIDR without host
// bits.
func parsePrefix(field string, s *string) (netip.Prefix, *Error) {
	if *s == "" {
		return netip.Prefix{}, invalidf(field, "%s is required", field)
	}
	p, err := netip.ParsePrefix(*s)
	if err != nil || p.Addr().Zone() != "" {
		return p, invalidf(field, "%q is not a CIDR such as 10.0.0.0/24", *s)
	}
	if p.Masked() != p {
		return p, invalidf(field, "%s has host bits set (the prefix is %s)", *s, p.Masked())
	}
	*s = p.String()
	return p, nil
}

func broadcast(p netip.Prefix) netip.Addr {
	if !p.Addr().Is4() {
		return netip.Addr{}
	}
	a := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom4(a)
}

// hostAddr says why a is not a usable host address of subnet s ("" if it
// is): outside, the network or broadcast address, or the gateway.
func hostAddr(s *Subnet, a netip.Addr) string {
	p, _ := netip.ParsePrefix(s.CIDR)
	switch {
	case !p.Contains(a):
		return fmt.Sprintf("is outside subnet %s (%s)", s.Name, s.CIDR)
	case a == p.Addr():
		return fmt.Sprintf("is the network address of subnet %s", s.Name)
	case a == broadcast(p):
		return fmt.Sprintf("is the broadcast address of subnet %s", s.Name)
	case s.Gateway == a.String():
		return fmt.Sprintf("is the gateway of subnet %s", s.Name)
	}
	return ""
}

// subnetsOf returns the subnets of network, with self (when a subnet of
// it) in place of its stored version.
func (c *check) subnetsOf(network string, self *Subnet) []*Subnet {
	var out []*Subnet
	for _, s := range c.cur.subnetsIn(network) {
		if self != nil && s.ID == self.ID {
			continue
		}
		if s.Network == network {
			out = append(out, s)
		}
	}
	if self != nil && self.Network == network {
		out = append(out, self)
	}
	return out
}

// inNetwork says why a is not a usable host address in network ("" if it
// is).
func inNetwork(subnets []*Subnet, a netip.Addr) string {
	for _, s := range subnets {
		p, _ := netip.ParsePrefix(s.CIDR)
		if p.Contains(a) {
			return hostAddr(s, a)
		}
	}
	return "is not inside any subnet of the network"
}

func immutable(field, old, now string) *Error {
	if old != now {
		return invalidf(field, "%s cannot change (it is %s)", field, old)
	}
	return nil
}

func ifName(field, n string) *Error {
	if n == "" || len(n) > 15 || strings.ContainsAny(n, "/ \t\n:") {
		return invalidf(field, "%q is not an interface name (1-15 characters, no /, : or spaces)", n)
	}
	return nil
}
