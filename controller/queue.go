package controller

import "sync"

// queued is one message from a switch waiting for its switch goroutine.
type queued struct {
	typ uint8
	msg []byte
	fn  func() // a call to run on the switch goroutine (typ unused)
}

// eventQueue carries messages from a session's reader to its switch
// goroutine. It never blocks the reader (which must keep delivering
// replies the switch goroutine may be waiting for); packet-ins beyond
// maxPacketIns are dropped instead, so a storm costs only that switch.
type eventQueue struct {
	mu           sync.Mutex
	items        []queued
	packetIns    int
	maxPacketIns int
	signal       chan struct{}
}

func newEventQueue(maxPacketIns int) *eventQueue {
	return &eventQueue{maxPacketIns: maxPacketIns, signal: make(chan struct{}, 1)}
}

// push queues a message; it reports false when a packet-in was dropped.
func (q *eventQueue) push(typ uint8, msg []byte, packetIn bool) bool {
	q.mu.Lock()
	if packetIn {
		if q.packetIns >= q.maxPacketIns {
			q.mu.Unlock()
			return false
		}
		q.packetIns++
	}
	q.items = append(q.items, queued{typ: typ, msg: msg})
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
	return true
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
	q.packetIns = 0
	q.mu.Unlock()
	return items
}
