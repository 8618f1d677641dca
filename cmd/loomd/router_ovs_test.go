package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/controller/view"
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
		o.patch("/api/v1/routers/r1", `{"subnets":["blue-a","green-a"]}`)
		if err := b1.Ping("10.2.0.12", 2, 3*time.Second); err != nil {
			t.Errorf("re-attached: %v", err)
		}
	})
	o.converged()
	for _, h := range []string{"hv1", "hv2", "hv3"} {
		t.Logf("%s: %d flows", h, len(o.flows(h)))
	}
}
