package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func testApp() *App {
	return newApp(fstest.MapFS{
		"index.html":           {Data: []byte("<!doctype html><title>app</title>")},
		"favicon.svg":          {Data: []byte("<svg/>")},
		"assets/index-abc1.js": {Data: []byte("console.log(1)")},
	})
}

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestAppServesFilesWithCachePolicy(t *testing.T) {
	a := testApp()
	if !a.Built() {
		t.Fatal("Built() = false with an index.html")
	}
	for _, tc := range []struct {
		path, cache, typ, body string
	}{
		{"/", revalidate, "text/html; charset=utf-8", "<title>app</title>"},
		{"/index.html", revalidate, "text/html; charset=utf-8", "<title>app</title>"},
		{"/favicon.svg", revalidate, "image/svg+xml", "<svg/>"},
		{"/assets/index-abc1.js", immutable, "text/javascript; charset=utf-8", "console.log(1)"},
		// Client-side routes get the app.
		{"/listings/0193abcd", revalidate, "text/html; charset=utf-8", "<title>app</title>"},
		{"/orders", revalidate, "text/html; charset=utf-8", "<title>app</title>"},
	} {
		w := get(t, a, http.MethodGet, tc.path)
		if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != tc.cache || w.Header().Get("Content-Type") != tc.typ || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("GET %s: %d, Cache-Control %q, Content-Type %q, body %q", tc.path, w.Code, w.Header().Get("Cache-Control"), w.Header().Get("Content-Type"), w.Body.String())
		}
		if w.Header().Get("ETag") == "" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: missing ETag or nosniff: %v", tc.path, w.Header())
		}
	}
}

func TestAppNeverAnswersAMissingFileWithHTML(t *testing.T) {
	a := testApp()
	for _, p := range []string{"/assets/index-old.js", "/assets/gone", "/robots.txt", "/.gitignore"} {
		if w := get(t, a, http.MethodGet, p); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
}

func TestAppRevalidatesWithETag(t *testing.T) {
	a := testApp()
	etag := get(t, a, http.MethodGet, "/").Header().Get("ETag")
	if w := get(t, a, http.MethodGet, "/", "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match %s: %d, want 304", etag, w.Code)
	}
}

func TestAppIsReadOnly(t *testing.T) {
	w := get(t, testApp(), http.MethodPost, "/")
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /: %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

func TestUnbuiltAppServesPlaceholder(t *testing.T) {
	a := newApp(fstest.MapFS{})
	if a.Built() {
		t.Fatal("Built() = true without an index.html")
	}
	w := get(t, a, http.MethodGet, "/")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "make build") {
		t.Fatalf("GET /: %d %q", w.Code, w.Body.String())
	}
}

func TestIsProcedure(t *testing.T) {
	for p, want := range map[string]bool{
		"/swapmeet.v1.UserService/SignUp":                           true,
		"/grpc.health.v1.Health/Check":                              true,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": true,
		"/":                  false,
		"/favicon.svg":       false,
		"/assets/index.js":   false,
		"/listings/abc":      false,
		"/a.b/c/d":           false,
		"/swapmeet.v1.User/": false,
	} {
		if got := IsProcedure(p); got != want {
			t.Errorf("IsProcedure(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestMuxAndCORS(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("api")) })
	h := Mux(CORS([]string{"http://localhost:5173"}, api), testApp())

	if w := get(t, h, http.MethodPost, "/swapmeet.v1.UserService/SignUp"); w.Body.String() != "api" {
		t.Fatalf("RPC path: %q", w.Body.String())
	}
	if w := get(t, h, http.MethodGet, "/orders"); !strings.Contains(w.Body.String(), "<title>app</title>") {
		t.Fatalf("app path: %q", w.Body.String())
	}

	// A preflight from an allowed origin may send the Connect headers and Authorization.
	w := get(t, h, http.MethodOptions, "/swapmeet.v1.UserService/UpdateProfile",
		"Origin", "http://localhost:5173",
		"Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,connect-protocol-version,content-type")
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "http://localhost:5173" ||
		!strings.Contains(strings.ToLower(w.Header().Get("Access-Control-Allow-Headers")), "authorization") {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	// GET queries are allowed too, and the response exposes the Connect headers.
	w = get(t, h, http.MethodGet, "/swapmeet.v1.UserService/GetUser", "Origin", "http://localhost:5173")
	if w.Header().Get("Access-Control-Allow-Origin") != "http://localhost:5173" || w.Header().Get("Access-Control-Expose-Headers") == "" {
		t.Fatalf("GET: %v", w.Header())
	}
	// Another origin gets no CORS headers, so its browser refuses the answer.
	w = get(t, h, http.MethodOptions, "/swapmeet.v1.UserService/UpdateProfile",
		"Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %v", w.Header())
	}
}

func TestAppGzipsText(t *testing.T) {
	big := strings.Repeat("console.log('swapmeet');\n", 200)
	a := newApp(fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}, "assets/app-1.js": {Data: []byte(big)}})
	w := get(t, a, http.MethodGet, "/assets/app-1.js", "Accept-Encoding", "gzip, br")
	if w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("Vary") != "Accept-Encoding" || w.Body.Len() >= len(big) {
		t.Fatalf("gzip: %v, %d bytes", w.Header(), w.Body.Len())
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); string(plain) != big {
		t.Fatal("gzipped body differs")
	}
	plainETag := get(t, a, http.MethodGet, "/assets/app-1.js").Header().Get("ETag")
	if plainETag == w.Header().Get("ETag") {
		t.Fatal("the gzipped and the plain body share an ETag")
	}
	if w := get(t, a, http.MethodGet, "/assets/app-1.js", "Accept-Encoding", "gzip;q=0"); w.Header().Get("Content-Encoding") != "" || w.Body.String() != big {
		t.Fatalf("gzip;q=0: %v", w.Header())
	}
}
