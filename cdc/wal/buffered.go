package wal

import (
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"
)

// bufferState is whether more of the stream has arrived than was read.
type bufferState int

const (
	bufferUnknown bufferState = iota // the socket cannot be inspected (TLS)
	bufferEmpty
	bufferFilled
)

// buffered reports whether the replication connection holds bytes not
// yet read as messages: in the protocol reader's buffer, or in the
// socket's receive queue. It never blocks. Bytes a TLS layer holds are
// invisible, so on a TLS connection the answer is bufferUnknown.
func buffered(conn *pgconn.PgConn) bufferState {
	if conn.Frontend().ReadBufferLen() > 0 {
		return bufferFilled
	}
	sc, ok := conn.Conn().(syscall.Conn)
	if !ok {
		return bufferUnknown
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return bufferUnknown
	}
	n, ierr := 0, error(nil)
	if err := raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ierr != nil {
		return bufferUnknown
	}
	if n > 0 {
		return bufferFilled
	}
	return bufferEmpty
}
