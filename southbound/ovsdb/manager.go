package ovsdb

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Options configures a Manager.
type Options struct {
	// Logger receives the agents' logs (and libovsdb's, below Debug);
	// slog.Default() if nil.
	Logger *slog.Logger
	// OnBinding, if set, is called for every binding change. Each host's
	// events come in order from that host's goroutine, so OnBinding must
	// not block for long, and must not call Manager.Remove or Close.
	OnBinding func(BindingEvent)
	// OnZones, if set, is called with a host's conntrack zones (the
	// bridge's ZoneKeyPrefix keys, by zone user) when the agent first
	// reads them and whenever they change, after that reconciliation's
	// binding events; with nil when the host is removed. Like OnBinding,
	// from the host's goroutine.
	OnZones func(host string, zones map[string]uint16)
	// MaxBackoff caps the delay between reconnection attempts and between
	// retries of a failed reconciliation; 5 s if zero.
	MaxBackoff time.Duration
}

// HostStatus is the state of one managed host.
type HostStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Bridge  string `json:"bridge"`
	// Connected: the agent has an OVSDB session with its monitor.
	Connected bool `json:"connected"`
	// BridgeReady: the bridge matched the configuration at the last
	// reconciliation and ovs-vswitchd has created it (DatapathID is set).
	BridgeReady bool `json:"bridge_ready"`
	// DatapathID is the bridge's datapath_id column as ovs-vswitchd wrote
	// it (16 hex digits), "" until then.
	DatapathID string `json:"datapath_id,omitempty"`
	// LastError is the most recent error (connecting, reading or
	// transacting), kept after recovery; "" if none so far.
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	// ConnectFailures counts failed connection attempts since the last
	// successful connection.
	ConnectFailures int `json:"connect_failures"`
	// Transactions counts the transactions the agent has committed; it
	// does not grow while the host stays in sync.
	Transactions int `json:"transactions"`
	// LastSync is when the host was last found in sync.
	LastSync time.Time `json:"last_sync,omitzero"`
	// Bindings is the number of bound interfaces.
	Bindings int `json:"bindings"`
}

// A Manager runs one agent per host; see the package documentation. Its
// methods may be called from any goroutine.
type Manager struct {
	opts Options

	mu     sync.Mutex
	agents map[string]*agent
	closed bool
}

// NewManager returns a Manager with no hosts.
func NewManager(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = defaultMaxRetry
	}
	opts.MaxBackoff = max(opts.MaxBackoff, minBackoff)
	return &Manager{opts: opts, agents: map[string]*agent{}}
}

// Add starts managing a host. It fails if cfg is invalid or a host of that
// name is managed already.
func (m *Manager) Add(cfg HostConfig) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("ovsdb: manager closed")
	}
	if m.agents[cfg.Name] != nil {
		return fmt.Errorf("ovsdb: host %q is managed already", cfg.Name)
	}
	a := newAgent(cfg, &m.opts)
	m.agents[cfg.Name] = a
	a.start()
	return nil
}

// Update replaces the configuration of host cfg.Name. The agent applies it
// at once, reconnecting if the address changed. A renamed bridge is left as
// it is, like a removed host's.
func (m *Manager) Update(cfg HostConfig) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	m.mu.Lock()
	a := m.agents[cfg.Name]
	m.mu.Unlock()
	if a == nil {
		return fmt.Errorf("ovsdb: host %q is not managed", cfg.Name)
	}
	a.setConfig(cfg)
	return nil
}

// Remove stops managing a host and waits until its agent has stopped,
// after reporting its bindings removed. It deletes nothing in the host's
// database: the bridge keeps its ports, controller and flows.
func (m *Manager) Remove(name string) error {
	m.mu.Lock()
	a := m.agents[name]
	delete(m.agents, name)
	m.mu.Unlock()
	if a == nil {
		return fmt.Errorf("ovsdb: host %q is not managed", name)
	}
	a.stop(true)
	return nil
}

// Close stops every agent (without reporting bindings removed) and waits
// for them. The Manager cannot be used afterwards.
func (m *Manager) Close() {
	m.mu.Lock()
	agents := m.agents
	m.agents, m.closed = map[string]*agent{}, true
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, a := range agents {
		wg.Go(func() { a.stop(false) })
	}
	wg.Wait()
}

// Status returns the status of every host, by name.
func (m *Manager) Status() []HostStatus {
	var st []HostStatus
	for _, a := range m.snapshotAgents() {
		s, _ := a.snapshotStatus()
		st = append(st, s)
	}
	slices.SortFunc(st, func(a, b HostStatus) int { return cmp.Compare(a.Name, b.Name) })
	return st
}

// HostStatus returns the status of one host.
func (m *Manager) HostStatus(name string) (HostStatus, bool) {
	m.mu.Lock()
	a := m.agents[name]
	m.mu.Unlock()
	if a == nil {
		return HostStatus{}, false
	}
	s, _ := a.snapshotStatus()
	return s, true
}

// Bindings returns the bound interfaces of every host, by host and then
// interface name.
func (m *Manager) Bindings() []Binding {
	var bs []Binding
	for _, a := range m.snapshotAgents() {
		_, bound := a.snapshotStatus()
		for _, b := range bound {
			bs = append(bs, b)
		}
	}
	slices.SortFunc(bs, func(a, b Binding) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Interface, b.Interface))
	})
	return bs
}

func (m *Manager) snapshotAgents() []*agent {
	m.mu.Lock()
	defer m.mu.Unlock()
	agents := make([]*agent, 0, len(m.agents))
	for _, a := range m.agents {
		agents = append(agents, a)
	}
	return agents
}
