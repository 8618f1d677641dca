package northbound_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/northbound"
)

// tenantBatch is a tenant in one request: network, subnet, router,
// security group and n ports, referring to each other by name.
func tenantBatch(name string, vni, n int) []string {
	ops := []string{
		fmt.Sprintf(`{"op":"create","kind":"networks","object":{"name":%q,"type":"vxlan","vni":%d}}`, name, vni),
		fmt.Sprintf(`{"op":"create","kind":"subnets","object":{"name":"%s-v4","network":%q,"cidr":"10.7.0.0/24"}}`, name, name),
		fmt.Sprintf(`{"op":"create","kind":"routers","object":{"name":"%s-r","subnets":["%s-v4"]}}`, name, name),
		fmt.Sprintf(`{"op":"create","kind":"security-groups","object":{"name":"%s-web","rules":[{"direction":"ingress","protocol":"tcp","port_min":80}]}}`, name),
	}
	for i := range n {
		ops = append(ops, fmt.Sprintf(`{"op":"create","kind":"ports","object":{"name":"%s-vm%d","network":%q,"ips":["10.7.0.%d"],"security_groups":["%s-web"]}}`,
			name, i, name, 10+i, name))
	}
	return ops
}

func batchBody(ops []string) string { return `{"ops":[` + strings.Join(ops, ",") + `]}` }

func TestBatchAPI(t *testing.T) {
	e := newModelEnv(t)
	e.world()
	sub := e.svc.Subscribe(200)
	defer sub.Close()
	ops := append(tenantBatch("green", 7001, 50),
		`{"op":"patch","kind":"ports","id":"vm1","patch":{"security_groups":["green-web"]},"if_match":`+
			fmt.Sprint(e.svc.Snapshot().Ports.Sorted()[0].Revision)+`}`,
		`{"op":"update","kind":"port-groups","id":"gold","object":{"name":"gold","bandwidth_kbps":5}}`,
		`{"op":"delete","kind":"ports","id":"green-vm49"}`,
		`{"op":"patch","kind":"load-balancers","id":"lb1","patch":{"affinity_seconds":5}}`,
	)
	before := e.svc.Snapshot()
	r := e.must(200, "POST", "/api/v1/batch", batchBody(ops))
	var res struct{ Objects []map[string]any }
	if err := json.Unmarshal(r.body, &res); err != nil || len(res.Objects) != len(ops) {
		t.Fatalf("%d objects for %d ops: %v %s", len(res.Objects), len(ops), err, r.body)
	}
	snap := e.svc.Snapshot()
	if snap.Revision != before.Revision+1 {
		t.Errorf("revision %d after a batch from %d", snap.Revision, before.Revision)
	}
	green, _ := snap.Networks.ByName("green")
	web, _ := snap.SecurityGroups.ByName("green-web")
	for i, o := range res.Objects {
		if i == 56 {
			if o != nil {
				t.Errorf("delete answered %v, want null", o)
			}
			continue
		}
		if o == nil || o["revision"] != float64(snap.Revision) {
			t.Fatalf("objects[%d] = %v", i, o)
		}
	}
	if o := res.Objects[4]; o["name"] != "green-vm0" || o["network"] != green.ID || o["security_groups"].([]any)[0] != web.ID {
		t.Errorf("port by names: %v", o)
	}
	if o := res.Objects[54]; o["name"] != "vm1" || o["security_groups"].([]any)[0] != web.ID {
		t.Errorf("patched: %v", o)
	}
	if o := res.Objects[55]; o["bandwidth_kbps"] != float64(5) || o["priority"] != nil {
		t.Errorf("updated: %v", o)
	}
	e.must(404, "GET", "/api/v1/ports/green-vm49", "")
	if got := e.must(200, "GET", "/api/v1/ports?network=green&limit=1000", "").obj()["items"].([]any); len(got) != 49 {
		t.Errorf("%d ports in green", len(got))
	}
	// One event per op, in order.
	for i := range ops {
		ev := <-sub.C
		want := map[bool]string{true: "deleted", false: "created"}[i == 56]
		if i > 53 && i != 56 {
			want = "updated"
		}
		if ev.Type != want {
			t.Fatalf("event %d: %s, want %s", i, ev.Type, want)
		}
	}
	// One change per object.
	if ch, ok := snap.ChangesSince(before.Revision); !ok || len(ch) != 4+50+3 {
		t.Errorf("changes: %d %v", len(ch), ok)
	}

	// After a restart, the same.
	e.close()
	e.open()
	if got := e.must(200, "GET", "/api/v1/ports/green-vm3", "").obj(); got["revision"] != float64(snap.Revision) || got["ips"].([]any)[0] != "10.7.0.13" {
		t.Errorf("after restart: %v", got)
	}

	// Empty: nothing written.
	if r := e.must(200, "POST", "/api/v1/batch", `{"ops":[]}`); strings.Join(strings.Fields(string(r.body)), "") != `{"objects":[]}` {
		t.Errorf("empty batch: %s", r.body)
	}
}

// A failing 5th op leaves nothing of the first four, in the API or the
// store; the answer names the op and the field.
func TestBatchAPIAtomic(t *testing.T) {
	e := newModelEnv(t)
	e.world()
	dump := e.dump()
	ops := []string{
		`{"op":"create","kind":"networks","object":{"name":"green","type":"vxlan","vni":7001}}`,
		`{"op":"create","kind":"subnets","object":{"name":"green-v4","network":"green","cidr":"10.7.0.0/24"}}`,
		`{"op":"patch","kind":"networks","id":"blue","patch":{"vni":5005}}`,
		`{"op":"delete","kind":"floating-ips","id":"fip2"}`,
		`{"op":"create","kind":"ports","object":{"name":"g1","network":"green","ips":["10.7.0.10","10.8.0.1"]}}`,
	}
	r := e.must(400, "POST", "/api/v1/batch", batchBody(ops))
	if er := r.err(); er.Code != northbound.CodeInvalid || er.Field != "ops[4].ips[1]" || !strings.HasPrefix(er.Message, "ops[4] (create port g1): 10.8.0.1") {
		t.Errorf("error %+v", er)
	}
	e.must(404, "GET", "/api/v1/networks/green", "")
	e.must(200, "GET", "/api/v1/floating-ips/fip2", "")
	if vni := e.must(200, "GET", "/api/v1/networks/blue", "").obj()["vni"]; vni != float64(5001) {
		t.Errorf("blue's vni %v", vni)
	}
	if !bytes.Equal(e.dump(), dump) {
		t.Error("a rejected batch changed the store")
	}
	e.close()
	e.open()
	e.must(404, "GET", "/api/v1/networks/green", "")
	// Fixed, the batch goes through.
	ops[4] = strings.Replace(ops[4], `,"10.8.0.1"`, "", 1)
	e.must(200, "POST", "/api/v1/batch", batchBody(ops))
	e.must(200, "GET", "/api/v1/ports/g1", "")
}

func TestBatchAPIBadInput(t *testing.T) {
	e := newModelEnv(t)
	e.world()
	etag := e.must(200, "GET", "/api/v1/ports/vm1", "").hdr.Get("ETag")
	create := `{"op":"create","kind":"networks","object":{"name":"green","type":"flat"}}`
	for _, tc := range []struct {
		body   string
		status int
		code   string
		field  string
	}{
		{`{"ops":[` + create + `,{"op":"create","kind":"ports","object":{"name":"vm1","network":"green"}}]}`, 409, "conflict", "ops[1].name"},
		{`{"ops":[` + create + `,{"op":"create","kind":"ports","object":{"name":"x","network":"nope"}}]}`, 400, "invalid", "ops[1].network"},
		{`{"ops":[{"op":"delete","kind":"ports","id":"vm2"},{"op":"delete","kind":"ports","id":"vm2"}]}`, 404, "not_found", "ops[1].id"},
		{`{"ops":[{"op":"patch","kind":"ports","id":"vm1","patch":{},"if_match":` + strings.Trim(etag, `"`) + `1}]}`, 412, "precondition", "ops[0].if_match"},
		{`{"ops":[{"op":"patch","kind":"ports","id":"vm1","patch":{}},{"op":"delete","kind":"ports","id":"vm1","if_match":` + strings.Trim(etag, `"`) + `}]}`, 412, "precondition", "ops[1].if_match"},
		{`{"ops":[{"op":"delete","kind":"networks","id":"blue"}]}`, 409, "conflict", "ops[0]"},
		{`{"ops":[` + create + `,{"op":"create","kind":"networks","object":{"name":"x","type":"vxlan","vni":"7"}}]}`, 400, "invalid", "ops[1].vni"},
		{`{"ops":[` + create + `,{"op":"create","kind":"networks","object":{"name":"x","type":"flat","color":"red"}}]}`, 400, "invalid", "ops[1].color"},
		{`{"ops":[` + create + `,{"op":"create","kind":"networks","object":[1]}]}`, 400, "invalid", "ops[1].object"},
		{`{"ops":[` + create + `,{"op":"patch","kind":"networks","id":"blue","patch":[1]}]}`, 400, "invalid", "ops[1].patch"},
		{`{"ops":[` + create + `,{"op":"patch","kind":"networks","id":"blue","patch":{"vni":"x"}}]}`, 400, "invalid", "ops[1].vni"},
		{`{"ops":[{"op":"upsert","kind":"networks","id":"blue"}]}`, 400, "invalid", "ops[0].op"},
		{`{"ops":[{"op":"delete","kind":"network","id":"blue"}]}`, 400, "invalid", "ops[0].kind"},
		{`{"ops":[{"op":"delete","kind":"networks"}]}`, 400, "invalid", "ops[0].id"},
		{`{"ops":[{"op":"create","kind":"networks","id":"blue","object":{"name":"x","type":"flat"}}]}`, 400, "invalid", "ops[0].id"},
		{`{"ops":[{"op":"create","kind":"networks"}]}`, 400, "invalid", "ops[0].object"},
		{`{"ops":[{"op":"update","kind":"networks","id":"blue","object":null}]}`, 400, "invalid", "ops[0].object"},
		{`{"ops":[{"op":"patch","kind":"networks","id":"blue"}]}`, 400, "invalid", "ops[0].patch"},
		{`{"ops":[{"op":"delete","kind":"networks","id":"blue","patch":{}}]}`, 400, "invalid", "ops[0].patch"},
		{`{"ops":[{"op":"delete","kind":"networks","id":"blue","if_match":"x"}]}`, 400, "invalid", "ops[0].if_match"},
		{`{"ops":[{"op":"delete","kind":"networks","id":"blue","extra":1}]}`, 400, "invalid", "ops[0].extra"},
		{`{"ops":[7]}`, 400, "invalid", "ops[0]"},
		{`{"ops":{}}`, 400, "invalid", "ops"},
		{`{}`, 400, "invalid", "ops"},
		{`{"ops":[],"x":1}`, 400, "invalid", "x"},
		{`{"ops":[`, 400, "malformed", "body"},
	} {
		r := e.do("POST", "/api/v1/batch", tc.body)
		if er := r.err(); r.status != tc.status || er.Code != tc.code || er.Field != tc.field {
			t.Errorf("%s: %d %s, want %d %s %s", tc.body, r.status, r.body, tc.status, tc.code, tc.field)
		}
	}
	if _, ok := e.svc.Snapshot().Networks.ByName("green"); ok {
		t.Error("a rejected batch created green")
	}

	// Limits: ops and bytes.
	ops := make([]string, northbound.MaxBatchOps+1)
	for i := range ops {
		ops[i] = `{"op":"delete","kind":"ports","id":"vm9"}`
	}
	r := e.must(413, "POST", "/api/v1/batch", batchBody(ops))
	if er := r.err(); er.Field != "ops" || !strings.Contains(er.Message, "10000") {
		t.Errorf("too many ops: %s", r.body)
	}
	// (An unknown field is named as soon as it is read: the bytes over
	// the limit are in an op.)
	if r := e.do("POST", "/api/v1/batch", `{"ops":[{"op":"create","kind":"networks","object":{"name":"x","type":"flat","pad":"`+strings.Repeat("a", northbound.MaxBatchBody)+`"}}]}`); r.status != 413 || r.err().Field != "body" {
		t.Errorf("a body over the limit: %d %.200s", r.status, r.body)
	}
	e.must(415, "POST", "/api/v1/batch", "{}", "Content-Type", "text/plain")
}

// A batch of a million ops answers 413 as soon as it has read one op more
// than MaxBatchOps: the rest of the body is never read.
func TestBatchAPIManyOpsStopsEarly(t *testing.T) {
	e := newModelEnv(t)
	body := `{"ops":[{}` + strings.Repeat(`,{}`, 1_000_000-1) + `]}`
	rd := &countingReader{r: strings.NewReader(body)}
	req := httptest.NewRequest("POST", "/api/v1/batch", rd)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	e.handler().ServeHTTP(w, req)
	var er northbound.Error
	json.Unmarshal(w.Body.Bytes(), &er)
	if w.Code != 413 || er.Field != "ops" || er.Code != northbound.CodeTooLarge || !strings.Contains(er.Message, "10000") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	// 10,001 ops are 30 kB; the decoder reads ahead a little.
	if rd.n > 256<<10 {
		t.Errorf("%d bytes of %d read before the 413", rd.n, len(body))
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// A batch at the limit: 10,000 ports in one request, over the single-write
// body limit.
func TestBatchAPIMaxOps(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 ports")
	}
	e := newModelEnv(t)
	ops := []string{`{"op":"create","kind":"networks","object":{"name":"big","type":"vxlan","vni":9}}`,
		`{"op":"create","kind":"subnets","object":{"name":"big-v4","network":"big","cidr":"10.0.0.0/16"}}`}
	for i := range northbound.MaxBatchOps - 2 {
		ops = append(ops, fmt.Sprintf(`{"op":"create","kind":"ports","object":{"name":"p%d","network":"big","mac":"02:00:00:00:%02x:%02x","ips":["10.0.%d.%d"]}}`,
			i, i/256, i%256, i/250, 2+i%250))
	}
	body := batchBody(ops)
	if len(body) <= northbound.MaxBody {
		t.Fatalf("a body of %d bytes", len(body))
	}
	e.must(200, "POST", "/api/v1/batch", body)
	if n := e.svc.Snapshot().Ports.Len(); n != northbound.MaxBatchOps-2 {
		t.Errorf("%d ports", n)
	}
}

func TestBatchOpenAPI(t *testing.T) {
	e := newModelEnv(t)
	var doc struct {
		Paths      map[string]map[string]map[string]any
		Components struct{ Schemas map[string]map[string]any }
	}
	if err := json.Unmarshal(e.must(200, "GET", "/api/v1/openapi.json", "").body, &doc); err != nil {
		t.Fatal(err)
	}
	post := doc.Paths["/api/v1/batch"]["post"]
	if post == nil || post["requestBody"] == nil || post["responses"].(map[string]any)["200"] == nil || post["responses"].(map[string]any)["412"] == nil {
		t.Fatalf("POST /api/v1/batch: %v", post)
	}
	op := doc.Components.Schemas["BatchOp"]["properties"].(map[string]any)
	if fmt.Sprint(op["op"].(map[string]any)["enum"]) != "[create update patch delete]" || op["if_match"].(map[string]any)["type"] != "integer" ||
		len(op["object"].(map[string]any)["oneOf"].([]any)) != len(model.Kinds()) || op["patch"].(map[string]any)["type"] != "object" {
		t.Errorf("BatchOp: %v", op)
	}
	if doc.Components.Schemas["BatchRequest"] == nil || doc.Components.Schemas["BatchResult"] == nil {
		t.Error("batch schemas missing")
	}
}

// BenchmarkPostDuringBatch measures how long one POST waits while a batch
// of 3,000 networks is being written into a model of 10,000 networks
// (reported as post-ms; batch-ms is the batch's own time).
func BenchmarkPostDuringBatch(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		e := newModelEnv(b)
		pre := make([]model.Op, 10000)
		for j := range pre {
			pre[j] = model.Op{Op: model.OpCreate, Object: &model.Network{Meta: model.Meta{Name: fmt.Sprintf("pre%d", j)}, Type: "vxlan", VNI: 10001 + j}}
		}
		if _, err := e.svc.Apply(context.Background(), pre); err != nil {
			b.Fatal(err)
		}
		ops := make([]string, 3000)
		for j := range ops {
			ops[j] = fmt.Sprintf(`{"op":"create","kind":"networks","object":{"name":"n%d","type":"vxlan","vni":%d}}`, j, 1+j)
		}
		body := batchBody(ops)
		b.StartTimer()
		start := time.Now()
		done := make(chan time.Duration)
		go func() {
			r := e.do("POST", "/api/v1/batch", body)
			if r.status != 200 {
				b.Error(r.status, string(r.body))
			}
			done <- time.Since(start)
		}()
		time.Sleep(50 * time.Millisecond) // the batch is being validated
		t0 := time.Now()
		e.must(201, "POST", "/api/v1/networks", `{"name":"single","type":"vxlan","vni":5000}`)
		post := time.Since(t0)
		batch := <-done
		b.ReportMetric(float64(post.Milliseconds()), "post-ms")
		b.ReportMetric(float64(batch.Milliseconds()), "batch-ms")
	}
}
