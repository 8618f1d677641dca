// Package cluster decides, among the loomd replicas that share an etcd
// cluster, which one is the master of each switch: one election per
// switch, held in etcd, whose winner's key revision is the OpenFlow role
// generation id it sends the switch.
//
// # Elections
//
// Every replica the switch is connected to is a candidate: it puts the
// key PREFIX/switches/DPID/REPLICA, attached to its lease. The candidate
// whose key has the lowest create revision is the master. A master's key
// only goes when its replica resigns or its lease ends, and a new key
// always has a higher revision than every key before it, so each new
// master's revision is higher than its predecessor's: used as the
// generation id of ROLE_REQUEST, it makes a deposed master's requests
// stale at the switch (OFPRRFC_STALE), whatever it still believes.
//
// One watch on the prefix follows every election (no goroutine per
// switch, and none of concurrency.Election's Campaign, which does not
// return when its session ends).
//
// # Balance
//
// The preferred master of a switch is the candidate that ranks first by
// rendezvous hashing of (replica, datapath id): each of N replicas is
// preferred for about 1/N of the switches, and a replica that joins or
// leaves moves only its own share. A master that is not the preferred
// candidate hands over: it deletes its key and puts it again (now the
// last in line), and the next candidate becomes master. Its flows are
// already right, so the new master's reconciliation sends nothing.
//
// # Leases
//
// A replica's keys live on its lease (TTL, default 2 s). The lease ends
// TTL after the last keep-alive etcd received; the replica considers
// itself no one's master once TTL/2 has passed since the last keep-alive
// it sent that was answered (3/4 of the TTL), before etcd can have given
// its switches to another replica. It then joins again with a new lease, its candidacies last in
// line.
package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Options configure a replica's membership.
type Options struct {
	// Client is the etcd client (required).
	Client *clientv3.Client
	// Prefix is where the cluster's keys live (default /loom/v1/cluster).
	Prefix string
	// ID names this replica, unique in the cluster (default
	// hostname-pid).
	ID string
	// Address is what other replicas and GET /cluster show for it (its
	// API address, say).
	Address string
	// TTL is the lease's time to live (default 2 s, at least 1 s): a
	// replica that dies loses its switches TTL after its last
	// keep-alive.
	TTL time.Duration
	// OnRole is told of every change of this replica's role for a switch
	// it is a candidate for, in order, from one goroutine: it must not
	// block for long.
	OnRole func(dpid uint64, r Role)
	// Log, if set, logs membership and lease changes.
	Log *slog.Logger
	// OnKeepAlive, if set, is told how long each answered keep-alive
	// took (etcd's latency as this replica sees it).
	OnKeepAlive func(rtt time.Duration)
}

// Role is this replica's part in one switch's election.
type Role struct {
	// Master: this replica is the switch's master.
	Master bool
	// Generation is the master's key revision (0: no master known): the
	// generation id of a MASTER request (by the master) or SLAVE request
	// (by the others).
	Generation uint64
	// MasterID is the master's replica id ("" none).
	MasterID string
}

// Member is a replica of the cluster.
type Member struct {
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
	Lease   int64  `json:"lease"`
	// Candidate and Master count the switches it is a candidate for and
	// the master of.
	Candidate int `json:"candidate"`
	Master    int `json:"master"`
}

type candidate struct {
	id  string
	rev int64
}

// Cluster is this replica's membership.
type Cluster struct {
	opt      Options
	cli      *clientv3.Client
	members  string // key prefixes
	switches string

	mu        sync.Mutex
	lease     clientv3.LeaseID
	alive     bool                   // the lease is believed alive
	lastAck   time.Time              // the last keep-alive answer
	peers     map[string]Member      // by id, from their member keys
	elections map[uint64][]candidate // by datapath id, by create revision
	mine      map[uint64]bool        // the switches this replica is a candidate for
	roles     map[uint64]Role        // as last reported
	handing   map[uint64]int64       // hand-overs under way: the revision of the key given up
	events    chan func()            // OnRole calls, in order
	stats     Stats

	done   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Stats count what the cluster did.
type Stats struct {
	RoleChanges, HandOvers, LeaseLosses, Rejoins int64
}

// Join makes this replica a member: a lease, its member key, and a watch
// on every election. It fails when etcd does not answer.
func Join(ctx context.Context, opt Options) (*Cluster, error) {
	if opt.Client == nil {
		return nil, errors.New("cluster: no etcd client")
	}
	if opt.Prefix == "" {
		opt.Prefix = "/loom/v1/cluster"
	}
	opt.Prefix = strings.TrimSuffix(opt.Prefix, "/")
	if opt.ID == "" {
		h, _ := os.Hostname()
		opt.ID = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	if strings.Contains(opt.ID, "/") {
		return nil, fmt.Errorf("cluster: replica id %q has a /", opt.ID)
	}
	if opt.TTL == 0 {
		opt.TTL = 2 * time.Second
	}
	opt.TTL = max(opt.TTL, time.Second)
	c := &Cluster{opt: opt, cli: opt.Client, members: opt.Prefix + "/members/", switches: opt.Prefix + "/switches/",
		peers: map[string]Member{}, elections: map[uint64][]candidate{}, mine: map[uint64]bool{},
		roles: map[uint64]Role{}, handing: map[uint64]int64{}, events: make(chan func(), 4096), done: make(chan struct{})}
	if err := c.grant(ctx); err != nil {
		return nil, err
	}
	rev, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(3)
	go func() { defer c.wg.Done(); c.watch(rctx, rev+1) }()
	go func() { defer c.wg.Done(); c.keepAlive(rctx) }()
	go func() { defer c.wg.Done(); c.deliver(rctx) }()
	return c, nil
}

// ID is this replica's id.
func (c *Cluster) ID() string { return c.opt.ID }

// grant takes a new lease and puts the member key on it.
func (c *Cluster) grant(ctx context.Context) error {
	l, err := c.cli.Grant(ctx, int64((c.opt.TTL+time.Second-1)/time.Second))
	if err != nil {
		return fmt.Errorf("cluster: lease: %w", err)
	}
	v, _ := json.Marshal(Member{ID: c.opt.ID, Address: c.opt.Address, Lease: int64(l.ID)})
	if _, err := c.cli.Put(ctx, c.members+c.opt.ID, string(v), clientv3.WithLease(l.ID)); err != nil {
		return fmt.Errorf("cluster: member key: %w", err)
	}
	c.mu.Lock()
	c.lease, c.alive, c.lastAck = l.ID, true, time.Now()
	c.mu.Unlock()
	return nil
}

// load reads the members and elections, and returns the revision read at.
func (c *Cluster) load(ctx context.Context) (int64, error) {
	resp, err := c.cli.Get(ctx, c.opt.Prefix+"/", clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("cluster: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peers, c.elections = map[string]Member{}, map[uint64][]candidate{}
	for _, kv := range resp.Kvs {
		c.apply(string(kv.Key), kv.Value, kv.CreateRevision, false)
	}
	c.recompute()
	return resp.Header.Revision, nil
}

// apply takes one key's put or delete into the state (mu held).
func (c *Cluster) apply(key string, value []byte, createRev int64, deleted bool) {
	if id, ok := strings.CutPrefix(key, c.members); ok {
		if deleted {
			delete(c.peers, id)
			return
		}
		var m Member
		if json.Unmarshal(value, &m) == nil {
			m.ID = id
			c.peers[id] = m
		}
		return
	}
	rest, ok := strings.CutPrefix(key, c.switches)
	if !ok {
		return
	}
	d, id, ok := strings.Cut(rest, "/")
	dpid, err := strconv.ParseUint(d, 16, 64)
	if !ok || err != nil {
		return
	}
	cands := slices.DeleteFunc(c.elections[dpid], func(x candidate) bool { return x.id == id })
	if !deleted {
		cands = append(cands, candidate{id, createRev})
		slices.SortFunc(cands, func(a, b candidate) int { return cmp.Compare(a.rev, b.rev) })
	}
	if len(cands) == 0 {
		delete(c.elections, dpid)
	} else {
		c.elections[dpid] = cands
	}
}

func (c *Cluster) switchKey(dpid uint64) string {
	return c.switches + strconv.FormatUint(dpid, 16) + "/" + c.opt.ID
}

// Campaign makes this replica a candidate for the switch dpid (it is
// connected to it). Its role comes through OnRole.
func (c *Cluster) Campaign(ctx context.Context, dpid uint64) error {
	c.mu.Lock()
	c.mine[dpid] = true
	lease := c.lease
	c.mu.Unlock()
	return c.candidacy(ctx, dpid, lease)
}

// candidacy puts the candidate key if it is not there.
func (c *Cluster) candidacy(ctx context.Context, dpid uint64, lease clientv3.LeaseID) error {
	k := c.switchKey(dpid)
	_, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, "", clientv3.WithLease(lease))).Commit()
	if err != nil {
		return fmt.Errorf("cluster: campaign for %016x: %w", dpid, err)
	}
	return nil
}

// Withdraw ends this replica's candidacy for dpid (it is no longer
// connected to it).
func (c *Cluster) Withdraw(ctx context.Context, dpid uint64) error {
	c.mu.Lock()
	delete(c.mine, dpid)
	c.mu.Unlock()
	_, err := c.cli.Delete(ctx, c.switchKey(dpid))
	return err
}

// Role returns this replica's role for dpid as it stands.
func (c *Cluster) Role(dpid uint64) Role {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roleOf(dpid)
}

// Guard returns a compare that holds while this replica is dpid's
// master with the generation it has now: a master's etcd writes about
// the switch put it in their transaction, so that a deposed master's
// fail. ok is false when it is not the master.
func (c *Cluster) Guard(dpid uint64) (cmp clientv3.Cmp, ok bool) {
	r := c.Role(dpid)
	if !r.Master {
		return clientv3.Cmp{}, false
	}
	return clientv3.Compare(clientv3.CreateRevision(c.switchKey(dpid)), "=", int64(r.Generation)), true
}

// Members returns the cluster's replicas, by id, with their switch counts.
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Member, 0, len(c.peers))
	for _, m := range c.peers {
		m.Candidate, m.Master = 0, 0
		for _, cands := range c.elections {
			for i, x := range cands {
				if x.id == m.ID {
					m.Candidate++
					if i == 0 {
						m.Master++
					}
				}
			}
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Stats returns what the cluster did so far.
func (c *Cluster) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Done is closed when the cluster is closed.
func (c *Cluster) Done() <-chan struct{} { return c.done }

// Close ends the membership: its candidacies and member key go with
// its lease (revoked), so the other replicas take its switches at once.
func (c *Cluster) Close() error {
	c.mu.Lock()
	lease := c.lease
	c.alive = false
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	close(c.done)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.cli.Revoke(ctx, lease)
	return err
}

// roleOf is this replica's role for dpid (mu held).
func (c *Cluster) roleOf(dpid uint64) Role {
	cands := c.elections[dpid]
	if len(cands) == 0 {
		return Role{}
	}
	lead := cands[0]
	// A key being handed over is no one's mastership any more: this
	// replica stops before it deletes the key.
	master := c.alive && lead.id == c.opt.ID && c.handing[dpid] != lead.rev
	return Role{Master: master, Generation: uint64(lead.rev), MasterID: lead.id}
}

// recompute reports the roles that changed and starts the hand-overs
// balance asks for (mu held).
func (c *Cluster) recompute() {
	for dpid, rev := range c.handing {
		if !slices.ContainsFunc(c.elections[dpid], func(x candidate) bool { return x.id == c.opt.ID && x.rev == rev }) {
			delete(c.handing, dpid) // the key given up is gone
		}
	}
	for dpid := range c.mine {
		r := c.roleOf(dpid)
		if old, ok := c.roles[dpid]; !ok || old != r {
			c.roles[dpid] = r
			c.stats.RoleChanges++
			if c.opt.OnRole != nil {
				fn, d := c.opt.OnRole, dpid
				select {
				case c.events <- func() { fn(d, r) }:
				default:
					// Full: deliver in a goroutine rather than block the
					// watch (order across switches does not matter;
					// per switch, the latest role is read at delivery).
					go func() { fn(d, c.Role(d)) }()
				}
			}
		}
		if r.Master {
			c.balance(dpid)
		}
	}
	for dpid := range c.roles {
		if !c.mine[dpid] {
			delete(c.roles, dpid)
		}
	}
}

// balance hands dpid over to its preferred candidate when this replica,
// its master, is not (mu held). It stops being master first (its
// OnRole told), then deletes its key and puts it again, last in line.
func (c *Cluster) balance(dpid uint64) {
	cands := c.elections[dpid]
	best, bestScore := "", uint64(0)
	for _, x := range cands {
		if _, live := c.peers[x.id]; !live {
			continue
		}
		if s := score(x.id, dpid); best == "" || s > bestScore {
			best, bestScore = x.id, s
		}
	}
	if best == "" || best == c.opt.ID {
		return
	}
	rev := cands[0].rev
	c.handing[dpid] = rev
	c.stats.HandOvers++
	r := c.roleOf(dpid)
	c.roles[dpid] = r
	told := make(chan struct{})
	fn := c.opt.OnRole
	c.events <- func() {
		if fn != nil {
			fn(dpid, r)
		}
		close(told)
	}
	lease, k := c.lease, c.switchKey(dpid)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), c.opt.TTL)
		defer cancel()
		select {
		case <-told:
		case <-ctx.Done():
		}
		// Delete the key only if it is still the one given up, then put
		// it again (a new create revision), unless the candidacy ended.
		resp, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", rev)).
			Then(clientv3.OpDelete(k)).Commit()
		if err != nil || !resp.Succeeded {
			c.log("hand-over failed", "dpid", dpid, "error", err)
			c.mu.Lock()
			if c.handing[dpid] == rev {
				delete(c.handing, dpid)
				c.recompute()
			}
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		still := c.mine[dpid]
		c.mu.Unlock()
		if still {
			if err := c.candidacy(ctx, dpid, lease); err != nil {
				c.log("hand-over: candidacy again failed", "dpid", dpid, "error", err)
			}
		}
	}()
}

// score ranks replica id for dpid (rendezvous hashing): the id's hash
// and the datapath id through a 64-bit finalizer (splitmix64), so that
// every bit of both moves every bit of the score (FNV alone lets the
// id decide the top bits for datapath ids that differ in a few bits).
func score(id string, dpid uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return mix64(h.Sum64() ^ mix64(dpid))
}

func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// watch follows the prefix from rev, reloading when the watch fails.
func (c *Cluster) watch(ctx context.Context, rev int64) {
	for ctx.Err() == nil {
		wc := c.cli.Watch(clientv3.WithRequireLeader(ctx), c.opt.Prefix+"/", clientv3.WithPrefix(), clientv3.WithRev(rev))
		for resp := range wc {
			if err := resp.Err(); err != nil {
				break
			}
			c.mu.Lock()
			for _, ev := range resp.Events {
				c.apply(string(ev.Kv.Key), ev.Kv.Value, ev.Kv.CreateRevision, ev.Type == clientv3.EventTypeDelete)
			}
			c.recompute()
			c.mu.Unlock()
			rev = resp.Header.Revision + 1
		}
		if ctx.Err() != nil {
			return
		}
		// Compacted, or the member lost its leader: start over from a
		// fresh read.
		time.Sleep(100 * time.Millisecond)
		lctx, cancel := context.WithTimeout(ctx, c.opt.TTL)
		r, err := c.load(lctx)
		cancel()
		if err == nil {
			rev = r + 1
		}
	}
}

// keepAlive keeps the lease alive with a keep-alive every TTL/6 (the
// client library's own sends one every TTL/3, too few to notice a
// loss in time), gives up mastership when none has been answered for
// 3/4 of the TTL since it was sent (etcd holds the lease at least TTL
// past that), and joins again with a new lease once the lease is lost.
// Every TTL it also looks at the elections again, for hand-overs held
// back.
func (c *Cluster) keepAlive(ctx context.Context) {
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.watchdog(ctx) }()
	tick := time.NewTicker(c.opt.TTL / 6)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.mu.Lock()
		lease, alive := c.lease, c.alive
		c.mu.Unlock()
		lost := !alive // the watchdog gave up on it
		if !lost {
			sent := time.Now()
			kctx, cancel := context.WithTimeout(ctx, c.opt.TTL/3)
			_, err := c.cli.KeepAliveOnce(kctx, lease)
			cancel()
			c.mu.Lock()
			if err == nil && c.lease == lease {
				c.lastAck = sent
			}
			c.mu.Unlock()
			if err == nil && c.opt.OnKeepAlive != nil {
				c.opt.OnKeepAlive(time.Since(sent))
			}
			lost = errors.Is(err, rpctypes.ErrLeaseNotFound)
		}
		if lost {
			c.mu.Lock()
			c.demote("lease lost")
			c.mu.Unlock()
			c.rejoin(ctx)
		}
	}
}

// watchdog gives up mastership when no keep-alive sent in the last 3/4
// of the TTL was answered, whatever the keep-alives in flight are doing,
// and every TTL looks at the elections again (hand-overs held back).
func (c *Cluster) watchdog(ctx context.Context) {
	tick := time.NewTicker(min(50*time.Millisecond, c.opt.TTL/20))
	defer tick.Stop()
	lastLook := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.mu.Lock()
		if c.alive && time.Since(c.lastAck) > c.opt.TTL*3/4 {
			c.demote("keep-alives unanswered")
		}
		var missing []uint64
		var lease clientv3.LeaseID
		if time.Since(lastLook) > c.opt.TTL {
			lastLook = time.Now()
			c.recompute()
			missing, lease = c.missing(), c.lease
		}
		c.mu.Unlock()
		if len(missing) > 0 {
			// Candidacies that failed (etcd busy at Campaign, a
			// hand-over's put lost): put them again.
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				for _, dpid := range missing {
					cctx, cancel := context.WithTimeout(ctx, c.opt.TTL)
					c.candidacy(cctx, dpid, lease)
					cancel()
				}
			}()
		}
	}
}

// missing returns the switches this replica is a candidate for whose
// key the elections do not show, while its lease is alive and no
// hand-over is under way (mu held).
func (c *Cluster) missing() []uint64 {
	if !c.alive {
		return nil
	}
	var out []uint64
	for dpid := range c.mine {
		if _, handing := c.handing[dpid]; handing {
			continue
		}
		if !slices.ContainsFunc(c.elections[dpid], func(x candidate) bool { return x.id == c.opt.ID }) {
			out = append(out, dpid)
		}
	}
	return out
}

// demote makes this replica no one's master until it joins again (mu
// held): etcd may give its switches away at lastAck+TTL.
func (c *Cluster) demote(why string) {
	if !c.alive {
		return
	}
	c.alive = false
	c.stats.LeaseLosses++
	c.recompute()
	c.log(why+": no longer master of any switch", "since_last_keepalive", time.Since(c.lastAck).Round(time.Millisecond))
}

// rejoin takes a new lease and puts the member and candidate keys again,
// retrying until it works or ctx ends.
func (c *Cluster) rejoin(ctx context.Context) {
	for ctx.Err() == nil {
		gctx, cancel := context.WithTimeout(ctx, c.opt.TTL)
		c.mu.Lock()
		old := c.lease
		c.mu.Unlock()
		c.cli.Revoke(gctx, old) // the old keys, if they outlived us
		err := c.grant(gctx)
		if err == nil {
			c.mu.Lock()
			c.stats.Rejoins++
			lease, mine := c.lease, slices.Collect(maps.Keys(c.mine))
			c.recompute()
			c.mu.Unlock()
			for _, dpid := range mine {
				if err = c.candidacy(gctx, dpid, lease); err != nil {
					break
				}
			}
		}
		cancel()
		if err == nil {
			c.log("joined again with a new lease")
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(c.opt.TTL / 4):
		}
	}
}

// deliver makes the OnRole calls, in order.
func (c *Cluster) deliver(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case fn := <-c.events:
			fn()
		}
	}
}

func (c *Cluster) log(msg string, args ...any) {
	if c.opt.Log != nil {
		c.opt.Log.Info("cluster: "+msg, append([]any{"replica", c.opt.ID}, args...)...)
	}
}
