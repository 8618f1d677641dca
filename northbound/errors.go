package northbound

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/loom-sdn/loom/northbound/restapi"
)

// Error codes of the API, with the HTTP status each one answers.
const (
	CodeInvalid          = "invalid"           // 400 or 422: a field is wrong
	CodeMalformed        = "malformed"         // 400: the body is not the JSON expected
	CodeNotFound         = "not_found"         // 404
	CodeConflict         = "conflict"          // 409: duplicate, or still referenced
	CodePrecondition     = "precondition"      // 412: If-Match does not match the revision
	CodeTooLarge         = "too_large"         // 413
	CodeUnsupportedMedia = "unsupported_media" // 415
	CodeUnauthorized     = "unauthorized"      // 401
	CodeForbidden        = "forbidden"         // 403
	CodeMethod           = "method_not_allowed"
	CodeUnavailable      = "unavailable" // 503
)

// Error is the body of every error response.
type Error = restapi.Error

// APIError is an error that knows its HTTP status; handlers return it and
// WriteError renders it.
type APIError struct {
	Status int
	Body   Error
}

func (e *APIError) Error() string {
	if e.Body.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Body.Code, e.Body.Field, e.Body.Message)
	}
	return e.Body.Code + ": " + e.Body.Message
}

// Errorf builds an APIError.
func Errorf(status int, code, field, format string, args ...any) *APIError {
	return &APIError{Status: status, Body: Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}}
}

// WriteError renders err: an *APIError as itself, anything else as 500.
func WriteError(w http.ResponseWriter, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		ae = Errorf(http.StatusInternalServerError, "internal", "", "%v", err)
	}
	WriteJSON(w, ae.Status, ae.Body)
}

// WriteJSON writes v as indented JSON with the given status.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// MaxBody is the largest request body the API reads.
const MaxBody = 1 << 20

// DecodeJSON reads a JSON request body into v: the content type must be
// JSON, the body at most MaxBody bytes, one value, and no unknown fields.
// Type errors name the field.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) *APIError {
	return decodeJSON(w, r, v, MaxBody)
}

// decodeJSON is DecodeJSON with a body of at most limit bytes.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) *APIError {
	if aerr := contentType(r); aerr != nil {
		return aerr
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		if err == nil {
			return Errorf(http.StatusBadRequest, CodeMalformed, "", "the body holds more than one JSON value")
		}
		return jsonError(err)
	}
	return nil
}

// contentType checks that a request body is JSON (when it says what it
// is): else 415.
func contentType(r *http.Request) *APIError {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return Errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "", "content type %q is not application/json", ct)
		}
	}
	return nil
}

func jsonError(err error) *APIError {
	var (
		syn   *json.SyntaxError
		typ   *json.UnmarshalTypeError
		large *http.MaxBytesError
	)
	switch {
	case errors.As(err, &large):
		return Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "", "the body is larger than %d bytes", large.Limit)
	case errors.As(err, &syn):
		return Errorf(http.StatusBadRequest, CodeMalformed, "", "malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		return Errorf(http.StatusBadRequest, CodeInvalid, typ.Field, "%s must be a %s, not a JSON %s", typ.Field, typ.Type, typ.Value)
	case errors.Is(err, io.EOF):
		return Errorf(http.StatusBadRequest, CodeMalformed, "", "the body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(http.StatusBadRequest, CodeMalformed, "", "the body ends in the middle of a JSON value")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Errorf(http.StatusBadRequest, CodeInvalid, f, "unknown field %q", f)
	}
	return Errorf(http.StatusBadRequest, CodeMalformed, "", "%v", err)
}
