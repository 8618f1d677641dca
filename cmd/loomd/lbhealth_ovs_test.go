package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/ovslab"
)

// TestOVSLoadBalancerHealthCheckLifecycle: a load balancer created with a
// health check answers its first request at once (backends start up and
// are probed only once their host has the flow that catches the answer);
// removing the health check takes a backend it had taken down back at
// once (before, its down state stayed: the backend never took a
// connection again), and a health check set again starts afresh.
func TestOVSLoadBalancerHealthCheckLifecycle(t *testing.T) {
	requireTools(t, vmPython)
	o := newOverlayLab(t, "lldp,overlay,router,dhcp,portpolicy,firewall,loadbalancer")
	o.create("networks", "name=blue", "type=vxlan", "vni=5001")
	o.create("subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	b1 := o.port("b1", "blue", "02:00:00:00:01:0b", "10.1.0.11", "hv1")
	b2 := o.port("b2", "blue", "02:00:00:00:01:0c", "10.1.0.12", "hv2")
	c1 := o.port("c1", "blue", "02:00:00:00:01:15", "10.1.0.21", "hv3")
	o.converged()
	servers := map[string]*exec.Cmd{}
	for _, b := range []*ovslab.VM{b1, b2} {
		servers[b.Name] = httpServe(t, t, b)
	}
	start := time.Now()
	o.create("load-balancers", "name=web", "network=blue", "vip=10.1.0.100", "protocol=tcp", "port=80",
		`backends=[{"ip":"10.1.0.11","port":8080},{"ip":"10.1.0.12","port":8080}]`,
		`health_check={"interval_ms":1000,"timeout_ms":800,"fall":1,"rise":3}`)
	first := waitForD(t, 10*time.Second, "a first answer through the VIP", func() bool {
		return httpRequests(t, c1, "10.1.0.100", 80, 1).Counts[""] == 0
	})
	t.Logf("POST /load-balancers with a health check (fall 1) -> first answered request: %v", first.Round(time.Millisecond))
	// With fall 1 a lost first probe answer would take a backend down for
	// rise (3) intervals: both must stay up from the start.
	time.Sleep(300 * time.Millisecond)
	if st := backendStatus(t, o.api, "web"); !st["10.1.0.11"] || !st["10.1.0.12"] {
		t.Fatalf("backends %v %v after POST: a first probe failed", st, time.Since(start).Round(time.Millisecond))
	}
	both := func() bool {
		r := httpRequests(t, c1, "10.1.0.100", 80, 20)
		return r.Counts[""] == 0 && r.Counts["b1"] > 0 && r.Counts["b2"] > 0
	}
	waitForD(t, 5*time.Second, "requests answered by b1 and b2", both)

	servers["b2"].Process.Kill()
	servers["b2"].Wait()
	waitForD(t, 5*time.Second, "b2 down", func() bool { return !backendStatus(t, o.api, "web")["10.1.0.12"] })
	httpServe(t, t, b2)
	// The health check goes before b2's probes could bring it back (rise
	// 3 at 1 s): b2 is in rotation again at once, its health forgotten.
	o.patch("/api/v1/load-balancers/web", `{"health_check":null}`)
	back := waitForD(t, 5*time.Second, "b2 back once the health check is removed", func() bool {
		return backendStatus(t, o.api, "web")["10.1.0.12"] && both()
	})
	t.Logf("health check removed -> b2 (taken down by it) answers again: %v", back.Round(time.Millisecond))
	groups, _ := o.hosts["hv3"].Ofctl("dump-groups", "br-int")
	for _, g := range strings.Split(groups, "\n") {
		if strings.Contains(g, "type=select") && strings.Count(g, "bucket=") != 2 {
			t.Errorf("hv3's load balancer group, want 2 buckets: %s", g)
		}
	}

	// A health check set again starts afresh: both up at once.
	o.patch("/api/v1/load-balancers/web", `{"health_check":{"interval_ms":1000,"timeout_ms":800,"fall":1,"rise":3}}`)
	time.Sleep(400 * time.Millisecond)
	if st := backendStatus(t, o.api, "web"); !st["10.1.0.11"] || !st["10.1.0.12"] {
		t.Errorf("backends %v after the health check came back", st)
	}
	waitForD(t, 5*time.Second, "requests answered by b1 and b2 with the health check back", both)
}
