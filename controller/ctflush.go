package controller

import (
	"context"
	"fmt"

	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// zoneFlush is a sent NXT_CT_FLUSH_ZONE; the switch's error for it, if
// any, lands in err.
type zoneFlush struct {
	zone uint16
	err  error
}

func (z *zoneFlush) String() string { return fmt.Sprintf("ct-flush-zone %d", z.zone) }

// FlushConntrackZones deletes every conntrack entry of each of zones on
// switch dpid (NXT_CT_FLUSH_ZONE, as ovs-ofctl ct-flush-zone) and
// returns once the switch has confirmed them with one barrier reply. The
// flushes go in order after what the switch's apps staged before the
// call. Whoever hands a conntrack zone to a new user calls it first, so
// the new user never meets the connections of the zone's last one.
// ErrNoSwitch when dpid is not connected, ErrNotMaster when another
// controller is its master; an error naming the zone when the switch
// refused a flush.
func (c *Controller) FlushConntrackZones(ctx context.Context, dpid uint64, zones ...uint16) error {
	sw, ok := c.Switch(dpid)
	if !ok {
		return ErrNoSwitch
	}
	if len(zones) == 0 {
		return nil
	}
	sent := make([]*zoneFlush, len(zones))
	var err error
	lerr := sw.onLoop(ctx, func() {
		if !sw.mayWrite() {
			err = ErrNotMaster
			return
		}
		for i, z := range zones {
			xid := sw.sess.NextXid()
			sw.out = wire.AppendCTFlushZone(sw.out, xid, z)
			sent[i] = &zoneFlush{zone: z}
			sw.sent = append(sw.sent, sentMod{xid, sent[i]})
		}
		err = sw.flushSync(ctx)
	})
	if lerr != nil {
		return lerr
	}
	if err != nil {
		return err
	}
	for _, z := range sent {
		if z.err != nil {
			return fmt.Errorf("flush conntrack zone %d: %w", z.zone, z.err)
		}
	}
	return nil
}
