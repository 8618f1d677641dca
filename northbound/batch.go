package northbound

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/model"
)

// The batch route:
//
//	POST /batch  {"ops": [{"op": "create", "kind": "networks", "object": {...}},
//	                      {"op": "patch", "kind": "ports", "id": "vm1", "patch": {...}, "if_match": 17},
//	                      {"op": "delete", "kind": "ports", "id": "vm2"}, ...]}
//
// commits the ops (create, update, patch, delete; kinds spelled as in the
// URLs) as one change of the model (model.Service.Apply): each validated
// against the state the ones before it leave, so a batch may create a
// network and then ports in it by name; all written under one revision,
// or none. It answers 200 with {"objects": [...]}: the objects as the ops
// left them, in op order, null for a delete. An op that fails answers as
// the single write would (400, 404, 409, 412), nothing written, the field
// named with the op's index: "ops[3].ips[0]" (a field of the object or
// patch directly after the index; "ops[3].id", "ops[3].if_match", ... for
// the op's own). The whole body is decoded before any op is validated, so
// a malformed op answers before an invalid one. At most MaxBatchOps ops
// and MaxBatchBody bytes (413): the ops are counted as they are read, and
// the one past MaxBatchOps answers 413 without reading the rest.

// MaxBatchOps and MaxBatchBody bound a batch.
const (
	MaxBatchOps  = 10000
	MaxBatchBody = 16 << 20
)

// BatchRequest is the body of POST /batch.
type BatchRequest struct {
	Ops []BatchOp `json:"ops"`
}

// BatchOp is one op of a batch.
type BatchOp struct {
	Op   string `json:"op" enum:"create|update|patch|delete" doc:"update replaces the whole object (PUT), patch applies a JSON merge patch (PATCH)"`
	Kind string `json:"kind" doc:"a kind of the model, as the URLs name it (the enum)"`
	ID   string `json:"id,omitempty" doc:"update, patch, delete: the object's id or name, as the batch's earlier ops leave it"`
	// Object and Patch are JSON objects.
	Object  json.RawMessage `json:"object,omitempty" doc:"create, update: the object, as POST and PUT take it"`
	Patch   json.RawMessage `json:"patch,omitempty" doc:"patch: a JSON merge patch, as PATCH takes it (null resets a field)"`
	IfMatch uint64          `json:"if_match,omitempty" doc:"update, patch, delete: the revision the object must be at (its ETag), else 412; an object written by an earlier op of the batch never matches"`
}

// BatchResult is the answer of POST /batch.
type BatchResult struct {
	// Objects are the objects as the ops left them, in op order; nil for
	// a delete.
	Objects []model.Object `json:"objects"`
}

func batchRoutes(svc *model.Service, dec decorator, api *mux.Router) {
	describeBatch()
	mount(api, http.MethodPost, "/batch", func(w http.ResponseWriter, req *http.Request) { postBatch(svc, dec, w, req) },
		Description{Summary: fmt.Sprintf("creates, updates, patches and deletes of any kinds, in order, committed together or not at all (at most %d ops)", MaxBatchOps),
			RequestSchema: SchemaRef("BatchRequest"), ResponseSchema: SchemaRef("BatchResult"), Errors: []int{400, 404, 409, 412, 413, 415}})
}

// describeBatch adds the batch's schemas: those of the Go types, with the
// object, patch and results as JSON objects of the model's kinds.
func describeBatch() {
	g := &schemaGen{components: map[string]any{}}
	g.schema(reflect.TypeFor[BatchOp]())
	op := g.components["BatchOp"].(map[string]any)
	props := op["properties"].(map[string]any)
	var kinds, paths []any
	for _, ki := range model.Kinds() {
		kinds = append(kinds, SchemaRef(ki.Title))
		paths = append(paths, ki.Path)
	}
	props["kind"] = map[string]any{"type": "string", "enum": paths, "description": props["kind"].(map[string]any)["description"]}
	props["object"] = map[string]any{"oneOf": kinds, "description": props["object"].(map[string]any)["description"]}
	props["patch"] = map[string]any{"type": "object", "description": props["patch"].(map[string]any)["description"]}
	op["required"] = []any{"op", "kind"}
	DescribeSchema("BatchOp", op)
	DescribeSchema("BatchRequest", map[string]any{"type": "object", "required": []any{"ops"}, "properties": map[string]any{
		"ops": map[string]any{"type": "array", "maxItems": MaxBatchOps, "items": SchemaRef("BatchOp")},
	}})
	DescribeSchema("BatchResult", map[string]any{"type": "object", "properties": map[string]any{
		"objects": map[string]any{"type": "array", "description": "the objects as the ops left them, in op order; null for a delete",
			"items": map[string]any{"oneOf": kinds, "nullable": true}},
	}})
}

func postBatch(svc *model.Service, dec decorator, w http.ResponseWriter, req *http.Request) {
	raws, aerr := decodeBatch(w, req)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	ops := make([]model.Op, len(raws))
	for i, raw := range raws {
		var aerr *APIError
		if ops[i], aerr = decodeOp(raw); aerr != nil {
			WriteError(w, inOp(i, aerr))
			return
		}
	}
	objs, err := svc.Apply(req.Context(), ops)
	if err != nil {
		WriteError(w, modelError(err))
		return
	}
	for i, o := range objs {
		if o != nil {
			objs[i] = dec.decorate(o)
		}
	}
	WriteJSON(w, http.StatusOK, BatchResult{Objects: objs})
}

// decodeBatch reads the body of POST /batch, {"ops": [...]}, as a stream:
// it counts the ops as it reads them and stops at the one past
// MaxBatchOps (413) without reading the rest. The ops are kept as JSON
// (decodeOp reads each). Errors are those of decodeBody: 400 malformed
// (field body), 400 invalid naming the field (ops, an unknown one), 413
// (body, or ops), 415 (Content-Type).
func decodeBatch(w http.ResponseWriter, req *http.Request) ([]json.RawMessage, *APIError) {
	if aerr := contentType(req); aerr != nil {
		aerr.Body.Field = "Content-Type"
		return nil, aerr
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, MaxBatchBody))
	// fail is a JSON error; inside the body, its end is a cut.
	inside := false
	fail := func(err error) *APIError {
		if inside && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		aerr := jsonError(err)
		if aerr.Body.Field == "" {
			aerr.Body.Field = "body"
		}
		return aerr
	}
	invalid := func(field, format string, args ...any) ([]json.RawMessage, *APIError) {
		return nil, Errorf(http.StatusBadRequest, CodeInvalid, field, format, args...)
	}
	required := func() ([]json.RawMessage, *APIError) {
		return invalid("ops", `ops is required: {"ops": [{"op": "create", "kind": "networks", "object": {...}}, ...]}`)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, fail(err)
	}
	inside = true
	if tok == nil {
		return required()
	}
	if tok != json.Delim('{') {
		return invalid("body", "the body must be a JSON object, not a JSON %s", tokenType(tok))
	}
	var ops []json.RawMessage
	seen := false
	for dec.More() {
		if tok, err = dec.Token(); err != nil {
			return nil, fail(err)
		}
		if k, _ := tok.(string); k != "ops" {
			return invalid(k, "unknown field %q", k)
		}
		if seen {
			return invalid("ops", "ops is given twice")
		}
		seen = true
		if tok, err = dec.Token(); err != nil {
			return nil, fail(err)
		}
		switch tok {
		case nil:
		case json.Delim('['):
			ops = []json.RawMessage{}
			for dec.More() {
				if len(ops) == MaxBatchOps {
					return nil, Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "ops", "a batch holds at most %d ops: this one has more", MaxBatchOps)
				}
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return nil, fail(err)
				}
				ops = append(ops, raw)
			}
			if _, err := dec.Token(); err != nil { // ]
				return nil, fail(err)
			}
		default:
			return invalid("ops", "ops must be an array of ops, not a JSON %s", tokenType(tok))
		}
	}
	if _, err := dec.Token(); err != nil { // }
		return nil, fail(err)
	}
	inside = false
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return nil, Errorf(http.StatusBadRequest, CodeMalformed, "body", "the body holds more than one JSON value")
		}
		return nil, fail(err)
	}
	if ops == nil {
		return required()
	}
	return ops, nil
}

// tokenType names the JSON type of a value that starts with tok.
func tokenType(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		if tok == json.Delim('[') {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case bool:
		return "boolean"
	}
	return "number"
}

// decodeOp reads one op; error fields are the op's (inOp prefixes them).
func decodeOp(raw json.RawMessage) (model.Op, *APIError) {
	var bo BatchOp
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&bo); err != nil {
		return model.Op{}, jsonError(err)
	}
	invalid := func(field, format string, args ...any) (model.Op, *APIError) {
		return model.Op{}, Errorf(http.StatusBadRequest, CodeInvalid, field, format, args...)
	}
	op := model.Op{Op: model.OpType(bo.Op), ID: bo.ID, IfRevision: bo.IfMatch}
	var wantObject, wantPatch bool
	switch op.Op {
	case model.OpCreate:
		wantObject = true
	case model.OpUpdate:
		wantObject = true
	case model.OpPatch:
		wantPatch = true
	case model.OpDelete:
	default:
		return invalid("op", "op %q is not create, update, patch or delete", bo.Op)
	}
	ki := kindOfPath(bo.Kind)
	if ki == nil {
		var paths []string
		for _, k := range model.Kinds() {
			paths = append(paths, k.Path)
		}
		return invalid("kind", "kind %q is not one of %s", bo.Kind, strings.Join(paths, ", "))
	}
	op.Kind = ki.Kind
	switch {
	case op.Op == model.OpCreate && bo.ID != "":
		return invalid("id", "a create takes no id: the object's name names it (ids are generated)")
	case op.Op == model.OpCreate && bo.IfMatch != 0:
		return invalid("if_match", "a create takes no if_match")
	case op.Op != model.OpCreate && bo.ID == "":
		return invalid("id", "a %s needs the id or name of the object", bo.Op)
	case wantObject && !present(bo.Object):
		return invalid("object", "a %s needs an object", bo.Op)
	case !wantObject && present(bo.Object):
		return invalid("object", "a %s takes no object", bo.Op)
	case wantPatch && !present(bo.Patch):
		return invalid("patch", "a patch needs a patch (a JSON merge patch)")
	case !wantPatch && present(bo.Patch):
		return invalid("patch", "a %s takes no patch", bo.Op)
	}
	if wantObject {
		o, err := model.Decode(ki.Kind, bo.Object)
		if err != nil {
			aerr := modelError(err).(*APIError)
			if aerr.Body.Field == "body" {
				aerr.Body.Field = "object"
			}
			return model.Op{}, aerr
		}
		op.Object = o
	}
	op.Patch = bo.Patch
	return op, nil
}

// inOp names op i in an error about one of its fields.
func inOp(i int, aerr *APIError) *APIError {
	f := fmt.Sprintf("ops[%d]", i)
	switch aerr.Body.Field {
	case "", "body":
	default:
		f += "." + aerr.Body.Field
	}
	aerr.Body.Field = f
	aerr.Body.Message = f + ": " + aerr.Body.Message
	return aerr
}

func present(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "null"
}

func kindOfPath(path string) *model.KindInfo {
	for _, ki := range model.Kinds() {
		if ki.Path == path {
			return ki
		}
	}
	return nil
}
