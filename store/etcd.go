package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The etcd store (Etcd) keeps the same promises as the bbolt one on a
// shared etcd cluster; several loomd replicas (and tools) open it at once.
//
// Layout, under Prefix (default /loom/v1):
//
//	<prefix>/head                        put by every commit (t/<id>, b/<batch id>); its mod revision is the store revision
//	<prefix>/model/<kind>/<key>          one object: envelope (create, mod revisions) | value
//	<prefix>/staging/<id>/m              marker of a batch being staged (on a lease)
//	<prefix>/staging/<id>/c<n>           chunk n of a staged batch (encodeEvents)
//
// Every transaction compares the head's mod revision with the one this
// client's cache last saw and bumps it, so commits are serialized and
// optimistic: when head has not moved, no object has, and the caller's
// compares are checked against the cache (which holds the state at that
// head). A commit whose head compare fails waits for the cache to catch
// up and is planned again. Store revisions are etcd revisions of commits:
// monotonic, with gaps (staging and roll-forward writes use revisions too).
//
// Big transactions. etcd refuses a txn of more than --max-txn-ops (128)
// ops or a request over --max-request-bytes (1.5 MiB). A transaction that
// does not fit is staged: its ops (with the create revisions and, for
// deletes, the old values they imply) are written as chunks of at most
// MaxTxnOps-1 ops under staging/<id>/, invisible to readers, guarded by
// the marker key, which is on a lease this writer keeps alive. One small
// etcd txn commits it: head unmoved and marker present → head = b/<id>,
// marker deleted. Readers and watchers see that commit at its revision R
// and apply the whole batch from the chunks read at R: all at once, with
// every create/mod revision R. Then the batch is rolled forward: each
// chunk (a key is in one chunk only, so in any order), in an etcd txn
// guarded by head still at R, writes its ops into the object keys (their
// envelopes carrying R) and deletes itself; watchers hide those writes
// (no head put: they already applied the batch). The writer rolls its batch forward before returning; if it dies
// first, the next writer (of any replica) must finish it before its own
// commit can move head, so a batch is never half visible and never lost.
// A writer that dies before its commit leaves a marker that expires with
// its lease; chunks without a marker whose id head does not name are
// garbage, deleted on open and before every staged write.
//
// A commit whose reply is lost (a timeout, a member gone) is settled, not
// reported: a fence txn guarded like it moves head, so that it can no
// longer apply if it did not yet; if head had moved, the cache tells
// whether the commit's own head value (a random id) is what moved it.
// Txn then returns the commit's revision, or commits again.
//
// One difference with Bolt: a key written twice in one transaction gives
// one event, its last op's (etcd refuses a txn that names a key twice).
//
// Reads (Get, List, Revision) come from a cache fed by one etcd watch;
// Txn returns once the cache holds its commit, so a client reads its own
// writes, and others see them when their watch delivers them.

// EtcdOptions configure OpenEtcd.
type EtcdOptions struct {
	Endpoints   []string
	DialTimeout time.Duration // default 5 s
	// TLS: a CA to verify the servers, and a client certificate and key.
	CAFile, CertFile, KeyFile string
	// Prefix of every key (default /loom/v1); several clusters or tools
	// may share an etcd under different prefixes.
	Prefix string
	// MaxTxnOps and MaxRequestBytes are the cluster's --max-txn-ops and
	// --max-request-bytes (defaults 128 and 1.5 MiB): bigger transactions
	// are staged.
	MaxTxnOps       int
	MaxRequestBytes int
	// StagingTTL is the lease of a batch being staged, in seconds
	// (default 10): how long garbage of a writer that died may stay.
	StagingTTL int64
}

// Etcd is the Interface on an etcd cluster, for any number of clients
// (loomd replicas) at once. Get, List and Revision read this client's
// cache: another client's write is there once the watch brings it (about
// as long as the write itself took), its own writes as soon as Txn
// returns.
type Etcd struct {
	cli    *clientv3.Client
	opt    EtcdOptions
	prefix string
	stop   context.CancelFunc
	done   chan struct{}

	wmu sync.Mutex // serializes this client's writes

	mu      sync.RWMutex
	kinds   map[string]map[string]KV
	rev     uint64        // store revision: head's mod revision
	seen    int64         // etcd revision the cache has read through
	pending *pendingBatch // a committed batch not yet rolled forward
	notify  chan struct{} // closed and replaced whenever the cache moves
	// tags are the head values of the last commits seen, with their
	// revisions (oldest first in tagOrder): how a commit whose reply was
	// lost learns that it went through. loads counts cache reloads (a
	// reload may skip commits).
	tags     map[string]uint64
	tagOrder []string
	loads    int

	// test hooks: a non-nil error stops Txn there, as a crash would;
	// commitHook replaces the commit txn's Commit.
	afterStage  func(lease clientv3.LeaseID) error
	afterCommit func() error
	commitHook  func(clientv3.Txn) (*clientv3.TxnResponse, error)
	beforeFetch atomic.Pointer[func()] // before a watcher reads a batch
}

type pendingBatch struct {
	id     string
	rev    uint64
	chunks map[string]bool // keys of the chunks not rolled forward
}

var _ Interface = (*Etcd)(nil)

// OpenEtcd connects to etcd and loads the cache.
func OpenEtcd(ctx context.Context, opt EtcdOptions) (*Etcd, error) {
	if len(opt.Endpoints) == 0 {
		return nil, errors.New("store: etcd: no endpoints")
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = 5 * time.Second
	}
	if opt.Prefix == "" {
		opt.Prefix = "/loom/v1"
	}
	opt.Prefix = strings.TrimSuffix(opt.Prefix, "/")
	if opt.MaxTxnOps == 0 {
		opt.MaxTxnOps = 128
	}
	if opt.MaxRequestBytes == 0 {
		opt.MaxRequestBytes = 3 << 19
	}
	if opt.StagingTTL == 0 {
		opt.StagingTTL = 10
	}
	cfg := clientv3.Config{Endpoints: opt.Endpoints, DialTimeout: opt.DialTimeout, Logger: zap.NewNop(), Context: context.Background()}
	if opt.CAFile != "" || opt.CertFile != "" || opt.KeyFile != "" {
		tc, err := transport.TLSInfo{TrustedCAFile: opt.CAFile, CertFile: opt.CertFile, KeyFile: opt.KeyFile}.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("store: etcd TLS: %w", err)
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("store: etcd: %w", err)
	}
	e := &Etcd{cli: cli, opt: opt, prefix: opt.Prefix, notify: make(chan struct{}), done: make(chan struct{}), tags: map[string]uint64{}}
	lctx, cancel := context.WithTimeout(ctx, opt.DialTimeout)
	defer cancel()
	if err := e.load(lctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("store: etcd %s: %w", strings.Join(opt.Endpoints, ","), err)
	}
	e.gc(lctx)
	rctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	go e.run(rctx)
	return e, nil
}

// Close implements Interface.
func (e *Etcd) Close() error {
	e.stop()
	<-e.done
	return e.cli.Close()
}

// Client is the etcd client of the store (for elections and tests).
func (e *Etcd) Client() *clientv3.Client { return e.cli }

func (e *Etcd) headKey() string                { return e.prefix + "/head" }
func (e *Etcd) objKey(kind, key string) string { return e.prefix + "/model/" + kind + "/" + key }
func (e *Etcd) stagingPrefix(id string) string {
	if id == "" {
		return e.prefix + "/staging/"
	}
	return e.prefix + "/staging/" + id + "/"
}

// envelope: 1 | uvarint create | uvarint mod | value; 0 means etcd's own
// revision of the key.
func envelope(create, mod uint64, value []byte) string {
	b := make([]byte, 1, 1+2*binary.MaxVarintLen64+len(value))
	b[0] = 1
	b = binary.AppendUvarint(b, create)
	b = binary.AppendUvarint(b, mod)
	return string(append(b, value...))
}

// decodeKV decodes an object key of etcd into a KV.
func (e *Etcd) decodeKV(kv *mvccpb.KeyValue) (KV, bool) {
	rest, ok := strings.CutPrefix(string(kv.Key), e.prefix+"/model/")
	if !ok {
		return KV{}, false
	}
	kind, key, ok := strings.Cut(rest, "/")
	if !ok {
		return KV{}, false
	}
	out := KV{Kind: kind, Key: key, CreateRevision: uint64(kv.CreateRevision), ModRevision: uint64(kv.ModRevision)}
	b := kv.Value
	if len(b) > 0 && b[0] == 1 {
		create, n := binary.Uvarint(b[1:])
		mod, m := binary.Uvarint(b[1+max(n, 0):])
		if n > 0 && m > 0 {
			if create != 0 {
				out.CreateRevision = create
			}
			if mod != 0 {
				out.ModRevision = mod
			}
			b = b[1+n+m:]
		}
	}
	out.Value = slices.Clone(b)
	return out, true
}

// load fills the cache from the whole prefix at one revision.
func (e *Etcd) load(ctx context.Context) error {
	resp, err := e.cli.Get(ctx, e.prefix+"/", clientv3.WithPrefix())
	if err != nil {
		return err
	}
	kinds := map[string]map[string]KV{}
	var rev uint64
	var headVal string
	staged := map[string][]*mvccpb.KeyValue{}
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		switch {
		case k == e.headKey():
			rev, headVal = uint64(kv.ModRevision), string(kv.Value)
		case strings.HasPrefix(k, e.stagingPrefix("")):
			id, chunk, _ := strings.Cut(strings.TrimPrefix(k, e.stagingPrefix("")), "/")
			if strings.HasPrefix(chunk, "c") {
				staged[id] = append(staged[id], kv)
			}
		default:
			if o, ok := e.decodeKV(kv); ok {
				if kinds[o.Kind] == nil {
					kinds[o.Kind] = map[string]KV{}
				}
				kinds[o.Kind][o.Key] = o
			}
		}
	}
	var pending *pendingBatch
	if id, ok := strings.CutPrefix(headVal, "b/"); ok && len(staged[id]) > 0 {
		// A committed batch not rolled forward yet: the rest of it is in
		// its chunks.
		chunks := staged[id]
		pending = &pendingBatch{id: id, rev: rev, chunks: map[string]bool{}}
		for _, c := range chunks {
			evs, err := decodeEvents(rev, c.Value)
			if err != nil {
				return err
			}
			applyEvents(kinds, batchEvents(evs, rev))
			pending.chunks[string(c.Key)] = true
		}
	}
	e.mu.Lock()
	e.kinds, e.rev, e.seen, e.pending = kinds, rev, resp.Header.Revision, pending
	e.loads++
	e.tag(headVal, rev)
	e.moved()
	e.mu.Unlock()
	return nil
}

// tag records the head value of the commit at rev; under mu.
func (e *Etcd) tag(val string, rev uint64) {
	if val == "" {
		return
	}
	if _, ok := e.tags[val]; !ok {
		e.tagOrder = append(e.tagOrder, val)
	}
	e.tags[val] = rev
	if len(e.tagOrder) > 4096 {
		delete(e.tags, e.tagOrder[0])
		e.tagOrder = e.tagOrder[1:]
	}
}

// moved wakes everyone waiting on the cache; under mu.
func (e *Etcd) moved() {
	close(e.notify)
	e.notify = make(chan struct{})
}

// batchEvents completes the events of a staged batch committed at rev.
func batchEvents(evs []Event, rev uint64) []Event {
	for i := range evs {
		if evs[i].Type == Put && evs[i].KV.CreateRevision == 0 {
			evs[i].KV.CreateRevision = rev
		}
	}
	return evs
}

func applyEvents(kinds map[string]map[string]KV, evs []Event) {
	for _, ev := range evs {
		m := kinds[ev.KV.Kind]
		if ev.Type == Delete {
			delete(m, ev.KV.Key)
			continue
		}
		if m == nil {
			m = map[string]KV{}
			kinds[ev.KV.Kind] = m
		}
		m[ev.KV.Key] = ev.KV
	}
}

// run keeps the cache up to date until Close.
func (e *Etcd) run(ctx context.Context) {
	defer close(e.done)
	for ctx.Err() == nil {
		e.mu.RLock()
		from := e.seen + 1
		e.mu.RUnlock()
		err := e.follow(ctx, from, func(g group) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			if g.commit {
				applyEvents(e.kinds, g.events)
				e.rev = uint64(g.rev)
				e.tag(g.head, uint64(g.rev))
				if g.batch != "" {
					e.pending = &pendingBatch{id: g.batch, rev: uint64(g.rev), chunks: map[string]bool{}}
					for _, c := range g.chunks {
						e.pending.chunks[c] = true
					}
				}
			}
			if p := e.pending; p != nil {
				for _, c := range g.rolled {
					delete(p.chunks, c)
				}
				if len(p.chunks) == 0 {
					e.pending = nil
				}
			}
			e.seen = g.rev
			e.moved()
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		// The watch broke: a lost leader or connection (watch again from
		// where it stopped), or history compacted before the cache could
		// read it (load it all again).
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		if errors.Is(err, ErrCompacted) {
			lctx, cancel := context.WithTimeout(ctx, e.opt.DialTimeout)
			e.load(lctx)
			cancel()
		}
	}
}

// group is what one etcd revision did, in store terms.
type group struct {
	rev    int64
	commit bool     // head was put: a store transaction
	head   string   // the value put: t/<id>, b/<batch id> or f/<id>
	batch  string   // the id of a staged batch it commits
	chunks []string // that batch's chunk keys
	events []Event
	rolled []string // chunk keys deleted (rolled forward or garbage)
}

// follow watches the prefix from etcd revision from and calls fn with
// each revision's group, until ctx ends or the watch fails.
func (e *Etcd) follow(ctx context.Context, from int64, fn func(group) error) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := e.cli.Watch(wctx, e.prefix+"/", clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithPrevKV())
	for resp := range wch {
		if err := resp.Err(); err != nil {
			if resp.CompactRevision != 0 {
				return ErrCompacted
			}
			return err
		}
		for i := 0; i < len(resp.Events); {
			j := i + 1
			for j < len(resp.Events) && resp.Events[j].Kv.ModRevision == resp.Events[i].Kv.ModRevision {
				j++
			}
			g, err := e.decodeGroup(ctx, resp.Events[i:j])
			if err != nil {
				return err
			}
			if err := fn(g); err != nil {
				return err
			}
			i = j
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("store: etcd watch closed")
}

// decodeGroup turns the etcd events of one revision into a group.
func (e *Etcd) decodeGroup(ctx context.Context, evs []*clientv3.Event) (group, error) {
	g := group{rev: evs[0].Kv.ModRevision}
	var direct []Event
	for _, ev := range evs {
		k := string(ev.Kv.Key)
		switch {
		case k == e.headKey():
			if ev.Type == clientv3.EventTypePut {
				g.commit, g.head = true, string(ev.Kv.Value)
				if id, ok := strings.CutPrefix(g.head, "b/"); ok {
					g.batch = id
				}
			}
		case strings.HasPrefix(k, e.stagingPrefix("")):
			if _, chunk, _ := strings.Cut(strings.TrimPrefix(k, e.stagingPrefix("")), "/"); ev.Type == clientv3.EventTypeDelete && strings.HasPrefix(chunk, "c") {
				g.rolled = append(g.rolled, k)
			}
		case ev.Type == clientv3.EventTypePut:
			if kv, ok := e.decodeKV(ev.Kv); ok {
				direct = append(direct, Event{Type: Put, Revision: uint64(g.rev), KV: kv})
			}
		case ev.PrevKv != nil:
			if kv, ok := e.decodeKV(ev.PrevKv); ok {
				kv.ModRevision = uint64(g.rev)
				direct = append(direct, Event{Type: Delete, Revision: uint64(g.rev), KV: kv})
			}
		}
	}
	switch {
	case !g.commit:
		// Staging, roll-forward or garbage collection: no change.
	case g.batch == "":
		g.events = direct
	default:
		if h := e.beforeFetch.Load(); h != nil {
			(*h)()
		}
		resp, err := e.cli.Get(ctx, e.stagingPrefix(g.batch), clientv3.WithPrefix(), clientv3.WithRev(g.rev))
		if errors.Is(err, rpctypes.ErrCompacted) {
			return g, ErrCompacted
		}
		if err != nil {
			return g, err
		}
		for _, kv := range resp.Kvs {
			if !strings.HasPrefix(string(kv.Key), e.stagingPrefix(g.batch)+"c") {
				continue
			}
			evs, err := decodeEvents(uint64(g.rev), kv.Value)
			if err != nil {
				return g, err
			}
			g.events = append(g.events, batchEvents(evs, uint64(g.rev))...)
			g.chunks = append(g.chunks, string(kv.Key))
		}
	}
	return g, nil
}

// waitFor blocks until the cache has seen the commit of store revision
// rev (or a later one).
func (e *Etcd) waitFor(ctx context.Context, rev uint64) error {
	return e.waitCache(ctx, func() bool { return e.rev >= rev })
}

// waitCache blocks until done, read under the cache's lock, holds.
func (e *Etcd) waitCache(ctx context.Context, done func() bool) error {
	for {
		e.mu.RLock()
		ok, wait := done(), e.notify
		e.mu.RUnlock()
		if ok {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		case <-e.done:
			return errors.New("store: closed")
		}
	}
}

// Get implements Interface.
func (e *Etcd) Get(ctx context.Context, kind, key string) (KV, error) {
	if err := ctx.Err(); err != nil {
		return KV{}, err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	kv, ok := e.kinds[kind][key]
	if !ok {
		return KV{}, ErrNotFound
	}
	kv.Value = slices.Clone(kv.Value)
	return kv, nil
}

// List implements Interface.
func (e *Etcd) List(ctx context.Context, kind string) ([]KV, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	e.mu.RLock()
	m, rev := e.kinds[kind], e.rev
	out := make([]KV, 0, len(m))
	for _, kv := range m {
		kv.Value = slices.Clone(kv.Value)
		out = append(out, kv)
	}
	e.mu.RUnlock()
	slices.SortFunc(out, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	return out, rev, nil
}

// Revision implements Interface.
func (e *Etcd) Revision(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.rev, nil
}

// plan checks t's compares against the cache and returns the events it
// would produce (one per key: its last op, in the order of first
// appearance; deletes of missing keys left out), the head revision they
// were planned at, and the batch to roll forward first if any.
func (e *Etcd) plan(t Txn) ([]Event, uint64, *pendingBatch, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.pending != nil {
		p := *e.pending
		return nil, e.rev, &p, nil
	}
	for _, c := range t.Compares {
		var actual uint64
		if kv, ok := e.kinds[c.Kind][c.Key]; ok {
			actual = kv.ModRevision
		}
		if actual != c.ModRevision {
			return nil, 0, nil, &CompareError{Compare: c, Actual: actual}
		}
	}
	type k2 struct{ kind, key string }
	last := map[k2]int{}
	var order []k2
	for i, op := range t.Ops {
		k := k2{op.Kind, op.Key}
		if _, seen := last[k]; !seen {
			order = append(order, k)
		}
		last[k] = i
	}
	var evs []Event
	for _, k := range order {
		op := t.Ops[last[k]]
		old, exists := e.kinds[k.kind][k.key]
		if op.Delete {
			if exists {
				evs = append(evs, Event{Type: Delete, KV: KV{Kind: k.kind, Key: k.key, Value: old.Value, CreateRevision: old.CreateRevision}})
			}
			continue
		}
		ev := Event{Type: Put, KV: KV{Kind: k.kind, Key: k.key, Value: op.Value}}
		if exists {
			ev.KV.CreateRevision = old.CreateRevision
		}
		evs = append(evs, ev)
	}
	return evs, e.rev, nil, nil
}

// Txn implements Interface.
func (e *Etcd) Txn(ctx context.Context, t Txn) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	for _, op := range t.Ops {
		if op.Kind == "" || op.Key == "" || strings.Contains(op.Kind, "/") {
			return 0, fmt.Errorf("store: empty kind or key, or a kind with a /, in %+v", op)
		}
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	for {
		evs, head, pending, err := e.plan(t)
		if err != nil {
			return 0, err
		}
		if pending != nil {
			if err := e.rollForward(ctx, pending.id, pending.rev); err != nil {
				return 0, err
			}
			if err := e.waitRolled(ctx, pending.id); err != nil {
				return 0, err
			}
			continue
		}
		if len(evs) == 0 {
			return head, nil
		}
		var rev, moved uint64
		if e.fits(evs) {
			rev, moved, err = e.commitDirect(ctx, head, evs)
		} else {
			rev, moved, err = e.commitStaged(ctx, head, evs)
		}
		if err != nil {
			return 0, err
		}
		if rev != 0 {
			// Committed: wait for the cache to hold it (read your writes),
			// even when ctx ends now.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opt.DialTimeout)
			defer cancel()
			e.waitFor(wctx, rev)
			return rev, nil
		}
		// Another client committed first: plan again on its state.
		if err := e.waitFor(ctx, moved); err != nil {
			return 0, err
		}
	}
}

// waitRolled waits until the cache has seen batch id rolled forward (or
// a later commit).
func (e *Etcd) waitRolled(ctx context.Context, id string) error {
	return e.waitCache(ctx, func() bool { return e.pending == nil || e.pending.id != id })
}

func (e *Etcd) budget() int { return e.opt.MaxRequestBytes * 3 / 4 }

// opBytes is about what ev costs in a request.
func (e *Etcd) opBytes(ev Event) int {
	return len(e.prefix) + len(ev.KV.Kind) + len(ev.KV.Key) + len(ev.KV.Value) + 48
}

// fits says whether evs go in one etcd txn (with the head put).
func (e *Etcd) fits(evs []Event) bool {
	if len(evs)+1 > e.opt.MaxTxnOps {
		return false
	}
	n := 0
	for _, ev := range evs {
		n += e.opBytes(ev)
	}
	return n <= e.budget()
}

func (e *Etcd) headIs(rev uint64) clientv3.Cmp {
	return clientv3.Compare(clientv3.ModRevision(e.headKey()), "=", int64(rev))
}

// headRev reads head's mod revision from a failed txn's Else get.
func headRev(resp *clientv3.TxnResponse) uint64 {
	if len(resp.Responses) > 0 {
		if r := resp.Responses[0].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
			return uint64(r.Kvs[0].ModRevision)
		}
	}
	return 0
}

// commitDirect commits evs in one etcd txn guarded by head: its revision,
// or 0 and head's revision when head moved.
func (e *Etcd) commitDirect(ctx context.Context, head uint64, evs []Event) (uint64, uint64, error) {
	ops := make([]clientv3.Op, 0, len(evs)+1)
	for _, ev := range evs {
		if ev.Type == Delete {
			ops = append(ops, clientv3.OpDelete(e.objKey(ev.KV.Kind, ev.KV.Key)))
		} else {
			ops = append(ops, clientv3.OpPut(e.objKey(ev.KV.Kind, ev.KV.Key), envelope(ev.KV.CreateRevision, 0, ev.KV.Value)))
		}
	}
	tag := "t/" + newBatchID()
	ops = append(ops, clientv3.OpPut(e.headKey(), tag))
	resp, err := e.commit(e.cli.Txn(ctx).If(e.headIs(head)).Then(ops...).Else(clientv3.OpGet(e.headKey())))
	if err != nil {
		rev, ok, serr := e.settle(ctx, head, tag, err)
		switch {
		case serr != nil:
			return 0, 0, serr
		case ok:
			return rev, 0, nil
		}
		return 0, rev, nil // not applied: plan again at rev
	}
	if !resp.Succeeded {
		return 0, headRev(resp), nil
	}
	return uint64(resp.Header.Revision), 0, nil
}

// chunks splits evs into chunks that each roll forward in one etcd txn.
func (e *Etcd) chunks(evs []Event) [][]Event {
	var out [][]Event
	start, n := 0, 0
	for i, ev := range evs {
		b := e.opBytes(ev)
		if i > start && (i-start+1 > e.opt.MaxTxnOps-1 || n+b > e.budget()) {
			out = append(out, evs[start:i])
			start, n = i, 0
		}
		n += b
	}
	return append(out, evs[start:])
}

func newBatchID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// commitStaged stages evs, commits them with one small txn and rolls
// them forward (see the package doc).
func (e *Etcd) commitStaged(ctx context.Context, head uint64, evs []Event) (uint64, uint64, error) {
	e.gc(ctx)
	id := newBatchID()
	marker := e.stagingPrefix(id) + "m"
	lease, err := e.cli.Grant(ctx, e.opt.StagingTTL)
	if err != nil {
		return 0, 0, fmt.Errorf("store: etcd: %w", err)
	}
	kctx, stopKeepAlive := context.WithCancel(ctx)
	defer stopKeepAlive()
	kach, err := e.cli.KeepAlive(kctx, lease.ID)
	if err != nil {
		return 0, 0, fmt.Errorf("store: etcd: %w", err)
	}
	go func() {
		for range kach { // drained, so that no renewal is dropped
		}
	}()
	committed := false
	cleanup := func() {
		if committed {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opt.DialTimeout)
		defer cancel()
		e.cli.Revoke(cctx, lease.ID)
		e.cli.Delete(cctx, e.stagingPrefix(id), clientv3.WithPrefix())
	}
	if _, err := e.cli.Put(ctx, marker, "", clientv3.WithLease(lease.ID)); err != nil {
		cleanup()
		return 0, 0, fmt.Errorf("store: etcd: %w", err)
	}
	markerIs := clientv3.Compare(clientv3.Version(marker), ">", 0)
	// Chunk puts, several per etcd txn, each guarded by the marker.
	var puts []clientv3.Op
	size := 0
	flush := func() error {
		if len(puts) == 0 {
			return nil
		}
		resp, err := e.cli.Txn(ctx).If(markerIs).Then(puts...).Commit()
		puts, size = puts[:0], 0
		if err != nil {
			return fmt.Errorf("store: etcd: %w", err)
		}
		if !resp.Succeeded {
			return errors.New("store: etcd: the staging lease expired")
		}
		return nil
	}
	for i, c := range e.chunks(evs) {
		payload := encodeEvents(c)
		if len(puts)+1 > e.opt.MaxTxnOps || size+len(payload) > e.budget() {
			if err := flush(); err != nil {
				cleanup()
				return 0, 0, err
			}
		}
		puts = append(puts, clientv3.OpPut(fmt.Sprintf("%sc%06d", e.stagingPrefix(id), i), string(payload)))
		size += len(payload) + 64
	}
	if err := flush(); err != nil {
		cleanup()
		return 0, 0, err
	}
	if e.afterStage != nil {
		if err := e.afterStage(lease.ID); err != nil {
			committed = true // a crash: leave everything as it is
			return 0, 0, err
		}
	}
	resp, err := e.commit(e.cli.Txn(ctx).If(e.headIs(head), markerIs).
		Then(clientv3.OpPut(e.headKey(), "b/"+id), clientv3.OpDelete(marker)).
		Else(clientv3.OpGet(e.headKey()), clientv3.OpGet(marker)))
	var rev uint64
	switch {
	case err != nil:
		rev, committed, err = e.settle(ctx, head, "b/"+id, err)
		if err != nil {
			// Unknown: leave the staging to the lease and the collector.
			committed = true
			return 0, 0, err
		}
		if !committed {
			cleanup()
			return 0, rev, nil // not applied: plan again at rev
		}
	case !resp.Succeeded:
		cleanup()
		if r := resp.Responses[1].GetResponseRange(); r == nil || len(r.Kvs) == 0 {
			return 0, 0, errors.New("store: etcd: the staging lease expired")
		}
		return 0, headRev(resp), nil
	default:
		committed, rev = true, uint64(resp.Header.Revision)
	}
	stopKeepAlive()
	e.cli.Revoke(context.WithoutCancel(ctx), lease.ID)
	if e.afterCommit != nil {
		if err := e.afterCommit(); err != nil {
			return 0, 0, err
		}
	}
	// The batch is committed: a failed roll-forward is the next writer's.
	e.rollForward(ctx, id, rev)
	return rev, 0, nil
}

// commit commits a commit txn (through the test hook if set).
func (e *Etcd) commit(t clientv3.Txn) (*clientv3.TxnResponse, error) {
	if e.commitHook != nil {
		return e.commitHook(t)
	}
	return t.Commit()
}

// settle learns whether a commit txn that put tag in head, guarded by head
// at revision head, went through though its reply was lost (failed is the
// error it got): its revision and true if it did, else the revision to
// plan again at. A txn that timed out
// may still be applied later, so settle first fences it: it moves head
// itself, guarded the same way; if that succeeds, the lost txn can no
// longer apply. If head had moved, the cache, once there, knows whether
// the lost txn moved it.
func (e *Etcd) settle(ctx context.Context, head uint64, tag string, failed error) (uint64, bool, error) {
	e.mu.RLock()
	loads := e.loads
	e.mu.RUnlock()
	for {
		if ctx.Err() != nil {
			return 0, false, fmt.Errorf("store: etcd: commit outcome unknown: %w", failed)
		}
		select {
		case <-e.done: // closed: its client answers nothing any more
			return 0, false, fmt.Errorf("store: closed; commit outcome unknown: %w", failed)
		default:
		}
		resp, err := e.cli.Txn(ctx).If(e.headIs(head)).Then(clientv3.OpPut(e.headKey(), "f/"+newBatchID())).
			Else(clientv3.OpGet(e.headKey())).Commit()
		if err != nil {
			select { // the cluster is still unwell: again
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		if resp.Succeeded {
			return uint64(resp.Header.Revision), false, nil
		}
		moved := headRev(resp)
		if err := e.waitFor(ctx, moved); err != nil {
			return 0, false, fmt.Errorf("store: etcd: commit outcome unknown: %w", failed)
		}
		e.mu.RLock()
		rev, ok := e.tags[tag]
		reloaded := e.loads != loads
		e.mu.RUnlock()
		if ok {
			return rev, true, nil
		}
		if reloaded {
			return 0, false, fmt.Errorf("store: etcd: commit outcome unknown: %w", failed)
		}
		return moved, false, nil
	}
}

// rollForward writes the chunks of batch id, committed at rev, into the
// object keys, each chunk deleting itself, while head still names it. A
// key is in one chunk only (plan folds the ops of a key), so chunks go in
// any order: rollParallel at once.
func (e *Etcd) rollForward(ctx context.Context, id string, rev uint64) error {
	resp, err := e.cli.Get(ctx, e.stagingPrefix(id)+"c", clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("store: etcd: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		first    error
		finished bool // head moved on: someone finished the batch
	)
	sem := make(chan struct{}, rollParallel)
	for _, c := range resp.Kvs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			done, err := e.rollChunk(ctx, c, rev)
			mu.Lock()
			finished = finished || done
			if err != nil && !finished && first == nil {
				first = err // (once finished, errors are those of cancel)
			}
			mu.Unlock()
			if err != nil || done {
				cancel()
			}
		}()
	}
	wg.Wait()
	return first
}

const rollParallel = 8

// rollChunk rolls one chunk forward; done when head no longer names the
// batch.
func (e *Etcd) rollChunk(ctx context.Context, c *mvccpb.KeyValue, rev uint64) (bool, error) {
	evs, err := decodeEvents(rev, c.Value)
	if err != nil {
		return false, err
	}
	ops := make([]clientv3.Op, 0, len(evs)+1)
	for _, ev := range batchEvents(evs, rev) {
		if ev.Type == Delete {
			ops = append(ops, clientv3.OpDelete(e.objKey(ev.KV.Kind, ev.KV.Key)))
		} else {
			ops = append(ops, clientv3.OpPut(e.objKey(ev.KV.Kind, ev.KV.Key), envelope(ev.KV.CreateRevision, rev, ev.KV.Value)))
		}
	}
	ops = append(ops, clientv3.OpDelete(string(c.Key)))
	r, err := e.cli.Txn(ctx).If(e.headIs(rev), clientv3.Compare(clientv3.Version(string(c.Key)), ">", 0)).Then(ops...).
		Else(clientv3.OpGet(e.headKey())).Commit()
	if err != nil {
		return false, fmt.Errorf("store: etcd: %w", err)
	}
	return !r.Succeeded && headRev(r) != rev, nil
}

// gc deletes the chunks of batches whose writer died before committing
// them: no marker, and head does not name them.
func (e *Etcd) gc(ctx context.Context) {
	resp, err := e.cli.Get(ctx, e.stagingPrefix(""), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return
	}
	marked, ids := map[string]bool{}, map[string]bool{}
	for _, kv := range resp.Kvs {
		id, rest, _ := strings.Cut(strings.TrimPrefix(string(kv.Key), e.stagingPrefix("")), "/")
		ids[id] = true
		if rest == "m" {
			marked[id] = true
		}
	}
	for id := range ids {
		if !marked[id] {
			e.cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(e.headKey()), "=", "b/"+id)).
				Else(clientv3.OpDelete(e.stagingPrefix(id), clientv3.WithPrefix())).Commit()
		}
	}
}

// Watch implements Interface. Each watch is an etcd watch of its own from
// fromRevision, decoded as the cache decodes its own.
func (e *Etcd) Watch(ctx context.Context, fromRevision uint64) (<-chan Event, error) {
	e.mu.RLock()
	seen := e.seen
	e.mu.RUnlock()
	from := int64(fromRevision)
	if from == 0 {
		from = seen + 1
	}
	if from <= seen {
		if _, err := e.cli.Get(ctx, e.headKey(), clientv3.WithRev(from)); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return nil, fmt.Errorf("%w: revision %d", ErrCompacted, from)
			}
			return nil, fmt.Errorf("store: etcd: %w", err)
		}
	}
	ch := make(chan Event, 64)
	go func() {
		defer close(ch)
		for {
			err := e.follow(ctx, from, func(g group) error {
				if len(g.events) > 0 {
					g.events[len(g.events)-1].Last = true
				}
				for _, ev := range g.events {
					select {
					case ch <- ev:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				from = g.rev + 1
				return nil
			})
			// A lost leader or connection: watch again from where it
			// stopped. Compaction or Close end it.
			if ctx.Err() != nil || errors.Is(err, ErrCompacted) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-e.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return ch, nil
}
