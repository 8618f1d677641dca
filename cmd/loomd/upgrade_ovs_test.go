package main

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/northbound"
)

// TestOVSUpgradeUnderTraffic restarts loomd (an upgrade: SIGTERM, then a
// new process on the same data directory) while traffic runs through
// every default app: a routed ping across hosts from a port with a rate
// limit (meters), a ping to the outside
// through the router's SNAT (whose next hop's MAC the old loomd had
// learned by ARP), and a TCP connection through a load balancer's VIP to
// a backend behind a security group. Nothing may be lost, the connection
// must go on, a backend its health check had taken down stays out, and
// the new loomd must find every switch as it wants it: no flow, group or
// meter sent.
func TestOVSUpgradeUnderTraffic(t *testing.T) {
	requireTools(t, vmPython)
	const apps = "lldp,overlay,router,dhcp,portpolicy,firewall,loadbalancer"
	o := newOverlayLab(t, apps)
	o.lab.AddExternal("ext", "02:00:00:00:ee:01", "172.24.0.1/24")
	o.create("networks", "name=blue", "type=vxlan", "vni=5001")
	o.create("networks", "name=green", "type=vxlan", "vni=5003")
	o.create("networks", "name=public", "type=flat")
	o.create("subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	o.create("subnets", "name=green-a", "network=green", "cidr=10.2.0.0/24", "gateway=10.2.0.1")
	o.create("subnets", "name=public-a", "network=public", "cidr=172.24.0.0/24", "gateway=172.24.0.1")
	b1 := o.port("b1", "blue", "02:00:00:00:01:01", "10.1.0.11", "hv1")
	b2 := o.port("b2", "blue", "02:00:00:00:01:02", "10.1.0.12", "hv2")
	g3 := o.port("g3", "green", "02:00:00:00:03:03", "10.2.0.13", "hv3")
	for vm, gw := range map[string]string{"b1": "10.1.0.1", "b2": "10.1.0.1", "g3": "10.2.0.1"} {
		if out, err := o.vms[vm].Exec("ip", "route", "add", "default", "via", gw); err != nil {
			t.Fatal(out, err)
		}
	}
	o.create("routers", "name=r1", `subnets=["blue-a","green-a"]`, "external_network=public", "snat=true", "gateway_host=hv1")
	o.create("security-groups", "name=echo", `rules=[{"direction":"ingress","protocol":"tcp","port_min":7000},{"direction":"ingress","protocol":"icmp"}]`)
	o.patch("/api/v1/ports/b2", `{"security_groups":["echo"]}`)
	o.create("port-groups", "name=gold", "bandwidth_kbps=50000", "priority=5")
	o.patch("/api/v1/ports/b1", `{"port_group":"gold"}`)
	o.create("load-balancers", "name=echo", "network=blue", "vip=10.1.0.100", "protocol=tcp", "port=7000", `backends=[{"ip":"10.1.0.12"}]`)
	listen(t, b2, 7000)
	// A health-checked load balancer with one backend down (nothing on
	// 7001): after the upgrade it must stay out at once, not take new
	// connections until its probes fail again (interval 3 s).
	o.create("load-balancers", "name=checked", "network=blue", "vip=10.1.0.101", "protocol=tcp", "port=7000",
		`backends=[{"ip":"10.1.0.12","port":7000},{"ip":"10.1.0.12","port":7001}]`,
		`health_check={"interval_ms":3000,"timeout_ms":500,"fall":1,"rise":2}`)
	waitForD(t, 10*time.Second, "10.1.0.12:7001 down", func() bool {
		var st northbound.LoadBalancerStatus
		getJSON(t, o.api, "/api/v1/load-balancers/checked/status", &st)
		for _, b := range st.Backends {
			if b.Port == 7001 {
				return !b.Up
			}
		}
		return false
	})
	o.converged()
	// Warm up: the way out learns its next hop's MAC, every path works.
	took0 := waitForD(t, 30*time.Second, "g3 reaching the outside", func() bool { return g3.Ping("172.24.0.1", 1, time.Second) == nil })
	t.Logf("g3 reached the outside after %v", took0)
	if err := b1.Ping("10.2.0.13", 2, 3*time.Second); err != nil {
		t.Fatalf("b1 -> g3: %v", err)
	}

	eastWest := pingRun(b1, "10.2.0.13", 120) // 6 s at 20/s
	northSouth := pingRun(g3, "172.24.0.1", 120)
	stream := make(chan string, 1)
	go func() {
		out, _ := b1.Exec(vmPython, "-c", streamClient, "10.1.0.100", "7000", "6")
		stream <- strings.TrimSpace(out)
	}()
	time.Sleep(time.Second)
	// The conntrack zones each host's bridge holds (the firewalled b2
	// on hv2, r1's SNAT on hv1, the load balancers' client networks):
	// the new loomd must find and keep them.
	zonesBefore := map[string]map[string]string{}
	for name, h := range o.hosts {
		zonesBefore[name] = bridgeZones(t, h)
	}
	if len(zonesBefore["hv1"]) == 0 || len(zonesBefore["hv2"]) == 0 {
		t.Errorf("no zones on hv1 or hv2 before the upgrade: %v", zonesBefore)
	}
	start := time.Now()
	o.loomd.stop()
	o.loomd = startLoomd(t, o.loomd.sock, o.loomd.data, "--api-listen", o.api, "--apps", apps)
	ready := o.loomd.waitLog(`msg="switch ready"`, 3, 20*time.Second)
	t.Logf("loomd stopped and started again: 3 switches ready %v later", time.Since(start).Round(time.Millisecond))
	// At once: every new connection through the checked VIP reaches
	// 7000, none is refused by 7001, and the status says it is down.
	for i := range 20 {
		if got := tcp(t, b1, "10.1.0.101", 7000); got != "ok" {
			t.Errorf("connection %d through the checked VIP right after the upgrade: %s", i, got)
			break
		}
	}
	if up := backendStatus(t, o.api, "checked"); up["10.1.0.12"] {
		// (both backends share the IP: the map holds the last, 7001's)
		t.Errorf("10.1.0.12:7001 up after the upgrade: %v", up)
	}
	for _, l := range ready {
		t.Logf("  %s", field(l, "since_connect"))
	}
	for _, c := range []struct {
		what string
		got  string
	}{{"b1 -> g3 (routed)", <-eastWest}, {"g3 -> outside (SNAT)", <-northSouth}} {
		if c.got != "120" {
			t.Errorf("%s through the upgrade: %s of 120 pings answered", c.what, c.got)
		}
	}
	if got := <-stream; !strings.HasPrefix(got, "ok") {
		t.Errorf("TCP through the VIP and the firewall across the upgrade: %s", got)
	} else {
		t.Logf("TCP connection through the load balancer across the upgrade: %s round trips", strings.TrimPrefix(got, "ok "))
	}
	for _, rec := range o.loomd.waitLog(`msg=reconciled`, 3, 10*time.Second) {
		for _, f := range []string{"adds", "modifies", "deletes", "groups", "meters"} {
			if field(rec, f) != "0" {
				t.Errorf("the new loomd changed a switch it should have found as it wants it: %s", rec)
				break
			}
		}
	}
	o.converged()
	for name, h := range o.hosts {
		if after := bridgeZones(t, h); !maps.Equal(after, zonesBefore[name]) {
			t.Errorf("%s's zones changed across the upgrade: %v -> %v", name, zonesBefore[name], after)
		} else {
			t.Logf("%s's zones kept across the upgrade: %v", name, after)
		}
	}
}
