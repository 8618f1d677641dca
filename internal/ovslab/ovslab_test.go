package ovslab

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLab builds one host with three VMs, forwards between them with
// hand-written flows, and checks that teardown leaves nothing behind.
func TestLab(t *testing.T) {
	Require(t)
	t.Parallel()
	var prefix, dir string
	var bodyDone time.Time
	t.Run("lab", func(t *testing.T) {
		start := time.Now()
		l := New(t)
		prefix, dir = l.Prefix, l.Dir
		h := l.AddHost("host1", HostOptions{DPID: 0xabc})
		t.Logf("host up in %v", time.Since(start).Round(time.Millisecond))
		vms := make([]*VM, 3)
		for i := range vms {
			vms[i] = h.AddVM(fmt.Sprintf("vm%d", i+1), fmt.Sprintf("02:00:00:00:01:%02x", i+1), fmt.Sprintf("10.0.0.%d/24", i+1))
		}
		t.Logf("host and 3 VMs up in %v", time.Since(start).Round(time.Millisecond))

		if out, err := h.Ofctl("show", "br-int"); err != nil || !strings.Contains(out, "dpid:0000000000000abc") {
			t.Errorf("ofctl show: want dpid 0000000000000abc, got %v\n%s", err, out)
		}

		// Unicast by destination MAC; broadcast to every other port.
		var flows, want []string
		for _, v := range vms {
			flows = append(flows, fmt.Sprintf("table=0,priority=100,dl_dst=%s actions=output:%d", v.MAC, v.OFPort))
			want = append(want, fmt.Sprintf("priority=100,dl_dst=%s actions=output:%d", v.MAC, v.OFPort))
		}
		for _, in := range vms {
			var outs []string
			for _, v := range vms {
				if v != in {
					outs = append(outs, "output:"+strconv.Itoa(v.OFPort))
				}
			}
			flows = append(flows, fmt.Sprintf("table=0,cookie=0x2a,priority=50,in_port=%d,dl_dst=ff:ff:ff:ff:ff:ff actions=%s",
				in.OFPort, strings.Join(outs, ",")))
			want = append(want, fmt.Sprintf("cookie=0x2a, priority=50,in_port=%d,dl_dst=ff:ff:ff:ff:ff:ff actions=%s",
				in.OFPort, strings.Join(outs, ",")))
		}
		if err := h.AddFlows(flows...); err != nil {
			t.Fatal(err)
		}
		for _, dst := range vms[1:] {
			if err := vms[0].Ping(dst.IP, 1, 3*time.Second); err != nil {
				t.Errorf("ping %s -> %s: %v", vms[0].Name, dst.Name, err)
			}
		}
		got, err := h.DumpFlows()
		if err != nil {
			t.Fatal(err)
		}
		// Priority 100 before 50; within one priority, DumpFlows sorts as
		// text (and so does each half of want, by port).
		n := len(vms)
		slices.Sort(want[:n])
		slices.Sort(want[n:])
		if !slices.Equal(got, want) {
			t.Errorf("DumpFlows:\ngot  %q\nwant %q", got, want)
		}

		// Port status follows the host side of the veth.
		if err := vms[2].SetLinkDown(); err != nil {
			t.Fatal(err)
		}
		waitPortState(t, h, "vm3", "LINK_DOWN")
		if err := vms[2].SetLinkUp(); err != nil {
			t.Fatal(err)
		}
		waitPortState(t, h, "vm3", "LIVE")
		if err := vms[0].Ping(vms[2].IP, 1, 3*time.Second); err != nil {
			t.Errorf("ping after link up: %v", err)
		}

		if err := h.DelVM(vms[2]); err != nil {
			t.Fatal(err)
		}
		if out, _ := h.Ofctl("show", "br-int"); strings.Contains(out, "(vm3)") {
			t.Errorf("vm3 still on br-int after DelVM:\n%s", out)
		}
		if _, err := os.Stat("/run/netns/" + vms[2].NS); err == nil {
			t.Errorf("namespace %s still exists after DelVM", vms[2].NS)
		}
		bodyDone = time.Now()
	})
	if !bodyDone.IsZero() {
		t.Logf("teardown took %v", time.Since(bodyDone).Round(time.Millisecond))
	}
	checkGone(t, prefix, dir)
}

// waitPortState waits until dump-ports-desc shows state for port.
func waitPortState(t *testing.T, h *Host, port, state string) {
	t.Helper()
	re := regexp.MustCompile(`(?s)\(` + port + `\):.*?state:\s+(\S+)`)
	var out string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, _ = h.Ofctl("dump-ports-desc", "br-int")
		if m := re.FindStringSubmatch(out); m != nil && m[1] == state {
			return
		}
	}
	t.Fatalf("port %s never reached state %s:\n%s", port, state, out)
}

// checkGone fails t if anything of the lab with prefix and dir survived.
func checkGone(t *testing.T, prefix, dir string) {
	t.Helper()
	if prefix == "" {
		t.Fatal("lab was not created")
	}
	if m, _ := filepath.Glob("/run/netns/" + prefix + "-*"); len(m) > 0 {
		t.Errorf("namespaces left: %v", m)
	}
	if out, _ := run("ip", "-o", "link", "show"); strings.Contains(out, prefix+"-") {
		t.Errorf("root-namespace links left:\n%s", out)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("directory %s left", dir)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, _ := os.ReadFile(p); strings.Contains(string(b), dir) {
			t.Errorf("process left: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

// TestTestcontroller connects a host to ovs-testcontroller through the unix
// socket symlink, checks that its learning switch forwards pings, and removes
// the controller again.
func TestTestcontroller(t *testing.T) {
	Require(t)
	if _, err := exec.LookPath("ovs-testcontroller"); err != nil {
		skipOrFail(t, "ovs-testcontroller missing (Debian: apt-get install -y openvswitch-testcontroller)")
	}
	t.Parallel()
	l := New(t)
	sock := l.UnixControllerPath()
	// --unixctl keeps it from needing /var/run/openvswitch.
	tc := exec.Command("ovs-testcontroller", "-O", "OpenFlow13", "punix:"+sock,
		"--unixctl="+filepath.Join(l.Dir, "tc.ctl"), "-vconsole:off")
	if err := tc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tc.Process.Kill()
		tc.Wait()
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("ovs-testcontroller did not create %s", sock)
		}
	}

	h := l.AddHost("h1", HostOptions{})
	a := h.AddVM("a", "02:00:00:00:02:01", "10.0.0.1/24")
	b := h.AddVM("b", "02:00:00:00:02:02", "10.0.0.2/24")
	start := time.Now()
	if err := h.SetController("unix:" + sock); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitConnected(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("connected (per OVSDB) %v after SetController", time.Since(start).Round(time.Millisecond))
	if err := a.Ping(b.IP, 2, 5*time.Second); err != nil {
		t.Error(err)
	}

	if err := h.DelController(); err != nil {
		t.Fatal(err)
	}
	if out, err := h.Vsctl("get-controller", "br-int"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("get-controller after DelController: %q, %v", out, err)
	}
}

// TestTCPController checks that "tcp:auto:PORT" reaches a listener on all
// addresses of the root namespace: the switch's first message is an OF1.3
// HELLO.
func TestTCPController(t *testing.T) {
	Require(t)
	t.Parallel()
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	l := New(t)
	l.AddHost("h1", HostOptions{Controllers: []string{"tcp:auto:" + port}})
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(conn, hdr); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 4 || hdr[1] != 0 {
		t.Errorf("first message: version %d type %d, want OF1.3 (4) HELLO (0)", hdr[0], hdr[1])
	}
	remote := conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	if !netip.MustParsePrefix("172.31.128.0/17").Contains(remote) {
		t.Errorf("switch connected from %v, want an address in 172.31.128.0/17", remote)
	}
}

// TestVXLAN connects two hosts through the underlay and pings between their
// VMs over VXLAN with hand-written flows.
func TestVXLAN(t *testing.T) {
	Require(t)
	t.Parallel()
	l := New(t)
	h1 := l.AddHost("h1", HostOptions{UnderlayIP: "10.200.0.1"})
	h2 := l.AddHost("h2", HostOptions{UnderlayIP: "10.200.0.2/24"})
	a := h1.AddVM("a", "02:00:00:00:03:01", "10.0.0.1/24")
	b := h2.AddVM("b", "02:00:00:00:03:02", "10.0.0.2/24")
	for _, p := range []struct {
		h      *Host
		vm     *VM
		remote *Host
	}{{h1, a, h2}, {h2, b, h1}} {
		if err := p.h.AddFlows(
			fmt.Sprintf("priority=100,in_port=%d actions=set_field:100->tun_id,set_field:%s->tun_dst,output:%d", p.vm.OFPort, p.remote.UnderlayIP, TunnelPort),
			fmt.Sprintf("priority=100,in_port=%d,tun_id=100 actions=output:%d", TunnelPort, p.vm.OFPort),
		); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Ping(b.IP, 2, 5*time.Second); err != nil {
		t.Error(err)
	}
}

// TestLink wires two hosts' bridges with a cable, forwards across it with
// hand-written flows, and pulls it.
func TestLink(t *testing.T) {
	Require(t)
	t.Parallel()
	l := New(t)
	a, b := l.AddHost("ha", HostOptions{}), l.AddHost("hb", HostOptions{})
	va, vb := a.AddVM("va", "02:00:00:00:02:01", "10.0.2.1/24"), b.AddVM("vb", "02:00:00:00:02:02", "10.0.2.2/24")
	k := l.Link(a, b)
	if k.Name != "lk1" || k.APort <= 0 || k.BPort <= 0 {
		t.Fatalf("link: %+v", k)
	}
	for _, e := range []struct {
		h        *Host
		vm, link int
	}{{a, va.OFPort, k.APort}, {b, vb.OFPort, k.BPort}} {
		if err := e.h.AddFlows(fmt.Sprintf("in_port=%d actions=output:%d", e.vm, e.link),
			fmt.Sprintf("in_port=%d actions=output:%d", e.link, e.vm)); err != nil {
			t.Fatal(err)
		}
	}
	if err := va.Ping(vb.IP, 1, 3*time.Second); err != nil {
		t.Errorf("ping across the link: %v", err)
	}
	if err := k.SetDown(); err != nil {
		t.Fatal(err)
	}
	waitPortState(t, b, k.Name, "LINK_DOWN")
	if err := k.SetUp(); err != nil {
		t.Fatal(err)
	}
	waitPortState(t, b, k.Name, "LIVE")
	if err := k.Delete(); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*Host{a, b} {
		if out, _ := h.Ofctl("show", "br-int"); strings.Contains(out, "("+k.Name+")") {
			t.Errorf("%s still on %s's br-int:\n%s", k.Name, h.Name, out)
		}
	}
	if err := va.Ping(vb.IP, 1, time.Second); err == nil {
		t.Error("ping across a deleted link")
	}
}

// TestNoBridgeRestartDB checks HostOptions.NoBridge and that the database
// comes back with its contents after KillDB and StartDB.
func TestNoBridgeRestartDB(t *testing.T) {
	Require(t)
	t.Parallel()
	h := New(t).AddHost("host1", HostOptions{NoBridge: true})
	if out, err := h.Vsctl("list-br"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("list-br: want no bridge, got %q, %v", out, err)
	}
	if _, err := h.Vsctl("add-br", "br-x", "--", "set", "bridge", "br-x", "datapath_type=netdev"); err != nil {
		t.Fatal(err)
	}
	if err := h.KillDB(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Vsctl("--timeout=1", "list-br"); err == nil {
		t.Error("ovs-vsctl works with ovsdb-server killed")
	}
	if err := h.StartDB(); err != nil {
		t.Fatal(err)
	}
	if out, err := h.Vsctl("list-br"); err != nil || strings.TrimSpace(out) != "br-x" {
		t.Errorf("list-br after restart: want br-x, got %q, %v", out, err)
	}
}
