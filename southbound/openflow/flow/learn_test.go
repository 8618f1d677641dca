package flow

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/ovslab"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// lbLearn is the load balancer's client-affinity learn action: remember,
// in table t, which backend (address in reg4, port in reg3's low bits)
// this client's connections to this VIP go to.
func lbLearn(t uint8, backend uint32, port uint16) LearnSpec {
	return LearnSpec{Table: t, IdleTimeout: 30, Priority: 100, Cookie: 0x8000000000000001, Specs: []LearnField{
		LearnMatchBits(Metadata, 0, 32), LearnMatchValue(EthType, 0x800), LearnMatchValue(IPProto, 6),
		LearnMatchField(IPv4Src), LearnMatchField(IPv4Dst), LearnMatchField(TCPDst),
		LearnLoadValue(uint64(backend), Reg4, 0, 32), LearnLoadValue(uint64(port), Reg3, 0, 16),
	}}
}

// lbLearnText is what ovs-ofctl prints for lbLearn(7, 10.1.0.21, 8080).
const lbLearnText = "learn(table=7,idle_timeout=30,priority=100,cookie=0x8000000000000001,OXM_OF_METADATA[0..31],eth_type=0x800,nw_proto=6," +
	"NXM_OF_IP_SRC[],NXM_OF_IP_DST[],NXM_OF_TCP_DST[],load:0xa010015->NXM_NX_REG4[],load:0x1f90->NXM_NX_REG3[0..15])"

// learnCases are learn actions and what ovs-ofctl prints for them;
// TestOfctlParsesLearn checks every one against OVS's own decoder and
// encoder.
var learnCases = []struct {
	s    LearnSpec
	want string
}{
	{lbLearn(7, 0x0a010015, 8080), lbLearnText},
	{LearnSpec{Table: 3, Priority: 0x8000, HardTimeout: 60, Flags: LearnSendFlowRem | LearnDeleteLearned, Specs: []LearnField{
		LearnMatchBits(Reg0, 5, 1), LearnMatchValue(Metadata, 0), LearnMatchValue(Metadata, 0x1234),
		LearnLoadValue(0, Reg1, 8, 8), LearnLoadField(EthSrc, EthDst, 0, 48),
	}}, "learn(table=3,hard_timeout=60,send_flow_rem,delete_learned,NXM_NX_REG0[5],metadata=0,metadata=0x1234," +
		"load:0->NXM_NX_REG1[8..15],load:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[])"},
	{LearnSpec{Table: 254, Priority: 0, IdleTimeout: 1, HardTimeout: 65535, Cookie: 1, Specs: []LearnField{
		LearnMatchValue(EthType, 0x800), LearnMatchValue(IPv4Src, 0x0a000001), LearnMatchValue(IPv4Dst, 0xc0a80101),
		LearnMatchValue(IPProto, 17), LearnMatchValue(UDPDst, 53), LearnMatchValue(UDPSrc, 5353),
		LearnMatchValue(EthDst, 0x02000000ff01), LearnMatchValue(EthSrc, 0xffffffffffff),
		LearnMatchValue(Reg5, 7), LearnMatchValue(Reg7, 0xffffffff), LearnMatchValue(TunnelID, 100),
		LearnMatchValue(CTZone, 9), LearnMatchValue(TunDst, 0x0ac80002),
	}}, "learn(table=254,idle_timeout=1,hard_timeout=65535,priority=0,cookie=0x1,eth_type=0x800,ip_src=10.0.0.1,ip_dst=192.168.1.1," +
		"nw_proto=17,udp_dst=53,udp_src=5353,eth_dst=02:00:00:00:ff:01,eth_src=ff:ff:ff:ff:ff:ff,reg5=0x7,reg7=0xffffffff,tun_id=0x64," +
		"ct_zone=0x9,tun_dst=10.200.0.2)"},
	{LearnSpec{Table: 0, Priority: 1, Specs: []LearnField{
		LearnMatchField(Metadata), LearnMatchField(Reg2), LearnMatchBits(Reg6, 0, 16), LearnMatchBits(Reg6, 16, 16),
		LearnMatchValue(EthType, 0x806), LearnMatchValue(ARPOp, 2), LearnMatchField(ARPSpa), LearnMatchField(ARPSha),
		LearnLoadField(IPv4Dst, Reg4, 0, 32), LearnLoadField(Metadata, Reg5, 0, 32), LearnLoadField(TCPDst, Reg3, 16, 16),
		LearnLoadField(IPProto, Reg0, 24, 8), LearnLoadValue(0xffffffffffffffff, Metadata, 0, 64), LearnLoadValue(0x1, Reg7, 31, 1),
		LearnLoadField(TunnelID, Metadata, 0, 64), LearnLoadValue(5, Reg3, 0, 3),
	}}, "learn(table=0,priority=1,OXM_OF_METADATA[],NXM_NX_REG2[],NXM_NX_REG6[0..15],NXM_NX_REG6[16..31],eth_type=0x806,arp_op=2," +
		"NXM_OF_ARP_SPA[],NXM_NX_ARP_SHA[],load:NXM_OF_IP_DST[]->NXM_NX_REG4[],load:OXM_OF_METADATA[0..31]->NXM_NX_REG5[]," +
		"load:NXM_OF_TCP_DST[]->NXM_NX_REG3[16..31],load:NXM_OF_IP_PROTO[]->NXM_NX_REG0[24..31],load:0xffffffffffffffff->OXM_OF_METADATA[]," +
		"load:0x1->NXM_NX_REG7[31],load:NXM_NX_TUN_ID[]->OXM_OF_METADATA[],load:0x5->NXM_NX_REG3[0..2])"},
	{LearnSpec{Table: 9, Priority: 0x8000}, "learn(table=9)"},
}

// TestLearnEncoding pins the load balancer's learn action byte for byte
// (the encoding ovs-ofctl parse-actions re-encodes unchanged) and checks
// String and LearnOf for every case.
func TestLearnEncoding(t *testing.T) {
	a := Learn(lbLearn(7, 0x0a010015, 8080))
	want := unhex(t, "ffff0088 00002320 0010 001e 0000 0064 8000000000000001 0000 07 00 0000 0000"+
		"0020 80000408 0000 80000408 0000"+ // OXM_OF_METADATA[0..31]: OXM, metadata has no NXM header
		"2010 0800 00000602 0000"+ // eth_type=0x800: NXM_OF_ETH_TYPE
		"2008 0006 00000c01 0000"+ // nw_proto=6: 8 bits, immediate in 2 bytes
		"0020 00000e04 0000 00000e04 0000"+ // NXM_OF_IP_SRC[]
		"0020 00001004 0000 00001004 0000"+ // NXM_OF_IP_DST[]
		"0010 00001402 0000 00001402 0000"+ // NXM_OF_TCP_DST[]
		"2820 0a010015 00010804 0000"+ // load:0xa010015->NXM_NX_REG4[]
		"2810 1f90 00010604 0000"+ // load:0x1f90->NXM_NX_REG3[0..15]
		"000000000000") // padding to 136
	if !bytes.Equal([]byte(a.Raw), want) {
		t.Errorf("encoded\n %x\nwant\n %x", a.Raw, want)
	}
	for _, c := range learnCases {
		a := Learn(c.s)
		if got := a.String(); got != c.want {
			t.Errorf("String\n got %s\nwant %s", got, c.want)
		}
		if len(a.Raw)%8 != 0 {
			t.Errorf("%s: length %d", c.want, len(a.Raw))
		}
		s, ok := LearnOf(a)
		if !ok || Learn(s) != a {
			t.Errorf("LearnOf(%s) = %+v, %v", c.want, s, ok)
		}
		acts, err := DecodeActions([]byte(a.Raw))
		if err != nil || len(acts) != 1 || acts[0] != a {
			t.Errorf("DecodeActions(%s) = %v, %v", c.want, acts, err)
		}
	}
	// In a flow: both encoders agree and a FLOW stats entry decodes back
	// to an equal flow.
	f := New(2, 10, Match{}.EthType(0x0800).IPProto(6)).Act(a, Output(1))
	var enc Encoder
	fm, err := enc.AppendFlowMod(nil, f, CmdAdd, 1)
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := f.AppendFlowMod(nil, CmdAdd, 1); !bytes.Equal(fm, plain) {
		t.Errorf("the template encodes\n %x\nlibOpenflow\n %x", fm, plain)
	}
	var got *Flow
	if err = wire.DecodeFlowStats(statsEntry(t, fm), func(fs *wire.FlowStats) (err error) { got, err = FromStats(fs); return }); err != nil || !got.Equal(f) {
		t.Errorf("round trip: %v\n sent %s\n read %s", err, f, got)
	}
	for _, other := range []Action{Resubmit(3), Output(1), Conjunction(1, 1, 2), RawAction([]byte(a.Raw[:len(a.Raw)-8]))} {
		if _, ok := LearnOf(other); ok {
			t.Errorf("LearnOf(%s) accepted it", other)
		}
	}
	// Bits set in the padding or an unknown field header: not Loom's to print.
	bad := []byte(a.Raw)
	bad[len(bad)-1] = 1
	if s := RawAction(bad).String(); !strings.HasPrefix(s, "raw(") {
		t.Errorf("bad padding printed as %s", s)
	}
	bad = []byte(a.Raw)
	copy(bad[34:], []byte{0x80, 0x00, 0x4c, 0x08}) // OXM_OF_TUNNEL_ID: no Field of Loom's
	if s := RawAction(bad).String(); !strings.HasPrefix(s, "raw(") {
		t.Errorf("unknown header printed as %s", s)
	}
}

func TestLearnPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"no NXM header":        func() { LearnMatchField(InPort) },
		"bits past the field":  func() { LearnMatchBits(Reg0, 16, 17) },
		"no bits":              func() { LearnMatchBits(Reg0, 0, 0) },
		"value too wide":       func() { LearnMatchValue(IPProto, 256) },
		"load too wide":        func() { LearnLoadValue(0x10000, Reg3, 0, 16) },
		"load past dst":        func() { LearnLoadField(IPv4Src, Reg3, 1, 32) },
		"load wider than src":  func() { LearnLoadField(TCPDst, Reg3, 0, 17) },
		"zero LearnField":      func() { Learn(LearnSpec{Specs: []LearnField{{}}}) },
		"unsupported flag":     func() { Learn(LearnSpec{Flags: 4}) },
		"vlan_pcp is 3 bits":   func() { LearnMatchValue(VlanPCP, 8) },
		"negative offset":      func() { LearnLoadValue(0, Reg1, -1, 4) },
		"field without header": func() { LearnLoadValue(0, ConjID, 0, 4) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// TestOfctlParsesLearn hands every learn case to ovs-ofctl parse-actions
// (OVS's decoder, printer and encoder): OVS prints exactly Loom's String
// and re-encodes the bytes unchanged (it reports any re-encoding
// difference as extra lines). Then a FLOW_MOD and a select GROUP_MOD
// carrying the load balancer's learn action go through ofp-parse.
func TestOfctlParsesLearn(t *testing.T) {
	ofctl := ofctl(t)
	var in strings.Builder
	for _, c := range learnCases {
		in.WriteString(hex.EncodeToString([]byte(Learn(c.s).Raw)) + "\n")
	}
	cmd := exec.Command(ofctl, "parse-actions", "OpenFlow13")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl parse-actions: %v\n%s", err, out)
	}
	var lines []string // one "actions=" line and a blank line per action
	for l := range strings.Lines(string(out)) {
		if l = strings.TrimRight(l, "\n"); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) != len(learnCases) {
		t.Fatalf("ovs-ofctl parse-actions printed %d lines for %d actions (re-encoding differences?):\n%s", len(lines), len(learnCases), out)
	}
	for i, l := range lines {
		if want := "actions=" + learnCases[i].want; l != want {
			t.Errorf("ovs-ofctl read\n %s\nwant\n %s", l, want)
		}
	}

	// The reverse: what ovs-ofctl itself encodes from the text.
	if pf, err := exec.Command(ofctl, "-O", "OpenFlow13", "parse-flow", "table=2,tcp,actions="+lbLearnText).CombinedOutput(); err != nil ||
		!strings.Contains(string(pf), "actions="+lbLearnText) {
		t.Errorf("ovs-ofctl parse-flow: %v\n%s", err, pf)
	}

	f := New(2, 10, Match{}.EthType(0x0800).IPProto(6)).Act(Learn(lbLearn(7, 0x0a010015, 8080)), Output(1))
	g := &Group{ID: 7, Type: GroupSelect, Buckets: []Bucket{
		{Weight: 1, WatchPort: PortAny, WatchGroup: wire.GroupAny, Actions: []Action{Learn(lbLearn(7, 0x0a010015, 8080)), Output(1)}},
		{Weight: 1, WatchPort: PortAny, WatchGroup: wire.GroupAny, Actions: []Action{Learn(lbLearn(7, 0x0a010016, 8080)), Output(2)}},
	}}
	b, err := f.AppendFlowMod(nil, CmdAdd, 1)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = g.AppendMod(b, ModAdd, 2); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "mods")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err = exec.Command(ofctl, "ofp-parse", file).CombinedOutput(); err != nil {
		t.Fatalf("ovs-ofctl ofp-parse: %v\n%s", err, out)
	}
	lb2 := strings.Replace(lbLearnText, "0xa010015", "0xa010016", 1)
	for _, want := range []string{
		"ADD table:2 priority=10,tcp actions=" + lbLearnText + ",output:1",
		"type=select,bucket=actions=" + lbLearnText + ",output:1,bucket=actions=" + lb2 + ",output:2",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ovs-ofctl read\n%s\nwant it to contain\n %s", out, want)
		}
	}
}

// ofDump is a minimal OpenFlow 1.3 client of a bridge's management socket:
// it returns the raw FLOW (or GROUP_DESC) multipart reply bodies.
func ofDump(t *testing.T, sock string, req []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append(wire.AppendHello(nil, 1), req...)); err != nil {
		t.Fatal(err)
	}
	var body []byte
	for {
		h, msg, err := wire.ReadMessage(c)
		if err != nil {
			t.Fatal(err)
		}
		switch h.Type {
		case wire.TypeError:
			e, _ := wire.DecodeError(msg)
			t.Fatalf("switch error: %v", e)
		case wire.TypeMultipartReply:
			r, err := wire.DecodeMultipartReply(msg)
			if err != nil {
				t.Fatal(err)
			}
			body = append(body, r.Body...)
			if !r.More() {
				return body
			}
		}
	}
}

func dumpFlowsRaw(t *testing.T, h *ovslab.Host, table uint8) []*Flow {
	t.Helper()
	var flows []*Flow
	err := wire.DecodeFlowStats(ofDump(t, filepath.Join(h.Dir, "br-int.mgmt"), wire.AppendFlowStatsRequest(nil, 2, table, 0, 0)),
		func(fs *wire.FlowStats) error {
			f, err := FromStats(fs)
			flows = append(flows, f)
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	return flows
}

func dumpGroupsRaw(t *testing.T, h *ovslab.Host) []*Group {
	t.Helper()
	var groups []*Group
	err := wire.DecodeGroupDesc(ofDump(t, filepath.Join(h.Dir, "br-int.mgmt"), wire.AppendMultipartRequest(nil, 2, wire.MultipartGroupDesc, nil)),
		func(d *wire.GroupDesc) error {
			g, err := GroupFromDesc(d)
			groups = append(groups, g)
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	return groups
}

// actionsRE takes the actions of an ovs-ofctl dump-flows line.
var actionsRE = regexp.MustCompile(` actions=(.*)$`)

// TestLearnOnOVS installs the load balancer's learn action on a real
// ovs-vswitchd, in a flow and in the buckets of a select group, from
// Loom's text, and checks that (1) dump-flows and dump-groups print
// exactly Loom's String, (2) the FLOW and GROUP_DESC replies decode to
// flows and groups equal to the desired ones (the learn action comes back
// byte for byte), and (3) packets make OVS learn the flow the load
// balancer wants: the client's match and the backend loads. (4) A learn
// action inside a bucket is accepted and reported back but never run
// (OVS runs bucket actions as an action set); a bucket that sets
// registers and resubmits to a learning flow works.
func TestLearnOnOVS(t *testing.T) {
	ovslab.Require(t)
	lab := ovslab.New(t)
	h := lab.AddHost("h1", ovslab.HostOptions{})
	const learnTable = 7
	tcp := Match{}.EthType(0x0800).IPProto(6)
	lb := Learn(lbLearn(learnTable, 0x0a010015, 8080))
	// Group 1: the learn action in the buckets themselves.
	lbA, lbB := Learn(lbLearn(learnTable, 0x0a010016, 8080)), Learn(lbLearn(learnTable, 0x0a010017, 8081))
	inBucket := &Group{ID: 1, Type: GroupSelect, Buckets: []Bucket{
		{Weight: 1, WatchPort: PortAny, WatchGroup: wire.GroupAny, Actions: []Action{lbA}},
		{Weight: 1, WatchPort: PortAny, WatchGroup: wire.GroupAny, Actions: []Action{lbB}},
	}}
	// Group 2: buckets choose the backend in registers and resubmit to
	// table 5, whose flow learns from the registers.
	viaTable := &Group{ID: 2, Type: GroupSelect, Buckets: []Bucket{
		{Weight: 1, WatchPort: PortAny, WatchGroup: wire.GroupAny, Actions: []Action{SetField(Reg4, 0x0a010016), SetField(Reg3, 8080), Resubmit(5)}},
		{Weight: 1, WatchPort: PortAny, WatchGroup: wire.GroupAny, Actions: []Action{SetField(Reg4, 0x0a010017), SetField(Reg3, 8081), Resubmit(5)}},
	}}
	fromRegs := lbLearn(learnTable, 0, 0)
	fromRegs.Specs = append(fromRegs.Specs[:6], LearnLoadField(Reg4, Reg4, 0, 32), LearnLoadField(Reg3, Reg3, 0, 16))
	start := New(0, 10, tcp).Goto(1)
	start.WriteMetadata, start.Metadata, start.MetadataMask = true, 0x2a, 0xffffffff
	flows := []*Flow{
		start,
		New(1, 10, tcp.Set(TCPDst, 80)).Act(lb),
		New(1, 10, tcp.Set(TCPDst, 8443)).Act(ToGroup(1)),
		New(1, 10, tcp.Set(TCPDst, 443)).Act(ToGroup(2)),
		New(5, 10, tcp).Act(Learn(fromRegs)),
	}
	for _, g := range []*Group{inBucket, viaTable} {
		if out, err := h.Ofctl("add-group", "br-int", g.String()); err != nil {
			t.Fatalf("add-group %s: %v\n%s", g, err, out)
		}
	}
	var text []string
	for _, f := range flows {
		text = append(text, f.String())
	}
	if err := h.AddFlows(text...); err != nil {
		t.Fatalf("add-flows: %v\n%s", err, strings.Join(text, "\n"))
	}

	// (1) the text OVS prints.
	out, err := h.Ofctl("dump-flows", "br-int")
	if err != nil {
		t.Fatal(err)
	}
	var printed, want []string
	for l := range strings.Lines(out) {
		if m := actionsRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			printed = append(printed, m[1])
		}
	}
	for _, f := range flows {
		want = append(want, f.Instructions.String())
	}
	slices.Sort(printed)
	slices.Sort(want)
	if !slices.Equal(printed, want) {
		t.Errorf("dump-flows actions:\n %s\nwant\n %s\n%s", strings.Join(printed, "\n "), strings.Join(want, "\n "), out)
	}
	if !slices.Contains(printed, lbLearnText) {
		t.Errorf("dump-flows does not print %s", lbLearnText)
	}
	if out, err = h.Ofctl("dump-groups", "br-int"); err != nil {
		t.Fatal(err)
	}
	// (OF1.3 dumps show neither bucket ids nor the default weight 1.)
	for _, g := range []*Group{inBucket, viaTable} {
		w := "group_id=" + fmt.Sprint(g.ID) + ",type=select,bucket=actions=" + actionsString(g.Buckets[0].Actions) +
			",bucket=actions=" + actionsString(g.Buckets[1].Actions)
		if !strings.Contains(out, " "+w+"\n") {
			t.Errorf("dump-groups:\n%s\nwant it to contain\n %s", out, w)
		}
	}

	// (2) the bytes OVS sends back.
	got := dumpFlowsRaw(t, h, wire.TableAll)
	for _, f := range flows {
		i := slices.IndexFunc(got, func(o *Flow) bool { return o.Key() == f.Key() })
		if i < 0 {
			t.Errorf("flow %s not dumped", f)
		} else if !got[i].Equal(f) {
			t.Errorf("dumped flow differs:\n got %s\nwant %s", got[i], f)
		}
	}
	gs := dumpGroupsRaw(t, h)
	slices.SortFunc(gs, func(a, b *Group) int { return int(a.ID) - int(b.ID) })
	if len(gs) != 2 || !gs[0].Equal(inBucket) || !gs[1].Equal(viaTable) {
		t.Errorf("dumped groups\n %v\nwant\n %s\n %s", gs, inBucket, viaTable)
	}

	// (3) packets. Through the flow: ofproto/trace -generate runs the
	// learn action for real.
	if out, err := h.Appctl("ofproto/trace", "br-int",
		"in_port=LOCAL,tcp,dl_src=02:00:00:00:00:05,dl_dst=02:00:00:00:00:64,nw_src=10.0.0.5,nw_dst=10.0.0.100,tp_src=40000,tp_dst=80",
		"-generate"); err != nil || !strings.Contains(out, "-> table=7 tcp,metadata=0x2a/0xffffffff,nw_src=10.0.0.5,nw_dst=10.0.0.100,tp_dst=80 priority=100") {
		t.Errorf("trace: %v\n%s", err, out)
	}
	// Through the select groups: the trace cannot follow OVS's default
	// dp_hash selection ("no live bucket"), so real packets (PACKET_OUTs
	// to the pipeline) go through the datapath's hash-and-recirculate,
	// and its upcall runs the bucket. Group 1 first: its learn action
	// must not run, and group 2's flow is learned after it.
	for _, p := range []struct {
		src   uint32
		dport uint16
	}{{0x0a000007, 8443}, {0x0a000006, 443}} {
		frame := tcpFrame(0x020000000000|MAC(p.src&0xff), 0x020000000064, p.src, 0x0a000064, 40001, p.dport)
		if out, err := h.Ofctl("packet-out", "br-int", "in_port=LOCAL,packet="+hex.EncodeToString(frame)+",actions=resubmit(,0)"); err != nil {
			t.Fatalf("packet-out: %v\n%s", err, out)
		}
	}
	var learned []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if out, err = h.Ofctl("--no-names", "dump-flows", "br-int", fmt.Sprintf("table=%d", learnTable)); err != nil {
			t.Fatal(err)
		}
		learned = learned[:0]
		for l := range strings.Lines(out) {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "cookie=") {
				learned = append(learned, l)
			}
		}
		if len(learned) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("learned:\n%s", out)
	flowRE := func(src, dport string) *regexp.Regexp {
		return regexp.MustCompile(`^cookie=0x8000000000000001, duration=[^,]+, table=7, n_packets=0, n_bytes=0, idle_timeout=30, (idle_age=\d+, )?` +
			`priority=100,tcp,metadata=0x2a/0xffffffff,nw_src=` + regexp.QuoteMeta(src) + `,nw_dst=10\.0\.0\.100,tp_dst=` + dport + ` actions=(.*)$`)
	}
	wantActs := map[string][]string{
		"80":  {"load:0xa010015->NXM_NX_REG4[],load:0x1f90->NXM_NX_REG3[0..15]"},
		"443": {"load:0xa010016->NXM_NX_REG4[],load:0x1f90->NXM_NX_REG3[0..15]", "load:0xa010017->NXM_NX_REG4[],load:0x1f91->NXM_NX_REG3[0..15]"},
	}
	for _, c := range []struct{ src, dport string }{{"10.0.0.5", "80"}, {"10.0.0.6", "443"}, {"10.0.0.7", "8443"}} {
		n := 0
		for _, l := range learned {
			if m := flowRE(c.src, c.dport).FindStringSubmatch(l); m != nil {
				n++
				if acts := m[len(m)-1]; !slices.Contains(wantActs[c.dport], acts) {
					t.Errorf("learned flow for %s:%s loads %s, want one of %q", c.src, c.dport, acts, wantActs[c.dport])
				}
			}
		}
		if wantN := len(wantActs[c.dport]); min(wantN, 1) != n {
			t.Errorf("%d learned flows for %s port %s, want %d, in\n%s", n, c.src, c.dport, min(wantN, 1), strings.Join(learned, "\n"))
		}
	}
	if len(learned) != 2 {
		t.Errorf("%d learned flows, want 2", len(learned))
	}
	// Group 1 did run a bucket for the 8443 packet (stats come with the
	// revalidators, hence the wait).
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := h.Ofctl("dump-group-stats", "br-int", "group_id=1")
		if err == nil && strings.Contains(out, "group_id=1,") && strings.Contains(out, ",packet_count=1,") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("group 1 did not count the 8443 packet: %v\n%s", err, out)
			break
		}
	}
	// The learned flows as Loom decodes them: the match the load balancer
	// expects, its cookie, priority and idle timeout.
	for _, f := range dumpFlowsRaw(t, h, learnTable) {
		src, _ := f.Match.Get(IPv4Src)
		dport := uint64(80)
		if src.Value == 0x0a000006 {
			dport = 443
		}
		want := New(learnTable, 100, tcp.SetMasked(Metadata, 0x2a, 0xffffffff).Set(IPv4Src, src.Value).Set(IPv4Dst, 0x0a000064).Set(TCPDst, dport))
		if !f.Match.Equal(want.Match) || f.Priority != 100 || f.Cookie != 0x8000000000000001 || f.IdleTimeout != 30 {
			t.Errorf("learned flow decodes to %s, want match %s, cookie 0x8000000000000001, idle_timeout 30", f, want.Match)
		}
	}
}

// tcpFrame builds an Ethernet/IPv4/TCP SYN.
func tcpFrame(src, dst MAC, srcIP, dstIP uint32, sport, dport uint16) []byte {
	s, d := src.Bytes(), dst.Bytes()
	b := append(append(d[:], s[:]...), 0x08, 0x00)
	ip := []byte{0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0,
		byte(srcIP >> 24), byte(srcIP >> 16), byte(srcIP >> 8), byte(srcIP),
		byte(dstIP >> 24), byte(dstIP >> 16), byte(dstIP >> 8), byte(dstIP)}
	var sum uint32
	for i := 0; i < len(ip); i += 2 {
		sum += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	ip[10], ip[11] = byte(^sum>>8), byte(^sum)
	tcp := []byte{byte(sport >> 8), byte(sport), byte(dport >> 8), byte(dport), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0}
	return append(append(b, ip...), tcp...)
}
