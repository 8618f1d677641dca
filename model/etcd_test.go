package model_test

import (
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

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
	prefix := t.TempDir()
	stA, stB := openEtcd(t, prefix), openEtcd(t, prefix)
	a, err := model.New(ctx, stA, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.New(ctx, stB, nil)
	if err != nil {
		t.Fatal(err)
	}
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
