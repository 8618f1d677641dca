package northbound

import (
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
)

// Description documents one route for GET /api/v1/openapi.json. Every
// route of the API must have one (a test walks the router): a Mount
// describes its routes with Describe or DescribeRoute, next to them.
type Description struct {
	Summary string
	// Query lists the query parameters.
	Query []Param
	// Request and Response are values of the request and success body
	// types (nil: no body); their schemas come from their Go types.
	Request, Response any
	// RequestSchema and ResponseSchema, when set, are schemas used as is
	// instead ({"$ref": "#/components/schemas/Network"}, ...).
	RequestSchema, ResponseSchema map[string]any
	// ContentType of the success body: application/json if empty.
	ContentType string
	// Status is the success status (200 if 0); Errors the error statuses
	// the route may answer besides 401/403.
	Status int
	Errors []int
	// Headers are request headers the route reads (If-Match, ...).
	Headers []Param
}

// Param is a query parameter or header.
type Param struct {
	Name, Description string
	// Type is the JSON schema type: string if empty.
	Type string
}

var (
	descMu      sync.Mutex
	described   = map[string]Description{}    // "GET /api/v1/switches"
	namedSchema = map[string]map[string]any{} // components registered by mounts
)

// Describe documents method path (the full route template, e.g.
// "/api/v1/switches/{dpid}") with a summary.
func Describe(method, path, summary string) {
	DescribeRoute(method, path, Description{Summary: summary})
}

// DescribeRoute documents method path.
func DescribeRoute(method, path string, d Description) {
	descMu.Lock()
	described[method+" "+normalizePath(path)] = d
	descMu.Unlock()
}

// DescribeSchema adds a named schema to the document's components (for
// RequestSchema/ResponseSchema references).
func DescribeSchema(name string, schema map[string]any) {
	descMu.Lock()
	namedSchema[name] = schema
	descMu.Unlock()
}

// SchemaRef is a reference to a component schema.
func SchemaRef(name string) map[string]any {
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

var pathVarRE = regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)

// normalizePath drops the patterns of path variables ({id:[0-9]+} → {id}).
func normalizePath(p string) string { return pathVarRE.ReplaceAllString(p, "{$1}") }

// OpenAPIRoutes serves GET /openapi.json: an OpenAPI 3 document of every
// route mounted on the API router (walked on each request, so it lists
// exactly what is served) that has a Description, plus the described
// routes outside /api/v1 (/healthz, /metrics).
func OpenAPIRoutes() Mount {
	return func(api *mux.Router) {
		api.HandleFunc("/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
			WriteJSON(w, http.StatusOK, OpenAPI(api))
		}).Methods(http.MethodGet)
	}
}

// OpenAPI builds the document for the routes of r (and the described
// routes outside /api/v1).
func OpenAPI(r *mux.Router) map[string]any {
	type route struct{ method, path string }
	var routes []route
	seen := map[route]bool{}
	add := func(rt route) {
		if !seen[rt] {
			seen[rt] = true
			routes = append(routes, rt)
		}
	}
	WalkRoutes(r, func(method, path string) { add(route{method, path}) })
	descMu.Lock()
	defer descMu.Unlock()
	for k := range described {
		m, p, _ := strings.Cut(k, " ")
		if !strings.HasPrefix(p, "/api/") {
			add(route{m, p})
		}
	}
	g := &schemaGen{components: map[string]any{}}
	g.components["Error"] = g.schema(reflect.TypeFor[Error]())
	for name, s := range namedSchema {
		g.components[name] = s
	}
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		d, ok := described[rt.method+" "+rt.path]
		if !ok {
			continue // undocumented: the OpenAPI test fails on it
		}
		if paths[rt.path] == nil {
			paths[rt.path] = map[string]any{}
		}
		paths[rt.path][strings.ToLower(rt.method)] = g.operation(rt.method, rt.path, d)
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Loom API",
			"version":     "1",
			"description": "Loom SDN controller. Errors are {\"error\": code, \"field\": name, \"message\": text}. Writes answer 400 for a malformed body or an invalid field (the field is named, as a JSON path), 404 for an unknown object, 409 for a conflict with other objects (duplicate name, VNI, VLAN, MAC or IP; overlapping CIDRs; an object still referenced), 412 when If-Match is not the object's revision, 413 for a body over 1 MiB (POST /api/v1/batch: over 16 MiB or 10,000 ops), 415 for a body that is not JSON.",
		},
		"paths":      paths,
		"components": map[string]any{"schemas": g.components},
	}
}

// WalkRoutes calls fn with the method and the path template (variables
// without their patterns) of every route of h, a *mux.Router such as
// Handler returns.
func WalkRoutes(h http.Handler, fn func(method, path string)) error {
	if a, ok := h.(apiHandler); ok {
		h = a.router
	}
	r, ok := h.(*mux.Router)
	if !ok {
		return fmt.Errorf("northbound: %T is not a *mux.Router", h)
	}
	return r.Walk(func(rt *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err1 := rt.GetPathTemplate()
		methods, err2 := rt.GetMethods()
		if err1 != nil || err2 != nil {
			return nil // a prefix or a route for any method
		}
		for _, m := range methods {
			fn(m, normalizePath(tpl))
		}
		return nil
	})
}

func (g *schemaGen) operation(method, path string, d Description) map[string]any {
	op := map[string]any{"summary": d.Summary, "operationId": operationID(method, path)}
	var params []any
	for _, m := range pathVarRE.FindAllStringSubmatch(path, -1) {
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
	}
	for _, p := range d.Query {
		params = append(params, map[string]any{"name": p.Name, "in": "query", "description": p.Description, "schema": map[string]any{"type": cmpOr(p.Type, "string")}})
	}
	for _, p := range d.Headers {
		params = append(params, map[string]any{"name": p.Name, "in": "header", "description": p.Description, "schema": map[string]any{"type": cmpOr(p.Type, "string")}})
	}
	if params != nil {
		op["parameters"] = params
	}
	body := d.RequestSchema
	if body == nil && d.Request != nil {
		body = g.schema(reflect.TypeOf(d.Request))
	}
	if body != nil {
		content := map[string]any{"application/json": map[string]any{"schema": body}}
		if method == http.MethodPatch {
			content["application/merge-patch+json"] = map[string]any{"schema": body}
		}
		op["requestBody"] = map[string]any{"required": true, "content": content}
	}
	status := d.Status
	if status == 0 {
		status = http.StatusOK
	}
	ok := map[string]any{"description": http.StatusText(status)}
	resp := d.ResponseSchema
	if resp == nil && d.Response != nil {
		resp = g.schema(reflect.TypeOf(d.Response))
	}
	if resp != nil {
		ok["content"] = map[string]any{cmpOr(d.ContentType, "application/json"): map[string]any{"schema": resp}}
	}
	responses := map[string]any{strconv.Itoa(status): ok}
	for _, e := range d.Errors {
		responses[strconv.Itoa(e)] = map[string]any{"description": http.StatusText(e),
			"content": map[string]any{"application/json": map[string]any{"schema": SchemaRef("Error")}}}
	}
	op["responses"] = responses
	return op
}

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.FieldsFunc(strings.TrimPrefix(path, "/api/v1"), func(r rune) bool { return r == '/' || r == '-' || r == '.' }) {
		part = strings.Trim(part, "{}")
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// schemaGen turns Go types into JSON schemas; named struct types become
// components.
type schemaGen struct {
	components map[string]any
	names      map[reflect.Type]string
}

func (g *schemaGen) name(t reflect.Type) string {
	if g.names == nil {
		g.names = map[reflect.Type]string{}
	}
	if n, ok := g.names[t]; ok {
		return n
	}
	n := t.Name()
	if _, taken := g.components[n]; taken {
		n = t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:] + "." + n
	}
	g.names[t] = n
	return n
}

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch {
	case t == reflect.TypeFor[time.Time]():
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		return g.schema(t.Elem())
	case t.Kind() == reflect.Interface:
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t)
		}
		n := g.name(t)
		if _, ok := g.components[n]; !ok {
			g.components[n] = map[string]any{} // placeholder against recursion
			g.components[n] = g.object(t)
		}
		return SchemaRef(n)
	}
	return map[string]any{}
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var fields func(t reflect.Type)
	fields = func(t reflect.Type) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" || !sf.IsExported() && !sf.Anonymous {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if sf.Anonymous && name == "" {
				ft := sf.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					fields(ft)
					continue
				}
			}
			if name == "" {
				name = sf.Name
			}
			s := g.schema(sf.Type)
			if _, isRef := s["$ref"]; isRef && (sf.Tag.Get("doc") != "") {
				s = map[string]any{"allOf": []any{s}}
			}
			if doc := sf.Tag.Get("doc"); doc != "" {
				s["description"] = doc
				if strings.Contains(doc, "read-only") {
					s["readOnly"] = true
				}
			}
			if ref := sf.Tag.Get("ref"); ref != "" {
				s["x-loom-ref"] = ref
			}
			if enum := sf.Tag.Get("enum"); enum != "" {
				var vals []any
				for _, v := range strings.Split(enum, "|") {
					vals = append(vals, v)
				}
				s["enum"] = vals
			}
			props[name] = s
		}
	}
	fields(t)
	return map[string]any{"type": "object", "properties": props}
}
