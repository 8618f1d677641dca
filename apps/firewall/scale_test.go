package firewall

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/model"
)

// scaleLab is 10 hosts and one network with a /16 subnet; group web, whose
// rules the test sets; ports are added to web round robin over the hosts.
type scaleLab struct {
	*lab
	ports int
}

const scaleHosts = 10

func newScaleLab(t testing.TB) *scaleLab {
	l := newLab(t)
	for h := 1; h <= scaleHosts; h++ {
		l.Create(&model.Host{Meta: meta(fmt.Sprintf("hv%d", h)), OVSDB: fmt.Sprintf("unix:/%d", h), VTEPIP: fmt.Sprintf("10.200.0.%d", h)})
	}
	l.Create(
		&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
		&model.Subnet{Meta: meta("blue-a"), Network: "blue", CIDR: "10.0.0.0/16", Gateway: "10.0.0.1"},
		&model.SecurityGroup{Meta: meta("web")},
	)
	return &scaleLab{lab: l}
}

// grow adds ports in web up to n.
func (s *scaleLab) grow(n int) {
	for ; s.ports < n; s.ports++ {
		i := s.ports
		name := fmt.Sprintf("p%d", i)
		s.Create(&model.Port{Meta: meta(name), Network: "blue", MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff),
			IPs: []string{fmt.Sprintf("10.0.%d.%d", 1+i/250, 1+i%250)}, SecurityGroups: []string{"web"}})
		s.Bind(name, fmt.Sprintf("hv%d", 1+i%scaleHosts), "tap-"+name, uint32(1+i/scaleHosts))
	}
}

// rules gives web m ingress rules, tcp ports 1000, 1001, ..., from web's
// own members or from anywhere.
func (s *scaleLab) rules(m int, remoteGroup bool) {
	var rs []string
	for i := 0; i < m; i++ {
		r := fmt.Sprintf(`{"direction":"ingress","protocol":"tcp","port_min":%d`, 1000+i)
		if remoteGroup {
			r += `,"remote_group":"web"`
		}
		rs = append(rs, r+"}")
	}
	s.Patch(model.KindSecurityGroup, "web", `{"rules":[`+strings.Join(rs, ",")+`]}`)
}

// flows counts hv1's flows, with conjunctions and as a cross product.
func (s *scaleLab) flows(cross bool) int {
	return len(NewIndex(s.View.Snapshot(), nil).Compile(s.DPID("hv1"), testTables, Options{CrossProduct: cross}))
}

// TestFlowsPerHost is the table of flows on one host (hv1, with a tenth
// of the ports) for N ports in group web with M ingress rules, from web
// itself (a remote group) or from anywhere, compiled with conjunctive
// matches and, for comparison, as the cross product of the rules'
// dimensions. With conjunctions the count is exactly
//
//	7L + 26 + M·(1 + [remote group]) + M + [remote group]·N
//
// for L local ports (fw-egress and fw-ingress for IPv4 and IPv6, their
// egress-open flows for both, and port clause flows: 7L; 26 fixed, 14
// of them IPv6's connection states and neighbour discovery), one
// protocol flow and one conj_id flow per
// rule, and one flow per member address for the remote group: O(N+M).
// Without conjunctions a remote-group rule costs L×N flows: O(L·N·M).
func TestFlowsPerHost(t *testing.T) {
	s := newScaleLab(t)
	t.Logf("%6s %4s %6s | %-33s | %s", "ports", "L", "rules", "from anywhere: conj / cross", "from remote group web: conj / cross")
	for _, n := range []int{50, 100, 250, 500} {
		s.grow(n)
		l := n / scaleHosts
		for _, m := range []int{1, 5, 10, 50} {
			var got [2][2]int // [remote][cross]
			for remote := 0; remote < 2; remote++ {
				s.rules(m, remote == 1)
				got[remote][0] = s.flows(false)
				if n*m <= 2500 { // the cross product beyond is large; its formula is exact
					got[remote][1] = s.flows(true)
				} else {
					got[remote][1] = -1
				}
				want := 7*l + 26 + 2*m
				if remote == 1 {
					want += n
				}
				if got[remote][0] != want {
					t.Errorf("N=%d M=%d remote group %v: %d flows with conjunctions, want %d", n, m, remote == 1, got[remote][0], want)
				}
				cross := 6*l + 26 + l*m // no conjunction: L ports × M rules (× N members)
				if remote == 1 {
					cross = 6*l + 26 + l*m*n
				}
				if got[remote][1] >= 0 && got[remote][1] != cross {
					t.Errorf("N=%d M=%d remote group %v: %d flows as a cross product, want %d", n, m, remote == 1, got[remote][1], cross)
				}
				if got[remote][1] < 0 {
					got[remote][1] = cross
				}
			}
			t.Logf("%6d %4d %6d | %14d / %-16d | %14d / %d", n, l, m, got[0][0], got[0][1], got[1][0], got[1][1])
		}
	}
}

// TestFiveHundredPortsInOneRemoteGroup is the figure for 500 ports in one
// remote group, 50 on each of 10 hosts: the default-group pattern (icmp
// and ssh from the group's members, http from anywhere).
func TestFiveHundredPortsInOneRemoteGroup(t *testing.T) {
	s := newScaleLab(t)
	s.grow(500)
	s.Patch(model.KindSecurityGroup, "web", `{"rules":[
		{"direction":"ingress","protocol":"icmp","remote_group":"web"},
		{"direction":"ingress","protocol":"tcp","port_min":22,"remote_group":"web"},
		{"direction":"ingress","protocol":"tcp","port_min":80}]}`)
	start := time.Now()
	x := NewIndex(s.View.Snapshot(), nil)
	indexed := time.Since(start)
	start = time.Now()
	conj := len(x.Compile(s.DPID("hv1"), testTables, Options{}))
	compiled := time.Since(start)
	cross := len(x.Compile(s.DPID("hv1"), testTables, Options{CrossProduct: true}))
	t.Logf("500 ports in group web (50 per host), 3 rules (2 from web): %d flows per host with conjunctions, %d without; index %v, compile %v",
		conj, cross, indexed.Round(time.Microsecond), compiled.Round(time.Microsecond))
	// 7×50 + 26 + 3 protocol + 3 conj_id + 500 member flows (shared by the two remote-group rules).
	if want := 7*50 + 26 + 3 + 3 + 500; conj != want {
		t.Errorf("%d flows with conjunctions, want %d", conj, want)
	}
	// 6×50 + 26 + 50 ports × (500 + 500 + 1).
	if want := 6*50 + 26 + 50*(500+500+1); cross != want {
		t.Errorf("%d flows without, want %d", cross, want)
	}
}

// BenchmarkCompile500 compiles one host of the 500-port group.
func BenchmarkCompile500(b *testing.B) {
	s := newScaleLab(b)
	s.grow(500)
	s.rules(10, true)
	x := NewIndex(s.View.Snapshot(), nil)
	dpid := s.DPID("hv1")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.Compile(dpid, testTables, Options{})
	}
}

// BenchmarkIndex500 digests the view of the 500-port group.
func BenchmarkIndex500(b *testing.B) {
	s := newScaleLab(b)
	s.grow(500)
	s.rules(10, true)
	snap := s.View.Snapshot()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		NewIndex(snap, nil)
	}
}
