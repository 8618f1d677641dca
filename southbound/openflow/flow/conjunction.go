package flow

import (
	"encoding/binary"
	"strconv"
)

// Nicira NXAST_CONJUNCTION.
const (
	nxastConjunction = 34
	conjunctionLen   = 16
)

// Conjunction marks a flow as clause k of n (1 ≤ k ≤ n, 2 ≤ n ≤ 64) of the
// conjunctive match id (ovs-ofctl "conjunction(ID,K/N)"): a packet
// matches the conjunction when, at one priority, it matches a flow of
// every one of its n clauses, and it then runs the actions of the flow
// that matches conj_id=ID (the ConjID field). A conjunctive flow holds
// only conjunction actions (a flow may be a clause of several
// conjunctions), and every flow of a conjunction has the same priority.
// So a match of N values of one field against M of another costs N+M
// flows, not N×M.
//
// It is the Nicira action struct nx_action_conjunction {type, len=16,
// vendor, subtype=34, clause (k-1), n_clauses, id}, carried raw and
// encoded as OVS encodes it, so a switch reports it back byte for byte.
// Conjunction panics on an impossible clause.
func Conjunction(id uint32, k, n int) Action {
	if n < 2 || n > 64 || k < 1 || k > n {
		panic("flow: conjunction clause " + strconv.Itoa(k) + "/" + strconv.Itoa(n))
	}
	b := make([]byte, conjunctionLen)
	binary.BigEndian.PutUint16(b[0:], 0xffff)
	binary.BigEndian.PutUint16(b[2:], conjunctionLen)
	binary.BigEndian.PutUint32(b[4:], nxVendor)
	binary.BigEndian.PutUint16(b[8:], nxastConjunction)
	b[10] = uint8(k - 1)
	b[11] = uint8(n)
	binary.BigEndian.PutUint32(b[12:], id)
	return Action{Kind: ActRaw, Raw: string(b)}
}

// ConjunctionOf returns the id and clause of a conjunction action (as
// Conjunction's arguments), and false for any other action.
func ConjunctionOf(a Action) (id uint32, k, n int, ok bool) {
	b := []byte(a.Raw)
	if a.Kind != ActRaw || len(b) != conjunctionLen || binary.BigEndian.Uint16(b) != 0xffff ||
		binary.BigEndian.Uint16(b[2:]) != conjunctionLen || binary.BigEndian.Uint32(b[4:]) != nxVendor ||
		binary.BigEndian.Uint16(b[8:]) != nxastConjunction {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint32(b[12:]), int(b[10]) + 1, int(b[11]), true
}

// conjString renders a raw conjunction action the way ovs-ofctl does, or
// returns "".
func conjString(raw string) string {
	id, k, n, ok := ConjunctionOf(Action{Kind: ActRaw, Raw: raw})
	if !ok {
		return ""
	}
	return "conjunction(" + strconv.FormatUint(uint64(id), 10) + "," + strconv.Itoa(k) + "/" + strconv.Itoa(n) + ")"
}
