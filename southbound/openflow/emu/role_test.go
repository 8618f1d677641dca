package emu

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// ctlEnd is the controller's end of a connection to an emulated switch.
type ctlEnd struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func connect(t *testing.T, dp *Datapath) (*Switch, *ctlEnd) {
	// Loopback TCP, not net.Pipe: a switch writes to one connection
	// while handling another's request (ROLE_STATUS), which an unbuffered
	// pipe would block until the test reads it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sw := Run(a, Options{DatapathID: 1, Datapath: dp})
	t.Cleanup(func() { b.Close(); <-sw.Done() })
	e := &ctlEnd{t, b, bufio.NewReader(b)}
	if h, _ := e.next(); h.Type != wire.TypeHello {
		t.Fatalf("first message %d, want HELLO", h.Type)
	}
	return sw, e
}

func (e *ctlEnd) send(b []byte) {
	e.t.Helper()
	e.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := e.c.Write(b); err != nil {
		e.t.Fatal(err)
	}
}

func (e *ctlEnd) next() (wire.Header, []byte) {
	e.t.Helper()
	e.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, msg, err := wire.ReadMessage(e.br)
	if err != nil {
		e.t.Fatal(err)
	}
	return h, msg
}

// role sends a role request and returns the reply, or the error's code.
func (e *ctlEnd) role(role uint32, gen uint64) (wire.RoleReply, *wire.Error) {
	e.t.Helper()
	e.send(wire.AppendRoleRequest(nil, 9, role, gen))
	h, msg := e.next()
	switch h.Type {
	case wire.TypeRoleReply:
		r, err := wire.DecodeRoleReply(msg)
		if err != nil {
			e.t.Fatal(err)
		}
		return r, nil
	case wire.TypeError:
		er, err := wire.DecodeError(msg)
		if err != nil {
			e.t.Fatal(err)
		}
		return wire.RoleReply{}, er
	}
	e.t.Fatalf("answer of type %d to a role request", h.Type)
	return wire.RoleReply{}, nil
}

// TestRoles: two connections to one datapath behave as two controllers
// of one Open vSwitch bridge: generation ids fence a stale master, a new
// master demotes the old one with a ROLE_STATUS, and a slave's flow-mods
// are refused while the master's change the shared table.
func TestRoles(t *testing.T) {
	dp := NewDatapath(nil, nil, nil)
	s1, c1 := connect(t, dp)
	s2, c2 := connect(t, dp)
	if s1.Role() != wire.RoleEqual || s2.Role() != wire.RoleEqual {
		t.Fatal("connections start EQUAL")
	}
	if r, err := c1.role(wire.RoleMaster, 5); err != nil || r.Role != wire.RoleMaster || r.GenerationID != 5 {
		t.Fatalf("c1 master at 5: %+v %v", r, err)
	}
	if r, err := c2.role(wire.RoleSlave, 5); err != nil || r.Role != wire.RoleSlave {
		t.Fatalf("c2 slave at 5: %+v %v", r, err)
	}
	// c2 takes over at 6: c1 is told it is a slave now.
	if r, err := c2.role(wire.RoleMaster, 6); err != nil || r.Role != wire.RoleMaster || r.GenerationID != 6 {
		t.Fatalf("c2 master at 6: %+v %v", r, err)
	}
	h, msg := c1.next()
	st, ok, err := wire.DecodeRoleStatus(msg)
	if h.Type != wire.TypeExperimenter || !ok || err != nil || st.Role != wire.RoleSlave || st.GenerationID != 6 {
		t.Fatalf("c1 got %d %+v %v %v, want ROLE_STATUS slave at 6", h.Type, st, ok, err)
	}
	// The deposed master, still at 5, is stale.
	if _, err := c1.role(wire.RoleMaster, 5); err == nil || err.Type != wire.ErrRoleRequestFailed || err.Code != wire.RoleRequestFailedStale {
		t.Fatalf("c1 master at 5 after 6: %v, want ROLE_REQUEST_FAILED/STALE", err)
	}
	if n := dp.StaleRoleRequests.Load(); n != 1 {
		t.Errorf("%d stale requests counted, want 1", n)
	}
	// A slave's flow-mod is refused; the master's lands in the shared table.
	f := flow.New(0, 10, flow.Match{}.InPort(1)).Act(flow.Output(2))
	fm, _ := f.AppendFlowMod(nil, flow.CmdAdd, 3)
	c1.send(fm)
	h, msg = c1.next()
	if er, err := wire.DecodeError(msg); h.Type != wire.TypeError || err != nil || er.Type != wire.ErrBadRequest || er.Code != wire.BadRequestIsSlave {
		t.Fatalf("a slave's flow-mod: %d %v %v, want BAD_REQUEST/IS_SLAVE", h.Type, er, err)
	}
	c2.send(fm)
	c2.send(wire.AppendEmpty(nil, wire.TypeBarrierRequest, 4))
	if h, _ := c2.next(); h.Type != wire.TypeBarrierReply {
		t.Fatalf("master's barrier: %d", h.Type)
	}
	if _, ok := s1.Lookup(f); !ok || dp.NumFlows() != 1 {
		t.Error("the master's flow is not in the table both connections share")
	}
	// A generation far ahead (wrapped) still counts as newer: the
	// comparison is a signed difference, as in Open vSwitch.
	if _, err := c1.role(wire.RoleMaster, 6+1<<63-1); err != nil {
		t.Errorf("c1 master at 6+2^63-1: %v", err)
	}
	if _, msg := c2.next(); !isRoleStatus(msg, wire.RoleSlave) {
		t.Error("c2 not told it is a slave")
	}
	if _, err := c2.role(wire.RoleMaster, 6); err == nil {
		t.Error("c2 at 6 after 6+2^63-1: accepted, want stale")
	}
}

func isRoleStatus(msg []byte, role uint32) bool {
	st, ok, err := wire.DecodeRoleStatus(msg)
	return ok && err == nil && st.Role == role
}
