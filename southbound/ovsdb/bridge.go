package ovsdb

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
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
	for _, target := range cfg.Targets() {
		ctls = append(ctls, newController(t, target))
	}
	br := &vswitchd.Bridge{
		UUID:         t.newName("bridge"),
		Name:         cfg.Bridge,
		DatapathType: cfg.DatapathType,
		FailMode:     ptr(vswitchd.BridgeFailModeSecure),
		Protocols:    bridgeProtocols,
		OtherConfig:  bridgeOtherConfig(cfg),
		ExternalIDs:  bridgeExternalIDs(cfg),
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

// ZoneKeyPrefix starts the bridge's external_ids keys that hold conntrack
// zones: ZoneKeyPrefix+USER=N.
const ZoneKeyPrefix = "loom-ct-zone-"

// bridgeExternalIDs are the external_ids of a bridge Loom creates.
func bridgeExternalIDs(cfg HostConfig) map[string]string {
	ids := ownerIDs()
	if cfg.ManageZones {
		maps.Copy(ids, zoneIDs(cfg.Zones))
	}
	return ids
}

// zoneIDs are the external_ids that hold zones.
func zoneIDs(zones map[string]uint16) map[string]string {
	ids := make(map[string]string, len(zones))
	for u, z := range zones {
		ids[ZoneKeyPrefix+u] = strconv.Itoa(int(z))
	}
	return ids
}

// bridgeZones reads the zones a bridge's external_ids hold (keys whose
// value is not a zone, 1-65535, are left out).
func bridgeZones(br *vswitchd.Bridge) map[string]uint16 {
	zones := map[string]uint16{}
	if br == nil {
		return zones
	}
	for k, v := range br.ExternalIDs {
		if u, ok := strings.CutPrefix(k, ZoneKeyPrefix); ok && u != "" {
			if z, err := strconv.ParseUint(v, 10, 16); err == nil && z > 0 {
				zones[u] = uint16(z)
			}
		}
	}
	return zones
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
	if !cfg.ManageZones {
		return
	}
	// Zones: the keys that differ set, the zone keys of users gone
	// deleted; Loom's other external_ids and everyone else's stay.
	want := zoneIDs(cfg.Zones)
	var stale []string
	for k := range have.ExternalIDs {
		if _, ok := want[k]; !ok && strings.HasPrefix(k, ZoneKeyPrefix) {
			stale = append(stale, k)
		}
	}
	keys := differentKeys(have.ExternalIDs, want)
	if len(keys) == 0 && len(stale) == 0 {
		return
	}
	slices.Sort(stale)
	var muts []model.Mutation
	if len(stale) > 0 {
		muts = append(muts, model.Mutation{Field: &b.ExternalIDs, Mutator: ovsdb.MutateOperationDelete, Value: stale})
	}
	if len(keys) > 0 {
		muts = append(muts, setKeys(&b.ExternalIDs, keys)...)
	}
	ops, err := t.c.Where(b).Mutate(b, muts...)
	t.add(fmt.Sprintf("set bridge %s zones %v, remove %v", cfg.Bridge, keys, stale), ops, err)
}
