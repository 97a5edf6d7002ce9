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
// one a client cannot forge. IPv6 clients are counted per /64, the block
// one subscriber usually holds.
func clientAddr(peer string, h http.Header, header string) string {
	addr := peer
	if header != "" {
		if vs := h.Values(header); len(vs) > 0 {
			last := vs[len(vs)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			addr = strings.TrimSpace(last)
		}
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr // not an IP (a unix socket, say): count it as it is
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
