package model_test

import (
	"errors"
	"testing"

	"github.com/loom-sdn/loom/model"
)

// TestMirrorsAndFlowExports: references by name become ids and hold
// (a source port cannot be deleted), bad fields are named, and a host
// exports a protocol for one flow export at most.
func TestMirrorsAndFlowExports(t *testing.T) {
	_, svc := open(t, t.TempDir())
	world(t, svc)
	mustCreate(t, svc, &model.Host{Meta: named("hv2"), OVSDB: "unix:/b", VTEPIP: "192.0.2.2"})
	mustCreate(t, svc, &model.Port{Meta: named("mon"), Network: "blue", IPs: []string{"10.1.0.99"}})
	m := mustCreate(t, svc, &model.Mirror{Meta: named("span"), Sources: []string{"vm1"}, OutputPort: "mon"}).(*model.Mirror)
	vm1, _ := svc.Snapshot().Ports.ByName("vm1")
	if m.Sources[0] != vm1.ID || m.Direction != "both" || m.OutputPort == "mon" {
		t.Errorf("mirror stored as %+v", m)
	}
	if _, err := svc.Delete(ctx, model.KindPort, "vm1", 0); !isCode(err, model.Conflict) {
		t.Errorf("deleting a mirror's source: %v, want a conflict", err)
	}
	mustCreate(t, svc, &model.Mirror{Meta: named("remote"), Sources: []string{"vm1"}, Direction: "to-port", RemoteIP: "198.51.100.7", GREKey: 7})
	for _, c := range []struct {
		m     *model.Mirror
		field string
	}{
		{&model.Mirror{Meta: named("x")}, "sources"},
		{&model.Mirror{Meta: named("x"), Sources: []string{"vm1"}}, "output_port"},
		{&model.Mirror{Meta: named("x"), Sources: []string{"vm1"}, OutputPort: "mon", RemoteIP: "198.51.100.7"}, "remote_ip"},
		{&model.Mirror{Meta: named("x"), Sources: []string{"vm1"}, OutputPort: "vm1"}, "output_port"},
		{&model.Mirror{Meta: named("x"), Sources: []string{"vm1", "vm1"}, OutputPort: "mon"}, "sources[1]"},
		{&model.Mirror{Meta: named("x"), Sources: []string{"nope"}, OutputPort: "mon"}, "sources[0]"},
		{&model.Mirror{Meta: named("x"), Sources: []string{"vm1"}, RemoteIP: "2001:db8::1"}, "remote_ip"},
		{&model.Mirror{Meta: named("x"), Sources: []string{"vm1"}, RemoteIP: "198.51.100.7", GREKey: 1 << 32}, "gre_key"},
		{&model.Mirror{Meta: named("x"), Sources: []string{"vm1"}, Direction: "sideways", OutputPort: "mon"}, "direction"},
		{&model.Mirror{Meta: named("x"), Sources: []string{"vm1"}, OutputPort: "mon"}, "output_port"}, // span's already
	} {
		if _, err := svc.Create(ctx, c.m); fieldOf(err) != c.field {
			t.Errorf("%+v: %v, want an error on %s", c.m, err, c.field)
		}
	}

	sf := mustCreate(t, svc, &model.FlowExport{Meta: named("sf"), Protocol: "sflow", Targets: []string{"192.0.2.50:6343"}, Sampling: 100}).(*model.FlowExport)
	if len(sf.Hosts) != 0 {
		t.Errorf("sflow export %+v", sf)
	}
	mustCreate(t, svc, &model.FlowExport{Meta: named("ipfix1"), Protocol: "ipfix", Targets: []string{"192.0.2.50:4739"}, Hosts: []string{"hv1"}})
	mustCreate(t, svc, &model.FlowExport{Meta: named("ipfix2"), Protocol: "ipfix", Targets: []string{"192.0.2.51:4739"}, Hosts: []string{"hv2"}})
	for _, c := range []struct {
		f     *model.FlowExport
		field string
	}{
		{&model.FlowExport{Meta: named("y"), Protocol: "sflow", Targets: []string{"192.0.2.9:6343"}, Hosts: []string{"hv2"}}, "hosts"}, // sf covers every host
		{&model.FlowExport{Meta: named("y"), Protocol: "ipfix", Targets: []string{"192.0.2.9:4739"}}, "hosts"},
		{&model.FlowExport{Meta: named("y"), Protocol: "pcap", Targets: []string{"192.0.2.9:1"}}, "protocol"},
		{&model.FlowExport{Meta: named("y"), Protocol: "netflow"}, "targets"},
		{&model.FlowExport{Meta: named("y"), Protocol: "netflow", Targets: []string{"192.0.2.9"}}, "targets[0]"},
		{&model.FlowExport{Meta: named("y"), Protocol: "netflow", Targets: []string{"192.0.2.9:2055"}, Sampling: 10}, "sampling"},
		{&model.FlowExport{Meta: named("y"), Protocol: "sflow", Targets: []string{"192.0.2.9:6343"}, HeaderBytes: 9000}, "header_bytes"},
		{&model.FlowExport{Meta: named("y"), Protocol: "netflow", Targets: []string{"192.0.2.9:2055"}, Hosts: []string{"hv9"}}, "hosts[0]"},
	} {
		if _, err := svc.Create(ctx, c.f); fieldOf(err) != c.field {
			t.Errorf("%+v: %v, want an error on %s", c.f, err, c.field)
		}
	}
	mustCreate(t, svc, &model.FlowExport{Meta: named("nf"), Protocol: "netflow", Targets: []string{"192.0.2.9:2055"}, ActiveTimeoutSeconds: 5, EngineID: 3})
}

func fieldOf(err error) string {
	var me *model.Error
	if errors.As(err, &me) {
		return me.Field
	}
	return ""
}

func isCode(err error, c model.Code) bool {
	var me *model.Error
	return errors.As(err, &me) && me.Code == c
}
