package model

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
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

// target checks an OVS connection target: unix:/PATH or tcp:HOST:PORT
// (and ssl:HOST:PORT when ssl). HOST is an IPv4 address, an IPv6 address
// in brackets ([2001:db8::1]) or a DNS name; PORT is 1-65535 in decimal.
// It is one target: no commas (OVS would read a list), spaces or control
// characters.
func target(field, t string, ssl bool) *Error {
	want := "unix:/PATH or tcp:HOST:PORT"
	if ssl {
		want = "tcp:HOST:PORT, ssl:HOST:PORT or unix:/PATH"
	}
	bad := func(why string) *Error { return invalidf(field, "%q is not %s: %s", t, want, why) }
	if strings.ContainsFunc(t, func(r rune) bool { return r == ',' || unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return bad("one target, without commas, spaces or control characters")
	}
	typ, rest, _ := strings.Cut(t, ":")
	switch {
	case typ == "unix":
		if !strings.HasPrefix(rest, "/") || len(rest) < 2 {
			return bad("the path must be absolute")
		}
		return nil
	case typ == "tcp" || ssl && typ == "ssl":
	default:
		return bad("unknown connection type")
	}
	var host, port string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 || !strings.HasPrefix(rest[end+1:], ":") {
			return bad("an IPv6 address in brackets must be followed by :PORT")
		}
		host, port = rest[1:end], rest[end+2:]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return bad(fmt.Sprintf("[%s] is not an IPv6 address", host))
		}
	} else {
		i := strings.LastIndex(rest, ":")
		if i < 0 {
			return bad("the port is missing")
		}
		host, port = rest[:i], rest[i+1:]
		if strings.Contains(host, ":") {
			return bad("an IPv6 address goes in brackets: [ADDRESS]:PORT")
		}
		if a, err := netip.ParseAddr(host); (err != nil || !a.Is4()) && !dnsName(host) {
			return bad(fmt.Sprintf("%q is neither an IPv4 address nor a DNS name", host))
		}
	}
	n, err := strconv.Atoi(port)
	if port == "" || strings.Trim(port, "0123456789") != "" || err != nil || n < 1 || n > 65535 {
		return bad(fmt.Sprintf("the port %q is not 1-65535", port))
	}
	return nil
}

// dnsName says whether n is a DNS host name: labels of 1-63 letters,
// digits and hyphens, not starting or ending with a hyphen, at most 253
// characters (a trailing dot allowed); the last label is not all digits
// (1.2.3 is a malformed address, not a name).
func dnsName(n string) bool {
	n = strings.TrimSuffix(n, ".")
	if n == "" || len(n) > 253 {
		return false
	}
	labels := strings.Split(n, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := range len(l) {
			if !isAlnum(l[i]) && l[i] != '-' {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

// --- kinds ---

func validateHost(c *check, h *Host) *Error {
	if h.OVSDB == "" {
		return invalidf("ovsdb", "ovsdb is required: unix:/PATH or tcp:HOST:PORT")
	}
	if err := target("ovsdb", h.OVSDB, false); err != nil {
		return err
	}
	if _, err := parseIP("vtep_ip", &h.VTEPIP); err != nil {
		return err
	}
	if o := c.cur.index().vteps[h.VTEPIP]; o != nil && o.ID != h.ID {
		return conflictf("vtep_ip", "host %s already has vtep_ip %s", o.Name, h.VTEPIP)
	}
	if h.Bridge == "" {
		h.Bridge = "br-int"
	}
	if err := ifName("bridge", h.Bridge); err != nil {
		return err
	}
	if h.DatapathType == "" {
		h.DatapathType = "system"
	}
	if err := enum("datapath_type", h.DatapathType, "system", "netdev"); err != nil {
		return err
	}
	if h.Controller != "" {
		if err := target("controller", h.Controller, true); err != nil {
			return err
		}
	}
	if h.Uplink != "" {
		if err := ifName("uplink", h.Uplink); err != nil {
			return err
		}
		if h.Uplink == h.Bridge || h.Uplink == "vxlan0" {
			return invalidf("uplink", "uplink %q clashes with the bridge's own ports", h.Uplink)
		}
	}
	return nil
}

func validateNetwork(c *check, n *Network) *Error {
	if err := enum("type", n.Type, "vxlan", "vlan", "flat"); err != nil {
		return err
	}
	if n.Type != "vxlan" && n.VNI != 0 {
		return invalidf("vni", "vni is only for vxlan networks")
	}
	if n.Type != "vlan" && n.VLAN != 0 {
		return invalidf("vlan", "vlan is only for vlan networks")
	}
	switch n.Type {
	case "vxlan":
		if n.VNI == 0 {
			return invalidf("vni", "vni is required for a vxlan network (1-%d)", MaxVNI)
		}
		if err := intRange("vni", n.VNI, 1, MaxVNI); err != nil {
			return err
		}
	case "vlan":
		if n.VLAN == 0 {
			return invalidf("vlan", "vlan is required for a vlan network (1-4094)")
		}
		if err := intRange("vlan", n.VLAN, 1, 4094); err != nil {
			return err
		}
	}
	x := c.cur.index()
	if o := x.vnis[n.VNI]; n.Type == "vxlan" && o != nil && o.ID != n.ID {
		return conflictf("vni", "network %s already has vni %d", o.Name, n.VNI)
	}
	if o := x.vlans[n.VLAN]; n.Type == "vlan" && o != nil && o.ID != n.ID {
		return conflictf("vlan", "network %s already has vlan %d", o.Name, n.VLAN)
	}
	return nil
}

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

func validatePortGroup(c *check, g *PortGroup) *Error {
	if err := optRange("bandwidth_kbps", g.BandwidthKbps, 1, 100000000); err != nil {
		return err
	}
	if err := optRange("burst_kb", g.BurstKB, 1, 100000000); err != nil {
		return err
	}
	if g.BurstKB != 0 && g.BandwidthKbps == 0 {
		return invalidf("burst_kb", "burst_kb needs bandwidth_kbps")
	}
	if g.Priority != nil {
		if err := intRange("priority", *g.Priority, 0, 7); err != nil {
			return err
		}
	}
	return optRange("vlan", g.VLAN, 1, 4094)
}

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
