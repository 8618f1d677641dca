// Package store is Loom's state store: objects keyed by kind and key,
// versioned by a global revision, written in atomic transactions with
// compare-and-swap, and watchable from a revision on.
//
// Interface is what the rest of Loom programs against; it is shaped like
// etcd's API (global revision per transaction, per-key create and mod
// revisions, Txn with compares, Watch from a revision). Bolt is the
// embedded implementation, a bbolt file (loom.db) in the data directory,
// and the default; Etcd puts the store on an etcd cluster that several
// loomd replicas share. ParseURL and OpenURL read loomd's --store value.
//
// Both keep the same promises: one revision per transaction, compares on
// mod revisions that write nothing when they fail, and transactions of any
// size (a model batch may hold 10,000 ops) applied all at once. etcd
// refuses a txn of more than 128 ops or 1.5 MiB, so Etcd serializes its
// commits on one head key (every commit compares and bumps it; compares
// are checked against a watch-fed cache at that head) and stages a big
// transaction in chunks invisible to readers, then commits it with one
// small txn that points head at the staged batch: readers and watchers
// apply the whole batch at that revision, and writers roll it forward into
// the object keys before anything else commits (etcd.go has the details:
// key layout, leases, crash recovery).
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("store: not found")

// ErrCompareFailed is wrapped by the *CompareError a transaction returns
// when one of its compares does not hold; nothing was written.
var ErrCompareFailed = errors.New("store: compare failed")

// ErrCompacted is returned by Watch when fromRevision is older than the
// history the store keeps.
var ErrCompacted = errors.New("store: revision compacted")

// KV is one stored object.
type KV struct {
	Kind  string
	Key   string
	Value []byte
	// CreateRevision is the revision of the transaction that created the
	// key, ModRevision the one that last wrote it.
	CreateRevision uint64
	ModRevision    uint64
}

// Compare is a transaction precondition: the key's ModRevision must equal
// ModRevision, 0 meaning that the key must not exist.
type Compare struct {
	Kind, Key   string
	ModRevision uint64
}

// Op is one write of a transaction: a put of Value, or a delete (deleting
// a missing key is not an error and produces no event).
type Op struct {
	Kind, Key string
	Value     []byte
	Delete    bool
}

// Txn is an atomic transaction: if every compare holds, every op is
// applied under one new revision; otherwise nothing is.
type Txn struct {
	Compares []Compare
	Ops      []Op
}

// CompareError says which compare of a transaction failed.
type CompareError struct {
	Compare Compare
	Actual  uint64 // the key's actual ModRevision (0: absent)
}

func (e *CompareError) Error() string {
	return fmt.Sprintf("store: compare failed: %s/%s is at revision %d, not %d",
		e.Compare.Kind, e.Compare.Key, e.Actual, e.Compare.ModRevision)
}

// Unwrap makes errors.Is(err, ErrCompareFailed) true.
func (e *CompareError) Unwrap() error { return ErrCompareFailed }

// EventType is what a watch event did to its key.
type EventType uint8

// Event types.
const (
	Put EventType = iota + 1
	Delete
)

func (t EventType) String() string {
	switch t {
	case Put:
		return "put"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Event is one change seen by a watcher. The events of one transaction
// share its Revision and arrive together, in op order. For a Delete, KV
// holds the key and, as Value, the value it had.
type Event struct {
	Type     EventType
	Revision uint64
	KV       KV
	// Last marks the last event of its transaction: a watcher that applies
	// transactions whole knows it has them all.
	Last bool
}

// Interface is the state store. Kinds and keys are non-empty strings;
// values are opaque bytes (Loom stores JSON).
type Interface interface {
	// Get returns one key, or ErrNotFound.
	Get(ctx context.Context, kind, key string) (KV, error)
	// List returns every key of kind, in key order, and the store revision
	// the list was read at.
	List(ctx context.Context, kind string) ([]KV, uint64, error)
	// Revision returns the current store revision (0 for an empty store).
	Revision(ctx context.Context) (uint64, error)
	// Txn applies t atomically and returns the new revision. When a
	// compare fails it returns a *CompareError and writes nothing. A
	// transaction without ops returns the current revision.
	Txn(ctx context.Context, t Txn) (uint64, error)
	// Watch streams every change with a revision >= fromRevision (0: from
	// the next one) until ctx ends, then closes the channel. It returns
	// ErrCompacted when that history is gone.
	Watch(ctx context.Context, fromRevision uint64) (<-chan Event, error)
	// Close releases the store.
	Close() error
}

// Store is the store as loomd opens it: an Interface (bbolt or etcd) plus
// JSON helpers for simple records such as loomd's switch records. Its Get,
// List and Delete are those helpers; use the embedded Interface for the
// versioned API.
type Store struct {
	Interface
}

// Open opens (creating if needed) the bbolt store in dir with default
// options. It fails fast when another process holds the store.
func Open(dir string) (*Store, error) {
	b, err := OpenBolt(dir, Options{})
	if err != nil {
		return nil, err
	}
	return &Store{b}, nil
}

// Put stores v as JSON under kind/key.
func (s *Store) Put(kind, key string, v any) error {
	return PutJSON(context.Background(), s.Interface, kind, key, v)
}

// Get loads kind/key, stored as JSON, into v; ErrNotFound when missing.
func (s *Store) Get(kind, key string, v any) error {
	return GetJSON(context.Background(), s.Interface, kind, key, v)
}

// List calls fn for every key of kind in key order, with its raw value.
func (s *Store) List(kind string, fn func(key string, raw []byte) error) error {
	kvs, _, err := s.Interface.List(context.Background(), kind)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		if err := fn(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes kind/key; a missing key is not an error.
func (s *Store) Delete(kind, key string) error {
	_, err := s.Txn(context.Background(), Txn{Ops: []Op{{Kind: kind, Key: key, Delete: true}}})
	return err
}

// PutJSON stores v as JSON under kind/key, unconditionally.
func PutJSON(ctx context.Context, st Interface, kind, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = st.Txn(ctx, Txn{Ops: []Op{{Kind: kind, Key: key, Value: b}}})
	return err
}

// GetJSON loads kind/key, stored as JSON, into v; ErrNotFound when missing.
func GetJSON(ctx context.Context, st Interface, kind, key string, v any) error {
	kv, err := st.Get(ctx, kind, key)
	if err != nil {
		return err
	}
	return json.Unmarshal(kv.Value, v)
}
