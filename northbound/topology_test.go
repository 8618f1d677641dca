package northbound_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/northbound"
	"github.com/loom-sdn/loom/topology"
)

func TestTopologyRoutes(t *testing.T) {
	g := topology.New(topology.Options{})
	up := func(d topology.DPID, n uint32) {
		var ps []topology.Port
		for i := uint32(1); i <= n; i++ {
			ps = append(ps, topology.Port{Number: i, Name: "p", MAC: topology.MAC{2, 0, 0, 0, byte(d), byte(i)}, Up: true})
		}
		g.SwitchUp(d, ps)
	}
	up(1, 2)
	up(2, 2)
	up(3, 1) // isolated
	a, b := topology.PortRef{DPID: 1, Port: 2}, topology.PortRef{DPID: 2, Port: 1}
	g.ObserveLink(a, b, 0)
	g.ObserveLink(b, a, 0)
	g.LearnEndpoint(topology.MAC{2, 0, 0, 0, 0, 0xa}, netip.MustParseAddr("10.0.0.10"), topology.PortRef{DPID: 1, Port: 1})

	r := mux.NewRouter()
	northbound.TopologyRoutes(g)(r.PathPrefix("/api/v1").Subrouter())
	ts := httptest.NewServer(r)
	defer ts.Close()
	get := func(path string, code int, v any) {
		t.Helper()
		getJSON(t, ts.URL+path, code, v)
	}

	var v northbound.TopologyView
	get("/api/v1/topology", 200, &v)
	if len(v.Nodes) != 3 || v.Nodes[0].ID != "0000000000000001" || v.Nodes[0].Type != "switch" ||
		len(v.Nodes[0].Ports) != 2 || v.Nodes[0].Ports[1].MAC != "02:00:00:00:01:02" || !v.Nodes[0].Ports[1].Up {
		t.Errorf("nodes: %+v", v.Nodes)
	}
	if len(v.Links) != 1 {
		t.Fatalf("links: %+v", v.Links)
	}
	l := v.Links[0]
	if l.ID != "0000000000000001:2-0000000000000002:1" || l.Source != "0000000000000001" || l.SourcePort != 2 ||
		l.Target != "0000000000000002" || l.TargetPort != 1 || !l.Bidirectional || l.FirstSeen.IsZero() {
		t.Errorf("link: %+v", l)
	}
	if len(v.Endpoints) != 1 || v.Endpoints[0].ID != "02:00:00:00:00:0a" || v.Endpoints[0].Switch != "0000000000000001" ||
		v.Endpoints[0].Port != 1 || len(v.Endpoints[0].IPs) != 1 || v.Endpoints[0].IPs[0] != "10.0.0.10" || v.Endpoints[0].Source != "learned" {
		t.Errorf("endpoints: %+v", v.Endpoints)
	}
	if v.Version == 0 {
		t.Error("no version")
	}

	var p northbound.TopologyPath
	get("/api/v1/topology/path?from=1&to=0x0000000000000002", 200, &p)
	want := []topology.Hop{{DPID: 1, Out: 2}, {DPID: 2, In: 1}}
	if p.From != "0000000000000001" || p.To != "0000000000000002" || len(p.Hops) != 2 || p.Hops[0] != want[0] || p.Hops[1] != want[1] {
		t.Errorf("path: %+v", p)
	}
	for _, c := range []struct {
		query string
		code  int
		field string
	}{
		{"from=1", 400, "to"},
		{"from=zz&to=2", 400, "from"},
		{"from=1&to=", 400, "to"},
		{"from=9&to=1", 404, "from"},
		{"from=1&to=9", 404, "to"},
		{"from=1&to=3", 404, ""},
	} {
		var e northbound.Error
		get("/api/v1/topology/path?"+c.query, c.code, &e)
		if e.Field != c.field || e.Message == "" {
			t.Errorf("%s: %+v", c.query, e)
		}
	}
}
