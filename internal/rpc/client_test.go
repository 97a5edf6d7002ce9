package rpc

import (
	"net/http"
	"testing"
)

func TestClientAddr(t *testing.T) {
	for _, tc := range []struct {
		name, peer, header string
		h                  http.Header
		want               string
	}{
		{"peer", "203.0.113.7:5555", "", nil, "203.0.113.7"},
		{"header ignored unless trusted", "10.0.0.2:80", "", http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "10.0.0.2"},
		{"last hop of a trusted header", "10.0.0.2:80", "X-Forwarded-For", http.Header{"X-Forwarded-For": {"1.1.1.1, 198.51.100.1"}}, "198.51.100.1"},
		{"last of repeated headers", "10.0.0.2:80", "X-Forwarded-For", http.Header{"X-Forwarded-For": {"1.1.1.1", "198.51.100.2"}}, "198.51.100.2"},
		{"trusted header missing", "10.0.0.2:80", "X-Real-Ip", http.Header{}, "10.0.0.2"},
		{"empty last entry falls back to the peer", "10.0.0.2:80", "X-Forwarded-For", http.Header{"X-Forwarded-For": {"9.9.9.9,"}}, "10.0.0.2"},
		{"empty header falls back to the peer", "10.0.0.2:80", "X-Real-Ip", http.Header{"X-Real-Ip": {""}}, "10.0.0.2"},
		{"garbage falls back to the peer", "10.0.0.2:80", "X-Real-Ip", http.Header{"X-Real-Ip": {"rotate-me-42"}}, "10.0.0.2"},
		{"header with a port", "10.0.0.2:80", "X-Real-Ip", http.Header{"X-Real-Ip": {"198.51.100.3:1234"}}, "198.51.100.3"},
		{"no peer is one client, not none", "", "", nil, "unknown"},
		{"ipv6 per /64", "[2001:db8:1:2:3:4:5:6]:443", "", nil, "2001:db8:1:2::/64"},
		{"mapped ipv4", "[::ffff:192.0.2.1]:443", "", nil, "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientAddr(tc.peer, tc.h, tc.header); got != tc.want {
				t.Fatalf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}
