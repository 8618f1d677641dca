package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

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

// A rejected or empty transaction leaves the file byte for byte the same.
func TestBoltRejectedTxnLeavesFileAlone(t *testing.T) {
	ctx := context.Background()
	b := openT(t, t.TempDir(), Options{})
	if rev, err := b.Txn(ctx, Txn{Ops: []Op{{Kind: "network", Key: "n1", Value: []byte(`1`)}}}); err != nil || rev != 1 {
		t.Fatalf("txn: %d %v", rev, err)
	}
	before := dump(t, b)
	_, err := b.Txn(ctx, Txn{Compares: []Compare{{Kind: "network", Key: "n1", ModRevision: 7}},
		Ops: []Op{{Kind: "network", Key: "n3", Value: []byte(`3`)}}})
	if !errors.Is(err, ErrCompareFailed) {
		t.Fatal(err)
	}
	if rev, err := b.Txn(ctx, Txn{Ops: []Op{{Kind: "network", Key: "zz", Delete: true}}}); err != nil || rev != 1 {
		t.Fatalf("no-op delete: %d %v", rev, err)
	}
	if !bytes.Equal(before, dump(t, b)) {
		t.Fatal("a rejected or empty transaction changed the file")
	}
}

// compactBolt forgets the watch history before rev, as History would.
func compactBolt(t *testing.T, b *Bolt, rev uint64) {
	t.Helper()
	err := b.db.Update(func(tx *bolt.Tx) error {
		meta, logb := tx.Bucket(bucketMeta), tx.Bucket(bucketLog)
		for first := u64(meta.Get(keyFirst)); first < rev; first++ {
			if err := logb.Delete(be(first)); err != nil {
				return err
			}
		}
		return meta.Put(keyFirst, be(rev))
	})
	if err != nil {
		t.Fatal(err)
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
	var _ Interface = st.Interface
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

// History bounds the watch log: older revisions are compacted.
func TestBoltHistory(t *testing.T) {
	ctx := context.Background()
	b := openT(t, t.TempDir(), Options{History: 5})
	for i := range 8 {
		b.Txn(ctx, Txn{Ops: []Op{{Kind: "k", Key: "x", Value: []byte{byte(i)}}}})
	}
	if _, err := b.Watch(ctx, 2); !errors.Is(err, ErrCompacted) {
		t.Fatalf("watch of compacted history: %v", err)
	}
	if _, err := b.Watch(ctx, 4); err != nil {
		t.Fatalf("watch of kept history: %v", err)
	}
}
