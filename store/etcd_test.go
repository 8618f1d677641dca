package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/loom-sdn/loom/store/etcdtest"
)

var errCrash = errors.New("crash")

// stagingKeys counts the keys under the staging prefix of e.
func stagingKeys(t *testing.T, e *Etcd) int64 {
	t.Helper()
	resp, err := e.cli.Get(context.Background(), e.stagingPrefix(""), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// A writer that dies between staging a big transaction and committing it
// leaves nothing visible; its lease expires (revoked here) and the next
// big write removes what it staged.
func TestEtcdWriterDiesBeforeCommit(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix(t)
	a := openEtcd(t, prefix, nil)
	b := openEtcd(t, prefix, nil)
	r0 := mustTxn(t, a, Txn{Ops: []Op{{Kind: "small", Key: "x", Value: []byte("1")}}})
	var lease clientv3.LeaseID
	a.afterStage = func(id clientv3.LeaseID) error { lease = id; return errCrash }
	cs, ops := bigOps(1000, "dead")
	if _, err := a.Txn(ctx, Txn{Compares: cs, Ops: ops}); !errors.Is(err, errCrash) {
		t.Fatalf("txn: %v", err)
	}
	a.afterStage = nil
	if stagingKeys(t, a) == 0 {
		t.Fatal("nothing staged")
	}
	for _, st := range []Interface{a, b, openEtcd(t, prefix, nil)} {
		waitRev(t, st, r0)
		if kvs, rev, _ := st.List(ctx, "big"); len(kvs) != 0 || rev != r0 {
			t.Fatalf("staged batch visible: %d keys at revision %d", len(kvs), rev)
		}
	}
	// The lease ends (as it does TTL after the writer died), the marker
	// with it: the next big write collects the rest.
	if _, err := a.cli.Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	cs, ops = bigOps(1000, "live")
	rev := mustTxn(t, b, Txn{Compares: cs, Ops: ops})
	if n := stagingKeys(t, a); n != 0 {
		t.Fatalf("%d staging keys left", n)
	}
	waitRev(t, a, rev)
	if kv, err := a.Get(ctx, "big", "00999"); err != nil || !bytes.HasPrefix(kv.Value, []byte("live")) || kv.ModRevision != rev {
		t.Fatalf("after: %+v %v", kv, err)
	}
}

// A big transaction committed by a writer that died before rolling it
// forward is read whole by every client (one opened afterwards too) and
// rolled forward by the next writer; then the object keys themselves
// hold it, with its revisions.
func TestEtcdRollForwardByNextWriter(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix(t)
	a := openEtcd(t, prefix, nil)
	b := openEtcd(t, prefix, nil)
	_, ops0 := bigOps(300, "old")
	r0 := mustTxn(t, a, Txn{Ops: ops0})
	// The batch updates half the keys, deletes a quarter, adds 200.
	var ops []Op
	for i, op := range ops0 {
		switch i % 4 {
		case 0, 1:
			ops = append(ops, Op{Kind: "big", Key: op.Key, Value: []byte("new " + op.Key)})
		case 2:
			ops = append(ops, Op{Kind: "big", Key: op.Key, Delete: true})
		}
	}
	for i := range 200 {
		ops = append(ops, Op{Kind: "big", Key: fmt.Sprintf("n%03d", i), Value: []byte("added")})
	}
	a.afterCommit = func() error { return errCrash }
	if _, err := a.Txn(ctx, Txn{Ops: ops}); !errors.Is(err, errCrash) {
		t.Fatalf("txn: %v", err)
	}
	a.afterCommit = nil
	if stagingKeys(t, a) == 0 {
		t.Fatal("the batch was rolled forward")
	}
	head, err := a.cli.Get(ctx, a.headKey())
	if err != nil {
		t.Fatal(err)
	}
	rev := uint64(head.Kvs[0].ModRevision)
	check := func(st Interface) {
		t.Helper()
		waitRev(t, st, rev)
		kvs, at, err := st.List(ctx, "big")
		if err != nil || at != rev || len(kvs) != 225+200 {
			t.Fatalf("list: %d keys at %d (want %d), %v", len(kvs), at, rev, err)
		}
		for _, kv := range kvs {
			var want KV
			switch i := keyIndex(kv.Key); {
			case kv.Key[0] == 'n':
				want = KV{Kind: "big", Key: kv.Key, Value: []byte("added"), CreateRevision: rev, ModRevision: rev}
			case i%4 == 3:
				want = KV{Kind: "big", Key: kv.Key, Value: ops0[i].Value, CreateRevision: r0, ModRevision: r0}
			case i%4 == 2:
				t.Fatalf("deleted key %s read", kv.Key)
			default:
				want = KV{Kind: "big", Key: kv.Key, Value: []byte("new " + kv.Key), CreateRevision: r0, ModRevision: rev}
			}
			if !reflect.DeepEqual(kv, want) {
				t.Fatalf("%+v, want %+v", kv, want)
			}
		}
	}
	late := openEtcd(t, prefix, nil)
	for _, st := range []Interface{a, b, late} {
		check(st)
	}
	// The next writer (another client) rolls the batch forward before
	// its own commit.
	r2 := mustTxn(t, b, Txn{Compares: []Compare{{Kind: "big", Key: "00000", ModRevision: rev}}, Ops: []Op{{Kind: "small", Key: "y", Value: []byte("1")}}})
	if n := stagingKeys(t, a); n != 0 {
		t.Fatalf("%d staging keys left", n)
	}
	// Every client, and one opened afterwards from the object keys alone,
	// reads the same.
	fresh := openEtcd(t, prefix, nil)
	for _, st := range []Interface{a, b, late, fresh} {
		waitRev(t, st, r2)
		kvs, _, _ := st.List(ctx, "big")
		if len(kvs) != 425 {
			t.Fatalf("%d keys", len(kvs))
		}
	}
	kv, _ := fresh.Get(ctx, "big", "00001")
	added, _ := fresh.Get(ctx, "big", "n000")
	kept, _ := fresh.Get(ctx, "big", "00003")
	if kv.ModRevision != rev || kv.CreateRevision != r0 || added.CreateRevision != rev || added.ModRevision != rev ||
		kept.ModRevision != r0 || string(kept.Value) != string(ops0[3].Value) {
		t.Fatalf("after roll-forward: %+v %+v %+v", kv, added, kept)
	}
	if _, err := fresh.Get(ctx, "big", "00002"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
}

// Two clients write big and small transactions at once: each commit
// that finds head moved is planned (and staged) again, each writer rolls
// forward the other's batch when it must, and both end with the same
// state, every batch whole.
func TestEtcdConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix(t)
	clients := []*Etcd{openEtcd(t, prefix, nil), openEtcd(t, prefix, nil)}
	var wg sync.WaitGroup
	for c, st := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 4 {
				var ops []Op
				for i := range 300 {
					ops = append(ops, Op{Kind: fmt.Sprintf("k%d", c), Key: fmt.Sprintf("%03d", i), Value: fmt.Appendf(nil, "%d", round)})
				}
				// The shared key is compared at the revision this client
				// read: a loser of a race fails and retries.
				for {
					kv, _ := st.Get(ctx, "shared", "n")
					var v int
					fmt.Sscan(string(kv.Value), &v)
					txn := Txn{Compares: []Compare{{Kind: "shared", Key: "n", ModRevision: kv.ModRevision}},
						Ops: append([]Op{{Kind: "shared", Key: "n", Value: fmt.Append(nil, v+1)}}, ops...)}
					if round%2 == 1 { // a small one
						txn.Ops = append(txn.Ops[:1], Op{Kind: fmt.Sprintf("small%d", c), Key: "x", Value: []byte("x")})
					}
					_, err := st.Txn(ctx, txn)
					if err == nil {
						break
					}
					if !errors.Is(err, ErrCompareFailed) {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	rev, _ := clients[0].Revision(ctx)
	r1, _ := clients[1].Revision(ctx)
	rev = max(rev, r1)
	var states []string
	for _, st := range append(clients, openEtcd(t, prefix, nil)) {
		waitRev(t, st, rev)
		var b bytes.Buffer
		for _, kind := range []string{"shared", "k0", "k1"} {
			kvs, _, _ := st.List(ctx, kind)
			for _, kv := range kvs {
				fmt.Fprintf(&b, "%s/%s=%s@%d,%d ", kind, kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision)
			}
		}
		states = append(states, b.String())
	}
	if states[0] != states[1] || states[1] != states[2] {
		t.Fatalf("clients disagree:\n%.300s\n%.300s\n%.300s", states[0], states[1], states[2])
	}
	if kv, _ := clients[0].Get(ctx, "shared", "n"); string(kv.Value) != "8" {
		t.Fatalf("shared counter %s, want 8", kv.Value)
	}
	for c := range 2 {
		kvs, _, _ := clients[0].List(ctx, fmt.Sprintf("k%d", c))
		for _, kv := range kvs {
			if kv.ModRevision != kvs[0].ModRevision || string(kv.Value) != "2" {
				t.Fatalf("k%d: %+v next to %+v", c, kv, kvs[0])
			}
		}
	}
	if n := stagingKeys(t, clients[0]); n != 0 {
		t.Fatalf("%d staging keys left", n)
	}
}

// Without a cluster, OpenEtcd fails after its dial timeout, naming the
// endpoints.
func TestEtcdUnreachable(t *testing.T) {
	start := time.Now()
	_, err := OpenEtcd(context.Background(), EtcdOptions{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "http://127.0.0.1:1") || time.Since(start) > 5*time.Second {
		t.Fatalf("open of an unreachable cluster: %v after %v", err, time.Since(start))
	}
	_, err = OpenEtcd(context.Background(), EtcdOptions{Endpoints: []string{"https://127.0.0.1:1"}, CAFile: "/nonexistent/ca.pem"})
	if err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("missing CA file: %v", err)
	}
}

func keyIndex(k string) int {
	i, _ := strconv.Atoi(k)
	return i
}

func TestParseURL(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/loom":                         "bolt:/var/lib/loom",
		"bolt:/var/lib/loom":                    "bolt:/var/lib/loom",
		"data":                                  "bolt:data",
		"./a:b":                                 "bolt:./a:b",
		"etcd:http://10.0.0.1:2379":             "etcd:http://10.0.0.1:2379",
		"etcd:http://A:2379, https://B:2379/":   "etcd:http://A:2379,https://B:2379",
		"etcd:":                                 "error",
		"etcd:10.0.0.1:2379":                    "error",
		"etcd:ftp://x:1":                        "error",
		"consul:http://x":                       "error",
		"bolt:":                                 "error",
		"etcd:http://A:2379/path":               "error",
		"etcd:http://[::1]:2379,http://B:2379,": "etcd:http://[::1]:2379,http://B:2379",
	} {
		u, err := ParseURL(in)
		got := u.String()
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("ParseURL(%q) = %q (%v), want %q", in, got, err, want)
		}
	}
}

// benchValue is about a model object as a POST writes it.
var benchValue = bytes.Repeat([]byte("x"), 600)

// benchTxn is a write as the model makes one for a POST: the fence and
// the object compared and put.
func benchTxn(st Interface, i int) Txn {
	ctx := context.Background()
	fence, _ := st.Get(ctx, "model", "fence")
	key := fmt.Sprint(i % 1000)
	obj, _ := st.Get(ctx, "port", key)
	return Txn{
		Compares: []Compare{{Kind: "model", Key: "fence", ModRevision: fence.ModRevision}, {Kind: "port", Key: key, ModRevision: obj.ModRevision}},
		Ops:      []Op{{Kind: "port", Key: key, Value: benchValue}, {Kind: "model", Key: "fence", Value: []byte("{}")}},
	}
}

// BenchmarkModelWrite is one POST-sized model write on each store (the
// embedded etcd cluster runs without fsync unless LOOM_ETCD_FSYNC=1;
// bolt-sync is durable bbolt).
func BenchmarkModelWrite(b *testing.B) {
	ctx := context.Background()
	stores := map[string]func(b *testing.B) Interface{
		"bolt-sync": func(b *testing.B) Interface {
			st, _ := OpenBolt(b.TempDir(), Options{})
			b.Cleanup(func() { st.Close() })
			return st
		},
		"bolt-nosync": func(b *testing.B) Interface {
			st, _ := OpenBolt(b.TempDir(), Options{NoSync: true})
			b.Cleanup(func() { st.Close() })
			return st
		},
		"etcd": func(b *testing.B) Interface { return openEtcd(b, fmt.Sprintf("/bench/%d", prefixes.Add(1)), nil) },
	}
	for _, name := range []string{"bolt-sync", "bolt-nosync", "etcd"} {
		b.Run(name, func(b *testing.B) {
			st := stores[name](b)
			for i := 0; b.Loop(); i++ {
				if _, err := st.Txn(ctx, benchTxn(st, i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEtcdBatch10k is a transaction of 10,000 puts (2 MB) on etcd.
func BenchmarkEtcdBatch10k(b *testing.B) {
	st := openEtcd(b, fmt.Sprintf("/bench/%d", prefixes.Add(1)), nil)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		_, ops := bigOps(10000, fmt.Sprint(i))
		if _, err := st.Txn(ctx, Txn{Ops: ops}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEtcdVisibility is the time from a write on one client to a
// second client's cache holding it.
func BenchmarkEtcdVisibility(b *testing.B) {
	prefix := fmt.Sprintf("/bench/%d", prefixes.Add(1))
	a, c := openEtcd(b, prefix, nil), openEtcd(b, prefix, nil)
	ctx := context.Background()
	var acked, seen []time.Duration
	for b.Loop() {
		start := time.Now()
		rev, err := a.Txn(ctx, Txn{Ops: []Op{{Kind: "port", Key: "p", Value: benchValue}}})
		if err != nil {
			b.Fatal(err)
		}
		acked = append(acked, time.Since(start))
		if err := c.waitFor(ctx, rev); err != nil {
			b.Fatal(err)
		}
		seen = append(seen, time.Since(start))
	}
	reportPercentiles(b, "ack", acked)
	reportPercentiles(b, "seen", seen)
}

// reportPercentiles reports the median and 99th percentile of lat.
func reportPercentiles(b *testing.B, name string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	s := slices.Sorted(slices.Values(lat))
	b.ReportMetric(float64(s[len(s)/2].Microseconds()), name+"-p50-µs")
	b.ReportMetric(float64(s[len(s)*99/100].Microseconds()), name+"-p99-µs")
}

// A cluster that loses a member (the one both clients were given first,
// maybe the leader) keeps serving: writes go on through both clients,
// big ones too, and their caches follow.
func TestEtcdMemberDies(t *testing.T) {
	c, err := etcdtest.Start(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close) // after the clients' Close
	ctx := context.Background()
	open := func() *Etcd {
		e, err := OpenEtcd(ctx, EtcdOptions{Endpoints: c.Endpoints, Prefix: "/dies"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	a, b := open(), open()
	w, err := b.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustTxn(t, a, Txn{Ops: []Op{{Kind: "k", Key: "before", Value: []byte("1")}}})
	c.Stop(0)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := b.Txn(wctx, Txn{Ops: []Op{{Kind: "k", Key: "b", Value: []byte("1")}}}); err != nil {
		t.Fatal(err)
	}
	_, ops := bigOps(500, "after")
	rev, err := a.Txn(wctx, Txn{Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Etcd{a, b} {
		waitRev(t, st, rev)
		if kvs, _, _ := st.List(ctx, "big"); len(kvs) != 500 {
			t.Fatalf("%d keys", len(kvs))
		}
		if _, err := st.Get(ctx, "k", "b"); err != nil {
			t.Fatal(err)
		}
	}
	// A watch goes on through it too.
	for _, want := range []string{"before", "b"} {
		if e := next(t, w); e.KV.Key != want {
			t.Fatalf("watch: %+v, want %s", e, want)
		}
	}
	for i := range 500 {
		if e := next(t, w); e.Revision != rev || e.KV.Key != ops[i].Key {
			t.Fatalf("watch: %+v", e)
		}
	}
}

// A commit whose reply is lost (a member died, a timeout) is settled: if
// it went through, Txn returns its revision and writes nothing twice; if
// not, Txn commits it again. Small and staged transactions alike.
func TestEtcdLostCommitReply(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix(t)
	a := openEtcd(t, prefix, nil)
	w, err := a.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	errLost := errors.New("reply lost")
	for _, applied := range []bool{true, false} {
		for _, n := range []int{1, 300} {
			calls := 0
			a.commitHook = func(txn clientv3.Txn) (*clientv3.TxnResponse, error) {
				if calls++; calls > 1 {
					return txn.Commit()
				}
				if applied {
					txn.Commit()
				}
				return nil, errLost
			}
			tag := fmt.Sprintf("%v-%d", applied, n)
			_, ops := bigOps(n, tag)
			rev, err := a.Txn(ctx, Txn{Ops: ops})
			a.commitHook = nil
			if err != nil {
				t.Fatalf("%s: %v", tag, err)
			}
			if applied && calls != 1 || !applied && calls != 2 {
				t.Errorf("%s: %d commits", tag, calls)
			}
			for i := range n {
				if e := next(t, w); e.Revision != rev || !bytes.HasPrefix(e.KV.Value, []byte(tag)) || e.KV.Key != ops[i].Key {
					t.Fatalf("%s: event %d: %+v, want revision %d", tag, i, e, rev)
				}
			}
		}
	}
	// Nothing was written twice: the next event is the next write's.
	rev := mustTxn(t, a, Txn{Ops: []Op{{Kind: "small", Key: "end", Value: []byte("x")}}})
	if e := next(t, w); e.Revision != rev || e.KV.Key != "end" {
		t.Fatalf("after: %+v", e)
	}
	if n := stagingKeys(t, a); n != 0 {
		t.Fatalf("%d staging keys left", n)
	}
}

// A cache that cannot read a batch it is behind on (compacted away) loads
// the store again and goes on from there, consistent.
func TestEtcdCacheReloads(t *testing.T) {
	ctx := context.Background()
	prefix := newPrefix(t)
	a, b := openEtcd(t, prefix, nil), openEtcd(t, prefix, nil)
	r0 := mustTxn(t, a, Txn{Ops: []Op{{Kind: "big", Key: "00001", Value: []byte("gone")}, {Kind: "k", Key: "x", Value: []byte("1")}}})
	waitRev(t, b, r0)
	held, release := make(chan struct{}), make(chan struct{})
	hook := func() { close(held); <-release }
	b.beforeFetch.Store(&hook)
	_, ops := bigOps(300, "batch")
	rev := mustTxn(t, a, Txn{Ops: ops})
	<-held // b's cache is stuck before reading the batch
	b.beforeFetch.Store(nil)
	r2 := mustTxn(t, a, Txn{Ops: []Op{{Kind: "k", Key: "x", Delete: true}}})
	if _, err := a.cli.Compact(ctx, int64(r2)); err != nil {
		t.Fatal(err)
	}
	if r, _ := b.Revision(ctx); r != r0 {
		t.Fatalf("b at %d, want %d", r, r0)
	}
	close(release)
	waitRev(t, b, r2)
	kvs, at, _ := b.List(ctx, "big")
	if at != r2 || len(kvs) != 300 || kvs[1].ModRevision != rev || kvs[1].CreateRevision != r0 || string(kvs[1].Value) != string(ops[1].Value) {
		t.Fatalf("b after reloading: %d keys at %d, %+v", len(kvs), at, kvs[1])
	}
	if _, err := b.Get(ctx, "k", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
	// And it follows on.
	r3 := mustTxn(t, a, Txn{Ops: []Op{{Kind: "k", Key: "y", Value: []byte("1")}}})
	waitRev(t, b, r3)
	if _, err := b.Txn(ctx, Txn{Compares: []Compare{{Kind: "k", Key: "y", ModRevision: r3}}, Ops: []Op{{Kind: "k", Key: "y", Delete: true}}}); err != nil {
		t.Fatal(err)
	}
}
