// Package events is Loom's change feed: the model, the topology and the
// runtime publish what changed, and subscribers (the REST /events stream,
// apps, tests) receive it in order. Publishing never blocks: a subscriber
// that falls behind by more than its buffer loses events and is told so by
// a gap marker, so one slow reader cannot stall the controller.
package events

import (
	"sync"
	"sync/atomic"
	"time"
)

// Event is one change.
type Event struct {
	// Seq numbers events in publication order, from 1.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Topic is the area: "model", "topology", "switch", "port", ...
	Topic string `json:"topic"`
	// Type says what happened: "created", "updated", "deleted", "up",
	// "down", "link-added", ...
	Type string `json:"type"`
	// Kind and ID name the object, when there is one.
	Kind string `json:"kind,omitempty"`
	ID   string `json:"id,omitempty"`
	// Object is the object after the change (before it, for deletes).
	Object any `json:"object,omitempty"`
}

// Gap is the Type of the marker a subscriber gets after it lost events.
const Gap = "gap"

// Bus fans events out to subscribers.
type Bus struct {
	seq  atomic.Uint64
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{subs: map[*Subscription]struct{}{}} }

// Subscription receives events on C until Close.
type Subscription struct {
	C      <-chan Event
	c      chan Event
	bus    *Bus
	filter func(Event) bool
	lost   bool
}

// Subscribe returns a subscription with room for buffer events; filter
// (nil for all) selects the events it gets.
func (b *Bus) Subscribe(buffer int, filter func(Event) bool) *Subscription {
	c := make(chan Event, buffer+1) // +1: room for the gap marker
	s := &Subscription{C: c, c: c, bus: b, filter: filter}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Close ends the subscription and closes C.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	if _, ok := s.bus.subs[s]; ok {
		delete(s.bus.subs, s)
		close(s.c)
	}
	s.bus.mu.Unlock()
}

// Publish sends e (Seq and Time set here) to every subscriber whose filter
// accepts it, without blocking.
func (b *Bus) Publish(e Event) {
	if b == nil {
		return
	}
	b.mu.Lock()
	e.Seq = b.seq.Add(1)
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	for s := range b.subs {
		if s.filter != nil && !s.filter(e) {
			continue
		}
		if s.lost {
			// Only the gap marker's slot is left until the reader drains.
			if len(s.c) == 0 {
				s.lost = false
			} else {
				continue
			}
		}
		if len(s.c) < cap(s.c)-1 {
			s.c <- e
		} else {
			s.lost = true
			s.c <- Event{Seq: e.Seq, Time: e.Time, Topic: e.Topic, Type: Gap}
		}
	}
	b.mu.Unlock()
}
