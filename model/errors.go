package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Code classifies an *Error.
type Code int

// Error codes. The REST API answers 400, 404, 409 and 412 for them.
const (
	// Invalid: a field is malformed, out of range, or refers to nothing.
	Invalid Code = iota + 1
	// NotFound: the object addressed does not exist.
	NotFound
	// Conflict: the write clashes with other objects (a duplicate name,
	// VNI, VLAN, MAC or IP, overlapping CIDRs), or the object to delete is
	// still referenced.
	Conflict
	// Precondition: the expected revision is not the object's.
	Precondition
)

func (c Code) String() string {
	switch c {
	case Invalid:
		return "invalid"
	case NotFound:
		return "not found"
	case Conflict:
		return "conflict"
	case Precondition:
		return "precondition failed"
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// Error is a rejected request. Field is the JSON path of the field at
// fault ("rules[1].port_min"), when there is one.
type Error struct {
	Code    Code
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// CodeOf returns the Code of err if it is (or wraps) an *Error, else 0.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func newErr(c Code, field, format string, args ...any) *Error {
	return &Error{Code: c, Field: field, Message: fmt.Sprintf(format, args...)}
}

func invalidf(field, format string, args ...any) *Error {
	return newErr(Invalid, field, format, args...)
}

func conflictf(field, format string, args ...any) *Error {
	return newErr(Conflict, field, format, args...)
}

// Decode reads one object of kind k from JSON, rejecting unknown fields
// and trailing data; errors are Invalid and name the field.
func Decode(k Kind, data []byte) (Object, error) {
	o, err := decode(Info(k), data)
	if err != nil {
		return nil, err
	}
	return o, nil
}

func decode(ki *KindInfo, data []byte) (Object, *Error) {
	o := ki.New()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(o); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalidf("body", "the body holds more than one JSON value")
	}
	return o, nil
}

func jsonError(err error) *Error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &typ):
		f := strings.TrimPrefix(typ.Field, "Meta.")
		if f == "" {
			return invalidf("body", "the body must be a JSON object, not a JSON %s", typ.Value)
		}
		return invalidf(f, "%s must be a JSON %s, not a JSON %s", f, jsonType(typ.Type.String()), typ.Value)
	case errors.As(err, &syn):
		return invalidf("body", "malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalidf("body", "the body is empty or cut short")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalidf(f, "unknown field %q", f)
	}
	return invalidf("body", "%v", err)
}

// jsonType names a Go type as JSON does.
func jsonType(t string) string {
	switch {
	case strings.Contains(t, "int"):
		return "integer"
	case strings.HasSuffix(t, "string"), strings.HasSuffix(t, "Protocol"):
		return "string"
	case strings.HasSuffix(t, "bool"):
		return "boolean"
	case strings.HasPrefix(t, "[]"), strings.HasPrefix(t, "*[]"):
		return "array"
	}
	return "object"
}

// mergePatch applies an RFC 7396 JSON merge patch to doc.
func mergePatch(doc, patch []byte) ([]byte, *Error) {
	var p any
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, jsonError(err)
	}
	pm, ok := p.(map[string]any)
	if !ok {
		return nil, invalidf("body", "a merge patch must be a JSON object")
	}
	var d map[string]any
	dec = json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return nil, invalidf("body", "%v", err)
	}
	out, err := json.Marshal(merge(d, pm))
	if err != nil {
		return nil, invalidf("body", "%v", err)
	}
	return out, nil
}

func merge(doc any, patch map[string]any) any {
	d, ok := doc.(map[string]any)
	if !ok {
		d = map[string]any{}
	}
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(d, k)
		case map[string]any:
			d[k] = merge(d[k], pv)
		default:
			d[k] = v
		}
	}
	return d
}
