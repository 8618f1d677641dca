package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Layout of loom.db:
//
//	meta/revision       the global revision (8 bytes, big endian)
//	meta/first          the oldest revision still in log/
//	kv/<kind>/<key>     create revision (8) | mod revision (8) | value
//	log/<revision>      the events of that transaction (see encodeEvents)
//
// Top-level buckets other than these come from the first version of the
// store (plain JSON per bucket and key) and are imported on open.
var (
	bucketMeta = []byte("meta")
	bucketKV   = []byte("kv")
	bucketLog  = []byte("log")
	keyRev     = []byte("revision")
	keyFirst   = []byte("first")
)

// errNoop rolls back a transaction that changed nothing, so that the file
// stays byte-for-byte the same.
var errNoop = errors.New("no-op")

// Options tune the bbolt store.
type Options struct {
	// History is how many transactions the watch log keeps (default 10000).
	History uint64
	// NoSync skips fsync on commit: only for tests and benchmarks.
	NoSync bool
}

// Bolt is the embedded Interface: one bbolt file, loom.db, in the data
// directory. One process at a time may open it.
type Bolt struct {
	db      *bolt.DB
	history uint64

	mu     sync.Mutex
	notify chan struct{} // closed and replaced after every commit
	closed chan struct{}
	once   sync.Once
}

var _ Interface = (*Bolt)(nil)

// OpenBolt opens (creating if needed) dir/loom.db. It fails fast when
// another process holds the store.
func OpenBolt(dir string, opt Options) (*Bolt, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "loom.db")
	db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: 2 * time.Second, NoSync: opt.NoSync})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store %s is locked by another process (is another loomd using this --data-dir?)", path)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if opt.History == 0 {
		opt.History = 10000
	}
	b := &Bolt{db: db, history: opt.History, notify: make(chan struct{}), closed: make(chan struct{})}
	if err := b.setup(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return b, nil
}

// setup creates the buckets and imports first-version buckets.
func (b *Bolt) setup() error {
	var legacy [][]byte
	b.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if !bytes.Equal(name, bucketMeta) && !bytes.Equal(name, bucketKV) && !bytes.Equal(name, bucketLog) {
				legacy = append(legacy, bytes.Clone(name))
			}
			return nil
		})
	})
	ok := b.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil || tx.Bucket(bucketKV) == nil || tx.Bucket(bucketLog) == nil {
			return errNoop
		}
		return nil
	}) == nil
	if ok && len(legacy) == 0 {
		return nil // do not touch the file when there is nothing to do
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketKV, bucketLog} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if len(legacy) == 0 {
			return nil
		}
		var ops []Op
		for _, name := range legacy {
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				if v != nil {
					ops = append(ops, Op{Kind: string(name), Key: string(k), Value: bytes.Clone(v)})
				}
				return nil
			})
			if err != nil {
				return err
			}
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		_, err := b.apply(tx, Txn{Ops: ops})
		if err == errNoop {
			err = nil
		}
		return err
	})
}

// Close closes the store and ends every watch.
func (b *Bolt) Close() error {
	b.once.Do(func() { close(b.closed) })
	return b.db.Close()
}

// Path is the file of the store.
func (b *Bolt) Path() string { return b.db.Path() }

// WriteTo writes a consistent copy of the whole database file to w (a
// hot backup; tests compare these copies byte for byte).
func (b *Bolt) WriteTo(w io.Writer) (n int64, err error) {
	err = b.db.View(func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func be(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeRecord(kind, key string, rec []byte) (KV, error) {
	if len(rec) < 16 {
		return KV{}, fmt.Errorf("store: record %s/%s is truncated", kind, key)
	}
	return KV{Kind: kind, Key: key, CreateRevision: u64(rec[:8]), ModRevision: u64(rec[8:16]), Value: bytes.Clone(rec[16:])}, nil
}

// Get implements Interface.
func (b *Bolt) Get(ctx context.Context, kind, key string) (KV, error) {
	if err := ctx.Err(); err != nil {
		return KV{}, err
	}
	var kv KV
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketKV).Bucket([]byte(kind))
		if bk == nil {
			return ErrNotFound
		}
		rec := bk.Get([]byte(key))
		if rec == nil {
			return ErrNotFound
		}
		var err error
		kv, err = decodeRecord(kind, key, rec)
		return err
	})
	return kv, err
}

// List implements Interface.
func (b *Bolt) List(ctx context.Context, kind string) ([]KV, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	var (
		out []KV
		rev uint64
	)
	err := b.db.View(func(tx *bolt.Tx) error {
		rev = u64(tx.Bucket(bucketMeta).Get(keyRev))
		bk := tx.Bucket(bucketKV).Bucket([]byte(kind))
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			kv, err := decodeRecord(kind, string(k), v)
			out = append(out, kv)
			return err
		})
	})
	return out, rev, err
}

// Revision implements Interface.
func (b *Bolt) Revision(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev uint64
	err := b.db.View(func(tx *bolt.Tx) error {
		rev = u64(tx.Bucket(bucketMeta).Get(keyRev))
		return nil
	})
	return rev, err
}

// Txn implements Interface.
func (b *Bolt) Txn(ctx context.Context, t Txn) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	for _, op := range t.Ops {
		if op.Kind == "" || op.Key == "" {
			return 0, fmt.Errorf("store: empty kind or key in %+v", op)
		}
	}
	var rev uint64
	err := b.db.Update(func(tx *bolt.Tx) error {
		var err error
		rev, err = b.apply(tx, t)
		return err
	})
	switch err {
	case nil:
		b.mu.Lock()
		close(b.notify)
		b.notify = make(chan struct{})
		b.mu.Unlock()
		return rev, nil
	case errNoop:
		return rev, nil
	}
	return 0, err
}

// apply runs t inside tx; errNoop (with the current revision) when it
// writes nothing.
func (b *Bolt) apply(tx *bolt.Tx, t Txn) (uint64, error) {
	kvb, meta := tx.Bucket(bucketKV), tx.Bucket(bucketMeta)
	cur := u64(meta.Get(keyRev))
	for _, c := range t.Compares {
		var actual uint64
		if bk := kvb.Bucket([]byte(c.Kind)); bk != nil {
			if rec := bk.Get([]byte(c.Key)); len(rec) >= 16 {
				actual = u64(rec[8:16])
			}
		}
		if actual != c.ModRevision {
			return 0, &CompareError{Compare: c, Actual: actual}
		}
	}
	rev := cur + 1
	var evs []Event
	for _, op := range t.Ops {
		if op.Delete {
			bk := kvb.Bucket([]byte(op.Kind))
			if bk == nil {
				continue
			}
			rec := bk.Get([]byte(op.Key))
			if rec == nil {
				continue
			}
			kv, err := decodeRecord(op.Kind, op.Key, rec)
			if err != nil {
				return 0, err
			}
			if err := bk.Delete([]byte(op.Key)); err != nil {
				return 0, err
			}
			kv.ModRevision = rev
			evs = append(evs, Event{Type: Delete, Revision: rev, KV: kv})
			continue
		}
		bk, err := kvb.CreateBucketIfNotExists([]byte(op.Kind))
		if err != nil {
			return 0, err
		}
		create := rev
		if rec := bk.Get([]byte(op.Key)); len(rec) >= 16 {
			create = u64(rec[:8])
		}
		rec := make([]byte, 16, 16+len(op.Value))
		binary.BigEndian.PutUint64(rec, create)
		binary.BigEndian.PutUint64(rec[8:], rev)
		if err := bk.Put([]byte(op.Key), append(rec, op.Value...)); err != nil {
			return 0, err
		}
		evs = append(evs, Event{Type: Put, Revision: rev, KV: KV{Kind: op.Kind, Key: op.Key, Value: op.Value, CreateRevision: create, ModRevision: rev}})
	}
	if len(evs) == 0 {
		return cur, errNoop
	}
	if err := meta.Put(keyRev, be(rev)); err != nil {
		return 0, err
	}
	logb := tx.Bucket(bucketLog)
	if err := logb.Put(be(rev), encodeEvents(evs)); err != nil {
		return 0, err
	}
	first := u64(meta.Get(keyFirst))
	if first == 0 {
		first = rev
	}
	for ; rev >= b.history && first <= rev-b.history; first++ {
		if err := logb.Delete(be(first)); err != nil {
			return 0, err
		}
	}
	return rev, meta.Put(keyFirst, be(first))
}

// Watch implements Interface. Events are read from the store's log, so a
// slow watcher only delays itself; one that falls behind the kept history
// has its channel closed (Watch again to learn ErrCompacted).
func (b *Bolt) Watch(ctx context.Context, fromRevision uint64) (<-chan Event, error) {
	var cur, first uint64
	err := b.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		cur, first = u64(meta.Get(keyRev)), u64(meta.Get(keyFirst))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if fromRevision == 0 {
		fromRevision = cur + 1
	}
	if fromRevision <= cur && (first == 0 || fromRevision < first) {
		return nil, fmt.Errorf("%w: revision %d (oldest kept: %d)", ErrCompacted, fromRevision, first)
	}
	ch := make(chan Event, 64)
	go func() {
		defer close(ch)
		next := fromRevision
		for {
			b.mu.Lock()
			wait := b.notify
			b.mu.Unlock()
			evs, err := b.readLog(next, 1024)
			if err != nil {
				return
			}
			for _, e := range evs {
				select {
				case ch <- e:
				case <-ctx.Done():
					return
				}
				next = e.Revision + 1
			}
			if len(evs) > 0 {
				continue // there may be more
			}
			select {
			case <-wait:
			case <-ctx.Done():
				return
			case <-b.closed:
				return
			}
		}
	}()
	return ch, nil
}

// readLog returns the events of up to max transactions from revision from.
func (b *Bolt) readLog(from uint64, max int) ([]Event, error) {
	select {
	case <-b.closed:
		return nil, errors.New("store: closed")
	default:
	}
	var evs []Event
	err := b.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if cur, first := u64(meta.Get(keyRev)), u64(meta.Get(keyFirst)); from <= cur && from < first {
			return ErrCompacted
		}
		c := tx.Bucket(bucketLog).Cursor()
		n := 0
		for k, v := c.Seek(be(from)); k != nil && n < max; k, v = c.Next() {
			e, err := decodeEvents(u64(k), v)
			if err != nil {
				return err
			}
			if len(e) > 0 {
				e[len(e)-1].Last = true
			}
			evs = append(evs, e...)
			n++
		}
		return nil
	})
	return evs, err
}

// encodeEvents: per event, type (1 byte), kind, key (uvarint length and
// bytes), create revision (uvarint), value (uvarint length and bytes).
func encodeEvents(evs []Event) []byte {
	var out []byte
	for _, e := range evs {
		out = append(out, byte(e.Type))
		out = binary.AppendUvarint(out, uint64(len(e.KV.Kind)))
		out = append(out, e.KV.Kind...)
		out = binary.AppendUvarint(out, uint64(len(e.KV.Key)))
		out = append(out, e.KV.Key...)
		out = binary.AppendUvarint(out, e.KV.CreateRevision)
		out = binary.AppendUvarint(out, uint64(len(e.KV.Value)))
		out = append(out, e.KV.Value...)
	}
	return out
}

func decodeEvents(rev uint64, b []byte) ([]Event, error) {
	bad := fmt.Errorf("store: log entry %d is corrupt", rev)
	var evs []Event
	bytesField := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, false
		}
		v := bytes.Clone(b[k : k+int(n)])
		b = b[k+int(n):]
		return v, true
	}
	for len(b) > 0 {
		e := Event{Type: EventType(b[0]), Revision: rev}
		b = b[1:]
		kind, ok1 := bytesField()
		key, ok2 := bytesField()
		if !ok1 || !ok2 {
			return nil, bad
		}
		create, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, bad
		}
		b = b[k:]
		val, ok := bytesField()
		if !ok || (e.Type != Put && e.Type != Delete) {
			return nil, bad
		}
		e.KV = KV{Kind: string(kind), Key: string(key), Value: val, CreateRevision: create, ModRevision: rev}
		evs = append(evs, e)
	}
	return evs, nil
}
