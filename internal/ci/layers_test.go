package ci

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/loom-sdn/loom"

// floors are the layers of the house, bottom up: a package may import
// only packages of its own floor or below (by the longest prefix of its
// path). Apps also never import one another: only the kit.
var floors = []struct {
	prefix string
	floor  int
}{
	{"southbound/openflow", 0}, {"southbound/ovsdb", 0}, {"events", 0}, {"store", 0}, {"cluster", 0}, {"northbound/restapi", 0},
	{"internal/testenv", 0}, {"internal/ovslab", 1}, {"internal/ci", 0},
	{"model", 1},
	{"view", 2}, {"topology", 2},
	{"controller", 3},
	{"apps", 4}, // apps/kit and every app
	{"northbound", 5},
	{"cmd", 6}, {"loomd", 6}, {"examples", 6},
}

func floorOf(t *testing.T, pkg string) int {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
	best, floor := -1, -1
	for _, f := range floors {
		if (rel == f.prefix || strings.HasPrefix(rel, f.prefix+"/")) && len(f.prefix) > best {
			best, floor = len(f.prefix), f.floor
		}
	}
	if floor < 0 {
		t.Errorf("%s is on no floor: add its folder to floors (internal/ci/layers_test.go) and to the README's drawing", rel)
	}
	return floor
}

// goList returns each package of the module with its imports (or, with
// deps, everything it links), tests left out.
func goList(t *testing.T, format string, pkgs ...string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-f", format}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, rest, _ := strings.Cut(line, ":")
		m[pkg] = strings.Fields(rest)
	}
	return m
}

// The arrows of the house point down: no package imports one of a higher
// floor, and no app imports another app.
func TestImportsPointDown(t *testing.T) {
	root(t)
	for pkg, imports := range goList(t, "{{.ImportPath}}:{{join .Imports \" \"}}", module+"/...") {
		from := floorOf(t, pkg)
		for _, imp := range imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			if to := floorOf(t, imp); to > from {
				t.Errorf("%s (floor %d) imports %s (floor %d): an arrow up", pkg, from, imp, to)
			}
			app := func(p string) string {
				rel := strings.TrimPrefix(p, module+"/apps/")
				if rel == p || strings.HasPrefix(rel, "kit") {
					return ""
				}
				name, _, _ := strings.Cut(rel, "/")
				return name
			}
			if a, b := app(pkg), app(imp); a != "" && b != "" && a != b {
				t.Errorf("app %s imports app %s: share through apps/kit", a, b)
			}
		}
	}
}

// What some packages link, all in all: the runtime links no model, view,
// topology or store (nor bbolt); loomctl is a pure HTTP client.
func TestWhatPackagesLink(t *testing.T) {
	root(t)
	deps := goList(t, "{{.ImportPath}}:{{join .Deps \" \"}}", module+"/controller", module+"/cmd/loomctl", module+"/model", module+"/view")
	forbid := map[string][]string{
		module + "/controller":  {module + "/model", module + "/view", module + "/topology", module + "/store", "go.etcd.io/bbolt", module + "/apps"},
		module + "/cmd/loomctl": {module + "/controller", module + "/model", module + "/northbound", module + "/store", module + "/southbound", "go.etcd.io/bbolt", "github.com/ovn-org/libovsdb"},
		module + "/model":       {module + "/controller", module + "/view", module + "/southbound"},
		module + "/view":        {module + "/controller", module + "/apps", module + "/southbound/ovsdb"},
	}
	for pkg, bad := range forbid {
		for _, d := range deps[pkg] {
			for _, b := range bad {
				if (d == b || strings.HasPrefix(d, b+"/")) && d != module+"/northbound/restapi" {
					t.Errorf("%s links %s", strings.TrimPrefix(pkg, module+"/"), d)
				}
			}
		}
	}
}
