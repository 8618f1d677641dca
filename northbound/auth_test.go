package northbound_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/loom-sdn/loom/northbound"
)

func TestTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("# loom tokens\nadmin  admin-token-0123456789 ops team\n\nviewer viewer-token-0123456789\n"), 0o600)
	tokens, err := northbound.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	h := tokens.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }))
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/healthz", "", 299},
		{"GET", "/ui/", "", 299}, // the static page asks for a token itself
		{"GET", "/", "", 299},
		{"POST", "/ui/", "", 401},
		{"GET", "/uix", "", 401},
		{"GET", "/api/v1/fabric", "", 401},
		{"GET", "/api/v1/networks", "", 401},
		{"GET", "/metrics", "wrong-token-0123456789", 401},
		{"GET", "/api/v1/networks", "viewer-token-0123456789", 299},
		{"POST", "/api/v1/networks", "viewer-token-0123456789", 403},
		{"DELETE", "/api/v1/networks/x", "viewer-token-0123456789", 403},
		{"POST", "/api/v1/networks", "admin-token-0123456789", 299},
		{"DELETE", "/api/v1/networks/x", "admin-token-0123456789", 299},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s %s with %q: %d, want %d", tc.method, tc.path, tc.token, rec.Code, tc.want)
		}
	}
	for _, bad := range []string{"root abcdefghijklmnopq\n", "admin short\n", "admin\n", "# nothing\n"} {
		os.WriteFile(path, []byte(bad), 0o600)
		if _, err := northbound.LoadTokens(path); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080": "127.0.0.1:8080", "[::1]:80": "[::1]:80", "localhost:9": "localhost:9",
		"0.0.0.0:8080": "127.0.0.1:8080", ":8080": "127.0.0.1:8080", "10.0.0.5:8080": "127.0.0.1:8080",
	} {
		got, changed, err := northbound.LoopbackOnly(in)
		if err != nil || got != want || changed != (in != want) {
			t.Errorf("%s -> %s %v %v", in, got, changed, err)
		}
	}
}
