package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loom-sdn/loom/store/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

var prefixes atomic.Int64

// newPrefix is a prefix of its own for each test.
func newPrefix() string { return fmt.Sprintf("/test/cluster-%d", prefixes.Add(1)) }

func client(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// replica is a member under test with the roles it was told.
type replica struct {
	*Cluster
	mu    sync.Mutex
	roles map[uint64]Role
	// masterSince and masterUntil are when it last became and stopped
	// being each switch's master.
	masterSince, masterUntil map[uint64]time.Time
}

func join(t *testing.T, cli *clientv3.Client, prefix, id string) *replica {
	t.Helper()
	r := &replica{roles: map[uint64]Role{}, masterSince: map[uint64]time.Time{}, masterUntil: map[uint64]time.Time{}}
	c, err := Join(context.Background(), Options{Client: cli, Prefix: prefix, ID: id, Address: id + ":8080", TTL: 2 * time.Second, Log: slog.Default(),
		OnRole: func(dpid uint64, role Role) {
			r.mu.Lock()
			defer r.mu.Unlock()
			old := r.roles[dpid]
			if role.Master && !old.Master {
				r.masterSince[dpid] = time.Now()
			}
			if !role.Master && old.Master {
				r.masterUntil[dpid] = time.Now()
			}
			r.roles[dpid] = role
		}})
	if err != nil {
		t.Fatal(err)
	}
	r.Cluster = c
	return r
}

func (r *replica) role(dpid uint64) Role {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.roles[dpid]
}

func (r *replica) campaign(t *testing.T, dpids ...uint64) {
	t.Helper()
	for _, d := range dpids {
		if err := r.Campaign(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
}

func dpids(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = 0x4c4d000000000000 | uint64(i+1)
	}
	return out
}

// settled waits until every switch has exactly one master among rs, all
// agreeing on it and its generation, and returns the masters' counts.
func settled(t *testing.T, rs []*replica, sw []uint64, within time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		counts, why := map[string]int{}, ""
		for _, d := range sw {
			masters, ids, gens := 0, map[string]bool{}, map[uint64]bool{}
			for _, r := range rs {
				ro := r.role(d)
				if ro.Master {
					masters++
					counts[r.ID()]++
				}
				ids[ro.MasterID], gens[ro.Generation] = true, true
			}
			if masters != 1 || len(ids) != 1 || len(gens) != 1 {
				why = fmt.Sprintf("switch %x: %d masters, masters named %v, generations %v", d, masters, ids, gens)
				break
			}
		}
		if why == "" {
			return counts
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled after %v: %s", within, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOneMasterPerSwitch: three replicas campaigning for 300 switches
// agree on one master for each, with its key revision as generation,
// about a third each.
func TestOneMasterPerSwitch(t *testing.T) {
	ep := etcdtest.Shared(t)
	prefix, sw := newPrefix(), dpids(300)
	var rs []*replica
	for _, id := range []string{"a", "b", "c"} {
		r := join(t, client(t, ep), prefix, id)
		t.Cleanup(func() { r.Close() })
		rs = append(rs, r)
	}
	for _, r := range rs {
		r.campaign(t, sw...)
	}
	counts := settled(t, rs, sw, 10*time.Second)
	t.Logf("masters: %v", counts)
	for _, r := range rs {
		if n := counts[r.ID()]; n < 60 || n > 140 {
			t.Errorf("%s masters %d of 300 switches, want about 100", r.ID(), n)
		}
	}
	// The generation is the master's key's create revision.
	for _, d := range sw[:5] {
		ro := rs[0].role(d)
		resp, err := rs[0].cli.Get(context.Background(), prefix+"/switches/"+fmt.Sprintf("%x", d)+"/"+ro.MasterID)
		if err != nil || len(resp.Kvs) != 1 || uint64(resp.Kvs[0].CreateRevision) != ro.Generation {
			t.Errorf("switch %x: generation %d, key %v %v", d, ro.Generation, resp, err)
		}
	}
	// Hand-overs may still be putting their keys back.
	var ms []Member
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ms = rs[0].Members()
		if len(ms) == 3 && ms[0].Candidate+ms[1].Candidate+ms[2].Candidate == 900 {
			break
		}
	}
	if len(ms) != 3 || ms[0].ID != "a" || ms[1].Address != "b:8080" || ms[0].Master+ms[1].Master+ms[2].Master != 300 {
		t.Errorf("members: %+v", ms)
	}
	for _, m := range ms {
		if m.Candidate != 300 {
			t.Errorf("%s is a candidate for %d switches, want 300", m.ID, m.Candidate)
		}
	}
}

// TestFailover: a replica that dies (its client gone, its lease left to
// expire) loses its switches to the others within its TTL, each with a
// higher generation.
func TestFailover(t *testing.T) {
	ep := etcdtest.Shared(t)
	prefix, sw := newPrefix(), dpids(90)
	a := join(t, client(t, ep), prefix, "a")
	b := join(t, client(t, ep), prefix, "b")
	bcli := b.cli
	t.Cleanup(func() { a.Close() })
	a.campaign(t, sw...)
	b.campaign(t, sw...)
	settled(t, []*replica{a, b}, sw, 10*time.Second)
	before := map[uint64]uint64{}
	var bs []uint64
	for _, d := range sw {
		before[d] = a.role(d).Generation
		if b.role(d).Master {
			bs = append(bs, d)
		}
	}
	if len(bs) == 0 {
		t.Fatal("b masters nothing")
	}
	killed := time.Now()
	b.cancel() // b's goroutines stop: no keep-alive, no revoke
	b.wg.Wait()
	bcli.Close()
	settled(t, []*replica{a}, sw, 6*time.Second)
	var took time.Duration
	for _, d := range bs {
		if g := a.role(d).Generation; g <= before[d] {
			t.Errorf("switch %x: generation %d after the failover, %d before", d, g, before[d])
		}
		took = max(took, a.masterSince[d].Sub(killed))
	}
	t.Logf("b's %d switches mastered by a %v after b died (TTL 2 s)", len(bs), took.Round(time.Millisecond))
	if took > 4*time.Second {
		t.Errorf("failover took %v", took)
	}
}

// proxy forwards TCP connections to target until paused.
type proxy struct {
	l      net.Listener
	mu     sync.Mutex
	paused bool
	resume chan struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, resume: make(chan struct{})}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	return p
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		for p.paused {
			ch := p.resume
			p.mu.Unlock()
			<-ch
			p.mu.Lock()
		}
		p.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			return
		}
	}
}

func (p *proxy) pause() { p.mu.Lock(); p.paused = true; p.mu.Unlock() }

// TestPartitionedMasterStepsDownFirst: a replica cut from etcd stops
// being master of its switches before the other replica becomes their
// master (the lease's TTL after its last keep-alive), so at no instant
// do both believe they are.
func TestPartitionedMasterStepsDownFirst(t *testing.T) {
	ep := etcdtest.Shared(t)
	prefix, sw := newPrefix(), dpids(60)
	px := newProxy(t, strings.TrimPrefix(ep[0], "http://"))
	a := join(t, client(t, []string{px.l.Addr().String()}), prefix, "a")
	b := join(t, client(t, ep), prefix, "b")
	t.Cleanup(func() { b.Close() })
	a.campaign(t, sw...)
	b.campaign(t, sw...)
	settled(t, []*replica{a, b}, sw, 10*time.Second)
	var as []uint64
	for _, d := range sw {
		if a.role(d).Master {
			as = append(as, d)
		}
	}
	cut := time.Now()
	px.pause()
	settled(t, []*replica{b}, sw, 8*time.Second)
	a.mu.Lock()
	defer a.mu.Unlock()
	var down, up time.Duration
	for _, d := range as {
		stop, ok := a.masterUntil[d]
		if !ok {
			t.Fatalf("a never stepped down from %x", d)
		}
		start := b.masterSince[d]
		if !stop.Before(start) {
			t.Errorf("switch %x: a master until %v, b master from %v: both at once", d, stop.Sub(cut), start.Sub(cut))
		}
		down, up = max(down, stop.Sub(cut)), max(up, start.Sub(cut))
	}
	t.Logf("cut from etcd: a stepped down from its %d switches %v after, b took them %v after", len(as), down.Round(time.Millisecond), up.Round(time.Millisecond))
	if st := a.Stats(); st.LeaseLosses == 0 {
		t.Errorf("no lease loss counted: %+v", st)
	}
}

// TestJoiningReplicaTakesItsShare: a third replica that joins takes about
// a third of the switches by hand-over, and only those change master.
func TestJoiningReplicaTakesItsShare(t *testing.T) {
	ep := etcdtest.Shared(t)
	prefix, sw := newPrefix(), dpids(300)
	a := join(t, client(t, ep), prefix, "a")
	b := join(t, client(t, ep), prefix, "b")
	t.Cleanup(func() { a.Close(); b.Close() })
	a.campaign(t, sw...)
	b.campaign(t, sw...)
	settled(t, []*replica{a, b}, sw, 10*time.Second)
	owner := map[uint64]string{}
	for _, d := range sw {
		owner[d] = a.role(d).MasterID
	}
	c := join(t, client(t, ep), prefix, "c")
	t.Cleanup(func() { c.Close() })
	c.campaign(t, sw...)
	counts := settled(t, []*replica{a, b, c}, sw, 10*time.Second)
	moved := 0
	for _, d := range sw {
		if m := a.role(d).MasterID; m != owner[d] {
			moved++
			if m != "c" {
				t.Errorf("switch %x moved from %s to %s, not to the new replica", d, owner[d], m)
			}
		}
	}
	t.Logf("c joined: masters %v, %d switches moved, hand-overs a=%d b=%d", counts, moved, a.Stats().HandOvers, b.Stats().HandOvers)
	if counts["c"] < 60 || counts["c"] > 140 || moved != counts["c"] {
		t.Errorf("c masters %d, %d moved: want about 100, all of them c's", counts["c"], moved)
	}
}

// TestLostCandidacyHeals: a candidacy whose key disappears (a failed
// Campaign or hand-over put, someone deleting it) is put again within
// about a TTL.
func TestLostCandidacyHeals(t *testing.T) {
	ep := etcdtest.Shared(t)
	prefix, sw := newPrefix(), dpids(5)
	a := join(t, client(t, ep), prefix, "a")
	t.Cleanup(func() { a.Close() })
	a.campaign(t, sw...)
	settled(t, []*replica{a}, sw, 5*time.Second)
	if _, err := a.cli.Delete(context.Background(), prefix+"/switches/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for a.role(sw[0]).Master {
		if time.Since(start) > 2*time.Second {
			t.Fatal("the deletion never reached the replica")
		}
		time.Sleep(5 * time.Millisecond)
	}
	settled(t, []*replica{a}, sw, 5*time.Second)
	t.Logf("candidacies deleted behind the replica's back: put again, master again %v later", time.Since(start).Round(time.Millisecond))
}
