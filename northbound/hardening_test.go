package northbound_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/northbound"
)

// serve runs h behind the API's http.Server and connection cap on a
// loopback port.
func serve(t *testing.T, h http.Handler, o northbound.ServerOptions) (string, *northbound.ConnLimiter) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := northbound.NewServer(h, o)
	cl := northbound.LimitListener(l, o)
	go srv.Serve(cl)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), cl
}

func healthy(t *testing.T, addr string) error {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("healthz: %s", resp.Status)
	}
	return nil
}

// waitClosed reads c until the server closes it; it reports whether it
// did before the deadline.
func waitClosed(c net.Conn, deadline time.Time) bool {
	c.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, c)
	return err == nil // EOF: closed by the server; a timeout is an error
}

// 1,000 clients without a token that send a body slowly, and 1,000 that
// keep a connection idle, are all dropped by the server's deadlines while
// /healthz answers throughout. Before, the 401 path drained the bodies
// without a deadline and idle connections were never closed.
func TestSlowAndIdleClientsAreDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("admin admin-token-0123456789\n"), 0o600)
	tokens, err := northbound.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	h := tokens.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte("ok"))
			return
		}
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(204)
	}))
	addr, cl := serve(t, h, northbound.ServerOptions{ReadTimeout: 1 * time.Second, IdleTimeout: 1 * time.Second, MaxConns: 2500})
	const n = 1000
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		return c
	}
	slow := make([]net.Conn, n)
	for i := range slow {
		slow[i] = dial()
		fmt.Fprintf(slow[i], "POST /api/v1/networks HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"na", addr)
	}
	// Idle keep-alive connections: an answered request, then nothing.
	idle := make([]net.Conn, n)
	for i := range idle {
		idle[i] = dial()
		fmt.Fprintf(idle[i], "POST /api/v1/x HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer admin-token-0123456789\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", addr)
	}
	if err := healthy(t, addr); err != nil {
		t.Fatalf("with %d slow and %d idle clients: %v", n, n, err)
	}
	start := time.Now()
	deadline := start.Add(10 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[string]int{}
	for _, set := range []struct {
		name  string
		conns []net.Conn
	}{{"slow-body", slow}, {"idle", idle}} {
		for _, c := range set.conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !waitClosed(c, deadline) {
					mu.Lock()
					open[set.name]++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(open) > 0 {
		t.Fatalf("connections still open after %v: %v", time.Since(start).Round(time.Millisecond), open)
	}
	t.Logf("%d slow-body and %d idle clients dropped within %v", n, n, time.Since(start).Round(time.Millisecond))
	if err := healthy(t, addr); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); cl.Open() > 0 && time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
	}
	if o := cl.Open(); o != 0 {
		t.Errorf("%d connections counted open after all closed", o)
	}
}

// The 401 answer to a client that sends a body slowly comes at once and
// closes the connection (nothing is drained).
func TestUnauthorizedBodyNotDrained(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("admin admin-token-0123456789\n"), 0o600)
	tokens, _ := northbound.LoadTokens(path)
	addr, _ := serve(t, tokens.Guard(http.NotFoundHandler()), northbound.ServerOptions{ReadTimeout: time.Minute})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /api/v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 401 || !resp.Close {
		t.Fatalf("%s, close %v: want 401 and the connection closed", resp.Status, resp.Close)
	}
	if !waitClosed(c, time.Now().Add(5*time.Second)) {
		t.Fatal("the connection stays open after the 401")
	}
}

// Connections beyond MaxConns are closed at once; /healthz answers again
// as soon as some go.
func TestConnectionCap(t *testing.T) {
	addr, cl := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }),
		northbound.ServerOptions{MaxConns: 50})
	var conns []net.Conn
	for range 50 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for end := time.Now().Add(5 * time.Second); cl.Open() < 50 && time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if !waitClosed(extra, time.Now().Add(5*time.Second)) {
		t.Fatal("the 51st connection was not closed")
	}
	if cl.Refused() == 0 {
		t.Error("no refusal counted")
	}
	for _, c := range conns {
		c.Close()
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if healthy(t, addr) == nil {
			return
		}
	}
	t.Fatal("healthz does not answer after the connections closed")
}

// A write without Content-Type: application/json is refused with 415
// (a cross-site form or text/plain POST cannot delete anything), /batch
// included; HEAD is answered wherever GET is.
func TestWritesNeedJSONAndHeadIsServed(t *testing.T) {
	e := newModelEnv(t)
	for _, tc := range []struct {
		method, path, ct string
		want             int
	}{
		{"POST", "/api/v1/batch", "", 415},
		{"POST", "/api/v1/batch", "text/plain", 415},
		{"POST", "/api/v1/networks", "application/x-www-form-urlencoded", 415},
		{"POST", "/api/v1/networks", "multipart/form-data; boundary=x", 415},
		{"PATCH", "/api/v1/networks/blue", "", 415},
		{"PUT", "/api/v1/networks/blue", "", 415},
		{"POST", "/api/v1/networks", "application/json; charset=utf-8", 201},
		{"PATCH", "/api/v1/networks/blue", "application/merge-patch+json", 200},
	} {
		body := `{"name":"blue","type":"vxlan","vni":5001}`
		if tc.method == "PATCH" {
			body = `{"vni":5002}`
		}
		if tc.path == "/api/v1/batch" {
			body = `{"ops":[{"op":"delete","kind":"networks","id":"blue"}]}`
		}
		req, _ := http.NewRequest(tc.method, e.ts.URL+tc.path, strings.NewReader(body))
		if tc.ct != "" {
			req.Header.Set("Content-Type", tc.ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s (%q): %d %s, want %d", tc.method, tc.path, tc.ct, resp.StatusCode, b, tc.want)
		}
		if tc.want == 415 && !strings.Contains(string(b), `"field": "Content-Type"`) {
			t.Errorf("%s %s: %s does not name Content-Type", tc.method, tc.path, b)
		}
	}
	for _, p := range []string{"/api/v1/networks", "/api/v1/networks/blue", "/api/v1/switches", "/healthz", "/api/v1/openapi.json"} {
		resp, err := http.Head(e.ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") == "" {
			t.Errorf("HEAD %s: %s (content type %q)", p, resp.Status, resp.Header.Get("Content-Type"))
		}
	}
	resp, _ := http.Head(e.ts.URL + "/api/v1/networks/nope")
	if resp.StatusCode != 404 {
		t.Errorf("HEAD of a missing network: %s", resp.Status)
	}
}

// Without tokens, the API answers only to a loopback Host (or the listen
// address's) and to requests from its own origin: DNS rebinding and
// cross-site requests get 403.
func TestLocalOnly(t *testing.T) {
	h := northbound.LocalOnly("127.0.0.1:8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }))
	for _, tc := range []struct {
		host, origin string
		want         int
	}{
		{"127.0.0.1:8080", "", 299},
		{"localhost:8080", "", 299},
		{"localhost", "", 299},
		{"[::1]:8080", "", 299},
		{"127.0.0.2:9", "", 299},
		{"127.0.0.1:8080", "http://127.0.0.1:8080", 299},
		{"rebind.attacker.example", "", 403},
		{"rebind.attacker.example:8080", "", 403},
		{"10.0.0.5:8080", "", 403},
		{"", "", 403},
		{"127.0.0.1:8080", "http://evil.example", 403},
		{"127.0.0.1:8080", "http://localhost:3000", 403},
		{"127.0.0.1:8080", "null", 403},
	} {
		req := httptest.NewRequest("POST", "/api/v1/batch", nil)
		req.Host = tc.host
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("Host %q Origin %q: %d, want %d", tc.host, tc.origin, rec.Code, tc.want)
		}
	}
	h = northbound.LocalOnly("[::1]:8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }))
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Host = "[::1]:8080"
	rec := httptest.NewRecorder()
	if h.ServeHTTP(rec, req); rec.Code != 299 {
		t.Errorf("[::1]: %d", rec.Code)
	}
}

// The 2,001st concurrent event stream is answered 503 with Retry-After;
// one more is served once a stream closes. Streams ignore the server's
// read timeout (which would cancel them) and keep their own write
// deadline: a client that stops reading is dropped.
func TestEventStreamCap(t *testing.T) {
	bus := events.NewBus()
	r := mux.NewRouter()
	northbound.EventRoutesWith(bus, northbound.EventOptions{MaxStreams: 2000, Heartbeat: time.Hour})(r.PathPrefix("/api/v1").Subrouter())
	addr, _ := serve(t, r, northbound.ServerOptions{ReadTimeout: 300 * time.Millisecond, MaxConns: 3000})
	open := func() (net.Conn, *http.Response) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /api/v1/events HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		return c, resp
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 2000 {
		c, resp := open()
		conns = append(conns, c)
		if resp.StatusCode != 200 {
			t.Fatalf("stream %d: %s", i+1, resp.Status)
		}
	}
	c, resp := open()
	c.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("stream 2001: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	conns[0].Close()
	conns = conns[1:]
	var ok bool
	for end := time.Now().Add(5 * time.Second); !ok && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		c, resp := open()
		if ok = resp.StatusCode == 200; ok {
			conns = append(conns, c)
		} else {
			c.Close()
		}
	}
	if !ok {
		t.Fatal("no stream served after one closed")
	}
	// Past the server's 300 ms read timeout, streams still get events.
	time.Sleep(600 * time.Millisecond)
	bus.Publish(events.Event{Topic: "model", Type: "created", Kind: "network", ID: "late"})
	br := bufio.NewReader(conns[len(conns)-1])
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream after the read timeout: %v", err)
		}
		if strings.Contains(line, `"id":"late"`) {
			break
		}
	}
}

// A stream whose client stops reading is dropped by its write deadline
// and frees its slot.
func TestEventStreamWriteDeadline(t *testing.T) {
	bus := events.NewBus()
	r := mux.NewRouter()
	northbound.EventRoutesWith(bus, northbound.EventOptions{MaxStreams: 1, WriteTimeout: 200 * time.Millisecond, Heartbeat: time.Hour})(r.PathPrefix("/api/v1").Subrouter())
	addr, _ := serve(t, r, northbound.ServerOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
	// The stream is open (its answer began) and holds the only slot;
	// from now on its client reads nothing.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the stream: %v %v", resp, err)
	}
	if resp, err := http.Get("http://" + addr + "/api/v1/events"); err != nil || resp.StatusCode != 503 {
		t.Fatalf("a second stream while the first holds the slot: %v %v, want 503", resp, err)
	} else {
		resp.Body.Close()
	}
	big := strings.Repeat("x", 64<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		bus.Publish(events.Event{Topic: "model", Type: "created", Object: big})
		time.Sleep(time.Millisecond)
		resp, err := http.Get("http://" + addr + "/api/v1/events")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return // the stuck stream's slot is free again
		}
	}
	t.Fatal("a stream that is not read keeps its slot")
}

// Tokens: the Bearer scheme in any case; a token file line with its fields
// swapped never prints the token; a file others can read is warned of.
func TestTokenHygiene(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("admin admin-token-0123456789\n"), 0o600)
	tokens, err := northbound.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	if w := northbound.TokenFileWarning(path); w != "" {
		t.Errorf("mode 600 warned: %s", w)
	}
	h := tokens.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }))
	for _, auth := range []string{"Bearer admin-token-0123456789", "bearer admin-token-0123456789", "BEARER  admin-token-0123456789 "} {
		req := httptest.NewRequest("GET", "/api/v1/networks", nil)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		if h.ServeHTTP(rec, req); rec.Code != 299 {
			t.Errorf("%q: %d", auth, rec.Code)
		}
	}
	for _, auth := range []string{"Basic admin-token-0123456789", "Bearer", "Bearer ", "admin-token-0123456789", "Beareradmin-token-0123456789"} {
		req := httptest.NewRequest("GET", "/api/v1/networks", nil)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		if h.ServeHTTP(rec, req); rec.Code != 401 {
			t.Errorf("%q: %d, want 401", auth, rec.Code)
		}
	}
	os.WriteFile(path, []byte("secret-token-0123456789 admin\n"), 0o600)
	if _, err := northbound.LoadTokens(path); err == nil || strings.Contains(err.Error(), "secret-token") {
		t.Errorf("swapped fields: %v", err)
	}
	os.Chmod(path, 0o644)
	if w := northbound.TokenFileWarning(path); !strings.Contains(w, "0644") {
		t.Errorf("mode 644: warning %q", w)
	}
}
