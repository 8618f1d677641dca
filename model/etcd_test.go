package model_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/store"
	"github.com/loom-sdn/loom/store/etcdtest"
)

// go test ./model -store=etcd runs every model test on an embedded etcd
// cluster instead of bbolt; the tests below run on etcd always.
var storeFlag = flag.String("store", "bolt", "store the model tests run on: bolt, or etcd (an embedded three-member cluster)")

func TestMain(m *testing.M) { etcdtest.Main(m) }

// openStore opens the store of a test's model; dir names its data (a
// bbolt directory, or the prefix of its etcd keys).
func openStore(t testing.TB, dir string) store.Interface {
	t.Helper()
	if *storeFlag == "etcd" {
		return openEtcd(t, dir)
	}
	st, err := store.OpenBolt(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func openEtcd(t testing.TB, prefix string) *store.Etcd {
	t.Helper()
	st, err := store.OpenEtcd(ctx, store.EtcdOptions{Endpoints: etcdtest.Shared(t), Prefix: "/modeltest" + prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Two replicas, each with its model on its own client of one etcd: a
// batch of 10,000 networks on one is atomic for the other's store (never
// partly listed) and its model (reloaded whole), uniqueness holds across
// them, and If-Match sees the other's writes.
func TestEtcdModelTwoReplicas(t *testing.T) {
	prefix, stA, stB, a, b := twoReplicas(t)
	var seen sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			kvs, _, _ := stB.List(ctx, string(model.KindNetwork))
			seen.Store(len(kvs), true)
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	start := time.Now()
	if _, err := a.Apply(ctx, networkOps(10000)); err != nil {
		t.Fatal(err)
	}
	t.Logf("10,000 networks applied on etcd in %v", time.Since(start))
	rev := a.Snapshot().Revision
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if r, _ := stB.Revision(ctx); r >= rev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b's store never saw the batch")
		}
	}
	close(stop)
	wg.Wait()
	seen.Range(func(k, _ any) bool {
		if n := k.(int); n != 0 && n != 10000 {
			t.Errorf("b's store listed %d of the 10,000 networks", n)
		}
		return true
	})
	// b's model is stale: its write fails on the fence, it reloads and
	// re-validates: the VNI is taken.
	if _, err := b.Create(ctx, &model.Network{Meta: named("x"), Type: "vxlan", VNI: 9999}); !isConflict(err) {
		t.Fatalf("duplicate VNI through b: %v", err)
	}
	if n := b.Snapshot().Networks.Len(); n != 10000 {
		t.Fatalf("b reloaded %d networks", n)
	}
	n0, _ := b.Snapshot().Networks.ByName("n0")
	if n0.Revision != rev {
		t.Fatalf("n0 at revision %d, want the batch's %d", n0.Revision, rev)
	}
	// If-Match: a patch through b at n0's revision goes; the same through
	// a, which has not seen it, is refused; a fresh model reads it.
	if _, err := b.Patch(ctx, model.KindNetwork, "n0", []byte(`{"vni":20001}`), rev); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Patch(ctx, model.KindNetwork, "n0", []byte(`{"vni":20002}`), rev); model.CodeOf(err) != model.Precondition {
		t.Fatalf("stale If-Match through a: %v", err)
	}
	c, err := model.New(ctx, openEtcd(t, prefix), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n0, _ := c.Snapshot().Networks.ByName("n0"); n0.VNI != 20001 || c.Snapshot().Networks.Len() != 10000 {
		t.Fatalf("a fresh replica reads %+v and %d networks", n0, c.Snapshot().Networks.Len())
	}
	// A batch that fails validation half-way writes nothing anywhere.
	var ops []model.Op
	for i := range 300 {
		ops = append(ops, create(&model.Network{Meta: named(fmt.Sprintf("m%d", i)), Type: "vxlan", VNI: 30000 + i}))
	}
	ops = append(ops, create(&model.Network{Meta: named("m-dup"), Type: "vxlan", VNI: 20001}))
	before, _ := stA.Revision(ctx)
	var me *model.Error
	if _, err := a.Apply(ctx, ops); !errorAs(err, &me) || me.Code != model.Conflict || me.Field != "ops[300].vni" {
		t.Fatalf("batch with a duplicate VNI: %v", err)
	}
	if r, _ := stA.Revision(ctx); r != before {
		t.Fatalf("a rejected batch moved the store from %d to %d", before, r)
	}
}

// follow runs svc.Follow until the test ends.
func follow(t *testing.T, svc *model.Service) {
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.Follow(fctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFor polls until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(50 * time.Microsecond)
	}
	return time.Since(start)
}

// A following Service takes in another replica's writes as they commit:
// a single write, a batch all at once, a delete, each with its events;
// its own writes are not taken twice.
func TestEtcdModelFollow(t *testing.T) {
	_, _, _, a, b := twoReplicas(t)
	follow(t, a)
	follow(t, b)
	subA, subB := a.Subscribe(5000), b.Subscribe(5000)
	start := time.Now()
	blue := mustCreate(t, a, &model.Network{Meta: named("blue"), Type: "vxlan", VNI: 1})
	waitFor(t, "b has blue", func() bool {
		n, ok := b.Snapshot().Networks.ByName("blue")
		return ok && n.Revision == blue.Base().Revision
	})
	t.Logf("a write on a is in b's model %v after it began", time.Since(start))
	if b.Snapshot().Revision != blue.Base().Revision {
		t.Fatalf("b at revision %d, want %d", b.Snapshot().Revision, blue.Base().Revision)
	}
	// A batch: b's model has none of it or all of it.
	var sizes sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			sizes.Store(b.Snapshot().Networks.Len(), true)
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	var ops []model.Op
	for i := range 2000 {
		ops = append(ops, create(&model.Network{Meta: named(fmt.Sprintf("n%d", i)), Type: "vxlan", VNI: 100 + i}))
	}
	if _, err := a.Apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b has the batch", func() bool { return b.Snapshot().Revision == a.Snapshot().Revision })
	close(stop)
	wg.Wait()
	sizes.Range(func(k, _ any) bool {
		if n := k.(int); n != 1 && n != 2001 {
			t.Errorf("b's model held %d networks", n)
		}
		return true
	})
	if chs, ok := b.Snapshot().ChangesSince(blue.Base().Revision); !ok || len(chs) != 2000 {
		t.Fatalf("b's changes since blue: %d, %v", len(chs), ok)
	}
	// b writes on its followed state: no fence failure, no reload; a
	// takes it in.
	if _, err := b.Delete(ctx, model.KindNetwork, "blue", blue.Base().Revision); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a saw blue deleted", func() bool { _, ok := a.Snapshot().Networks.ByName("blue"); return !ok })
	// Both indexes (kept through followed writes) are the model's.
	for _, svc := range []*model.Service{a, b} {
		if err := model.CheckIndex(svc); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Create(ctx, &model.Network{Meta: named("green"), Type: "vxlan", VNI: 100}); !isConflict(err) {
		t.Fatalf("a VNI of b's batch through a: %v", err)
	}
	// Each Service published each change once: its own and the other's.
	for name, sub := range map[string]*events.Subscription{"a": subA, "b": subB} {
		evs := drain(sub)
		if len(evs) != 2002 || evs[0].Type != model.Created || evs[0].ID != blue.Base().ID || evs[2001].Type != model.Deleted || evs[2001].Object.(model.Object).Base().Name != "blue" {
			t.Fatalf("%s published %d events (first %+v)", name, len(evs), evs[0])
		}
	}
}

// On any store: two Services on one store, both following: each change
// is published once by each, and a batch rejected by the store's compare
// leaves no trace in the follower.
func TestFollowOwnAndOthers(t *testing.T) {
	st, a := open(t, t.TempDir())
	defer st.Close()
	b, err := model.New(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	follow(t, a)
	follow(t, b)
	subA, subB := a.Subscribe(100), b.Subscribe(100)
	mustCreate(t, a, &model.Network{Meta: named("blue"), Type: "vxlan", VNI: 1})
	waitFor(t, "b has blue", func() bool { _, ok := b.Snapshot().Networks.ByName("blue"); return ok })
	if _, err := b.Patch(ctx, model.KindNetwork, "blue", []byte(`{"vni":2}`), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a has vni 2", func() bool { n, _ := a.Snapshot().Networks.ByName("blue"); return n.VNI == 2 })
	for name, sub := range map[string]*events.Subscription{"a": subA, "b": subB} {
		evs := drain(sub)
		if len(evs) != 2 || evs[0].Type != model.Created || evs[1].Type != model.Updated {
			t.Fatalf("%s published %+v", name, evs)
		}
	}
	if a.Snapshot().Revision != b.Snapshot().Revision {
		t.Fatalf("a at %d, b at %d", a.Snapshot().Revision, b.Snapshot().Revision)
	}
	// b's index (it wrote) follows a's writes of indexed objects.
	mustCreate(t, a, &model.Subnet{Meta: named("blue-v4"), Network: "blue", CIDR: "10.1.0.0/24"})
	if _, err := a.Apply(ctx, []model.Op{
		create(&model.Port{Meta: named("vm1"), Network: "blue", IPs: []string{"10.1.0.11"}}),
		create(&model.Port{Meta: named("vm2"), Network: "blue", IPs: []string{"10.1.0.12"}}),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Patch(ctx, model.KindPort, "vm1", []byte(`{"ips":["10.1.0.21"]}`), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Delete(ctx, model.KindPort, "vm2", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b caught up", func() bool { return b.Snapshot().Revision == a.Snapshot().Revision })
	if err := model.CheckIndex(b); err != nil {
		t.Fatal(err)
	}
	// The address vm2 freed and the one vm1 left are free through b.
	mustCreate(t, b, &model.Port{Meta: named("vm3"), Network: "blue", IPs: []string{"10.1.0.11", "10.1.0.12"}})
	if _, err := b.Create(ctx, &model.Port{Meta: named("vm4"), Network: "blue", IPs: []string{"10.1.0.21"}}); !isConflict(err) {
		t.Fatalf("vm1's new address through b: %v", err)
	}
}

// BenchmarkModelPatch is one POST-sized model write (a port patched) on
// the store -store names (bbolt without fsync, or etcd).
func BenchmarkModelPatch(b *testing.B) {
	_, svc := open(b, b.TempDir())
	mustCreate(b, svc, &model.Network{Meta: named("blue"), Type: "vxlan", VNI: 1})
	mustCreate(b, svc, &model.Subnet{Meta: named("blue-v4"), Network: "blue", CIDR: "10.1.0.0/16"})
	mustCreate(b, svc, &model.Port{Meta: named("vm1"), Network: "blue", IPs: []string{"10.1.0.11"}})
	for i := 0; b.Loop(); i++ {
		patch := fmt.Appendf(nil, `{"ips":["10.1.%d.%d"]}`, i/250%200, 2+i%250)
		if _, err := svc.Patch(ctx, model.KindPort, "vm1", patch, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEtcdModelVisibility is the time from a write through one
// replica's model to another's following model holding it: ack is when
// the write returned, seen when the other snapshot had it.
func BenchmarkEtcdModelVisibility(b *testing.B) {
	prefix := b.TempDir()
	a, err := model.New(ctx, openEtcd(b, prefix), nil)
	if err != nil {
		b.Fatal(err)
	}
	other, err := model.New(ctx, openEtcd(b, prefix), nil)
	if err != nil {
		b.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go other.Follow(fctx)
	mustCreate(b, a, &model.Network{Meta: named("blue"), Type: "vxlan", VNI: 1})
	var acked, seen []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		o, err := a.Patch(ctx, model.KindNetwork, "blue", fmt.Appendf(nil, `{"vni":%d}`, 2+i%1000), 0)
		if err != nil {
			b.Fatal(err)
		}
		acked = append(acked, time.Since(start))
		for other.Snapshot().Revision < o.Base().Revision {
			time.Sleep(20 * time.Microsecond)
		}
		seen = append(seen, time.Since(start))
	}
	for name, lat := range map[string][]time.Duration{"ack": acked, "seen": seen} {
		s := slices.Sorted(slices.Values(lat))
		b.ReportMetric(float64(s[len(s)/2].Microseconds()), name+"-p50-µs")
		b.ReportMetric(float64(s[len(s)*99/100].Microseconds()), name+"-p99-µs")
	}
}

// A follower whose store history is compacted past its snapshot loads the
// model whole and publishes the difference, then follows on.
func TestEtcdFollowAfterCompaction(t *testing.T) {
	_, stA, _, a, b := twoReplicas(t)
	sub := b.Subscribe(100)
	mustCreate(t, a, &model.Network{Meta: named("red"), Type: "vxlan", VNI: 1})
	mustCreate(t, a, &model.Network{Meta: named("blue"), Type: "vxlan", VNI: 2})
	if _, err := a.Delete(ctx, model.KindNetwork, "red", 0); err != nil {
		t.Fatal(err)
	}
	rev, _ := stA.Revision(ctx)
	if _, err := stA.Client().Compact(ctx, int64(rev)); err != nil {
		t.Fatal(err)
	}
	follow(t, b)
	waitFor(t, "b has blue", func() bool { _, ok := b.Snapshot().Networks.ByName("blue"); return ok })
	mustCreate(t, a, &model.Network{Meta: named("green"), Type: "vxlan", VNI: 3})
	waitFor(t, "b has green", func() bool { _, ok := b.Snapshot().Networks.ByName("green"); return ok })
	var got []string
	for _, e := range drain(sub) {
		got = append(got, e.Type+" "+e.Object.(model.Object).Base().Name)
	}
	if fmt.Sprint(got) != "[created blue created green]" {
		t.Fatalf("b published %q", got)
	}
}

// twoReplicas opens two stores on their own etcd clients under one new
// prefix, and a model on each.
func twoReplicas(t *testing.T) (prefix string, stA, stB *store.Etcd, a, b *model.Service) {
	t.Helper()
	prefix = t.TempDir()
	stA, stB = openEtcd(t, prefix), openEtcd(t, prefix)
	var err error
	if a, err = model.New(ctx, stA, nil); err != nil {
		t.Fatal(err)
	}
	if b, err = model.New(ctx, stB, nil); err != nil {
		t.Fatal(err)
	}
	return prefix, stA, stB, a, b
}

// TestEtcdAckedWritesSurviveAReplica: three replicas write networks as
// fast as they can, each through its own model and etcd client, while
// one of them dies (its client closed mid-write). Every write any of them
// acknowledged is in both survivors' models afterwards.
func TestEtcdAckedWritesSurviveAReplica(t *testing.T) {
	prefix := t.TempDir()
	var sts []*store.Etcd
	var svcs []*model.Service
	for range 3 {
		st := openEtcd(t, prefix)
		svc, err := model.New(ctx, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		follow(t, svc)
		sts, svcs = append(sts, st), append(svcs, svc)
	}
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r, svc := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("r%d-%d", r, i)
				if _, err := svc.Create(ctx, &model.Network{Meta: model.Meta{Name: name}, Type: "vxlan", VNI: 100000*(r+1) + i}); err == nil {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	sts[0].Close() // replica 0 dies mid-write
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()
	for _, svc := range svcs[1:] {
		waitFor(t, "every acknowledged write in a survivor's model", func() bool {
			snap := svc.Snapshot()
			for _, name := range acked {
				if _, ok := snap.Networks.ByName(name); !ok {
					return false
				}
			}
			return true
		})
	}
	t.Logf("%d writes acknowledged by three replicas, one of them closed mid-way: all in both survivors' models", len(acked))
}
