package flow

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	of "github.com/contiv/libOpenflow/openflow13"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// Group types.
const (
	GroupAll      uint8 = 0
	GroupSelect   uint8 = 1
	GroupIndirect uint8 = 2
	GroupFF       uint8 = 3
)

// Group and meter mod commands.
const (
	ModAdd    uint16 = 0
	ModModify uint16 = 1
	ModDelete uint16 = 2
)

// Bucket is one bucket of a group.
type Bucket struct {
	Weight     uint16
	WatchPort  uint32
	WatchGroup uint32
	Actions    []Action
}

// Group is a group table entry.
type Group struct {
	ID      uint32
	Type    uint8
	Buckets []Bucket
}

// Equal compares two groups.
func (g *Group) Equal(o *Group) bool {
	return g.ID == o.ID && g.Type == o.Type && slices.EqualFunc(g.Buckets, o.Buckets, func(a, b Bucket) bool {
		return a.Weight == b.Weight && a.WatchPort == b.WatchPort && a.WatchGroup == b.WatchGroup && slices.Equal(a.Actions, b.Actions)
	})
}

// NewBucket returns a bucket with no watch port or group.
func NewBucket(acts ...Action) Bucket {
	return Bucket{WatchPort: PortAny, WatchGroup: wire.GroupAny, Actions: acts}
}

var groupTypeNames = [...]string{"all", "select", "indirect", "ff"}

// String renders the group in ovs-ofctl add-group syntax, as ovs-ofctl
// -O OpenFlow13 dump-groups prints it (TestGroupStringIsOfctlText).
func (g *Group) String() string {
	var sb strings.Builder
	sb.WriteString("group_id=" + strconv.FormatUint(uint64(g.ID), 10) + ",type=")
	if int(g.Type) < len(groupTypeNames) {
		sb.WriteString(groupTypeNames[g.Type])
	} else {
		sb.WriteString(strconv.Itoa(int(g.Type)))
	}
	for _, b := range g.Buckets {
		sb.WriteString(",bucket=")
		if g.Type == GroupSelect && b.Weight != 1 { // ovs-ofctl leaves out weight 1
			sb.WriteString("weight:" + strconv.Itoa(int(b.Weight)) + ",")
		}
		if b.WatchPort != PortAny {
			sb.WriteString("watch_port:" + PortName(b.WatchPort) + ",")
		}
		sb.WriteString("actions=" + actionsString(b.Actions))
	}
	return sb.String()
}

// AppendMod appends g encoded as a GROUP_MOD.
func (g *Group) AppendMod(dst []byte, cmd uint16, xid uint32) ([]byte, error) {
	gm := of.NewGroupMod()
	gm.Xid = xid
	gm.Command = cmd
	gm.Type = g.Type
	gm.GroupId = g.ID
	if cmd != ModDelete {
		for _, b := range g.Buckets {
			bk := of.NewBucket()
			bk.Weight, bk.WatchPort, bk.WatchGroup = b.Weight, b.WatchPort, b.WatchGroup
			for _, a := range b.Actions {
				bk.AddAction(ofAction(a))
			}
			gm.AddBucket(*bk)
		}
	}
	b, err := gm.MarshalBinary()
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// GroupFromDesc converts a group reported in a GROUP_DESC reply.
func GroupFromDesc(d *wire.GroupDesc) (*Group, error) {
	g := &Group{ID: d.GroupID, Type: d.Type}
	b := d.Buckets
	for len(b) > 0 {
		if len(b) < 16 {
			return nil, fmt.Errorf("flow: bucket truncated (%d bytes)", len(b))
		}
		l := int(binary.BigEndian.Uint16(b))
		if l < 16 || l > len(b) {
			return nil, fmt.Errorf("flow: bucket length %d (have %d)", l, len(b))
		}
		acts, err := DecodeActions(b[16:l])
		if err != nil {
			return nil, err
		}
		g.Buckets = append(g.Buckets, Bucket{
			Weight: binary.BigEndian.Uint16(b[2:]), WatchPort: binary.BigEndian.Uint32(b[4:]),
			WatchGroup: binary.BigEndian.Uint32(b[8:]), Actions: acts,
		})
		b = b[l:]
	}
	return g, nil
}

// Meter flags.
const (
	MeterKbps  uint16 = 1
	MeterPktps uint16 = 2
	MeterBurst uint16 = 4
	MeterStats uint16 = 8
)

// Band is a drop band (the only kind OVS implements).
type Band struct {
	Rate  uint32
	Burst uint32
}

// Meter is a meter table entry with drop bands.
type Meter struct {
	ID    uint32
	Flags uint16
	Bands []Band
}

// Equal compares two meters.
func (m *Meter) Equal(o *Meter) bool {
	return m.ID == o.ID && m.Flags == o.Flags && slices.Equal(m.Bands, o.Bands)
}

// String renders the meter in ovs-ofctl add-meter syntax.
func (m *Meter) String() string {
	var sb strings.Builder
	sb.WriteString("meter=" + strconv.FormatUint(uint64(m.ID), 10))
	for _, f := range []struct {
		bit  uint16
		name string
	}{{MeterKbps, "kbps"}, {MeterPktps, "pktps"}, {MeterBurst, "burst"}, {MeterStats, "stats"}} {
		if m.Flags&f.bit != 0 {
			sb.WriteString("," + f.name)
		}
	}
	for _, b := range m.Bands {
		sb.WriteString(",band=type=drop,rate=" + strconv.FormatUint(uint64(b.Rate), 10))
		if m.Flags&MeterBurst != 0 {
			sb.WriteString(",burst_size=" + strconv.FormatUint(uint64(b.Burst), 10))
		}
	}
	return sb.String()
}

// AppendMod appends m encoded as a METER_MOD.
func (m *Meter) AppendMod(dst []byte, cmd uint16, xid uint32) ([]byte, error) {
	mm := of.NewMeterMod()
	mm.Xid = xid
	mm.Command = cmd
	mm.Flags = m.Flags
	mm.MeterId = m.ID
	if cmd != ModDelete {
		for _, b := range m.Bands {
			band := &of.MeterBandDrop{MeterBandHeader: *of.NewMeterBandHeader()}
			band.Type, band.Rate, band.BurstSize = of.OFPMBT13_DROP, b.Rate, b.Burst
			mm.AddMeterBand(band)
		}
	}
	b, err := mm.MarshalBinary()
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// MeterFromConfig converts a meter reported in a METER_CONFIG reply.
func MeterFromConfig(c *wire.MeterConfig) (*Meter, error) {
	m := &Meter{ID: c.MeterID, Flags: c.Flags}
	b := c.Bands
	for len(b) > 0 {
		if len(b) < 16 {
			return nil, fmt.Errorf("flow: meter band truncated (%d bytes)", len(b))
		}
		l := int(binary.BigEndian.Uint16(b[2:]))
		if l < 16 || l > len(b) {
			return nil, fmt.Errorf("flow: meter band length %d (have %d)", l, len(b))
		}
		if binary.BigEndian.Uint16(b) != of.OFPMBT13_DROP {
			return nil, fmt.Errorf("flow: unsupported meter band type %d", binary.BigEndian.Uint16(b))
		}
		m.Bands = append(m.Bands, Band{Rate: binary.BigEndian.Uint32(b[4:]), Burst: binary.BigEndian.Uint32(b[8:])})
		b = b[l:]
	}
	return m, nil
}
