package flow

import (
	"net/netip"
	"strings"
	"testing"
)

// TestIPv6Prefix: /0 is no match, /128 an exact one, anything else the
// masked field with the host bits cleared; ovs-ofctl reads them back as
// written.
func TestIPv6Prefix(t *testing.T) {
	ip6 := Match{}.EthType(0x86dd)
	for _, c := range []struct {
		dst  bool
		p    string
		want string
	}{
		{false, "::/0", "ipv6"},
		{false, "fd00::11/128", "ipv6,ipv6_src=fd00::11"},
		{true, "fd00::11/128", "ipv6,ipv6_dst=fd00::11"},
		{false, "fd00:9::77/32", "ipv6,ipv6_src=fd00:9::/32"},
		{true, "fd00::ff/120", "ipv6,ipv6_dst=fd00::/120"},
	} {
		if got := ip6.IPv6Prefix(c.dst, netip.MustParsePrefix(c.p)).String(); got != c.want {
			t.Errorf("%v %s: %s, want %s", c.dst, c.p, got, c.want)
		}
	}
	var b []byte
	for i, m := range []Match{
		ip6.IPv6Prefix(false, netip.MustParsePrefix("fd00:9::/32")),
		ip6.IPv6Prefix(true, netip.MustParsePrefix("fd00::12/128")),
	} {
		var err error
		if b, err = New(3, 100, m).AppendFlowMod(b, CmdAdd, uint32(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	out := ofpParse(t, b)
	for _, want := range []string{"ipv6,ipv6_src=fd00:9::/32", "ipv6,ipv6_dst=fd00::12"} {
		if !strings.Contains(out, want) {
			t.Errorf("ovs-ofctl read\n%s\nwant %s", out, want)
		}
	}
}
