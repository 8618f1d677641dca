package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/ovslab"
	"github.com/loom-sdn/loom/northbound"
)

// TestOVSHostRegisteredByREST registers a hypervisor whose OVSDB has no
// bridge: loomd creates br-int with itself as controller, the switch
// connects, and a VM interface plugged with iface-id = a model port's name
// shows as bound.
func TestOVSHostRegisteredByREST(t *testing.T) {
	ovslab.Require(t)
	lab := ovslab.New(t)
	sock, api := lab.UnixControllerPath(), freeAddr(t)
	l := startLoomd(t, sock, filepath.Join(lab.Dir, "data"), "--api-listen", api)
	waitAPI(t, api)
	h := lab.AddHost("h1", ovslab.HostOptions{NoBridge: true})
	// OVS accepts unix controller targets only inside its run directory.
	if err := os.Symlink(sock, filepath.Join(h.Dir, "loom.sock")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	loomctl(t, api, "create", "hosts", "name=hostA", "ovsdb=unix:"+filepath.Join(h.Dir, "db.sock"),
		"controller=unix:"+filepath.Join(h.Dir, "loom.sock"), "datapath_type=netdev", "vtep_ip=10.200.0.1")
	var st northbound.HostStatus
	for deadline := time.Now().Add(15 * time.Second); !st.OpenFlowConnected; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("host never came up: %+v", st)
		}
		getJSON(t, api, "/api/v1/hosts/hostA/status", &st)
	}
	t.Logf("POST /hosts -> bridge created, switch connected: %v", time.Since(start).Round(time.Millisecond))
	if !st.Connected || !st.BridgeReady || st.DatapathID == "" {
		t.Errorf("status: %+v", st)
	}
	br, _ := h.Vsctl("--columns=fail_mode,protocols,datapath_type", "list", "bridge", "br-int")
	for _, want := range []string{"secure", "OpenFlow13", "netdev"} {
		if !strings.Contains(br, want) {
			t.Errorf("br-int lacks %s:\n%s", want, br)
		}
	}
	l.waitLog(`msg="switch ready"`, 1, 10*time.Second)

	loomctl(t, api, "create", "networks", "name=blue", "type=vxlan", "vni=5001")
	loomctl(t, api, "create", "subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	loomctl(t, api, "create", "ports", "name=vm1", "network=blue", "mac=02:00:00:00:00:01", `ips=["10.1.0.11"]`)
	vm := h.AddVM("vm1", "02:00:00:00:00:01", "10.1.0.11/24") // plugged with external_ids:iface-id=vm1
	var ps northbound.PortStatus
	for deadline := time.Now().Add(10 * time.Second); !ps.Bound; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("port never bound: %+v", ps)
		}
		getJSON(t, api, "/api/v1/ports/vm1/status", &ps)
	}
	if ps.Binding.Host != "hostA" || ps.Binding.OFPort != vm.OFPort || ps.Binding.MAC != "02:00:00:00:00:01" {
		t.Errorf("binding: %+v (vm ofport %d)", ps.Binding, vm.OFPort)
	}
}

func getJSON(t *testing.T, api, path string, v any) {
	t.Helper()
	resp, err := http.Get("http://" + api + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
