// Package web serves the browser app: the Vite build of web/, embedded in
// the binary, at every path that is not an API procedure.
//
// `make web` (run by `make build` and `make run`) writes the build into
// dist/app. The build is not committed, so a plain `go build` on a fresh
// clone still works: that binary serves a short page that says how to build
// the app, and the API as usual.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed all:dist
var embedded embed.FS

// Cache policy. Vite names everything under assets/ by its content hash, so
// those files never change under one name: cache them for a year. Every
// other file (index.html, the favicon) keeps its name across builds, so a
// browser must revalidate it, which costs a 304 thanks to the ETag.
const (
	immutable   = "public, max-age=31536000, immutable"
	revalidate  = "no-cache"
	assetsDir   = "assets/"
	indexFile   = "index.html"
	notBuiltMsg = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Swapmeet</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#f1f1f1;padding:.1em .3em;border-radius:3px}</style>
</head><body><h1>Swapmeet</h1>
<p>The API is running, but this binary was built without the web app.</p>
<p>Run <code>make build</code> (or <code>make web</code>, then <code>go build</code>) to embed it,
or start the Vite dev server: <code>cd web &amp;&amp; npm run dev</code>.</p>
</body></html>
`
)

// file is one embedded file, read once, with its gzipped form when that
// is smaller (text: the scripts, styles and HTML).
type file struct {
	body, gz []byte
	etag     string
}

func newFile(body []byte, name string) file {
	sum := sha256.Sum256(body)
	f := file{body: body, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
	switch path.Ext(name) {
	case ".js", ".css", ".html", ".svg", ".json", ".txt", ".map":
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if b.Len() < len(body) {
			f.gz = b.Bytes()
		}
	}
	return f
}

// App serves the embedded build: a file if one has the request's path, and
// index.html for any other path without an extension, so that the app's
// client-side routes (/listings/…, /orders) survive a reload. A missing
// path with an extension (a stale /assets/x.js) is a 404, never HTML.
type App struct {
	files map[string]file
	built bool
}

// New loads the embedded build.
func New() *App {
	app, err := fs.Sub(embedded, "dist/app")
	if err != nil {
		panic(err) // a constant path; cannot fail
	}
	return newApp(app)
}

func newApp(fsys fs.FS) *App {
	a := &App{files: map[string]file{}}
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // a missing dist/app is the "not built" case
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		a.files[p] = newFile(body, p)
		return nil
	})
	if _, ok := a.files[indexFile]; ok {
		a.built = true
	} else {
		a.files[indexFile] = newFile([]byte(notBuiltMsg), indexFile)
	}
	return a
}

// Built reports whether the binary embeds the web app (not the placeholder).
func (a *App) Built() bool { return a.built }

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	f, ok := a.files[name]
	switch {
	case ok && name != "":
	case path.Ext(name) != "" || strings.HasPrefix(name, assetsDir):
		http.NotFound(w, r)
		return
	default: // a client-side route
		name, f = indexFile, a.files[indexFile]
	}
	h := w.Header()
	body, etag := f.body, f.etag
	if f.gz != nil {
		h.Set("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(name, assetsDir) {
		h.Set("Cache-Control", immutable)
	} else {
		h.Set("Cache-Control", revalidate)
	}
	if name == indexFile {
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	}
	// ServeContent sets Content-Type from the extension and answers
	// If-None-Match (and ranges) for us.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// IsProcedure reports whether p is an RPC path, "/package.Service/Method",
// as Connect, gRPC and gRPC-Web use. The app's own paths never have a dot
// in their first segment.
func IsProcedure(p string) bool {
	svc, method, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return ok && strings.Contains(svc, ".") && method != "" && !strings.Contains(method, "/")
}

// Mux sends RPC paths to api and everything else to app.
func Mux(api, app http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsProcedure(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		app.ServeHTTP(w, r)
	})
}
