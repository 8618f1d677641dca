package ci

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// essential are commands every Debian machine has (essential packages:
// coreutils, dash, bash, grep, sed, mawk, findutils, util-linux, procps is
// not), plus the Go toolchain the README asks for.
var essential = []string{
	"sh", "bash", "cat", "env", "echo", "printf", "kill", "sleep", "rm", "mkdir", "ln", "grep", "awk", "sed", "tr", "tail",
	"head", "sort", "uniq", "wc", "cut", "date", "mktemp", "seq", "true", "false", "test", "timeout", "xargs", "basename",
	"dirname", "id", "readlink", "chmod", "cp", "mv", "touch", "tee", "nohup", "setsid", "go", "find", "stat", "dd", "flock",
	"ls", "apt-get", "dpkg", "mount", "umount", "nproc", "uname", "ps", "pkill", "pgrep",
}

// runners are the calls the tests and internal/ovslab run commands with:
// by selector (exec.Command, vm.Exec, ...) or by a function's own name.
var (
	selRunners   = map[string]bool{"Command": true, "CommandContext": true, "LookPath": true, "Exec": true}
	identRunners = map[string]bool{"run": true, "runWith": true, "runAll": true, "background": true, "exec": true}
	// toolCheckers take command names only, each a command.
	toolCheckers = map[string]bool{"requireTools": true, "RequireTools": true, "Tool": true}
)

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatal("not the repository root:", dir)
	}
	return dir
}

// installList reads .ci/packages: command -> package.
func installList(t *testing.T, top string) map[string]string {
	f, err := os.Open(filepath.Join(top, ".ci", "packages"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	list := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) < 2 {
			t.Fatalf(".ci/packages: %q has no package", sc.Text())
		}
		list[fields[0]] = fields[1]
	}
	return list
}

// flatten lists a call's arguments as string literals ("" for anything
// else), expanding []string{...} literals and append(...) calls.
func flatten(args []ast.Expr) []string {
	var out []string
	for _, a := range args {
		switch a := a.(type) {
		case *ast.BasicLit:
			if v, err := strconv.Unquote(a.Value); err == nil && a.Kind == token.STRING {
				out = append(out, v)
				continue
			}
			out = append(out, "")
		case *ast.CompositeLit:
			out = append(out, flatten(a.Elts)...)
		case *ast.CallExpr:
			if id, ok := a.Fun.(*ast.Ident); ok && id.Name == "append" {
				out = append(out, flatten(a.Args)...)
				continue
			}
			out = append(out, "")
		default:
			out = append(out, "")
		}
	}
	return out
}

// argvCommands returns the commands of one argv: its first word, the one
// after "ip netns exec NS", and those of a "sh -c SCRIPT".
func argvCommands(argv []string) []string {
	var out []string
	for i, w := range argv {
		if w == "" || strings.HasPrefix(w, "-") {
			continue
		}
		start := i == 0 || (i >= 4 && argv[i-4] == "ip" && argv[i-3] == "netns" && argv[i-2] == "exec")
		if !start {
			continue
		}
		out = append(out, w)
		if (w == "sh" || w == "bash") && i+2 < len(argv) && strings.HasPrefix(argv[i+1], "-") && strings.Contains(argv[i+1], "c") {
			out = append(out, scriptCommands(argv[i+2])...)
		}
	}
	return out
}

// goCommands returns the commands Go test files and internal/ run, with
// where.
func goCommands(t *testing.T, top string) map[string][]string {
	out := map[string][]string{}
	err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "vswitchd") {
			return filepath.SkipDir
		}
		rel := strings.TrimPrefix(path, top+"/")
		if d.IsDir() || !strings.HasSuffix(path, ".go") || !(strings.HasSuffix(path, "_test.go") || strings.HasPrefix(rel, "internal/")) ||
			rel == "internal/testenv/testenv_test.go" { // made-up tool names
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		add := func(n ast.Node, cmds []string) {
			where := rel + ":" + strconv.Itoa(fset.Position(n.Pos()).Line)
			for _, c := range cmds {
				out[c] = append(out[c], where)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				switch fn := n.Fun.(type) {
				case *ast.Ident:
					// run, exec, ... are internal/ovslab's (elsewhere
					// they are a CLI's own run(args)).
					if identRunners[fn.Name] && (strings.HasPrefix(rel, "internal/") || fn.Name == "background") {
						args := n.Args
						if fn.Name == "runWith" && len(args) > 0 {
							args = args[1:]
						}
						if fn.Name == "background" && len(args) > 2 {
							args = args[2:] // t, vm, argv...
						}
						if fn.Name == "runAll" {
							for _, a := range args {
								add(n, argvCommands(flatten([]ast.Expr{a})))
							}
							return true
						}
						add(n, argvCommands(flatten(args)))
					}
					if toolCheckers[fn.Name] {
						for _, w := range flatten(n.Args) {
							if w != "" {
								add(n, []string{w})
							}
						}
					}
				case *ast.SelectorExpr:
					if toolCheckers[fn.Sel.Name] {
						for _, w := range flatten(n.Args) {
							if w != "" {
								add(n, []string{w})
							}
						}
					}
					if selRunners[fn.Sel.Name] {
						args := n.Args
						if fn.Sel.Name == "CommandContext" && len(args) > 0 {
							args = args[1:]
						}
						add(n, argvCommands(flatten(args)))
					}
				}
			case *ast.CompositeLit:
				// [][]string{{"cmd", ...}, ...}: lists of commands, in the
				// OVS tests and internal/ (elsewhere: CLI arguments).
				if at, ok := n.Type.(*ast.ArrayType); ok {
					if inner, ok := at.Elt.(*ast.ArrayType); ok && inner.Len == nil {
						if id, ok := inner.Elt.(*ast.Ident); ok && id.Name == "string" &&
							(strings.HasSuffix(rel, "_ovs_test.go") || strings.HasPrefix(rel, "internal/") && !strings.HasPrefix(rel, "internal/ci/")) {
							for _, e := range n.Elts {
								if cl, ok := e.(*ast.CompositeLit); ok {
									add(cl, argvCommands(flatten(cl.Elts)))
								}
							}
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	shWord     = regexp.MustCompile(`^[A-Za-z0-9_./-]+$`)
	shSplit    = regexp.MustCompile(`\|\||&&|[;|&(\x60]|\$\(`)
	shKeywords = []string{"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac", "in",
		"function", "return", "local", "export", "set", "shift", "trap", "exit", "read", "cd", "command", "wait", "eval",
		"exec", "source", ".", "declare", "unset", "break", "continue", "mapfile", "type", "[", "[[", "!", "{", "}", "time", "builtin", "let", "pushd", "popd", "printf", "echo", "true", "false", "test"}
)

// scriptCommands returns the command words of a shell script: the first
// word of each simple command (after ; | && || ( $( and backquotes),
// leaving out assignments, keywords, builtins and quoted text.
func scriptCommands(script string) []string {
	var out []string
	inHeredoc := ""
	script = strings.ReplaceAll(script, "\\\n", " ") // continued lines are one
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if inHeredoc != "" {
			if line == inHeredoc {
				inHeredoc = ""
			}
			continue
		}
		if i := strings.Index(line, "<<"); i >= 0 {
			tag := strings.Trim(strings.Fields(line[i+2:] + " x")[0], `'"-`)
			inHeredoc = tag
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		// Drop quoted text: commands inside strings are messages.
		line = regexp.MustCompile(`"[^"]*"|'[^']*'`).ReplaceAllString(line, `""`)
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		for _, part := range shSplit.Split(line, -1) {
			fields := strings.Fields(part)
			for len(fields) > 0 && (strings.Contains(fields[0], "=") || fields[0] == "!" || fields[0] == "then" || fields[0] == "do" ||
				fields[0] == "else" || fields[0] == "if" || fields[0] == "while" || fields[0] == "until" || fields[0] == "sudo" ||
				fields[0] == "{" || fields[0] == "time" || fields[0] == "command" || fields[0] == "exec") {
				fields = fields[1:]
			}
			if len(fields) == 0 {
				continue
			}
			w := fields[0]
			if !shWord.MatchString(w) || strings.HasPrefix(w, "-") || strings.HasPrefix(w, "$") || strings.HasSuffix(w, ")") {
				continue
			}
			if slices.Contains(shKeywords, w) {
				continue
			}
			out = append(out, w)
		}
	}
	return out
}

// shellFunctions are the functions a script defines (and so may call).
func shellFunctions(script string) map[string]bool {
	fns := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(?:function\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*\(\)`).FindAllStringSubmatch(script, -1) {
		fns[m[1]] = true
	}
	return fns
}

// Every command a test, internal/ovslab, the demo or the lab script runs
// is either in every Debian (with Go) or in .ci/packages, which `make
// deps` and .ci/run install from: a fresh machine passes the README's two
// commands.
func TestInstallListCoversCommands(t *testing.T) {
	top := root(t)
	list := installList(t, top)
	used := goCommands(t, top)
	for _, s := range []string{"examples/demo.sh", "examples/lab/lab.sh", ".ci/run", ".ci/check-tools"} {
		b, err := os.ReadFile(filepath.Join(top, s))
		if err != nil {
			t.Fatal(err)
		}
		// Shell is parsed loosely: a word counts when it is a command
		// this machine has (an install step missing from the list shows
		// on the machine where it was installed by hand).
		fns := shellFunctions(string(b))
		for _, c := range scriptCommands(string(b)) {
			if _, err := exec.LookPath(c); err == nil && !fns[c] && !strings.Contains(c, "/") {
				used[c] = append(used[c], s)
			}
		}
	}
	var cmds []string
	for c := range used {
		cmds = append(cmds, c)
	}
	sort.Strings(cmds)
	for _, c := range cmds {
		if _, ok := list[c]; ok || slices.Contains(essential, c) {
			continue
		}
		t.Errorf("%s is run (%s) but is neither in .ci/packages nor in every Debian: add \"%s PACKAGE\" to .ci/packages",
			c, strings.Join(slices.Compact(used[c]), ", "), c)
	}
	for _, must := range []string{"ovs-testcontroller", "ovs-vswitchd", "tcpdump", "udhcpc", "node"} {
		if _, ok := used[must]; !ok {
			t.Errorf("the scan found no use of %s: it misses commands", must)
		}
	}
	t.Logf("%d commands checked: %s", len(cmds), strings.Join(cmds, " "))
}

// Every install goes without recommended packages (python3-scapy alone
// pulls about a hundred with them).
func TestInstallsWithoutRecommends(t *testing.T) {
	top := root(t)
	for _, f := range []string{"Makefile", ".ci/run", "examples/demo.sh", "examples/lab/lab.sh", "examples/bench/peers.sh"} {
		b, err := os.ReadFile(filepath.Join(top, f))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "apt-get install") && !strings.Contains(line, "--no-install-recommends") {
				t.Errorf("%s:%d: apt-get install without --no-install-recommends", f, i+1)
			}
		}
	}
}

// .ci/run and the Makefile's deps install exactly the packages of
// .ci/packages: CI starts on a machine without any of them.
func TestCIInstallsThePackageList(t *testing.T) {
	top := root(t)
	want := map[string]bool{}
	for _, pkg := range installList(t, top) {
		want[pkg] = true
	}
	words := func(s string) map[string]bool {
		out := map[string]bool{}
		for _, w := range strings.Fields(strings.ReplaceAll(s, "\\", " ")) {
			if !strings.HasPrefix(w, "-") {
				out[w] = true
			}
		}
		return out
	}
	run, err := os.ReadFile(filepath.Join(top, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)apt-get install -y -q --no-install-recommends (.*?)\n[^ \t]`).FindSubmatch(run)
	if m == nil {
		t.Fatal(".ci/run runs no apt-get install --no-install-recommends")
	}
	mk, err := os.ReadFile(filepath.Join(top, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	dm := regexp.MustCompile(`(?m)^DEB_PKGS := (.*)$`).FindSubmatch(mk)
	if dm == nil {
		t.Fatal("the Makefile has no DEB_PKGS")
	}
	for name, got := range map[string]map[string]bool{".ci/run": words(string(m[1])), "Makefile DEB_PKGS": words(string(dm[1]))} {
		if !maps.Equal(got, want) {
			t.Errorf("%s installs %v; .ci/packages names %v", name, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
	}
}
