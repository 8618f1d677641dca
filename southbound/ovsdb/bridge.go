package ovsdb

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/loom-sdn/loom/southbound/ovsdb/vswitchd"
)

// ensureHost adds to t the operations that make the database in s match
// cfg: the whole bridge with its controller and ports when it is missing,
// otherwise whatever of it differs.
func ensureHost(t *txn, s *snapshot, cfg HostConfig) {
	if s.bridge == nil {
		createBridge(t, s, cfg)
		return
	}
	ensureBridge(t, s.bridge, cfg)
	ensureController(t, s, cfg)
	ports := ensurePorts(t, s, cfg)
	ensureMirrors(t, s, cfg, ports)
	ensureExports(t, s, cfg)
}

// bridgeOtherConfig returns the other_config keys Loom sets on the bridge.
// In-band control is off: the controller is reached through the host's own
// network stack, never through the bridge it controls.
func bridgeOtherConfig(cfg HostConfig) map[string]string {
	oc := map[string]string{"disable-in-band": "true"}
	if cfg.DatapathID != 0 {
		oc["datapath-id"] = fmt.Sprintf("%016x", cfg.DatapathID)
	}
	return oc
}

var bridgeProtocols = []vswitchd.BridgeProtocols{vswitchd.BridgeProtocolsOpenflow13}

// createBridge creates the bridge, its local port, its controller and its
// ports, all owned by Loom, and adds it to the root row. The controller is
// there from the start: adding the first controller later would flush the
// bridge's flows.
func createBridge(t *txn, s *snapshot, cfg HostConfig) {
	ports := []string{newPort(t, portSpec{name: cfg.Bridge, iface: vswitchd.Interface{Type: "internal"}})}
	for _, spec := range portSpecs(cfg, nil) {
		ports = append(ports, newPort(t, spec))
	}
	var ctls []string
	if cfg.Controller != "" {
		ctls = append(ctls, newController(t, cfg))
	}
	br := &vswitchd.Bridge{
		UUID:         t.newName("bridge"),
		Name:         cfg.Bridge,
		DatapathType: cfg.DatapathType,
		FailMode:     ptr(vswitchd.BridgeFailModeSecure),
		Protocols:    bridgeProtocols,
		OtherConfig:  bridgeOtherConfig(cfg),
		ExternalIDs:  ownerIDs(),
		Controller:   ctls,
		Ports:        ports,
	}
	ops, err := t.c.Create(br)
	t.add("create bridge "+cfg.Bridge, ops, err)
	root := &vswitchd.OpenvSwitch{UUID: s.root.UUID}
	ops, err = t.c.Where(root).Mutate(root, model.Mutation{
		Field: &root.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: []string{br.UUID}})
	t.add("add bridge "+cfg.Bridge+" to Open_vSwitch", ops, err)
}

// ensureBridge fixes the bridge's columns that differ from cfg.
func ensureBridge(t *txn, have *vswitchd.Bridge, cfg HostConfig) {
	b := &vswitchd.Bridge{UUID: have.UUID}
	var fields []any
	var what []string
	// OVS treats an empty datapath_type as "system".
	if dt := have.DatapathType; dt != cfg.DatapathType && (dt != "" || cfg.DatapathType != "system") {
		b.DatapathType = cfg.DatapathType
		fields, what = append(fields, &b.DatapathType), append(what, "datapath_type="+cfg.DatapathType)
	}
	if !slices.Equal(have.Protocols, bridgeProtocols) {
		b.Protocols = bridgeProtocols
		fields, what = append(fields, &b.Protocols), append(what, "protocols=OpenFlow13")
	}
	if have.FailMode == nil || *have.FailMode != vswitchd.BridgeFailModeSecure {
		b.FailMode = ptr(vswitchd.BridgeFailModeSecure)
		fields, what = append(fields, &b.FailMode), append(what, "fail_mode=secure")
	}
	if len(fields) > 0 {
		ops, err := t.c.Where(b).Update(b, fields...)
		t.add("set bridge "+cfg.Bridge+" "+strings.Join(what, " "), ops, err)
	}
	if keys := differentKeys(have.OtherConfig, bridgeOtherConfig(cfg)); len(keys) > 0 {
		ops, err := t.c.Where(b).Mutate(b, setKeys(&b.OtherConfig, keys)...)
		t.add(fmt.Sprintf("set bridge %s other_config %v", cfg.Bridge, keys), ops, err)
	}
}
