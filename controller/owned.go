package controller

import (
	"fmt"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
)

// entry is what groups and meters have in common for the runtime: an
// object with a 32-bit id, compared whole and encoded by one command.
type entry[T any] interface {
	Equal(T) bool
	String() string
	AppendMod(dst []byte, cmd uint16, xid uint32) ([]byte, error)
}

// owned is a desired group or meter and the app that owns it.
type owned[T any] struct {
	obj   T
	owner uint16
}

// ownedTable is a switch's desired groups or meters by id.
type ownedTable[T entry[T]] map[uint32]owned[T]

// set makes obj desired under id for owner and stages the change.
func (t ownedTable[T]) set(sw *Switch, id uint32, obj T, owner uint16, what string) error {
	cur, ok := t[id]
	if ok && cur.owner != owner {
		return fmt.Errorf("%s %d is owned by another app", what, id)
	}
	if ok && cur.obj.Equal(obj) {
		return nil
	}
	t[id] = owned[T]{obj, owner}
	if !sw.syncing {
		cmd := flow.ModAdd
		if ok {
			cmd = flow.ModModify
		}
		sw.emitMod(obj, cmd)
	}
	return nil
}

// delete drops id if owner owns it and stages the delete.
func (t ownedTable[T]) delete(sw *Switch, id uint32, owner uint16) {
	cur, ok := t[id]
	if !ok || cur.owner != owner {
		return
	}
	delete(t, id)
	if !sw.syncing {
		sw.emitMod(cur.obj, flow.ModDelete)
	}
}

// stageDiff stages what makes the switch's entries (actual) hold every
// desired one; it returns how many messages that took.
func (t ownedTable[T]) stageDiff(sw *Switch, actual map[uint32]T) int {
	n := 0
	for id, d := range t {
		a, ok := actual[id]
		switch {
		case !ok:
			sw.emitMod(d.obj, flow.ModAdd)
			n++
		case !a.Equal(d.obj):
			sw.emitMod(d.obj, flow.ModModify)
			n++
		}
	}
	return n
}

// stageDeletes stages deletes of the switch's entries nobody wants.
func (t ownedTable[T]) stageDeletes(sw *Switch, actual map[uint32]T) int {
	n := 0
	for id, a := range actual {
		if _, ok := t[id]; !ok {
			sw.emitMod(a, flow.ModDelete)
			n++
		}
	}
	return n
}
