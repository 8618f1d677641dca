// Package ovslab builds throw-away Open vSwitch labs for integration tests.
//
// A Lab simulates hypervisors and virtual machines on one Linux machine,
// using the userspace (netdev) datapath, so no openvswitch kernel module is
// needed:
//
//   - every Host runs its own ovsdb-server and ovs-vswitchd inside its own
//     network namespace, with all sockets, logs and pidfiles in the host's
//     run directory, and has one bridge br-int (datapath_type=netdev,
//     protocols=OpenFlow13, fail_mode=secure, in-band control disabled);
//   - every VM is a network namespace whose eth0 is one end of a veth pair;
//     the other end is the br-int port named after the VM.
//
// Each lab gets a random short prefix (for example "l3f9a") that starts the
// names of all its network namespaces and root-namespace links, and its own
// temporary directory, so the labs of parallel tests and of different test
// binaries never collide. New registers a cleanup that stops the daemons of
// all hosts in parallel and removes every namespace, link and file of the lab.
//
// Controllers are given as OVS targets (see HostOptions.Controllers):
//
//   - "unix:/abs/path.sock": vswitchd refuses unix targets outside its run
//     directory, so the lab symlinks the path into the host's run directory
//     and points the bridge at the symlink. One listener (for example on
//     Lab.UnixControllerPath) can therefore serve every host.
//   - "tcp:IP:PORT" or "tcp:auto:PORT": the host namespace gets a veth link
//     to the root namespace (and a default route through it); "auto" stands
//     for the root-side address of that link. A controller listening on
//     0.0.0.0:PORT in the test process is then reachable; 127.0.0.1 is not,
//     because every namespace has its own loopback.
//
// Tests call Require first. The package needs root, Open vSwitch
// (ovs-vswitchd, ovsdb-server, ovsdb-tool, ovs-vsctl, ovs-ofctl, ovs-appctl),
// iproute2, iputils-ping, ethtool and /dev/net/tun. On Debian:
//
//	apt-get install -y openvswitch-switch iproute2 iputils-ping ethtool
//
// Except where noted, Lab, Host and VM methods must be called from the
// goroutine running the test, one at a time.
//
// If a test binary is killed (for example by go test -timeout), cleanups do
// not run and the lab's daemons keep running in their namespaces. They are
// found by their run directory, /tmp/ovslab-PREFIX-*, which holds their
// pidfiles; their namespaces are the ones named PREFIX-*.
package ovslab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/testenv"
)

// schemaPath is the OVSDB schema of Debian's openvswitch-common.
const schemaPath = "/usr/share/openvswitch/vswitch.ovsschema"

// cmdTimeout bounds every command the package runs, unless noted.
const cmdTimeout = 30 * time.Second

// requiredTools are the programs a lab runs.
var requiredTools = []string{
	"ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl",
	"ovs-appctl", "ip", "ping", "ethtool",
}

// Require skips the test unless it runs as root on a machine with everything
// a lab needs. If the environment variable LOOM_REQUIRE_OVS is "1", it fails
// the test instead of skipping it, so CI cannot silently skip OVS tests.
func Require(t testing.TB) {
	t.Helper()
	var problems, missing []string
	if os.Geteuid() != 0 {
		problems = append(problems, "not running as root")
	}
	for _, tool := range requiredTools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	for _, f := range []string{schemaPath, "/dev/net/tun"} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, "missing "+strings.Join(missing, ", ")+
			" (Debian: apt-get install -y openvswitch-switch iproute2 iputils-ping ethtool)")
	}
	if len(problems) > 0 {
		skipOrFail(t, "ovslab: "+strings.Join(problems, "; "))
	}
}

// skipOrFail skips the test with msg, or fails it if LOOM_REQUIRE_OVS=1.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	testenv.SkipOrFail(t, msg)
}

// A Lab is a set of simulated hosts and VMs that is torn down when its test
// ends.
type Lab struct {
	// Prefix starts the name of every network namespace ("PREFIX-NAME")
	// and root-namespace link of the lab.
	Prefix string
	// Dir is the lab's temporary directory. Each host's run directory is
	// Dir/HOSTNAME.
	Dir string

	t        testing.TB
	hosts    []*Host
	names    map[string]bool // host and VM names in use
	netns    []string        // namespaces to delete, in creation order
	links    []string        // root-namespace links to delete
	underlay bool            // whether the underlay namespace exists
	physical bool            // whether the physical segment's namespace exists
}

// New creates an empty lab and registers its teardown with t.Cleanup. If the
// test failed, the teardown first logs the tail of each host's vswitchd log.
func New(t testing.TB) *Lab {
	t.Helper()
	l := &Lab{t: t, names: map[string]bool{}}
	var err error
	if l.Prefix, err = newPrefix(); err != nil {
		t.Fatalf("ovslab: %v", err)
	}
	// A short directory keeps socket paths far below the 108-byte limit.
	if l.Dir, err = os.MkdirTemp("", "ovslab-"+l.Prefix+"-"); err != nil {
		t.Fatalf("ovslab: %v", err)
	}
	t.Cleanup(l.teardown)
	return l
}

// newPrefix returns "l" and 4 random hex digits, not yet used by any network
// namespace.
func newPrefix() (string, error) {
	for range 10 {
		b := make([]byte, 2)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		p := "l" + hex.EncodeToString(b)
		if m, _ := filepath.Glob("/run/netns/" + p + "-*"); len(m) == 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("no free lab prefix")
}

// UnixControllerPath returns a socket path inside the lab directory for a
// controller to listen on; pass "unix:"+path in HostOptions.Controllers.
func (l *Lab) UnixControllerPath() string {
	return filepath.Join(l.Dir, "ctl.sock")
}

// teardown stops all daemons (hosts in parallel), then deletes the lab's
// links, namespaces and directory.
func (l *Lab) teardown() {
	if l.t.Failed() {
		for _, h := range l.hosts {
			l.t.Logf("ovslab: tail of %s's vswitchd log:\n%s", h.Name, tail(h.path("ovs-vswitchd.log"), 40))
		}
	}
	var wg sync.WaitGroup
	for _, h := range l.hosts {
		wg.Go(h.stop)
	}
	wg.Wait()
	for _, link := range l.links {
		if _, err := run("ip", "link", "del", "dev", link); err != nil {
			l.t.Errorf("ovslab teardown: %v", err)
		}
	}
	for _, ns := range l.netns {
		if _, err := run("ip", "netns", "del", ns); err != nil {
			l.t.Errorf("ovslab teardown: %v", err)
		}
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		l.t.Errorf("ovslab teardown: %v", err)
	}
}

// tail returns the last n lines of file, or a note saying why it cannot.
func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// nameRE limits names so that "PREFIX-NAME" fits the 15 bytes allowed for
// interface names.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,8}$`)

// reservedNames are the underlay namespace's suffix and the interfaces the
// lab creates in a host namespace.
var reservedNames = map[string]bool{
	"ul": true, "phys": true, "lo": true, "ctl0": true, "ul0": true,
	"br-int": true, "br-phy": true, "vxlan0": true,
}

// claimName reserves a host or VM name in the lab.
func (l *Lab) claimName(name string) error {
	if !nameRE.MatchString(name) || reservedNames[name] {
		return fmt.Errorf("invalid name %q: want 1-9 letters, digits, '-' or '_', and none of ul, lo, ctl0, ul0, br-int, br-phy, vxlan0", name)
	}
	if l.names[name] {
		return fmt.Errorf("name %q is already used in this lab", name)
	}
	l.names[name] = true
	return nil
}

// addNetns creates network namespace ns, records it for teardown, brings its
// loopback up and turns IPv6 off in it (no ND/MLD noise in the bridges).
func (l *Lab) addNetns(ns string) error {
	if _, err := run("ip", "netns", "add", ns); err != nil {
		return err
	}
	l.netns = append(l.netns, ns)
	_, err := run("ip", "netns", "exec", ns, "sh", "-ec", `ip link set lo up
		if [ -d /proc/sys/net/ipv6 ]; then
			echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6
			echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6
		fi`)
	return err
}

// delNetns deletes a namespace created by addNetns.
func (l *Lab) delNetns(ns string) error {
	if _, err := run("ip", "netns", "del", ns); err != nil {
		return err
	}
	for i, n := range l.netns {
		if n == ns {
			l.netns = append(l.netns[:i], l.netns[i+1:]...)
			break
		}
	}
	return nil
}

// execOpts tunes runWith.
type execOpts struct {
	timeout time.Duration // 0 means cmdTimeout
	env     []string      // added to the environment
	stdin   string
	// output, if set, receives stdout and stderr instead of the returned
	// string. Daemons need it: after --detach they keep their stderr open.
	output *os.File
}

// run runs argv with the default options and returns its combined output.
func run(argv ...string) (string, error) {
	return runWith(execOpts{}, argv...)
}

// runWith runs argv and returns its combined output. The error includes the
// command line and its output.
func runWith(o execOpts, argv ...string) (string, error) {
	if o.timeout == 0 {
		o.timeout = cmdTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if o.env != nil {
		cmd.Env = append(os.Environ(), o.env...)
	}
	if o.stdin != "" {
		cmd.Stdin = strings.NewReader(o.stdin)
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if o.output != nil {
		cmd.Stdout, cmd.Stderr = o.output, o.output
	}
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	out := buf.String()
	if o.output != nil {
		b, _ := os.ReadFile(o.output.Name())
		out = string(b)
	}
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(out))
	}
	return out, nil
}

// runAll runs commands in order and stops at the first error.
func runAll(cmds ...[]string) error {
	for _, argv := range cmds {
		if _, err := run(argv...); err != nil {
			return err
		}
	}
	return nil
}
