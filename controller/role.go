package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// Mastership is told which switches connect to this controller when
// several controllers share them (loomd replicas: package cluster runs
// an election per switch in etcd), and answers through Controller.SetRole. Without
// one (Config.Mastership nil) every switch is this controller's alone: it
// asks for no role and writes to every switch.
type Mastership interface {
	// Connected: the switch is connected to this controller (a
	// candidate for its mastership). Disconnected: it is not any more.
	Connected(dpid uint64)
	Disconnected(dpid uint64)
}

// Role is this controller's role for one switch, as the elections decide.
type Role struct {
	// Master: this controller writes to the switch. The others keep the
	// switch's desired state computed (their apps run) and send nothing.
	Master bool
	// Generation is the master's generation id: sent with ROLE_REQUEST
	// MASTER by the master and SLAVE by the others; the switch refuses a
	// request older than the newest it has seen (OFPRRFC_STALE), so a
	// deposed master cannot write.
	Generation uint64
	// MasterID names the master (the elections' name for it), shown by
	// the API.
	MasterID string
}

// RoleState is a switch's role as this controller holds it.
type RoleState struct {
	// Role is "master" or "slave" when elections run (Config.Mastership),
	// "equal" otherwise.
	Role string `json:"role"`
	// Generation is the generation id the switch accepted last.
	Generation uint64 `json:"generation,omitempty"`
	// Wanted is what the elections decided, until the switch accepted it.
	Wanted string `json:"wanted,omitempty"`
	// Master names the master the elections chose.
	Master string `json:"master,omitempty"`
}

// SetRole records what the elections decided for dpid and, if the switch
// is connected, asks it for that role: a new master asks for MASTER with
// the generation and, once the switch accepts, reconciles it (the flows
// its predecessor left are adopted; what is right is not sent again); the
// others ask for SLAVE and stop writing at once.
func (c *Controller) SetRole(dpid uint64, r Role) {
	c.mu.Lock()
	c.roles[dpid] = r
	sw := c.switches[dpid]
	c.mu.Unlock()
	if sw != nil {
		sw.q.call(func() { sw.applyRole(r) })
	}
}

// wantedRole is what the elections decided for dpid, if anything.
func (c *Controller) wantedRole(dpid uint64) (Role, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.roles[dpid]
	return r, ok
}

// mayWrite tells whether the switch may be sent state changes.
func (sw *Switch) mayWrite() bool { return sw.c.cfg.Mastership == nil || sw.master }

// applyRole asks the switch for the role r (on the switch goroutine).
func (sw *Switch) applyRole(r Role) {
	if sw.c.cfg.Mastership == nil || sw.runCtx == nil {
		return
	}
	defer sw.publishRole()
	ctx := sw.runCtx
	if !r.Master {
		was := sw.master
		sw.master = false
		if was {
			sw.c.metrics.roleChanges.WithLabelValues("slave").Inc()
			sw.log.Info("no longer master", "generation", r.Generation)
		}
		// SLAVE with the master's generation: the switch then sends this
		// controller port changes only (no packet-ins).
		if r.Generation != 0 && (sw.gen != r.Generation || sw.role != wire.RoleSlave) {
			if err := sw.roleRequest(ctx, wire.RoleSlave, r.Generation); err != nil {
				sw.log.Warn("slave role request", "error", err)
			}
		}
		return
	}
	if sw.master && sw.gen == r.Generation {
		return
	}
	start := time.Now()
	if err := sw.roleRequest(ctx, wire.RoleMaster, r.Generation); err != nil {
		sw.master = false
		sw.log.Warn("master role request refused", "generation", r.Generation, "error", err)
		return
	}
	sw.master = true
	sw.c.metrics.roleChanges.WithLabelValues("master").Inc()
	sw.log.Info("master role accepted", "generation", r.Generation, "role_request", time.Since(start).Round(time.Microsecond))
	// The switch holds what the last master left: reconcile against the
	// desired state the apps kept (adopted found flows at start).
	err := sw.safeReconcile(ctx, false)
	sw.log.Info("master", "generation", r.Generation, "role_request_and_reconcile", time.Since(start).Round(time.Microsecond),
		"flow_mods", sw.lastReconcile.Adds+sw.lastReconcile.Modifies+sw.lastReconcile.Deletes, "error", err)
}

// ErrNotMaster: the switch's master is another controller (elections).
var ErrNotMaster = errors.New("not the switch's master")

// errStale is a role request the switch refused as stale.
var errStale = fmt.Errorf("stale generation")

// roleRequest sends ROLE_REQUEST and waits for its answer.
func (sw *Switch) roleRequest(ctx context.Context, role uint32, gen uint64) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	parts, err := sw.sess.Request(rctx, func(dst []byte, xid uint32) []byte {
		return wire.AppendRoleRequest(dst, xid, role, gen)
	})
	var e *wire.Error
	switch {
	case errors.As(err, &e):
		if e.Type == wire.ErrRoleRequestFailed && e.Code == wire.RoleRequestFailedStale {
			sw.c.metrics.staleRoleRequests.Inc()
			return fmt.Errorf("%w: %d: %s", errStale, gen, e.Error())
		}
		return e
	case err != nil:
		return err
	case len(parts) != 1:
		return fmt.Errorf("%d answers to a role request", len(parts))
	}
	rr, err := wire.DecodeRoleReply(parts[0])
	if err != nil {
		return err
	}
	sw.role, sw.gen = rr.Role, rr.GenerationID
	return nil
}

// handleRoleStatus: another controller became master (ROLE_STATUS).
func (sw *Switch) handleRoleStatus(st wire.RoleStatus) {
	sw.role = st.Role
	if st.GenerationID != 0 {
		sw.gen = st.GenerationID
	}
	if st.Role != wire.RoleMaster && sw.master {
		sw.master = false
		sw.c.metrics.roleChanges.WithLabelValues("slave").Inc()
		sw.log.Info("deposed by another master", "generation", st.GenerationID)
	}
	sw.publishRole()
}

// publishRole makes the switch's role readable off its goroutine.
func (sw *Switch) publishRole() {
	st := sw.roleState()
	old := sw.roleSnap.Swap(&st)
	if sw.c.cfg.Mastership != nil && (old == nil || old.Role != st.Role || old.Generation != st.Generation) {
		sw.c.cfg.Events.Publish(events.Event{Topic: "switch", Type: "role", Kind: "switch", ID: dpidString(sw.dpid),
			Object: map[string]any{"datapath_id": dpidString(sw.dpid), "role": st.Role, "generation": st.Generation, "master": st.Master}})
	}
}

// RoleOf returns this controller's role for a connected switch.
func (c *Controller) RoleOf(dpid uint64) (RoleState, bool) {
	sw, ok := c.Switch(dpid)
	if !ok {
		return RoleState{}, false
	}
	if st := sw.roleSnap.Load(); st != nil {
		return *st, true
	}
	if c.cfg.Mastership == nil {
		return RoleState{Role: "equal"}, true
	}
	return RoleState{Role: "slave"}, true
}

// roleState is the switch's role for Switches and the API.
func (sw *Switch) roleState() RoleState {
	if sw.c.cfg.Mastership == nil {
		return RoleState{Role: "equal"}
	}
	st := RoleState{Role: "slave", Generation: sw.gen}
	if sw.master {
		st.Role = "master"
	}
	if w, ok := sw.c.wantedRole(sw.dpid); ok {
		st.Master = w.MasterID
		if w.Master != sw.master {
			st.Wanted = map[bool]string{true: "master", false: "slave"}[w.Master]
		}
	}
	return st
}

// isSlaveError tells the switch's answer to a write from a controller it
// holds as a slave: not a refusal of what was sent.
func isSlaveError(e *wire.Error) bool {
	return e.Type == wire.ErrBadRequest && e.Code == wire.BadRequestIsSlave
}
