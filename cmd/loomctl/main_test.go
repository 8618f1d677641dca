package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/northbound"
	"github.com/loom-sdn/loom/store"
)

// fakeAPI answers like loomd and records the requests it got.
type fakeAPI struct {
	reqs []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.reqs = append(f.reqs, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization")+" "+string(body)))
	w.Header().Set("Content-Type", "application/json")
	switch r.Method + " " + r.URL.Path {
	case "GET /healthz":
		w.Write([]byte(`{"status":"ok","switches":1}`))
	case "GET /api/v1/switches":
		w.Write([]byte(`[{"datapath_id":"000000000ac80001","remote":"@","software":"3.1.0","tables":254}]`))
	case "GET /api/v1/switches/1":
		w.Write([]byte(`{"datapath_id":"0000000000000001","remote":"@","ports":[{"number":1,"name":"vm1","mac":"02:00:00:00:00:01","up":true}],
			"flows":[{"owner":"l2switch","flow":"table=1, priority=0 actions=FLOOD"}],"meters":["meter=1,pktps"]}`))
	case "GET /api/v1/switches/1/flows":
		w.Write([]byte(`[{"flow":"table=1, priority=0 actions=FLOOD","owner":"l2switch","state":"ok","packets":42},
			{"flow":"priority=0 actions=drop","owner":"runtime","state":"differs","installed":"priority=0 actions=CONTROLLER:65535"}]`))
	case "GET /api/v1/topology":
		w.Write([]byte(`{"nodes":[{"id":"0000000000000001","ports":[{"number":1},{"number":2}]}],
			"links":[{"source":"0000000000000001","source_port":1,"target":"0000000000000002","target_port":1,"bidirectional":true}],"endpoints":[]}`))
	case "GET /api/v1/networks":
		w.Write([]byte(`{"items":[{"id":"n1","name":"blue","type":"vxlan","vni":5001,"revision":1}]}`))
	case "GET /api/v1/networks/blue":
		w.Write([]byte(`{"id":"n1","name":"blue","type":"vxlan","vni":5001,"revision":1}`))
	case "POST /api/v1/networks", "PATCH /api/v1/networks/blue", "POST /api/v1/floating-ips":
		var obj map[string]any
		json.Unmarshal(body, &obj)
		obj["id"], obj["revision"] = "n2", 2
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(obj)
	case "POST /api/v1/batch":
		w.Write([]byte(`{"objects":[{"id":"n3","name":"green","revision":7},null]}`))
	case "DELETE /api/v1/networks/blue":
		w.WriteHeader(204)
	default:
		w.WriteHeader(404)
		w.Write([]byte(`{"error":"not_found","field":"dpid","message":"switch 0000000000000002 is not connected"}`))
	}
}

func TestCommands(t *testing.T) {
	batchFile := filepath.Join(t.TempDir(), "ops.json")
	os.WriteFile(batchFile, []byte(`[{"op":"create","kind":"networks","object":{"name":"green","type":"flat"}},{"op":"delete","kind":"networks","id":"blue"}]`), 0o644)
	notOps := filepath.Join(t.TempDir(), "not-ops.json")
	os.WriteFile(notOps, []byte(`{"op":"create","kind":"networks","object":{"name":"green","type":"flat"}}`), 0o644)
	api := &fakeAPI{}
	ts := httptest.NewServer(api)
	defer ts.Close()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"health"}, []string{"status: ok, switches: 1"}},
		{[]string{"switches"}, []string{"000000000ac80001", "3.1.0", "254"}},
		{[]string{"switch", "1"}, []string{"1     vm1   02:00:00:00:00:01  up", "meter: meter=1,pktps", "l2switch  table=1, priority=0 actions=FLOOD"}},
		{[]string{"flows", "1"}, []string{"ok       l2switch  42", "differs  runtime", "installed: priority=0 actions=CONTROLLER:65535"}},
		{[]string{"topology"}, []string{"NODES (1)", "0000000000000001  2", "LINKS (1)", "0000000000000001:1  0000000000000002:1  true", "ENDPOINTS (0)"}},
		{[]string{"list", "networks"}, []string{"ID  NAME  REVISION  TYPE   VNI", "n1  blue  1         vxlan  5001"}},
		{[]string{"-o", "json", "get", "networks", "blue"}, []string{`"vni": 5001`}},
		{[]string{"create", "networks", "name=green", "type=vxlan", "vni=5002"}, []string{"vni       5002", "name      green"}},
		{[]string{"update", "networks", "blue", "vni=5003"}, []string{"vni       5003"}},
		{[]string{"create", "floating-ips", "name=fip1", "ip=172.24.0.50", "port=b1"}, []string{"ip        172.24.0.50", "port      b1"}},
		{[]string{"delete", "networks", "blue"}, []string{"deleted networks blue"}},
		{[]string{"batch", batchFile}, []string{"#  OP      KIND      NAME   ID  REVISION", "0  create  networks  green  n3  7", "1  delete  networks  blue"}},
		{[]string{"-o", "json", "-f", batchFile, "batch"}, []string{`"name": "green"`, "null"}},
	} {
		var out bytes.Buffer
		if err := run(append([]string{"--api", ts.URL, "--token", "tok-0123456789abcdef"}, tc.args...), &out); err != nil {
			t.Errorf("%v: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
	joined := strings.Join(api.reqs, "\n")
	for _, want := range []string{
		`POST /api/v1/networks Bearer tok-0123456789abcdef {"name":"green","type":"vxlan","vni":5002}`,
		`PATCH /api/v1/networks/blue Bearer tok-0123456789abcdef {"vni":5003}`,
		`POST /api/v1/floating-ips Bearer tok-0123456789abcdef {"ip":"172.24.0.50","name":"fip1","port":"b1"}`,
		`POST /api/v1/batch Bearer tok-0123456789abcdef {"ops":[{"op":"create","kind":"networks","object":{"name":"green","type":"flat"}},{"op":"delete","kind":"networks","id":"blue"}]}`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("requests lack %q:\n%s", want, joined)
		}
	}
	err := run([]string{"--api", ts.URL, "switch", "2"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "not connected (field dpid)") {
		t.Errorf("unknown switch: %v", err)
	}
	for _, bad := range [][]string{{"bogus"}, {"flows"}, {"get", "networks"}, {"create", "networks", "novalue"}, {"-o", "yaml", "health"},
		{"batch", batchFile, batchFile}, {"-f", batchFile, "batch", batchFile}, {"batch", "/nonexistent.json"}, {"batch", notOps}} {
		if err := run(append([]string{"--api", ts.URL}, bad...), &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// A batch through loomctl to the real API and model: from a file and from
// stdin; a failing op writes nothing and names its field.
func TestBatchRoundTrip(t *testing.T) {
	st, err := store.OpenBolt(t.TempDir(), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := model.New(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	northbound.ModelRoutes(svc)(r.PathPrefix("/api/v1").Subrouter())
	ts := httptest.NewServer(r)
	defer ts.Close()

	dir := t.TempDir()
	tenant := filepath.Join(dir, "tenant.json")
	os.WriteFile(tenant, []byte(`{"ops": [
		{"op": "create", "kind": "networks", "object": {"name": "blue", "type": "vxlan", "vni": 5001}},
		{"op": "create", "kind": "subnets", "object": {"name": "blue-v4", "network": "blue", "cidr": "10.1.0.0/24"}},
		{"op": "create", "kind": "security-groups", "object": {"name": "web", "rules": [{"direction": "ingress", "protocol": "tcp", "port_min": 80}]}},
		{"op": "create", "kind": "ports", "object": {"name": "vm1", "network": "blue", "ips": ["10.1.0.11"], "security_groups": ["web"]}},
		{"op": "create", "kind": "ports", "object": {"name": "vm2", "network": "blue", "ips": ["10.1.0.12"]}},
		{"op": "create", "kind": "routers", "object": {"name": "r1", "subnets": ["blue-v4"]}}
	]}`), 0o644)
	var out bytes.Buffer
	if err := run([]string{"--api", ts.URL, "batch", tenant}, &out); err != nil {
		t.Fatal(err)
	}
	rev := svc.Snapshot().Revision
	vm1, _ := svc.Snapshot().Ports.ByName("vm1")
	for _, want := range []string{"0  create  networks         blue", "3  create  ports            vm1      " + vm1.ID + "  " + fmt.Sprint(rev), "5  create  routers          r1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if svc.Snapshot().Ports.Len() != 2 || vm1.Revision != rev {
		t.Errorf("model after the batch: %d ports, vm1 at %d, model at %d", svc.Snapshot().Ports.Len(), vm1.Revision, rev)
	}

	// From stdin, a bare array: the 3rd op fails, the first two are not
	// written.
	stdin(t, `[{"op": "patch", "kind": "ports", "id": "vm1", "patch": {"ips": ["10.1.0.21"]}},
		{"op": "delete", "kind": "ports", "id": "vm2"},
		{"op": "create", "kind": "ports", "object": {"name": "vm3", "network": "blue", "ips": ["10.1.0.21"]}}]`)
	err = run([]string{"--api", ts.URL, "batch", "-"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "409 Conflict: ops[2] (create port vm3): port vm1 already has ip 10.1.0.21") ||
		!strings.HasSuffix(err.Error(), "(field ops[2].ips[0])") {
		t.Errorf("failing batch: %v", err)
	}
	if svc.Snapshot().Revision != rev {
		t.Error("a failing batch wrote")
	}
	// Fixed, from stdin again, as JSON.
	stdin(t, `{"ops": [{"op": "patch", "kind": "ports", "id": "vm1", "patch": {"ips": ["10.1.0.21"]}},
		{"op": "delete", "kind": "ports", "id": "vm2"},
		{"op": "create", "kind": "ports", "object": {"name": "vm3", "network": "blue", "ips": ["10.1.0.12"]}}]}`)
	out.Reset()
	if err := run([]string{"--api", ts.URL, "-o", "json", "batch"}, &out); err != nil {
		t.Fatal(err)
	}
	var res struct{ Objects []map[string]any }
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res.Objects) != 3 || res.Objects[1] != nil ||
		res.Objects[0]["ips"].([]any)[0] != "10.1.0.21" || res.Objects[2]["name"] != "vm3" {
		t.Errorf("json output: %v %s", err, out.String())
	}
	if _, ok := svc.Snapshot().Ports.ByName("vm2"); ok {
		t.Error("vm2 still there")
	}
}

// stdin makes s the process's standard input for the test.
func stdin(t *testing.T, s string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "stdin")
	os.WriteFile(f, []byte(s), 0o644)
	in, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = in
	t.Cleanup(func() { os.Stdin = old; in.Close() })
}

// The kinds loomctl names are the model's, in its order.
func TestKindsAreTheModels(t *testing.T) {
	var want []string
	for _, ki := range model.Kinds() {
		want = append(want, ki.Path)
	}
	if !slices.Equal(Kinds, want) {
		t.Errorf("loomctl kinds %v, the model's %v", Kinds, want)
	}
	if !strings.Contains(usage, "flow-exports") {
		t.Error("the usage does not list every kind")
	}
}
