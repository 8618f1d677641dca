package main

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// loomctl runs the CLI against api and returns its output.
func loomctl(t *testing.T, api string, args ...string) string {
	t.Helper()
	out, err := exec.Command(build(t, "loomctl"), append([]string{"--api", "http://" + api}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("loomctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestOVSLoomctl drives a running loomd with the CLI.
func TestOVSLoomctl(t *testing.T) {
	api := freeAddr(t)
	e := newEnv(t, "--api-listen", api)
	e.pingAll(t)
	dpid := "0000000000000001"
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(loomctl(t, api, "health"), "switches: 1") {
			break
		}
	}
	checks := []struct {
		args []string
		want []string
	}{
		{[]string{"health"}, []string{"status: ok, switches: 1"}},
		{[]string{"switches"}, []string{dpid, "3.1.0"}},
		{[]string{"switch", dpid}, []string{"vm1", "vm2", "vm3", "up", "meter: meter=1,pktps"}},
		{[]string{"flows", dpid}, []string{"STATE", "lldp", "l2switch", "runtime", "dl_dst=" + e.vms[0].MAC}},
		{[]string{"topology"}, []string{"NODES (1)", dpid, "ENDPOINTS (3)", e.vms[2].MAC}},
		{[]string{"-o", "json", "flows", dpid}, []string{`"state": "ok"`, `"owner": "runtime"`}},
	}
	for _, c := range checks {
		out := loomctl(t, api, c.args...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("loomctl %s lacks %q:\n%s", strings.Join(c.args, " "), w, out)
			}
		}
	}
	if out := loomctl(t, api, "flows", dpid); strings.Contains(out, "missing") || strings.Contains(out, "unexpected") || strings.Contains(out, "differs") {
		t.Errorf("desired and installed flows differ:\n%s", out)
	}
}
