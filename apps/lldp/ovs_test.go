package lldp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/loom-sdn/loom/apps/kit"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/apps/lldp"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/internal/ovslab"
	"github.com/loom-sdn/loom/northbound"
	"github.com/loom-sdn/loom/topology"
)

// TestOVSLinkDiscovery runs the controller in-process with lldp and
// l2switch against two OVS hosts (userspace datapath) whose bridges a veth
// pair joins: the link appears in the graph and the REST API, the VMs on
// either side ping each other through l2switch over it, and it goes when
// the cable goes down or is pulled.
func TestOVSLinkDiscovery(t *testing.T) {
	ovslab.Require(t)
	const interval = time.Second
	g := topology.New(topology.Options{})
	env := controllertest.Start(t, controller.Config{Apps: []string{"lldp", "l2switch"}, Services: kit.Services(nil, g), PacketInRate: 1000,
		AppOptions: map[string]map[string]string{lldp.Name: {"interval": interval.String()}}}, nil)

	lab := ovslab.New(t)
	h1 := lab.AddHost("h1", ovslab.HostOptions{Controllers: []string{"unix:" + env.Sock}})
	h2 := lab.AddHost("h2", ovslab.HostOptions{Controllers: []string{"unix:" + env.Sock}})
	v1 := h1.AddVM("v1", "02:00:00:00:00:01", "10.0.0.1/24")
	v2 := h2.AddVM("v2", "02:00:00:00:00:02", "10.0.0.2/24")
	env.Ready(h1.DPID)
	env.Ready(h2.DPID)
	waitGraph(t, g, "both switches with their VM ports", 5*time.Second, func(s *topology.Snapshot) bool {
		a, ok1 := s.Switch(topology.DPID(h1.DPID))
		b, ok2 := s.Switch(topology.DPID(h2.DPID))
		_, p1 := a.Port(uint32(v1.OFPort))
		_, p2 := b.Port(uint32(v2.OFPort))
		return ok1 && ok2 && p1 && p2
	})

	// Plug the cable: OVS reports the new ports, the app probes them at
	// once.
	start := time.Now()
	k := lab.Link(h1, h2)
	plugged := time.Since(start)
	a := topology.PortRef{DPID: topology.DPID(h1.DPID), Port: uint32(k.APort)}
	b := topology.PortRef{DPID: topology.DPID(h2.DPID), Port: uint32(k.BPort)}
	d := waitGraph(t, g, "the link", 5*time.Second, linked(a, b))
	t.Logf("OVS: link discovered (both directions) %v after plugging started (Lab.Link, which waits for both ports, took %v)",
		(plugged + d).Round(time.Millisecond), plugged.Round(time.Millisecond))

	// Without a new port, discovery waits for a tick: down, up.
	if err := k.SetDown(); err != nil {
		t.Fatal(err)
	}
	d = waitGraph(t, g, "no link after link down", 5*time.Second, noLinks)
	t.Logf("OVS: link removed %v after the cable went down", d.Round(time.Millisecond))
	if err := k.SetUp(); err != nil {
		t.Fatal(err)
	}
	d = waitGraph(t, g, "the link after link up", 5*time.Second, linked(a, b))
	t.Logf("OVS: link rediscovered %v after the cable came up", d.Round(time.Millisecond))

	// The VMs talk through l2switch over the link (one link: no loop).
	for _, p := range [][2]*ovslab.VM{{v1, v2}, {v2, v1}} {
		if err := p[0].Ping(p[1].IP, 3, 5*time.Second); err != nil {
			t.Errorf("ping %s -> %s: %v", p[0].Name, p[1].Name, err)
		}
	}
	// Their ARPs made endpoints, where they attach, not on the link.
	waitGraph(t, g, "the VMs as endpoints", 3*time.Second, func(s *topology.Snapshot) bool {
		e1, ok1 := s.Endpoint(mustMAC(t, v1.MAC))
		e2, ok2 := s.Endpoint(mustMAC(t, v2.MAC))
		return ok1 && ok2 && e1.At == topology.PortRef{DPID: topology.DPID(h1.DPID), Port: uint32(v1.OFPort)} &&
			e2.At == topology.PortRef{DPID: topology.DPID(h2.DPID), Port: uint32(v2.OFPort)} &&
			len(e1.IPs) == 1 && e1.IPs[0].String() == v1.IP
	})

	// The REST view.
	r := mux.NewRouter()
	northbound.TopologyRoutes(g)(r.PathPrefix("/api/v1").Subrouter())
	ts := httptest.NewServer(r)
	defer ts.Close()
	var v northbound.TopologyView
	getJSON(t, ts.URL+"/api/v1/topology", &v)
	if len(v.Nodes) != 2 || len(v.Links) != 1 || !v.Links[0].Bidirectional || len(v.Endpoints) != 2 {
		t.Errorf("GET /topology: %+v", v)
	}
	var p northbound.TopologyPath
	getJSON(t, ts.URL+"/api/v1/topology/path?from="+topology.DPID(h1.DPID).String()+"&to="+topology.DPID(h2.DPID).String(), &p)
	if len(p.Hops) != 2 || p.Hops[0].Out != a.Port || p.Hops[1].In != b.Port {
		t.Errorf("GET /topology/path: %+v", p)
	}

	// A switch that reconnects has no port events to trigger probes: its
	// links return with the next round of probes (within Interval).
	if err := h2.SetController("unix:" + lab.Dir + "/nobody.sock"); err != nil {
		t.Fatal(err)
	}
	waitGraph(t, g, "h2 to leave", 10*time.Second, func(s *topology.Snapshot) bool {
		_, ok := s.Switch(b.DPID)
		return !ok && noLinks(s)
	})
	if err := h2.SetController("unix:" + env.Sock); err != nil {
		t.Fatal(err)
	}
	waitGraph(t, g, "h2 to return", 10*time.Second, func(s *topology.Snapshot) bool { _, ok := s.Switch(b.DPID); return ok })
	d = waitGraph(t, g, "the link after h2 returned", 3*time.Second, linked(a, b))
	t.Logf("OVS: link rediscovered %v after a reconnected switch joined the graph (probe interval %v)",
		d.Round(time.Millisecond), interval)

	// Pull the cable: the ports go, and the link with them.
	start = time.Now()
	if err := k.Delete(); err != nil {
		t.Fatal(err)
	}
	d = waitGraph(t, g, "no link after the cable was pulled", 5*time.Second, noLinks)
	t.Logf("OVS: link removed %v after the veth was deleted (Delete, with both del-ports, took %v)",
		time.Since(start).Round(time.Millisecond), (time.Since(start) - d).Round(time.Millisecond))
	if err := v1.Ping(v2.IP, 1, time.Second); err == nil {
		t.Error("ping without a link")
	}
}

func waitGraph(t *testing.T, g *topology.Graph, what string, timeout time.Duration, cond func(*topology.Snapshot) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if cond(g.Snapshot()) {
			return time.Since(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s; topology: %+v", timeout, what, g.Snapshot())
	return 0
}

func mustMAC(t *testing.T, s string) topology.MAC {
	m, err := topology.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
