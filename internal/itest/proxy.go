package itest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
)

// Proxy forwards TCP connections to a service and can hold what clients
// send: a partition on the path from one process to that service.
// Bytes a client sends while the proxy holds are read, kept, and
// delivered when it lets go, even if the client has closed meanwhile, as
// a network delivers what was already on the wire.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	holding bool
	release chan struct{} // closed when the proxy stops holding
	conns   []net.Conn
	waiting map[net.Conn]bool // clients whose held bytes have had no answer yet
	chunks  [][]byte          // what clients sent while holding
}

// StartProxy forwards a loopback port to target ("host:port") until the
// test ends.
func StartProxy(t T, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, release: make(chan struct{}), waiting: map[net.Conn]bool{}}
	close(p.release)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's "host:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Hold stops delivering what clients send; what the service sends still
// flows, so requests already delivered are answered and the next ones
// queue up on the wire.
func (p *Proxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.holding {
		p.holding = true
		p.release = make(chan struct{})
	}
}

// Release delivers what was held and forwards freely again.
func (p *Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holding {
		p.holding = false
		close(p.release)
	}
}

// Held is how many bytes clients have sent while the proxy held.
func (p *Proxy) Held() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, c := range p.chunks {
		n += int64(len(c))
	}
	return n
}

// HeldWith counts the reads from clients, while holding, that contain
// marker: for instance the requests of one command.
func (p *Proxy) HeldWith(marker string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.chunks {
		if bytes.Contains(c, []byte(marker)) {
			n++
		}
	}
	return n
}

// Answered reports whether every connection that had bytes held has
// since received bytes from the service: for a request-response protocol,
// the service has acted on what was held.
func (p *Proxy) Answered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.holding && len(p.waiting) == 0
}

func (p *Proxy) gate() (holding bool, wait <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.holding, p.release
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(s, c, c)
		go p.pipe(c, s, nil)
	}
}

// pipe copies src to dst; from a client, it waits at the gate before each
// write. client
// is src when it is the client's side, nil when it is the service's.
func (p *Proxy) pipe(dst, src, client net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			holding, wait := p.gate()
			switch {
			case holding && client != nil:
				p.mu.Lock()
				p.waiting[client] = true
				p.chunks = append(p.chunks, bytes.Clone(buf[:n]))
				p.mu.Unlock()
			case !holding && client == nil:
				// Read after the release: an answer to what was held,
				// not something the service sent before it.
				p.mu.Lock()
				delete(p.waiting, dst)
				p.mu.Unlock()
			}
			if client != nil {
				<-wait
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				_ = src.Close()
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				_ = tc.CloseWrite() // deliver the end after what was held
			} else {
				_ = dst.Close()
			}
			return
		}
	}
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.Release()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}
