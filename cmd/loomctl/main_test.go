package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
			"flows":[{"owner":"l2switch","flow":"table=1,priority=0 actions=FLOOD"}],"meters":["meter=1,pktps"]}`))
	case "GET /api/v1/switches/1/flows":
		w.Write([]byte(`[{"flow":"table=1,priority=0 actions=FLOOD","owner":"l2switch","state":"ok","packets":42},
			{"flow":"table=0,priority=0 actions=drop","owner":"runtime","state":"differs","installed":"table=0,priority=0 actions=CONTROLLER:65535"}]`))
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
	case "DELETE /api/v1/networks/blue":
		w.WriteHeader(204)
	default:
		w.WriteHeader(404)
		w.Write([]byte(`{"error":"not_found","field":"dpid","message":"switch 0000000000000002 is not connected"}`))
	}
}

func TestCommands(t *testing.T) {
	api := &fakeAPI{}
	ts := httptest.NewServer(api)
	defer ts.Close()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"health"}, []string{"status: ok, switches: 1"}},
		{[]string{"switches"}, []string{"000000000ac80001", "3.1.0", "254"}},
		{[]string{"switch", "1"}, []string{"1     vm1   02:00:00:00:00:01  up", "meter: meter=1,pktps", "l2switch  table=1,priority=0 actions=FLOOD"}},
		{[]string{"flows", "1"}, []string{"ok       l2switch  42", "differs  runtime", "installed: table=0,priority=0 actions=CONTROLLER:65535"}},
		{[]string{"topology"}, []string{"NODES (1)", "0000000000000001  2", "LINKS (1)", "0000000000000001:1  0000000000000002:1  true", "ENDPOINTS (0)"}},
		{[]string{"list", "networks"}, []string{"ID  NAME  REVISION  TYPE   VNI", "n1  blue  1         vxlan  5001"}},
		{[]string{"-o", "json", "get", "networks", "blue"}, []string{`"vni": 5001`}},
		{[]string{"create", "networks", "name=green", "type=vxlan", "vni=5002"}, []string{"vni       5002", "name      green"}},
		{[]string{"update", "networks", "blue", "vni=5003"}, []string{"vni       5003"}},
		{[]string{"create", "floating-ips", "name=fip1", "ip=172.24.0.50", "port=b1"}, []string{"ip        172.24.0.50", "port      b1"}},
		{[]string{"delete", "networks", "blue"}, []string{"deleted networks blue"}},
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
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("requests lack %q:\n%s", want, joined)
		}
	}
	err := run([]string{"--api", ts.URL, "switch", "2"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "not connected (field dpid)") {
		t.Errorf("unknown switch: %v", err)
	}
	for _, bad := range [][]string{{"bogus"}, {"flows"}, {"get", "networks"}, {"create", "networks", "novalue"}, {"-o", "yaml", "health"}} {
		if err := run(append([]string{"--api", ts.URL}, bad...), &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
