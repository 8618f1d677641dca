package northbound_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/northbound"
	"github.com/loom-sdn/loom/southbound/ovsdb"
	"github.com/loom-sdn/loom/store"
	"github.com/loom-sdn/loom/topology"
	"github.com/loom-sdn/loom/view"
	"github.com/prometheus/client_golang/prometheus"
)

// modelEnv is loomd's API over a real bbolt store in a temporary directory.
type modelEnv struct {
	t   testing.TB
	dir string
	st  *store.Bolt
	svc *model.Service
	ts  *httptest.Server
	ctl *controller.Controller
	reg *prometheus.Registry
	bus *events.Bus

	hosts *ovsdb.Manager
}

func newModelEnv(t testing.TB) *modelEnv {
	t.Helper()
	e := &modelEnv{t: t, dir: t.TempDir(), reg: prometheus.NewRegistry(), bus: events.NewBus()}
	e.ctl = controllertest.Start(t, controller.Config{Apps: []string{"l2switch"}}, e.reg).Ctl
	e.hosts = ovsdb.NewManager(ovsdb.Options{})
	t.Cleanup(e.hosts.Close)
	e.open()
	t.Cleanup(e.close)
	return e
}

// handler is the full API as loomd mounts it.
func (e *modelEnv) handler() http.Handler {
	return northbound.Handler(e.ctl, e.reg,
		northbound.ModelRoutes(e.svc), northbound.OpenAPIRoutes(),
		northbound.EventRoutes(e.bus, 0), northbound.TopologyRoutes(topology.New(topology.Options{Events: e.bus})),
		northbound.StatusRoutes(e.svc, e.hosts, e.ctl, view.New(), nil))
}

func (e *modelEnv) open() {
	var err error
	if e.st, err = store.OpenBolt(e.dir, store.Options{NoSync: true}); err != nil {
		e.t.Fatal(err)
	}
	if e.svc, err = model.New(context.Background(), e.st, e.bus); err != nil {
		e.t.Fatal(err)
	}
	e.ts = httptest.NewServer(e.handler())
}

func (e *modelEnv) close() {
	if e.ts != nil {
		e.ts.Close()
		e.st.Close()
		e.ts = nil
	}
}

func (e *modelEnv) dump() []byte {
	var b bytes.Buffer
	if _, err := e.st.WriteTo(&b); err != nil {
		e.t.Fatal(err)
	}
	return b.Bytes()
}

type reply struct {
	status int
	hdr    http.Header
	body   []byte
}

func (r reply) obj() map[string]any {
	var m map[string]any
	json.Unmarshal(r.body, &m)
	return m
}

func (r reply) err() northbound.Error {
	var e northbound.Error
	json.Unmarshal(r.body, &e)
	return e
}

// do sends a request; hdr is header name, value pairs.
func (e *modelEnv) do(method, path, body string, hdr ...string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.ts.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

// must sends a request that must answer status.
func (e *modelEnv) must(status int, method, path, body string, hdr ...string) reply {
	e.t.Helper()
	r := e.do(method, path, body, hdr...)
	if r.status != status {
		e.t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, r.status, r.body, status)
	}
	return r
}

// world creates one of everything through the API, referring by name.
func (e *modelEnv) world() {
	for _, c := range [][2]string{
		{"hosts", `{"name":"hv1","ovsdb":"unix:/run/openvswitch/db.sock","vtep_ip":"192.0.2.1"}`},
		{"hosts", `{"name":"hv2","ovsdb":"tcp:192.0.2.2:6640","vtep_ip":"192.0.2.2","datapath_type":"netdev","controller":"tcp:192.0.2.10:6653","uplink":"eth1"}`},
		{"networks", `{"name":"blue","type":"vxlan","vni":5001}`},
		{"networks", `{"name":"red","type":"vlan","vlan":100}`},
		{"networks", `{"name":"ext","type":"flat"}`},
		{"subnets", `{"name":"blue-v4","network":"blue","cidr":"10.1.0.0/24","dns_servers":["10.1.0.2"],"lease_seconds":3600,"host_routes":[{"destination":"172.16.0.0/12","nexthop":"10.1.0.254"}]}`},
		{"subnets", `{"name":"red-v4","network":"red","cidr":"10.2.0.0/24","gateway":"10.2.0.254","dhcp":false}`},
		{"subnets", `{"name":"ext-v4","network":"ext","cidr":"203.0.113.0/24"}`},
		{"port-groups", `{"name":"gold","bandwidth_kbps":10000,"burst_kb":100,"priority":5,"vlan":7,"dhcp_isolation":true,"ip_mac_binding":true}`},
		{"security-groups", `{"name":"web","rules":[{"direction":"ingress","protocol":"tcp","port_min":80,"port_max":443},{"direction":"ingress","remote_group":"web"},{"direction":"egress","protocol":47}]}`},
		{"security-groups", `{"name":"ssh","rules":[{"direction":"ingress","protocol":"tcp","port_min":22,"remote_cidr":"198.51.100.0/24"}]}`},
		{"ports", `{"name":"vm1","network":"blue","mac":"02:00:00:00:00:01","ips":["10.1.0.11"],"port_group":"gold","security_groups":["web"]}`},
		{"ports", `{"name":"vm2","network":"blue","mac":"02:00:00:00:00:02","ips":["10.1.0.12"]}`},
		{"ports", `{"name":"vm3","network":"red","mac":"02:00:00:00:00:01","ips":["10.2.0.11"]}`},
		{"routers", `{"name":"r1","subnets":["blue-v4","red-v4"],"external_network":"ext","snat":true,"gateway_host":"hv1","routes":[{"destination":"0.0.0.0/0","nexthop":"203.0.113.1"}]}`},
		{"load-balancers", `{"name":"lb1","network":"blue","vip":"10.1.0.100","protocol":"tcp","port":80,"backends":[{"ip":"10.1.0.11"},{"ip":"10.1.0.12","port":8080,"weight":3}],"health_check":{"interval_ms":1000,"fall":2},"affinity_seconds":60}`},
		{"floating-ips", `{"name":"fip1","ip":"203.0.113.50","port":"vm1"}`},
		{"floating-ips", `{"name":"fip2","network":"ext","ip":"203.0.113.51"}`},
	} {
		e.must(201, "POST", "/api/v1/"+c[0], c[1])
	}
}

func (e *modelEnv) id(kind, name string) string {
	e.t.Helper()
	id, _ := e.must(200, "GET", "/api/v1/"+kind+"/"+name, "").obj()["id"].(string)
	return id
}

func TestModelAPICRUD(t *testing.T) {
	e := newModelEnv(t)
	e.world()

	// Create: 201, Location, ETag; references stored as ids.
	r := e.must(201, "POST", "/api/v1/ports", `{"name":"vm4","network":"`+e.id("networks", "blue")+`","ips":["10.1.0.14"],"security_groups":["web","ssh"]}`)
	p := r.obj()
	if loc := r.hdr.Get("Location"); loc != "/api/v1/ports/"+p["id"].(string) {
		t.Errorf("Location %q", loc)
	}
	if et := r.hdr.Get("ETag"); et != fmt.Sprintf(`"%v"`, p["revision"]) {
		t.Errorf("ETag %q, revision %v", et, p["revision"])
	}
	if p["network"] != e.id("networks", "blue") || p["security_groups"].([]any)[1] != e.id("security-groups", "ssh") {
		t.Errorf("references: %v", p)
	}
	if mac, _ := p["mac"].(string); !strings.HasPrefix(mac, "02:") {
		t.Errorf("generated mac %q", mac)
	}

	// Every kind: get by name and id, list, put, patch, delete.
	for _, c := range []struct{ kind, name, put, patch, check string }{
		{"hosts", "hv2", `{"name":"hv2","ovsdb":"tcp:192.0.2.2:6640","vtep_ip":"192.0.2.22"}`, `{"bridge":"br-x"}`, `"bridge": "br-x"`},
		{"networks", "red", `{"name":"red","type":"vlan","vlan":200}`, `{"vlan":201}`, `"vlan": 201`},
		{"subnets", "red-v4", `{"name":"red-v4","network":"red","cidr":"10.2.0.0/24"}`, `{"dhcp":null,"lease_seconds":600}`, `"dhcp": true`},
		{"ports", "vm3", `{"name":"vm3","network":"red","ips":["10.2.0.13"]}`, `{"mac":"02:AA:00:00:00:03"}`, `"mac": "02:aa:00:00:00:03"`},
		{"port-groups", "gold", `{"name":"gold"}`, `{"priority":0}`, `"priority": 0`},
		{"routers", "r1", `{"name":"r1","subnets":["blue-v4"],"external_network":"ext"}`, `{"subnets":["blue-v4","red-v4"],"gateway_host":"hv2"}`, `"gateway_host": "` + e.id("hosts", "hv2") + `"`},
		{"security-groups", "ssh", `{"name":"ssh","rules":[]}`, `{"rules":[{"direction":"egress","ethertype":"ipv6","protocol":"udp","port_min":53}]}`, `"port_max": 53`},
		{"load-balancers", "lb1", `{"name":"lb1","network":"blue","vip":"10.1.0.100","protocol":"udp","port":53}`, `{"health_check":{"protocol":"tcp"}}`, `"timeout_ms": 2000`},
		{"floating-ips", "fip2", `{"name":"fip2","ip":"203.0.113.52"}`, `{"port":"vm2"}`, `"port": "` + e.id("ports", "vm2") + `"`},
	} {
		id := e.id(c.kind, c.name)
		byID := e.must(200, "GET", "/api/v1/"+c.kind+"/"+id, "")
		if byID.obj()["name"] != c.name {
			t.Errorf("%s by id: %s", c.kind, byID.body)
		}
		l := e.must(200, "GET", "/api/v1/"+c.kind+"?name="+c.name, "")
		var page northbound.ModelList
		var raw struct{ Items []map[string]any }
		json.Unmarshal(l.body, &raw)
		json.Unmarshal(l.body, &page)
		if len(raw.Items) != 1 || raw.Items[0]["id"] != id {
			t.Errorf("%s list by name: %s", c.kind, l.body)
		}
		rev := byID.hdr.Get("ETag")
		put := e.must(200, "PUT", "/api/v1/"+c.kind+"/"+c.name, c.put, "If-Match", rev)
		if put.obj()["id"] != id || put.obj()["created_at"] != byID.obj()["created_at"] || put.hdr.Get("ETag") == rev {
			t.Errorf("%s put: %s", c.kind, put.body)
		}
		// The old revision no longer matches.
		if r := e.do("PATCH", "/api/v1/"+c.kind+"/"+id, c.patch, "If-Match", rev); r.status != 412 || r.err().Code != "precondition" {
			t.Errorf("%s stale patch: %d %s", c.kind, r.status, r.body)
		}
		patched := e.must(200, "PATCH", "/api/v1/"+c.kind+"/"+id, c.patch, "If-Match", put.hdr.Get("ETag"))
		if !strings.Contains(string(patched.body), c.check) {
			t.Errorf("%s patch: %s lacks %s", c.kind, patched.body, c.check)
		}
	}

	// Filters by name or id, and pagination with next links.
	for _, f := range []struct {
		path string
		n    int
	}{
		{"/api/v1/ports?network=blue", 3}, {"/api/v1/ports?network=" + e.id("networks", "red"), 1},
		{"/api/v1/ports?security_groups=web", 2}, {"/api/v1/ports?port_group=gold&network=blue", 1},
		{"/api/v1/subnets?network=ext", 1}, {"/api/v1/load-balancers?network=blue", 1},
		{"/api/v1/routers?host=hv2", 1}, {"/api/v1/routers?host=hv1", 0}, {"/api/v1/routers?subnets=red-v4", 1},
		{"/api/v1/ports?network=nothing", 0}, {"/api/v1/networks", 3},
		{"/api/v1/floating-ips?network=ext", 2}, {"/api/v1/floating-ips?port=vm1", 1}, {"/api/v1/floating-ips?port=vm3", 0},
	} {
		var page struct{ Items []map[string]any }
		json.Unmarshal(e.must(200, "GET", f.path, "").body, &page)
		if len(page.Items) != f.n {
			t.Errorf("%s: %d items, want %d", f.path, len(page.Items), f.n)
		}
	}
	var names []string
	next := "/api/v1/ports?network=blue&limit=2"
	for pages := 0; next != ""; pages++ {
		var page struct {
			Items []map[string]any
			Next  string
		}
		json.Unmarshal(e.must(200, "GET", next, "").body, &page)
		for _, it := range page.Items {
			names = append(names, it["name"].(string))
		}
		next = page.Next
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
	}
	if strings.Join(names, ",") != "vm1,vm2,vm4" {
		t.Errorf("paginated names %v", names)
	}

	// Referenced objects cannot go; then they can, in order.
	for _, c := range [][3]string{
		{"networks", "blue", "subnet blue-v4"}, {"subnets", "red-v4", "router r1"}, {"port-groups", "gold", "port vm1"},
		{"security-groups", "web", "port vm1"}, {"security-groups", "ssh", "port vm4"}, {"hosts", "hv2", "router r1"},
		{"networks", "ext", "subnet ext-v4"}, {"subnets", "blue-v4", "router r1"},
		{"ports", "vm1", "floating_ip fip1 (port)"}, {"routers", "r1", "floating_ip fip1"},
		{"subnets", "ext-v4", "floating ip fip1 (203.0.113.50)"},
	} {
		r := e.must(409, "DELETE", "/api/v1/"+c[0]+"/"+c[1], "")
		if !strings.Contains(r.err().Message, c[2]) {
			t.Errorf("delete %s %s: %s does not name %s", c[0], c[1], r.body, c[2])
		}
	}
	e.must(204, "DELETE", "/api/v1/floating-ips/fip1", "")
	e.must(204, "DELETE", "/api/v1/floating-ips/fip2", "")
	e.must(412, "DELETE", "/api/v1/routers/r1", "", "If-Match", `"1"`)
	e.must(204, "DELETE", "/api/v1/routers/r1", "", "If-Match", e.must(200, "GET", "/api/v1/routers/r1", "").hdr.Get("ETag"))
	e.must(404, "GET", "/api/v1/routers/r1", "")
	// A subnet whose addresses are in use cannot go either.
	if r := e.must(409, "DELETE", "/api/v1/subnets/blue-v4", ""); !strings.Contains(r.err().Message, "port vm1") {
		t.Errorf("subnet in use: %s", r.body)
	}
	for _, d := range [][2]string{{"load-balancers", "lb1"}, {"ports", "vm1"}, {"ports", "vm2"}, {"ports", "vm3"}, {"ports", "vm4"},
		{"security-groups", "web"}, {"security-groups", "ssh"}, {"port-groups", "gold"}, {"subnets", "blue-v4"}, {"subnets", "red-v4"},
		{"subnets", "ext-v4"}, {"networks", "blue"}, {"networks", "red"}, {"networks", "ext"}, {"hosts", "hv1"}, {"hosts", "hv2"}} {
		e.must(204, "DELETE", "/api/v1/"+d[0]+"/"+d[1], "")
	}
	for _, ki := range model.Kinds() {
		if r := e.must(200, "GET", "/api/v1/"+ki.Path, ""); string(r.body) != "{\n  \"items\": []\n}\n" {
			t.Errorf("%s left: %s", ki.Path, r.body)
		}
	}
}

// Every bad request answers 4xx naming the field, and leaves the store
// file byte for byte as it was.
func TestModelAPIBadInput(t *testing.T) {
	e := newModelEnv(t)
	e.world()
	e.must(201, "POST", "/api/v1/ports", `{"name":"ext-port","network":"ext","ips":["203.0.113.70"]}`)
	e.must(201, "POST", "/api/v1/networks", `{"name":"bare","type":"flat"}`)
	e.must(201, "POST", "/api/v1/networks", `{"name":"island","type":"vxlan","vni":5002}`)
	e.must(201, "POST", "/api/v1/ports", `{"name":"lonely","network":"island"}`)
	blue := e.id("networks", "blue")
	vm1 := e.id("ports", "vm1")
	big := `{"name":"x","type":"flat","pad":"` + strings.Repeat("a", northbound.MaxBody) + `"}`
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		field                    string
	}{
		// Body and protocol.
		{"malformed json", "POST", "/api/v1/networks", `{"name":"x",`, nil, 400, "body"},
		{"not json at all", "POST", "/api/v1/networks", `name=x`, nil, 400, "body"},
		{"two values", "POST", "/api/v1/networks", `{"name":"x","type":"flat"} {}`, nil, 400, "body"},
		{"array body", "POST", "/api/v1/networks", `[]`, nil, 400, "body"},
		{"wrong content type", "POST", "/api/v1/networks", `{"name":"x","type":"flat"}`, []string{"Content-Type", "text/plain"}, 415, "Content-Type"},
		{"oversized body", "POST", "/api/v1/networks", big, nil, 413, "body"},
		{"unknown field", "POST", "/api/v1/networks", `{"name":"x","type":"flat","colour":"blue"}`, nil, 400, "colour"},
		{"unknown nested field", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"direction":"ingress","prot":"tcp"}]}`, nil, 400, "prot"},
		{"vni as string", "POST", "/api/v1/networks", `{"name":"x","type":"vxlan","vni":"5"}`, nil, 400, "vni"},
		{"vni fraction", "POST", "/api/v1/networks", `{"name":"x","type":"vxlan","vni":1.5}`, nil, 400, "vni"},
		{"name as number", "POST", "/api/v1/networks", `{"name":5,"type":"flat"}`, nil, 400, "name"},
		{"dhcp as string", "POST", "/api/v1/subnets", `{"name":"x","network":"blue","cidr":"10.9.0.0/24","dhcp":"yes"}`, nil, 400, "dhcp"},
		{"ips not a list", "POST", "/api/v1/ports", `{"name":"x","network":"blue","ips":"10.1.0.30"}`, nil, 400, "ips"},
		{"protocol as bool", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"direction":"ingress","protocol":true}]}`, nil, 400, "rules.protocol"},
		{"patch not an object", "PATCH", "/api/v1/networks/blue", `[1]`, nil, 400, "body"},
		{"patch unknown field", "PATCH", "/api/v1/networks/blue", `{"vnid":7}`, nil, 400, "vnid"},
		{"patch wrong type", "PATCH", "/api/v1/networks/blue", `{"vni":"7"}`, nil, 400, "vni"},
		{"bad If-Match", "PATCH", "/api/v1/networks/blue", `{"vni":7}`, []string{"If-Match", `"abc"`}, 400, "If-Match"},
		{"If-Match zero", "DELETE", "/api/v1/ports/vm1", ``, []string{"If-Match", `0`}, 400, "If-Match"},
		{"stale If-Match put", "PUT", "/api/v1/networks/blue", `{"name":"blue","type":"vxlan","vni":5001}`, []string{"If-Match", `"1"`}, 412, "If-Match"},
		{"stale If-Match delete", "DELETE", "/api/v1/ports/vm2", ``, []string{"If-Match", `"1"`}, 412, "If-Match"},
		{"put missing object", "PUT", "/api/v1/networks/nope", `{"name":"nope","type":"flat"}`, nil, 404, "id"},
		{"patch missing object", "PATCH", "/api/v1/ports/nope", `{}`, nil, 404, "id"},
		{"delete missing object", "DELETE", "/api/v1/hosts/nope", ``, nil, 404, "id"},
		{"bad limit", "GET", "/api/v1/ports?limit=0", ``, nil, 400, "limit"},
		{"bad filter", "GET", "/api/v1/hosts?network=blue", ``, nil, 400, "network"},
		// Names.
		{"missing name", "POST", "/api/v1/networks", `{"type":"flat"}`, nil, 400, "name"},
		{"bad name", "POST", "/api/v1/networks", `{"name":"blue net/1","type":"flat"}`, nil, 400, "name"},
		{"name ending in a dash", "POST", "/api/v1/networks", `{"name":"blue-","type":"flat"}`, nil, 400, "name"},
		{"long name", "POST", "/api/v1/networks", `{"name":"` + strings.Repeat("a", 64) + `","type":"flat"}`, nil, 400, "name"},
		{"duplicate name", "POST", "/api/v1/networks", `{"name":"blue","type":"flat"}`, nil, 409, "name"},
		{"name is an id", "POST", "/api/v1/networks", `{"name":"` + blue + `","type":"flat"}`, nil, 409, "name"},
		{"rename onto another", "PATCH", "/api/v1/networks/red", `{"name":"blue"}`, nil, 409, "name"},
		// Hosts.
		{"host without ovsdb", "POST", "/api/v1/hosts", `{"name":"x","vtep_ip":"192.0.2.9"}`, nil, 400, "ovsdb"},
		{"host bad ovsdb", "POST", "/api/v1/hosts", `{"name":"x","ovsdb":"udp:1.2.3.4:6640","vtep_ip":"192.0.2.9"}`, nil, 400, "ovsdb"},
		{"host ovsdb bad port", "POST", "/api/v1/hosts", `{"name":"x","ovsdb":"tcp:1.2.3.4:70000","vtep_ip":"192.0.2.9"}`, nil, 400, "ovsdb"},
		{"host bad vtep", "POST", "/api/v1/hosts", `{"name":"x","ovsdb":"unix:/db","vtep_ip":"192.0.2"}`, nil, 400, "vtep_ip"},
		{"host duplicate vtep", "POST", "/api/v1/hosts", `{"name":"x","ovsdb":"unix:/db","vtep_ip":"192.0.2.1"}`, nil, 409, "vtep_ip"},
		{"host bad datapath", "POST", "/api/v1/hosts", `{"name":"x","ovsdb":"unix:/db","vtep_ip":"192.0.2.9","datapath_type":"dpdk"}`, nil, 400, "datapath_type"},
		{"host bad bridge", "POST", "/api/v1/hosts", `{"name":"x","ovsdb":"unix:/db","vtep_ip":"192.0.2.9","bridge":"a-very-long-bridge-name"}`, nil, 400, "bridge"},
		{"host bad controller", "POST", "/api/v1/hosts", `{"name":"x","ovsdb":"unix:/db","vtep_ip":"192.0.2.9","controller":"6653"}`, nil, 400, "controller"},
		{"host uplink is bridge", "POST", "/api/v1/hosts", `{"name":"x","ovsdb":"unix:/db","vtep_ip":"192.0.2.9","uplink":"br-int"}`, nil, 400, "uplink"},
		// Networks.
		{"network without type", "POST", "/api/v1/networks", `{"name":"x"}`, nil, 400, "type"},
		{"network bad type", "POST", "/api/v1/networks", `{"name":"x","type":"gre"}`, nil, 400, "type"},
		{"vxlan without vni", "POST", "/api/v1/networks", `{"name":"x","type":"vxlan"}`, nil, 400, "vni"},
		{"vni too big", "POST", "/api/v1/networks", `{"name":"x","type":"vxlan","vni":16777216}`, nil, 400, "vni"},
		{"vni negative", "POST", "/api/v1/networks", `{"name":"x","type":"vxlan","vni":-1}`, nil, 400, "vni"},
		{"vni huge", "POST", "/api/v1/networks", `{"name":"x","type":"vxlan","vni":1e40}`, nil, 400, "vni"},
		{"duplicate vni", "POST", "/api/v1/networks", `{"name":"x","type":"vxlan","vni":5001}`, nil, 409, "vni"},
		{"duplicate vni by patch", "PATCH", "/api/v1/networks/red", `{"type":"vxlan","vlan":null,"vni":5001}`, nil, 409, "vni"},
		{"vlan zero range", "POST", "/api/v1/networks", `{"name":"x","type":"vlan","vlan":4095}`, nil, 400, "vlan"},
		{"duplicate vlan", "POST", "/api/v1/networks", `{"name":"x","type":"vlan","vlan":100}`, nil, 409, "vlan"},
		{"vni on vlan", "POST", "/api/v1/networks", `{"name":"x","type":"vlan","vlan":5,"vni":5}`, nil, 400, "vni"},
		{"vlan on flat", "POST", "/api/v1/networks", `{"name":"x","type":"flat","vlan":5}`, nil, 400, "vlan"},
		// Subnets.
		{"subnet dangling network", "POST", "/api/v1/subnets", `{"name":"x","network":"green","cidr":"10.9.0.0/24"}`, nil, 400, "network"},
		{"subnet without network", "POST", "/api/v1/subnets", `{"name":"x","cidr":"10.9.0.0/24"}`, nil, 400, "network"},
		{"subnet bad cidr", "POST", "/api/v1/subnets", `{"name":"x","network":"blue","cidr":"10.9.0.0/33"}`, nil, 400, "cidr"},
		{"subnet host bits", "POST", "/api/v1/subnets", `{"name":"x","network":"blue","cidr":"10.9.0.1/24"}`, nil, 400, "cidr"},
		{"subnet too small", "POST", "/api/v1/subnets", `{"name":"x","network":"blue","cidr":"10.9.0.0/31"}`, nil, 400, "cidr"},
		{"overlap in network", "POST", "/api/v1/subnets", `{"name":"x","network":"blue","cidr":"10.1.0.128/25"}`, nil, 409, "cidr"},
		{"overlap in router", "PATCH", "/api/v1/subnets/red-v4", `{"cidr":"10.1.0.0/16","gateway":"10.1.200.1"}`, nil, 409, "cidr"},
		{"gateway outside cidr", "POST", "/api/v1/subnets", `{"name":"x","network":"blue","cidr":"10.1.1.0/24","gateway":"10.1.2.1"}`, nil, 400, "gateway"},
		{"gateway network address", "POST", "/api/v1/subnets", `{"name":"x","network":"blue","cidr":"10.1.1.0/24","gateway":"10.1.1.0"}`, nil, 400, "gateway"},
		{"gateway broadcast", "POST", "/api/v1/subnets", `{"name":"x","network":"blue","cidr":"10.1.1.0/24","gateway":"10.1.1.255"}`, nil, 400, "gateway"},
		{"gateway onto a port", "PATCH", "/api/v1/subnets/blue-v4", `{"gateway":"10.1.0.11"}`, nil, 409, "gateway"},
		{"subnet network change", "PATCH", "/api/v1/subnets/blue-v4", `{"network":"red"}`, nil, 400, "network"},
		{"bad dns server", "POST", "/api/v1/subnets", `{"name":"x","network":"blue","cidr":"10.1.1.0/24","dns_servers":["8.8.8.8","dns"]}`, nil, 400, "dns_servers[1]"},
		{"dns server of the other family", "POST", "/api/v1/subnets", `{"name":"x","network":"blue","cidr":"10.1.1.0/24","dns_servers":["2001:db8::53"]}`, nil, 400, "dns_servers[0]"},
		{"lease too short", "POST", "/api/v1/subnets", `{"name":"x","network":"blue","cidr":"10.1.1.0/24","lease_seconds":5}`, nil, 400, "lease_seconds"},
		{"host route nexthop outside", "POST", "/api/v1/subnets", `{"name":"x","network":"blue","cidr":"10.1.1.0/24","host_routes":[{"destination":"0.0.0.0/0","nexthop":"10.9.9.9"}]}`, nil, 400, "host_routes[0].nexthop"},
		// Ports.
		{"port dangling network", "POST", "/api/v1/ports", `{"name":"x","network":"nope"}`, nil, 400, "network"},
		{"port ip outside subnets", "POST", "/api/v1/ports", `{"name":"x","network":"blue","ips":["10.7.0.5"]}`, nil, 400, "ips[0]"},
		{"port ip is gateway", "POST", "/api/v1/ports", `{"name":"x","network":"blue","ips":["10.1.0.1"]}`, nil, 400, "ips[0]"},
		{"port ip broadcast", "POST", "/api/v1/ports", `{"name":"x","network":"blue","ips":["10.1.0.20","10.1.0.255"]}`, nil, 400, "ips[1]"},
		{"port ip malformed", "POST", "/api/v1/ports", `{"name":"x","network":"blue","ips":["10.1.0.300"]}`, nil, 400, "ips[0]"},
		{"port ip twice", "POST", "/api/v1/ports", `{"name":"x","network":"blue","ips":["10.1.0.20","10.1.0.20"]}`, nil, 400, "ips[1]"},
		{"duplicate ip in network", "POST", "/api/v1/ports", `{"name":"x","network":"blue","ips":["10.1.0.11"]}`, nil, 409, "ips[0]"},
		{"ip of a vip", "POST", "/api/v1/ports", `{"name":"x","network":"blue","ips":["10.1.0.100"]}`, nil, 409, "ips[0]"},
		{"duplicate mac in network", "POST", "/api/v1/ports", `{"name":"x","network":"blue","mac":"02:00:00:00:00:01"}`, nil, 409, "mac"},
		{"multicast mac", "POST", "/api/v1/ports", `{"name":"x","network":"blue","mac":"01:00:5e:00:00:01"}`, nil, 400, "mac"},
		{"zero mac", "POST", "/api/v1/ports", `{"name":"x","network":"blue","mac":"00:00:00:00:00:00"}`, nil, 400, "mac"},
		{"malformed mac", "POST", "/api/v1/ports", `{"name":"x","network":"blue","mac":"02:00:00"}`, nil, 400, "mac"},
		{"dangling port group", "POST", "/api/v1/ports", `{"name":"x","network":"blue","port_group":"silver"}`, nil, 400, "port_group"},
		{"dangling security group", "POST", "/api/v1/ports", `{"name":"x","network":"blue","security_groups":["web","db"]}`, nil, 400, "security_groups[1]"},
		{"security group twice", "POST", "/api/v1/ports", `{"name":"x","network":"blue","security_groups":["web","web"]}`, nil, 400, "security_groups[1]"},
		{"port network change", "PUT", "/api/v1/ports/" + vm1, `{"name":"vm1","network":"red"}`, nil, 400, "network"},
		// Port groups.
		{"priority too high", "POST", "/api/v1/port-groups", `{"name":"x","priority":8}`, nil, 400, "priority"},
		{"priority negative", "POST", "/api/v1/port-groups", `{"name":"x","priority":-1}`, nil, 400, "priority"},
		{"port group vlan", "POST", "/api/v1/port-groups", `{"name":"x","vlan":5000}`, nil, 400, "vlan"},
		{"burst without rate", "POST", "/api/v1/port-groups", `{"name":"x","burst_kb":10}`, nil, 400, "burst_kb"},
		{"negative bandwidth", "POST", "/api/v1/port-groups", `{"name":"x","bandwidth_kbps":-5}`, nil, 400, "bandwidth_kbps"},
		// Routers.
		{"router dangling subnet", "POST", "/api/v1/routers", `{"name":"x","subnets":["nope"]}`, nil, 400, "subnets[0]"},
		{"router subnet taken", "POST", "/api/v1/routers", `{"name":"x","subnets":["blue-v4"]}`, nil, 409, "subnets[0]"},
		{"router subnet twice", "PATCH", "/api/v1/routers/r1", `{"subnets":["blue-v4","blue-v4"]}`, nil, 400, "subnets[1]"},
		{"snat without external", "PATCH", "/api/v1/routers/r1", `{"external_network":null}`, nil, 400, "snat"},
		{"external is internal", "PATCH", "/api/v1/routers/r1", `{"external_network":"blue"}`, nil, 400, "external_network"},
		{"route nexthop unreachable", "PATCH", "/api/v1/routers/r1", `{"routes":[{"destination":"192.168.0.0/16","nexthop":"10.9.9.9"}]}`, nil, 400, "routes[0].nexthop"},
		{"route bad destination", "PATCH", "/api/v1/routers/r1", `{"routes":[{"destination":"192.168.0.1/16","nexthop":"10.1.0.5"}]}`, nil, 400, "routes[0].destination"},
		{"dangling gateway host", "PATCH", "/api/v1/routers/r1", `{"gateway_host":"hv9"}`, nil, 400, "gateway_host"},
		// Security groups.
		{"rule without direction", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"protocol":"tcp"}]}`, nil, 400, "rules[0].direction"},
		{"rule bad ethertype", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"direction":"ingress","ethertype":"arp"}]}`, nil, 400, "rules[0].ethertype"},
		{"rule bad protocol", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"direction":"ingress","protocol":"sctpx"}]}`, nil, 400, "rules[0].protocol"},
		{"rule protocol 256", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"direction":"ingress","protocol":256}]}`, nil, 400, "rules[0].protocol"},
		{"port_min zero range", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"direction":"ingress"},{"direction":"ingress","protocol":"tcp","port_min":70000}]}`, nil, 400, "rules[1].port_min"},
		{"port_max below min", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"direction":"ingress","protocol":"udp","port_min":100,"port_max":50}]}`, nil, 400, "rules[0].port_max"},
		{"ports on icmp", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"direction":"ingress","protocol":"icmp","port_min":1}]}`, nil, 400, "rules[0].port_min"},
		{"port_max without min", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"direction":"ingress","protocol":"tcp","port_max":80}]}`, nil, 400, "rules[0].port_min"},
		{"remote cidr and group", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"direction":"ingress","remote_cidr":"10.0.0.0/8","remote_group":"web"}]}`, nil, 400, "rules[0].remote_group"},
		{"remote cidr family", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"direction":"ingress","ethertype":"ipv6","remote_cidr":"10.0.0.0/8"}]}`, nil, 400, "rules[0].remote_cidr"},
		{"dangling remote group", "POST", "/api/v1/security-groups", `{"name":"x","rules":[{"direction":"ingress"},{"direction":"egress","remote_group":"db"}]}`, nil, 400, "rules[1].remote_group"},
		// Load balancers.
		{"lb vip outside", "POST", "/api/v1/load-balancers", `{"name":"x","network":"blue","vip":"10.8.0.1","protocol":"tcp","port":80}`, nil, 400, "vip"},
		{"lb vip is a port ip", "POST", "/api/v1/load-balancers", `{"name":"x","network":"blue","vip":"10.1.0.12","protocol":"tcp","port":80}`, nil, 409, "vip"},
		{"lb duplicate listener", "POST", "/api/v1/load-balancers", `{"name":"x","network":"blue","vip":"10.1.0.100","protocol":"tcp","port":80}`, nil, 409, "vip"},
		{"lb bad protocol", "POST", "/api/v1/load-balancers", `{"name":"x","network":"blue","vip":"10.1.0.101","protocol":"http","port":80}`, nil, 400, "protocol"},
		{"lb bad port", "POST", "/api/v1/load-balancers", `{"name":"x","network":"blue","vip":"10.1.0.101","protocol":"tcp","port":65536}`, nil, 400, "port"},
		{"lb backend weight", "POST", "/api/v1/load-balancers", `{"name":"x","network":"blue","vip":"10.1.0.101","protocol":"tcp","port":80,"backends":[{"ip":"10.1.0.11","weight":0}]}`, nil, 400, "backends[0].weight"},
		{"lb backend ip", "POST", "/api/v1/load-balancers", `{"name":"x","network":"blue","vip":"10.1.0.101","protocol":"tcp","port":80,"backends":[{"ip":"10.1.0.11"},{"ip":"fe80::1"}]}`, nil, 400, "backends[1].ip"},
		{"lb backend twice", "POST", "/api/v1/load-balancers", `{"name":"x","network":"blue","vip":"10.1.0.101","protocol":"tcp","port":80,"backends":[{"ip":"10.1.0.11"},{"ip":"10.1.0.11","port":80}]}`, nil, 400, "backends[1].ip"},
		{"lb timeout not below interval", "POST", "/api/v1/load-balancers", `{"name":"x","network":"blue","vip":"10.1.0.101","protocol":"tcp","port":80,"health_check":{"interval_ms":1000,"timeout_ms":1000}}`, nil, 400, "health_check.timeout_ms"},
		{"lb health protocol", "PATCH", "/api/v1/load-balancers/lb1", `{"health_check":{"protocol":"icmp"}}`, nil, 400, "health_check.protocol"},
		{"lb affinity", "PATCH", "/api/v1/load-balancers/lb1", `{"affinity_seconds":100000}`, nil, 400, "affinity_seconds"},
		{"lb network change", "PATCH", "/api/v1/load-balancers/lb1", `{"network":"red"}`, nil, 400, "network"},
		// Floating IPs (fip1 203.0.113.50 on vm1, fip2 203.0.113.51; r1 has external_ip 203.0.113.2 on ext, port ext-port 203.0.113.70).
		{"fip without name", "POST", "/api/v1/floating-ips", `{"ip":"203.0.113.60"}`, nil, 400, "name"},
		{"fip duplicate name", "POST", "/api/v1/floating-ips", `{"name":"fip1","ip":"203.0.113.60"}`, nil, 409, "name"},
		{"fip unknown field", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"203.0.113.60","router":"r1"}`, nil, 400, "router"},
		{"fip without ip", "POST", "/api/v1/floating-ips", `{"name":"x","network":"ext"}`, nil, 400, "ip"},
		{"fip ip as number", "POST", "/api/v1/floating-ips", `{"name":"x","ip":5}`, nil, 400, "ip"},
		{"fip ip malformed", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"203.0.113.300"}`, nil, 400, "ip"},
		{"fip ipv6", "POST", "/api/v1/floating-ips", `{"name":"x","network":"ext","ip":"2001:db8::5"}`, nil, 400, "ip"},
		{"fip ip in no external network", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"198.51.100.7"}`, nil, 400, "ip"},
		{"fip ip in an internal network", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"10.1.0.50"}`, nil, 400, "ip"},
		{"fip ip outside its network", "POST", "/api/v1/floating-ips", `{"name":"x","network":"ext","ip":"10.1.0.50"}`, nil, 400, "ip"},
		{"fip ip is the gateway", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"203.0.113.1"}`, nil, 400, "ip"},
		{"fip ip network address", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"203.0.113.0"}`, nil, 400, "ip"},
		{"fip ip broadcast", "POST", "/api/v1/floating-ips", `{"name":"x","network":"ext","ip":"203.0.113.255"}`, nil, 400, "ip"},
		{"fip ip of another fip", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"203.0.113.50"}`, nil, 409, "ip"},
		{"fip ip is a router's external_ip", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"203.0.113.2"}`, nil, 409, "ip"},
		{"fip ip is a port's", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"203.0.113.70"}`, nil, 409, "ip"},
		{"fip dangling network", "POST", "/api/v1/floating-ips", `{"name":"x","network":"nope","ip":"203.0.113.60"}`, nil, 400, "network"},
		{"fip network not external", "POST", "/api/v1/floating-ips", `{"name":"x","network":"blue","ip":"10.1.0.50"}`, nil, 400, "network"},
		{"fip dangling port", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"203.0.113.60","port":"nope"}`, nil, 400, "port"},
		{"fip port on the external network", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"203.0.113.60","port":"ext-port"}`, nil, 400, "port"},
		{"fip port no router reaches", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"203.0.113.60","port":"lonely"}`, nil, 400, "port"},
		{"fip port taken", "POST", "/api/v1/floating-ips", `{"name":"x","ip":"203.0.113.60","port":"vm1"}`, nil, 409, "port"},
		{"fip patch onto a taken port", "PATCH", "/api/v1/floating-ips/fip2", `{"port":"vm1"}`, nil, 409, "port"},
		{"fip patch onto a taken ip", "PATCH", "/api/v1/floating-ips/fip2", `{"ip":"203.0.113.50"}`, nil, 409, "ip"},
		{"fip put to a non-external network", "PUT", "/api/v1/floating-ips/fip2", `{"name":"fip2","network":"red","ip":"10.2.0.50"}`, nil, 400, "network"},
		{"port takes a fip's address", "POST", "/api/v1/ports", `{"name":"x","network":"ext","ips":["203.0.113.51"]}`, nil, 409, "ips[0]"},
		{"port takes a router's external_ip", "PATCH", "/api/v1/ports/ext-port", `{"ips":["203.0.113.2"]}`, nil, 409, "ips[0]"},
		{"lb vip is a fip's address", "POST", "/api/v1/load-balancers", `{"name":"x","network":"ext","vip":"203.0.113.50","protocol":"tcp","port":80}`, nil, 409, "vip"},
		{"external gateway onto a fip", "PATCH", "/api/v1/subnets/ext-v4", `{"gateway":"203.0.113.51"}`, nil, 409, "gateway"},
		{"external subnet away from its users", "PATCH", "/api/v1/subnets/ext-v4", `{"cidr":"203.0.113.128/25","gateway":"203.0.113.129"}`, nil, 409, "cidr"},
		{"router drops the fips' external network", "PATCH", "/api/v1/routers/r1", `{"external_network":null,"snat":false,"routes":null}`, nil, 409, "external_network"},
		{"router detaches a fip port's subnet", "PATCH", "/api/v1/routers/r1", `{"subnets":["red-v4"]}`, nil, 409, "subnets"},
		{"router external network without subnet", "POST", "/api/v1/routers", `{"name":"x","external_network":"bare"}`, nil, 400, "external_network"},
		// Deletes of referenced objects are conflicts (no field: the message names the referrer).
		{"delete used network", "DELETE", "/api/v1/networks/blue", ``, nil, 409, ""},
		{"delete used security group", "DELETE", "/api/v1/security-groups/web", ``, nil, 409, ""},
		{"delete a fip's port", "DELETE", "/api/v1/ports/vm1", ``, nil, 409, ""},
		{"delete a fip's network", "DELETE", "/api/v1/networks/ext", ``, nil, 409, ""},
		{"delete a fip's router", "DELETE", "/api/v1/routers/r1", ``, nil, 409, ""},
		{"delete a subnet holding fips", "DELETE", "/api/v1/subnets/ext-v4", ``, nil, 409, ""},
	}
	if len(cases) < 60 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			before := e.dump()
			r := e.do(c.method, c.path, c.body, c.hdr...)
			if r.status != c.status {
				t.Errorf("%d %s, want %d", r.status, r.body, c.status)
			}
			if got := r.err(); got.Field != c.field || got.Message == "" || got.Code == "" {
				t.Errorf("error %+v, want field %q", got, c.field)
			}
			if !bytes.Equal(before, e.dump()) {
				t.Error("the store changed")
			}
		})
	}
	e.t = t
}

// Floating IPs through the API: the network derived from the address,
// re-association by PUT and PATCH, and the routers' external_ip and
// gateway_host.
func TestFloatingIPs(t *testing.T) {
	e := newModelEnv(t)
	for _, c := range [][2]string{
		{"hosts", `{"name":"hv1","ovsdb":"unix:/db","vtep_ip":"192.0.2.1"}`},
		{"hosts", `{"name":"hv2","ovsdb":"unix:/db","vtep_ip":"192.0.2.2","uplink":"eth1"}`},
		{"networks", `{"name":"public","type":"flat"}`},
		{"networks", `{"name":"tenant","type":"vxlan","vni":100}`},
		{"subnets", `{"name":"public-v4","network":"public","cidr":"172.24.0.0/24"}`},
		{"subnets", `{"name":"tenant-v4","network":"tenant","cidr":"10.0.0.0/24"}`},
		{"ports", `{"name":"b1","network":"tenant","ips":["10.0.0.11"]}`},
		{"ports", `{"name":"b2","network":"tenant","ips":["10.0.0.12"]}`},
		{"routers", `{"name":"r1","subnets":["tenant-v4"],"external_network":"public","snat":true,"external_ip":"172.24.0.99"}`},
	} {
		e.must(201, "POST", "/api/v1/"+c[0], c[1])
	}
	ref := func(kind, name string) string { return e.id(kind, name) }
	const absent = "(absent)"
	for _, c := range []struct {
		method, path, body string
		status             int
		want               map[string]string // field: value (absent: not in the answer)
	}{
		{"GET", "/api/v1/routers/r1", "", 200, map[string]string{"external_ip": "172.24.0.2", "gateway_host": ref("hosts", "hv2")}},
		{"POST", "/api/v1/floating-ips", `{"name":"fip1","ip":"172.24.0.50","port":"b1"}`, 201,
			map[string]string{"ip": "172.24.0.50", "network": ref("networks", "public"), "port": ref("ports", "b1")}},
		{"POST", "/api/v1/floating-ips", `{"name":"fip2","network":"public","ip":"172.24.0.051"}`, 400, nil},
		{"POST", "/api/v1/floating-ips", `{"name":"fip2","network":"` + ref("networks", "public") + `","ip":"172.24.0.51"}`, 201,
			map[string]string{"port": absent, "network": ref("networks", "public")}},
		{"PATCH", "/api/v1/floating-ips/fip1", `{"port":"b2"}`, 200, map[string]string{"port": ref("ports", "b2"), "ip": "172.24.0.50"}},
		{"PATCH", "/api/v1/floating-ips/fip2", `{"port":"b1"}`, 200, map[string]string{"port": ref("ports", "b1")}},
		{"PUT", "/api/v1/floating-ips/fip2", `{"name":"fip2","ip":"172.24.0.52"}`, 200, map[string]string{"port": absent, "ip": "172.24.0.52"}},
		{"PATCH", "/api/v1/floating-ips/fip1", `{"port":null}`, 200, map[string]string{"port": absent}},
		{"PATCH", "/api/v1/floating-ips/fip1", `{"port":"b1","ip":"172.24.0.51"}`, 200, map[string]string{"port": ref("ports", "b1"), "ip": "172.24.0.51"}},
		{"POST", "/api/v1/routers", `{"name":"r2","external_network":"public"}`, 201, map[string]string{"external_ip": "172.24.0.3", "gateway_host": ref("hosts", "hv2")}},
		{"PATCH", "/api/v1/routers/r1", `{"snat":false,"gateway_host":"hv1"}`, 200, map[string]string{"external_ip": "172.24.0.2", "gateway_host": ref("hosts", "hv1")}},
		{"POST", "/api/v1/routers", `{"name":"r3","subnets":[]}`, 201, map[string]string{"external_ip": absent, "gateway_host": absent}},
		{"DELETE", "/api/v1/ports/b1", "", 409, nil},
		{"DELETE", "/api/v1/routers/r1", "", 409, nil},
		{"DELETE", "/api/v1/routers/r2", "", 204, nil},
		{"PATCH", "/api/v1/routers/r1", `{"external_network":null}`, 409, nil},
		{"DELETE", "/api/v1/floating-ips/fip1", "", 204, nil},
		{"DELETE", "/api/v1/floating-ips/fip2", "", 204, nil},
		{"PATCH", "/api/v1/routers/r1", `{"external_network":null}`, 200, map[string]string{"external_ip": absent, "external_network": absent}},
		{"DELETE", "/api/v1/ports/b1", "", 204, nil},
		{"DELETE", "/api/v1/subnets/public-v4", "", 204, nil},
	} {
		r := e.must(c.status, c.method, c.path, c.body)
		obj := r.obj()
		for f, want := range c.want {
			got, ok := obj[f]
			if want == absent && ok || want != absent && got != want {
				t.Errorf("%s %s %s: %s is %v, want %s", c.method, c.path, c.body, f, got, want)
			}
		}
	}
}

// N clients PATCH one object with If-Match and retry on 412: no update
// is lost.
func TestModelAPIConcurrentPatch(t *testing.T) {
	e := newModelEnv(t)
	e.must(201, "POST", "/api/v1/port-groups", `{"name":"pg","bandwidth_kbps":1}`)
	const writers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan string, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for {
					resp, err := http.Get(e.ts.URL + "/api/v1/port-groups/pg")
					if err != nil {
						errs <- err.Error()
						return
					}
					var pg model.PortGroup
					json.NewDecoder(resp.Body).Decode(&pg)
					resp.Body.Close()
					req, _ := http.NewRequest("PATCH", e.ts.URL+"/api/v1/port-groups/pg", strings.NewReader(fmt.Sprintf(`{"bandwidth_kbps":%d}`, pg.BandwidthKbps+1)))
					req.Header.Set("If-Match", resp.Header.Get("ETag"))
					req.Header.Set("Content-Type", "application/json")
					resp, err = http.DefaultClient.Do(req)
					if err != nil {
						errs <- err.Error()
						return
					}
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
					if resp.StatusCode != 412 {
						errs <- resp.Status
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := e.must(200, "GET", "/api/v1/port-groups/pg", "").obj()["bandwidth_kbps"]; got != float64(1+writers*each) {
		t.Fatalf("bandwidth %v, want %d: updates were lost", got, 1+writers*each)
	}
}

func TestModelAPIRestart(t *testing.T) {
	e := newModelEnv(t)
	e.world()
	before := map[string]string{}
	for _, ki := range model.Kinds() {
		before[ki.Path] = string(e.must(200, "GET", "/api/v1/"+ki.Path, "").body)
	}
	etag := e.must(200, "GET", "/api/v1/ports/vm1", "").hdr.Get("ETag")
	e.close()
	e.open()
	for _, ki := range model.Kinds() {
		if after := string(e.must(200, "GET", "/api/v1/"+ki.Path, "").body); after != before[ki.Path] {
			t.Errorf("%s after restart:\n%s\nbefore:\n%s", ki.Path, after, before[ki.Path])
		}
	}
	if got := e.must(200, "GET", "/api/v1/ports/vm1", "").hdr.Get("ETag"); got != etag {
		t.Errorf("ETag %s after restart, %s before", got, etag)
	}
	// Cross-object rules still hold against the reloaded state.
	e.must(409, "POST", "/api/v1/networks", `{"name":"x","type":"vxlan","vni":5001}`)
	e.must(200, "PATCH", "/api/v1/ports/vm1", `{"ips":["10.1.0.21"]}`, "If-Match", etag)
}

func TestModelAPIEvents(t *testing.T) {
	e := newModelEnv(t)
	sub := e.svc.Subscribe(10)
	defer sub.Close()
	e.must(201, "POST", "/api/v1/networks", `{"name":"n1","type":"flat"}`)
	e.must(200, "PATCH", "/api/v1/networks/n1", `{"name":"n2"}`)
	e.must(204, "DELETE", "/api/v1/networks/n2", "")
	for _, want := range []string{"created n1", "updated n2", "deleted n2"} {
		ev := <-sub.C
		if got := ev.Type + " " + ev.Object.(*model.Network).Name; got != want || ev.Kind != "network" || ev.Topic != "model" {
			t.Errorf("event %+v, want %s", ev, want)
		}
	}
}

// Every route of the API, including the other mounts', is in the OpenAPI
// document; and the document is the model's routes and schemas.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	e := newModelEnv(t)
	var doc struct {
		OpenAPI    string
		Paths      map[string]map[string]map[string]any
		Components struct{ Schemas map[string]map[string]any }
	}
	if err := json.Unmarshal(e.must(200, "GET", "/api/v1/openapi.json", "").body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	n := 0
	err := northbound.WalkRoutes(e.handler(), func(method, path string) {
		n++
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("%s %s is not in the OpenAPI document: describe it with northbound.Describe", method, path)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 8*6+8 {
		t.Errorf("only %d routes walked", n)
	}
	for _, ki := range model.Kinds() {
		s := doc.Components.Schemas[ki.Title]
		props, _ := s["properties"].(map[string]any)
		if props["id"] == nil || props["name"] == nil || props["revision"] == nil {
			t.Errorf("schema %s: %v", ki.Title, s)
		}
		for _, m := range []string{"get", "post"} {
			if doc.Paths["/api/v1/"+ki.Path][m] == nil {
				t.Errorf("%s /api/v1/%s missing", m, ki.Path)
			}
		}
		for _, m := range []string{"get", "put", "patch", "delete"} {
			if doc.Paths["/api/v1/"+ki.Path+"/{id}"][m] == nil {
				t.Errorf("%s /api/v1/%s/{id} missing", m, ki.Path)
			}
		}
	}
	if props := doc.Components.Schemas["Network"]["properties"].(map[string]any); fmt.Sprint(props["type"].(map[string]any)["enum"]) != "[vxlan vlan flat]" {
		t.Errorf("network type: %v", props["type"])
	}
	if props := doc.Components.Schemas["Router"]["properties"].(map[string]any); props["external_ip"].(map[string]any)["readOnly"] != true {
		t.Errorf("router external_ip: %v", props["external_ip"])
	}
	if props := doc.Components.Schemas["FloatingIP"]["properties"].(map[string]any); props["port"].(map[string]any)["x-loom-ref"] != "port" ||
		props["network"].(map[string]any)["x-loom-ref"] != "network" || props["ip"] == nil {
		t.Errorf("floating ip: %v", props)
	}
	if doc.Components.Schemas["Rule"] == nil || doc.Components.Schemas["Switch"] == nil {
		t.Error("nested and switch schemas missing")
	}
}

func BenchmarkModelAPIGet(b *testing.B) {
	e := newModelEnv(b)
	e.world()
	url := e.ts.URL + "/api/v1/ports/vm1"
	c := e.ts.Client()
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Get(url)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err, resp.Status)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkModelAPIPost creates ports in a network that has 1000 already.
func BenchmarkModelAPIPost(b *testing.B) {
	e := newModelEnv(b)
	e.world()
	for i := 0; i < 1000; i++ {
		if _, err := e.svc.Create(context.Background(), &model.Port{Meta: model.Meta{Name: fmt.Sprintf("pre%d", i)}, Network: "blue"}); err != nil {
			b.Fatal(err)
		}
	}
	c := e.ts.Client()
	i := 0
	for b.Loop() {
		i++
		body := fmt.Sprintf(`{"name":"p%d","network":"blue"}`, i)
		resp, err := c.Post(e.ts.URL+"/api/v1/ports", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != 201 {
			b.Fatal(err, resp.Status)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func TestStatusRoutes(t *testing.T) {
	e := newModelEnv(t)
	e.world()
	var hs northbound.HostStatus
	json.Unmarshal(e.must(200, "GET", "/api/v1/hosts/hv1/status", "").body, &hs)
	if hs.Host != "hv1" || hs.Connected || hs.OpenFlowConnected {
		t.Errorf("host status of a host nobody manages: %+v", hs)
	}
	var ps northbound.PortStatus
	json.Unmarshal(e.must(200, "GET", "/api/v1/ports/"+e.id("ports", "vm1")+"/status", "").body, &ps)
	if ps.Port != "vm1" || ps.Bound || ps.Binding != nil {
		t.Errorf("port status of an unplugged port: %+v", ps)
	}
	if r := e.must(404, "GET", "/api/v1/hosts/nope/status", ""); r.err().Field != "id" {
		t.Errorf("unknown host: %s", r.body)
	}
	e.must(404, "GET", "/api/v1/ports/nope/status", "")
}

// TestBackendStatusReadOnly: a load balancer's backend status and since
// are read only: what a client sends (a GET's body PUT back) is accepted
// and ignored, never stored.
func TestBackendStatusReadOnly(t *testing.T) {
	e := newModelEnv(t)
	e.world()
	body := `{"name":"lb2","network":"blue","vip":"10.1.0.101","protocol":"tcp","port":80,` +
		`"backends":[{"ip":"10.1.0.11","status":"down","since":"2026-01-02T03:04:05Z"}]}`
	r := e.must(201, "POST", "/api/v1/load-balancers", body)
	if strings.Contains(string(r.body), `"status"`) || strings.Contains(string(r.body), `"since"`) {
		t.Errorf("POST stored the read-only status: %s", r.body)
	}
	e.must(200, "PUT", "/api/v1/load-balancers/lb2", strings.Replace(body, "10.1.0.101", "10.1.0.102", 1))
	r = e.must(200, "GET", "/api/v1/load-balancers/lb2", "")
	if strings.Contains(string(r.body), `"down"`) || !strings.Contains(string(r.body), "10.1.0.102") {
		t.Errorf("GET after a PUT with a status: %s", r.body)
	}
}

// Every reference field of every kind, found through the struct tags
// (ref:"kind"): a null or empty entry of a list of references, and an
// empty or null required reference (required:"true"), answer 400 naming
// the field, in a POST, a PATCH and a batch (create and patch), and write
// nothing. (Empty optional scalar references mean none.)
func TestModelAPIEmptyReferences(t *testing.T) {
	e := newModelEnv(t)
	e.world()
	e.must(201, "POST", "/api/v1/mirrors", `{"name":"m1","sources":["vm2"],"output_port":"vm3"}`)
	e.must(201, "POST", "/api/v1/flow-exports", `{"name":"fe1","protocol":"sflow","targets":["192.0.2.50:6343"],"hosts":["hv1"]}`)
	// A valid new object of each kind (name zz) and an existing one to
	// patch: a nested reference field needs its parent's first element.
	bases := map[model.Kind]struct{ create, existing string }{
		model.KindHost:          {`{"name":"zz","ovsdb":"unix:/db","vtep_ip":"192.0.2.99"}`, "hv1"},
		model.KindNetwork:       {`{"name":"zz","type":"flat"}`, "blue"},
		model.KindSubnet:        {`{"name":"zz","network":"blue","cidr":"10.9.0.0/24"}`, "blue-v4"},
		model.KindPort:          {`{"name":"zz","network":"blue","security_groups":["web"]}`, "vm1"},
		model.KindPortGroup:     {`{"name":"zz"}`, "gold"},
		model.KindRouter:        {`{"name":"zz","subnets":["ext-v4"]}`, "r1"},
		model.KindSecurityGroup: {`{"name":"zz","rules":[{"direction":"ingress"}]}`, "web"},
		model.KindLoadBalancer:  {`{"name":"zz","network":"blue","vip":"10.1.0.101","protocol":"tcp","port":80,"backends":[{"ip":"10.1.0.11"}]}`, "lb1"},
		model.KindFloatingIP:    {`{"name":"zz","ip":"203.0.113.60"}`, "fip2"},
		model.KindMirror:        {`{"name":"zz","sources":["vm2"],"output_port":"vm1"}`, "m1"},
		model.KindFlowExport:    {`{"name":"zz","protocol":"ipfix","targets":["192.0.2.50:4739"],"hosts":["hv2"]}`, "fe1"},
	}
	type bad struct {
		field string // the JSON path of the field ("rules[0].x", "subnets[0]")
		value any    // what it is set to
	}
	// second stands for the base object's list with an empty second entry.
	second := &struct{}{}
	// refs lists the bad values of the reference fields of t, under path.
	var refs func(t reflect.Type, path string) []bad
	refs = func(typ reflect.Type, path string) []bad {
		var out []bad
		for i := range typ.NumField() {
			sf := typ.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if sf.Anonymous || name == "-" {
				continue
			}
			p := path + name
			ft := sf.Type
			switch {
			case sf.Tag.Get("ref") != "" && ft.Kind() == reflect.Slice:
				out = append(out, bad{p + "[0]", []any{nil}}, bad{p + "[0]", []any{""}}, bad{p + "[1]", second})
			case sf.Tag.Get("ref") != "" && sf.Tag.Get("required") == "true":
				out = append(out, bad{p, ""}, bad{p, nil})
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				out = append(out, refs(ft.Elem(), p+"[0].")...)
			case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct && ft.Elem() != reflect.TypeFor[time.Time]():
				out = append(out, refs(ft.Elem(), p+".")...)
			}
		}
		return out
	}
	// set returns obj (JSON) with the field at path set to v, and the
	// top-level field it changed.
	set := func(t *testing.T, obj string, path string, v any) (map[string]any, string) {
		var m map[string]any
		if err := json.Unmarshal([]byte(obj), &m); err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(path, ".")
		top, _, _ := strings.Cut(parts[0], "[")
		cur := m
		for _, part := range parts[:len(parts)-1] {
			name, _, _ := strings.Cut(part, "[")
			list, _ := cur[name].([]any)
			if len(list) == 0 {
				t.Fatalf("the base object %s has no %s[0]: give it one so that %s is checked", obj, name, path)
			}
			cur = list[0].(map[string]any)
		}
		last, _, _ := strings.Cut(parts[len(parts)-1], "[")
		if v == second {
			list, _ := cur[last].([]any)
			if len(list) == 0 {
				return nil, ""
			}
			v = []any{list[0], ""}
		}
		cur[last] = v
		return m, top
	}
	n := 0
	for _, ki := range model.Kinds() {
		base, ok := bases[ki.Kind]
		if !ok {
			t.Fatalf("no base object for %s: add one", ki.Kind)
		}
		for _, b := range refs(ki.Type, "") {
			obj, top := set(t, base.create, b.field, b.value)
			if obj == nil {
				continue // no valid first entry to put before an empty one
			}
			n++
			body, _ := json.Marshal(obj)
			patch, _ := json.Marshal(map[string]any{top: obj[top]})
			opCreate := fmt.Sprintf(`{"op":"create","kind":%q,"object":%s}`, ki.Path, body)
			opPatch := fmt.Sprintf(`{"op":"patch","kind":%q,"id":%q,"patch":%s}`, ki.Path, base.existing, patch)
			for _, c := range []struct{ method, path, body, field string }{
				{"POST", "/api/v1/" + ki.Path, string(body), b.field},
				{"PATCH", "/api/v1/" + ki.Path + "/" + base.existing, string(patch), b.field},
				{"POST", "/api/v1/batch", batchBody([]string{opCreate}), "ops[0]." + b.field},
				{"POST", "/api/v1/batch", batchBody([]string{`{"op":"create","kind":"networks","object":{"name":"yy","type":"flat"}}`, opPatch}), "ops[1]." + b.field},
			} {
				before := e.dump()
				r := e.do(c.method, c.path, c.body)
				if er := r.err(); r.status != 400 || er.Code != northbound.CodeInvalid || er.Field != c.field {
					t.Errorf("%s %s %s: %d %s, want 400 invalid %s", c.method, c.path, c.body, r.status, r.body, c.field)
				}
				if !bytes.Equal(before, e.dump()) {
					t.Errorf("%s %s %s: the store changed", c.method, c.path, c.body)
				}
			}
		}
	}
	if n < 18 {
		t.Errorf("only %d bad references checked", n)
	}
	// Empty optional scalar references still mean none.
	e.must(201, "POST", "/api/v1/ports", `{"name":"opt","network":"blue","port_group":"","security_groups":[]}`)
	e.must(201, "POST", "/api/v1/routers", `{"name":"opt","external_network":"","gateway_host":""}`)
}

// Host addresses by their grammar: ovsdb is one tcp:HOST:PORT or
// unix:/PATH; controller one or more (separated by commas, no repeats) of
// those or ssl:HOST:PORT; vtep_ip one unicast address.
func TestHostAddresses(t *testing.T) {
	e := newModelEnv(t)
	host := func(field, v string) string {
		h := map[string]string{"name": "h", "ovsdb": "unix:/db", "vtep_ip": "192.0.2.9"}
		h[field] = v
		b, _ := json.Marshal(h)
		return string(b)
	}
	for _, c := range []struct{ field, value string }{
		{"controller", "tcp:10.0.0.1:6653,tcp:10.0.0.1:6653"},
		{"controller", "tcp:10.0.0.1:6653,"},
		{"controller", "tcp:10.0.0.1:6653, tcp:10.0.0.2:6653"},
		{"controller", "tcp:10.0.0.1,10.0.0.2:6653"},
		{"controller", "tcp:10.0.0.1"},
		{"controller", "tcp:10.0.0.1:"},
		{"controller", "tcp:10.0.0.1:0"},
		{"controller", "tcp:10.0.0.1:70000"},
		{"controller", "tcp:10.0.0.1:+80"},
		{"controller", "tcp:10.0.0.1:66 53"},
		{"controller", "tcp: 10.0.0.1:6653"},
		{"controller", "tcp:10.0.0.1:6653 "},
		{"controller", "tcp:ctl\texample:6653"},
		{"controller", "tcp::6653"},
		{"controller", "tcp:2001:db8::1:6653"},
		{"controller", "tcp:[2001:db8::1]"},
		{"controller", "tcp:[10.0.0.1]:6653"},
		{"controller", "tcp:[fe80::1%eth0]:6653"},
		{"controller", "tcp:10.0.0:6653"},
		{"controller", "tcp:10.0.0.256:6653"},
		{"controller", "tcp:-ctl.example.com:6653"},
		{"controller", "tcp:ctl_1.example.com:6653"},
		{"controller", "tcp:ctl..example.com:6653"},
		{"controller", "udp:10.0.0.1:6653"},
		{"controller", "ptcp:6653"},
		{"controller", "unix:"},
		{"controller", "unix:relative.sock"},
		{"controller", "unix:/"},
		{"controller", "unix:/a b"},
		{"ovsdb", "ssl:10.0.0.1:6640"},
		{"ovsdb", "tcp:10.0.0.1:6640,unix:/db"},
		{"ovsdb", "tcp:10.0.0.1:0"},
		{"ovsdb", "unix:"},
		{"ovsdb", ""},
		{"vtep_ip", ""},
		{"vtep_ip", "0.0.0.0"},
		{"vtep_ip", "::"},
		{"vtep_ip", "224.0.0.5"},
		{"vtep_ip", "ff02::1"},
		{"vtep_ip", "255.255.255.255"},
		{"vtep_ip", "fe80::1%eth0"},
		{"vtep_ip", "192.0.2.9,192.0.2.10"},
		{"vtep_ip", "192.0.2.9/24"},
	} {
		before := e.dump()
		r := e.do("POST", "/api/v1/hosts", host(c.field, c.value))
		if er := r.err(); r.status != 400 || er.Field != c.field {
			t.Errorf("%s %q: %d %s, want 400 on %s", c.field, c.value, r.status, r.body, c.field)
		}
		if !bytes.Equal(before, e.dump()) {
			t.Errorf("%s %q: the store changed", c.field, c.value)
		}
	}
	for i, c := range []struct{ field, value string }{
		{"controller", "tcp:10.0.0.1:6653"},
		{"controller", "ssl:[2001:db8::1]:6653"},
		{"controller", "tcp:ctl-1.example.com:1"},
		{"controller", "ssl:ctl.example.com.:65535"},
		{"controller", "unix:/var/run/openvswitch/ctl.sock"},
		{"controller", "tcp:10.0.0.1:6653,tcp:10.0.0.2:6653,ssl:ctl.example.com:6653"},
		{"controller", ""},
		{"ovsdb", "tcp:[::1]:6640"},
		{"ovsdb", "tcp:hv1:6640"},
		{"vtep_ip", "2001:db8::9"},
	} {
		b := strings.Replace(host(c.field, c.value), `"192.0.2.9"`, fmt.Sprintf(`"192.0.2.%d"`, 10+i), 1)
		b = strings.Replace(b, `"name":"h"`, fmt.Sprintf(`"name":"h%d"`, i), 1)
		e.must(201, "POST", "/api/v1/hosts", b)
	}
}
