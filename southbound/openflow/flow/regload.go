package flow

import (
	"encoding/binary"
	"strconv"
)

// Nicira NXAST_REG_LOAD (ovs-ofctl "load:V->FIELD[]").
const (
	nxastRegLoad = 7
	regLoadLen   = 24
)

// nxmInPort is NXM_OF_IN_PORT, the 16-bit in_port OVS lets actions write
// (OpenFlow 1.3's set_field on OXM in_port is refused).
var nxmInPort = nxm("NXM_OF_IN_PORT", 0, 0, 2)

// ClearInPort sets in_port to 0 (ovs-ofctl "load:0->NXM_OF_IN_PORT[]"),
// so that a packet may be output to the port it came in from by a plain
// output action, through the tables that would send it anywhere else (as
// OVN does for hairpin traffic). OVS keeps it as a NXAST_REG_LOAD and
// reports it back byte for byte.
func ClearInPort() Action {
	b := make([]byte, regLoadLen)
	binary.BigEndian.PutUint16(b[0:], 0xffff)
	binary.BigEndian.PutUint16(b[2:], regLoadLen)
	binary.BigEndian.PutUint32(b[4:], nxVendor)
	binary.BigEndian.PutUint16(b[8:], nxastRegLoad)
	binary.BigEndian.PutUint16(b[10:], 15) // ofs 0, 16 bits (n_bits-1)
	binary.BigEndian.PutUint32(b[12:], nxmInPort.header)
	// value (b[16:24]) 0
	return Action{Kind: ActRaw, Raw: string(b)}
}

// regLoadString renders a raw NXAST_REG_LOAD into NXM_OF_IN_PORT the way
// ovs-ofctl does, or returns "" for any other raw action.
func regLoadString(raw string) string {
	b := []byte(raw)
	if len(b) != regLoadLen || binary.BigEndian.Uint16(b) != 0xffff || binary.BigEndian.Uint32(b[4:]) != nxVendor ||
		binary.BigEndian.Uint16(b[8:]) != nxastRegLoad || binary.BigEndian.Uint32(b[12:]) != nxmInPort.header ||
		binary.BigEndian.Uint16(b[10:]) != 15 {
		return ""
	}
	return "load:" + strconv.FormatUint(binary.BigEndian.Uint64(b[16:]), 10) + "->NXM_OF_IN_PORT[]"
}
