package northbound_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	_ "github.com/loom-sdn/loom/apps/l2switch"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/northbound"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/prometheus/client_golang/prometheus"
)

func TestAPI(t *testing.T) {
	reg := prometheus.NewRegistry()
	env := controllertest.Start(t, controller.Config{Apps: []string{"l2switch"}, PacketInRate: 500}, reg)
	ctl := env.Ctl
	sw := env.Dial(emu.Options{DatapathID: 0xac80001, Ports: []wire.Port{{PortNo: 1, Name: "vm1", HWAddr: [6]byte{2, 0, 0, 0, 0, 1}}}})
	env.Ready(0xac80001)
	for deadline := time.Now().Add(5 * time.Second); sw.NumFlows() < 3 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
	}

	ts := httptest.NewServer(northbound.Handler(ctl, reg))
	defer ts.Close()
	get := func(path string, code int, v any) {
		t.Helper()
		getJSON(t, ts.URL+path, code, v)
	}
	var sws []northbound.Switch
	get("/api/v1/switches", 200, &sws)
	if len(sws) != 1 || sws[0].DatapathID != "000000000ac80001" || sws[0].Software != "emu 1.0" {
		t.Errorf("switches: %+v", sws)
	}
	var d northbound.SwitchDetail
	get("/api/v1/switches/0x0ac80001", 200, &d)
	if len(d.Ports) != 1 || d.Ports[0].MAC != "02:00:00:00:00:01" || len(d.Flows) != 3 || len(d.Meters) != 1 {
		t.Errorf("detail: %+v", d)
	}
	if d.Flows[0].Owner != "l2switch" || !strings.HasPrefix(d.Flows[0].Flow, "cookie=0x1000000000000, priority=200,") {
		t.Errorf("flows: %+v", d.Flows)
	}
	var e northbound.Error
	get("/api/v1/switches/zz", 400, &e)
	if e.Field != "dpid" || e.Code != "invalid" {
		t.Errorf("bad dpid error: %+v", e)
	}
	get("/api/v1/switches/42", 404, &e)
	var fv []controller.FlowView
	get("/api/v1/switches/0ac80001/flows", 200, &fv)
	if len(fv) != 3 || fv[0].State != "ok" || fv[0].Owner != "l2switch" {
		t.Errorf("flows: %+v", fv)
	}
	get("/api/v1/nothing", 404, &e)
	var h map[string]any
	get("/healthz", 200, &h)
	if h["switches"] != 1.0 {
		t.Errorf("healthz: %v", h)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := string(body); !strings.Contains(m, "loom_switches_connected 1") || !strings.Contains(m, "loom_reconciles_total 1") {
		t.Errorf("metrics:\n%s", m)
	}
}
