package model

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/store"
)

// OpType is what an Op does.
type OpType string

// The ops of a batch.
const (
	OpCreate OpType = "create"
	OpUpdate OpType = "update" // replace the whole object (PUT)
	OpPatch  OpType = "patch"  // JSON merge patch (PATCH)
	OpDelete OpType = "delete"
)

// Op is one write of a batch (Service.Apply): what Create, Update, Patch
// and Delete take as arguments.
type Op struct {
	Op OpType
	// Kind is the kind written. A create may leave it empty: it is the
	// Object's.
	Kind Kind
	// ID names the object to update, patch or delete: its id or name, as
	// they are after the batch's earlier ops.
	ID string
	// Object is the object to create, or the new version of the object to
	// update. It is not modified.
	Object Object
	// Patch is the JSON merge patch (RFC 7396) of a patch.
	Patch []byte
	// IfRevision, when not 0, is the revision the object to update, patch
	// or delete must be at (If-Match). An object written by an earlier op
	// of the batch is at no revision yet: it never matches.
	IfRevision uint64
}

// Apply validates and commits ops as one change of the model: all of them
// or none. Each op is validated against the state the ops before it
// produce, so a batch may create a network and then ports in it by name,
// or rename an object and refer to it by its new name. The batch is one
// store transaction under one new revision (every object it writes gets
// it), one new Snapshot, and one ChangesSince entry per object written;
// the events (one per op, in order, as the single writes publish them)
// follow once that snapshot is in place.
//
// Apply returns the objects as the ops left them, in op order (nil for a
// delete). The first op that fails rejects the batch, nothing written: its
// *Error names the op and the field, "ops[3].ips[0]" (the fields of Op's
// JSON form, as the REST API takes it: op, kind, id, object, patch,
// if_match; a field of the object or patch directly), and its message
// starts with the op ("ops[3] (create port vm4): ...").
//
// The sets of the kinds written are copied once per batch, not once per
// op: a batch of n objects costs far less than n single writes.
func (s *Service) Apply(ctx context.Context, ops []Op) ([]Object, error) {
	out := make([]Object, len(ops))
	if len(ops) == 0 {
		return out, nil
	}
	chs, err := s.commit(ctx, ops, true)
	if err != nil {
		return nil, err
	}
	for i, ch := range chs {
		if ch.typ != Deleted {
			out[i] = ch.obj
		}
	}
	return out, nil
}

// key names one object in the store.
type key struct {
	kind Kind
	id   string
}

// staged is a batch validated against a snapshot.
type staged struct {
	// next is the snapshot with the ops applied; the sets of the kinds
	// written are its own, the others shared.
	next    *Snapshot
	changes []*change // one per op
	// keys are the objects written, in the order of their first write;
	// before their revisions before the batch (0: absent).
	keys   []key
	before map[key]uint64
}

// commit validates ops in order and commits them in one transaction; when
// the store moved under it (another writer), it reloads and starts over.
// In a batch, errors name the op (see Apply).
func (s *Service) commit(ctx context.Context, ops []Op, batch bool) ([]*change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		cur := s.snap.Load()
		// The index is s.idx again once it describes a snapshot: if
		// anything panics on the way, the next write builds a new one.
		x := s.idx
		if x == nil || x.at != cur {
			x = newIndex(cur)
		}
		s.idx = nil
		st, err := s.stage(ctx, cur, x, ops, batch)
		if err != nil {
			s.idx = x // stage reverted its changes
			return nil, err
		}
		txn, err := st.txn(s.fence)
		var rev uint64
		if err == nil {
			rev, err = s.st.Txn(ctx, txn)
		}
		if err != nil {
			x.revert(st.changes)
			s.idx = x
		}
		if errors.Is(err, store.ErrCompareFailed) && attempt < 3 {
			if err := s.load(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("model: store: %w", err)
		}
		s.fence = rev
		if s.own != nil {
			s.own[rev] = true // for Follow, which sees it come back
		}
		next := st.finish(cur, rev)
		x.at, s.idx = next, x
		s.snap.Store(next)
		for _, ch := range st.changes {
			s.bus.Publish(events.Event{Topic: Topic, Type: ch.typ, Kind: string(ch.obj.Kind()), ID: ch.obj.Base().ID, Object: ch.obj})
		}
		return st.changes, nil
	}
}

// stage validates ops in order, each against the state the ones before
// it produce, and builds that state, updating x (the index of cur) as it
// goes; when it fails, it reverts x.
func (s *Service) stage(ctx context.Context, cur *Snapshot, x *index, ops []Op, batch bool) (_ *staged, err error) {
	next := *cur
	next.idx = x
	st := &staged{next: &next, changes: make([]*change, 0, len(ops)), before: make(map[key]uint64, len(ops))}
	defer func() {
		if err != nil {
			x.revert(st.changes)
		}
	}()
	owned := map[Kind]bool{} // kinds whose sets next has copied
	for i := range ops {
		if batch && i%256 == 255 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		ch, verr := s.change(&next, &ops[i], batch)
		if verr != nil {
			if batch {
				verr = verr.inOp(i, &ops[i])
			}
			return nil, verr
		}
		k := key{ch.obj.Kind(), ch.obj.Base().ID}
		if _, seen := st.before[k]; !seen {
			var rev uint64
			if o, ok := cur.Get(k.kind, k.id); ok {
				rev = o.Base().Revision
			}
			st.before[k] = rev
			st.keys = append(st.keys, k)
		}
		set := Info(k.kind).set(&next)
		if !owned[k.kind] {
			set.clone()
			owned[k.kind] = true
		}
		if ch.typ == Deleted {
			set.del(k.id)
		} else {
			set.put(ch.obj)
		}
		x.update(ch)
		st.changes = append(st.changes, ch)
	}
	return st, nil
}

// txn is the store transaction of st: each object written is compared
// with its revision before the batch and put as the batch leaves it (or
// deleted); the fence guards the whole model.
func (st *staged) txn(fence uint64) (store.Txn, error) {
	t := store.Txn{
		Compares: make([]store.Compare, 0, len(st.keys)+1),
		Ops:      make([]store.Op, 0, len(st.keys)+1),
	}
	t.Compares = append(t.Compares, store.Compare{Kind: fenceKind, Key: fenceKey, ModRevision: fence})
	for _, k := range st.keys {
		before := st.before[k]
		t.Compares = append(t.Compares, store.Compare{Kind: string(k.kind), Key: k.id, ModRevision: before})
		o, exists := st.next.Get(k.kind, k.id)
		switch {
		case exists:
			v, err := json.Marshal(o)
			if err != nil {
				return store.Txn{}, err
			}
			t.Ops = append(t.Ops, store.Op{Kind: string(k.kind), Key: k.id, Value: v})
		case before != 0:
			t.Ops = append(t.Ops, store.Op{Kind: string(k.kind), Key: k.id, Delete: true})
		}
		// else created and deleted by the batch: nothing to store.
	}
	t.Ops = append(t.Ops, store.Op{Kind: fenceKind, Key: fenceKey, Value: []byte("{}")})
	return t, nil
}

// finish stamps the batch's objects with rev and returns the snapshot at
// rev: st.next with one change per object written.
func (st *staged) finish(cur *Snapshot, rev uint64) *Snapshot {
	for _, ch := range st.changes {
		// Objects at revision 0 are the batch's own (objects of earlier
		// snapshots are shared and never modified).
		if m := ch.obj.Base(); m.Revision == 0 {
			m.Revision = rev
		}
	}
	add := make([]Change, len(st.keys))
	for i, k := range st.keys {
		add[i] = Change{Revision: rev, Kind: k.kind, ID: k.id}
	}
	n := st.next
	n.Revision, n.idx = rev, nil
	n.changes, n.changesFrom = appendChanges(cur.changes, cur.changesFrom, add)
	return n
}

// inOp is e as an error of op i of a batch: the field is prefixed with
// "ops[i]" and the message with the op.
func (e *Error) inOp(i int, op *Op) *Error {
	f := e.Field
	switch f {
	case "If-Match":
		f = "if_match"
	case "body":
		f = "object"
		if op.Op == OpPatch {
			f = "patch"
		}
	}
	field := fmt.Sprintf("ops[%d]", i)
	if f != "" {
		field += "." + f
	}
	k, name := op.Kind, op.ID
	if op.Op == OpCreate && op.Object != nil {
		k, name = op.Object.Kind(), op.Object.Base().Name
	}
	var what []string
	for _, w := range []string{string(op.Op), string(k), name} {
		if w != "" {
			what = append(what, w)
		}
	}
	msg := fmt.Sprintf("ops[%d]: %s", i, e.Message)
	if len(what) > 0 {
		msg = fmt.Sprintf("ops[%d] (%s): %s", i, strings.Join(what, " "), e.Message)
	}
	return &Error{Code: e.Code, Field: field, Message: msg}
}
