package controller

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/southbound/openflow"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// appSlot is one app's presence on one switch.
type appSlot struct {
	id      uint16
	name    string
	cookie  uint64
	handler SwitchApp
	log     *slog.Logger
	ctx     Context

	updatePending atomic.Bool // an Update is queued (Env.Refresh)
}

// sentMod is a message of an unconfirmed batch, kept so that an error
// reply can be tied to the object that caused it.
type sentMod struct {
	xid uint32
	obj any // *flow.Flow, *flow.Group, *flow.Meter or *zoneFlush
}

type batch struct {
	barrier uint32
	mods    []sentMod
}

// Switch is the runtime's state for one connected switch. Everything in it
// is owned by whoever holds own: the switch's goroutine (run), or the
// session's reader handling a message itself (message); other goroutines
// reach it only through its event queue.
type Switch struct {
	c    *Controller
	sess *openflow.Session
	dpid uint64
	log  *slog.Logger
	info SwitchInfo

	ports  map[uint32]wire.Port
	apps   []*appSlot
	flows  map[flow.Key]*flow.Flow
	groups ownedTable[*flow.Group]
	meters ownedTable[*flow.Meter]

	own       sync.Mutex // held while handling anything: app handlers of a switch never run concurrently
	q         *eventQueue
	qbuf      []queued
	syncing   bool // inside a full reconcile: record desired state, send nothing
	noMeter   bool // the switch refused the packet-in meter
	noBundles bool // the switch refused to open a bundle

	lastReconcile reconcileStats
	out           []byte
	enc           flow.Encoder // FLOW_MOD templates, per switch: no lock shared between switches
	sent          []sentMod
	batches       []*batch

	pi    wire.PacketIn
	frame packet.Frame
	piEv  Event // PacketIn{&pi, &frame, nil}, boxed once

	// Counts not yet added to the controller's metrics: flush adds them,
	// once per burst (the counters are shared by every switch, and an
	// atomic add per message on a cache line that every core writes
	// costs more than the rest of a packet-in's bookkeeping).
	nPacketIns, nPacketOuts uint64
	nFlowMods               [flow.CmdDeleteStrict + 1]uint64

	connectedAt time.Time
	ready       chan struct{}

	// OpenFlow role (Config.Mastership): master while the switch accepted
	// this controller's MASTER request; role and gen as it last said.
	runCtx   context.Context
	master   bool
	role     uint32
	gen      uint64
	roleSnap atomic.Pointer[RoleState] // for readers off the switch goroutine
}

func newSwitch(c *Controller, s *openflow.Session) *Switch {
	sw := &Switch{
		c: c, sess: s, dpid: s.DatapathID(), log: s.Logger(),
		info:   SwitchInfo{DatapathID: s.DatapathID(), Remote: s.RemoteAddr(), Desc: s.Desc, Features: s.Features},
		ports:  make(map[uint32]wire.Port, len(s.Ports)),
		flows:  make(map[flow.Key]*flow.Flow),
		groups: make(ownedTable[*flow.Group]),
		meters: make(ownedTable[*flow.Meter]),
		q:      newEventQueue(c.cfg.MaxQueuedPacketIns, c.cfg.MaxQueuedPacketInBytes, c.cfg.MaxQueuedBytes),
		ready:  make(chan struct{}),

		connectedAt: time.Now(),
	}
	for _, p := range s.Ports {
		sw.ports[p.PortNo] = p
	}
	sw.piEv = PacketIn{Msg: &sw.pi, Frame: &sw.frame}
	sw.own.Lock() // until run has reconciled the switch: messages queue meanwhile
	for _, a := range c.apps {
		slot := &appSlot{id: a.id, name: a.name, cookie: uint64(a.id) << CookieShift,
			log: sw.log.With("app", a.name)}
		slot.ctx = Context{sw: sw, app: slot}
		sw.apps = append(sw.apps, slot)
	}
	return sw
}

// Ready is closed once the switch's first reconciliation is confirmed.
func (sw *Switch) Ready() <-chan struct{} { return sw.ready }

// run is the switch goroutine: reconcile, then handle events until the
// session ends.
func (sw *Switch) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sw.sess.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	for _, a := range sw.apps {
		a.handler = sw.c.appByID(a.id).Attach(sw.info)
	}
	sw.runCtx = ctx
	if m := sw.c.cfg.Mastership; m != nil {
		m.Connected(sw.dpid)
	}
	// With elections, this is a warm start until the switch is ours: the
	// apps adopt what they find and compute; nothing is sent.
	if err := sw.safeReconcile(ctx, true); err != nil {
		sw.sess.Close(fmt.Errorf("initial reconcile: %w", err))
		sw.own.Unlock()
		return
	}
	close(sw.ready)
	for _, a := range sw.c.apps {
		if w, ok := a.app.(SwitchWatcher); ok {
			w.SwitchUp(sw.info)
			defer w.SwitchDown(sw.info)
		}
	}
	sw.c.cfg.Events.Publish(events.Event{Topic: "switch", Type: "up", Kind: "switch", ID: dpidString(sw.dpid),
		Object: map[string]any{"datapath_id": dpidString(sw.dpid), "remote": sw.info.Remote, "ports": len(sw.ports)}})
	sw.log.Info("switch ready", "flows", len(sw.flows), "groups", len(sw.groups), "meters", len(sw.meters),
		"since_connect", time.Since(sw.connectedAt).Round(time.Microsecond))
	if r, ok := sw.c.wantedRole(sw.dpid); ok {
		sw.applyRole(r)
	}
	sw.publishRole()
	sw.own.Unlock()

	for _, a := range sw.apps {
		if t, ok := a.handler.(Ticker); ok && t.TickInterval() > 0 {
			go sw.tick(ctx, a, t.TickInterval())
		}
	}
	var audit <-chan time.Time
	if sw.c.cfg.AuditInterval > 0 {
		t := time.NewTicker(sw.c.cfg.AuditInterval)
		defer t.Stop()
		audit = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sw.q.signal:
			sw.own.Lock()
			sw.drain()
			sw.flush()
			sw.own.Unlock()
		case <-audit:
			if !sw.mayWrite() {
				continue
			}
			sw.own.Lock()
			err := sw.safeReconcile(ctx, false)
			sw.own.Unlock()
			if err != nil && ctx.Err() == nil {
				sw.log.Warn("audit reconcile failed", "error", err)
			}
		}
	}
}

// tick queues a Tick for one app every interval until ctx ends.
func (sw *Switch) tick(ctx context.Context, a *appSlot, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			sw.q.call(func() { a.handler.Handle(&a.ctx, Tick{Now: now}) })
		}
	}
}

// safeReconcile reconciles, turning a panic (in an app's Start, say) into
// an error that ends only this switch's session.
func (sw *Switch) safeReconcile(ctx context.Context, initial bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			sw.c.metrics.panics.Inc()
			sw.log.Error("panic during reconciliation", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	err = sw.reconcile(ctx, initial)
	sw.flush() // what events handled meanwhile staged
	return err
}

// message takes a message from the switch, on the session's reader. When
// nothing holds the switch (its goroutine is idle) and nothing from the
// switch waits in the queue, the reader handles it there and then: no
// goroutine is woken, and what it produces is sent when the reader has
// handled every message it has read (ReadIdle). Otherwise it is queued for
// the switch goroutine, behind the others. Either way the switch's messages
// are handled in order, one at a time. A handler that holds the reader
// long is the session's concern: another goroutine takes over reading, so
// replies and echoes go on and further messages queue (bounded as ever).
func (sw *Switch) message(h wire.Header, msg []byte) {
	switch h.Type {
	case wire.TypePacketIn:
		// msg is the reader's buffer: a packet-in handled here is used
		// only during the call; a queued one is copied (push).
	case wire.TypePortStatus, wire.TypeFlowRemoved, wire.TypeError, wire.TypeBarrierReply, wire.TypeExperimenter:
		msg = bytes.Clone(msg) // rare; what they decode may outlive the call (an error's data)
	default:
		return
	}
	if sw.own.TryLock() {
		if !sw.q.holdsSwitchMessages() {
			sw.handle(h.Type, msg)
			sw.own.Unlock()
			return
		}
		sw.own.Unlock()
	}
	c := sw.c
	if h.Type == wire.TypePacketIn {
		if sw.q.push(h.Type, msg, true) == dropped {
			c.metrics.packetInsDropped.Inc()
		}
		return
	}
	if sw.q.push(h.Type, msg, false) == overflowed {
		c.metrics.sessionsClosed.WithLabelValues(ReasonQueueOverflow).Inc()
		sw.log.Warn("switch sends more than its goroutine handles; closing the session",
			"reason", ReasonQueueOverflow, "type", wire.TypeName(h.Type), "max_queued_bytes", c.cfg.MaxQueuedBytes)
		sw.sess.Close(fmt.Errorf("%s: more than %d bytes of messages waiting (last %s)", ReasonQueueOverflow,
			c.cfg.MaxQueuedBytes, wire.TypeName(h.Type)))
	}
}

// ReadIdle sends what the messages the reader handled itself produced
// (openflow.ReadIdler): it runs when the reader has no whole message left
// to read. If the switch goroutine holds the switch, it sends them when
// it is done.
func (c *Controller) ReadIdle(s *openflow.Session) {
	sw := s.Value.(*Switch)
	if sw.own.TryLock() {
		sw.flush()
		sw.own.Unlock()
	}
}

var _ openflow.ReadIdler = (*Controller)(nil)

// drain handles every queued message.
func (sw *Switch) drain() {
	// A call handled here may wait on the switch and drain again
	// (flushSync: FlushConntrackZones, a new master's reconciliation).
	// That nested drain must not hand the queue the array this one is
	// iterating, or new events would overwrite the ones not yet handled:
	// the buffer is lent to one drain at a time.
	buf := sw.qbuf
	sw.qbuf = nil
	items := sw.q.take(buf)
	for i := range items {
		if items[i].fn != nil {
			sw.call(items[i].fn)
			continue
		}
		sw.handle(items[i].typ, items[i].msg)
	}
	clear(items)
	if sw.qbuf == nil {
		sw.qbuf = items
	}
}

// call runs a queued call (an app's Tick or Update). A panic in it ends
// this switch's session only, like a panic while handling a message.
func (sw *Switch) call(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			sw.c.metrics.panics.Inc()
			sw.log.Error("panic in an app; closing the session", "panic", r, "stack", string(debug.Stack()))
			sw.sess.Close(fmt.Errorf("panic in an app: %v", r))
		}
	}()
	fn()
}

// handle processes one message from the switch. A malformed message, or
// a panic while handling it (in a decoder or an app), ends this switch's
// session only: it is logged with the offending bytes, and the switch is
// reconciled afresh when it reconnects.
func (sw *Switch) handle(typ uint8, msg []byte) {
	defer func() {
		if r := recover(); r != nil {
			sw.c.metrics.panics.Inc()
			sw.log.Error("panic while handling a message; closing the session", "panic", r,
				"type", wire.TypeName(typ), "message", hexPrefix(msg), "stack", string(debug.Stack()))
			sw.sess.Close(fmt.Errorf("panic while handling %s: %v", wire.TypeName(typ), r))
		}
	}()
	var err error
	switch typ {
	case wire.TypePacketIn:
		err = sw.handlePacketIn(msg)
	case wire.TypePortStatus:
		var ps wire.PortStatus
		if ps, err = wire.DecodePortStatus(msg); err == nil {
			sw.handlePortStatus(ps)
		}
	case wire.TypeFlowRemoved:
		var fr wire.FlowRemoved
		if fr, err = wire.DecodeFlowRemoved(msg); err == nil {
			err = sw.handleFlowRemoved(&fr)
		}
	case wire.TypeError:
		var e *wire.Error
		if e, err = wire.DecodeError(msg); err == nil {
			sw.handleError(e)
		}
	case wire.TypeBarrierReply:
		sw.confirm(wire.Xid(msg))
	case wire.TypeExperimenter:
		var st wire.RoleStatus
		var ok bool
		if st, ok, err = wire.DecodeRoleStatus(msg); ok && err == nil {
			sw.handleRoleStatus(st)
		}
	}
	if err != nil {
		sw.log.Error("malformed message; closing the session", "type", wire.TypeName(typ), "error", err, "message", hexPrefix(msg))
		sw.sess.Close(fmt.Errorf("malformed %s: %w", wire.TypeName(typ), err))
	}
}

// hexPrefix renders up to 256 bytes of a message for a log line.
func hexPrefix(b []byte) string {
	if len(b) > 256 {
		return hex.EncodeToString(b[:256]) + "..."
	}
	return hex.EncodeToString(b)
}

func (sw *Switch) handlePacketIn(msg []byte) error {
	if err := wire.DecodePacketIn(msg, &sw.pi); err != nil {
		return err
	}
	sw.nPacketIns++
	ev := sw.piEv // no allocation for a well-formed frame
	if err := sw.frame.Decode(sw.pi.Data); err != nil {
		ev = PacketIn{Msg: &sw.pi, Frame: &sw.frame, FrameErr: err}
	}
	slot := sw.slotByCookie(sw.pi.Cookie)
	if slot == nil {
		if t := sw.c.tableByID(sw.pi.TableID); t != nil {
			slot = sw.slotByName(t.Owner)
		}
	}
	if slot != nil {
		slot.handler.Handle(&slot.ctx, ev)
	}
	return nil
}

func (sw *Switch) handlePortStatus(ps wire.PortStatus) {
	if ps.Reason == wire.PortDeleted {
		delete(sw.ports, ps.Port.PortNo)
	} else {
		sw.ports[ps.Port.PortNo] = ps.Port
	}
	sw.c.cfg.Events.Publish(events.Event{Topic: "port", Type: [...]string{"added", "deleted", "modified"}[min(ps.Reason, 2)],
		Kind: "port", ID: fmt.Sprintf("%s:%d", dpidString(sw.dpid), ps.Port.PortNo),
		Object: map[string]any{"datapath_id": dpidString(sw.dpid), "number": ps.Port.PortNo, "name": ps.Port.Name, "up": ps.Port.Up()}})
	ev := PortStatus{Reason: ps.Reason, Port: ps.Port}
	for _, a := range sw.apps {
		a.handler.Handle(&a.ctx, ev)
	}
}

func (sw *Switch) handleFlowRemoved(fr *wire.FlowRemoved) error {
	m, err := flow.DecodeMatch(fr.Match)
	if err != nil {
		return err
	}
	probe := flow.Flow{Table: fr.TableID, Priority: fr.Priority, Match: m}
	key := probe.Key()
	cur, ok := sw.flows[key]
	if !ok || cur.Cookie != fr.Cookie {
		return nil // one we deleted ourselves, or already replaced
	}
	switch fr.Reason {
	case RemovedIdle, RemovedHard, RemovedEviction:
		// It expired: it is no longer desired, and its owner is told.
		delete(sw.flows, key)
		if slot := sw.slotByCookie(cur.Cookie); slot != nil {
			slot.handler.Handle(&slot.ctx, FlowRemoved{Flow: cur, Reason: fr.Reason})
		}
	default:
		// Someone else deleted a flow we want: the desired state wins.
		sw.log.Warn("a desired flow was deleted behind the controller's back; restoring it", "flow", cur.String())
		sw.emitFlow(cur, flow.CmdAdd)
	}
	return nil
}

// handleError ties an error to the message that caused it, drops that
// object from the desired state and tells its owner.
func (sw *Switch) handleError(e *wire.Error) {
	sw.c.metrics.errors.Inc()
	if isSlaveError(e) {
		// Another controller is master now (its ROLE_STATUS may follow):
		// what was sent stays desired, for when this one is master again.
		if sw.master {
			sw.master = false
			sw.c.metrics.roleChanges.WithLabelValues("slave").Inc()
			sw.log.Info("the switch holds this controller as a slave", "xid", e.Xid)
			sw.publishRole()
		}
		return
	}
	obj := sw.findSent(e.Xid)
	if obj == nil {
		sw.log.Warn("switch reported an error for no pending request", "error", e.Error(), "xid", e.Xid)
		return
	}
	var owner uint16
	switch o := obj.(type) {
	case *zoneFlush:
		o.err = e
		sw.log.Error("switch refused a conntrack zone flush", "zone", o.zone, "error", e.Error())
		return
	case *flow.Flow:
		owner = uint16(o.Cookie >> CookieShift)
		if cur := sw.flows[o.Key()]; cur == o {
			delete(sw.flows, o.Key())
		}
	case *flow.Group:
		if cur, ok := sw.groups[o.ID]; ok && cur.obj == o {
			owner = cur.owner
			delete(sw.groups, o.ID)
		}
	case *flow.Meter:
		if cur, ok := sw.meters[o.ID]; ok && cur.obj == o {
			owner = cur.owner
			delete(sw.meters, o.ID)
			if owner == cookieOwnerRuntime && o.ID == PacketInMeterID {
				sw.log.Warn("switch refused the packet-in meter; table-miss flows go to the controller unmetered", "error", e.Error())
				sw.noMeter = true
				sw.setRuntimeState()
				return
			}
		}
	}
	sw.log.Error("switch rejected a message", "error", e.Error(), "object", fmt.Sprint(obj))
	if slot := sw.slotByID(owner); slot != nil {
		slot.handler.Handle(&slot.ctx, Rejected{Err: e, Object: obj.(fmt.Stringer)})
	}
}

// findSent returns the object whose message had xid, among the sent and
// not yet confirmed batches (staged messages cannot have been answered).
func (sw *Switch) findSent(xid uint32) any {
	for _, b := range sw.batches {
		for _, m := range b.mods {
			if m.xid == xid {
				return m.obj
			}
		}
	}
	return nil
}

// confirm drops the batch a barrier reply closes, and every older one.
func (sw *Switch) confirm(xid uint32) {
	for i, b := range sw.batches {
		if b.barrier == xid {
			clear(sw.batches[:i+1])
			sw.batches = sw.batches[i+1:]
			return
		}
	}
}

func (sw *Switch) slotByCookie(cookie uint64) *appSlot {
	return sw.slotByID(uint16(cookie >> CookieShift))
}

func (sw *Switch) slotByID(id uint16) *appSlot {
	for _, a := range sw.apps {
		if a.id == id {
			return a
		}
	}
	return nil
}

func (sw *Switch) slotByName(name string) *appSlot {
	for _, a := range sw.apps {
		if a.name == name {
			return a
		}
	}
	return nil
}

// ---- desired state ----

func (sw *Switch) setFlow(f *flow.Flow) {
	key := f.Key()
	cur, ok := sw.flows[key]
	if ok && cur.Equal(f) {
		return
	}
	sw.flows[key] = f
	if sw.syncing {
		return
	}
	sw.emitFlow(f, flowCommand(cur, f))
}

// flowCommand picks MODIFY_STRICT when only the instructions change (it
// keeps the counters) and ADD otherwise (it replaces cookie, timeouts and
// flags too).
func flowCommand(cur, f *flow.Flow) uint8 {
	if cur != nil && cur.Cookie == f.Cookie && cur.IdleTimeout == f.IdleTimeout &&
		cur.HardTimeout == f.HardTimeout && cur.Flags == f.Flags {
		return flow.CmdModifyStrict
	}
	return flow.CmdAdd
}

func (sw *Switch) deleteFlow(key flow.Key, ownerCookie uint64) {
	cur, ok := sw.flows[key]
	if !ok || cur.Cookie>>CookieShift != ownerCookie>>CookieShift {
		return
	}
	delete(sw.flows, key)
	if !sw.syncing {
		sw.emitFlow(cur, flow.CmdDeleteStrict)
	}
}

func (sw *Switch) setGroup(g *flow.Group, owner uint16) error {
	return sw.groups.set(sw, g.ID, g, owner, "group")
}

func (sw *Switch) deleteGroup(id uint32, owner uint16) { sw.groups.delete(sw, id, owner) }

func (sw *Switch) setMeter(m *flow.Meter, owner uint16) error {
	return sw.meters.set(sw, m.ID, m, owner, "meter")
}

func (sw *Switch) deleteMeter(id uint32, owner uint16) { sw.meters.delete(sw, id, owner) }

// ---- output ----

func (sw *Switch) emitFlow(f *flow.Flow, cmd uint8) {
	xid := sw.sess.NextXid()
	out, err := sw.enc.AppendFlowMod(sw.out, f, cmd, xid)
	if err != nil {
		sw.log.Error("cannot encode flow", "flow", f.String(), "error", err)
		return
	}
	sw.out = out
	sw.sent = append(sw.sent, sentMod{xid, f})
	sw.nFlowMods[cmd]++
}

// emitMod stages a group or meter modification.
func (sw *Switch) emitMod(obj interface {
	String() string
	AppendMod(dst []byte, cmd uint16, xid uint32) ([]byte, error)
}, cmd uint16) {
	xid := sw.sess.NextXid()
	out, err := obj.AppendMod(sw.out, cmd, xid)
	if err != nil {
		sw.log.Error("cannot encode", "object", obj.String(), "error", err)
		return
	}
	sw.out = out
	sw.sent = append(sw.sent, sentMod{xid, obj})
}

func (sw *Switch) packetOut(inPort uint32, data []byte, acts []flow.Action) error {
	out, err := sw.enc.AppendPacketOut(sw.out, sw.sess.NextXid(), inPort, acts, data)
	if err != nil {
		return err
	}
	sw.out = out
	sw.nPacketOuts++
	return nil
}

// flush sends what handling the last events produced in one write, with a
// barrier when it changed state; the barrier reply confirms the batch.
func (sw *Switch) flush() {
	if len(sw.out) > 0 && !sw.mayWrite() {
		sw.discard()
	}
	sw.addCounts()
	if len(sw.out) == 0 {
		return
	}
	if len(sw.sent) > 0 {
		xid := sw.sess.NextXid()
		sw.out = wire.AppendEmpty(sw.out, wire.TypeBarrierRequest, xid)
		sw.batches = append(sw.batches, &batch{barrier: xid, mods: sw.sent})
		sw.sent = nil
	}
	var err error
	if sw.out, err = sw.sess.SendBuffer(sw.out); err != nil && !errors.Is(err, openflow.ErrClosed) {
		sw.log.Warn("send failed", "error", err)
	}
}

// discard drops what is staged: this controller is not the switch's
// master (the desired state stays; the next master reconciles it). What
// was dropped is not counted as sent.
func (sw *Switch) discard() {
	sw.out = sw.out[:0]
	sw.sent = sw.sent[:0]
	sw.nPacketOuts = 0
	clear(sw.nFlowMods[:])
}

// addCounts adds what the switch counted since the last call to the
// controller's metrics.
func (sw *Switch) addCounts() {
	m := sw.c.metrics
	if sw.nPacketIns > 0 {
		m.packetIns.Add(float64(sw.nPacketIns))
		sw.nPacketIns = 0
	}
	if sw.nPacketOuts > 0 {
		m.packetOuts.Add(float64(sw.nPacketOuts))
		sw.nPacketOuts = 0
	}
	for cmd, n := range sw.nFlowMods {
		if n > 0 {
			m.flowMods[cmd].Add(float64(n))
			sw.nFlowMods[cmd] = 0
		}
	}
}

// flushSync sends what is staged followed by a barrier, waits for the
// barrier reply, and handles the errors that arrived before it.
func (sw *Switch) flushSync(ctx context.Context) error {
	if !sw.mayWrite() {
		sw.discard()
		sw.addCounts()
		return nil
	}
	sw.addCounts()
	b := &batch{mods: sw.sent}
	sw.sent = nil
	sw.batches = append(sw.batches, b)
	out := sw.out
	sw.out = nil
	_, err := sw.sess.Request(ctx, func(dst []byte, xid uint32) []byte {
		b.barrier = xid
		return wire.AppendEmpty(append(dst, out...), wire.TypeBarrierRequest, xid)
	})
	if err != nil {
		return err
	}
	sw.drain() // errors for the batch precede its barrier reply
	sw.confirm(b.barrier)
	return nil
}
