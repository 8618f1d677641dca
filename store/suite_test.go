package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loom-sdn/loom/store/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

// backend is a store implementation the semantic tests run against.
type backend struct {
	name string
	// open returns a new, empty store.
	open func(t *testing.T) Interface
	// other returns a second client of st's data (nil: the store has one
	// client only).
	other func(t *testing.T, st Interface) Interface
	// compact forgets the history before rev.
	compact func(t *testing.T, st Interface, rev uint64)
}

var prefixes atomic.Int64

// newPrefix is a prefix of its own for each etcd store a test opens.
func newPrefix(t *testing.T) string {
	return fmt.Sprintf("/test/%d/%s", prefixes.Add(1), t.Name())
}

func openEtcd(t testing.TB, prefix string, tune func(*EtcdOptions)) *Etcd {
	t.Helper()
	opt := EtcdOptions{Endpoints: etcdtest.Shared(t), Prefix: prefix}
	if tune != nil {
		tune(&opt)
	}
	e, err := OpenEtcd(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

var backends = []backend{
	{
		name: "bolt",
		open: func(t *testing.T) Interface { return openT(t, t.TempDir(), Options{NoSync: true}) },
		compact: func(t *testing.T, st Interface, rev uint64) {
			compactBolt(t, st.(*Bolt), rev)
		},
	},
	{
		name: "etcd",
		open: func(t *testing.T) Interface { return openEtcd(t, newPrefix(t), nil) },
		other: func(t *testing.T, st Interface) Interface {
			return openEtcd(t, st.(*Etcd).prefix, nil)
		},
		compact: func(t *testing.T, st Interface, rev uint64) {
			if _, err := st.(*Etcd).cli.Compact(context.Background(), int64(rev)); err != nil {
				t.Fatal(err)
			}
		},
	},
}

// forEach runs test against every backend.
func forEach(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}

func mustTxn(t *testing.T, st Interface, txn Txn) uint64 {
	t.Helper()
	rev, err := st.Txn(context.Background(), txn)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func TestTxnRevisionsAndCompare(t *testing.T) {
	forEach(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		b := be.open(t)
		if rev, _ := b.Revision(ctx); rev != 0 {
			t.Fatalf("empty store at revision %d", rev)
		}
		r1, err := b.Txn(ctx, Txn{
			Compares: []Compare{{Kind: "network", Key: "n1"}, {Kind: "network", Key: "n2"}},
			Ops:      []Op{{Kind: "network", Key: "n1", Value: []byte(`1`)}, {Kind: "network", Key: "n2", Value: []byte(`2`)}},
		})
		if err != nil || r1 == 0 {
			t.Fatalf("txn: %d %v", r1, err)
		}
		r2, err := b.Txn(ctx, Txn{Compares: []Compare{{Kind: "network", Key: "n1", ModRevision: r1}},
			Ops: []Op{{Kind: "network", Key: "n1", Value: []byte(`11`)}}})
		if err != nil || r2 <= r1 {
			t.Fatalf("update: %d (after %d) %v", r2, r1, err)
		}
		if rev, _ := b.Revision(ctx); rev != r2 {
			t.Fatalf("revision %d, want %d", rev, r2)
		}
		kv, err := b.Get(ctx, "network", "n1")
		if err != nil || string(kv.Value) != "11" || kv.CreateRevision != r1 || kv.ModRevision != r2 {
			t.Fatalf("get: %+v %v", kv, err)
		}
		// A failed compare writes nothing, even when other compares hold.
		_, err = b.Txn(ctx, Txn{
			Compares: []Compare{{Kind: "network", Key: "n2", ModRevision: r1}, {Kind: "network", Key: "n1", ModRevision: r1}},
			Ops:      []Op{{Kind: "network", Key: "n2", Delete: true}, {Kind: "network", Key: "n3", Value: []byte(`3`)}},
		})
		var ce *CompareError
		if !errors.Is(err, ErrCompareFailed) || !errors.As(err, &ce) || ce.Compare.Key != "n1" || ce.Actual != r2 {
			t.Fatalf("want compare error on n1, got %v", err)
		}
		// A key that must not exist, and does.
		_, err = b.Txn(ctx, Txn{Compares: []Compare{{Kind: "network", Key: "n2"}}, Ops: []Op{{Kind: "network", Key: "n2", Value: []byte(`x`)}}})
		if !errors.As(err, &ce) || ce.Actual != r1 {
			t.Fatalf("create of an existing key: %v", err)
		}
		// Deleting a missing key is a no-op that leaves the revision alone;
		// so is a transaction without ops.
		if rev, err := b.Txn(ctx, Txn{Ops: []Op{{Kind: "network", Key: "zz", Delete: true}}}); err != nil || rev != r2 {
			t.Fatalf("no-op delete: %d %v", rev, err)
		}
		if rev, err := b.Txn(ctx, Txn{Compares: []Compare{{Kind: "network", Key: "n1", ModRevision: r2}}}); err != nil || rev != r2 {
			t.Fatalf("empty txn: %d %v", rev, err)
		}
		if rev, _ := b.Revision(ctx); rev != r2 {
			t.Fatalf("revision %d after rejected and empty transactions, want %d", rev, r2)
		}
		if _, err := b.Get(ctx, "network", "n3"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("n3: %v", err)
		}
		kvs, rev, err := b.List(ctx, "network")
		if err != nil || rev != r2 || len(kvs) != 2 || kvs[0].Key != "n1" || kvs[1].ModRevision != r1 || string(kvs[1].Value) != "2" {
			t.Fatalf("list: %+v %d %v", kvs, rev, err)
		}
		if kvs, _, _ := b.List(ctx, "nothing"); len(kvs) != 0 {
			t.Fatal("list of an unknown kind")
		}
		if _, err := b.Txn(ctx, Txn{Ops: []Op{{Kind: "", Key: "x"}}}); err == nil {
			t.Fatal("empty kind accepted")
		}
		// A deleted and recreated key has a new create revision.
		r3 := mustTxn(t, b, Txn{Ops: []Op{{Kind: "network", Key: "n2", Delete: true}}})
		r4 := mustTxn(t, b, Txn{Compares: []Compare{{Kind: "network", Key: "n2"}}, Ops: []Op{{Kind: "network", Key: "n2", Value: []byte(`22`)}}})
		if kv, _ := b.Get(ctx, "network", "n2"); r4 <= r3 || kv.CreateRevision != r4 || kv.ModRevision != r4 {
			t.Fatalf("recreated: %+v (deleted at %d, created at %d)", kv, r3, r4)
		}
	})
}

func TestListOrder(t *testing.T) {
	forEach(t, func(t *testing.T, be backend) {
		st := be.open(t)
		keys := []string{"b", "a", "c/d", "0", "aa", "Z", "é"}
		var ops []Op
		for _, k := range keys {
			ops = append(ops, Op{Kind: "port", Key: k, Value: []byte(k)})
		}
		rev := mustTxn(t, st, Txn{Ops: ops})
		mustTxn(t, st, Txn{Ops: []Op{{Kind: "portx", Key: "a", Value: []byte("other kind")}}})
		kvs, _, err := st.List(context.Background(), "port")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, kv := range kvs {
			if string(kv.Value) != kv.Key || kv.CreateRevision != rev || kv.ModRevision != rev {
				t.Errorf("%+v", kv)
			}
			got = append(got, kv.Key)
		}
		if fmt.Sprint(got) != "[0 Z a aa b c/d é]" {
			t.Fatalf("list order %q", got)
		}
	})
}

func next(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

func TestWatch(t *testing.T) {
	forEach(t, func(t *testing.T, be backend) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b := be.open(t)
		var revs []uint64
		for i := 1; i <= 3; i++ {
			revs = append(revs, mustTxn(t, b, Txn{Ops: []Op{{Kind: "k", Key: fmt.Sprint(i), Value: []byte("v")}}}))
		}
		ch, err := b.Watch(ctx, revs[1])
		if err != nil {
			t.Fatal(err)
		}
		live, err := b.Watch(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		r4 := mustTxn(t, b, Txn{Ops: []Op{{Kind: "k", Key: "1", Delete: true}, {Kind: "k", Key: "4", Value: []byte("w")}}})
		want := []string{
			fmt.Sprintf("put %d 2 c%d", revs[1], revs[1]),
			fmt.Sprintf("put %d 3 c%d", revs[2], revs[2]),
			fmt.Sprintf("delete %d 1 c%d v", r4, revs[0]), // a delete carries the value it removed
			fmt.Sprintf("put %d 4 c%d w", r4, r4),
		}
		for _, w := range want {
			e := next(t, ch)
			got := fmt.Sprintf("%s %d %s c%d", e.Type, e.Revision, e.KV.Key, e.KV.CreateRevision)
			if e.Type == Delete || e.KV.Key == "4" {
				got += " " + string(e.KV.Value)
			}
			if last := e.KV.Key != "1"; e.Last != last {
				t.Fatalf("event %+v: Last is %v", e, e.Last)
			}
			if got != w || e.KV.ModRevision != e.Revision || e.KV.Kind != "k" {
				t.Fatalf("event %q (%+v), want %q", got, e.KV, w)
			}
		}
		if e := next(t, live); e.Revision != r4 || e.Type != Delete {
			t.Fatalf("live watch got %+v", e)
		}
		// Compacted history is an error; what is kept can be watched.
		be.compact(t, b, revs[2])
		if _, err := b.Watch(ctx, revs[1]); !errors.Is(err, ErrCompacted) {
			t.Fatalf("watch of compacted history: %v", err)
		}
		if w, err := b.Watch(ctx, revs[2]); err != nil {
			t.Fatalf("watch of kept history: %v", err)
		} else if e := next(t, w); e.Revision != revs[2] {
			t.Fatalf("first event %+v, want revision %d", e, revs[2])
		}
		cancel()
		for range ch { // closed when ctx ends
		}
	})
}

func TestJSONHelpers(t *testing.T) {
	forEach(t, func(t *testing.T, be backend) {
		st := &Store{be.open(t)}
		if err := st.Put("switches", "0000000000000002", map[string]bool{"connected": true}); err != nil {
			t.Fatal(err)
		}
		st.Put("switches", "0000000000000001", map[string]bool{"connected": false})
		var rec struct{ Connected bool }
		if err := st.Get("switches", "0000000000000002", &rec); err != nil || !rec.Connected {
			t.Fatalf("record: %+v %v", rec, err)
		}
		var keys []string
		st.List("switches", func(k string, _ []byte) error { keys = append(keys, k); return nil })
		if fmt.Sprint(keys) != "[0000000000000001 0000000000000002]" {
			t.Fatalf("keys %v", keys)
		}
		st.Delete("switches", "0000000000000001")
		if err := st.Get("switches", "0000000000000001", &rec); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted: %v", err)
		}
	})
}

// bigOps are n puts of kind "big" (about 200 bytes each: 2 MB in all,
// over etcd's 1.5 MiB request limit and 128 ops).
func bigOps(n int, tag string) ([]Compare, []Op) {
	cs, ops := make([]Compare, n), make([]Op, n)
	for i := range n {
		k := fmt.Sprintf("%05d", i)
		cs[i] = Compare{Kind: "big", Key: k}
		ops[i] = Op{Kind: "big", Key: k, Value: fmt.Appendf(nil, "%s %s %0180d", tag, k, i)}
	}
	return cs, ops
}

// A transaction of 10,000 ops is atomic: a concurrent reader (of another
// client, when the store has several) sees none or all of it, a watcher
// gets its 10,000 events together under one revision, every key has that
// revision, and one failed compare among 10,000 writes nothing.
func TestBigTxnAtomic(t *testing.T) {
	forEach(t, func(t *testing.T, be backend) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const n = 10000
		st := be.open(t)
		reader := st
		if be.other != nil {
			reader = be.other(t, st)
		}
		waitRev(t, reader, mustTxn(t, st, Txn{Ops: []Op{{Kind: "small", Key: "before", Value: []byte("x")}}}))
		w, err := reader.Watch(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		// A reader polls the big kind while the batch goes in.
		var seen sync.Map
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				kvs, _, _ := reader.List(ctx, "big")
				seen.Store(len(kvs), true)
				select {
				case <-stop:
					return
				default:
					time.Sleep(time.Millisecond)
				}
			}
		}()
		cs, ops := bigOps(n, "v1")
		start := time.Now()
		rev := mustTxn(t, st, Txn{Compares: cs, Ops: ops})
		t.Logf("%d ops committed in %v", n, time.Since(start))
		mustTxn(t, st, Txn{Ops: []Op{{Kind: "small", Key: "after", Value: []byte("x")}}})
		for i := range n {
			e := next(t, w)
			if e.Revision != rev || e.Type != Put || e.KV.Key != ops[i].Key || e.KV.CreateRevision != rev || string(e.KV.Value) != string(ops[i].Value) || e.Last != (i == n-1) {
				t.Fatalf("event %d: %+v, want put %s at %d", i, e, ops[i].Key, rev)
			}
		}
		if e := next(t, w); e.KV.Key != "after" {
			t.Fatalf("after the batch: %+v", e)
		}
		waitRev(t, reader, rev)
		close(stop)
		wg.Wait()
		seen.Range(func(k, _ any) bool {
			if k.(int) != 0 && k.(int) != n {
				t.Errorf("a reader saw %d of the %d keys", k, n)
			}
			return true
		})
		for _, s := range []Interface{st, reader} {
			kvs, _, err := s.List(ctx, "big")
			if err != nil || len(kvs) != n {
				t.Fatalf("list: %d keys, %v", len(kvs), err)
			}
			for i, kv := range kvs {
				if kv.CreateRevision != rev || kv.ModRevision != rev || string(kv.Value) != string(ops[i].Value) {
					t.Fatalf("key %d: %+v, want revision %d", i, kv, rev)
				}
			}
		}
		// A watch from the batch's revision, opened after it was rolled
		// forward, gets it whole too.
		late, err := reader.Watch(ctx, rev)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if e := next(t, late); e.Revision != rev || e.KV.Key != ops[i].Key || string(e.KV.Value) != string(ops[i].Value) {
				t.Fatalf("late watch, event %d: %+v", i, e)
			}
		}
		if e := next(t, late); e.KV.Key != "after" {
			t.Fatalf("late watch, after the batch: %+v", e)
		}
		// One stale compare among 10,000: nothing written.
		cs2, ops2 := bigOps(n, "v2")
		for i := range cs2 {
			cs2[i].ModRevision = rev
		}
		cs2[n-1].ModRevision = rev - 1
		if _, err := st.Txn(ctx, Txn{Compares: cs2, Ops: ops2}); !errors.Is(err, ErrCompareFailed) {
			t.Fatalf("stale compare: %v", err)
		}
		if kv, _ := st.Get(ctx, "big", "00000"); string(kv.Value) != string(ops[0].Value) {
			t.Fatalf("a rejected batch wrote %s", kv.Value)
		}
		// Half updated, half deleted: deletes carry their old values and
		// the updated keys keep their create revision.
		var ops3 []Op
		for i := range n {
			if i%2 == 0 {
				ops3 = append(ops3, Op{Kind: "big", Key: ops[i].Key, Value: []byte("v3")})
			} else {
				ops3 = append(ops3, Op{Kind: "big", Key: ops[i].Key, Delete: true})
			}
		}
		rev3 := mustTxn(t, st, Txn{Compares: cs2[:n-1], Ops: ops3})
		for i := range n {
			e := next(t, w)
			if e.Revision != rev3 || e.KV.Key != ops[i].Key {
				t.Fatalf("event %d: %+v", i, e)
			}
			if i%2 == 1 && (e.Type != Delete || string(e.KV.Value) != string(ops[i].Value)) {
				t.Fatalf("delete event %d: %+v", i, e)
			}
		}
		waitRev(t, reader, rev3)
		kvs, _, _ := reader.List(ctx, "big")
		if len(kvs) != n/2 || kvs[0].CreateRevision != rev || kvs[0].ModRevision != rev3 || string(kvs[0].Value) != "v3" {
			t.Fatalf("after update: %d keys, first %+v", len(kvs), kvs[0])
		}
	})
}

// waitRev waits until st is at revision rev or later.
func waitRev(t *testing.T, st Interface, rev uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r, _ := st.Revision(context.Background()); r >= rev {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store not at revision %d", rev)
		}
		time.Sleep(time.Millisecond)
	}
}

// Clients of one store see each other's writes, and a compare made
// against what one client knew fails once another wrote.
func TestTwoClients(t *testing.T) {
	forEach(t, func(t *testing.T, be backend) {
		if be.other == nil {
			t.Skip("one client only")
		}
		ctx := context.Background()
		a := be.open(t)
		b := be.other(t, a)
		r1 := mustTxn(t, a, Txn{Ops: []Op{{Kind: "port", Key: "p", Value: []byte("a1")}}})
		waitRev(t, b, r1)
		if kv, err := b.Get(ctx, "port", "p"); err != nil || string(kv.Value) != "a1" || kv.ModRevision != r1 {
			t.Fatalf("b reads %+v %v", kv, err)
		}
		r2 := mustTxn(t, b, Txn{Compares: []Compare{{Kind: "port", Key: "p", ModRevision: r1}}, Ops: []Op{{Kind: "port", Key: "p", Value: []byte("b2")}}})
		// a has not necessarily seen r2: its compare is checked against
		// the state at the commit all the same.
		_, err := a.Txn(ctx, Txn{Compares: []Compare{{Kind: "port", Key: "p", ModRevision: r1}}, Ops: []Op{{Kind: "port", Key: "p", Value: []byte("a3")}}})
		var ce *CompareError
		if !errors.As(err, &ce) || ce.Actual != r2 {
			t.Fatalf("stale compare through a: %v", err)
		}
		// Concurrent increments through both clients: none lost.
		var wg sync.WaitGroup
		for _, c := range []Interface{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					for {
						kv, _ := c.Get(ctx, "counter", "n")
						var v int
						fmt.Sscan(string(kv.Value), &v)
						_, err := c.Txn(ctx, Txn{Compares: []Compare{{Kind: "counter", Key: "n", ModRevision: kv.ModRevision}},
							Ops: []Op{{Kind: "counter", Key: "n", Value: fmt.Append(nil, v+1)}}})
						if err == nil {
							break
						}
						if !errors.Is(err, ErrCompareFailed) {
							t.Error(err)
							return
						}
						time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
					}
				}
			}()
		}
		wg.Wait()
		r, _ := a.Revision(ctx)
		waitRev(t, b, r)
		if kv, _ := b.Get(ctx, "counter", "n"); string(kv.Value) != "40" {
			t.Fatalf("counter %s, want 40", kv.Value)
		}
	})
}
