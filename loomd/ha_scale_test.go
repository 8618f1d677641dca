package loomd

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/loom-sdn/loom/apps/l2switch"
	"github.com/loom-sdn/loom/cluster"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/southbound/openflow"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/loom-sdn/loom/store/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// replica is one loomd's runtime as the HA wiring builds it: a
// controller whose Mastership is a switch election on etcd.
type scaleReplica struct {
	id     string
	cli    *clientv3.Client
	cl     *cluster.Cluster
	ctl    *controller.Controller
	sock   string
	cancel context.CancelFunc
}

// TestReplicasScale: N emulated switches (300, or LOOM_HA_SWITCHES),
// each connected to three controllers whose mastership comes from the
// switch elections on an embedded etcd, as loomd wires them. Every
// switch gets exactly one master (the switch's own view: the connection
// it accepted MASTER from), about a third each; when one replica dies
// (its etcd client and OpenFlow listener gone, its lease left to expire)
// the others are masters of all its switches within 5 s.
func TestReplicasScale(t *testing.T) {
	if raceEnabled {
		// Three controllers, three etcd members and 900 emulated
		// switches in one process under the race detector starve the
		// 2 s leases' keep-alives: make test runs this test without it.
		t.Skip("a timing test: run without -race (make test does)")
	}
	n := 300
	if v, err := strconv.Atoi(os.Getenv("LOOM_HA_SWITCHES")); err == nil && v > 0 {
		n = v
	}
	etcd, err := etcdtest.Start(3)
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	var rs []*scaleReplica
	for _, id := range []string{"a", "b", "c"} {
		r := &scaleReplica{id: id, sock: filepath.Join(dir, id+".sock")}
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		if r.cli, err = clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints, DialTimeout: 2 * time.Second}); err != nil {
			t.Fatal(err)
		}
		var ref atomic.Pointer[controller.Controller]
		if r.cl, err = cluster.Join(ctx, cluster.Options{Client: r.cli, Prefix: "/scale/cluster/switches", ID: id, TTL: 2 * time.Second,
			OnRole: toController(&ref)}); err != nil {
			t.Fatal(err)
		}
		if r.ctl, err = controller.New(ctx, controller.Config{Apps: []string{"l2switch"}, Mastership: switchMastership{r.cl, log}}, log, nil); err != nil {
			t.Fatal(err)
		}
		ref.Store(r.ctl)
		l, err := openflow.Listen("unix:"+r.sock, openflow.TLSFiles{})
		if err != nil {
			t.Fatal(err)
		}
		srv := &openflow.Server{Config: openflow.Config{MaxConnsPerSource: -1}, Handler: r.ctl, Log: log}
		go srv.Serve(ctx, l)
		rs = append(rs, r)
		t.Cleanup(func() { cancel(); srv.Wait(); r.ctl.Wait(); r.cli.Close() })
	}
	type sw struct {
		dp    *emu.Datapath
		conns map[string]*emu.Switch
	}
	sws := make([]sw, n)
	start := time.Now()
	for i := range sws {
		sws[i] = sw{dp: emu.NewDatapath(nil, nil, nil), conns: map[string]*emu.Switch{}}
		for _, r := range rs {
			s, err := emu.Dial("unix", r.sock, emu.Options{DatapathID: uint64(0x10000 + i), Ports: []wire.Port{{PortNo: 1, Name: "p1"}},
				Datapath: sws[i].dp})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			sws[i].conns[r.id] = s
		}
	}
	// settled: every switch has exactly one master among alive's
	// connections; returns the masters' counts.
	settled := func(alive []string, within time.Duration) (map[string]int, time.Duration) {
		t.Helper()
		begin := time.Now()
		for {
			counts, ok := map[string]int{}, true
			for i := range sws {
				masters := 0
				for _, id := range alive {
					if sws[i].conns[id].Role() == wire.RoleMaster {
						masters++
						counts[id]++
					}
				}
				if masters != 1 {
					ok = false
					break
				}
			}
			if ok {
				return counts, time.Since(begin)
			}
			if time.Since(begin) > within {
				hist := map[int]int{}
				for i := range sws {
					m := 0
					for _, id := range alive {
						if sws[i].conns[id].Role() == wire.RoleMaster {
							m++
						}
					}
					hist[m]++
				}
				for _, r := range rs {
					t.Logf("%s: members %+v, stats %+v, %d switches connected", r.id, r.cl.Members(), r.cl.Stats(), len(r.ctl.Switches()))
				}
				t.Fatalf("switches without exactly one master after %v: switches by number of masters %v", within, hist)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	counts, _ := settled([]string{"a", "b", "c"}, 60*time.Second)
	t.Logf("%d switches x 3 controllers connected, one master each in %v: %v", n, time.Since(start).Round(time.Millisecond), counts)
	for id, c := range counts {
		if c < n/3-n/6 || c > n/3+n/6 {
			t.Errorf("%s masters %d of %d switches", id, c, n)
		}
	}
	// Mods once the masters reconciled, for the failover's comparison.
	mods := func() int64 {
		var total int64
		for i := range sws {
			for _, s := range sws[i].conns {
				total += s.Counters.FlowMods.Load() + s.Counters.BundleCommits.Load()
			}
		}
		return total
	}
	time.Sleep(500 * time.Millisecond)
	before := mods()

	// b dies: its etcd client and OpenFlow listener go; its lease expires.
	killed := time.Now()
	rs[1].cli.Close()
	rs[1].cancel()
	counts, _ = settled([]string{"a", "c"}, 10*time.Second)
	took := time.Since(killed)
	t.Logf("b killed: its switches mastered by a and c %v later: %v; %d flow-mods and bundles sent on the way", took.Round(time.Millisecond), counts, mods()-before)
	if took > 5*time.Second {
		t.Errorf("failover of %d switches took %v, want within 5 s", counts["a"]+counts["c"], took)
	}
	if extra := mods() - before; extra != 0 {
		t.Errorf("%d flow-mods and bundles sent by the failover (the switches' flows were right)", extra)
	}
}
