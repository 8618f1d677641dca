package northbound

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/loom-sdn/loom/model"
)

// Model routes: for every kind of model.Kinds(), by its Path:
//
//	GET    /{kind}?name=&{ref}=&limit=&after=   a page of objects sorted by name
//	POST   /{kind}                              create: 201, Location, ETag
//	GET    /{kind}/{id}                         one object (id or name), ETag
//	PUT    /{kind}/{id}                         replace (If-Match)
//	PATCH  /{kind}/{id}                         JSON merge patch (If-Match)
//	DELETE /{kind}/{id}                         204 (If-Match)
//
// ETag is the object's revision ("17"); If-Match takes it (quoted or not,
// or *). Statuses: 400 malformed body or invalid field (the field named
// as a JSON path), 404, 409 conflict with other objects or still
// referenced, 412 If-Match mismatch, 413 body over 1 MiB, 415 not JSON.
//
// And POST /batch (batch.go): creates, updates, patches and deletes of
// any kinds, committed together or not at all.

// DefaultPageLimit and MaxPageLimit bound ?limit=.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// ModelList is a page of a list: Next, when set, is the URL of the next
// page.
type ModelList struct {
	Items []model.Object `json:"items"`
	Next  string         `json:"next,omitempty"`
}

type kindRoutes struct {
	svc *model.Service
	ki  *model.KindInfo
	dec decorator
}

// ModelRoutes serves the network model (see the table above); the routes
// and their OpenAPI descriptions come from the same kind table.
func ModelRoutes(svc *model.Service, opts ...ModelOption) Mount {
	var dec decorator
	for _, o := range opts {
		o(&dec)
	}
	return func(api *mux.Router) {
		for _, ki := range model.Kinds() {
			k := kindRoutes{svc, ki, dec}
			title := strings.ReplaceAll(string(ki.Kind), "_", " ") // "floating ip"
			DescribeSchema(ki.Title, schemaOf(ki))
			DescribeSchema(ki.Title+"List", map[string]any{"type": "object", "properties": map[string]any{
				"items": map[string]any{"type": "array", "items": SchemaRef(ki.Title)},
				"next":  map[string]any{"type": "string", "description": "URL of the next page, when there is one"},
			}})
			ref := SchemaRef(ki.Title)
			ifMatch := []Param{{Name: "If-Match", Description: "the revision the object must be at (its ETag)"}}
			query := []Param{{Name: "name", Description: "only the object of this name"},
				{Name: "limit", Type: "integer", Description: "page size, 1-1000 (default 100)"},
				{Name: "after", Description: "the name after which the page starts (see next)"}}
			for _, f := range ki.Filters {
				query = append(query, Param{Name: f, Description: "only objects referring to this object (name or id)"})
			}
			coll, item := "/"+ki.Path, "/"+ki.Path+"/{id}"
			mount(api, http.MethodGet, coll, k.list, Description{Summary: "list " + ki.Path, Query: query,
				ResponseSchema: SchemaRef(ki.Title + "List"), Errors: []int{400}})
			mount(api, http.MethodPost, coll, k.create, Description{Summary: "create a " + title, RequestSchema: ref, ResponseSchema: ref,
				Status: http.StatusCreated, Errors: []int{400, 409, 413, 415}})
			mount(api, http.MethodGet, item, k.get, Description{Summary: "get a " + title + " by id or name", ResponseSchema: ref, Errors: []int{404}})
			mount(api, http.MethodPut, item, k.put, Description{Summary: "replace a " + title, RequestSchema: ref, ResponseSchema: ref,
				Headers: ifMatch, Errors: []int{400, 404, 409, 412, 413, 415}})
			mount(api, http.MethodPatch, item, k.patch, Description{Summary: "change fields of a " + title + " (JSON merge patch; null resets a field)",
				RequestSchema: ref, ResponseSchema: ref, Headers: ifMatch, Errors: []int{400, 404, 409, 412, 413, 415}})
			mount(api, http.MethodDelete, item, k.delete, Description{Summary: "delete a " + title + " (refused while referenced)",
				Status: http.StatusNoContent, Headers: ifMatch, Errors: []int{400, 404, 409, 412}})
		}
		batchRoutes(svc, dec, api)
	}
}

// mount adds a route and its description.
func mount(api *mux.Router, method, path string, h http.HandlerFunc, d Description) {
	r := api.HandleFunc(path, h).Methods(method)
	tpl, _ := r.GetPathTemplate()
	DescribeRoute(method, tpl, d)
}

func schemaOf(ki *model.KindInfo) map[string]any {
	g := &schemaGen{components: map[string]any{}}
	g.schema(ki.Type)
	for name, s := range g.components {
		if name != ki.Title {
			DescribeSchema(name, s.(map[string]any))
		}
	}
	return g.components[ki.Title].(map[string]any)
}

func (k kindRoutes) list(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	limit := DefaultPageLimit
	filters := map[string]string{}
	for key, vals := range q {
		if len(vals) != 1 {
			WriteError(w, Errorf(http.StatusBadRequest, CodeInvalid, key, "give %s once", key))
			return
		}
		switch key {
		case "limit":
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 1 || n > MaxPageLimit {
				WriteError(w, Errorf(http.StatusBadRequest, CodeInvalid, "limit", "limit %q is not 1-%d", vals[0], MaxPageLimit))
				return
			}
			limit = n
		case "after":
		default:
			filters[key] = vals[0]
		}
	}
	snap := k.svc.Snapshot()
	objs, err := snap.List(k.ki.Kind, filters)
	if err != nil {
		WriteError(w, modelError(err))
		return
	}
	after := q.Get("after")
	start := 0
	if q.Has("after") {
		start = sort.Search(len(objs), func(i int) bool { return objs[i].Base().Name > after })
	}
	end := min(start+limit, len(objs))
	page := ModelList{Items: k.dec.decorateAll(objs[start:end])}
	if end < len(objs) {
		q.Set("after", objs[end-1].Base().Name)
		q.Set("limit", strconv.Itoa(limit))
		page.Next = req.URL.Path + "?" + q.Encode()
	}
	etag(w, snap.Revision)
	WriteJSON(w, http.StatusOK, page)
}

func (k kindRoutes) get(w http.ResponseWriter, req *http.Request) {
	o, err := k.svc.Get(k.ki.Kind, mux.Vars(req)["id"])
	k.reply(w, http.StatusOK, o, err)
}

func (k kindRoutes) create(w http.ResponseWriter, req *http.Request) {
	o, aerr := k.decode(w, req)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	o, err := k.svc.Create(req.Context(), o)
	if err == nil {
		w.Header().Set("Location", strings.TrimSuffix(req.URL.Path, "/")+"/"+url.PathEscape(o.Base().ID))
	}
	k.reply(w, http.StatusCreated, o, err)
}

func (k kindRoutes) put(w http.ResponseWriter, req *http.Request) {
	rev, aerr := ifMatch(req)
	if aerr == nil {
		var o model.Object
		if o, aerr = k.decode(w, req); aerr == nil {
			o, err := k.svc.Update(req.Context(), k.ki.Kind, mux.Vars(req)["id"], o, rev)
			k.reply(w, http.StatusOK, o, err)
			return
		}
	}
	WriteError(w, aerr)
}

func (k kindRoutes) patch(w http.ResponseWriter, req *http.Request) {
	rev, aerr := ifMatch(req)
	if aerr == nil {
		var patch json.RawMessage
		if aerr = decodeBody(w, req, &patch); aerr == nil {
			o, err := k.svc.Patch(req.Context(), k.ki.Kind, mux.Vars(req)["id"], patch, rev)
			k.reply(w, http.StatusOK, o, err)
			return
		}
	}
	WriteError(w, aerr)
}

func (k kindRoutes) delete(w http.ResponseWriter, req *http.Request) {
	rev, aerr := ifMatch(req)
	if aerr != nil {
		WriteError(w, aerr)
		return
	}
	if _, err := k.svc.Delete(req.Context(), k.ki.Kind, mux.Vars(req)["id"], rev); err != nil {
		WriteError(w, modelError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decode reads the body as an object of the kind.
func (k kindRoutes) decode(w http.ResponseWriter, req *http.Request) (model.Object, *APIError) {
	var raw json.RawMessage
	if aerr := decodeBody(w, req, &raw); aerr != nil {
		return nil, aerr
	}
	o, err := model.Decode(k.ki.Kind, raw)
	if err != nil {
		return nil, modelError(err).(*APIError)
	}
	return o, nil
}

func (k kindRoutes) reply(w http.ResponseWriter, status int, o model.Object, err error) {
	if err != nil {
		WriteError(w, modelError(err))
		return
	}
	etag(w, o.Base().Revision)
	WriteJSON(w, status, k.dec.decorate(o))
}

func etag(w http.ResponseWriter, rev uint64) {
	w.Header().Set("ETag", `"`+strconv.FormatUint(rev, 10)+`"`)
}

// decodeBody is DecodeJSON, with the errors about the whole body naming
// "body" (or "Content-Type") as their field.
func decodeBody(w http.ResponseWriter, req *http.Request, v any) *APIError {
	return decodeBodyLimit(w, req, v, MaxBody)
}

// decodeBodyLimit is decodeBody with a body of at most limit bytes.
func decodeBodyLimit(w http.ResponseWriter, req *http.Request, v any, limit int64) *APIError {
	aerr := decodeJSON(w, req, v, limit)
	if aerr != nil && aerr.Body.Field == "" {
		aerr.Body.Field = "body"
		if aerr.Status == http.StatusUnsupportedMediaType {
			aerr.Body.Field = "Content-Type"
		}
	}
	return aerr
}

// ifMatch reads If-Match: a revision ("17" or 17); absent or * is 0 (any).
func ifMatch(req *http.Request) (uint64, *APIError) {
	v := strings.TrimSpace(req.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	rev, err := strconv.ParseUint(v, 10, 64)
	if err != nil || rev == 0 {
		return 0, Errorf(http.StatusBadRequest, CodeInvalid, "If-Match", "If-Match %q is not a revision (an ETag such as \"17\")", req.Header.Get("If-Match"))
	}
	return rev, nil
}

// modelError turns a model error into its HTTP answer; anything else is
// an internal error (500).
func modelError(err error) error {
	var me *model.Error
	if !errors.As(err, &me) {
		return err
	}
	status, code := http.StatusBadRequest, CodeInvalid
	switch me.Code {
	case model.NotFound:
		status, code = http.StatusNotFound, CodeNotFound
	case model.Conflict:
		status, code = http.StatusConflict, CodeConflict
	case model.Precondition:
		status, code = http.StatusPreconditionFailed, CodePrecondition
	}
	return &APIError{Status: status, Body: Error{Code: code, Field: me.Field, Message: me.Message}}
}
