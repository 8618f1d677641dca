package l2switch

import (
	"math/rand/v2"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
)

// macTable maps learned MACs to their ports: an open-addressing hash table
// with linear probing, 16 bytes an entry, four to a cache line. A
// packet-in looks two MACs up (source and destination), and with many
// switches and hosts the table is rarely in the cache: a lookup here
// costs about one cache miss, a Go map's about two (its control word,
// then the slot) and an indirection more. Keys are hashed with a random
// per-table seed, so that nobody picks MACs that collide.
type macTable struct {
	slots []macSlot // len a power of two; nil until the first set
	n     int
	seed  uint64
}

// macSlot is one entry; key is the MAC with bit 63 set (MACs have 48
// bits), 0 when the slot is free.
type macSlot struct {
	key  uint64
	port uint32
}

const macUsed = 1 << 63

func (t *macTable) hash(key uint64) uint64 {
	h := key ^ t.seed
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// get returns mac's port.
func (t *macTable) get(mac flow.MAC) (uint32, bool) {
	if t.n == 0 {
		return 0, false
	}
	key := uint64(mac) | macUsed
	mask := uint64(len(t.slots) - 1)
	for i := t.hash(key) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.key == key {
			return s.port, true
		}
		if s.key == 0 {
			return 0, false
		}
	}
}

// set records mac on port.
func (t *macTable) set(mac flow.MAC, port uint32) {
	if (t.n+1)*4 > len(t.slots)*3 { // at most 3/4 full
		t.grow()
	}
	key := uint64(mac) | macUsed
	mask := uint64(len(t.slots) - 1)
	for i := t.hash(key) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.key == key {
			s.port = port
			return
		}
		if s.key == 0 {
			*s = macSlot{key, port}
			t.n++
			return
		}
	}
}

// delete forgets mac. The entries after it in its run move back to where
// a lookup finds them without it (no tombstones).
func (t *macTable) delete(mac flow.MAC) {
	if t.n == 0 {
		return
	}
	key := uint64(mac) | macUsed
	mask := uint64(len(t.slots) - 1)
	i := t.hash(key) & mask
	for t.slots[i].key != key {
		if t.slots[i].key == 0 {
			return
		}
		i = (i + 1) & mask
	}
	t.n--
	for j := (i + 1) & mask; t.slots[j].key != 0; j = (j + 1) & mask {
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if home := t.hash(t.slots[j].key) & mask; (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = macSlot{}
}

func (t *macTable) grow() {
	old := t.slots
	if t.seed == 0 {
		t.seed = rand.Uint64() | 1
	}
	t.slots = make([]macSlot, max(64, 2*len(old)))
	t.n = 0
	for _, s := range old {
		if s.key != 0 {
			t.set(flow.MAC(s.key&^macUsed), s.port)
		}
	}
}

// all calls fn for every learned MAC; fn may delete the MAC it is given
// (a deletion moves entries back, so the scan goes on from a copy).
func (t *macTable) all(fn func(mac flow.MAC, port uint32)) {
	for _, s := range append([]macSlot(nil), t.slots...) {
		if s.key != 0 {
			fn(flow.MAC(s.key&^macUsed), s.port)
		}
	}
}

func (t *macTable) len() int { return t.n }
