package ovslab

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// TunnelPort is the OpenFlow port number of br-int's VXLAN port "vxlan0",
// which exists on hosts with an underlay (HostOptions.UnderlayIP). It has
// options remote_ip=flow and key=flow: flows set tun_dst and tun_id.
const TunnelPort = 1000

// underlayMTU leaves room for the 50-byte VXLAN header, so VMs keep 1500.
const underlayMTU = "1600"

// HostOptions configures a host.
type HostOptions struct {
	// Controllers are the OVS controller targets of br-int, each with
	// max_backoff=1000. See the package documentation for "unix:" and
	// "tcp:" targets; other targets are passed to OVS unchanged.
	Controllers []string
	// DPID is br-int's datapath ID. Zero means the host's 1-based index in
	// the lab.
	DPID uint64
	// UnderlayIP, as "IP" (/24 implied) or "IP/LEN", gives the host a
	// VXLAN underlay: bridge br-phy holds the address and is plugged into
	// the lab's underlay segment (a Linux bridge shared by all underlay
	// hosts), and br-int gets port vxlan0 (TunnelPort) with local_ip=IP.
	UnderlayIP string
	// NoBridge leaves the database without br-int (and without vxlan0 and
	// controllers): for tests of agents that create the bridge themselves.
	// br-phy is still created when UnderlayIP is set. AddVM needs br-int.
	NoBridge bool
}

// A Host is a simulated hypervisor: ovsdb-server and ovs-vswitchd running in
// their own network namespace, with bridge br-int.
type Host struct {
	Name string
	NS   string // network namespace running the daemons
	// Dir is the run directory: db.sock, br-int.mgmt, ovs-vswitchd.ctl,
	// logs and pidfiles.
	Dir        string
	DPID       uint64 // br-int's datapath ID
	UnderlayIP string // underlay address without length, "" if none

	lab      *Lab
	index    int               // 1-based position in the lab
	underlay netip.Prefix      // br-phy address, if any
	ctlIP    string            // root side of the controller link, once made
	symlinks map[string]string // unix controller socket -> symlink in Dir
}

// AddHost starts a host. It fails the test if anything goes wrong.
func (l *Lab) AddHost(name string, opts HostOptions) *Host {
	l.t.Helper()
	h, err := l.addHost(name, opts)
	if err != nil {
		l.t.Fatalf("ovslab: AddHost %s: %v", name, err)
	}
	return h
}

func (l *Lab) addHost(name string, opts HostOptions) (*Host, error) {
	if err := l.claimName(name); err != nil {
		return nil, err
	}
	h := &Host{
		Name:     name,
		NS:       l.Prefix + "-" + name,
		Dir:      filepath.Join(l.Dir, name),
		DPID:     opts.DPID,
		lab:      l,
		index:    len(l.hosts) + 1,
		symlinks: map[string]string{},
	}
	if h.DPID == 0 {
		h.DPID = uint64(h.index)
	}
	if opts.UnderlayIP != "" {
		var err error
		if h.underlay, err = parseUnderlay(opts.UnderlayIP); err != nil {
			return nil, err
		}
		h.UnderlayIP = h.underlay.Addr().String()
	}
	if err := os.Mkdir(h.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := l.addNetns(h.NS); err != nil {
		return nil, err
	}
	l.hosts = append(l.hosts, h) // from here on, teardown stops its daemons

	db := h.path("conf.db")
	if _, err := run("ovsdb-tool", "create", db, schemaPath); err != nil {
		return nil, err
	}
	if err := h.startDaemon("ovsdb-server", db, "--remote=punix:"+h.path("db.sock")); err != nil {
		return nil, err
	}
	if _, err := h.Vsctl("--no-wait", "init"); err != nil {
		return nil, err
	}
	if err := h.startDaemon("ovs-vswitchd", "unix:"+h.path("db.sock")); err != nil {
		return nil, err
	}

	if opts.NoBridge {
		if len(opts.Controllers) > 0 {
			return nil, fmt.Errorf("HostOptions.Controllers needs br-int (NoBridge is set)")
		}
		if h.UnderlayIP != "" {
			if _, err := h.Vsctl("add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
				"other-config:hwaddr="+underlayMAC(h.underlay.Addr())); err != nil {
				return nil, err
			}
			if err := l.attachUnderlay(h); err != nil {
				return nil, err
			}
		}
		return h, nil
	}

	// One transaction: the bridge exists with its controllers from the
	// start (going from 0 to 1 controller later would flush its flows).
	args := []string{"add-br", "br-int", "--", "set", "bridge", "br-int",
		"datapath_type=netdev", "protocols=OpenFlow13", "fail_mode=secure",
		fmt.Sprintf("other-config:datapath-id=%016x", h.DPID),
		"other-config:disable-in-band=true"}
	if h.UnderlayIP != "" {
		args = append(args,
			"--", "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
			"other-config:hwaddr="+underlayMAC(h.underlay.Addr()),
			"--", "add-port", "br-int", "vxlan0", "--", "set", "interface", "vxlan0", "type=vxlan",
			"ofport_request="+strconv.Itoa(TunnelPort), "options:remote_ip=flow",
			"options:key=flow", "options:local_ip="+h.UnderlayIP)
	}
	ctl, err := h.controllerArgs(opts.Controllers)
	if err != nil {
		return nil, err
	}
	if _, err := h.Vsctl(append(args, ctl...)...); err != nil {
		return nil, err
	}
	if h.UnderlayIP != "" {
		if err := l.attachUnderlay(h); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// path returns the path of file in the host's run directory.
func (h *Host) path(file string) string {
	return filepath.Join(h.Dir, file)
}

// startDaemon starts an OVS daemon in the host's namespace with --detach, so
// it returns once the daemon is ready. Its files go to the run directory.
func (h *Host) startDaemon(name string, args ...string) error {
	stderr, err := os.Create(h.path(name + ".stderr"))
	if err != nil {
		return err
	}
	defer stderr.Close()
	argv := append([]string{"ip", "netns", "exec", h.NS, name}, args...)
	argv = append(argv,
		"--pidfile="+h.path(name+".pid"), "--unixctl="+h.path(name+".ctl"),
		"--log-file="+h.path(name+".log"), "-vconsole:err", "--detach")
	_, err = runWith(execOpts{
		env:    []string{"OVS_RUNDIR=" + h.Dir, "OVS_LOGDIR=" + h.Dir, "OVS_DBDIR=" + h.Dir},
		output: stderr,
	}, argv...)
	return err
}

// KillDB kills the host's ovsdb-server with SIGKILL and waits until it has
// exited. ovs-vswitchd keeps running (and keeps its datapath) and reconnects
// once StartDB has started the server again.
func (h *Host) KillDB() error {
	pid := h.daemonPID("ovsdb-server")
	if pid == 0 {
		return fmt.Errorf("ovslab: %s: ovsdb-server is not running", h.Name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	if !waitExit(pid, 5*time.Second) {
		return fmt.Errorf("ovslab: %s: ovsdb-server (pid %d) did not exit", h.Name, pid)
	}
	return nil
}

// StartDB starts the host's ovsdb-server again on the same database file
// and socket, after KillDB.
func (h *Host) StartDB() error {
	if h.daemonPID("ovsdb-server") != 0 {
		return fmt.Errorf("ovslab: %s: ovsdb-server is already running", h.Name)
	}
	// A killed server leaves its socket and pidfile behind.
	for _, f := range []string{"db.sock", "ovsdb-server.pid"} {
		if err := os.Remove(h.path(f)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return h.startDaemon("ovsdb-server", h.path("conf.db"), "--remote=punix:"+h.path("db.sock"))
}

// stop terminates the host's daemons and waits until they have exited. It
// may run concurrently with the stop of other hosts.
func (h *Host) stop() {
	var pids []int
	for _, name := range []string{"ovs-vswitchd", "ovsdb-server"} {
		if pid := h.daemonPID(name); pid > 0 && syscall.Kill(pid, syscall.SIGTERM) == nil {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		if !waitExit(pid, 5*time.Second) {
			syscall.Kill(pid, syscall.SIGKILL)
			waitExit(pid, 2*time.Second)
		}
	}
}

// daemonPID returns the pid in the daemon's pidfile if that process is still
// this host's daemon, and 0 otherwise.
func (h *Host) daemonPID(name string) int {
	b, err := os.ReadFile(h.path(name + ".pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), h.Dir+"/") {
		return 0
	}
	return pid
}

// waitExit waits up to d for process pid to exit and reports whether it did.
// A zombie counts as exited: a detached daemon is reaped by init, which in
// some containers takes a second or two.
func waitExit(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		// The state follows the parenthesized command name.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i:]), ") Z") {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// Vsctl runs ovs-vsctl against the host's database.
func (h *Host) Vsctl(args ...string) (string, error) {
	return run(append([]string{"ovs-vsctl", "--timeout=10", "--db=unix:" + h.path("db.sock")}, args...)...)
}

// Ofctl runs "ovs-ofctl -O OpenFlow13 ARGS...". The switch argument is
// spelled as usual, "br-int", for example Ofctl("dump-ports-desc", "br-int").
func (h *Host) Ofctl(args ...string) (string, error) {
	return h.ofctl("", args...)
}

// ofctl runs ovs-ofctl with stdin, resolving bridge names in the host's run
// directory.
func (h *Host) ofctl(stdin string, args ...string) (string, error) {
	argv := append([]string{"ovs-ofctl", "-O", "OpenFlow13"}, args...)
	return runWith(execOpts{env: []string{"OVS_RUNDIR=" + h.Dir}, stdin: stdin}, argv...)
}

// Appctl runs ovs-appctl against the host's ovs-vswitchd.
func (h *Host) Appctl(args ...string) (string, error) {
	return run(append([]string{"ovs-appctl", "--timeout=10", "-t", h.path("ovs-vswitchd.ctl")}, args...)...)
}

// AddFlows adds flows, in ovs-ofctl syntax, to br-int in one ovs-ofctl call.
func (h *Host) AddFlows(flows ...string) error {
	_, err := h.ofctl(strings.Join(flows, "\n")+"\n", "add-flows", "br-int", "-")
	return err
}

// tableRE and priorityRE extract what DumpFlows sorts by.
var (
	tableRE    = regexp.MustCompile(`\btable=(\d+)`)
	priorityRE = regexp.MustCompile(`\bpriority=(\d+)`)
)

// DumpFlows returns br-int's flows for comparison in tests: one string per
// flow as `ovs-ofctl --no-names --no-stats dump-flows` prints it (port
// numbers; no duration, counters or ages; no cookie or table when 0),
// which is what flow.Flow.String prints for the same flow, sorted by
// table, then by descending priority, then as text. For example:
//
//	cookie=0x2a, table=1, priority=100,dl_dst=02:00:00:00:01:02 actions=output:2
func (h *Host) DumpFlows() ([]string, error) {
	out, err := h.Ofctl("--no-names", "--no-stats", "dump-flows", "br-int")
	if err != nil {
		return nil, err
	}
	var flows []string
	for line := range strings.Lines(out) {
		// Each flow is indented by a space; anything else (a reply's
		// header) is not a flow.
		if strings.HasPrefix(line, " ") && strings.TrimSpace(line) != "" {
			flows = append(flows, strings.TrimSpace(line))
		}
	}
	slices.SortFunc(flows, func(a, b string) int {
		if c := flowField(tableRE, a, 0) - flowField(tableRE, b, 0); c != 0 {
			return c
		}
		if c := flowField(priorityRE, b, 32768) - flowField(priorityRE, a, 32768); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return flows, nil
}

// flowField returns the number matched by re in flow, or def.
func flowField(re *regexp.Regexp, flow string, def int) int {
	if m := re.FindStringSubmatch(flow); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return def
}

// SetController replaces br-int's controllers with targets (see
// HostOptions.Controllers); no targets means DelController. Beware: OVS
// flushes all flows of a bridge whose controller set becomes non-empty or
// empty; replacing one non-empty set with another keeps them.
//
// OVS applies max_backoff only once a target has connected: until then it
// retries after 1, 2, 4, 8, 8... seconds, so start the controller first.
func (h *Host) SetController(targets ...string) error {
	if len(targets) == 0 {
		return h.DelController()
	}
	args, err := h.controllerArgs(targets)
	if err != nil {
		return err
	}
	_, err = h.Vsctl(args[1:]...) // drop the leading "--"
	return err
}

// DelController removes br-int's controllers, which flushes its flows.
func (h *Host) DelController() error {
	_, err := h.Vsctl("del-controller", "br-int")
	return err
}

// controllerArgs returns ovs-vsctl commands, each starting with "--", that
// make targets the controllers of br-int.
func (h *Host) controllerArgs(targets []string) ([]string, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	var args, ids []string
	for i, target := range targets {
		target, err := h.resolveTarget(target)
		if err != nil {
			return nil, err
		}
		id := "@c" + strconv.Itoa(i)
		args = append(args, "--", "--id="+id, "create", "controller",
			"target="+strconv.Quote(target), "max_backoff=1000")
		ids = append(ids, id)
	}
	return append(args, "--", "set", "bridge", "br-int", "controller=["+strings.Join(ids, ",")+"]"), nil
}

// resolveTarget turns a controller target into one vswitchd accepts and can
// reach from the host's namespace.
func (h *Host) resolveTarget(target string) (string, error) {
	kind, rest, _ := strings.Cut(target, ":")
	switch kind {
	case "unix":
		// vswitchd only connects to sockets in its run directory (it
		// checks the text, so a symlink to a socket elsewhere is fine).
		if !filepath.IsAbs(rest) {
			return "", fmt.Errorf("controller %q: socket path must be absolute", target)
		}
		if filepath.Dir(filepath.Clean(rest)) == h.Dir {
			return target, nil
		}
		link, ok := h.symlinks[rest]
		if !ok {
			link = h.path(fmt.Sprintf("ctl%d.sock", len(h.symlinks)))
			if err := os.Symlink(rest, link); err != nil {
				return "", err
			}
			h.symlinks[rest] = link
		}
		return "unix:" + link, nil
	case "tcp":
		ip, err := h.controllerLink()
		if err != nil {
			return "", err
		}
		if addr, port, _ := strings.Cut(rest, ":"); addr == "auto" {
			return "tcp:" + ip + ":" + port, nil
		}
	}
	return target, nil
}

// controllerLink connects the host's namespace to the root namespace, once,
// with a veth pair (PREFIX-cN in the root namespace, ctl0 in the host's) on a
// free /30 of 172.31.128.0/17, and routes everything else through it. It
// returns the root-side address.
func (h *Host) controllerLink() (string, error) {
	if h.ctlIP != "" {
		return h.ctlIP, nil
	}
	// Serialize the search for a free subnet with other labs, also in other
	// processes, by locking a directory that every lab uses anyway.
	dir, err := os.Open("/run/netns")
	if err != nil {
		return "", err
	}
	defer dir.Close() // releases the lock
	if err := syscall.Flock(int(dir.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	rootIP, nsIP, err := freeSubnet()
	if err != nil {
		return "", err
	}
	link := fmt.Sprintf("%s-c%d", h.lab.Prefix, h.index)
	if _, err := run("ip", "link", "add", "name", link, "type", "veth", "peer", "name", "ctl0", "netns", h.NS); err != nil {
		return "", err
	}
	h.lab.links = append(h.lab.links, link)
	// Best effort: keep IPv6 neighbour discovery off the link.
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+link+"/disable_ipv6", []byte("1"), 0o644)
	if err := runAll(
		[]string{"ip", "addr", "add", rootIP + "/30", "dev", link},
		[]string{"ip", "link", "set", "dev", link, "up"},
		[]string{"ip", "-n", h.NS, "addr", "add", nsIP + "/30", "dev", "ctl0"},
		[]string{"ip", "-n", h.NS, "link", "set", "dev", "ctl0", "up"},
		[]string{"ip", "-n", h.NS, "route", "add", "default", "via", rootIP},
	); err != nil {
		return "", err
	}
	h.ctlIP = rootIP
	return rootIP, nil
}

// freeSubnet returns the first and second address of the first /30 in
// 172.31.128.0/17 that has no address in the root namespace. (examples/lab
// uses 172.31.N.0/30 with N < 128.)
func freeSubnet() (string, string, error) {
	out, err := run("ip", "-4", "-o", "addr", "show")
	if err != nil {
		return "", "", err
	}
	used := map[uint32]bool{}
	fields := strings.Fields(out)
	for i, f := range fields {
		if f != "inet" || i+1 == len(fields) {
			continue
		}
		if p, err := netip.ParsePrefix(fields[i+1]); err == nil && p.Addr().Is4() {
			a := p.Addr().As4()
			used[binary.BigEndian.Uint32(a[:])&^3] = true
		}
	}
	for n := uint32(172<<24 | 31<<16 | 128<<8); n < 172<<24|32<<16; n += 4 {
		if !used[n] {
			return ipv4(n + 1), ipv4(n + 2), nil
		}
	}
	return "", "", fmt.Errorf("no free /30 in 172.31.128.0/17")
}

// ipv4 formats n as a dotted quad.
func ipv4(n uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return netip.AddrFrom4(b).String()
}

// WaitConnected waits until OVSDB reports all of br-int's controllers as
// connected.
//
// vswitchd copies the connection state into OVSDB only with its statistics,
// at most every 5 s, but refreshes them at once when
// other_config:stats-update-interval changes. So each poll flips that
// setting between 5000 and 5001 ms, and the state read lags by one poll
// (100 ms) instead of up to 5 s.
func (h *Host) WaitConnected(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		out, err := h.Vsctl("--bare", "--columns=is_connected", "list", "controller",
			"--", "set", "open_vswitch", ".", fmt.Sprintf("other_config:stats-update-interval=%d", 5000+i%2))
		states := strings.Fields(out)
		if err == nil && len(states) > 0 && !slices.Contains(states, "false") {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("is_connected: %v", states)
			}
			return fmt.Errorf("ovslab: %s: controllers not connected after %v: %w", h.Name, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// parseUnderlay parses HostOptions.UnderlayIP.
func parseUnderlay(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		s += "/24"
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("underlay address %q: want IPv4 IP or IP/LEN", s)
	}
	return p, nil
}

// underlayMAC returns br-phy's MAC: 02:00 followed by the underlay address,
// so that other hosts can seed their tunnel neighbour cache.
func underlayMAC(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

// attachUnderlay plugs h's br-phy into the lab's underlay segment (Linux
// bridge ul-br in namespace PREFIX-ul), gives br-phy its address and seeds
// the tunnel neighbour caches of h and the other underlay hosts, so the
// first tunnelled packet is not dropped while OVS ARPs for the remote VTEP.
func (l *Lab) attachUnderlay(h *Host) error {
	ul := l.Prefix + "-ul"
	if !l.underlay {
		if err := l.addNetns(ul); err != nil {
			return err
		}
		if err := runAll(
			[]string{"ip", "-n", ul, "link", "add", "name", "ul-br", "mtu", underlayMTU, "type", "bridge"},
			[]string{"ip", "-n", ul, "link", "set", "dev", "ul-br", "up"},
		); err != nil {
			return err
		}
		l.underlay = true
	}
	if err := runAll(
		[]string{"ip", "-n", h.NS, "link", "add", "name", "ul0", "mtu", underlayMTU, "type", "veth",
			"peer", "name", h.Name, "mtu", underlayMTU, "netns", ul},
		[]string{"ip", "-n", ul, "link", "set", "dev", h.Name, "master", "ul-br", "up"},
		[]string{"ip", "-n", h.NS, "link", "set", "dev", "ul0", "up"},
	); err != nil {
		return err
	}
	if _, err := h.Vsctl("add-port", "br-phy", "ul0"); err != nil {
		return err
	}
	if err := runAll(
		[]string{"ip", "-n", h.NS, "link", "set", "dev", "br-phy", "mtu", underlayMTU, "up"},
		[]string{"ip", "-n", h.NS, "addr", "add", h.underlay.String(), "dev", "br-phy"},
	); err != nil {
		return err
	}
	for _, o := range l.hosts {
		if o == h || o.UnderlayIP == "" {
			continue
		}
		for _, pair := range [][2]*Host{{h, o}, {o, h}} {
			if _, err := pair[0].Appctl("tnl/neigh/set", "br-phy", pair[1].UnderlayIP, underlayMAC(pair[1].underlay.Addr())); err != nil {
				return err
			}
		}
	}
	return nil
}

// CrashOVS kills the host's ovs-vswitchd and ovsdb-server with SIGKILL and
// starts them again on the same database, as after a crash or an upgrade:
// the datapath and its flows are gone, the configuration is not. Like the
// host's boot scripts would, it then gives br-phy its underlay address
// again and re-seeds the tunnel neighbour caches.
func (h *Host) CrashOVS() error {
	for _, name := range []string{"ovs-vswitchd", "ovsdb-server"} {
		if pid := h.daemonPID(name); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
			if !waitExit(pid, 5*time.Second) {
				return fmt.Errorf("ovslab: %s: %s (pid %d) did not exit", h.Name, name, pid)
			}
		}
	}
	for _, f := range []string{"db.sock", "ovsdb-server.pid", "ovs-vswitchd.pid"} {
		if err := os.Remove(h.path(f)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := h.startDaemon("ovsdb-server", h.path("conf.db"), "--remote=punix:"+h.path("db.sock")); err != nil {
		return err
	}
	if err := h.startDaemon("ovs-vswitchd", "unix:"+h.path("db.sock")); err != nil {
		return err
	}
	if h.UnderlayIP == "" {
		return nil
	}
	if err := runAll(
		[]string{"ip", "-n", h.NS, "link", "set", "dev", "br-phy", "mtu", underlayMTU, "up"},
		[]string{"ip", "-n", h.NS, "addr", "replace", h.underlay.String(), "dev", "br-phy"},
	); err != nil {
		return err
	}
	for _, o := range h.lab.hosts {
		if o != h && o.UnderlayIP != "" {
			if _, err := h.Appctl("tnl/neigh/set", "br-phy", o.UnderlayIP, underlayMAC(o.underlay.Addr())); err != nil {
				return err
			}
		}
	}
	return nil
}
