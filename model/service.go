// Package model is Loom's network model: hosts, networks, subnets, ports,
// port groups, routers, security groups, load balancers and floating IPs;
// their validation; and the Service that keeps them in the store.
//
// The Service validates every write completely (each field, then the rules
// that span objects: unique names, VNIs, VLANs, MACs and IPs, CIDRs that
// must not overlap, references that must exist, objects still referenced
// that must not be deleted) and commits it as one store transaction. Each
// object's Revision is the store revision of its last write; writes may
// require it (optimistic concurrency). Apply does the same for a batch of
// writes of any kinds: each validated against the state the ones before
// it leave, all committed as one transaction, or none.
//
// Several Services may share a store (loomd replicas on etcd): Follow
// keeps each in step with the others' writes, and the fence makes a write
// based on a stale snapshot fail and re-validate.
//
// Readers take a Snapshot: an immutable view of the whole model, by id and
// by name, that costs nothing to take. Every change is published on the
// events bus (topic "model", type created/updated/deleted, with the kind,
// the id and the object) after the snapshot that holds it is in place, so
// a subscriber may react to an event by reading Snapshot.
package model

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/store"
)

// Topic is the events topic of model changes.
const Topic = "model"

// Event types of model changes.
const (
	Created = "created"
	Updated = "updated"
	Deleted = "deleted"
)

// The fence is a store key every model transaction compares and bumps:
// whoever else writes the model in between (another controller on a shared
// store) makes the transaction fail, and the Service reloads and
// re-validates. Cross-object rules are thus checked against exactly the
// state the transaction commits onto.
const (
	fenceKind = "model"
	fenceKey  = "fence"
)

// Service owns the model in a store. It is safe for concurrent use;
// writes are serialized.
type Service struct {
	st  store.Interface
	bus *events.Bus
	now func() time.Time

	mu    sync.Mutex // serializes writes
	fence uint64     // mod revision of the fence key
	snap  atomic.Pointer[Snapshot]
	// idx is the index of snap's state (nil: built on the next write);
	// under mu.
	idx *index
	// own are the revisions of this Service's commits that Follow has
	// not seen yet (nil when not following); under mu.
	own map[uint64]bool
}

// New loads the model from st. Changes are published on bus; with a nil
// bus the Service makes its own (see Bus).
func New(ctx context.Context, st store.Interface, bus *events.Bus) (*Service, error) {
	if bus == nil {
		bus = events.NewBus()
	}
	s := &Service{st: st, bus: bus, now: func() time.Time { return time.Now().UTC() }}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// load reads the whole model (retrying until no write came in between).
func (s *Service) load(ctx context.Context) error {
	for {
		fence, err := s.fenceRevision(ctx)
		if err != nil {
			return err
		}
		snap := emptySnapshot()
		snap.Revision, snap.changesFrom = fence, fence
		for _, ki := range kinds {
			kvs, _, err := s.st.List(ctx, string(ki.Kind))
			if err != nil {
				return err
			}
			set := ki.set(snap)
			for _, kv := range kvs {
				o := ki.New()
				if err := json.Unmarshal(kv.Value, o); err != nil {
					return fmt.Errorf("model: stored %s %s: %w", ki.Kind, kv.Key, err)
				}
				m := o.Base()
				m.ID, m.Revision = kv.Key, kv.ModRevision
				set.put(o)
			}
		}
		again, err := s.fenceRevision(ctx)
		if err != nil {
			return err
		}
		if again == fence {
			s.fence = fence
			s.snap.Store(snap)
			s.idx = nil
			return nil
		}
	}
}

func (s *Service) fenceRevision(ctx context.Context) (uint64, error) {
	kv, err := s.st.Get(ctx, fenceKind, fenceKey)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return kv.ModRevision, err
}

// Snapshot returns the current model. It never blocks.
func (s *Service) Snapshot() *Snapshot { return s.snap.Load() }

// Bus returns the bus the Service publishes on.
func (s *Service) Bus() *events.Bus { return s.bus }

// Subscribe returns a subscription to model changes (see events.Bus).
func (s *Service) Subscribe(buffer int) *events.Subscription {
	return s.bus.Subscribe(buffer, func(e events.Event) bool { return e.Topic == Topic })
}

// Get returns the object of kind k with this id or name.
func (s *Service) Get(k Kind, idOrName string) (Object, error) {
	if Info(k) == nil {
		return nil, newErr(NotFound, "", "no kind %q", k)
	}
	o, ok := s.Snapshot().Lookup(k, idOrName)
	if !ok {
		return nil, newErr(NotFound, "id", "no %s named or with id %q", k, idOrName)
	}
	return o, nil
}

// List returns the objects of kind k sorted by name, filtered as
// Snapshot.List does.
func (s *Service) List(k Kind, filters map[string]string) ([]Object, error) {
	if Info(k) == nil {
		return nil, newErr(NotFound, "", "no kind %q", k)
	}
	out, err := s.Snapshot().List(k, filters)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Create validates and stores a new object (o itself is not modified) and
// returns it as stored: with its id, timestamps, revision, defaults, and
// references as ids.
func (s *Service) Create(ctx context.Context, o Object) (Object, error) {
	return s.single(ctx, Op{Op: OpCreate, Object: o})
}

// Update replaces the object of kind k named by idOrName with o (PUT); its
// id and created_at stay. ifRevision, when not 0, must be its revision.
func (s *Service) Update(ctx context.Context, k Kind, idOrName string, o Object, ifRevision uint64) (Object, error) {
	return s.single(ctx, Op{Op: OpUpdate, Kind: k, ID: idOrName, Object: o, IfRevision: ifRevision})
}

// Patch applies a JSON merge patch (RFC 7396) to the object of kind k
// named by idOrName: given fields replace the object's, null resets a
// field to its default. The result is validated like a PUT.
func (s *Service) Patch(ctx context.Context, k Kind, idOrName string, patch []byte, ifRevision uint64) (Object, error) {
	return s.single(ctx, Op{Op: OpPatch, Kind: k, ID: idOrName, Patch: patch, IfRevision: ifRevision})
}

// Delete removes the object of kind k named by idOrName, unless another
// object still refers to it. It returns the object as it was.
func (s *Service) Delete(ctx context.Context, k Kind, idOrName string, ifRevision uint64) (Object, error) {
	return s.single(ctx, Op{Op: OpDelete, Kind: k, ID: idOrName, IfRevision: ifRevision})
}

// single commits one op and returns its object (for a delete, the object
// as it was); errors name the object's fields, without an op index.
func (s *Service) single(ctx context.Context, op Op) (Object, error) {
	chs, err := s.commit(ctx, []Op{op}, false)
	if err != nil {
		return nil, err
	}
	return chs[0].obj, nil
}

// change computes what op does to cur, validated: the object it writes
// (normalized: id, timestamps, defaults, references as ids) and the
// object it replaces or deletes.
func (s *Service) change(cur *Snapshot, op *Op, batch bool) (*change, *Error) {
	if op.Op != OpCreate && batch && Info(op.Kind) == nil {
		return nil, invalidf("kind", "no kind %q", op.Kind)
	}
	switch op.Op {
	case OpCreate:
		if op.Object == nil {
			return nil, invalidf("object", "a create needs an object")
		}
		if op.Kind != "" && op.Kind != op.Object.Kind() {
			return nil, invalidf("kind", "a %s is not a %s", op.Object.Kind(), op.Kind)
		}
		n := clone(op.Object)
		m, now := n.Base(), s.now()
		*m = Meta{ID: newID(cur, n.Kind()), Name: m.Name, CreatedAt: now, UpdatedAt: now}
		if err := prepare(cur, n, nil); err != nil {
			return nil, err
		}
		return &change{Created, nil, n}, nil
	case OpUpdate:
		old, err := current(cur, op.Kind, op.ID, op.IfRevision)
		if err != nil {
			return nil, err
		}
		if op.Object == nil {
			return nil, invalidf("object", "an update needs an object")
		}
		if op.Object.Kind() != op.Kind {
			return nil, invalidf("kind", "a %s is not a %s", op.Object.Kind(), op.Kind)
		}
		return s.replace(cur, old, clone(op.Object))
	case OpPatch:
		old, err := current(cur, op.Kind, op.ID, op.IfRevision)
		if err != nil {
			return nil, err
		}
		doc, jerr := json.Marshal(old)
		if jerr != nil {
			return nil, invalidf("", "%v", jerr)
		}
		merged, err := mergePatch(doc, op.Patch)
		if err != nil {
			return nil, err
		}
		n, err := decode(Info(op.Kind), merged)
		if err != nil {
			return nil, err
		}
		return s.replace(cur, old, n)
	case OpDelete:
		old, err := current(cur, op.Kind, op.ID, op.IfRevision)
		if err != nil {
			return nil, err
		}
		if err := checkDelete(cur, old); err != nil {
			return nil, err
		}
		return &change{Deleted, old, old}, nil
	}
	return nil, invalidf("op", "op %q is not create, update, patch or delete", op.Op)
}

func current(cur *Snapshot, k Kind, idOrName string, ifRevision uint64) (Object, *Error) {
	if Info(k) == nil {
		return nil, newErr(NotFound, "", "no kind %q", k)
	}
	old, ok := cur.Lookup(k, idOrName)
	if !ok {
		return nil, newErr(NotFound, "id", "no %s named or with id %q", k, idOrName)
	}
	switch rev := old.Base().Revision; {
	case ifRevision == 0 || ifRevision == rev:
	case rev == 0: // written by an earlier op of the batch
		return nil, newErr(Precondition, "If-Match", "%s %s was written by an earlier op of this batch: it is no longer at revision %d", k, old.Base().Name, ifRevision)
	default:
		return nil, newErr(Precondition, "If-Match", "%s %s is at revision %d, not %d", k, old.Base().Name, rev, ifRevision)
	}
	return old, nil
}

func (s *Service) replace(cur *Snapshot, old, n Object) (*change, *Error) {
	m, om := n.Base(), old.Base()
	*m = Meta{ID: om.ID, Name: m.Name, CreatedAt: om.CreatedAt, UpdatedAt: s.now()}
	if err := prepare(cur, n, old); err != nil {
		return nil, err
	}
	return &change{Updated, old, n}, nil
}

type change struct {
	typ      string
	old, obj Object // obj is old for a delete
}

// clone deep-copies o.
func clone(o Object) Object {
	b, err := json.Marshal(o)
	if err != nil {
		panic(err) // model objects always marshal
	}
	n := Info(o.Kind()).New()
	if err := json.Unmarshal(b, n); err != nil {
		panic(err)
	}
	return n
}

// newID returns a random UUID (version 4) unused as an id or name of kind k.
func newID(cur *Snapshot, k Kind) string {
	for {
		var b [16]byte
		rand.Read(b[:])
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
		if _, taken := cur.Lookup(k, id); !taken {
			return id
		}
	}
}
