package rpc

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address the per-client limits count against. Behind a
// proxy, header names the header that proxy sets (X-Forwarded-For,
// X-Real-IP): its last entry is the one the proxy itself appended, the only
// one a client cannot forge. A header that is missing, empty or not an IP
// address counts as absent: the peer's address is used, so that a request
// can neither switch the limits off (an empty address is no client) nor
// rotate made-up strings to get a fresh count each time. IPv6 clients are
// counted per /64, the block one subscriber usually holds.
func clientAddr(peer string, h http.Header, header string) string {
	if header != "" {
		if vs := h.Values(header); len(vs) > 0 {
			last := vs[len(vs)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip, ok := parseIP(strings.TrimSpace(last)); ok {
				return ip
			}
		}
	}
	if ip, ok := parseIP(peer); ok {
		return ip
	}
	if peer == "" {
		return "unknown" // every such request shares one count
	}
	return peer // not an IP (a unix socket, say): count it as it is
}

// parseIP reads an address with or without a port, as the limits count it.
func parseIP(addr string) (string, bool) {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return "", false
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String(), true
	}
	return ip.String(), true
}
