package ovsdb

import (
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/ovslab"
)

// TestMirrorsAndExports: an agent keeps Loom's mirrors (a SPAN to a local
// port, a remote one through a GRE port) and the bridge's sFlow, IPFIX and
// NetFlow as configured, follows changes in one transaction each, and
// removes only what it owns.
func TestMirrorsAndExports(t *testing.T) {
	ovslab.Require(t)
	t.Parallel()
	h := ovslab.New(t).AddHost("hv1", ovslab.HostOptions{})
	for _, vm := range [][2]string{{"a", "02:00:00:00:00:0a"}, {"b", "02:00:00:00:00:0b"}, {"mon", "02:00:00:00:00:0c"}} {
		h.AddVM(vm[0], vm[1], "")
	}
	m, _ := newTestManager(t)
	uuid := func(table, name string) string { return get(t, h, "get", table, name, "_uuid") }
	cfg := HostConfig{Name: "hv1", Address: dbAddress(h), DatapathType: "netdev", DatapathID: h.DPID,
		Mirrors: []MirrorConfig{
			{Name: "span", From: []string{"a", "elsewhere"}, To: []string{"a", "b"}, OutputIfaceID: "mon"},
			{Name: "remote", From: []string{"b"}, RemoteIP: "10.200.0.99", GREKey: 7},
			{Name: "idle", From: []string{"elsewhere"}, OutputIfaceID: "mon"}, // no port here: no row
			{Name: "in", Receive: true, GREKey: 9, OutputIfaceID: "mon"},      // other hosts' copies, in GRE
		},
		SFlow:   &SFlowConfig{Targets: []string{"127.0.0.1:6343"}, Sampling: 1, Polling: 10},
		IPFIX:   &IPFIXConfig{Targets: []string{"127.0.0.1:4739"}, Sampling: 2, ObsDomainID: 9},
		NetFlow: &NetFlowConfig{Targets: []string{"127.0.0.1:2055"}, ActiveTimeout: 5},
	}
	if err := m.Add(cfg); err != nil {
		t.Fatal(err)
	}
	gre := MirrorPortName("remote")
	waitFor(t, 5*time.Second, "mirrors and exports", func() bool {
		out, _ := h.Vsctl("--bare", "--columns=name", "list", "mirror")
		return strings.Contains(out, "span") && strings.Contains(out, "remote") && strings.Contains(out, "in") &&
			get(t, h, "get", "bridge", "br-int", "netflow") != "[]"
	})
	checks := [][2]string{
		{"get mirror span select_src_port", "[" + uuid("port", "a") + "]"},
		{"get mirror span output_port", uuid("port", "mon")},
		{"get mirror span external_ids:loom-owner", "loom"},
		{"get mirror remote select_src_port", "[" + uuid("port", "b") + "]"},
		{"get mirror remote select_dst_port", "[]"},
		{"get mirror remote output_port", uuid("port", gre)},
		{"get mirror in select_src_port", "[" + uuid("port", MirrorPortName("in")) + "]"},
		{"get mirror in output_port", uuid("port", "mon")},
		{"get interface " + MirrorPortName("in") + " options", `{key="9", remote_ip=flow}`},
		{"get interface " + gre + " type", "gre"},
		{"get interface " + gre + " options", `{key="7", remote_ip="10.200.0.99"}`},
		{"--bare --columns=targets,sampling,polling,external_ids list sflow", "127.0.0.1:6343\n1\n10\nloom-owner=loom"},
		{"--bare --columns=targets,sampling,obs_domain_id list ipfix", "127.0.0.1:4739\n2\n9"},
		{"--bare --columns=targets,active_timeout list netflow", "127.0.0.1:2055\n5"},
	}
	for _, c := range checks {
		if got := get(t, h, strings.Fields(c[0])...); got != c[1] {
			t.Errorf("%s: got %q, want %q", c[0], got, c[1])
		}
	}
	if dst := get(t, h, "get", "mirror", "span", "select_dst_port"); !strings.Contains(dst, uuid("port", "a")) || !strings.Contains(dst, uuid("port", "b")) {
		t.Errorf("span select_dst_port %s, want a and b", dst)
	}
	if out, _ := h.Vsctl("--bare", "--columns=name", "list", "mirror"); strings.Contains(out, "idle") {
		t.Errorf("a mirror with no port selected here has a row: %s", out)
	}

	// Someone else's mirror is left alone.
	if _, err := h.Vsctl("--", "--id=@m", "create", "mirror", "name=theirs", "select_all=true",
		"--", "add", "bridge", "br-int", "mirrors", "@m"); err != nil {
		t.Fatal(err)
	}
	// Changes: b no longer selected by span, sFlow samples 1 in 2.
	tx := status(t, m, "hv1").Transactions
	cfg.Mirrors[0].To = []string{"a"}
	cfg.SFlow.Sampling = 2
	if err := m.Update(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "span and sflow changed", func() bool {
		return get(t, h, "get", "mirror", "span", "select_dst_port") == "["+uuid("port", "a")+"]" &&
			get(t, h, "--bare", "--columns=sampling", "list", "sflow") == "2"
	})
	time.Sleep(200 * time.Millisecond)
	if n := status(t, m, "hv1").Transactions - tx; n != 1 {
		t.Errorf("the change took %d transactions, want 1", n)
	}
	// A selected port unplugged: the mirror follows, and its GRE port
	// goes (a host with no port to copy has none).
	if _, err := h.Vsctl("del-port", "br-int", "b"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "remote mirror gone with its only port", func() bool {
		out, _ := h.Vsctl("--bare", "--columns=name", "list", "mirror")
		ports, _ := h.Vsctl("list-ports", "br-int")
		return !strings.Contains(out, "remote") && !strings.Contains(ports, gre)
	})
	// Everything off: Loom's rows and GRE port go, the other mirror stays.
	cfg.Mirrors, cfg.SFlow, cfg.IPFIX, cfg.NetFlow = nil, nil, nil, nil
	if err := m.Update(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "Loom's mirrors and exports removed", func() bool {
		out, _ := h.Vsctl("--bare", "--columns=name", "list", "mirror")
		ports, _ := h.Vsctl("list-ports", "br-int")
		return strings.TrimSpace(out) == "theirs" && !strings.Contains(ports, gre) &&
			get(t, h, "get", "bridge", "br-int", "sflow") == "[]" && get(t, h, "get", "bridge", "br-int", "ipfix") == "[]" &&
			get(t, h, "get", "bridge", "br-int", "netflow") == "[]"
	})
	if out, _ := h.Vsctl("--bare", "--columns=_uuid", "list", "sflow"); strings.TrimSpace(out) != "" {
		t.Errorf("sflow rows left: %s", out)
	}
}
