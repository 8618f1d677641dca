package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/view"
)

// patch sends a JSON merge patch to the API.
func (o *overlayLab) patch(path, body string) {
	o.t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, "http://"+o.api+path, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		o.t.Fatalf("PATCH %s: %s", path, resp.Status)
	}
}

// gatewayMAC is the MAC loomd gives a subnet's gateway.
func (o *overlayLab) gatewayMAC(subnet string) string {
	o.t.Helper()
	var s struct{ ID string }
	getJSON(o.t, o.api, "/api/v1/subnets/"+subnet, &s)
	m := view.GatewayMAC(s.ID)
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// TestOVSRouter routes between two subnets on different hosts, through
// the distributed router, on real OVS.
func TestOVSRouter(t *testing.T) {
	o := newOverlayLab(t, "lldp,overlay,router")
	o.create("networks", "name=blue", "type=vxlan", "vni=5001")
	o.create("networks", "name=green", "type=vxlan", "vni=5003")
	o.create("networks", "name=iso", "type=vxlan", "vni=5004")
	o.create("subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	o.create("subnets", "name=green-a", "network=green", "cidr=10.2.0.0/24", "gateway=10.2.0.1")
	o.create("subnets", "name=iso-a", "network=iso", "cidr=10.9.0.0/24", "gateway=10.9.0.1")
	b1 := o.port("b1", "blue", "02:00:00:00:01:01", "10.1.0.11", "hv1")
	g2 := o.port("g2", "green", "02:00:00:00:03:02", "10.2.0.12", "hv2")
	o.port("i3", "iso", "02:00:00:00:04:03", "10.9.0.13", "hv3")
	for vm, gw := range map[string]string{"b1": "10.1.0.1", "g2": "10.2.0.1", "i3": "10.9.0.1"} {
		if out, err := o.vms[vm].Exec("ip", "route", "add", "default", "via", gw); err != nil {
			t.Fatal(out, err)
		}
	}
	if err := b1.Ping("10.2.0.12", 1, time.Second); err == nil {
		t.Fatal("b1 reached g2 with no router")
	}

	// The router, timed from POST to the first routed reply. b1 knows its
	// gateway's MAC already, so the time is Loom's, not ARP's retries.
	b1.Exec("ip", "neigh", "replace", "10.1.0.1", "lladdr", o.gatewayMAC("blue-a"), "dev", "eth0")
	g2.Exec("ip", "neigh", "replace", "10.2.0.1", "lladdr", o.gatewayMAC("green-a"), "dev", "eth0")
	pings := startPing(t, b1, "10.2.0.12", "0.005", 400)
	time.Sleep(100 * time.Millisecond)
	posted := time.Now()
	o.create("routers", "name=r1", `subnets=["blue-a","green-a"]`)
	replies := pings.wait()
	if len(replies) == 0 {
		for _, h := range []string{"hv1", "hv2"} {
			t.Logf("%s:\n%s", h, strings.Join(o.flows(h), "\n"))
			tr, _ := o.hosts[h].Appctl("ofproto/trace", "br-int", "in_port=1,icmp,dl_src=02:00:00:00:01:01,dl_dst="+o.gatewayMAC("blue-a")+",nw_src=10.1.0.11,nw_dst=10.2.0.12,nw_ttl=64")
			t.Logf("trace on %s:\n%s", h, tr)
		}
		t.Fatal("no routed reply")
	}
	t.Logf("POST /routers -> first routed ping reply: %v", replies[0].Sub(posted).Round(time.Millisecond))

	t.Run("routed across hosts, TTL decremented once", func(t *testing.T) {
		b1.Exec("ip", "neigh", "flush", "dev", "eth0") // the gateway's ARP too
		out, err := b1.Exec("ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "10.2.0.12")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(out, "ttl=63") {
			t.Errorf("reply TTL not 63:\n%s", out)
		}
		if out, err := g2.Exec("ping", "-n", "-c", "1", "-W", "2", "10.1.0.11"); err != nil {
			t.Errorf("g2 -> b1: %v\n%s", err, out)
		}
	})
	t.Run("the gateway answers ping", func(t *testing.T) {
		if err := b1.Ping("10.1.0.1", 2, 2*time.Second); err != nil {
			t.Error(err)
		}
	})
	t.Run("TTL 1: time exceeded from the gateway", func(t *testing.T) {
		out, _ := b1.Exec("ping", "-n", "-c", "1", "-t", "1", "-W", "2", "10.2.0.12")
		if !strings.Contains(out, "From 10.1.0.1") || !strings.Contains(out, "Time to live exceeded") {
			t.Errorf("ping -t 1:\n%s", out)
		}
	})
	t.Run("unreachable, not silence", func(t *testing.T) {
		out, _ := b1.Exec("ping", "-n", "-c", "1", "-W", "2", "10.9.0.13")
		if !strings.Contains(out, "From 10.1.0.1") || !strings.Contains(out, "Destination Net Unreachable") {
			t.Errorf("a subnet not on the router:\n%s", out)
		}
		out, _ = b1.Exec("ping", "-n", "-c", "1", "-W", "2", "10.2.0.99")
		if !strings.Contains(out, "From 10.1.0.1") || !strings.Contains(out, "Destination Host Unreachable") {
			t.Errorf("an address no port has:\n%s", out)
		}
	})
	t.Run("detaching a subnet stops routing to it", func(t *testing.T) {
		o.patch("/api/v1/routers/r1", `{"subnets":["blue-a"]}`)
		time.Sleep(200 * time.Millisecond)
		if err := b1.Ping("10.2.0.12", 1, time.Second); err == nil {
			t.Error("b1 still reaches g2")
		}
		// Re-attached: routing resumes once the switches have the flows
		// (the PATCH answers before they are installed).
		o.patch("/api/v1/routers/r1", `{"subnets":["blue-a","green-a"]}`)
		back := waitForD(t, 5*time.Second, "b1 reaching g2 again", func() bool { return b1.Ping("10.2.0.12", 1, time.Second) == nil })
		t.Logf("subnet re-attached -> routed again: %v", back.Round(time.Millisecond))
	})
	o.converged()
	for _, h := range []string{"hv1", "hv2", "hv3"} {
		t.Logf("%s: %d flows", h, len(o.flows(h)))
	}
}

// TestOVSRouterExternal takes tenants out through SNAT on the gateway
// host and brings the outside in through a floating IP, on real OVS: the
// external network is flat, on hv1's and hv2's uplinks, where namespace
// "ext" (172.24.0.1, no route to the tenants) stands for the outside.
func TestOVSRouterExternal(t *testing.T) {
	o := newOverlayLab(t, "lldp,overlay,router")
	ext := o.lab.AddExternal("ext", "02:00:00:00:ee:01", "172.24.0.1/24")
	o.create("networks", "name=blue", "type=vxlan", "vni=5001")
	o.create("networks", "name=green", "type=vxlan", "vni=5003")
	o.create("networks", "name=public", "type=flat")
	o.create("subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	o.create("subnets", "name=green-a", "network=green", "cidr=10.2.0.0/24", "gateway=10.2.0.1")
	o.create("subnets", "name=public-a", "network=public", "cidr=172.24.0.0/24", "gateway=172.24.0.1")
	b2 := o.port("b2", "blue", "02:00:00:00:01:02", "10.1.0.12", "hv2")
	g3 := o.port("g3", "green", "02:00:00:00:03:03", "10.2.0.13", "hv3") // hv3 has no uplink
	for vm, gw := range map[string]string{"b2": "10.1.0.1", "g3": "10.2.0.1"} {
		if out, err := o.vms[vm].Exec("ip", "route", "add", "default", "via", gw); err != nil {
			t.Fatal(out, err)
		}
	}
	o.create("routers", "name=r1", `subnets=["blue-a","green-a"]`, "external_network=public", "snat=true", "gateway_host=hv1")
	var r struct {
		ExternalIP string `json:"external_ip"`
	}
	getJSON(t, o.api, "/api/v1/routers/r1", &r)
	t.Logf("router r1's external address: %s", r.ExternalIP)

	t.Run("SNAT from a host without the uplink", func(t *testing.T) {
		if out, err := g3.Exec("ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "172.24.0.1"); err != nil {
			if os.Getenv("LOOM_DEBUG") != "" {
				for _, h := range []string{"hv1", "hv3"} {
					f, _ := o.hosts[h].Ofctl("--no-names", "dump-flows", "br-int")
					t.Logf("%s:\n%s", h, f)
				}
				ct, _ := o.hosts["hv1"].Appctl("dpctl/dump-conntrack")
				t.Logf("conntrack hv1:\n%s", ct)
				l, _ := os.ReadFile(o.loomd.log)
				t.Logf("log:\n%s", l)
			}
			t.Fatalf("g3 -> outside: %v\n%s", err, out)
		}
		neigh, _ := ext.Exec("ip", "neigh", "show", r.ExternalIP)
		if !strings.Contains(neigh, "lladdr") {
			t.Errorf("the outside did not talk to the router's address %s: %q", r.ExternalIP, neigh)
		}
		if out, err := b2.Exec("ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "172.24.0.1"); err != nil {
			t.Errorf("b2 -> outside: %v\n%s", err, out)
		}
	})
	t.Run("floating IP, then moved", func(t *testing.T) {
		if out, err := ext.Exec("ping", "-n", "-c", "1", "-W", "1", "172.24.0.50"); err == nil {
			t.Fatalf("172.24.0.50 answers before it exists:\n%s", out)
		}
		o.create("floating-ips", "name=fip1", "ip=172.24.0.50", "port=g3")
		before := ipInReceives(t, g3)
		if out, err := ext.Exec("ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "172.24.0.50"); err != nil {
			t.Fatalf("outside -> floating IP on g3: %v\n%s", err, out)
		}
		if ipInReceives(t, g3)-before < 3 {
			t.Error("the floating IP's pings did not reach g3")
		}
		o.patch("/api/v1/floating-ips/fip1", `{"port":"b2"}`)
		time.Sleep(200 * time.Millisecond)
		before = ipInReceives(t, b2)
		if out, err := ext.Exec("ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "172.24.0.50"); err != nil {
			t.Fatalf("outside -> floating IP moved to b2: %v\n%s", err, out)
		}
		if ipInReceives(t, b2)-before < 3 {
			t.Error("after the move, the floating IP's pings did not reach b2")
		}
	})
	t.Run("other addresses on the uplink are dropped", func(t *testing.T) {
		ext.Exec("ip", "neigh", "replace", "172.24.0.99", "lladdr", "02:00:00:00:01:02", "dev", "eth0")
		before := ipInReceives(t, b2)
		ext.Exec("ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "172.24.0.99")
		if n := ipInReceives(t, b2) - before; n != 0 {
			t.Errorf("%d packets for another address reached b2", n)
		}
	})
	o.converged()
	for _, h := range []string{"hv1", "hv2", "hv3"} {
		t.Logf("%s: %d flows", h, len(o.flows(h)))
	}
}
