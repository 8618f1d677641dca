package main

// Integration tests: loomd as a real process against Open vSwitch 3.1
// (userspace datapath) with VMs as network namespaces. They need root and
// OVS; they skip without them, and fail instead when LOOM_REQUIRE_OVS=1
// (as in CI).

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/testenv"

	"github.com/loom-sdn/loom/internal/ovslab"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// build builds loomd and loomctl once per test run and returns the path
// of the named one.
func build(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "loomd-bin-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/", ".", "../loomctl").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// loomd is a running controller process.
type loomd struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  string
	sock string
	data string
}

func startLoomd(t *testing.T, sock, data string, extra ...string) *loomd {
	t.Helper()
	logf := filepath.Join(filepath.Dir(sock), fmt.Sprintf("loomd-%d.log", time.Now().UnixNano()))
	f, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--openflow-listen", "unix:" + sock, "--api-listen", "", "--data-dir", data,
		"--log-level", "debug", "--echo-interval", "1s"}
	if !slices.Contains(extra, "--apps") {
		// These tests wire plain bridges to loomd: the learning switch,
		// not the overlay (which forwards only the model's ports).
		args = append(args, "--apps", "lldp,l2switch")
	}
	args = append(args, extra...)
	cmd := exec.Command(build(t, "loomd"), args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l := &loomd{t: t, cmd: cmd, log: logf, sock: sock, data: data}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf)
			t.Logf("loomd log %s:\n%s", logf, b)
		}
	})
	return l
}

func (l *loomd) kill9() {
	l.cmd.Process.Kill()
	l.cmd.Wait()
}

func (l *loomd) stop() {
	l.cmd.Process.Signal(syscall.SIGTERM)
	if err := l.cmd.Wait(); err != nil {
		l.t.Errorf("loomd exit after SIGTERM: %v", err)
	}
}

// waitLog waits until the log has n lines matching re and returns them.
func (l *loomd) waitLog(re string, n int, timeout time.Duration) []string {
	l.t.Helper()
	rx := regexp.MustCompile(re)
	var got []string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got = l.grep(rx)
		if len(got) >= n {
			return got
		}
	}
	b, _ := os.ReadFile(l.log)
	l.t.Fatalf("loomd log: %d lines match %q, want %d\n%s", len(got), re, n, b)
	return nil
}

func (l *loomd) grep(rx *regexp.Regexp) []string {
	f, err := os.Open(l.log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rx.MatchString(sc.Text()) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// env is one host with three VMs on a secure-mode bridge, driven by loomd.
type env struct {
	lab   *ovslab.Lab
	host  *ovslab.Host
	vms   []*ovslab.VM
	loomd *loomd
	sock  string
	data  string
}

func newEnv(t *testing.T, loomdArgs ...string) *env {
	ovslab.Require(t)
	lab := ovslab.New(t)
	e := &env{lab: lab, sock: lab.UnixControllerPath(), data: filepath.Join(lab.Dir, "data")}
	e.loomd = startLoomd(t, e.sock, e.data, loomdArgs...)
	e.host = lab.AddHost("h1", ovslab.HostOptions{Controllers: []string{"unix:" + e.sock}})
	for i := 1; i <= 3; i++ {
		e.vms = append(e.vms, e.host.AddVM(fmt.Sprintf("vm%d", i), fmt.Sprintf("02:00:00:00:00:%02x", i), fmt.Sprintf("10.0.0.%d/24", i)))
	}
	ready := e.loomd.waitLog(`msg="switch ready"`, 1, 15*time.Second)
	t.Logf("switch connect -> flows confirmed: %s", field(ready[0], "since_connect"))
	return e
}

func field(line, name string) string {
	m := regexp.MustCompile(name + `=(\S+)`).FindStringSubmatch(line)
	if m == nil {
		return "?"
	}
	return m[1]
}

func (e *env) pingAll(t *testing.T) {
	t.Helper()
	for _, a := range e.vms {
		for _, b := range e.vms {
			if a != b {
				if err := a.Ping(b.IP, 1, 3*time.Second); err != nil {
					t.Errorf("%s -> %s: %v", a.Name, b.Name, err)
				}
			}
		}
	}
}

// checkFlows asserts the flow table is one loomd would write: no NORMAL,
// only known owners' cookies, no duplicates. It returns the flows.
func (e *env) checkFlows(t *testing.T) []string {
	t.Helper()
	flows, err := e.host.DumpFlows()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range flows {
		if strings.Contains(f, "NORMAL") {
			t.Errorf("NORMAL action in %s", f)
		}
		if !regexp.MustCompile(`cookie=0x(1|2|ffff)000000000000[ ,]`).MatchString(f) {
			t.Errorf("flow not owned by loomd: %s", f)
		}
		id := regexp.MustCompile(`cookie=\S+,? ?`).ReplaceAllString(f, "")
		id = regexp.MustCompile(` actions=.*`).ReplaceAllString(id, "")
		if seen[id] {
			t.Errorf("duplicate flow %s", f)
		}
		seen[id] = true
	}
	return flows
}

func hasLearned(flows []string, mac string) bool {
	for _, f := range flows {
		if strings.Contains(f, "dl_dst="+mac) && strings.Contains(f, "idle_timeout=") {
			return true
		}
	}
	return false
}

func TestOVSThreeVMsPing(t *testing.T) {
	e := newEnv(t)
	e.pingAll(t)
	flows := e.checkFlows(t)
	for _, v := range e.vms {
		if !hasLearned(flows, v.MAC) {
			t.Errorf("no learned flow for %s:\n%s", v.MAC, strings.Join(flows, "\n"))
		}
	}
	if meters, _ := e.host.Ofctl("dump-meters", "br-int"); !strings.Contains(meters, "meter=1 pktps") {
		t.Errorf("packet-in meter missing:\n%s", meters)
	}
	// Port down: the VM's MAC is forgotten.
	if err := e.vms[2].SetLinkDown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "vm3's flows to go", func() bool {
		f, _ := e.host.DumpFlows()
		return !hasLearned(f, e.vms[2].MAC)
	})
	e.vms[2].SetLinkUp()
	// SIGTERM leaves the flows in place.
	before := e.checkFlows(t)
	e.loomd.stop()
	after, _ := e.host.DumpFlows()
	if len(after) != len(before) {
		t.Errorf("flows after a clean shutdown: %d, before %d", len(after), len(before))
	}
	if err := e.vms[0].Ping(e.vms[1].IP, 1, 3*time.Second); err != nil {
		t.Errorf("ping with loomd stopped: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, what, cond)
}

// pingRun pings for a while in the background and reports the loss.
func pingRun(v *ovslab.VM, dst string, count int) chan string {
	res := make(chan string, 1)
	go func() {
		out, err := v.Exec("ping", "-i", "0.05", "-W", "1", "-c", fmt.Sprint(count), dst)
		m := regexp.MustCompile(`(\d+) received`).FindStringSubmatch(out)
		if m == nil {
			res <- fmt.Sprintf("? (%v: %s)", err, out)
			return
		}
		res <- m[1]
	}()
	return res
}

func TestOVSKill9AndRestart(t *testing.T) {
	e := newEnv(t)
	e.pingAll(t)
	before := e.checkFlows(t)

	loss := pingRun(e.vms[0], e.vms[1].IP, 80) // 4 s at 20/s
	time.Sleep(500 * time.Millisecond)
	e.loomd.kill9()
	// While loomd is down: a stale flow appears that nobody owns.
	if _, err := e.host.Ofctl("add-flow", "br-int", "table=7,priority=5,actions=drop"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	l2 := startLoomd(t, e.sock, e.data)
	ready := l2.waitLog(`msg="switch ready"`, 1, 15*time.Second)
	t.Logf("restart: switch connect -> flows confirmed: %s", field(ready[0], "since_connect"))
	if got := <-loss; got != "80" {
		t.Errorf("pings through kill -9 and restart: %s of 80 received", got)
	}
	rec := l2.waitLog(`msg=reconciled`, 1, 5*time.Second)[0]
	if field(rec, "adds") != "0" || field(rec, "modifies") != "0" || field(rec, "deletes") != "1" {
		t.Errorf("restart reconcile should only delete the stale flow: %s", rec)
	}
	after := e.checkFlows(t)
	if strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("flows changed across the restart:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	e.pingAll(t)
}

func TestOVSSwitchReconnect(t *testing.T) {
	e := newEnv(t)
	e.pingAll(t)
	before := e.checkFlows(t)

	// A new controller target (same loomd through another path): OVS
	// reconnects and keeps its flows; loomd changes nothing.
	alt := filepath.Join(e.lab.Dir, "ctl-alt.sock")
	if err := os.Symlink(e.sock, alt); err != nil {
		t.Fatal(err)
	}
	loss := pingRun(e.vms[0], e.vms[2].IP, 60)
	if err := e.host.SetController("unix:" + alt); err != nil {
		t.Fatal(err)
	}
	e.loomd.waitLog(`msg="switch ready"`, 2, 15*time.Second)
	if got := <-loss; got != "60" {
		t.Errorf("pings through a reconnect: %s of 60 received", got)
	}
	if after := e.checkFlows(t); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("flows changed across a reconnect:\n%s", strings.Join(after, "\n"))
	}

	// del-controller flushes the switch (an OVS rule); set-controller
	// brings loomd back, which restores the pipeline, and hosts relearn.
	if err := e.host.DelController(); err != nil {
		t.Fatal(err)
	}
	if err := e.host.SetController("unix:" + e.sock); err != nil {
		t.Fatal(err)
	}
	e.loomd.waitLog(`msg="switch ready"`, 3, 15*time.Second)
	e.pingAll(t)
	e.checkFlows(t)
}

func TestOVSGarbageClientsDoNotDisturbTheSwitch(t *testing.T) {
	e := newEnv(t)
	e.pingAll(t)
	for _, g := range []string{
		"\x17\x03\x01\x00\x20random bytes, not OpenFlow at all.....",
		"\x04\x00\x00\x10\x00\x00\x00\x01\x00\x09\x00\x08\xde\xad\xbe\xef", // HELLO with an unknown element
		"\x04\x00\x00\x04\x00\x00\x00\x01",                                 // length 4
		"\x04\x00\x00\x08\x00\x00\x00\x01\x04\x06\x00\x08\x00\x00\x00\x02", // HELLO, then a truncated FEATURES_REPLY
	} {
		c, err := net.Dial("unix", e.sock)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(g))
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		c.Read(make([]byte, 64))
		c.Close()
	}
	// The real switch keeps its session: a new VM is learned through
	// packet-ins and everyone reaches it.
	vm4 := e.host.AddVM("vm4", "02:00:00:00:00:04", "10.0.0.4/24")
	e.vms = append(e.vms, vm4)
	e.pingAll(t)
	if n := len(e.loomd.grep(regexp.MustCompile(`msg="switch disconnected"`))); n != 0 {
		t.Errorf("the real switch was disconnected %d times", n)
	}
	e.checkFlows(t)
}
