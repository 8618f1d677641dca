package model_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/store"
)

var ctx = context.Background()

func open(t testing.TB, dir string) (store.Interface, *model.Service) {
	t.Helper()
	st := openStore(t, dir)
	svc, err := model.New(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st, svc
}

func mustCreate(t testing.TB, svc *model.Service, o model.Object) model.Object {
	t.Helper()
	got, err := svc.Create(ctx, o)
	if err != nil {
		t.Fatalf("create %s %s: %v", o.Kind(), o.Base().Name, err)
	}
	return got
}

func named(name string) model.Meta { return model.Meta{Name: name} }

// world creates one object of every kind, referring to each other by name.
func world(t testing.TB, svc *model.Service) {
	mustCreate(t, svc, &model.Host{Meta: named("hv1"), OVSDB: "unix:/run/openvswitch/db.sock", VTEPIP: "192.0.2.1"})
	mustCreate(t, svc, &model.Network{Meta: named("blue"), Type: "vxlan", VNI: 5001})
	mustCreate(t, svc, &model.Network{Meta: named("ext"), Type: "flat"})
	mustCreate(t, svc, &model.Subnet{Meta: named("blue-v4"), Network: "blue", CIDR: "10.1.0.0/24"})
	mustCreate(t, svc, &model.Subnet{Meta: named("ext-v4"), Network: "ext", CIDR: "203.0.113.0/24"})
	mustCreate(t, svc, &model.PortGroup{Meta: named("gold"), BandwidthKbps: 10000})
	mustCreate(t, svc, &model.SecurityGroup{Meta: named("web"), Rules: []model.Rule{
		{Direction: "ingress", Protocol: "tcp", PortMin: 80},
		{Direction: "ingress", RemoteGroup: "web"},
	}})
	mustCreate(t, svc, &model.Port{Meta: named("vm1"), Network: "blue", IPs: []string{"10.1.0.11"}, PortGroup: "gold", SecurityGroups: []string{"web"}})
	mustCreate(t, svc, &model.Router{Meta: named("r1"), Subnets: []string{"blue-v4"}, ExternalNetwork: "ext", SNAT: true, GatewayHost: "hv1",
		Routes: []model.Route{{Destination: "0.0.0.0/0", Nexthop: "203.0.113.1"}}})
	mustCreate(t, svc, &model.LoadBalancer{Meta: named("lb1"), Network: "blue", VIP: "10.1.0.100", Protocol: "tcp", Port: 80,
		Backends: []model.Backend{{IP: "10.1.0.11"}}, HealthCheck: &model.HealthCheck{}})
	mustCreate(t, svc, &model.FloatingIP{Meta: named("fip1"), IP: "203.0.113.50", Port: "vm1"})
}

func TestServiceDefaultsRefsAndSnapshot(t *testing.T) {
	_, svc := open(t, t.TempDir())
	sub := svc.Subscribe(100)
	world(t, svc)
	snap := svc.Snapshot()
	blue, ok := snap.Networks.ByName("blue")
	if !ok || blue.Revision == 0 || blue.ID == "" || blue.CreatedAt.IsZero() {
		t.Fatalf("blue: %+v", blue)
	}
	p, _ := snap.Ports.ByName("vm1")
	sg, _ := snap.SecurityGroups.ByName("web")
	pg, _ := snap.PortGroups.ByName("gold")
	if p.Network != blue.ID || p.PortGroup != pg.ID || p.SecurityGroups[0] != sg.ID || !strings.HasPrefix(p.MAC, "02:") {
		t.Fatalf("port refs and mac: %+v", p)
	}
	if sg.Rules[1].RemoteGroup != sg.ID || sg.Rules[0].PortMax != 80 || sg.Rules[0].Ethertype != "ipv4" || !*sg.Rules[0].Stateful || sg.Rules[1].Protocol != "any" {
		t.Fatalf("rules: %+v", sg.Rules)
	}
	s, _ := snap.Subnets.ByName("blue-v4")
	if s.Gateway != "10.1.0.1" || !*s.DHCP {
		t.Fatalf("subnet defaults: %+v", s)
	}
	h, _ := snap.Hosts.ByName("hv1")
	if h.Bridge != "br-int" || h.DatapathType != "system" {
		t.Fatalf("host defaults: %+v", h)
	}
	lb, _ := snap.LoadBalancers.ByName("lb1")
	if *lb.Backends[0].Weight != 1 || lb.Backends[0].Port != 80 || lb.HealthCheck.IntervalMS != 5000 || lb.HealthCheck.TimeoutMS != 2000 || lb.HealthCheck.Protocol != "tcp" {
		t.Fatalf("lb defaults: %+v %+v", lb.Backends, lb.HealthCheck)
	}
	if o, ok := snap.Lookup(model.KindPort, p.ID); !ok || o != model.Object(p) {
		t.Fatal("lookup by id")
	}
	r, _ := snap.Routers.ByName("r1")
	ext, _ := snap.Networks.ByName("ext")
	fip, _ := snap.FloatingIPs.ByName("fip1")
	if r.ExternalIP != "203.0.113.2" || r.GatewayHost != h.ID || fip.Network != ext.ID || fip.Port != p.ID || fip.IP != "203.0.113.50" {
		t.Fatalf("router %+v, floating ip %+v", r, fip)
	}
	for i := 0; i < 11; i++ {
		e := <-sub.C
		if e.Topic != "model" || e.Type != "created" || e.ID == "" || e.Object == nil {
			t.Fatalf("event %+v", e)
		}
	}
	// Snapshots are immutable: a later write does not show in an old one.
	if _, err := svc.Patch(ctx, model.KindNetwork, "blue", []byte(`{"vni":5002}`), 0); err != nil {
		t.Fatal(err)
	}
	if b, _ := snap.Networks.ByName("blue"); b.VNI != 5001 {
		t.Fatal("old snapshot changed")
	}
	if b, _ := svc.Snapshot().Networks.ByName("blue"); b.VNI != 5002 || b.Revision <= blue.Revision || b.CreatedAt != blue.CreatedAt {
		t.Fatalf("patched: %+v", b)
	}
	if e := <-sub.C; e.Type != "updated" || e.Kind != "network" || e.Object.(*model.Network).VNI != 5002 {
		t.Fatalf("update event %+v", e)
	}
	ports, err := svc.List(model.KindPort, map[string]string{"network": "blue", "security_groups": "web"})
	if err != nil || len(ports) != 1 {
		t.Fatalf("filtered list: %v %v", ports, err)
	}
	routers, err := svc.List(model.KindRouter, map[string]string{"host": "hv1"})
	if err != nil || len(routers) != 1 {
		t.Fatalf("routers by host: %v %v", routers, err)
	}
	if _, err := svc.List(model.KindHost, map[string]string{"network": "blue"}); model.CodeOf(err) != model.Invalid {
		t.Fatalf("bad filter: %v", err)
	}
}

func TestDeleteReferenced(t *testing.T) {
	_, svc := open(t, t.TempDir())
	world(t, svc)
	for _, c := range []struct {
		kind model.Kind
		name string
		by   string
	}{
		{model.KindNetwork, "blue", "subnet blue-v4"},
		{model.KindNetwork, "ext", "subnet ext-v4 (network)"},
		{model.KindSubnet, "blue-v4", "router r1 (subnets[0])"},
		{model.KindPortGroup, "gold", "port vm1"},
		{model.KindSecurityGroup, "web", "port vm1"},
		{model.KindHost, "hv1", "router r1"},
		{model.KindPort, "vm1", "floating_ip fip1 (port)"},
		{model.KindRouter, "r1", "floating_ip fip1"},
		{model.KindSubnet, "ext-v4", "floating ip fip1 (203.0.113.50)"},
	} {
		_, err := svc.Delete(ctx, c.kind, c.name, 0)
		if model.CodeOf(err) != model.Conflict || !strings.Contains(err.Error(), c.by) {
			t.Errorf("delete %s %s: %v, want a conflict naming %s", c.kind, c.name, err, c.by)
		}
	}
	// Delete in dependency order; a self-reference does not block.
	for _, d := range [][2]string{{"floating_ip", "fip1"}, {"router", "r1"}, {"load_balancer", "lb1"}, {"port", "vm1"}, {"security_group", "web"},
		{"port_group", "gold"}, {"subnet", "blue-v4"}, {"subnet", "ext-v4"}, {"network", "blue"}, {"network", "ext"}, {"host", "hv1"}} {
		if _, err := svc.Delete(ctx, model.Kind(d[0]), d[1], 0); err != nil {
			t.Fatalf("delete %v: %v", d, err)
		}
	}
	for _, ki := range model.Kinds() {
		if n := svc.Snapshot().Len(ki.Kind); n != 0 {
			t.Errorf("%d %s left", n, ki.Kind)
		}
	}
}

func TestSubnetChangesKeepAddressesUsable(t *testing.T) {
	_, svc := open(t, t.TempDir())
	world(t, svc)
	// vm1 has 10.1.0.11 and lb1 10.1.0.100.
	for _, c := range []struct{ patch, field string }{
		{`{"cidr":"10.2.0.0/24","gateway":"10.2.0.1"}`, "cidr"},
		{`{"gateway":"10.1.0.11"}`, "gateway"},
	} {
		_, err := svc.Patch(ctx, model.KindSubnet, "blue-v4", []byte(c.patch), 0)
		var e *model.Error
		if model.CodeOf(err) != model.Conflict || !errorAs(err, &e) || e.Field != c.field {
			t.Errorf("patch %s: %v", c.patch, err)
		}
	}
	if _, err := svc.Patch(ctx, model.KindSubnet, "blue-v4", []byte(`{"cidr":"10.1.0.0/16"}`), 0); err != nil {
		t.Errorf("widening: %v", err)
	}
}

func errorAs(err error, e **model.Error) bool {
	var ok bool
	*e, ok = err.(*model.Error)
	return ok
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	st, svc := open(t, dir)
	world(t, svc)
	before := svc.Snapshot()
	st.Close()
	st, svc = open(t, dir)
	defer st.Close()
	after := svc.Snapshot()
	if after.Revision != before.Revision {
		t.Fatalf("revision %d after restart, %d before", after.Revision, before.Revision)
	}
	for _, ki := range model.Kinds() {
		if after.Len(ki.Kind) != before.Len(ki.Kind) {
			t.Fatalf("%s: %d after restart, %d before", ki.Kind, after.Len(ki.Kind), before.Len(ki.Kind))
		}
		objs, _ := before.List(ki.Kind, nil)
		for _, o := range objs {
			n, ok := after.Get(ki.Kind, o.Base().ID)
			a, _ := json.Marshal(n)
			b, _ := json.Marshal(o)
			if !ok || string(a) != string(b) {
				t.Fatalf("%s %s after restart:\n%s\nbefore:\n%s", ki.Kind, o.Base().Name, a, b)
			}
		}
	}
	// Writes go on from where they were.
	if _, err := svc.Patch(ctx, model.KindNetwork, "blue", []byte(`{"vni":7}`), before.Networks.Sorted()[0].Revision); err != nil {
		t.Fatal(err)
	}
}

// Two services on one store: the fence makes the second one notice the
// first one's writes and re-validate against them.
func TestFenceReload(t *testing.T) {
	st, a := open(t, t.TempDir())
	b, err := model.New(ctx, st, events.NewBus())
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, a, &model.Network{Meta: named("blue"), Type: "vxlan", VNI: 1})
	_, err = b.Create(ctx, &model.Network{Meta: named("green"), Type: "vxlan", VNI: 1})
	if model.CodeOf(err) != model.Conflict {
		t.Fatalf("duplicate VNI through a stale service: %v", err)
	}
	if _, ok := b.Snapshot().Networks.ByName("blue"); !ok {
		t.Fatal("b did not reload")
	}
}

// N writers patch one object with If-Match and retry on a precondition
// failure: every increment lands.
func TestConcurrentPatchNoLostUpdate(t *testing.T) {
	_, svc := open(t, t.TempDir())
	mustCreate(t, svc, &model.PortGroup{Meta: named("pg"), BandwidthKbps: 1})
	const writers, each = 8, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	retries := 0
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for {
					o, _ := svc.Get(model.KindPortGroup, "pg")
					pg := o.(*model.PortGroup)
					_, err := svc.Patch(ctx, model.KindPortGroup, "pg", fmt.Appendf(nil, `{"bandwidth_kbps":%d}`, pg.BandwidthKbps+1), pg.Revision)
					if err == nil {
						break
					}
					if model.CodeOf(err) != model.Precondition {
						t.Error(err)
						return
					}
					mu.Lock()
					retries++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	o, _ := svc.Get(model.KindPortGroup, "pg")
	if got := o.(*model.PortGroup).BandwidthKbps; got != 1+writers*each {
		t.Fatalf("bandwidth %d, want %d (lost updates)", got, 1+writers*each)
	}
	t.Logf("%d retries", retries)
}

func TestEventsAfterSnapshot(t *testing.T) {
	_, svc := open(t, t.TempDir())
	sub := svc.Subscribe(10)
	defer sub.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e := <-sub.C
		if _, ok := svc.Snapshot().Get(model.Kind(e.Kind), e.ID); !ok {
			t.Error("event before its snapshot")
		}
	}()
	mustCreate(t, svc, &model.Network{Meta: named("n"), Type: "flat"})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
}

func TestChangesSince(t *testing.T) {
	_, svc := open(t, t.TempDir())
	s0 := svc.Snapshot()
	n := mustCreate(t, svc, &model.Network{Meta: named("blue"), Type: "vxlan", VNI: 7})
	p := mustCreate(t, svc, &model.Port{Meta: named("p1"), Network: "blue"})
	got, ok := svc.Snapshot().ChangesSince(s0.Revision)
	if !ok || len(got) != 2 || got[0].Kind != model.KindNetwork || got[0].ID != n.Base().ID ||
		got[1].Kind != model.KindPort || got[1].ID != p.Base().ID {
		t.Errorf("changes since %d: %+v %v", s0.Revision, got, ok)
	}
	if got, ok := svc.Snapshot().ChangesSince(svc.Snapshot().Revision); !ok || len(got) != 0 {
		t.Errorf("changes since now: %+v %v", got, ok)
	}
	// A reopened service knows nothing before its load.
	_, svc2 := open(t, t.TempDir())
	if _, ok := svc2.Snapshot().ChangesSince(0); !ok {
		t.Error("a fresh service cannot list changes since 0")
	}
}

// A router's external_ip: allocated from its external network, unique
// there, stable across unrelated updates, released with external_network.
func TestRouterExternalIP(t *testing.T) {
	_, svc := open(t, t.TempDir())
	mustCreate(t, svc, &model.Network{Meta: named("ext"), Type: "flat"})
	mustCreate(t, svc, &model.Network{Meta: named("tiny"), Type: "flat"})
	mustCreate(t, svc, &model.Network{Meta: named("bare"), Type: "flat"})
	mustCreate(t, svc, &model.Network{Meta: named("blue"), Type: "vxlan", VNI: 1})
	mustCreate(t, svc, &model.Subnet{Meta: named("ext-v4"), Network: "ext", CIDR: "172.24.0.0/24"})
	mustCreate(t, svc, &model.Subnet{Meta: named("ext-v6"), Network: "ext", CIDR: "2001:db8::/64"})
	mustCreate(t, svc, &model.Subnet{Meta: named("tiny-v4"), Network: "tiny", CIDR: "172.25.0.0/30"})
	mustCreate(t, svc, &model.Subnet{Meta: named("bare-v6"), Network: "bare", CIDR: "2001:db8:1::/64"})
	mustCreate(t, svc, &model.Subnet{Meta: named("blue-v4"), Network: "blue", CIDR: "10.1.0.0/24"})
	mustCreate(t, svc, &model.Port{Meta: named("on-ext"), Network: "ext", IPs: []string{"172.24.0.2"}})

	extIP := func(name string) string {
		t.Helper()
		r, ok := svc.Snapshot().Routers.ByName(name)
		if !ok {
			t.Fatalf("no router %s", name)
		}
		return r.ExternalIP
	}
	patch := func(name, body string) error {
		_, err := svc.Patch(ctx, model.KindRouter, name, []byte(body), 0)
		return err
	}
	steps := []struct {
		what  string
		do    func() error
		check map[string]string // router: external_ip
	}{
		{"skips the gateway (.1) and a port's address (.2); the input's is ignored", func() error {
			_, err := svc.Create(ctx, &model.Router{Meta: named("ra"), ExternalNetwork: "ext", ExternalIP: "172.24.0.99"})
			return err
		}, map[string]string{"ra": "172.24.0.3"}},
		{"skips a floating ip", func() error {
			_, err := svc.Create(ctx, &model.FloatingIP{Meta: named("f1"), Network: "ext", IP: "172.24.0.4"})
			return err
		}, map[string]string{"ra": "172.24.0.3"}},
		{"a second router gets another address", func() error {
			_, err := svc.Create(ctx, &model.Router{Meta: named("rb"), Subnets: []string{"blue-v4"}, ExternalNetwork: "ext"})
			return err
		}, map[string]string{"ra": "172.24.0.3", "rb": "172.24.0.5"}},
		{"a router without external_network has none", func() error {
			_, err := svc.Create(ctx, &model.Router{Meta: named("rc")})
			return err
		}, map[string]string{"rc": ""}},
		{"an unrelated patch keeps it", func() error {
			return patch("ra", `{"snat":true,"routes":[{"destination":"0.0.0.0/0","nexthop":"172.24.0.1"}]}`)
		},
			map[string]string{"ra": "172.24.0.3"}},
		{"a patch of external_ip is ignored", func() error { return patch("ra", `{"external_ip":"172.24.0.77"}`) },
			map[string]string{"ra": "172.24.0.3"}},
		{"a PUT without it keeps it", func() error {
			_, err := svc.Update(ctx, model.KindRouter, "rb", &model.Router{Meta: named("rb"), Subnets: []string{"blue-v4"}, ExternalNetwork: "ext"}, 0)
			return err
		}, map[string]string{"rb": "172.24.0.5"}},
		{"removing external_network releases it", func() error { return patch("ra", `{"external_network":null,"snat":null,"routes":null}`) },
			map[string]string{"ra": ""}},
		{"the released address is taken again", func() error { return patch("rc", `{"external_network":"ext"}`) },
			map[string]string{"rc": "172.24.0.3", "rb": "172.24.0.5"}},
		{"setting external_network later allocates", func() error { return patch("ra", `{"external_network":"ext"}`) },
			map[string]string{"ra": "172.24.0.6"}},
		{"moving to another external network re-allocates", func() error { return patch("ra", `{"external_network":"tiny"}`) },
			map[string]string{"ra": "172.25.0.2"}},
		{"the first IPv4 subnet by CIDR, not by name or age", func() error {
			if _, err := svc.Create(ctx, &model.Subnet{Meta: named("zz-ext"), Network: "ext", CIDR: "172.16.0.0/24"}); err != nil {
				return err
			}
			_, err := svc.Create(ctx, &model.Router{Meta: named("rd"), ExternalNetwork: "ext"})
			return err
		}, map[string]string{"rd": "172.16.0.2", "rc": "172.24.0.3"}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		for r, want := range s.check {
			if got := extIP(r); got != want {
				t.Errorf("%s: router %s external_ip %q, want %q", s.what, r, got, want)
			}
		}
	}

	// Refusals: the write does not happen.
	for _, c := range []struct {
		what  string
		do    func() error
		code  model.Code
		field string
	}{
		{"no free address (tiny /30 has one host address besides the gateway)", func() error {
			_, err := svc.Create(ctx, &model.Router{Meta: named("x"), ExternalNetwork: "tiny"})
			return err
		}, model.Conflict, "external_network"},
		{"no IPv4 subnet", func() error {
			_, err := svc.Create(ctx, &model.Router{Meta: named("x"), ExternalNetwork: "bare"})
			return err
		}, model.Invalid, "external_network"},
		{"a port cannot take a router's external_ip", func() error {
			_, err := svc.Create(ctx, &model.Port{Meta: named("x"), Network: "ext", IPs: []string{"172.24.0.5"}})
			return err
		}, model.Conflict, "ips[0]"},
		{"a load balancer cannot take it", func() error {
			_, err := svc.Create(ctx, &model.LoadBalancer{Meta: named("x"), Network: "ext", VIP: "172.24.0.5", Protocol: "tcp", Port: 80})
			return err
		}, model.Conflict, "vip"},
		{"a floating ip cannot take it", func() error {
			_, err := svc.Create(ctx, &model.FloatingIP{Meta: named("x"), IP: "172.24.0.5"})
			return err
		}, model.Conflict, "ip"},
		{"the subnet's gateway cannot move onto it", func() error {
			_, err := svc.Patch(ctx, model.KindSubnet, "ext-v4", []byte(`{"gateway":"172.24.0.5"}`), 0)
			return err
		}, model.Conflict, "gateway"},
		{"a subnet holding an external_ip cannot go", func() error {
			_, err := svc.Delete(ctx, model.KindSubnet, "zz-ext", 0)
			return err
		}, model.Conflict, ""},
		{"nor shrink away from it", func() error {
			_, err := svc.Patch(ctx, model.KindSubnet, "tiny-v4", []byte(`{"cidr":"172.25.0.4/30","gateway":null}`), 0)
			return err
		}, model.Conflict, "cidr"},
	} {
		before := svc.Snapshot().Revision
		err := c.do()
		var e *model.Error
		if model.CodeOf(err) != c.code || !errorAs(err, &e) || e.Field != c.field {
			t.Errorf("%s: %v, want %v on field %q", c.what, err, c.code, c.field)
		}
		if svc.Snapshot().Revision != before {
			t.Errorf("%s: the model changed", c.what)
		}
	}
	if _, err := svc.Delete(ctx, model.KindSubnet, "zz-ext", 0); !strings.Contains(fmt.Sprint(err), "router rd (external_ip 172.16.0.2)") {
		t.Errorf("subnet delete names the router: %v", err)
	}
	// Once the router lets go, the subnet can go.
	if err := patch("rd", `{"external_network":null}`); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Delete(ctx, model.KindSubnet, "zz-ext", 0); err != nil {
		t.Fatal(err)
	}
}

func TestRouterGatewayHostDefault(t *testing.T) {
	_, svc := open(t, t.TempDir())
	mustCreate(t, svc, &model.Network{Meta: named("ext"), Type: "flat"})
	mustCreate(t, svc, &model.Subnet{Meta: named("ext-v4"), Network: "ext", CIDR: "172.24.0.0/24"})
	gw := func(name string) string {
		r, _ := svc.Snapshot().Routers.ByName(name)
		if h, ok := svc.Snapshot().Hosts.Get(r.GatewayHost); ok {
			return h.Name
		}
		return r.GatewayHost
	}
	mustCreate(t, svc, &model.Host{Meta: named("hv-a"), OVSDB: "unix:/db", VTEPIP: "192.0.2.1"})
	// No host has an uplink: empty, not an error.
	mustCreate(t, svc, &model.Router{Meta: named("r0"), ExternalNetwork: "ext"})
	mustCreate(t, svc, &model.Host{Meta: named("hv-c"), OVSDB: "unix:/db", VTEPIP: "192.0.2.3", Uplink: "eth2"})
	mustCreate(t, svc, &model.Host{Meta: named("hv-b"), OVSDB: "unix:/db", VTEPIP: "192.0.2.2", Uplink: "eth1"})
	mustCreate(t, svc, &model.Router{Meta: named("r1"), ExternalNetwork: "ext"})
	mustCreate(t, svc, &model.Router{Meta: named("r2"), ExternalNetwork: "ext", GatewayHost: "hv-c"})
	mustCreate(t, svc, &model.Router{Meta: named("r3")})
	for r, want := range map[string]string{"r0": "", "r1": "hv-b", "r2": "hv-c", "r3": ""} {
		if got := gw(r); got != want {
			t.Errorf("router %s: gateway_host %q, want %q", r, got, want)
		}
	}
	// Set later with external_network, reset to the default with null.
	for _, c := range []struct{ router, patch, want string }{
		{"r0", `{"snat":true}`, "hv-b"},
		{"r3", `{"external_network":"ext"}`, "hv-b"},
		{"r2", `{"gateway_host":null}`, "hv-b"},
	} {
		if _, err := svc.Patch(ctx, model.KindRouter, c.router, []byte(c.patch), 0); err != nil {
			t.Fatal(err)
		}
		if got := gw(c.router); got != c.want {
			t.Errorf("router %s after %s: gateway_host %q, want %q", c.router, c.patch, got, c.want)
		}
	}
}
