// Command loomctl is Loom's command-line client: it talks to loomd's REST
// API.
//
//	loomctl [--api http://127.0.0.1:8080] health
//	loomctl switches
//	loomctl switch DPID          # ports, flows, groups and meters
//	loomctl flows DPID           # desired flows in ovs-ofctl syntax, with owners
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/loom-sdn/loom/northbound"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loomctl:", err)
		os.Exit(1)
	}
}

const usage = `usage: loomctl [--api URL] COMMAND
commands:
  health          controller health
  switches        connected switches
  switch DPID     one switch: ports, flows, groups, meters
  flows DPID      the switch's desired flows (ovs-ofctl syntax) and their owners`

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loomctl", flag.ContinueOnError)
	api := fs.String("api", envOr("LOOM_API", "http://127.0.0.1:8080"), "loomd API base URL (env LOOM_API)")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := client{base: strings.TrimRight(*api, "/"), http: &http.Client{Timeout: 10 * time.Second}}
	a := fs.Args()
	if len(a) == 0 {
		fs.Usage()
		return fmt.Errorf("no command")
	}
	need := func(n int) error {
		if len(a) != n+1 {
			return fmt.Errorf("%s takes %d argument(s)\n%s", a[0], n, usage)
		}
		return nil
	}
	switch a[0] {
	case "health":
		var h map[string]any
		if err := c.get("/healthz", &h); err != nil {
			return err
		}
		fmt.Fprintf(out, "status: %v, switches: %v\n", h["status"], h["switches"])
	case "switches":
		var sws []northbound.Switch
		if err := c.get("/api/v1/switches", &sws); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DATAPATH ID\tREMOTE\tSOFTWARE\tTABLES")
		for _, s := range sws {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", s.DatapathID, s.Remote, s.Software, s.Tables)
		}
		return tw.Flush()
	case "switch", "flows":
		if err := need(1); err != nil {
			return err
		}
		var d northbound.SwitchDetail
		if err := c.get("/api/v1/switches/"+a[1], &d); err != nil {
			return err
		}
		if a[0] == "switch" {
			fmt.Fprintf(out, "switch %s (%s, %s)\nports:\n", d.DatapathID, d.Remote, d.Software)
			for _, p := range d.Ports {
				state := "down"
				if p.Up {
					state = "up"
				}
				fmt.Fprintf(out, "  %d %s %s %s\n", p.Number, p.Name, p.MAC, state)
			}
			for _, g := range d.Groups {
				fmt.Fprintln(out, "group:", g)
			}
			for _, m := range d.Meters {
				fmt.Fprintln(out, "meter:", m)
			}
			fmt.Fprintln(out, "flows:")
		}
		for _, f := range d.Flows {
			fmt.Fprintf(out, "  %-9s %s\n", f.Owner, f.Flow)
		}
	default:
		return fmt.Errorf("unknown command %q\n%s", a[0], usage)
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type client struct {
	base string
	http *http.Client
}

func (c client) get(path string, v any) error {
	resp, err := c.http.Get(c.base + path)
	if err != nil {
		return fmt.Errorf("is loomd running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e northbound.Error
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%s: %s", resp.Status, e.Message)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
