package model

import (
	"cmp"
	"iter"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Kind names a kind of object; it is also the store kind and the Kind of
// the change events.
type Kind string

// The kinds.
const (
	KindHost          Kind = "host"
	KindNetwork       Kind = "network"
	KindSubnet        Kind = "subnet"
	KindPort          Kind = "port"
	KindPortGroup     Kind = "port_group"
	KindRouter        Kind = "router"
	KindSecurityGroup Kind = "security_group"
	KindLoadBalancer  Kind = "load_balancer"
	KindFloatingIP    Kind = "floating_ip"
)

// KindInfo describes a kind: the table the Service, the REST routes and
// the OpenAPI document are all driven by.
type KindInfo struct {
	Kind Kind
	// Title is the type's name ("PortGroup"); Path the REST collection
	// ("port-groups").
	Title, Path string
	// Type is the object's struct type (Network, not *Network).
	Type reflect.Type
	// Filters are the list filters besides name: the reference fields,
	// plus aliases (host for a router's gateway_host).
	Filters []string

	validate func(c *check, obj Object) *Error
	set      func(s *Snapshot) anySet
}

var kinds = []*KindInfo{
	info[Host](KindHost, "hosts", func(s *Snapshot) anySet { return &s.Hosts }, validateHost),
	info[Network](KindNetwork, "networks", func(s *Snapshot) anySet { return &s.Networks }, validateNetwork),
	info[Subnet](KindSubnet, "subnets", func(s *Snapshot) anySet { return &s.Subnets }, validateSubnet),
	info[Port](KindPort, "ports", func(s *Snapshot) anySet { return &s.Ports }, validatePort),
	info[PortGroup](KindPortGroup, "port-groups", func(s *Snapshot) anySet { return &s.PortGroups }, validatePortGroup),
	info[Router](KindRouter, "routers", func(s *Snapshot) anySet { return &s.Routers }, validateRouter),
	info[SecurityGroup](KindSecurityGroup, "security-groups", func(s *Snapshot) anySet { return &s.SecurityGroups }, validateSecurityGroup),
	info[LoadBalancer](KindLoadBalancer, "load-balancers", func(s *Snapshot) anySet { return &s.LoadBalancers }, validateLoadBalancer),
	info[FloatingIP](KindFloatingIP, "floating-ips", func(s *Snapshot) anySet { return &s.FloatingIPs }, validateFloatingIP),
	info[Mirror](KindMirror, "mirrors", func(s *Snapshot) anySet { return &s.Mirrors }, validateMirror),
	info[FlowExport](KindFlowExport, "flow-exports", func(s *Snapshot) anySet { return &s.FlowExports }, validateFlowExport),
}

// filterAliases maps a list filter to the reference field it reads.
var filterAliases = map[Kind]map[string]string{KindRouter: {"host": "gateway_host"}}

func info[T any, PT interface {
	*T
	Object
}](k Kind, path string, set func(*Snapshot) anySet, validate func(*check, PT) *Error) *KindInfo {
	t := reflect.TypeFor[T]()
	ki := &KindInfo{Kind: k, Title: t.Name(), Path: path, Type: t, set: set,
		validate: func(c *check, o Object) *Error { return validate(c, o.(PT)) }}
	seen := map[string]bool{}
	walkRefs(reflect.New(t).Interface().(Object), func(r ref) {
		f, _, _ := strings.Cut(r.path, "[")
		if !seen[f] && !strings.Contains(r.path, ".") {
			seen[f] = true
			ki.Filters = append(ki.Filters, f)
		}
	})
	// Fields of empty slices are not walked; add them from the type.
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if sf.Tag.Get("ref") != "" && !seen[name] {
			seen[name] = true
			ki.Filters = append(ki.Filters, name)
		}
	}
	for alias := range filterAliases[k] {
		ki.Filters = append(ki.Filters, alias)
	}
	slices.Sort(ki.Filters)
	return ki
}

// Kinds returns the kinds in the fixed order of their declaration above:
// the one list every other (the API's routes, its OpenAPI enum, loomctl's
// help) derives from.
func Kinds() []*KindInfo { return kinds }

// Info returns the description of kind k, or nil.
func Info(k Kind) *KindInfo {
	for _, ki := range kinds {
		if ki.Kind == k {
			return ki
		}
	}
	return nil
}

// New returns a new empty object of the kind.
func (ki *KindInfo) New() Object { return reflect.New(ki.Type).Interface().(Object) }

// refKind is the kind the top-level reference field f refers to.
func (ki *KindInfo) refKind(f string) Kind {
	for i := range ki.Type.NumField() {
		sf := ki.Type.Field(i)
		if n, _, _ := strings.Cut(sf.Tag.Get("json"), ","); n == f {
			return Kind(sf.Tag.Get("ref"))
		}
	}
	return ""
}

// ref is one reference field of an object: its JSON path, the kind it
// refers to and the field itself. An entry of a list (list) must never be
// empty; a scalar one must not be when it is required (struct tag
// required:"true"), and else empty means none.
type ref struct {
	path     string
	kind     Kind
	id       *string
	list     bool
	required bool
}

// walkRefs calls fn for every reference (struct tag ref:"kind") of o, in
// field order: each scalar reference field, empty or not, and each entry
// of a list of references (null entries decode as empty ones).
func walkRefs(o Object, fn func(ref)) {
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			if sf.Anonymous {
				continue // Meta
			}
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			p := name
			if path != "" {
				p = path + "." + name
			}
			fv := v.Field(i)
			k := Kind(sf.Tag.Get("ref"))
			switch {
			case k != "" && fv.Kind() == reflect.String:
				fn(ref{p, k, fv.Addr().Interface().(*string), false, sf.Tag.Get("required") == "true"})
			case k != "" && fv.Kind() == reflect.Slice:
				for j := range fv.Len() {
					fn(ref{p + "[" + strconv.Itoa(j) + "]", k, fv.Index(j).Addr().Interface().(*string), true, false})
				}
			case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
				for j := range fv.Len() {
					walk(fv.Index(j), p+"["+strconv.Itoa(j)+"]")
				}
			case fv.Kind() == reflect.Pointer && fv.Type().Elem().Kind() == reflect.Struct && !fv.IsNil():
				walk(fv.Elem(), p)
			}
		}
	}
	walk(reflect.ValueOf(o).Elem(), "")
}

// anySet is the kind-independent view of a Set.
type anySet interface {
	get(id string) (Object, bool)
	lookup(ref string) (Object, bool)
	put(o Object)
	del(id string)
	clone()
	each(fn func(Object))
	sorted() []Object
	len() int
}

// Set is the objects of one kind in a Snapshot, by id and by name. It is
// immutable: share it freely, never modify what it returns.
type Set[T Object] struct {
	byID   map[string]T
	byName map[string]T
}

// Get returns the object with this id.
func (s *Set[T]) Get(id string) (T, bool) {
	o, ok := s.byID[id]
	return o, ok
}

// ByName returns the object with this name.
func (s *Set[T]) ByName(name string) (T, bool) {
	o, ok := s.byName[name]
	return o, ok
}

// Lookup returns the object with this id or, failing that, this name.
func (s *Set[T]) Lookup(idOrName string) (T, bool) {
	if o, ok := s.byID[idOrName]; ok {
		return o, true
	}
	return s.ByName(idOrName)
}

// Len is the number of objects.
func (s *Set[T]) Len() int { return len(s.byID) }

// All iterates over the objects by id, in no particular order.
func (s *Set[T]) All() iter.Seq2[string, T] {
	return func(yield func(string, T) bool) {
		for id, o := range s.byID {
			if !yield(id, o) {
				return
			}
		}
	}
}

// Sorted returns the objects sorted by name.
func (s *Set[T]) Sorted() []T {
	out := make([]T, 0, len(s.byID))
	for _, o := range s.byID {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(a.Base().Name, b.Base().Name) })
	return out
}

func (s *Set[T]) get(id string) (Object, bool)   { return s.Get(id) }
func (s *Set[T]) lookup(r string) (Object, bool) { return s.Lookup(r) }
func (s *Set[T]) len() int                       { return len(s.byID) }

func (s *Set[T]) sorted() []Object {
	out := make([]Object, 0, len(s.byID))
	for _, o := range s.Sorted() {
		out = append(out, o)
	}
	return out
}

func (s *Set[T]) each(fn func(Object)) {
	for _, o := range s.byID {
		fn(o)
	}
}

func (s *Set[T]) put(o Object) {
	t := o.(T)
	if old, ok := s.byID[t.Base().ID]; ok {
		delete(s.byName, old.Base().Name)
	}
	s.byID[t.Base().ID] = t
	s.byName[t.Base().Name] = t
}

func (s *Set[T]) del(id string) {
	if old, ok := s.byID[id]; ok {
		delete(s.byName, old.Base().Name)
		delete(s.byID, id)
	}
}

// clone gives s its own maps (copy on write).
func (s *Set[T]) clone() {
	if s.byID == nil {
		s.byID, s.byName = map[string]T{}, map[string]T{}
		return
	}
	s.byID, s.byName = maps.Clone(s.byID), maps.Clone(s.byName)
}

// Snapshot is the whole model at one revision. It is immutable and costs
// nothing to take (Service.Snapshot); a write builds the next one, copying
// only the set of the kind it changed (a batch, Service.Apply: the sets of
// the kinds it changed, each once).
type Snapshot struct {
	// Revision is the store revision of the last model write.
	Revision       uint64
	Hosts          Set[*Host]
	Networks       Set[*Network]
	Subnets        Set[*Subnet]
	Ports          Set[*Port]
	PortGroups     Set[*PortGroup]
	Routers        Set[*Router]
	SecurityGroups Set[*SecurityGroup]
	LoadBalancers  Set[*LoadBalancer]
	FloatingIPs    Set[*FloatingIP]
	Mirrors        Set[*Mirror]
	FlowExports    Set[*FlowExport]

	// changes is the writes since Revision changesFrom, oldest first
	// (shared between snapshots: only the newest appends).
	changes     []Change
	changesFrom uint64

	// idx is the index of a write's working snapshot (see index; nil in
	// committed ones).
	idx *index
}

// Change is one object written: a single write is one Change, a batch
// (Service.Apply) one per object it wrote, all at its revision.
type Change struct {
	Revision uint64
	Kind     Kind
	ID       string
}

const changeLogSize = 4096

// ChangesSince returns the changes after revision rev, oldest first, and
// false when the snapshot's log does not reach back that far (callers
// then compare whole snapshots).
func (s *Snapshot) ChangesSince(rev uint64) ([]Change, bool) {
	if rev > s.Revision || rev < s.changesFrom {
		return nil, false
	}
	i, _ := slices.BinarySearchFunc(s.changes, rev+1, func(c Change, r uint64) int { return cmp.Compare(c.Revision, r) })
	return s.changes[i:len(s.changes):len(s.changes)], true
}

func emptySnapshot() *Snapshot {
	s := &Snapshot{}
	for _, ki := range kinds {
		set := ki.set(s)
		// clone of a nil map allocates empty ones.
		set.clone()
	}
	return s
}

// Get returns the object of kind k with this id.
func (s *Snapshot) Get(k Kind, id string) (Object, bool) { return Info(k).set(s).get(id) }

// Lookup returns the object of kind k with this id or name.
func (s *Snapshot) Lookup(k Kind, idOrName string) (Object, bool) {
	return Info(k).set(s).lookup(idOrName)
}

// Len is the number of objects of kind k.
func (s *Snapshot) Len(k Kind) int { return Info(k).set(s).len() }

// List returns the objects of kind k sorted by name, filtered: "name"
// keeps the object of that name; a reference field ("network", ... see
// KindInfo.Filters) keeps the objects referring to that object (given by
// name or id). An unknown filter is an invalid-field error naming it.
func (s *Snapshot) List(k Kind, filters map[string]string) ([]Object, error) {
	ki := Info(k)
	type want struct {
		field string
		ids   []string
	}
	var wants []want
	name, byName := filters["name"]
	for f, v := range filters {
		if f == "name" {
			continue
		}
		if !slices.Contains(ki.Filters, f) {
			return nil, invalidf(f, "%s cannot be filtered by %s (filters: name, %s)", ki.Path, f, strings.Join(ki.Filters, ", "))
		}
		if a, ok := filterAliases[k][f]; ok {
			f = a
		}
		ids := []string{v}
		if o, ok := s.Lookup(ki.refKind(f), v); ok {
			ids = []string{o.Base().ID}
		}
		wants = append(wants, want{f, ids})
	}
	out := []Object{}
	ki.set(s).each(func(o Object) {
		if byName && o.Base().Name != name {
			return
		}
		for _, w := range wants {
			hit := false
			walkRefs(o, func(r ref) {
				if f, _, _ := strings.Cut(r.path, "["); f == w.field && slices.Contains(w.ids, *r.id) {
					hit = true
				}
			})
			if !hit {
				return
			}
		}
		out = append(out, o)
	})
	slices.SortFunc(out, func(a, b Object) int { return cmp.Compare(a.Base().Name, b.Base().Name) })
	return out, nil
}

// appendChanges appends a write's changes (one revision) to a change log
// that reaches back to revision from; past changeLogSize entries it keeps
// the newest half, or the whole newest write if that is longer (a batch).
// It returns the log and the revision it now reaches back to.
func appendChanges(log []Change, from uint64, add []Change) ([]Change, uint64) {
	log = append(log, add...)
	if len(log) <= changeLogSize {
		return log, from
	}
	cut := min(len(log)-changeLogSize/2, len(log)-len(add))
	if cut == 0 {
		return log, from
	}
	// Every change after log[cut-1].Revision is kept (a write cut in two
	// keeps its newer part: harmless, ChangesSince skips it).
	return slices.Clone(log[cut:]), log[cut-1].Revision
}
