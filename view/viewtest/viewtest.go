// Package viewtest gives app tests a network model on a throw-away store
// and a view fed from it: create objects, bind ports, compile.
package viewtest

import (
	"context"
	"testing"

	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/store"
	"github.com/loom-sdn/loom/view"
)

// Lab is a model service and a view of it.
type Lab struct {
	T    testing.TB
	Svc  *model.Service
	View *view.View
}

// New opens a model on a store in a temporary directory.
func New(t testing.TB) *Lab {
	t.Helper()
	st, err := store.OpenBolt(t.TempDir(), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := model.New(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Lab{T: t, Svc: svc, View: view.New()}
}

// Meta names an object.
func Meta(name string) model.Meta { return model.Meta{Name: name} }

// Create creates objects in order, failing the test on an error, and
// shows the model to the view.
func (l *Lab) Create(objs ...model.Object) {
	l.T.Helper()
	for _, o := range objs {
		if _, err := l.Svc.Create(context.Background(), o); err != nil {
			l.T.Fatalf("create %s %s: %v", o.Kind(), o.Base().Name, err)
		}
	}
	l.View.SetModel(l.Svc.Snapshot())
}

// Patch applies a JSON merge patch to an object and shows the model to
// the view.
func (l *Lab) Patch(k model.Kind, name, patch string) {
	l.T.Helper()
	if _, err := l.Svc.Patch(context.Background(), k, name, []byte(patch), 0); err != nil {
		l.T.Fatalf("patch %s %s: %v", k, name, err)
	}
	l.View.SetModel(l.Svc.Snapshot())
}

// Bind binds a port to an interface of a host.
func (l *Lab) Bind(port, host, iface string, ofport uint32) {
	l.View.Bind(view.Binding{Port: port, Host: host, Interface: iface, OFPort: ofport, Up: true})
}

// DPID is a host's datapath id.
func (l *Lab) DPID(host string) uint64 {
	l.T.Helper()
	d, ok := l.View.Snapshot().DatapathID(host)
	if !ok {
		l.T.Fatalf("no host %s", host)
	}
	return d
}
