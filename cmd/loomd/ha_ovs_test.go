package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/ovslab"
	"github.com/loom-sdn/loom/northbound/restapi"
	"github.com/loom-sdn/loom/store/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// haLab is three loomd replicas sharing an embedded three-member etcd,
// and two hypervisors whose bridges connect to all three replicas.
type haLab struct {
	t        *testing.T
	lab      *ovslab.Lab
	ids      []string
	replicas map[string]*loomd
	apis     map[string]string
	hosts    map[string]*ovslab.Host
	proxies  map[string]*etcdProxy
	etcd     []string
}

// etcdKeys lists the model's etcd keys (and the staging ones) that hold
// name, with their revisions: for a failure's diagnosis.
func (h *haLab) etcdKeys(t *testing.T, name string) string {
	cli, err := clientv3.New(clientv3.Config{Endpoints: h.etcd, DialTimeout: 2 * time.Second})
	if err != nil {
		return err.Error()
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/loom/v1/", clientv3.WithPrefix())
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, kv := range resp.Kvs {
		if strings.Contains(string(kv.Value), `"`+name+`"`) {
			out = append(out, fmt.Sprintf("%s@%d", kv.Key, kv.ModRevision))
		}
	}
	head, _ := cli.Get(ctx, "/loom/v1/head")
	for _, kv := range head.Kvs {
		out = append(out, fmt.Sprintf("head=%s@%d", kv.Value, kv.ModRevision))
	}
	return strings.Join(out, " ")
}

func newHALab(t *testing.T) *haLab {
	ovslab.Require(t)
	etcd, err := etcdtest.Start(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	lab := ovslab.New(t)
	h := &haLab{t: t, lab: lab, ids: []string{"a", "b", "c"}, replicas: map[string]*loomd{}, apis: map[string]string{},
		hosts: map[string]*ovslab.Host{}, proxies: map[string]*etcdProxy{}, etcd: etcd.Endpoints}
	for _, id := range h.ids {
		api := freeAddr(t)
		sock := filepath.Join(lab.Dir, "ctl-"+id+".sock")
		// Each replica reaches etcd through a proxy of its own, which a
		// test can cut (a partition).
		p := newEtcdProxy(t, strings.TrimPrefix(etcd.Endpoints[0], "http://"))
		h.proxies[id] = p
		h.replicas[id] = startLoomd(t, sock, filepath.Join(lab.Dir, "data-"+id), "--api-listen", api, "--apps", "lldp,overlay",
			"--store", "etcd:http://"+p.addr(), "--replica-id", id, "--lease-ttl", "2s")
		h.apis[id] = api
	}
	for _, id := range h.ids {
		waitAPI(t, h.apis[id])
	}
	for i, name := range []string{"hv1", "hv2"} {
		host := lab.AddHost(name, ovslab.HostOptions{NoBridge: true, UnderlayIP: fmt.Sprintf("10.200.0.%d", i+1)})
		var targets []string
		for _, id := range h.ids {
			link := filepath.Join(host.Dir, "loom-"+id+".sock")
			if err := os.Symlink(filepath.Join(lab.Dir, "ctl-"+id+".sock"), link); err != nil {
				t.Fatal(err)
			}
			targets = append(targets, "unix:"+link)
		}
		// Registered through a different replica each.
		loomctl(t, h.apis[h.ids[i]], "create", "hosts", "name="+name, "ovsdb=unix:"+filepath.Join(host.Dir, "db.sock"),
			"controller="+strings.Join(targets, ","), "datapath_type=netdev", "vtep_ip="+host.UnderlayIP)
		h.hosts[name] = host
	}
	return h
}

// roles returns each replica's OpenFlow role on host's bridge, as OVS
// reports it (the Controller rows' role column), and how many are
// connected.
func (h *haLab) roles(host string) (map[string]string, int) {
	out, err := h.hosts[host].Vsctl("--columns=target,role,is_connected", "list", "controller")
	if err != nil {
		return nil, 0
	}
	roles, connected := map[string]string{}, 0
	for _, rec := range strings.Split(out, "\n\n") {
		var id, role string
		conn := false
		for _, line := range strings.Split(rec, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
			switch k {
			case "target":
				if m := regexp.MustCompile(`loom-([a-z]+)\.sock$`).FindStringSubmatch(v); m != nil {
					id = m[1]
				}
			case "role":
				role = v
			case "is_connected":
				conn = v == "true"
			}
		}
		if id != "" {
			roles[id] = role
			if conn {
				connected++
			}
		}
	}
	return roles, connected
}

// master returns host's master replica once exactly one of the
// connected replicas is master.
func (h *haLab) master(host string) string {
	roles, _ := h.roles(host)
	m := ""
	for id, r := range roles {
		if r == "master" {
			if m != "" {
				return ""
			}
			m = id
		}
	}
	return m
}

// TestOVSHAFailover: three loomd replicas on etcd, two hypervisors
// connected to all three. Each switch has one master (OVS says so); a
// VM on each host pings the other every 20 ms while the masters of both
// switches (one replica or two) are killed with SIGKILL: no ping is
// lost, another replica is master of each within 3 s, it rewrites no
// flow that was right, every write the replicas acknowledged across the
// kill is there, and a port created through a surviving replica during
// the failover gets its flows.
func TestOVSHAFailover(t *testing.T) {
	h := newHALab(t)
	api := h.apis["b"]
	loomctl(t, api, "create", "networks", "name=blue", "type=vxlan", "vni=5001")
	loomctl(t, h.apis["c"], "create", "subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	vms := map[string]*ovslab.VM{}
	for i, p := range []struct{ name, host string }{{"v1", "hv1"}, {"v2", "hv2"}} {
		mac, ip := fmt.Sprintf("02:00:00:00:01:%02x", i+1), fmt.Sprintf("10.1.0.%d", 11+i)
		loomctl(t, h.apis[h.ids[i]], "create", "ports", "name="+p.name, "network=blue", "mac="+mac, `ips=["`+ip+`"]`)
		vms[p.name] = h.hosts[p.host].AddVM(p.name, mac, ip+"/24")
	}
	for _, host := range []string{"hv1", "hv2"} {
		waitForD(t, 20*time.Second, host+": one master among three connected replicas", func() bool {
			_, connected := h.roles(host)
			return connected == 3 && h.master(host) != ""
		}, func() string { r, n := h.roles(host); return fmt.Sprintf("%v, %d connected", r, n) })
	}
	waitForD(t, 20*time.Second, "v1 pings v2", func() bool { return vms["v1"].Ping(vms["v2"].IP, 1, time.Second) == nil })
	// Every replica's API says the same of each switch: one master, named.
	waitForD(t, 10*time.Second, "the replicas' APIs agree on one master per switch", func() bool {
		masters := map[string]map[string]bool{} // dpid -> replicas saying "master"
		named := map[string]map[string]bool{}   // dpid -> master names given
		for _, id := range h.ids {
			var sws []restapi.Switch
			getJSON(t, h.apis[id], "/api/v1/switches", &sws)
			if len(sws) != 2 {
				return false
			}
			for _, sw := range sws {
				if masters[sw.DatapathID] == nil {
					masters[sw.DatapathID], named[sw.DatapathID] = map[string]bool{}, map[string]bool{}
				}
				if sw.Role == "master" {
					masters[sw.DatapathID][id] = true
				}
				named[sw.DatapathID][sw.Master] = true
			}
		}
		for d := range masters {
			if len(masters[d]) != 1 || len(named[d]) != 1 || named[d][""] {
				return false
			}
		}
		return len(masters) == 2
	})
	var cl restapi.Cluster
	getJSON(t, h.apis["a"], "/api/v1/cluster", &cl)
	mastered, managed := 0, 0
	for _, r := range cl.Replicas {
		mastered, managed = mastered+r.Masters, managed+r.Hosts
	}
	if cl.Self != "a" || len(cl.Replicas) != 3 || mastered != 2 || managed != 2 {
		t.Errorf("GET /cluster: %+v", cl)
	}
	// The masters of both switches (one replica, or two) are killed.
	victims := map[string]bool{h.master("hv1"): true, h.master("hv2"): true}
	roles1, _ := h.roles("hv1")
	roles2, _ := h.roles("hv2")
	t.Logf("masters before: hv1 %s %v, hv2 %s %v", h.master("hv1"), roles1, h.master("hv2"), roles2)
	flowsBefore := map[string][]string{}
	for _, host := range []string{"hv1", "hv2"} {
		flowsBefore[host], _ = h.hosts[host].DumpFlows()
	}

	// 20 ms pings across the kill: 400 of them (about 8 s), each waited
	// for (a deadline would count the one in flight at its end as lost).
	ping := exec.Command("ip", "netns", "exec", vms["v1"].NS, "ping", "-n", "-q", "-i", "0.02", "-c", "400", "-w", "20", vms["v2"].IP)
	var pingOut strings.Builder
	ping.Stdout, ping.Stderr = &pingOut, &pingOut
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	// Writes through every replica, round robin, every 25 ms, across the
	// kill: each acknowledged one must be there afterwards.
	stopWrites := make(chan struct{})
	acked := make(chan []string, 1)
	ackedBy := map[string]string{} // write -> replica that acknowledged it (read after acked)
	go func() {
		var ok []string
		for i := 0; ; i++ {
			select {
			case <-stopWrites:
				acked <- ok
				return
			case <-time.After(25 * time.Millisecond):
			}
			name := fmt.Sprintf("w%d", i)
			body := fmt.Sprintf(`{"name":%q,"type":"vxlan","vni":%d}`, name, 6000+i)
			client := http.Client{Timeout: 2 * time.Second}
			resp, err := client.Post("http://"+h.apis[h.ids[i%3]]+"/api/v1/networks", "application/json", strings.NewReader(body))
			if err == nil {
				if resp.StatusCode == http.StatusCreated {
					ok = append(ok, name)
					ackedBy[name] = h.ids[i%3]
				}
				resp.Body.Close()
			}
		}
	}()
	time.Sleep(time.Second)
	killed := time.Now()
	for id := range victims {
		h.replicas[id].kill9()
	}
	// A write through a surviving replica during the failover.
	var survivor string
	for _, id := range h.ids {
		if !victims[id] {
			survivor = id
			break
		}
	}
	loomctl(t, h.apis[survivor], "create", "ports", "name=v3", "network=blue", "mac=02:00:00:00:01:03", `ips=["10.1.0.13"]`)
	vms["v3"] = h.hosts["hv1"].AddVM("v3", "02:00:00:00:01:03", "10.1.0.13/24")
	// From the kill to each switch accepting its new master's
	// ROLE_REQUEST, as the new master logged it.
	var took time.Duration
	for _, host := range []string{"hv1", "hv2"} {
		var newMaster string
		waitForD(t, 10*time.Second, "a new master of "+host+"'s switch", func() bool {
			newMaster = h.master(host)
			return newMaster != "" && !victims[newMaster]
		})
		seen := time.Since(killed)
		accepted := loggedAt(t, h.replicas[newMaster], `msg="master role accepted"`, bridgeDPID(t, h.hosts[host]), killed)
		t.Logf("%v killed -> %s's MASTER request accepted by %s's switch %v later (OVS showed it after %v)",
			slices.Sorted(maps.Keys(victims)), newMaster, host, accepted.Sub(killed).Round(time.Millisecond), seen.Round(time.Millisecond))
		took = max(took, accepted.Sub(killed))
	}
	if took > 3*time.Second {
		t.Errorf("failover took %v, want within 3 s", took)
	}
	ping.Wait()
	close(stopWrites)
	writes := <-acked
	var nets struct{ Items []struct{ Name string } }
	getJSON(t, h.apis[survivor], "/api/v1/networks?limit=1000", &nets)
	have := map[string]bool{}
	for _, n := range nets.Items {
		have[n.Name] = true
	}
	missing := 0
	for _, w := range writes {
		if !have[w] {
			missing++
			// Where is it? Each survivor's model, and etcd itself.
			var where []string
			for _, id := range h.ids {
				if victims[id] {
					continue
				}
				resp, err := http.Get("http://" + h.apis[id] + "/api/v1/networks/" + w)
				if err == nil {
					where = append(where, fmt.Sprintf("%s: %s", id, resp.Status))
					resp.Body.Close()
				}
			}
			t.Logf("write %s (acknowledged by %s, killed: %v) missing from %s: %v; in etcd: %s", w, ackedBy[w], victims[ackedBy[w]],
				survivor, where, h.etcdKeys(t, w))
		}
	}
	t.Logf("writes through the three replicas across the failover: %d acknowledged, %d missing afterwards", len(writes), missing)
	if missing > 0 || len(writes) < 50 {
		t.Errorf("%d of %d acknowledged writes missing after the failover", missing, len(writes))
	}
	sent, recv := pingCounts(pingOut.String())
	t.Logf("pings across the failover: %d sent, %d received", sent, recv)
	if sent < 300 || recv != sent {
		t.Errorf("pings across the failover: %d sent, %d received\n%s", sent, recv, pingOut.String())
	}
	// The flows that were right were not rewritten: their durations go
	// back to before the kill.
	since := time.Since(killed).Seconds()
	for _, host := range []string{"hv1", "hv2"} {
		age := map[string]float64{}
		for _, f := range dumpWithDuration(t, h.hosts[host]) {
			age[f.text] = f.duration
		}
		rewritten := 0
		for _, f := range flowsBefore[host] {
			if d, ok := age[f]; ok && d < since-0.1 {
				rewritten++
			}
		}
		if rewritten > 0 {
			t.Errorf("%d of the %d flows %s had were written again after the failover", rewritten, len(flowsBefore[host]), host)
		}
	}
	// The survivors counted the elections.
	if m := metric(t, h.apis[survivor], `loom_cluster_role_changes_total{election="switch"}`); m < 1 {
		t.Errorf("%s counted %v switch role changes", survivor, m)
	}
	// The port created during the failover works.
	waitForD(t, 10*time.Second, "v3 (created during the failover) pings v2", func() bool {
		return vms["v3"].Ping(vms["v2"].IP, 1, time.Second) == nil
	})
}

// pingCounts reads "N packets transmitted, M received" from ping's summary.
func pingCounts(out string) (sent, recv int) {
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) (packets )?received`).FindStringSubmatch(out)
	if m == nil {
		return 0, 0
	}
	sent, _ = strconv.Atoi(m[1])
	recv, _ = strconv.Atoi(m[2])
	return sent, recv
}

type agedFlow struct {
	text     string
	duration float64
}

var (
	durationRE = regexp.MustCompile(`duration=([0-9.]+)s, `)
	// statsRE is what dump-flows prints and dump-flows --no-stats does not.
	statsRE = regexp.MustCompile(`^cookie=0x0, |\b(duration=[0-9.]+s|n_packets=\d+|n_bytes=\d+|idle_age=\d+|hard_age=\d+), |\btable=0, `)
)

// noStats is a dump-flows line as --no-stats prints it.
func noStats(line string) string { return statsRE.ReplaceAllString(strings.TrimSpace(line), "") }

// dumpWithDuration returns host's flows as DumpFlows prints them, each
// with its age.
func dumpWithDuration(t *testing.T, host *ovslab.Host) []agedFlow {
	t.Helper()
	out, err := host.Ofctl("--no-names", "dump-flows", "br-int")
	if err != nil {
		t.Fatal(err)
	}
	var flows []agedFlow
	for _, line := range strings.Split(out, "\n") {
		m := durationRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		d, _ := strconv.ParseFloat(m[1], 64)
		flows = append(flows, agedFlow{text: noStats(line), duration: d})
	}
	return flows
}

// loggedAt returns when, after since, the loomd l logged a line holding
// msg for dpid (its own log's time).
func loggedAt(t *testing.T, l *loomd, msg string, dpid uint64, since time.Time) time.Time {
	t.Helper()
	rx := regexp.MustCompile(regexp.QuoteMeta(msg) + `.* dpid=` + fmt.Sprintf("%016x", dpid))
	var at time.Time
	waitForD(t, 5*time.Second, l.log+" logging "+msg, func() bool {
		for _, line := range l.grep(rx) {
			if ts, err := time.Parse(time.RFC3339Nano, field(line, "time")); err == nil && ts.After(since) {
				at = ts
				return true
			}
		}
		return false
	})
	return at
}

// bridgeDPID reads host's br-int datapath id from OVSDB.
func bridgeDPID(t *testing.T, host *ovslab.Host) uint64 {
	t.Helper()
	out, _ := host.Vsctl("get", "bridge", "br-int", "datapath_id")
	dpid, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(out), `"`), 16, 64)
	if err != nil {
		t.Fatalf("%s's datapath id %q: %v", host.Name, out, err)
	}
	return dpid
}

// etcdProxy forwards TCP connections to an etcd member until cut: then
// it drops every connection and refuses new ones (a partition).
type etcdProxy struct {
	l     net.Listener
	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

func newEtcdProxy(t *testing.T, target string) *etcdProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &etcdProxy{l: l, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { l.Close(); p.partition() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns[c], p.conns[u] = true, true
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *etcdProxy) addr() string { return p.l.Addr().String() }

// partition cuts the replica from etcd until heal.
func (p *etcdProxy) partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *etcdProxy) heal() { p.mu.Lock(); p.cut = false; p.mu.Unlock() }

// TestOVSHAPartition: the master of hv1's switch is cut from etcd. It
// stops being master (OVS's view: its controller row leaves the master
// role) before another replica's MASTER request is accepted, so at no
// sample (every 10 ms) do two replicas hold the master role; pings go
// on; once the partition heals it rejoins as a slave.
func TestOVSHAPartition(t *testing.T) {
	h := newHALab(t)
	loomctl(t, h.apis["a"], "create", "networks", "name=blue", "type=vxlan", "vni=5001")
	loomctl(t, h.apis["c"], "create", "subnets", "name=blue-a", "network=blue", "cidr=10.1.0.0/24", "gateway=10.1.0.1")
	vms := map[string]*ovslab.VM{}
	for i, p := range []struct{ name, host string }{{"v1", "hv1"}, {"v2", "hv2"}} {
		mac, ip := fmt.Sprintf("02:00:00:00:01:%02x", i+1), fmt.Sprintf("10.1.0.%d", 11+i)
		loomctl(t, h.apis["b"], "create", "ports", "name="+p.name, "network=blue", "mac="+mac, `ips=["`+ip+`"]`)
		vms[p.name] = h.hosts[p.host].AddVM(p.name, mac, ip+"/24")
	}
	waitForD(t, 20*time.Second, "one master of hv1 among three connected", func() bool {
		_, connected := h.roles("hv1")
		return connected == 3 && h.master("hv1") != ""
	})
	waitForD(t, 20*time.Second, "v1 pings v2", func() bool { return vms["v1"].Ping(vms["v2"].IP, 1, time.Second) == nil })
	victim := h.master("hv1")
	ping := exec.Command("ip", "netns", "exec", vms["v1"].NS, "ping", "-n", "-q", "-i", "0.02", "-c", "350", "-w", "20", vms["v2"].IP)
	var pingOut strings.Builder
	ping.Stdout, ping.Stderr = &pingOut, &pingOut
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	cut := time.Now()
	h.proxies[victim].partition()
	var stepDown, takeOver time.Duration
	var newMaster string
	for time.Since(cut) < 8*time.Second && (stepDown == 0 || takeOver == 0) {
		roles, _ := h.roles("hv1")
		masters := 0
		for id, r := range roles {
			if r == "master" {
				masters++
				if id != victim && takeOver == 0 {
					takeOver, newMaster = time.Since(cut), id
				}
			}
		}
		if masters > 1 {
			t.Fatalf("two masters of hv1's switch at once: %v", roles)
		}
		if roles[victim] != "master" && stepDown == 0 {
			stepDown = time.Since(cut)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if stepDown == 0 || takeOver == 0 {
		t.Fatalf("step-down %v, take-over %v (OVS's view): want both", stepDown, takeOver)
	}
	// The order, from the replicas' own logs (OVS updates its Controller
	// rows' role column about a second late, both changes at once).
	dpid := bridgeDPID(t, h.hosts["hv1"])
	down := loggedAt(t, h.replicas[victim], `msg="no longer master"`, dpid, cut)
	up := loggedAt(t, h.replicas[newMaster], `msg="master role accepted"`, dpid, cut)
	t.Logf("%s cut from etcd: it stopped being master %v after, %s's MASTER request was accepted %v after (OVS showed both %v after)",
		victim, down.Sub(cut).Round(time.Millisecond), newMaster, up.Sub(cut).Round(time.Millisecond), takeOver.Round(time.Millisecond))
	if !down.Before(up) {
		t.Errorf("%s stopped being master at %v, %s became master at %v: both at once", victim, down.Sub(cut), newMaster, up.Sub(cut))
	}
	if down.Sub(cut) > 2*time.Second {
		t.Errorf("%s stepped down %v after the cut, want within its lease TTL (2 s)", victim, down.Sub(cut))
	}
	ping.Wait()
	if sent, recv := pingCounts(pingOut.String()); sent < 250 || recv != sent {
		t.Errorf("pings across the partition: %d sent, %d received", sent, recv)
	}
	// Healed: the replica joins again, as a slave of the new master.
	h.proxies[victim].heal()
	waitForD(t, 15*time.Second, victim+" a slave again, "+newMaster+" still master", func() bool {
		roles, _ := h.roles("hv1")
		return roles[victim] == "slave" && roles[newMaster] == "master"
	})
	t.Logf("stale role requests counted by %s: %v", victim, metric(t, h.apis[victim], "loom_stale_role_requests_total"))
}
