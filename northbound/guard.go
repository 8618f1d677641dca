package northbound

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// requireJSON answers 415 to a write (POST, PUT, PATCH) whose body is
// not declared JSON. Browsers send cross-site requests without a
// preflight only as text/plain, form or multipart bodies; requiring
// application/json (or a +json type) shuts that door to cross-site
// request forgery.
func requireJSON(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			ct := r.Header.Get("Content-Type")
			mt, _, err := mime.ParseMediaType(ct)
			if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
				refuse(w, r, Errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type",
					"%s needs Content-Type: application/json (got %q)", r.Method, ct))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// headAsGet routes HEAD as GET: every GET route answers HEAD with the
// same status and headers (net/http drops the body of a HEAD).
func headAsGet(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			r2 := r.Clone(r.Context())
			r2.Method = http.MethodGet
			h.ServeHTTP(headWriter{w}, r2)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// headWriter drops the body: net/http does so for a HEAD already, but a
// handler tested without a server (httptest.ResponseRecorder) would not.
type headWriter struct{ http.ResponseWriter }

func (w headWriter) Write(b []byte) (int, error) { return len(b), nil }

// Unwrap lets http.ResponseController reach the connection.
func (w headWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// LocalOnly guards an API that has no tokens (it listens on loopback
// only) against DNS rebinding and cross-site requests: the Host must be a
// loopback name or address, or the listen address's host; an Origin, when
// sent, must be the same origin as that Host. listen is the API's listen
// address (HOST:PORT).
func LocalOnly(listen string, h http.Handler) http.Handler {
	listenHost, _, _ := net.SplitHostPort(listen)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !localHost(r.Host, listenHost) {
			refuse(w, r, Errorf(http.StatusForbidden, CodeForbidden, "Host",
				"Host %q is not this API's address: without --api-token-file the API answers only to loopback names", r.Host))
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Host, r.Host) {
				refuse(w, r, Errorf(http.StatusForbidden, CodeForbidden, "Origin",
					"Origin %q is not this API's origin: cross-site requests are refused", o))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// localHost reports whether a Host header names loopback or listenHost.
func localHost(hostport, listenHost string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	return listenHost != "" && strings.EqualFold(host, listenHost)
}
