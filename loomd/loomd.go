// Package loomd is the Loom controller daemon as a library: the command
// line, the store, the model, the view, the OVSDB host manager, the
// OpenFlow runtime and the API, wired together. It links every built-in
// app (apps.go), so Main is the stock loomd (cmd/loomd is one line: a
// call to Main).
//
// A custom build adds apps without patching Loom, as CoreDNS plugins or
// xcaddy modules do: a main package in its own module blank-imports the
// apps' packages (each registers itself in init()) and calls Main; the new
// apps are then known to --apps and --app-opt. examples/plugin is one.
//
//	package main
//
//	import (
//		_ "example.com/you/yourapp"
//		"github.com/loom-sdn/loom/loomd"
//	)
//
//	func main() { loomd.Main() }
package loomd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/apps/lldp"
	"github.com/loom-sdn/loom/cluster"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/northbound"
	"github.com/loom-sdn/loom/southbound/openflow"
	"github.com/loom-sdn/loom/southbound/ovsdb"
	"github.com/loom-sdn/loom/store"
	"github.com/loom-sdn/loom/topology"
	"github.com/loom-sdn/loom/view"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// Main runs loomd with the command line's arguments (os.Args[1:]) until
// SIGTERM or SIGINT, and exits: 0 after a clean stop, 2 on a usage error
// (an unknown flag or app, a malformed --app-opt: nothing has started),
// 1 on any other error. It never returns.
func Main() {
	if err := Run(os.Args[1:]); err != nil {
		var ue usageError
		if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(os.Stderr, "loomd:", err)
			}
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "loomd:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// usageError is a mistake on the command line: loomd exits 2 on it, as
// on an unknown flag.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// appOptions reads --app-opt NAME.KEY=VALUE flags into each app's
// options; an option for an app that does not run is a usage error.
func appOptions(flags []string, apps []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, f := range flags {
		nk, v, ok := strings.Cut(f, "=")
		name, key, ok2 := strings.Cut(nk, ".")
		if !ok || !ok2 || name == "" || key == "" {
			return nil, usageError{fmt.Errorf("--app-opt %q: want NAME.KEY=VALUE", f)}
		}
		if !slices.Contains(apps, name) {
			return nil, usageError{fmt.Errorf("--app-opt %q: app %s does not run (--apps %s)", f, name, strings.Join(apps, ","))}
		}
		if out[name] == nil {
			out[name] = map[string]string{}
		}
		out[name][key] = v
	}
	return out, nil
}

// checkApps refuses unknown app names before anything starts, naming the
// apps this loomd has.
func checkApps(names []string) error {
	if err := controller.CheckApps(names); err != nil {
		return usageError{fmt.Errorf("--apps: %w", err)}
	}
	return nil
}

// Run runs loomd with args (the command line without the program's name)
// until SIGTERM or SIGINT, or until a listener fails. It returns nil after
// a clean stop; switches keep their flows. The apps it can run are those
// registered in this binary (controller.Registered).
func Run(args []string) error {
	fs := flag.NewFlagSet("loomd", flag.ContinueOnError)
	var listens listFlag
	fs.Var(&listens, "openflow-listen", "OpenFlow listen target, repeatable: tcp:HOST:PORT, unix:PATH or ssl:HOST:PORT (default tcp:0.0.0.0:6653)")
	apiListen := fs.String("api-listen", "127.0.0.1:8080", "HTTP API address (/healthz, /metrics, /api/v1); empty disables it")
	tokenFile := fs.String("api-token-file", "", `bearer tokens ("admin|viewer TOKEN" per line); without it the API listens on loopback only`)
	dataDir := fs.String("data-dir", "/var/lib/loom", "directory of the embedded state store")
	storeURL := fs.String("store", "", "state store: etcd:http://A:2379,http://B:2379,... (a cluster several loomd share), bolt:DIR or DIR (default: bbolt in --data-dir)")
	var etcdOpt store.EtcdOptions
	fs.StringVar(&etcdOpt.CAFile, "etcd-ca", "", "CA certificate (PEM) of the etcd servers (etcd: stores)")
	fs.StringVar(&etcdOpt.CertFile, "etcd-cert", "", "client certificate (PEM) for etcd")
	fs.StringVar(&etcdOpt.KeyFile, "etcd-key", "", "client private key (PEM) for etcd")
	fs.StringVar(&etcdOpt.Prefix, "etcd-prefix", "/loom/v1", "prefix of Loom's keys in etcd (one per Loom cluster sharing an etcd)")
	fs.DurationVar(&etcdOpt.DialTimeout, "etcd-dial-timeout", 5*time.Second, "how long loomd waits for etcd at start")
	replicaID := fs.String("replica-id", "", "this loomd's name among the replicas sharing an etcd store (default HOSTNAME-PID)")
	leaseTTL := fs.Duration("lease-ttl", 2*time.Second, "etcd store: the lease of this replica's switch and host elections; a replica that dies loses its switches this long after its last keep-alive (at least 1s)")
	apps := fs.String("apps", "lldp,overlay,router,dhcp,portpolicy,firewall,loadbalancer", "comma-separated apps to run (registered: "+strings.Join(controller.Registered(), ", ")+")")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	var tf openflow.TLSFiles
	fs.StringVar(&tf.Cert, "ssl-cert", "", "controller certificate (PEM) for ssl: listeners")
	fs.StringVar(&tf.Key, "ssl-key", "", "controller private key (PEM) for ssl: listeners")
	fs.StringVar(&tf.CA, "ssl-ca", "", "CA certificate (PEM) that signed the switches' certificates")
	pktInRate := fs.Uint("packet-in-rate", 2000, "per-switch meter on table-miss packet-ins (packets/s); 0 disables it")
	audit := fs.Duration("audit-interval", time.Minute, "how often each switch is re-read and repaired; 0 disables audits")
	bundles := fs.Bool("bundles", true, "apply reconciliations atomically with OpenFlow bundles where the switch supports them")
	lldpInterval := fs.Duration("lldp-interval", lldp.DefaultInterval, "how often the lldp app probes every switch port (the same as --app-opt lldp.interval=DURATION)")
	var appOpts listFlag
	fs.Var(&appOpts, "app-opt", "an app's option, repeatable: NAME.KEY=VALUE (e.g. lldp.interval=2s); an app refuses keys it does not know")
	echo := fs.Duration("echo-interval", 5*time.Second, "idle time before an ECHO_REQUEST; a switch silent for 3x this is dropped")
	maxStreams := fs.Int("api-max-streams", northbound.DefaultMaxStreams, "most /api/v1/events streams open at once (503 beyond); -1 = no limit")
	maxAPIConns := fs.Int("api-max-conns", northbound.DefaultMaxConns, "most HTTP connections open at once (more are closed at once); -1 = no limit")
	maxConns := fs.Int("openflow-max-conns", 4096, "most OpenFlow connections at once (all listeners); more are closed at once; -1: no limit")
	requireDPID := fs.Bool("ssl-require-dpid", false, "ssl: switches must present a certificate whose subject CN (or a DNS SAN) is their datapath id in 16 hex digits")
	maxConnsPerSource := fs.Int("openflow-max-conns-per-source", 64, "most OpenFlow connections from one remote IP address (every unix socket client is one source); -1: no limit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if err := checkApps(splitList(*apps)); err != nil {
		return err
	}
	options, err := appOptions(appOpts, splitList(*apps))
	if err != nil {
		return err
	}
	if slices.Contains(splitList(*apps), lldp.Name) && *lldpInterval != lldp.DefaultInterval {
		if options[lldp.Name] == nil {
			options[lldp.Name] = map[string]string{}
		}
		if _, set := options[lldp.Name]["interval"]; !set {
			options[lldp.Name]["interval"] = lldpInterval.String()
		}
	}
	if len(listens) == 0 {
		listens = listFlag{"tcp:0.0.0.0:6653"}
	}
	if *storeURL == "" {
		*storeURL = "bolt:" + *dataDir
	}
	where, err := store.ParseURL(*storeURL)
	if err != nil {
		return usageError{fmt.Errorf("--store: %w", err)}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	st, err := store.OpenURL(ctx, where, etcdOpt)
	if err != nil {
		return err
	}
	defer st.Close()

	bus := events.NewBus()
	topo := topology.New(topology.Options{Events: bus})
	svc, err := model.New(ctx, st.Interface, bus)
	if err != nil {
		return fmt.Errorf("network model: %w", err)
	}
	if len(where.Etcd) > 0 { // other loomd may write the model too
		go func() {
			// Follow returns on an error of the store's watch: follow
			// again (it resumes from the model's revision), or this
			// replica would stop seeing the others' writes.
			for ctx.Err() == nil {
				err := svc.Follow(ctx)
				if ctx.Err() != nil {
					return
				}
				log.Error("network model: following the store failed; following again", "error", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Replicas on etcd: elections for switches and hosts.
	var ctlRef atomic.Pointer[controller.Controller]
	var mastership controller.Mastership
	var hostLead hostLeader
	var replicas *cluster.Cluster
	var clusterView northbound.ClusterInfo
	replicaName := ""
	if e, ok := st.Interface.(*store.Etcd); ok {
		hosts := newHostElections(log)
		keepAlive := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "loom", Name: "etcd_keepalive_seconds",
			Help: "Round trips of this replica's lease keep-alives to etcd.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
		reg.MustRegister(keepAlive)
		copts := cluster.Options{Client: e.Client(), ID: *replicaID, Address: *apiListen, TTL: *leaseTTL, Log: log,
			OnKeepAlive: func(d time.Duration) { keepAlive.Observe(d.Seconds()) }}
		sopts, hopts := copts, copts
		sopts.Prefix, sopts.OnRole = etcdOpt.Prefix+"/cluster/switches", toController(&ctlRef)
		hopts.Prefix, hopts.OnRole = etcdOpt.Prefix+"/cluster/hosts", hosts.onRole
		if replicas, err = cluster.Join(ctx, sopts); err != nil {
			return err
		}
		defer replicas.Close()
		if hosts.c, err = cluster.Join(ctx, hopts); err != nil {
			return err
		}
		defer hosts.c.Close()
		mastership, hostLead = switchMastership{replicas, log}, hosts
		registerClusterMetrics(reg, replicas, hosts.c)
		clusterView = clusterInfo{replicas, hosts.c}
		replicaName = replicas.ID()
		log.Info("replica of a loomd cluster", "replica", replicas.ID(), "lease_ttl", *leaseTTL)
	}
	go declareEndpoints(ctx, svc, topo, log)
	v := view.New()
	go feedView(ctx, svc, v)
	pub, bind := publishBinding(bus), bindView(v)
	hosts := ovsdb.NewManager(ovsdb.Options{Logger: log, OnBinding: func(e ovsdb.BindingEvent) { bind(e); pub(e) },
		OnZones: v.SetZones})
	defer hosts.Close()
	ctl, err := controller.New(ctx, controller.Config{
		Apps:          splitList(*apps),
		PacketInRate:  uint32(*pktInRate),
		AuditInterval: *audit,
		Bundles:       *bundles,
		Observer:      switchRecorder(st, replicaName, log),
		Events:        bus,
		Services:      kit.Services(v, topo),
		AppOptions:    options,
		Mastership:    mastership,
	}, log, reg)
	if err != nil {
		return err
	}
	ctlRef.Store(ctl)

	go manageHosts(ctx, svc, hosts, v, ctl.FlushConntrackZones, hostLead, log)

	srv := &openflow.Server{Config: openflow.Config{EchoInterval: *echo,
		MaxConns: *maxConns, MaxConnsPerSource: *maxConnsPerSource, RequireCertDPID: *requireDPID}, Handler: ctl, Log: log}
	errc := make(chan error, len(listens)+1)
	for _, target := range listens {
		l, err := openflow.Listen(target, tf)
		if err != nil {
			return err
		}
		log.Info("openflow listening", "target", target, "addr", l.Addr().String())
		go func() { errc <- srv.Serve(ctx, l) }()
	}
	var api *http.Server
	if *apiListen != "" {
		health := backendHealth(ctl)
		mounts := []northbound.Mount{northbound.EventRoutesWith(bus, northbound.EventOptions{MaxStreams: *maxStreams}),
			northbound.TopologyRoutes(topo), northbound.ModelRoutes(svc, northbound.WithBackendHealth(health)), northbound.StatusRoutes(svc, hosts, ctl, v, health), northbound.FabricRoutes(hosts, ctl, v, topo, health),
			northbound.OpenAPIRoutes()}
		if clusterView != nil {
			mounts = append(mounts, northbound.ClusterRoutes(clusterView))
		}
		handler := northbound.Handler(ctl, reg, mounts...)
		addr := *apiListen
		if *tokenFile != "" {
			tokens, err := northbound.LoadTokens(*tokenFile)
			if err != nil {
				return fmt.Errorf("--api-token-file: %w", err)
			}
			if w := northbound.TokenFileWarning(*tokenFile); w != "" {
				log.Warn("--api-token-file: " + w)
			}
			handler = tokens.Guard(handler)
		} else {
			var changed bool
			if addr, changed, err = northbound.LoopbackOnly(addr); err != nil {
				return fmt.Errorf("--api-listen: %w", err)
			}
			if changed {
				log.Warn("no --api-token-file: the API listens on loopback only", "asked", *apiListen, "listening", addr)
			} else {
				log.Info("no --api-token-file: the API is unauthenticated and listens on loopback only")
			}
			handler = northbound.LocalOnly(addr, handler)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("--api-listen: %w", err)
		}
		opts := northbound.ServerOptions{MaxConns: *maxAPIConns, Log: log}
		api = northbound.NewServer(handler, opts)
		log.Info("api listening", "addr", l.Addr().String())
		go func() {
			if err := api.Serve(northbound.LimitListener(l, opts)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	var tables []string
	for _, t := range ctl.Tables() {
		tables = append(tables, fmt.Sprintf("%d:%s", ctl.Pipeline().ID(t), t.Name))
	}
	log.Info("loomd started", "apps", *apps, "pipeline", strings.Join(tables, " "), "store", where.String())

	select {
	case <-ctx.Done():
	case err = <-errc:
		stop()
	}
	// Switches keep their flows: closing the sessions does not touch them.
	log.Info("shutting down; switch flows stay in place")
	if api != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		api.Shutdown(sctx)
		cancel()
	}
	srv.Wait()
	ctl.Wait()
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// switchRecorder keeps a record of every switch seen in the store; a
// replica of a cluster (replica not empty) keeps its own records
// (DPID@REPLICA), since every replica sees every switch.
func switchRecorder(st *store.Store, replica string, log *slog.Logger) func(controller.SwitchInfo, bool) {
	type record struct {
		DatapathID       string    `json:"datapath_id"`
		Remote           string    `json:"remote"`
		Software         string    `json:"software,omitempty"`
		Connected        bool      `json:"connected"`
		LastConnected    time.Time `json:"last_connected"`
		LastDisconnected time.Time `json:"last_disconnected,omitzero"`
	}
	return func(info controller.SwitchInfo, up bool) {
		dpid := fmt.Sprintf("%016x", info.DatapathID)
		key := dpid
		if replica != "" {
			key += "@" + replica
		}
		var r record
		_ = st.Get("switches", key, &r)
		r.DatapathID, r.Remote, r.Software, r.Connected = dpid, info.Remote, info.Desc.Software, up
		if up {
			r.LastConnected = time.Now().UTC()
		} else {
			r.LastDisconnected = time.Now().UTC()
		}
		if err := st.Put("switches", key, r); err != nil {
			log.Warn("cannot record switch", "dpid", key, "error", err)
		}
	}
}
