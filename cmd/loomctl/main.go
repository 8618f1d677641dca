// Command loomctl is Loom's command-line client for loomd's REST API.
//
//	loomctl [--api URL] [--token T] [-o table|json] COMMAND ...
//
// The API address and token also come from LOOM_API and LOOM_TOKEN.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/loom-sdn/loom/northbound/restapi"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loomctl:", err)
		os.Exit(1)
	}
}

// Kinds are the model's kinds as the API's URLs name them (model.Kinds();
// TestKindsAreTheModels keeps them equal: loomctl links no model).
var Kinds = []string{"hosts", "networks", "subnets", "ports", "port-groups", "routers", "security-groups",
	"load-balancers", "floating-ips", "mirrors", "flow-exports"}

var usage = `usage: loomctl [--api URL] [--token TOKEN] [-o table|json] COMMAND
commands:
  health                          controller health
  switches                        connected switches
  switch DPID                     one switch: ports, desired flows, groups, meters
  flows DPID                      desired against installed flows, with owners and counters
  topology                        switches, links and endpoints
  list KIND [FIELD=VALUE...]      list objects, filtered (e.g. list ports network=blue)
  get KIND NAME|ID                one object
  create KIND FIELD=VALUE...      create an object (values are JSON when they parse as JSON:
                                  vni=5001 dhcp=false ips='["10.1.0.11"]'); or -f FILE.json
  update KIND NAME|ID FIELD=VALUE...  change fields (PATCH); or -f FILE.json
  delete KIND NAME|ID             delete an object
  batch FILE.json|-               creates, updates, patches and deletes of any kinds in one transaction, all
                                  or nothing: {"ops": [{"op": "create", "kind": "ports", "object": {...}},
                                  {"op": "patch", "kind": "ports", "id": "vm1", "patch": {...}},
                                  {"op": "delete", "kind": "ports", "id": "vm2"}]} (or just the array);
                                  - (or no FILE) reads stdin; also -f FILE.json
kinds: ` + strings.Join(Kinds, " ")

type options struct {
	out    io.Writer
	format string
	file   string
	c      client
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loomctl", flag.ContinueOnError)
	api := fs.String("api", envOr("LOOM_API", "http://127.0.0.1:8080"), "loomd API base URL (env LOOM_API)")
	token := fs.String("token", os.Getenv("LOOM_TOKEN"), "bearer token (env LOOM_TOKEN)")
	o := options{out: out}
	fs.StringVar(&o.format, "o", "table", "output: table or json")
	fs.StringVar(&o.file, "f", "", "create/update: read the object from this JSON file (- for stdin); batch: the ops")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.format != "table" && o.format != "json" {
		return fmt.Errorf("-o %s: want table or json", o.format)
	}
	o.c = client{base: strings.TrimRight(*api, "/"), token: *token, http: &http.Client{Timeout: 15 * time.Second}}
	a := fs.Args()
	if len(a) == 0 {
		fs.Usage()
		return fmt.Errorf("no command")
	}
	cmd, rest := a[0], a[1:]
	need := func(n int, exact bool) error {
		if len(rest) < n || exact && len(rest) != n {
			return fmt.Errorf("%s: wrong number of arguments\n%s", cmd, usage)
		}
		return nil
	}
	switch cmd {
	case "health":
		return o.show("/healthz", func(v any) error {
			h := v.(map[string]any)
			fmt.Fprintf(out, "status: %v, switches: %v\n", h["status"], h["switches"])
			return nil
		})
	case "switches":
		return o.show("/api/v1/switches", func(any) error {
			var sws []restapi.Switch
			if err := o.c.do("GET", "/api/v1/switches", nil, &sws); err != nil {
				return err
			}
			rows := [][]string{{"DATAPATH ID", "REMOTE", "SOFTWARE", "TABLES"}}
			for _, s := range sws {
				rows = append(rows, []string{s.DatapathID, s.Remote, s.Software, fmt.Sprint(s.Tables)})
			}
			return table(out, rows)
		})
	case "switch":
		if err := need(1, true); err != nil {
			return err
		}
		path := "/api/v1/switches/" + url.PathEscape(rest[0])
		return o.show(path, func(any) error {
			var d restapi.SwitchDetail
			if err := o.c.do("GET", path, nil, &d); err != nil {
				return err
			}
			fmt.Fprintf(out, "switch %s (%s, %s)\n", d.DatapathID, d.Remote, d.Software)
			rows := [][]string{{"PORT", "NAME", "MAC", "STATE"}}
			for _, p := range d.Ports {
				rows = append(rows, []string{fmt.Sprint(p.Number), p.Name, p.MAC, map[bool]string{true: "up", false: "down"}[p.Up]})
			}
			table(out, rows)
			for _, g := range d.Groups {
				fmt.Fprintln(out, "group:", g)
			}
			for _, m := range d.Meters {
				fmt.Fprintln(out, "meter:", m)
			}
			rows = [][]string{{"OWNER", "FLOW"}}
			for _, f := range d.Flows {
				rows = append(rows, []string{f.Owner, f.Flow})
			}
			return table(out, rows)
		})
	case "flows":
		if err := need(1, true); err != nil {
			return err
		}
		path := "/api/v1/switches/" + url.PathEscape(rest[0]) + "/flows"
		return o.show(path, func(any) error {
			var fv []restapi.FlowView
			if err := o.c.do("GET", path, nil, &fv); err != nil {
				return err
			}
			rows := [][]string{{"STATE", "OWNER", "PACKETS", "FLOW"}}
			for _, f := range fv {
				rows = append(rows, []string{f.State, f.Owner, fmt.Sprint(f.Packets), f.Flow})
				if f.Installed != "" {
					rows = append(rows, []string{"", "", "", "installed: " + f.Installed})
				}
			}
			return table(out, rows)
		})
	case "topology":
		return o.show("/api/v1/topology", func(v any) error { return topologyTable(out, v) })
	case "list":
		if err := need(1, false); err != nil {
			return err
		}
		q := url.Values{}
		for _, kv := range rest[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("filter %q: want FIELD=VALUE", kv)
			}
			q.Set(k, v)
		}
		path := "/api/v1/" + url.PathEscape(rest[0])
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		return o.show(path, func(v any) error { return objectsTable(out, v) })
	case "get":
		if err := need(2, true); err != nil {
			return err
		}
		return o.show("/api/v1/"+url.PathEscape(rest[0])+"/"+url.PathEscape(rest[1]), func(v any) error { return objectsTable(out, v) })
	case "create", "update":
		n := 1
		method, path := "POST", ""
		if cmd == "update" {
			n, method = 2, "PATCH"
		}
		if err := need(n, false); err != nil {
			return err
		}
		path = "/api/v1/" + url.PathEscape(rest[0])
		if cmd == "update" {
			path += "/" + url.PathEscape(rest[1])
		}
		body, err := o.body(rest[n:])
		if err != nil {
			return err
		}
		var v any
		if err := o.c.do(method, path, body, &v); err != nil {
			return err
		}
		return o.render(v, func(v any) error { return objectsTable(out, v) })
	case "delete":
		if err := need(2, true); err != nil {
			return err
		}
		if err := o.c.do("DELETE", "/api/v1/"+url.PathEscape(rest[0])+"/"+url.PathEscape(rest[1]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(out, "deleted %s %s\n", rest[0], rest[1])
		return nil
	case "batch":
		if len(rest) > 1 || len(rest) == 1 && o.file != "" {
			return fmt.Errorf("batch: give one FILE.json, - or -f FILE.json\n%s", usage)
		}
		src := o.file
		if len(rest) == 1 {
			src = rest[0]
		}
		body, ops, err := batchBody(src)
		if err != nil {
			return err
		}
		// A batch of 10,000 ops is validated and written in one go.
		o.c.http.Timeout = 2 * time.Minute
		var v any
		if err := o.c.do("POST", "/api/v1/batch", body, &v); err != nil {
			return err
		}
		return o.render(v, func(v any) error { return batchTable(out, ops, v) })
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// show GETs path and renders it as JSON or with the table function.
func (o options) show(path string, tableFn func(any) error) error {
	var v any
	if err := o.c.do("GET", path, nil, &v); err != nil {
		return err
	}
	return o.render(v, tableFn)
}

func (o options) render(v any, tableFn func(any) error) error {
	if o.format == "json" {
		enc := json.NewEncoder(o.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return tableFn(v)
}

// body builds a request body from -f or FIELD=VALUE arguments.
func (o options) body(kvs []string) ([]byte, error) {
	if o.file != "" {
		if len(kvs) > 0 {
			return nil, fmt.Errorf("give -f or FIELD=VALUE arguments, not both")
		}
		if o.file == "-" {
			return io.ReadAll(os.Stdin)
		}
		return os.ReadFile(o.file)
	}
	obj := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q: want FIELD=VALUE", kv)
		}
		var j any
		if err := json.Unmarshal([]byte(v), &j); err == nil {
			obj[k] = j
		} else {
			obj[k] = v
		}
	}
	return json.Marshal(obj)
}

// batchBody reads a batch from src (a file; "-" or "" for stdin):
// {"ops": [...]} or just the array of ops. It returns the request body and
// the ops.
func batchBody(src string) ([]byte, []map[string]any, error) {
	name := src
	var raw []byte
	var err error
	if src == "" || src == "-" {
		name = "stdin"
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(src)
	}
	if err != nil {
		return nil, nil, err
	}
	var doc struct {
		Ops []map[string]any `json:"ops"`
	}
	trimmed := bytes.TrimSpace(raw)
	if bytes.HasPrefix(trimmed, []byte("[")) {
		err = json.Unmarshal(trimmed, &doc.Ops)
		raw = append(append([]byte(`{"ops":`), trimmed...), '}')
	} else {
		err = json.Unmarshal(trimmed, &doc)
	}
	if err != nil || doc.Ops == nil {
		if err == nil {
			err = fmt.Errorf("no ops")
		}
		return nil, nil, fmt.Errorf(`%s: want {"ops": [{"op": "create", "kind": "networks", "object": {...}}, ...]} or the array of ops: %v`, name, err)
	}
	return raw, doc.Ops, nil
}

// batchTable prints one row per op: what it did and the object it left.
func batchTable(out io.Writer, ops []map[string]any, v any) error {
	m, _ := v.(map[string]any)
	objs, _ := m["objects"].([]any)
	rows := [][]string{{"#", "OP", "KIND", "NAME", "ID", "REVISION"}}
	for i, o := range objs {
		var op map[string]any
		if i < len(ops) {
			op = ops[i]
		}
		row := []string{fmt.Sprint(i), cell(op["op"]), cell(op["kind"]), cell(op["id"]), "", ""}
		if obj, ok := o.(map[string]any); ok {
			row[3], row[4], row[5] = cell(obj["name"]), cell(obj["id"]), cell(obj["revision"])
		}
		rows = append(rows, row)
	}
	return table(out, rows)
}

// objectsTable prints one object (as FIELD VALUE lines) or a list of
// objects (one row each: id, name, then the other scalar fields).
func objectsTable(out io.Writer, v any) error {
	items, isList := listItems(v)
	if !isList {
		obj, _ := v.(map[string]any)
		keys := sortedKeys(obj)
		var rows [][]string
		for _, k := range keys {
			rows = append(rows, []string{k, cell(obj[k])})
		}
		return table(out, rows)
	}
	cols := []string{"id", "name"}
	seen := map[string]bool{"id": true, "name": true, "created_at": true, "updated_at": true}
	for _, it := range items {
		for _, k := range sortedKeys(it) {
			if !seen[k] {
				seen[k] = true
				cols = append(cols, k)
			}
		}
	}
	rows := [][]string{upper(cols)}
	for _, it := range items {
		var r []string
		for _, c := range cols {
			r = append(r, cell(it[c]))
		}
		rows = append(rows, r)
	}
	return table(out, rows)
}

// listItems accepts a JSON array or a page object {"items": [...]}.
func listItems(v any) ([]map[string]any, bool) {
	var raw []any
	switch t := v.(type) {
	case []any:
		raw = t
	case map[string]any:
		items, ok := t["items"].([]any)
		if !ok {
			return nil, false
		}
		raw = items
	default:
		return nil, false
	}
	out := make([]map[string]any, 0, len(raw))
	for _, r := range raw {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out, true
}

// topologyTable prints the topology as three aligned tables.
func topologyTable(out io.Writer, v any) error {
	t, _ := v.(map[string]any)
	sections := []struct {
		name string
		cols []string
		row  func(m map[string]any) []string
	}{
		{"nodes", []string{"SWITCH", "PORTS", "SINCE"}, func(m map[string]any) []string {
			ports, _ := m["ports"].([]any)
			return []string{cell(m["id"]), fmt.Sprint(len(ports)), cell(m["since"])}
		}},
		{"links", []string{"SOURCE", "TARGET", "BIDIRECTIONAL", "LAST SEEN"}, func(m map[string]any) []string {
			return []string{cell(m["source"]) + ":" + cell(m["source_port"]), cell(m["target"]) + ":" + cell(m["target_port"]),
				cell(m["bidirectional"]), cell(m["last_seen"])}
		}},
		{"endpoints", []string{"MAC", "IPS", "SWITCH", "PORT", "SOURCE"}, func(m map[string]any) []string {
			return []string{cell(m["mac"]), cell(m["ips"]), cell(m["switch"]), cell(m["port"]), cell(m["source"])}
		}},
	}
	for _, sec := range sections {
		items, _ := listItems(map[string]any{"items": t[sec.name]})
		fmt.Fprintf(out, "%s (%d)\n", strings.ToUpper(sec.name), len(items))
		if len(items) == 0 {
			continue
		}
		rows := [][]string{sec.cols}
		for _, it := range items {
			rows = append(rows, sec.row(it))
		}
		if err := table(out, rows); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func upper(s []string) []string {
	out := make([]string, len(s))
	for i, c := range s {
		out[i] = strings.ToUpper(c)
	}
	return out
}

// cell renders a JSON value for a table cell.
func cell(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case float64:
		return fmt.Sprint(t)
	case bool:
		return fmt.Sprint(t)
	}
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

func table(out io.Writer, rows [][]string) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type client struct {
	base, token string
	http        *http.Client
}

// do sends a request; a non-2xx answer becomes an error carrying the API's
// message and field.
func (c client) do(method, path string, body []byte, v any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("is loomd running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e restapi.Error
		json.NewDecoder(resp.Body).Decode(&e)
		if e.Field != "" {
			return fmt.Errorf("%s: %s (field %s)", resp.Status, e.Message, e.Field)
		}
		return fmt.Errorf("%s: %s", resp.Status, e.Message)
	}
	if v == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
