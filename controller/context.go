package controller

import (
	"fmt"
	"log/slog"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// CookieShift places the owning app's id in the top 16 bits of a flow's
// cookie; the low 48 bits are the app's own.
const CookieShift = 48

// cookieOwnerRuntime marks flows the runtime itself owns (table misses).
const cookieOwnerRuntime = 0xffff

// CookieLowMask selects the app-chosen part of a cookie.
const CookieLowMask = 1<<CookieShift - 1

// Context is an app's handle on one switch. It is only valid on the
// switch's goroutine, during Start and Handle.
type Context struct {
	sw  *Switch
	app *appSlot
}

// DatapathID of the switch.
func (c *Context) DatapathID() uint64 { return c.sw.dpid }

// Log is a logger tagged with the switch and the app.
func (c *Context) Log() *slog.Logger { return c.app.log }

// Port returns the switch's port by number.
func (c *Context) Port(no uint32) (wire.Port, bool) {
	p, ok := c.sw.ports[no]
	return p, ok
}

// Ports calls fn for every port of the switch.
func (c *Context) Ports(fn func(wire.Port)) {
	for _, p := range c.sw.ports {
		fn(p)
	}
}

// AddFlow makes f part of the switch's desired state, replacing a flow
// with the same table, priority and match. The runtime sets the cookie's
// owner bits; f must be in a table the app owns. f must not be changed
// afterwards. It is a no-op when the switch already has exactly f.
func (c *Context) AddFlow(f *flow.Flow) error {
	if err := c.checkTable(f.Table); err != nil {
		return err
	}
	f.Cookie = c.app.cookie | f.Cookie&CookieLowMask
	c.sw.setFlow(f)
	return nil
}

// ForgetLearned deletes, in one of the app's learned tables, the flows
// the switch learned with exactly this cookie (its owner bits must be the
// app's): learned flows an app no longer wants, which the reconciler
// leaves alone.
func (c *Context) ForgetLearned(table uint8, cookie uint64) error {
	t := c.sw.c.pipe.Table(table)
	if t == nil || !t.Learned || t.Owner != c.app.name || cookie>>CookieShift != c.app.cookie>>CookieShift {
		return fmt.Errorf("app %s may not forget flows with cookie %#x in table %d", c.app.name, cookie, table)
	}
	f := flow.New(table, 0, nil)
	f.Cookie = cookie
	c.sw.emitFlow(f, flow.CmdDelete)
	return nil
}

// DeleteFlow removes the flow with f's table, priority and match from the
// desired state, if the app owns it.
func (c *Context) DeleteFlow(f *flow.Flow) {
	c.sw.deleteFlow(f.Key(), c.app.cookie)
}

// HasFlow reports whether the desired state holds a flow with f's key
// owned by this app.
func (c *Context) HasFlow(f *flow.Flow) bool {
	var buf [128]byte
	cur, ok := c.sw.flows[flow.Key(f.AppendKey(buf[:0]))]
	return ok && cur.Cookie>>CookieShift == c.app.cookie>>CookieShift
}

// SetGroup makes g part of the switch's desired state.
func (c *Context) SetGroup(g *flow.Group) error {
	return c.sw.setGroup(g, c.app.id)
}

// DeleteGroup removes a group the app owns.
func (c *Context) DeleteGroup(id uint32) { c.sw.deleteGroup(id, c.app.id) }

// SetMeter makes m part of the switch's desired state.
func (c *Context) SetMeter(m *flow.Meter) error {
	return c.sw.setMeter(m, c.app.id)
}

// DeleteMeter removes a meter the app owns.
func (c *Context) DeleteMeter(id uint32) { c.sw.deleteMeter(id, c.app.id) }

// PacketOut sends data out of the switch with the given actions, as if it
// had arrived on inPort (flow.PortController when it did not).
func (c *Context) PacketOut(inPort uint32, data []byte, acts ...flow.Action) error {
	return c.sw.packetOut(inPort, data, acts)
}

// Pipeline is the pipeline of the switch's controller: the ids of the
// tables.
func (c *Context) Pipeline() *Pipeline { return c.sw.c.pipe }

// Writes tells whether what the app sends reaches the switch: true
// unless controllers share the switch by OpenFlow roles and this one is
// not its master (then packet-outs and changes are dropped, the desired
// state kept). An app that judges answers to what it sends (health
// probes) checks it: a slave's probes go nowhere.
func (c *Context) Writes() bool { return c.sw.mayWrite() }

func (c *Context) checkTable(id uint8) error {
	t := c.sw.c.tableByID(id)
	if t == nil || t.Owner != c.app.name {
		return fmt.Errorf("app %s may not install flows in table %d (not in the pipeline or owned by another app)", c.app.name, id)
	}
	return nil
}
