package wire

import "fmt"

// Error types (OpenFlow 1.3, A.4.4).
const (
	ErrHelloFailed        uint16 = 0
	ErrBadRequest         uint16 = 1
	ErrBadAction          uint16 = 2
	ErrBadInstruction     uint16 = 3
	ErrBadMatch           uint16 = 4
	ErrFlowModFailed      uint16 = 5
	ErrGroupModFailed     uint16 = 6
	ErrPortModFailed      uint16 = 7
	ErrTableModFailed     uint16 = 8
	ErrQueueOpFailed      uint16 = 9
	ErrSwitchConfigFailed uint16 = 10
	ErrRoleRequestFailed  uint16 = 11
	ErrMeterModFailed     uint16 = 12
	ErrTableFeatFailed    uint16 = 13
)

// Codes used by the controller itself.
const (
	HelloFailedIncompatible uint16 = 0
	BadRequestBadType       uint16 = 1
	GroupModUnknownGroup    uint16 = 8
	MeterModUnknownMeter    uint16 = 7
	FlowModTableFull        uint16 = 1
	// BadRequestIsSlave: a slave sent a state change (flow, group or
	// meter mod, packet-out, bundle).
	BadRequestIsSlave uint16 = 10
	// RoleRequestFailedStale: a role request's generation id is older
	// than the switch's.
	RoleRequestFailedStale uint16 = 0
)

var errorTypeNames = [...]string{
	"HELLO_FAILED", "BAD_REQUEST", "BAD_ACTION", "BAD_INSTRUCTION", "BAD_MATCH",
	"FLOW_MOD_FAILED", "GROUP_MOD_FAILED", "PORT_MOD_FAILED", "TABLE_MOD_FAILED",
	"QUEUE_OP_FAILED", "SWITCH_CONFIG_FAILED", "ROLE_REQUEST_FAILED", "METER_MOD_FAILED",
	"TABLE_FEATURES_FAILED",
}

var errorCodeNames = map[uint16][]string{
	ErrHelloFailed: {"INCOMPATIBLE", "EPERM"},
	ErrBadRequest: {"BAD_VERSION", "BAD_TYPE", "BAD_MULTIPART", "BAD_EXPERIMENTER", "BAD_EXP_TYPE",
		"EPERM", "BAD_LEN", "BUFFER_EMPTY", "BUFFER_UNKNOWN", "BAD_TABLE_ID", "IS_SLAVE", "BAD_PORT",
		"BAD_PACKET", "MULTIPART_BUFFER_OVERFLOW"},
	ErrBadAction: {"BAD_TYPE", "BAD_LEN", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_OUT_PORT",
		"BAD_ARGUMENT", "EPERM", "TOO_MANY", "BAD_QUEUE", "BAD_OUT_GROUP", "MATCH_INCONSISTENT",
		"UNSUPPORTED_ORDER", "BAD_TAG", "BAD_SET_TYPE", "BAD_SET_LEN", "BAD_SET_ARGUMENT"},
	ErrBadInstruction: {"UNKNOWN_INST", "UNSUP_INST", "BAD_TABLE_ID", "UNSUP_METADATA",
		"UNSUP_METADATA_MASK", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_LEN", "EPERM"},
	ErrBadMatch: {"BAD_TYPE", "BAD_LEN", "BAD_TAG", "BAD_DL_ADDR_MASK", "BAD_NW_ADDR_MASK",
		"BAD_WILDCARDS", "BAD_FIELD", "BAD_VALUE", "BAD_MASK", "BAD_PREREQ", "DUP_FIELD", "EPERM"},
	ErrFlowModFailed: {"UNKNOWN", "TABLE_FULL", "BAD_TABLE_ID", "OVERLAP", "EPERM",
		"BAD_TIMEOUT", "BAD_COMMAND", "BAD_FLAGS"},
	ErrGroupModFailed: {"GROUP_EXISTS", "INVALID_GROUP", "WEIGHT_UNSUPPORTED", "OUT_OF_GROUPS",
		"OUT_OF_BUCKETS", "CHAINING_UNSUPPORTED", "WATCH_UNSUPPORTED", "LOOP", "UNKNOWN_GROUP",
		"CHAINED_GROUP", "BAD_TYPE", "BAD_COMMAND", "BAD_BUCKET", "BAD_WATCH", "EPERM"},
	ErrRoleRequestFailed: {"STALE", "UNSUP", "BAD_ROLE"},
	ErrMeterModFailed: {"UNKNOWN", "METER_EXISTS", "INVALID_METER", "UNKNOWN_METER",
		"BAD_COMMAND", "BAD_FLAGS", "BAD_RATE", "BAD_BURST", "BAD_BAND", "BAD_BAND_VALUE",
		"OUT_OF_METERS", "OUT_OF_BANDS"},
}

// ErrorName renders an error type and code as "TYPE/CODE".
func ErrorName(typ, code uint16) string {
	t := fmt.Sprintf("TYPE_%d", typ)
	if int(typ) < len(errorTypeNames) {
		t = errorTypeNames[typ]
	}
	if names := errorCodeNames[typ]; int(code) < len(names) {
		return t + "/" + names[code]
	}
	return fmt.Sprintf("%s/%d", t, code)
}
