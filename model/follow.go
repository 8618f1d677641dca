package model

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/store"
)

// Follow keeps the Service in step with the writes other Services make to
// its store (loomd replicas sharing an etcd cluster): each model
// transaction it did not make becomes one new Snapshot, whole (a batch of
// 10,000 objects appears at once), with one Change per object, and its
// events are published as for the Service's own writes, after that
// snapshot is in place. Without it a Service sees others' writes only
// when one of its own fails on the fence and reloads.
//
// Follow runs until ctx ends; call it once. A watch that falls behind the
// store's history loads the model whole and publishes the difference.
func (s *Service) Follow(ctx context.Context) error {
	s.mu.Lock()
	s.own = map[uint64]bool{}
	from := s.snap.Load().Revision + 1
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.own = nil
		s.mu.Unlock()
	}()
	for {
		ch, err := s.st.Watch(ctx, from)
		if errors.Is(err, store.ErrCompacted) {
			if err := s.reload(ctx); err != nil {
				return err
			}
			from = s.snap.Load().Revision + 1
			continue
		}
		if err != nil {
			return err
		}
		var txn []store.Event
		for ev := range ch {
			txn = append(txn, ev)
			if ev.Last {
				s.follow(txn)
				from, txn = ev.Revision+1, nil
			}
		}
		select { // the watch ended: the store is behind or closing
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// follow applies one transaction of the store, unless it is the
// Service's own.
func (s *Service) follow(evs []store.Event) {
	rev := evs[0].Revision
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.own[rev] {
		delete(s.own, rev)
		return
	}
	cur := s.snap.Load()
	// A revision the snapshot already holds came in with a reload (a write
	// of this Service failed on the fence): publish its events only.
	apply := rev > cur.Revision
	next := *cur
	owned := map[Kind]bool{}
	var (
		add    []Change
		chs    []*change
		pubs   []events.Event
		fenced bool
	)
	for _, ev := range evs {
		if ev.KV.Kind == fenceKind {
			fenced = fenced || ev.KV.Key == fenceKey
			continue
		}
		ki := Info(Kind(ev.KV.Kind))
		if ki == nil {
			continue // not the model's (loomd's switch records)
		}
		o := ki.New()
		if err := json.Unmarshal(ev.KV.Value, o); err != nil {
			continue // not written by a Service: ignored, as load would fail on it
		}
		m := o.Base()
		m.ID, m.Revision = ev.KV.Key, ev.KV.ModRevision
		typ := Updated
		switch {
		case ev.Type == store.Delete:
			typ = Deleted
			if old, ok := cur.Get(ki.Kind, ev.KV.Key); ok {
				o = old
			}
		case ev.KV.CreateRevision == rev:
			typ = Created
		}
		if apply {
			var old Object
			if o, ok := cur.Get(ki.Kind, ev.KV.Key); ok {
				old = o // (a missing one is a typed nil)
			}
			chs = append(chs, &change{typ, old, o})
			set := ki.set(&next)
			if !owned[ki.Kind] {
				set.clone()
				owned[ki.Kind] = true
			}
			if typ == Deleted {
				set.del(ev.KV.Key)
			} else {
				set.put(o)
			}
			add = append(add, Change{Revision: rev, Kind: ki.Kind, ID: ev.KV.Key})
		}
		pubs = append(pubs, events.Event{Topic: Topic, Type: typ, Kind: string(ki.Kind), ID: ev.KV.Key, Object: o})
	}
	if apply && (fenced || len(add) > 0) {
		if fenced {
			s.fence = rev
		}
		next.Revision, next.idx = rev, nil
		next.changes, next.changesFrom = appendChanges(cur.changes, cur.changesFrom, add)
		if x := s.idx; x != nil && x.at == cur {
			for _, ch := range chs {
				x.update(ch)
			}
			x.at = &next
		} else {
			s.idx = nil // built on the next write
		}
		s.snap.Store(&next)
	}
	for _, e := range pubs {
		s.bus.Publish(e)
	}
}

// reload loads the model whole and publishes how it differs from the
// snapshot before.
func (s *Service) reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load()
	if err := s.load(ctx); err != nil {
		return err
	}
	cur := s.snap.Load()
	for rev := range s.own {
		if rev <= cur.Revision { // in the snapshot; the watch skipped it
			delete(s.own, rev)
		}
	}
	for _, ki := range kinds {
		ki.set(cur).each(func(o Object) {
			was, ok := old.Get(ki.Kind, o.Base().ID)
			switch {
			case !ok:
				s.bus.Publish(events.Event{Topic: Topic, Type: Created, Kind: string(ki.Kind), ID: o.Base().ID, Object: o})
			case was.Base().Revision != o.Base().Revision:
				s.bus.Publish(events.Event{Topic: Topic, Type: Updated, Kind: string(ki.Kind), ID: o.Base().ID, Object: o})
			}
		})
		ki.set(old).each(func(o Object) {
			if _, ok := cur.Get(ki.Kind, o.Base().ID); !ok {
				s.bus.Publish(events.Event{Topic: Topic, Type: Deleted, Kind: string(ki.Kind), ID: o.Base().ID, Object: o})
			}
		})
	}
	return nil
}
