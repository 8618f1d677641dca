package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loombench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "ceiling" {
		return runCeiling(args[1:], stderr)
	}
	fs := flag.NewFlagSet("loombench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: loombench [flags]            benchmark a controller (see the package doc)")
		fmt.Fprintln(stderr, "       loombench ceiling --listen A  run the do-nothing controller")
		fs.PrintDefaults()
	}
	var o options
	fs.StringVar(&o.controller, "controller", "tcp:127.0.0.1:6653", "controller address: tcp:HOST:PORT or unix:PATH")
	fs.IntVar(&o.switches, "switches", 16, "emulated switches")
	fs.IntVar(&o.macs, "macs", 1000, "hosts (source MACs) per switch, cycled through")
	fs.StringVar(&o.mode, "mode", "throughput", "throughput or latency")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of one loop")
	fs.IntVar(&o.loops, "loops", 3, "measured loops")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "traffic before the first loop, not measured")
	fs.IntVar(&o.window, "window", 64, "PACKET_INs in flight per switch (throughput mode)")
	fs.BoolVar(&o.buffered, "buffered", false, "buffered PACKET_INs (n_buffers=256, as cbench) instead of whole frames (as Open vSwitch)")
	asJSON := fs.Bool("json", false, "print the result as JSON on stdout")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", 10*time.Second, "time for every switch to connect and complete the handshake")
	fs.DurationVar(&o.settle, "settle", 500*time.Millisecond, "quiet time after the controller's initial burst before traffic starts")
	fs.DurationVar(&o.answerTimeout, "answer-timeout", 2*time.Second, "a PACKET_IN unanswered for this long counts as lost")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	if !*asJSON {
		logf = func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	}
	logf("loombench: %s mode, %d switches x %d MACs, window %d, %s, %d x %v after %v warm-up -> %s",
		o.mode, o.switches, o.macs, map[bool]int{true: 1, false: o.window}[o.mode == "latency"],
		map[bool]string{true: "buffered", false: "unbuffered"}[o.buffered], o.loops, o.duration, o.warmup, o.controller)
	res, err := bench(&o, logf)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printResult(stdout, res)
	return nil
}

func printResult(w io.Writer, r *result) {
	fmt.Fprintf(w, "RESULT: %d switches, %d loops: min/max/avg/stddev = %.0f/%.0f/%.0f/%.0f responses/s\n",
		r.Switches, len(r.Loops), r.Responses.Min, r.Responses.Max, r.Responses.Avg, r.Responses.Stddev)
	fmt.Fprintf(w, "        answered PACKET_INs: min/max/avg/stddev = %.0f/%.0f/%.0f/%.0f per s\n",
		r.Answered.Min, r.Answered.Max, r.Answered.Avg, r.Answered.Stddev)
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "        latency (send to first response, %d samples): mean %.1f µs, p50 %.1f, p90 %.1f, p99 %.1f, max %.1f µs\n",
			l.Count, l.MeanUs, l.P50Us, l.P90Us, l.P99Us, l.MaxUs)
	}
	var notes []string
	if r.Lost > 0 {
		notes = append(notes, fmt.Sprintf("%d PACKET_INs lost (unanswered)", r.Lost))
	}
	if r.Errors > 0 {
		notes = append(notes, fmt.Sprintf("%d OFPT_ERRORs from the controller", r.Errors))
	}
	if r.Unknown > 0 {
		notes = append(notes, fmt.Sprintf("%d unsupported messages", r.Unknown))
	}
	notes = append(notes, r.Disconnects...)
	if len(notes) == 0 {
		notes = []string{"none"}
	}
	fmt.Fprintf(w, "anomalies: %s\n", strings.Join(notes, "; "))
}

func runCeiling(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("loombench ceiling", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "tcp:127.0.0.1:6699", "listen address: tcp:HOST:PORT or unix:PATH")
	if err := fs.Parse(args); err != nil {
		return err
	}
	network, addr, err := splitTarget(*listen)
	if err != nil {
		return err
	}
	if network == "unix" {
		os.Remove(addr)
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "loombench ceiling: listening on %s\n", l.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return ceiling(ctx, l)
}
