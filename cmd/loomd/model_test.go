package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoomctlModelPersists drives the network model of a running loomd
// through loomctl, restarts loomd and finds everything as it was. No OVS
// needed.
func TestLoomctlModelPersists(t *testing.T) {
	dir := t.TempDir()
	api := freeAddr(t)
	sock, data := filepath.Join(dir, "of.sock"), filepath.Join(dir, "data")
	l := startLoomd(t, sock, data, "--api-listen", api)
	waitAPI(t, api)
	for _, args := range [][]string{
		{"create", "networks", "name=blue", "type=vxlan", "vni=5001"},
		{"create", "networks", "name=green", "type=vlan", "vlan=100"},
		{"create", "subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1"},
		{"create", "port-groups", "name=gold", "bandwidth_kbps=20000", "priority=5"},
		{"create", "ports", "name=vm1-eth0", "network=blue", "mac=02:00:00:00:00:01", `ips=["10.1.0.11"]`, "port_group=gold"},
		{"create", "hosts", "name=hostA", "ovsdb=unix:/run/ovs/db.sock", "vtep_ip=10.200.0.1"},
		{"update", "networks", "green", "vlan=200"},
	} {
		loomctl(t, api, args...)
	}
	// Bad input is refused with the field named, and changes nothing.
	out, err := exec.Command(build(t, "loomctl"), "--api", "http://"+api, "create", "ports", "name=vm2", "network=blue",
		"mac=02:00:00:00:00:01", `ips=["10.1.0.12"]`).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "field mac") {
		t.Errorf("duplicate MAC: %v %s", err, out)
	}
	before := loomctl(t, api, "-o", "json", "list", "ports")
	// Model ports are declared endpoints of the topology.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out := loomctl(t, api, "topology")
		if strings.Contains(out, "02:00:00:00:00:01") && strings.Contains(out, "model") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the model's port is not a declared endpoint:\n%s", out)
		}
	}
	l.stop()

	startLoomd(t, sock, data, "--api-listen", api)
	waitAPI(t, api)
	if after := loomctl(t, api, "-o", "json", "list", "ports"); after != before {
		t.Errorf("ports changed across a restart:\n%s\n%s", before, after)
	}
	var green struct {
		VLAN     int    `json:"vlan"`
		Revision uint64 `json:"revision"`
	}
	if err := json.Unmarshal([]byte(loomctl(t, api, "-o", "json", "get", "networks", "green")), &green); err != nil || green.VLAN != 200 {
		t.Errorf("green after restart: %+v %v", green, err)
	}
	loomctl(t, api, "delete", "ports", "vm1-eth0")
	if out := loomctl(t, api, "list", "ports"); strings.Contains(out, "vm1-eth0") {
		t.Errorf("deleted port still listed:\n%s", out)
	}
}

func waitAPI(t *testing.T, api string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if out, err := exec.Command(build(t, "loomctl"), "--api", "http://"+api, "health").CombinedOutput(); err == nil &&
			strings.Contains(string(out), "status: ok") {
			return
		}
	}
	t.Fatal("loomd API never came up")
}
