package model

// Hosts: a hypervisor registered by its OVSDB address.
import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
)

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
		// One OpenFlow target, or several separated by commas: the
		// switch connects to every loomd replica (OpenFlow roles decide
		// which one writes).
		seen := map[string]bool{}
		for _, t := range strings.Split(h.Controller, ",") {
			if seen[t] {
				return invalidf("controller", "controller %q names %q twice", h.Controller, t)
			}
			seen[t] = true
			if err := target("controller", t, true); err != nil {
				return err
			}
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
