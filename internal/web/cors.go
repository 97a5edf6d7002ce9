package web

import (
	"net/http"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"
)

// CORS lets browser apps served from origins call the API: Connect POSTs,
// Connect GET queries and gRPC-Web, with the Authorization header. Sessions
// are bearer tokens, not cookies, so credentials are not allowed. An empty
// list allows no cross-origin calls; the app that the API serves itself is
// same-origin and needs no CORS.
func CORS(origins []string, api http.Handler) http.Handler {
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: connectcors.AllowedMethods(),
		AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", "X-Request-Id", "Traceparent"),
		ExposedHeaders: append(connectcors.ExposedHeaders(), "X-Request-Id"),
		MaxAge:         7200, // seconds; Chromium caps preflight caching at 2 hours
	}).Handler(api)
}
