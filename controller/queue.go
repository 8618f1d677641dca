package controller

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// queued is one message from a switch waiting for its switch goroutine.
type queued struct {
	typ uint8
	msg []byte
	fn  func() // a call to run on the switch goroutine (typ unused)
}

// itemOverhead is what a queued message costs besides its bytes (the
// queued entry and its slot in items), counted against the byte caps so
// that a flood of tiny messages is bounded too.
const itemOverhead = 48

// pushResult is what push did with a message.
type pushResult int

const (
	pushed     pushResult = iota
	dropped               // a packet-in beyond the packet-in caps
	overflowed            // another message beyond maxBytes: the session must end (reported once)
	discarded             // the queue overflowed before: everything is ignored
)

// eventQueue carries messages from a session's reader to its switch
// goroutine, when the reader cannot handle them itself (Switch.message).
// It never blocks the reader (which must keep delivering
// replies the switch goroutine may be waiting for). Everything a switch
// sends is bounded in bytes: packet-ins beyond maxPacketIns or
// maxPacketInBytes are dropped, so a storm costs only that switch; any
// other message beyond maxBytes overflows the queue (those messages
// cannot be dropped without losing state, so the session is closed).
// Calls queued by the runtime itself (call) are never dropped nor
// counted: they come from the controller, not from the switch.
type eventQueue struct {
	mu               sync.Mutex
	items            []queued
	packetIns        int
	packetInBytes    int
	bytes            int // queued bytes of messages other than packet-ins
	maxPacketIns     int
	maxPacketInBytes int
	maxBytes         int
	full             bool // overflowed: nothing more is queued
	signal           chan struct{}

	// held is whether messages from the switch wait or the queue
	// overflowed (packetIns > 0 || bytes > 0 || full), written under mu
	// and read without it: the reader asks for every message it is given.
	held atomic.Bool
}

func newEventQueue(maxPacketIns, maxPacketInBytes, maxBytes int) *eventQueue {
	return &eventQueue{maxPacketIns: maxPacketIns, maxPacketInBytes: maxPacketInBytes, maxBytes: maxBytes,
		signal: make(chan struct{}, 1)}
}

// push queues a message from the switch.
func (q *eventQueue) push(typ uint8, msg []byte, packetIn bool) pushResult {
	n := len(msg) + itemOverhead
	q.mu.Lock()
	switch {
	case q.full:
		q.mu.Unlock()
		return discarded
	case packetIn:
		if q.packetIns >= q.maxPacketIns || q.packetInBytes+n > q.maxPacketInBytes {
			q.mu.Unlock()
			return dropped
		}
		q.packetIns++
		q.packetInBytes += n
	default:
		if q.bytes+n > q.maxBytes {
			q.full = true
			q.held.Store(true)
			q.mu.Unlock()
			return overflowed
		}
		q.bytes += n
	}
	if packetIn {
		msg = bytes.Clone(msg) // the reader's buffer (Switch.message)
	}
	q.items = append(q.items, queued{typ: typ, msg: msg})
	q.held.Store(true)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
	return pushed
}

// holdsSwitchMessages reports whether messages from the switch wait (or
// the queue overflowed): a message that arrives now must queue behind
// them.
func (q *eventQueue) holdsSwitchMessages() bool {
	return q.held.Load()
}

// queuedBytes is what the switch's messages hold in the queue now.
func (q *eventQueue) queuedBytes() (packetIns, others int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.packetInBytes, q.bytes
}

// call queues fn to run on the switch goroutine.
func (q *eventQueue) call(fn func()) {
	q.mu.Lock()
	q.items = append(q.items, queued{fn: fn})
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// take returns everything queued, reusing buf for the next round.
func (q *eventQueue) take(buf []queued) []queued {
	q.mu.Lock()
	items := q.items
	q.items = buf[:0]
	q.packetIns, q.packetInBytes, q.bytes = 0, 0, 0
	q.held.Store(q.full)
	q.mu.Unlock()
	return items
}
