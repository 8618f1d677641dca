package model_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/model"
)

func create(o model.Object) model.Op { return model.Op{Op: model.OpCreate, Object: o} }

// tenant is a tenant as a network engineer creates it: a network, a
// subnet, a router, a security group and n ports, each referring to the
// others by name.
func tenant(name string, vni, n int) []model.Op {
	ops := []model.Op{
		create(&model.Network{Meta: named(name), Type: "vxlan", VNI: vni}),
		create(&model.Subnet{Meta: named(name + "-v4"), Network: name, CIDR: "10.1.0.0/24"}),
		create(&model.Router{Meta: named(name + "-r"), Subnets: []string{name + "-v4"}}),
		create(&model.SecurityGroup{Meta: named(name + "-web"), Rules: []model.Rule{{Direction: "ingress", Protocol: "tcp", PortMin: 80}}}),
	}
	for i := range n {
		ops = append(ops, create(&model.Port{Meta: named(fmt.Sprintf("%s-vm%d", name, i)), Network: name,
			IPs: []string{fmt.Sprintf("10.1.0.%d", 10+i)}, SecurityGroups: []string{name + "-web"}}))
	}
	return ops
}

// drain returns the events sub got within a moment.
func drain(sub *events.Subscription) []events.Event {
	var out []events.Event
	for {
		select {
		case e := <-sub.C:
			out = append(out, e)
		case <-time.After(100 * time.Millisecond):
			return out
		}
	}
}

// A tenant in one batch: references by name within the batch, one
// revision, one change per object, one event per op in order, and what
// the store holds after a restart.
func TestApplyTenant(t *testing.T) {
	dir := t.TempDir()
	st, svc := open(t, dir)
	mustCreate(t, svc, &model.PortGroup{Meta: named("gold")})
	before := svc.Snapshot()
	sub := svc.Subscribe(1000)
	ops := tenant("blue", 5001, 50)
	ops = append(ops,
		model.Op{Op: model.OpPatch, Kind: model.KindPort, ID: "blue-vm0", Patch: []byte(`{"port_group":"gold","name":"blue-web0"}`)},
		model.Op{Op: model.OpUpdate, Kind: model.KindPort, ID: "blue-vm1", Object: &model.Port{Meta: named("blue-vm1"), Network: "blue", IPs: []string{"10.1.0.200"}}},
		model.Op{Op: model.OpDelete, Kind: model.KindPort, ID: "blue-vm2"},
		// The patched port by its new name; the freed address again.
		model.Op{Op: model.OpPatch, Kind: model.KindPort, ID: "blue-web0", Patch: []byte(`{"security_groups":null}`)},
		create(&model.Port{Meta: named("blue-vm2b"), Network: "blue", IPs: []string{"10.1.0.12"}}),
		model.Op{Op: model.OpDelete, Kind: model.KindPortGroup, ID: "gold", IfRevision: 0}, // still used by blue-web0: fails
	)
	_, err := svc.Apply(ctx, ops)
	var me *model.Error
	if !errorAs(err, &me) || me.Code != model.Conflict || me.Field != fmt.Sprintf("ops[%d]", len(ops)-1) ||
		!strings.HasPrefix(me.Message, fmt.Sprintf("ops[%d] (delete port_group gold): ", len(ops)-1)) {
		t.Fatalf("deleting a port group a port of the batch uses: %v", err)
	}
	ops = ops[:len(ops)-1]
	objs, err := svc.Apply(ctx, ops)
	if err != nil {
		t.Fatal(err)
	}
	snap := svc.Snapshot()
	if snap.Revision != before.Revision+1 {
		t.Errorf("revision %d after a batch from %d: want one bump", snap.Revision, before.Revision)
	}
	if len(objs) != len(ops) {
		t.Fatalf("%d results for %d ops", len(objs), len(ops))
	}
	blue, _ := snap.Networks.ByName("blue")
	web, _ := snap.SecurityGroups.ByName("blue-web")
	gold, _ := snap.PortGroups.ByName("gold")
	for i, o := range objs {
		if ops[i].Op == model.OpDelete {
			if o != nil {
				t.Errorf("ops[%d] (delete): result %v, want nil", i, o)
			}
			continue
		}
		if o == nil || o.Base().Revision != snap.Revision || o.Base().ID == "" {
			t.Fatalf("ops[%d]: result %+v", i, o)
		}
	}
	if objs[0] != model.Object(blue) || objs[3] != model.Object(web) {
		t.Error("results are not the snapshot's objects")
	}
	p3 := objs[4+3].(*model.Port)
	if p3.Network != blue.ID || p3.SecurityGroups[0] != web.ID || p3.Name != "blue-vm3" || p3.MAC == "" {
		t.Errorf("port by names: %+v", p3)
	}
	r, _ := snap.Routers.ByName("blue-r")
	if s, _ := snap.Subnets.ByName("blue-v4"); r.Subnets[0] != s.ID || s.Network != blue.ID {
		t.Errorf("router %+v subnet %+v", r, s)
	}
	web0, _ := snap.Ports.ByName("blue-web0")
	if _, ok := snap.Ports.ByName("blue-vm0"); ok || web0.PortGroup != gold.ID || len(web0.SecurityGroups) != 0 || web0.ID != objs[4].Base().ID {
		t.Errorf("patched twice, renamed: %+v", web0)
	}
	// The first patch's result is that op's object, not the final one.
	if p := objs[54].(*model.Port); p.Name != "blue-web0" || len(p.SecurityGroups) != 1 {
		t.Errorf("ops[54] result %+v", p)
	}
	if _, ok := snap.Ports.ByName("blue-vm2"); ok {
		t.Error("blue-vm2 not deleted")
	}
	if p, _ := snap.Ports.ByName("blue-vm1"); p.IPs[0] != "10.1.0.200" || len(p.SecurityGroups) != 0 || p.CreatedAt != objs[5].Base().CreatedAt {
		t.Errorf("updated: %+v", p)
	}
	if snap.Ports.Len() != 50 {
		t.Errorf("%d ports, want 50", snap.Ports.Len())
	}

	// One change per object written: 4 + 50 ports + blue-vm2b (blue-vm2,
	// deleted, included: consumers must see it go).
	changes, ok := snap.ChangesSince(before.Revision)
	if !ok || len(changes) != 4+50+1 {
		t.Fatalf("changes since the batch: %d, %v", len(changes), ok)
	}
	seen := map[string]bool{}
	for _, c := range changes {
		if c.Revision != snap.Revision || seen[c.ID] {
			t.Errorf("change %+v", c)
		}
		seen[c.ID] = true
	}
	if changes[0].Kind != model.KindNetwork || changes[0].ID != blue.ID || changes[len(changes)-1].ID != objs[len(objs)-1].Base().ID {
		t.Errorf("changes not in the order of the first writes: %+v ... %+v", changes[0], changes[len(changes)-1])
	}

	// One event per op, in op order, after the snapshot.
	evs := drain(sub)
	if len(evs) != len(ops) {
		t.Fatalf("%d events for %d ops", len(evs), len(ops))
	}
	for i, e := range evs {
		want := map[model.OpType]string{model.OpCreate: model.Created, model.OpUpdate: model.Updated, model.OpPatch: model.Updated, model.OpDelete: model.Deleted}[ops[i].Op]
		if e.Type != want || e.Topic != model.Topic || e.Object == nil || e.ID != e.Object.(model.Object).Base().ID {
			t.Errorf("event %d: %+v, want %s", i, e, want)
		}
		if i < len(objs) && objs[i] != nil && e.Object != objs[i] {
			t.Errorf("event %d carries %v, not the op's result", i, e.Object)
		}
	}
	if evs[56].Kind != "port" || evs[56].Object.(*model.Port).Name != "blue-vm2" {
		t.Errorf("delete event %+v", evs[56])
	}

	// The store holds the batch: same objects and revisions after a restart.
	st.Close()
	st, svc = open(t, dir)
	defer st.Close()
	after := svc.Snapshot()
	if after.Revision != snap.Revision {
		t.Errorf("revision %d after restart, %d before", after.Revision, snap.Revision)
	}
	for _, ki := range model.Kinds() {
		objs, _ := snap.List(ki.Kind, nil)
		if after.Len(ki.Kind) != len(objs) {
			t.Errorf("%s: %d after restart, %d before", ki.Kind, after.Len(ki.Kind), len(objs))
		}
		for _, o := range objs {
			n, _ := after.Get(ki.Kind, o.Base().ID)
			a, _ := json.Marshal(n)
			b, _ := json.Marshal(o)
			if string(a) != string(b) {
				t.Errorf("%s after restart:\n%s\nbefore:\n%s", ki.Kind, a, b)
			}
		}
	}
}

// A failing 5th op leaves nothing of the first four: not in the
// snapshot, not in the store, no event.
func TestApplyAtomic(t *testing.T) {
	dir := t.TempDir()
	st, svc := open(t, dir)
	mustCreate(t, svc, &model.Network{Meta: named("red"), Type: "vxlan", VNI: 7})
	before := svc.Snapshot()
	storeRev, _ := st.Revision(ctx)
	sub := svc.Subscribe(100)
	ops := []model.Op{
		create(&model.Network{Meta: named("blue"), Type: "vxlan", VNI: 5001}),
		create(&model.Subnet{Meta: named("blue-v4"), Network: "blue", CIDR: "10.1.0.0/24"}),
		create(&model.Port{Meta: named("vm1"), Network: "blue", IPs: []string{"10.1.0.11"}}),
		model.Op{Op: model.OpPatch, Kind: model.KindNetwork, ID: "red", Patch: []byte(`{"vni":8}`)},
		create(&model.Port{Meta: named("vm2"), Network: "blue", IPs: []string{"10.1.0.12", "10.9.0.1"}}),
	}
	objs, err := svc.Apply(ctx, ops)
	var me *model.Error
	if !errorAs(err, &me) || me.Code != model.Invalid || me.Field != "ops[4].ips[1]" || objs != nil ||
		!strings.HasPrefix(me.Message, "ops[4] (create port vm2): 10.9.0.1 is not inside") {
		t.Fatalf("Apply: %v, %v", objs, err)
	}
	if svc.Snapshot() != before {
		t.Error("a rejected batch changed the snapshot")
	}
	if rev, _ := st.Revision(ctx); rev != storeRev {
		t.Errorf("store revision %d after a rejected batch, %d before", rev, storeRev)
	}
	if evs := drain(sub); len(evs) != 0 {
		t.Errorf("events of a rejected batch: %+v", evs)
	}
	st.Close()
	st, svc = open(t, dir)
	defer st.Close()
	s := svc.Snapshot()
	if s.Networks.Len() != 1 || s.Subnets.Len() != 0 || s.Ports.Len() != 0 {
		t.Errorf("after reopening: %d networks, %d subnets, %d ports", s.Networks.Len(), s.Subnets.Len(), s.Ports.Len())
	}
	if red, _ := s.Networks.ByName("red"); red.VNI != 7 {
		t.Errorf("red patched by a rejected batch: %+v", red)
	}
	// The same batch, fixed, goes through.
	ops[4].Object.(*model.Port).IPs = []string{"10.1.0.12"}
	if _, err := svc.Apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
}

// Each op is validated against the state the ones before it leave: order
// matters, and errors name the op and its field.
func TestApplyOrderAndErrors(t *testing.T) {
	_, svc := open(t, t.TempDir())
	blue := mustCreate(t, svc, &model.Network{Meta: named("blue"), Type: "vxlan", VNI: 1})
	mustCreate(t, svc, &model.Subnet{Meta: named("blue-v4"), Network: "blue", CIDR: "10.1.0.0/24"})
	vm1 := mustCreate(t, svc, &model.Port{Meta: named("vm1"), Network: "blue", IPs: []string{"10.1.0.11"}})
	del := model.Op{Op: model.OpDelete, Kind: model.KindPort, ID: "vm1"}
	again := create(&model.Port{Meta: named("vm1"), Network: "blue", IPs: []string{"10.1.0.11"}})

	for _, tc := range []struct {
		name  string
		ops   []model.Op
		code  model.Code
		field string
	}{
		{"create before delete", []model.Op{again, del}, model.Conflict, "ops[0].name"},
		{"port before its network", []model.Op{
			create(&model.Port{Meta: named("p"), Network: "green"}),
			create(&model.Network{Meta: named("green"), Type: "flat"}),
		}, model.Invalid, "ops[0].network"},
		{"reference to an object deleted before", []model.Op{
			del, create(&model.FloatingIP{Meta: named("f"), IP: "10.1.0.50", Port: "vm1"}),
		}, model.Invalid, "ops[1].port"},
		{"unknown object", []model.Op{del, del}, model.NotFound, "ops[1].id"},
		{"stale revision", []model.Op{{Op: model.OpPatch, Kind: model.KindPort, ID: "vm1", Patch: []byte(`{}`), IfRevision: vm1.Base().Revision + 100}},
			model.Precondition, "ops[0].if_match"},
		{"revision of an object the batch wrote", []model.Op{
			{Op: model.OpPatch, Kind: model.KindPort, ID: "vm1", Patch: []byte(`{"ips":[]}`), IfRevision: vm1.Base().Revision},
			{Op: model.OpDelete, Kind: model.KindPort, ID: "vm1", IfRevision: vm1.Base().Revision},
		}, model.Precondition, "ops[1].if_match"},
		{"unknown kind", []model.Op{{Op: model.OpDelete, Kind: "widget", ID: "x"}}, model.Invalid, "ops[0].kind"},
		{"unknown op", []model.Op{{Op: "upsert", Kind: model.KindPort, ID: "vm1"}}, model.Invalid, "ops[0].op"},
		{"create without object", []model.Op{{Op: model.OpCreate, Kind: model.KindPort}}, model.Invalid, "ops[0].object"},
		{"create of another kind", []model.Op{{Op: model.OpCreate, Kind: model.KindPort, Object: &model.Network{Meta: named("n"), Type: "flat"}}}, model.Invalid, "ops[0].kind"},
		{"update of another kind", []model.Op{{Op: model.OpUpdate, Kind: model.KindPort, ID: "vm1", Object: &model.Network{Meta: named("n"), Type: "flat"}}}, model.Invalid, "ops[0].kind"},
		{"bad patch", []model.Op{{Op: model.OpPatch, Kind: model.KindNetwork, ID: "blue", Patch: []byte(`[1]`)}}, model.Invalid, "ops[0].patch"},
		{"patched field", []model.Op{{Op: model.OpPatch, Kind: model.KindNetwork, ID: "blue", Patch: []byte(`{"vni":"x"}`)}}, model.Invalid, "ops[0].vni"},
		{"deleting what an earlier op made use it", []model.Op{
			create(&model.Network{Meta: named("green"), Type: "flat"}),
			create(&model.Port{Meta: named("gp"), Network: "green"}),
			{Op: model.OpDelete, Kind: model.KindNetwork, ID: "green"},
		}, model.Conflict, "ops[2]"},
		{"duplicate within the batch", []model.Op{
			create(&model.Network{Meta: named("green"), Type: "vxlan", VNI: 9}),
			create(&model.Network{Meta: named("yellow"), Type: "vxlan", VNI: 9}),
		}, model.Conflict, "ops[1].vni"},
	} {
		before := svc.Snapshot()
		_, err := svc.Apply(ctx, tc.ops)
		var me *model.Error
		if !errorAs(err, &me) || me.Code != tc.code || me.Field != tc.field {
			t.Errorf("%s: %v, want %s at %s", tc.name, err, tc.code, tc.field)
		}
		if svc.Snapshot() != before {
			t.Errorf("%s: the snapshot changed", tc.name)
		}
	}

	// The right order goes through: the address and name freed by the
	// delete are taken by the create.
	objs, err := svc.Apply(ctx, []model.Op{del, again})
	if err != nil {
		t.Fatal(err)
	}
	if objs[0] != nil || objs[1].Base().ID == vm1.Base().ID || objs[1].(*model.Port).Network != blue.Base().ID {
		t.Errorf("delete then create: %v", objs)
	}
	// Create, patch and delete of one object: nothing stored, but every
	// op answered and published.
	sub := svc.Subscribe(10)
	defer sub.Close()
	rev := svc.Snapshot().Revision
	objs, err = svc.Apply(ctx, []model.Op{
		create(&model.Network{Meta: named("tmp"), Type: "flat"}),
		{Op: model.OpPatch, Kind: model.KindNetwork, ID: "tmp", Patch: []byte(`{"name":"tmp2"}`)},
		{Op: model.OpDelete, Kind: model.KindNetwork, ID: "tmp2"},
	})
	if err != nil || objs[0].Base().Name != "tmp" || objs[1].Base().Name != "tmp2" || objs[2] != nil {
		t.Fatalf("create, patch, delete: %v %v", objs, err)
	}
	if _, ok := svc.Snapshot().Networks.ByName("tmp2"); ok {
		t.Error("tmp2 kept")
	}
	if ch, ok := svc.Snapshot().ChangesSince(rev); !ok || len(ch) != 1 || ch[0].ID != objs[0].Base().ID {
		t.Errorf("changes: %+v", ch)
	}
	if evs := drain(sub); len(evs) != 3 || evs[0].Type != model.Created || evs[1].Type != model.Updated || evs[2].Type != model.Deleted {
		t.Errorf("events: %+v", evs)
	}
	// An empty batch writes nothing.
	if objs, err := svc.Apply(ctx, nil); err != nil || len(objs) != 0 || svc.Snapshot().Revision != rev+1 {
		t.Errorf("empty batch: %v %v", objs, err)
	}
}

// A batch through a stale service (another one wrote the store) is
// re-validated against what that one wrote.
func TestApplyFenceReload(t *testing.T) {
	st, a := open(t, t.TempDir())
	b, err := model.New(ctx, st, events.NewBus())
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, a, &model.Network{Meta: named("blue"), Type: "vxlan", VNI: 1})
	_, err = b.Apply(ctx, []model.Op{
		create(&model.Network{Meta: named("green"), Type: "vxlan", VNI: 2}),
		create(&model.Network{Meta: named("yellow"), Type: "vxlan", VNI: 1}),
	})
	var me *model.Error
	if !errorAs(err, &me) || me.Code != model.Conflict || me.Field != "ops[1].vni" {
		t.Fatalf("duplicate VNI through a stale service: %v", err)
	}
	if _, err := b.Apply(ctx, []model.Op{create(&model.Network{Meta: named("green"), Type: "vxlan", VNI: 2})}); err != nil {
		t.Fatal(err)
	}
	if b.Snapshot().Networks.Len() != 2 {
		t.Errorf("b: %d networks", b.Snapshot().Networks.Len())
	}
}

// A batch larger than the change log still lists every object it wrote;
// the log is trimmed by later writes.
func TestApplyChangesSinceLargeBatch(t *testing.T) {
	_, svc := open(t, t.TempDir())
	const n = 5000
	ops := []model.Op{create(&model.Network{Meta: named("blue"), Type: "flat"})}
	for i := range n {
		ops = append(ops, create(&model.PortGroup{Meta: named(fmt.Sprintf("pg%d", i))}))
	}
	rev0 := svc.Snapshot().Revision
	objs, err := svc.Apply(ctx, ops)
	if err != nil {
		t.Fatal(err)
	}
	blue := objs[0].Base().ID
	rev1 := svc.Snapshot().Revision
	if ch, ok := svc.Snapshot().ChangesSince(rev0); !ok || len(ch) != n+1 {
		t.Fatalf("changes since before the batch: %d, %v", len(ch), ok)
	}
	patch := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := svc.Patch(ctx, model.KindNetwork, blue, fmt.Appendf(nil, `{"name":"blue%d"}`, i), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	patch(0, 500)
	s := svc.Snapshot()
	if ch, ok := s.ChangesSince(rev1); !ok || len(ch) != 500 {
		t.Errorf("changes since the batch: %d, %v", len(ch), ok)
	}
	if _, ok := s.ChangesSince(rev0); ok {
		t.Error("the log still reaches before the batch")
	}
	patch(500, 2100)
	s = svc.Snapshot()
	if _, ok := s.ChangesSince(rev1); ok {
		t.Error("the log still reaches the batch after 2,100 writes")
	}
	if ch, ok := s.ChangesSince(s.Revision - 2000); !ok || len(ch) != 2000 {
		t.Errorf("last 2000: %d, %v", len(ch), ok)
	}
}

// BenchmarkPorts writes 10,000 ports into an empty model, in 100 networks
// of 100 ports or in one network, one by one (Create) and as one batch
// (Apply).
func BenchmarkPorts(b *testing.B) {
	for _, shape := range []struct{ nets, perNet int }{{100, 100}, {1, 10000}} {
		objects := func() []model.Object {
			var objs []model.Object
			for n := range shape.nets {
				objs = append(objs, &model.Network{Meta: named(fmt.Sprintf("n%d", n)), Type: "vxlan", VNI: 1 + n},
					&model.Subnet{Meta: named(fmt.Sprintf("s%d", n)), Network: fmt.Sprintf("n%d", n), CIDR: "10.0.0.0/16"})
			}
			for n := range shape.nets {
				for p := range shape.perNet {
					objs = append(objs, &model.Port{Meta: named(fmt.Sprintf("p%d-%d", n, p)), Network: fmt.Sprintf("n%d", n),
						IPs: []string{fmt.Sprintf("10.0.%d.%d", p/250, 2+p%250)}})
				}
			}
			return objs
		}
		name := fmt.Sprintf("%dnets", shape.nets)
		b.Run(name+"/one-by-one", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				st, svc := open(b, b.TempDir())
				objs := objects()
				b.StartTimer()
				for _, o := range objs {
					if _, err := svc.Create(ctx, o); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				st.Close()
				b.StartTimer()
			}
		})
		b.Run(name+"/batch", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				st, svc := open(b, b.TempDir())
				objs := objects()
				b.StartTimer()
				ops := make([]model.Op, len(objs))
				for i, o := range objs {
					ops[i] = create(o)
				}
				if _, err := svc.Apply(ctx, ops); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				st.Close()
				b.StartTimer()
			}
		})
	}
}

// Random batches against the same ops written one by one: a batch fails
// where the single writes first fail (same code and field), and writes
// what they write. Small pools of names and addresses make ops clash with
// each other within and across batches (ports, load balancers and
// subnets: what the batch's network index serves).
func TestApplyMatchesSingleWrites(t *testing.T) {
	_, single := open(t, t.TempDir())
	_, batch := open(t, t.TempDir())
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func(pool ...string) string { return pool[rnd.IntN(len(pool))] }
	nets := []string{"n0", "n1", "n2"}
	ip := func() string {
		return pick("10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.1.5", "10.0.1.6", "10.9.0.5")
	}
	gen := func() model.Op {
		port, lb, sub := fmt.Sprintf("p%d", rnd.IntN(10)), pick("lb0", "lb1", "lb2"), pick("s0", "s1", "s2")
		switch rnd.IntN(12) {
		case 0:
			return create(&model.Network{Meta: named(pick(nets...)), Type: "flat"})
		case 1:
			return create(&model.Subnet{Meta: named(sub), Network: pick(nets...), CIDR: pick("10.0.0.0/24", "10.0.0.0/16", "10.0.1.0/24")})
		case 2:
			return model.Op{Op: model.OpDelete, Kind: model.KindSubnet, ID: sub}
		case 3, 4, 10, 11:
			// Either a MAC of its own and an address, or a MAC from a
			// small pool and no address (a port clashes on one or the
			// other: which one the single write names depends on no
			// order), or a generated MAC.
			switch rnd.IntN(3) {
			case 0:
				return create(&model.Port{Meta: named(port), Network: pick(nets...), MAC: pick("02:00:00:00:01:00", "02:00:00:00:01:01")})
			case 1:
				return create(&model.Port{Meta: named(port), Network: pick(nets...), IPs: []string{ip()}})
			}
			mac := fmt.Sprintf("02:00:00:00:00:%02x", port[1])
			return create(&model.Port{Meta: named(port), Network: pick(nets...), MAC: mac, IPs: []string{ip()}})
		case 5:
			return model.Op{Op: model.OpPatch, Kind: model.KindPort, ID: port, Patch: fmt.Appendf(nil, `{"ips":[%q]}`, ip())}
		case 6:
			return model.Op{Op: model.OpDelete, Kind: model.KindPort, ID: port}
		case 7:
			return create(&model.LoadBalancer{Meta: named(lb), Network: pick(nets...), VIP: ip(), Protocol: "tcp", Port: 80})
		case 8:
			return model.Op{Op: model.OpPatch, Kind: model.KindLoadBalancer, ID: lb, Patch: fmt.Appendf(nil, `{"vip":%q}`, ip())}
		}
		return model.Op{Op: model.OpDelete, Kind: model.KindLoadBalancer, ID: lb}
	}
	// state describes a model by names, without ids, times or revisions.
	state := func(s *model.Snapshot) string {
		name := func(id string) string { n, _ := s.Networks.Get(id); return n.Name }
		var out []string
		for _, n := range s.Networks.Sorted() {
			out = append(out, "network "+n.Name)
		}
		for _, x := range s.Subnets.Sorted() {
			out = append(out, fmt.Sprintf("subnet %s %s %s %s", x.Name, name(x.Network), x.CIDR, x.Gateway))
		}
		for _, p := range s.Ports.Sorted() {
			mac := p.MAC
			if !strings.HasPrefix(mac, "02:00:00:00:") {
				mac = "generated"
			}
			out = append(out, fmt.Sprintf("port %s %s %s %v", p.Name, name(p.Network), mac, p.IPs))
		}
		for _, lb := range s.LoadBalancers.Sorted() {
			out = append(out, fmt.Sprintf("lb %s %s %s", lb.Name, name(lb.Network), lb.VIP))
		}
		return strings.Join(out, "\n")
	}
	const rounds = 400
	failed := 0
	for round := range rounds {
		ops := make([]model.Op, 1+rnd.IntN(4))
		for i := range ops {
			ops[i] = gen()
		}
		_, err := batch.Apply(ctx, ops)
		n := len(ops) // ops the single writes must all accept
		var be *model.Error
		if err != nil {
			if !errorAs(err, &be) {
				t.Fatal(err)
			}
			fmt.Sscanf(be.Field, "ops[%d]", &n)
			failed++
		}
		for i, op := range ops[:n] {
			var err error
			switch op.Op {
			case model.OpCreate:
				_, err = single.Create(ctx, op.Object)
			case model.OpPatch:
				_, err = single.Patch(ctx, op.Kind, op.ID, op.Patch, 0)
			case model.OpDelete:
				_, err = single.Delete(ctx, op.Kind, op.ID, 0)
			}
			if err != nil {
				t.Fatalf("round %d: the batch %v failed at op %d (%v), the single writes at %d: %v", round, ops, n, be, i, err)
			}
		}
		if be != nil {
			var err error
			switch op := ops[n]; op.Op {
			case model.OpCreate:
				_, err = single.Create(ctx, op.Object)
			case model.OpPatch:
				_, err = single.Patch(ctx, op.Kind, op.ID, op.Patch, 0)
			case model.OpDelete:
				_, err = single.Delete(ctx, op.Kind, op.ID, 0)
			}
			var se *model.Error
			want := fmt.Sprintf("ops[%d]", n)
			if errorAs(err, &se) && se.Field != "" {
				want += "." + se.Field
			}
			if !errorAs(err, &se) || se.Code != be.Code || be.Field != want {
				t.Fatalf("round %d: ops[%d] failed in the batch with %v, alone with %v", round, n, be, err)
			}
			// Keep the two models equal: the batch's ops before the
			// failing one, as a batch.
			if _, err := batch.Apply(ctx, ops[:n]); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if a, b := state(single.Snapshot()), state(batch.Snapshot()); a != b {
			t.Fatalf("round %d: single writes:\n%s\nbatches:\n%s", round, a, b)
		}
	}
	t.Logf("%d of %d batches failed; final model:\n%s", failed, rounds, state(batch.Snapshot()))
}

// networkOps creates n networks: half vxlan, half vlan (while VLANs last,
// then flat).
func networkOps(n int) []model.Op {
	ops := make([]model.Op, n)
	for i := range n {
		nw := &model.Network{Meta: named(fmt.Sprintf("n%d", i)), Type: "vxlan", VNI: 1 + i}
		if i%2 == 1 {
			nw = &model.Network{Meta: named(fmt.Sprintf("n%d", i)), Type: "vlan", VLAN: 1 + i/2}
		}
		if i%2 == 1 && i >= 2*4094 {
			nw = &model.Network{Meta: named(fmt.Sprintf("n%d", i)), Type: "flat"}
		}
		ops[i] = create(nw)
	}
	return ops
}

// BenchmarkBatchNetworks10k writes 10,000 networks (vxlan, vlan and flat)
// as one batch into an empty model.
func BenchmarkBatchNetworks10k(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		st, svc := open(b, b.TempDir())
		ops := networkOps(10000)
		b.StartTimer()
		if _, err := svc.Apply(ctx, ops); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
}

// A batch of 10,000 networks goes through (BenchmarkBatchNetworks10k
// times it; it took 17 s when each network was checked against every
// other), and a VNI or VLAN used in the batch is then taken.
func TestApplyNetworks10k(t *testing.T) {
	_, svc := open(t, t.TempDir())
	if _, err := svc.Apply(ctx, networkOps(10000)); err != nil {
		t.Fatal(err)
	}
	if n := svc.Snapshot().Networks.Len(); n != 10000 {
		t.Fatalf("%d networks", n)
	}
	for _, o := range []model.Object{
		&model.Network{Meta: named("x"), Type: "vxlan", VNI: 9999},
		&model.Network{Meta: named("x"), Type: "vlan", VLAN: 4094},
	} {
		if _, err := svc.Create(ctx, o); !isConflict(err) {
			t.Errorf("%+v: %v, want a conflict", o, err)
		}
	}
	if err := model.CheckIndex(svc); err != nil {
		t.Fatal(err)
	}
}

func isConflict(err error) bool { return model.CodeOf(err) == model.Conflict }

// The index writes keep (what validation looks up instead of reading
// every object) stays the index of the model through random single
// writes and batches of every kind, most of them clashing or failing:
// each failed write reverts what it staged.
func TestIndexFollowsWrites(t *testing.T) {
	_, svc := open(t, t.TempDir())
	rnd := rand.New(rand.NewPCG(5, 6))
	pick := func(pool ...string) string { return pool[rnd.IntN(len(pool))] }
	some := func(pool ...string) string { // a JSON list of 0-2 of pool
		var out []string
		for range rnd.IntN(3) {
			out = append(out, fmt.Sprintf("%q", pick(pool...)))
		}
		return "[" + strings.Join(out, ",") + "]"
	}
	net := func() string { return pick("n0", "n1", "n2") }
	ip := func() string { return pick("10.0.0.5", "10.0.0.6", "10.0.1.5", "10.0.0.50", "10.0.0.51") }
	port := func() string { return pick("p0", "p1", "p2", "p3") }
	objects := []struct {
		kind model.Kind
		gen  func() string
	}{
		{model.KindHost, func() string {
			return fmt.Sprintf(`{"name":%q,"ovsdb":"unix:/db","vtep_ip":%q,"uplink":%q}`, pick("h0", "h1", "h2"), pick("192.0.2.1", "192.0.2.2"), pick("", "eth1"))
		}},
		{model.KindNetwork, func() string {
			return pick(fmt.Sprintf(`{"name":%q,"type":"vxlan","vni":%s}`, net(), pick("1", "2")),
				fmt.Sprintf(`{"name":%q,"type":"vlan","vlan":%s}`, net(), pick("1", "2")), fmt.Sprintf(`{"name":%q,"type":"flat"}`, net()))
		}},
		{model.KindSubnet, func() string {
			return fmt.Sprintf(`{"name":%q,"network":%q,"cidr":%q}`, pick("s0", "s1", "s2", "s3"), net(), pick("10.0.0.0/24", "10.0.1.0/24", "10.0.0.0/16"))
		}},
		{model.KindPort, func() string {
			return fmt.Sprintf(`{"name":%q,"network":%q,"mac":%q,"ips":%s,"security_groups":%s}`, port(), net(),
				pick("02:00:00:00:00:01", "02:00:00:00:00:02", ""), some(ip()), some("g0", "g1"))
		}},
		{model.KindRouter, func() string {
			return fmt.Sprintf(`{"name":%q,"subnets":%s,"external_network":%q}`, pick("r0", "r1"), some("s0", "s1", "s2", "s3"), pick("", "n0", "n1"))
		}},
		{model.KindLoadBalancer, func() string {
			return fmt.Sprintf(`{"name":%q,"network":%q,"vip":%q,"protocol":"tcp","port":%s}`, pick("l0", "l1", "l2"), net(), ip(), pick("80", "81"))
		}},
		{model.KindFloatingIP, func() string {
			return fmt.Sprintf(`{"name":%q,"ip":%q,"port":%q}`, pick("f0", "f1"), ip(), pick("", port()))
		}},
		{model.KindSecurityGroup, func() string {
			return fmt.Sprintf(`{"name":%q,"rules":[{"direction":"ingress","remote_group":%q}]}`, pick("g0", "g1"), pick("", "g0", "g1"))
		}},
		{model.KindMirror, func() string {
			return fmt.Sprintf(`{"name":%q,"sources":[%q],"output_port":%q}`, pick("m0", "m1"), port(), port())
		}},
		{model.KindFlowExport, func() string {
			return fmt.Sprintf(`{"name":%q,"protocol":%q,"targets":["192.0.2.50:6343"],"hosts":%s}`, pick("e0", "e1", "e2"), pick("sflow", "ipfix"), some("h0", "h1", "h2"))
		}},
	}
	gen := func() model.Op {
		o := objects[rnd.IntN(len(objects))]
		body := o.gen()
		obj, err := model.Decode(o.kind, []byte(body))
		if err != nil {
			t.Fatal(body, err)
		}
		name := obj.Base().Name
		switch rnd.IntN(6) {
		case 0, 1, 2:
			return model.Op{Op: model.OpCreate, Object: obj}
		case 3:
			return model.Op{Op: model.OpUpdate, Kind: o.kind, ID: name, Object: obj}
		case 4:
			return model.Op{Op: model.OpPatch, Kind: o.kind, ID: name, Patch: []byte(body)}
		}
		return model.Op{Op: model.OpDelete, Kind: o.kind, ID: name}
	}
	ok, failed := 0, 0
	seen := map[model.Kind]bool{}
	for round := range 3000 {
		var err error
		if op := gen(); rnd.IntN(2) == 0 {
			switch op.Op {
			case model.OpCreate:
				_, err = svc.Create(ctx, op.Object)
			case model.OpUpdate:
				_, err = svc.Update(ctx, op.Kind, op.ID, op.Object, 0)
			case model.OpPatch:
				_, err = svc.Patch(ctx, op.Kind, op.ID, op.Patch, 0)
			case model.OpDelete:
				_, err = svc.Delete(ctx, op.Kind, op.ID, 0)
			}
		} else {
			ops := []model.Op{op}
			for range rnd.IntN(3) {
				ops = append(ops, gen())
			}
			_, err = svc.Apply(ctx, ops)
		}
		if err != nil && model.CodeOf(err) == 0 {
			t.Fatal(err)
		}
		if err != nil {
			failed++
		} else {
			ok++
		}
		if err := model.CheckIndex(svc); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, ki := range model.Kinds() {
			seen[ki.Kind] = seen[ki.Kind] || svc.Snapshot().Len(ki.Kind) > 0
		}
	}
	for _, ki := range model.Kinds() {
		if ki.Kind != model.KindPortGroup && !seen[ki.Kind] {
			t.Errorf("never a %s: the workload is too weak", ki.Kind)
		}
	}
	t.Logf("%d writes, %d failed", ok+failed, failed)
	if ok < 400 || failed < 400 {
		t.Errorf("%d writes went through, %d failed", ok, failed)
	}
}
