package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openT(t *testing.T, dir string, opt Options) *Bolt {
	t.Helper()
	b, err := OpenBolt(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func dump(t *testing.T, b *Bolt) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTxnRevisionsAndCompare(t *testing.T) {
	ctx := context.Background()
	b := openT(t, t.TempDir(), Options{})
	if rev, _ := b.Revision(ctx); rev != 0 {
		t.Fatalf("empty store at revision %d", rev)
	}
	rev, err := b.Txn(ctx, Txn{
		Compares: []Compare{{Kind: "network", Key: "n1"}, {Kind: "network", Key: "n2"}},
		Ops:      []Op{{Kind: "network", Key: "n1", Value: []byte(`1`)}, {Kind: "network", Key: "n2", Value: []byte(`2`)}},
	})
	if err != nil || rev != 1 {
		t.Fatalf("txn: %d %v", rev, err)
	}
	rev, err = b.Txn(ctx, Txn{Compares: []Compare{{Kind: "network", Key: "n1", ModRevision: 1}},
		Ops: []Op{{Kind: "network", Key: "n1", Value: []byte(`11`)}}})
	if err != nil || rev != 2 {
		t.Fatalf("update: %d %v", rev, err)
	}
	kv, err := b.Get(ctx, "network", "n1")
	if err != nil || string(kv.Value) != "11" || kv.CreateRevision != 1 || kv.ModRevision != 2 {
		t.Fatalf("get: %+v %v", kv, err)
	}
	before := dump(t, b)
	// A failed compare writes nothing, even when other compares hold.
	_, err = b.Txn(ctx, Txn{
		Compares: []Compare{{Kind: "network", Key: "n2", ModRevision: 1}, {Kind: "network", Key: "n1", ModRevision: 1}},
		Ops:      []Op{{Kind: "network", Key: "n2", Delete: true}, {Kind: "network", Key: "n3", Value: []byte(`3`)}},
	})
	var ce *CompareError
	if !errors.Is(err, ErrCompareFailed) || !errors.As(err, &ce) || ce.Compare.Key != "n1" || ce.Actual != 2 {
		t.Fatalf("want compare error on n1, got %v", err)
	}
	// Deleting a missing key is a no-op that leaves the revision alone.
	if rev, err := b.Txn(ctx, Txn{Ops: []Op{{Kind: "network", Key: "zz", Delete: true}}}); err != nil || rev != 2 {
		t.Fatalf("no-op delete: %d %v", rev, err)
	}
	if !bytes.Equal(before, dump(t, b)) {
		t.Fatal("a rejected or empty transaction changed the file")
	}
	if _, err := b.Get(ctx, "network", "n3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("n3: %v", err)
	}
	kvs, rev, err := b.List(ctx, "network")
	if err != nil || rev != 2 || len(kvs) != 2 || kvs[0].Key != "n1" || kvs[1].ModRevision != 1 {
		t.Fatalf("list: %+v %d %v", kvs, rev, err)
	}
	if kvs, _, _ := b.List(ctx, "nothing"); len(kvs) != 0 {
		t.Fatal("list of an unknown kind")
	}
	if _, err := b.Txn(ctx, Txn{Ops: []Op{{Kind: "", Key: "x"}}}); err == nil {
		t.Fatal("empty kind accepted")
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := openT(t, t.TempDir(), Options{History: 5})
	for i := 1; i <= 3; i++ {
		b.Txn(ctx, Txn{Ops: []Op{{Kind: "k", Key: fmt.Sprint(i), Value: []byte("v")}}})
	}
	ch, err := b.Watch(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	live, err := b.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.Txn(ctx, Txn{Ops: []Op{{Kind: "k", Key: "1", Delete: true}, {Kind: "k", Key: "4", Value: []byte("w")}}})
	next := func(ch <-chan Event) Event {
		t.Helper()
		select {
		case e := <-ch:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
		return Event{}
	}
	for _, want := range []string{"put 2 2", "put 3 3", "delete 4 1 v", "put 4 4 w"} {
		e := next(ch)
		got := fmt.Sprintf("%s %d %s", e.Type, e.Revision, e.KV.Key)
		if e.Type == Delete || e.KV.Key == "4" {
			got += " " + string(e.KV.Value)
		}
		if got != want {
			t.Fatalf("event %q, want %q", got, want)
		}
	}
	if e := next(live); e.Revision != 4 || e.Type != Delete {
		t.Fatalf("live watch got %+v", e)
	}
	// History 5: after 8 transactions, revision 2 is gone.
	for i := 0; i < 4; i++ {
		b.Txn(ctx, Txn{Ops: []Op{{Kind: "k", Key: "x", Value: []byte{byte(i)}}}})
	}
	if _, err := b.Watch(ctx, 2); !errors.Is(err, ErrCompacted) {
		t.Fatalf("watch of compacted history: %v", err)
	}
	if _, err := b.Watch(ctx, 4); err != nil {
		t.Fatalf("watch of kept history: %v", err)
	}
	cancel()
	for range ch { // closed when ctx ends
	}
}

func TestPersistenceAndLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := OpenBolt(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.Txn(ctx, Txn{Ops: []Op{{Kind: "host", Key: "h1", Value: []byte(`{"a":1}`)}}})
	b.Txn(ctx, Txn{Ops: []Op{{Kind: "host", Key: "h1", Value: []byte(`{"a":2}`)}}})
	if _, err := OpenBolt(dir, Options{}); err == nil || !strings.Contains(err.Error(), "locked by another process (is another loomd using this --data-dir?)") {
		t.Fatalf("second open: %v", err)
	}
	b.Close()
	b = openT(t, dir, Options{})
	kv, err := b.Get(ctx, "host", "h1")
	if rev, _ := b.Revision(ctx); err != nil || rev != 2 || kv.CreateRevision != 1 || kv.ModRevision != 2 || string(kv.Value) != `{"a":2}` {
		t.Fatalf("after reopen: %+v rev %d %v", kv, rev, err)
	}
	// Reopening an up-to-date store does not write to it.
	before := dump(t, b)
	b.Close()
	b = openT(t, dir, Options{})
	if !bytes.Equal(before, dump(t, b)) {
		t.Fatal("reopen changed the file")
	}
}

func TestLegacyImportAndJSONHelpers(t *testing.T) {
	dir := t.TempDir()
	// The first version of the store: a bucket of JSON per kind.
	db, err := bolt.Open(dir+"/loom.db", 0o640, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		bk, _ := tx.CreateBucket([]byte("switches"))
		return bk.Put([]byte("0000000000000001"), []byte(`{"connected":true}`))
	})
	db.Close()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var rec struct{ Connected bool }
	if err := st.Get("switches", "0000000000000001", &rec); err != nil || !rec.Connected {
		t.Fatalf("imported record: %+v %v", rec, err)
	}
	if err := st.Put("switches", "0000000000000002", map[string]bool{"connected": false}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	st.List("switches", func(k string, _ []byte) error { keys = append(keys, k); return nil })
	if len(keys) != 2 {
		t.Fatalf("keys %v", keys)
	}
	st.Delete("switches", "0000000000000001")
	if err := st.Get("switches", "0000000000000001", &rec); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
	var _ Interface = st.Bolt
}

// BenchmarkTxn is the latency of one durable (fsynced) single-key write.
func BenchmarkTxn(b *testing.B) {
	st, err := OpenBolt(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	val := bytes.Repeat([]byte("x"), 300)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := st.Txn(ctx, Txn{Ops: []Op{{Kind: "port", Key: fmt.Sprint(i % 1000), Value: val}}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTxnNoSync is the same without fsync: the cost of the store
// itself.
func BenchmarkTxnNoSync(b *testing.B) {
	st, err := OpenBolt(b.TempDir(), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	val := bytes.Repeat([]byte("x"), 300)
	for i := 0; b.Loop(); i++ {
		if _, err := st.Txn(ctx, Txn{Ops: []Op{{Kind: "port", Key: fmt.Sprint(i % 1000), Value: val}}}); err != nil {
			b.Fatal(err)
		}
	}
}
