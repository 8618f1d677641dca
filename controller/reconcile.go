package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// PacketInMeterID is the meter the runtime puts on table-miss flows that
// send packets to the controller.
const PacketInMeterID = 1

// reconcileStats counts what one reconciliation sent.
type reconcileStats struct {
	Adds, Modifies, Deletes int
	Groups, Meters          int
	Bundle                  bool
}

func (r reconcileStats) changes() int { return r.Adds + r.Modifies + r.Deletes + r.Groups + r.Meters }

// reconcile reads the switch's flows, groups and meters and makes them
// equal to the desired state with the fewest messages, confirmed by a
// barrier. On the initial run the apps first declare their desired state
// (seeing their flows already on the switch); later runs (audits) repair
// drift.
func (sw *Switch) reconcile(ctx context.Context, initial bool) error {
	start := time.Now()
	actual, err := sw.dumpFlows(ctx)
	if err != nil {
		return fmt.Errorf("dump flows: %w", err)
	}
	groups, err := sw.dumpGroups(ctx)
	if err != nil {
		return fmt.Errorf("dump groups: %w", err)
	}
	meters, err := sw.dumpMeters(ctx)
	if err != nil {
		return fmt.Errorf("dump meters: %w", err)
	}
	if initial {
		sw.syncing = true
		sw.setRuntimeState()
		var foundGroups []*flow.Group // sorted by id, for the GroupAdopters
		for _, a := range sw.apps {
			var found []*flow.Flow
			for _, f := range actual {
				if uint16(f.Cookie>>CookieShift) == a.id {
					found = append(found, f)
				}
			}
			if ga, ok := a.handler.(GroupAdopter); ok {
				if foundGroups == nil {
					foundGroups = slices.SortedFunc(maps.Values(groups), func(x, y *flow.Group) int { return cmp.Compare(x.ID, y.ID) })
				}
				ga.FoundGroups(foundGroups)
			}
			a.handler.Start(&a.ctx, found)
		}
		sw.syncing = false
	}
	if !sw.mayWrite() {
		// Not this controller's switch (yet): the apps' desired state is
		// computed; the master is the one that writes.
		sw.discard()
		if initial {
			sw.log.Info("warm: desired state computed, not master", "switch_flows", len(actual), "desired_flows", len(sw.flows),
				"took", time.Since(start).Round(time.Microsecond))
		}
		return nil
	}

	var st reconcileStats
	// The flow diff is computed now, before anything below lets queued
	// events run: a flow an app adds meanwhile must not look expired.
	mods, expired := sw.diffFlows(actual, initial)
	for _, d := range expired {
		// It expired and its FLOW_REMOVED was lost: do not revive it.
		delete(sw.flows, d.Key())
		if slot := sw.slotByCookie(d.Cookie); slot != nil {
			slot.handler.Handle(&slot.ctx, FlowRemoved{Flow: d, Reason: RemovedIdle})
		}
	}

	// Meters and groups first: flows refer to them.
	st.Meters += sw.meters.stageDiff(sw, meters)
	st.Groups += sw.groups.stageDiff(sw, groups)
	if err := sw.flushStaged(ctx); err != nil {
		return err
	}

	// Flows, in one bundle when the switch supports it. Events handled
	// while the meters and groups were confirmed may have changed the
	// desired state: drop the mods that no longer apply (the apps' own
	// changes went out on their own).
	mods = slices.DeleteFunc(mods, func(m flowMod) bool {
		cur, ok := sw.flows[m.key]
		if m.cmd == flow.CmdDeleteStrict {
			return ok
		}
		return cur != m.f
	})
	for _, m := range mods {
		switch m.cmd {
		case flow.CmdAdd:
			st.Adds++
		case flow.CmdDeleteStrict:
			st.Deletes++
		default:
			st.Modifies++
		}
	}
	if len(mods) > 0 {
		if st.Bundle, err = sw.sendFlowMods(ctx, mods); err != nil {
			return err
		}
	}

	// Then what nobody wants any more.
	st.Groups += sw.groups.stageDeletes(sw, groups)
	st.Meters += sw.meters.stageDeletes(sw, meters)
	if err := sw.flushSync(ctx); err != nil {
		return err
	}
	sw.c.metrics.reconciles.Inc()
	sw.c.metrics.reconcileSeconds.Observe(time.Since(start).Seconds())
	if initial || st.changes() > 0 {
		sw.log.Info("reconciled", "initial", initial, "switch_flows", len(actual), "adds", st.Adds,
			"modifies", st.Modifies, "deletes", st.Deletes, "groups", st.Groups, "meters", st.Meters,
			"bundle", st.Bundle, "took", time.Since(start).Round(time.Microsecond))
	}
	sw.lastReconcile = st
	return nil
}

// diffFlows compares the desired flows with the switch's. Outside the
// initial reconciliation, a desired flow with a timeout that the switch no
// longer has has expired: it is returned in expired, not re-added.
func (sw *Switch) diffFlows(actual map[flow.Key]*flow.Flow, initial bool) (mods []flowMod, expired []*flow.Flow) {
	for key, d := range sw.flows {
		a, ok := actual[key]
		switch {
		case !ok && !initial && (d.IdleTimeout != 0 || d.HardTimeout != 0):
			expired = append(expired, d)
		case !ok:
			mods = append(mods, flowMod{key, d, flow.CmdAdd})
		case !a.SameEntry(d):
			mods = append(mods, flowMod{key, d, flowCommand(a, d)})
		}
	}
	for key, a := range actual {
		if _, ok := sw.flows[key]; !ok && !sw.c.learnedFlow(a) {
			mods = append(mods, flowMod{key, a, flow.CmdDeleteStrict})
		}
	}
	return mods, expired
}

type flowMod struct {
	key flow.Key
	f   *flow.Flow
	cmd uint8
}

// flushStaged sends and confirms whatever is staged, if anything.
func (sw *Switch) flushStaged(ctx context.Context) error {
	if len(sw.sent) == 0 && len(sw.out) == 0 {
		return nil
	}
	return sw.flushSync(ctx)
}

// sendFlowMods stages mods: inside an atomic ONF bundle when the switch
// supports bundles, else as plain messages. It reports whether a bundle
// was used.
func (sw *Switch) sendFlowMods(ctx context.Context, mods []flowMod) (bool, error) {
	if sw.c.cfg.Bundles && !sw.noBundles {
		ok, err := sw.sendBundle(ctx, mods)
		if ok || err != nil {
			return ok, err
		}
	}
	for _, m := range mods {
		sw.emitFlow(m.f, m.cmd)
	}
	return false, nil
}

var bundleIDs atomic.Uint32

func (sw *Switch) sendBundle(ctx context.Context, mods []flowMod) (bool, error) {
	id := bundleIDs.Add(1)
	const flags = wire.BundleAtomic | wire.BundleOrdered
	if err := sw.bundleControl(ctx, id, wire.BundleOpenRequest, flags); err != nil {
		var we *wire.Error
		if errors.As(err, &we) && !isSlaveError(we) {
			sw.log.Info("switch does not support bundles; sending flow-mods one by one", "error", we.Error())
			sw.noBundles = true
			return false, nil
		}
		return false, err
	}
	var inner []byte
	for _, m := range mods {
		xid := sw.sess.NextXid()
		var err error
		inner, err = sw.enc.AppendFlowMod(inner[:0], m.f, m.cmd, xid)
		if err != nil {
			sw.log.Error("cannot encode flow", "flow", m.f.String(), "error", err)
			continue
		}
		sw.out = wire.AppendBundleAdd(sw.out, xid, id, flags, inner)
		sw.sent = append(sw.sent, sentMod{xid, m.f})
		sw.c.metrics.flowMods[m.cmd].Inc()
	}
	if err := sw.flushSync(ctx); err != nil {
		return false, err
	}
	if err := sw.bundleControl(ctx, id, wire.BundleCommitRequest, flags); err != nil {
		var we *wire.Error
		if errors.As(err, &we) && !isSlaveError(we) {
			// Nothing was applied; send them one by one so that each
			// failure is attributed to its flow.
			sw.log.Warn("bundle commit failed; sending flow-mods one by one", "error", we.Error())
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func (sw *Switch) bundleControl(ctx context.Context, id uint32, typ, flags uint16) error {
	reply, err := sw.sess.Request(ctx, func(dst []byte, xid uint32) []byte {
		return wire.AppendBundleControl(dst, xid, id, typ, flags)
	})
	if err != nil {
		return err
	}
	bc, err := wire.DecodeBundleControl(reply[0])
	if err != nil {
		return err
	}
	if bc.Type != typ+1 {
		return fmt.Errorf("bundle %d: expected reply type %d, got %d", id, typ+1, bc.Type)
	}
	return nil
}

// setRuntimeState declares the runtime's own flows and meter: the miss
// flows of realized tables, and the packet-in meter.
func (sw *Switch) setRuntimeState() {
	const owner = cookieOwnerRuntime
	meter := uint32(0)
	if rate := sw.c.cfg.PacketInRate; rate > 0 && !sw.noMeter {
		meter = PacketInMeterID
		sw.setMeter(&flow.Meter{ID: PacketInMeterID, Flags: flow.MeterPktps | flow.MeterBurst | flow.MeterStats,
			Bands: []flow.Band{{Rate: rate, Burst: max(rate/10, 1)}}}, owner)
	}
	for _, t := range sw.c.pipe.Tables() {
		f := flow.New(sw.c.pipe.ID(t), 0, nil)
		f.Cookie = owner << CookieShift
		switch t.Miss {
		case MissOwner:
			continue
		case MissNext:
			if next, ok := sw.c.pipe.Next(t); ok {
				f.Goto(sw.c.pipe.ID(next))
			}
		case MissController:
			f.WithMeter(meter).Act(flow.Output(flow.PortController))
		}
		sw.setFlow(f)
	}
}

// ---- reading the switch ----

// dump sends a multipart request and feeds the body of every reply part
// to decode.
func (sw *Switch) dump(ctx context.Context, build func(dst []byte, xid uint32) []byte, decode func(body []byte) error) error {
	parts, err := sw.sess.Request(ctx, build)
	if err != nil {
		return err
	}
	for _, p := range parts {
		mp, err := wire.DecodeMultipartReply(p)
		if err != nil {
			return err
		}
		if err := decode(mp.Body); err != nil {
			return err
		}
	}
	return nil
}

func (sw *Switch) dumpFlows(ctx context.Context) (map[flow.Key]*flow.Flow, error) {
	out := make(map[flow.Key]*flow.Flow)
	err := sw.eachFlow(ctx, func(f *flow.Flow, _ *wire.FlowStats) { out[f.Key()] = f })
	return out, err
}

// eachFlow reads the switch's whole flow table and calls fn for every
// flow with its statistics entry. It only uses the session, so any
// goroutine may call it.
func (sw *Switch) eachFlow(ctx context.Context, fn func(*flow.Flow, *wire.FlowStats)) error {
	return sw.dump(ctx, func(dst []byte, xid uint32) []byte {
		return wire.AppendFlowStatsRequest(dst, xid, wire.TableAll, 0, 0)
	}, func(body []byte) error {
		return wire.DecodeFlowStats(body, func(fs *wire.FlowStats) error {
			f, err := flow.FromStats(fs)
			if err == nil {
				fn(f, fs)
			}
			return err
		})
	})
}

func (sw *Switch) dumpGroups(ctx context.Context) (map[uint32]*flow.Group, error) {
	out := make(map[uint32]*flow.Group)
	err := sw.dump(ctx, func(dst []byte, xid uint32) []byte {
		return wire.AppendMultipartRequest(dst, xid, wire.MultipartGroupDesc, nil)
	}, func(body []byte) error {
		return wire.DecodeGroupDesc(body, func(d *wire.GroupDesc) error {
			g, err := flow.GroupFromDesc(d)
			if err == nil {
				out[g.ID] = g
			}
			return err
		})
	})
	return out, err
}

func (sw *Switch) dumpMeters(ctx context.Context) (map[uint32]*flow.Meter, error) {
	out := make(map[uint32]*flow.Meter)
	err := sw.dump(ctx, wire.AppendMeterConfigRequest, func(body []byte) error {
		return wire.DecodeMeterConfig(body, func(c *wire.MeterConfig) error {
			m, err := flow.MeterFromConfig(c)
			if err == nil {
				out[m.ID] = m
			}
			return err
		})
	})
	var we *wire.Error
	if errors.As(err, &we) {
		return map[uint32]*flow.Meter{}, nil // a switch without meters
	}
	return out, err
}
