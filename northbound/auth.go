package northbound

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Role is what a token may do.
type Role int

// Roles: a viewer reads, an admin also writes.
const (
	Viewer Role = iota + 1
	Admin
)

// Tokens maps bearer tokens (by their SHA-256, so the table holds no
// secret) to roles.
type Tokens map[[32]byte]Role

// LoadTokens reads a token file: one token per line as "ROLE TOKEN
// [comment]", ROLE being admin or viewer; blank lines and lines starting
// with # are ignored. Tokens must be at least 16 characters.
func LoadTokens(path string) (Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t := Tokens{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return nil, fmt.Errorf("%s:%d: want \"ROLE TOKEN\"", path, n)
		}
		var role Role
		switch fields[0] {
		case "admin":
			role = Admin
		case "viewer":
			role = Viewer
		default:
			// Never print the field: a line with its fields swapped has
			// the token there.
			return nil, fmt.Errorf("%s:%d: the first field is not admin or viewer (want \"ROLE TOKEN\")", path, n)
		}
		if len(fields[1]) < 16 {
			return nil, fmt.Errorf("%s:%d: token shorter than 16 characters", path, n)
		}
		t[sha256.Sum256([]byte(fields[1]))] = role
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t) == 0 {
		return nil, fmt.Errorf("%s: no tokens", path)
	}
	return t, nil
}

// Guard wraps h: every request but /healthz and the static page (/,
// /ui/...: it holds no data and asks for a token itself) needs
// "Authorization: Bearer TOKEN"; a viewer token may only GET (and HEAD).
func (t Tokens) Guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || (r.URL.Path == "/" || r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/")) && r.Method == http.MethodGet {
			h.ServeHTTP(w, r)
			return
		}
		tok, ok := bearer(r.Header.Get("Authorization"))
		role := t[sha256.Sum256([]byte(tok))]
		switch {
		case !ok || role == 0:
			w.Header().Set("WWW-Authenticate", `Bearer realm="loom"`)
			refuse(w, r, Errorf(http.StatusUnauthorized, CodeUnauthorized, "", "a valid bearer token is required"))
		case role == Viewer && r.Method != http.MethodGet && r.Method != http.MethodHead:
			refuse(w, r, Errorf(http.StatusForbidden, CodeForbidden, "", "a viewer token may only read"))
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// bearer returns the token of an Authorization header of the Bearer
// scheme, whose name is case-insensitive (RFC 7235).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// refuse answers a request that is not let in, and closes its connection
// instead of draining a body nobody will read: a client that sends its
// body slowly must not hold the connection past the answer.
func refuse(w http.ResponseWriter, r *http.Request, err *APIError) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
		// net/http drains up to 256 KiB of an unread body before it
		// closes; a deadline already past ends that at once.
		http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	WriteError(w, err)
}

// TokenFileWarning says why a token file's permissions are unsafe (it is
// readable or writable by others than its owner), or "".
func TokenFileWarning(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Sprintf("%s has mode %04o: tokens are readable by others than its owner (chmod 600 it)", path, perm)
	}
	return ""
}

// LoopbackOnly rewrites an API listen address to a loopback one (keeping
// the port) unless it already is; it reports whether it changed it. An
// API without tokens must not be reachable from other machines.
func LoopbackOnly(addr string) (string, bool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false, err
	}
	if host == "localhost" {
		return addr, false, nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return addr, false, nil
	}
	return net.JoinHostPort("127.0.0.1", port), true, nil
}
