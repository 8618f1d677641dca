package northbound_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loom-sdn/loom/internal/testenv"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/northbound"
	"github.com/loom-sdn/loom/view/viewtest"
)

// TestFabricOf: ports are placed on the host of their active binding,
// networks list their hosts, and VXLAN networks shared by two hosts make
// a tunnel between them (VLAN ones do not).
func TestFabricOf(t *testing.T) {
	l := viewtest.New(t)
	m := viewtest.Meta
	l.Create(
		&model.Host{Meta: m("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"},
		&model.Host{Meta: m("hv2"), OVSDB: "unix:/b", VTEPIP: "10.200.0.2"},
		&model.Host{Meta: m("hv3"), OVSDB: "unix:/c", VTEPIP: "10.200.0.3"},
		&model.Network{Meta: m("blue"), Type: "vxlan", VNI: 5001},
		&model.Network{Meta: m("red"), Type: "vlan", VLAN: 100},
		&model.Subnet{Meta: m("blue-a"), Network: "blue", CIDR: "10.1.0.0/24"},
		&model.Port{Meta: m("b1"), Network: "blue", MAC: "02:00:00:00:00:01", IPs: []string{"10.1.0.11"}},
		&model.Port{Meta: m("b2"), Network: "blue", MAC: "02:00:00:00:00:02", IPs: []string{"10.1.0.12"}},
		&model.Port{Meta: m("r1"), Network: "red", MAC: "02:00:00:00:00:03"},
		&model.Port{Meta: m("r2"), Network: "red", MAC: "02:00:00:00:00:04"},
		&model.Port{Meta: m("idle"), Network: "blue", MAC: "02:00:00:00:00:05"},
	)
	l.Bind("b1", "hv1", "tap-b1", 5)
	l.Bind("b2", "hv2", "tap-b2", 6)
	l.Bind("b2", "hv3", "tap-b2", 9) // migrating to hv3: the newer binding is active
	l.Bind("r1", "hv1", "tap-r1", 7)
	l.Bind("r2", "hv2", "tap-r2", 8)
	f := northbound.FabricOf(l.View.Snapshot(), nil, nil, nil, nil)
	where := map[string]string{}
	for _, p := range f.Ports {
		where[p.Name] = p.Host
		if p.Name == "b2" && p.Bindings != 2 {
			t.Errorf("b2 has %d bindings, want 2", p.Bindings)
		}
	}
	if where["b1"] != "hv1" || where["b2"] != "hv3" || where["idle"] != "" {
		t.Errorf("ports placed %v", where)
	}
	if len(f.Tunnels) != 1 || f.Tunnels[0].A != "hv1" || f.Tunnels[0].B != "hv3" || strings.Join(f.Tunnels[0].Networks, ",") != "blue" {
		t.Errorf("tunnels %+v, want hv1-hv3 for blue only (red is a VLAN)", f.Tunnels)
	}
	if len(f.Networks) != 2 || strings.Join(f.Networks[0].Hosts, ",") != "hv1,hv3" || f.Networks[0].Segment != 5001 ||
		strings.Join(f.Networks[1].Hosts, ",") != "hv1,hv2" {
		t.Errorf("networks %+v", f.Networks)
	}
	if len(f.Hosts) != 3 || f.Hosts[0].DatapathID == "" {
		t.Errorf("hosts %+v", f.Hosts)
	}
}

// TestUI: / leads to the live page, which loads the fabric and follows
// the events, and whose script node parses (when node is installed).
func TestUI(t *testing.T) {
	env := controllertest.Start(t, controller.Config{Apps: []string{"l2switch"}}, nil)
	ts := httptest.NewServer(northbound.Handler(env.Ctl, nil))
	defer ts.Close()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	resp, err = http.Get(ts.URL + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui/: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`"/api/v1"`, `"/fabric"`, `"/events"`, "<svg"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	node := testenv.Tool(t, "node")
	script := regexp.MustCompile(`(?s)<script>(.*)</script>`).FindStringSubmatch(page)
	if script == nil {
		t.Fatal("no script in the page")
	}
	file := filepath.Join(t.TempDir(), "page.js")
	os.WriteFile(file, []byte(script[1]), 0o644)
	if out, err := exec.Command(node, "--check", file).CombinedOutput(); err != nil {
		t.Errorf("node --check: %v\n%s", err, out)
	}
}
