package wire

// Encoders for the messages libOpenflow lacks or gets wrong. Each appends
// one complete message to dst and returns the extended slice, so a session
// can batch many messages into one buffer and one write.

func appendHeader(dst []byte, typ uint8, length int, xid uint32) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, HeaderLen)...)
	PutHeader(dst[n:], typ, uint16(length), xid)
	return dst
}

func appendU16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }
func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
func appendU64(b []byte, v uint64) []byte { return appendU32(appendU32(b, uint32(v>>32)), uint32(v)) }

// AppendHello appends a HELLO that offers OpenFlow 1.3 only (version bitmap
// element with bit 4 set). libOpenflow's also offers 1.0.
func AppendHello(dst []byte, xid uint32) []byte {
	dst = appendHeader(dst, TypeHello, 16, xid)
	dst = appendU16(dst, helloElemVersionBitmap)
	dst = appendU16(dst, 8)
	return appendU32(dst, 1<<Version)
}

// AppendEmpty appends a header-only message (FEATURES_REQUEST, BARRIER_REQUEST,
// GET_CONFIG_REQUEST, ...).
func AppendEmpty(dst []byte, typ uint8, xid uint32) []byte {
	return appendHeader(dst, typ, HeaderLen, xid)
}

// AppendEcho appends an ECHO_REQUEST or ECHO_REPLY carrying data.
func AppendEcho(dst []byte, typ uint8, xid uint32, data []byte) []byte {
	dst = appendHeader(dst, typ, HeaderLen+len(data), xid)
	return append(dst, data...)
}

// AppendError appends an OFPT_ERROR carrying (up to 64 bytes of) the
// offending message.
func AppendError(dst []byte, xid uint32, typ, code uint16, offending []byte) []byte {
	if len(offending) > 64 {
		offending = offending[:64]
	}
	dst = appendHeader(dst, TypeError, HeaderLen+4+len(offending), xid)
	dst = appendU16(dst, typ)
	dst = appendU16(dst, code)
	return append(dst, offending...)
}

// NoBuffer is OFPCML_NO_BUFFER: send whole packets to the controller.
const NoBuffer = 0xffff

// AppendSetConfig appends a SET_CONFIG with normal fragment handling.
func AppendSetConfig(dst []byte, xid uint32, missSendLen uint16) []byte {
	dst = appendHeader(dst, TypeSetConfig, 12, xid)
	dst = appendU16(dst, 0)
	return appendU16(dst, missSendLen)
}

// AppendRoleRequest appends a ROLE_REQUEST.
func AppendRoleRequest(dst []byte, xid uint32, role uint32, generation uint64) []byte {
	dst = appendHeader(dst, TypeRoleRequest, 24, xid)
	dst = appendU32(dst, role)
	dst = appendU32(dst, 0)
	return appendU64(dst, generation)
}

// NXTCTFlushZone is the Nicira message subtype NXT_CT_FLUSH_ZONE.
const NXTCTFlushZone = 29

// AppendCTFlushZone appends NXT_CT_FLUSH_ZONE, which makes Open vSwitch
// delete every conntrack entry of zone (ovs-ofctl ct-flush-zone; these
// are the bytes it sends): the experimenter header, six zero bytes, the
// zone.
func AppendCTFlushZone(dst []byte, xid uint32, zone uint16) []byte {
	dst = appendHeader(dst, TypeExperimenter, 24, xid)
	dst = appendU32(dst, ExperimenterNicira)
	dst = appendU32(dst, NXTCTFlushZone)
	dst = append(dst, 0, 0, 0, 0, 0, 0)
	return appendU16(dst, zone)
}

// ONFTRoleStatus is the ONF experimenter type of ROLE_STATUS, the
// OpenFlow 1.4 message Open vSwitch sends OpenFlow 1.3 controllers as an
// extension when another controller takes the master role.
const ONFTRoleStatus = 1911

// Reasons of a ROLE_STATUS.
const (
	RoleStatusMasterRequest = 0 // another controller asked to be master
	RoleStatusConfig        = 1
)

// AppendRoleStatus appends a ROLE_STATUS (ONF extension): the
// controller's new role, why, and the switch's generation id.
func AppendRoleStatus(dst []byte, xid uint32, role uint32, reason uint8, generation uint64) []byte {
	dst = appendHeader(dst, TypeExperimenter, 32, xid)
	dst = appendU32(dst, ExperimenterONF)
	dst = appendU32(dst, ONFTRoleStatus)
	dst = appendU32(dst, role)
	dst = append(dst, reason, 0, 0, 0)
	return appendU64(dst, generation)
}

// AsyncConfig is the body of SET_ASYNC: bit masks of the packet-in,
// port-status and flow-removed reasons a controller receives, for the
// master/equal role ([0]) and the slave role ([1]).
type AsyncConfig struct {
	PacketIn    [2]uint32
	PortStatus  [2]uint32
	FlowRemoved [2]uint32
}

// AppendSetAsync appends a SET_ASYNC.
func AppendSetAsync(dst []byte, xid uint32, c AsyncConfig) []byte {
	dst = appendHeader(dst, TypeSetAsync, 32, xid)
	for _, m := range [...][2]uint32{c.PacketIn, c.PortStatus, c.FlowRemoved} {
		dst = appendU32(dst, m[0])
		dst = appendU32(dst, m[1])
	}
	return dst
}

// AppendMultipartRequest appends a multipart request with the given body.
func AppendMultipartRequest(dst []byte, xid uint32, typ uint16, body []byte) []byte {
	dst = appendHeader(dst, TypeMultipartRequest, HeaderLen+8+len(body), xid)
	dst = appendU16(dst, typ)
	dst = appendU32(appendU16(dst, 0), 0)
	return append(dst, body...)
}

// Wildcards for flow, group and meter selection.
const (
	TableAll = 0xff
	PortAny  = 0xffffffff
	GroupAny = 0xffffffff
	GroupAll = 0xfffffffc
	MeterAll = 0xffffffff
)

// AppendFlowStatsRequest appends a FLOW multipart request for every flow
// whose cookie matches cookie under mask, in table (TableAll for all).
func AppendFlowStatsRequest(dst []byte, xid uint32, table uint8, cookie, mask uint64) []byte {
	body := make([]byte, 0, 40)
	body = append(body, table, 0, 0, 0)
	body = appendU32(body, PortAny)
	body = appendU32(body, GroupAny)
	body = appendU32(body, 0)
	body = appendU64(body, cookie)
	body = appendU64(body, mask)
	body = append(body, 0, 1, 0, 4, 0, 0, 0, 0) // empty OXM match, padded
	return AppendMultipartRequest(dst, xid, MultipartFlow, body)
}

// AppendMeterConfigRequest appends a METER_CONFIG request for all meters.
func AppendMeterConfigRequest(dst []byte, xid uint32) []byte {
	return AppendMultipartRequest(dst, xid, MultipartMeterConf, appendU32(appendU32(nil, MeterAll), 0))
}

// AppendBundleControl appends an ONF ext-230 bundle control request.
func AppendBundleControl(dst []byte, xid, bundleID uint32, typ, flags uint16) []byte {
	dst = appendHeader(dst, TypeExperimenter, HeaderLen+16, xid)
	dst = appendU32(dst, ExperimenterONF)
	dst = appendU32(dst, BundleControlType)
	dst = appendU32(dst, bundleID)
	dst = appendU16(dst, typ)
	return appendU16(dst, flags)
}

// AppendBundleAdd appends an ONF ext-230 bundle add message wrapping inner.
// The inner message's xid is set to the outer xid, as Open vSwitch requires.
func AppendBundleAdd(dst []byte, xid, bundleID uint32, flags uint16, inner []byte) []byte {
	dst = appendHeader(dst, TypeExperimenter, HeaderLen+16+len(inner), xid)
	dst = appendU32(dst, ExperimenterONF)
	dst = appendU32(dst, BundleAddType)
	dst = appendU32(dst, bundleID)
	dst = appendU16(dst, 0)
	dst = appendU16(dst, flags)
	n := len(dst)
	dst = append(dst, inner...)
	SetXid(dst[n:], xid)
	return dst
}
