package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/cache"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"

	"github.com/loom-sdn/loom/southbound/ovsdb/vswitchd"
)

// Timeouts of an agent's OVSDB requests.
const (
	connectTimeout  = 5 * time.Second  // dial, and the initial monitor
	requestTimeout  = 10 * time.Second // a transaction or cache read
	probeInterval   = 5 * time.Second  // echo on a connection this often
	healthInterval  = time.Second      // check that the client still has its connection
	minBackoff      = 250 * time.Millisecond
	defaultMaxRetry = 5 * time.Second
)

var (
	errDisconnected = errors.New("connection to OVSDB lost")
	errReconfigured = errors.New("address changed")
)

// An agent manages one host: its goroutine (run) owns the connection and
// all working state; the fields under mu are what it publishes.
type agent struct {
	log    *slog.Logger
	logr   logr.Logger
	opts   *Options
	cancel context.CancelFunc
	done   chan struct{}
	// cfgChanged wakes the goroutine after Manager.Update set cfg.
	cfgChanged chan struct{}

	mu           sync.Mutex
	cfg          HostConfig
	status       HostStatus
	bound        map[string]Binding // by interface name
	zones        map[string]uint16  // last reported (OnZones); nil before the first report
	unbindOnStop bool               // report every binding removed on exit
}

func newAgent(cfg HostConfig, opts *Options) *agent {
	log := opts.Logger.With("host", cfg.Name)
	return &agent{
		log:        log,
		logr:       libovsdbLogger(log),
		opts:       opts,
		done:       make(chan struct{}),
		cfgChanged: make(chan struct{}, 1),
		cfg:        cfg,
		status:     HostStatus{Name: cfg.Name, Address: cfg.Address, Bridge: cfg.Bridge},
		bound:      map[string]Binding{},
	}
}

// start runs the agent until stop.
func (a *agent) start() {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go a.run(ctx)
}

// stop stops the agent and waits until it has. With unbind, the agent
// first reports all its bindings removed.
func (a *agent) stop(unbind bool) {
	a.mu.Lock()
	a.unbindOnStop = unbind
	a.mu.Unlock()
	a.cancel()
	<-a.done
}

// setConfig hands the agent a new configuration.
func (a *agent) setConfig(cfg HostConfig) {
	a.mu.Lock()
	a.cfg = cfg
	a.status.Address, a.status.Bridge = cfg.Address, cfg.Bridge
	a.mu.Unlock()
	poke(a.cfgChanged)
}

func (a *agent) config() HostConfig {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// poke does a non-blocking send on a channel with a buffer of one, so a
// burst of pokes wakes the receiver once.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run connects, serves the connection until it is lost, and reconnects
// with backoff, until ctx is done.
func (a *agent) run(ctx context.Context) {
	defer close(a.done)
	defer a.finish()
	bo := backoff{min: minBackoff, max: a.opts.MaxBackoff}
	var lastErr string
	for {
		cfg := a.config()
		served, err := a.session(ctx, cfg)
		if ctx.Err() != nil {
			return
		}
		if served {
			bo.reset()
			lastErr = ""
		}
		if errors.Is(err, errReconfigured) {
			continue
		}
		a.setError(err)
		d := bo.next()
		a.mu.Lock()
		a.status.Connected, a.status.BridgeReady = false, false
		if !served {
			a.status.ConnectFailures++
		}
		a.mu.Unlock()
		// Log a failure once, not at every retry.
		level, msg := slog.LevelWarn, "ovsdb: connection lost"
		if !served {
			msg = "ovsdb: cannot connect"
			if err.Error() == lastErr {
				level = slog.LevelDebug
			}
		}
		lastErr = err.Error()
		a.log.Log(ctx, level, msg, "address", cfg.Address, "err", err, "retry_in", d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		case <-a.cfgChanged:
		}
	}
}

// finish reports the bindings removed if the agent was asked to.
func (a *agent) finish() {
	a.mu.Lock()
	unbind, old := a.unbindOnStop, a.bound
	a.bound = map[string]Binding{}
	a.mu.Unlock()
	if unbind {
		a.emit(diffBindings(old, nil))
		if a.opts.OnZones != nil {
			a.opts.OnZones(a.config().Name, nil)
		}
	}
}

// session connects to cfg.Address and reconciles after every change it
// sees, until the connection is lost, the address changes or ctx is done.
// served reports whether the connection came up with its monitor.
func (a *agent) session(ctx context.Context, cfg HostConfig) (served bool, err error) {
	dbModel, err := vswitchd.FullDatabaseModel()
	if err != nil {
		return false, err
	}
	c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(cfg.Address), client.WithLogger(&a.logr))
	if err != nil {
		return false, err
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := c.Connect(cctx); err != nil {
		return false, err // libovsdb's error names the address
	}
	// Without WithReconnect, libovsdb drops the connection's cache when
	// it is lost; the next session starts from a new client.
	defer c.Close()
	lost := make(chan struct{})
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		select {
		case <-c.DisconnectNotify():
			close(lost)
		case <-stopWatch:
		}
	}()
	changed := make(chan struct{}, 1)
	c.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(string, model.Model) { poke(changed) },
		UpdateFunc: func(string, model.Model, model.Model) { poke(changed) },
		DeleteFunc: func(string, model.Model) { poke(changed) },
	})
	if _, err := c.Monitor(cctx, monitored(c)); err != nil {
		return false, fmt.Errorf("monitor %s: %w", cfg.Address, err)
	}
	a.mu.Lock()
	a.status.Connected, a.status.ConnectFailures = true, 0
	a.mu.Unlock()
	a.log.Info("ovsdb: connected", "address", cfg.Address)

	health := time.NewTicker(healthInterval)
	defer health.Stop()
	lastProbe := time.Now()
	retry := time.NewTimer(0) // the first reconciliation
	defer retry.Stop()
	bo := backoff{min: minBackoff, max: a.opts.MaxBackoff}
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-lost:
			return true, errDisconnected
		case <-a.cfgChanged:
			newCfg := a.config()
			if newCfg.Address != cfg.Address {
				return true, errReconfigured
			}
			cfg = newCfg
		case <-changed:
		case <-retry.C:
		case now := <-health.C:
			if c.CurrentEndpoint() == "" {
				return true, errDisconnected
			}
			if now.Sub(lastProbe) < probeInterval {
				continue
			}
			lastProbe = now
			pctx, cancel := context.WithTimeout(ctx, probeInterval)
			err := c.Echo(pctx)
			cancel()
			if err != nil {
				return true, fmt.Errorf("echo: %w", err)
			}
			continue
		}
		if err := a.reconcile(ctx, c, cfg); err != nil {
			if ctx.Err() != nil {
				return true, ctx.Err()
			}
			d := bo.next()
			a.setError(err)
			a.log.Warn("ovsdb: reconcile failed", "err", err, "retry_in", d.Round(time.Millisecond))
			retry.Reset(d)
		} else {
			bo.reset()
		}
	}
}

// reconcile reads the cache, sends one transaction if anything differs from
// cfg, updates the status and reports binding changes.
func (a *agent) reconcile(ctx context.Context, c client.Client, cfg HostConfig) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	s, err := readSnapshot(rctx, c, cfg.Bridge)
	if err != nil {
		return err
	}
	t := &txn{c: c}
	if !cfg.Observe {
		ensureHost(t, s, cfg)
	}
	if t.err != nil {
		a.setReady(s, false)
		return t.err
	}
	inSync := len(t.ops) == 0
	if !inSync {
		start := time.Now()
		if err := t.commit(rctx); err != nil {
			a.setReady(s, false)
			return fmt.Errorf("transaction %v: %w", t.changes, err)
		}
		a.mu.Lock()
		a.status.Transactions++
		a.mu.Unlock()
		a.log.Info("ovsdb: ensured", "bridge", cfg.Bridge, "changes", t.changes,
			"ops", len(t.ops), "took", time.Since(start).Round(time.Microsecond))
		// The monitor reports the transaction's rows, which triggers
		// another reconciliation that finds the host in sync.
	}
	a.setReady(s, inSync)

	a.mu.Lock()
	bound := bindings(cfg.Name, s, a.bound)
	evs := diffBindings(a.bound, bound)
	if len(evs) > 0 {
		a.bound = bound
	}
	a.status.Bindings = len(bound)
	a.mu.Unlock()
	a.emit(evs)
	// Zones after bindings: whoever allocates zones from them sees the
	// bindings first.
	if zones := bridgeZones(s.bridge); a.zones == nil || !maps.Equal(zones, a.zones) {
		a.zones = zones
		a.log.Info("ovsdb: zones", "count", len(zones))
		if a.opts.OnZones != nil {
			a.opts.OnZones(cfg.Name, maps.Clone(zones))
		}
	}
	return nil
}

// setReady records the bridge's state as read in s; inSync reports whether
// it matched the configuration.
func (a *agent) setReady(s *snapshot, inSync bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status.DatapathID = ""
	if s.bridge != nil && s.bridge.DatapathID != nil {
		a.status.DatapathID = *s.bridge.DatapathID
	}
	a.status.BridgeReady = inSync && a.status.DatapathID != ""
	if inSync {
		a.status.LastSync = time.Now()
	}
}

func (a *agent) setError(err error) {
	a.mu.Lock()
	a.status.LastError, a.status.LastErrorTime = err.Error(), time.Now()
	a.mu.Unlock()
}

// emit reports binding events, in order, from the agent's goroutine.
func (a *agent) emit(evs []BindingEvent) {
	for _, ev := range evs {
		a.log.Info("ovsdb: binding "+ev.Type.String(), "iface_id", ev.IfaceID, "interface", ev.Interface,
			"ofport", ev.OFPort, "mac", ev.MAC, "admin_up", ev.AdminUp, "link_up", ev.LinkUp)
		if a.opts.OnBinding != nil {
			a.opts.OnBinding(ev)
		}
	}
}

// snapshotStatus returns the agent's status and bindings.
func (a *agent) snapshotStatus() (HostStatus, map[string]Binding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, maps.Clone(a.bound)
}

// backoff yields exponentially growing delays with ±20% jitter.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return time.Duration(float64(b.cur) * (0.8 + 0.4*rand.Float64()))
}

func (b *backoff) reset() { b.cur = 0 }
