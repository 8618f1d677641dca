package northbound

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/gorilla/mux"
)

//go:embed ui
var uiFiles embed.FS

// uiRoutes serves the live fabric page at /ui/ (/ redirects there): a
// static page that draws GET /api/v1/fabric again after every event on
// /api/v1/events.
func uiRoutes(r *mux.Router) {
	sub, _ := fs.Sub(uiFiles, "ui")
	files := http.StripPrefix("/ui/", http.FileServer(http.FS(sub)))
	r.PathPrefix("/ui/").Handler(files).Methods(http.MethodGet)
	r.Handle("/ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently)).Methods(http.MethodGet)
	r.Handle("/", http.RedirectHandler("/ui/", http.StatusFound)).Methods(http.MethodGet)
}
