package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/sandbox"
)

// The figures against the sink run the CDC as operators do: a `swapmeet
// cdc` process, built from this tree, on the suite's own share of the
// services. Its memory is then the process's own, read from /proc.

var cdcBinary = flag.String("cdc-bin", "", "a prebuilt swapmeet binary for the cdc and serve processes (default: go build ./cmd/swapmeet into a temporary directory)")

// buildSwapmeet builds the swapmeet command of the module that holds the
// working directory into a temporary directory, removed when the suite
// ends, and returns the binary's path.
func buildSwapmeet(ctx context.Context, e *env) (string, error) {
	if *cdcBinary != "" {
		return *cdcBinary, nil
	}
	dir, err := os.MkdirTemp("", "swapmeet-bench-")
	if err != nil {
		return "", err
	}
	e.onClose(func() error { return os.RemoveAll(dir) })
	start := time.Now()
	bin, err := sandbox.BuildSwapmeet(ctx, dir)
	if err != nil {
		return "", fmt.Errorf("run the bench from the repository: %w", err)
	}
	progress("cdc process: built swapmeet in %s", time.Since(start).Round(100*time.Millisecond))
	return bin, nil
}

// process is a running `swapmeet <command>`.
type process struct {
	command string // cdc, serve
	cmd     *exec.Cmd
	pid     int
	exited  chan struct{} // closed once the process has ended
	err     error         // how it ended; read after exited

	mu   sync.Mutex
	tail []string // its last log lines
	// onLine, if set, sees each log line as it comes.
	onLine func(string)
}

const processTailLines = 20

// startCDCProcess runs `swapmeet cdc` against the env. Its log lines are
// forwarded to stderr. The process is stopped when the suite ends.
func startCDCProcess(e *env, bin string) (*process, error) {
	return startProcess(e, bin, "cdc", nil,
		"SWAPMEET_CDC_METRICS_ADDR=127.0.0.1:0") // any free port: other CDCs run on this machine
}

// startProcess runs `swapmeet command` against the env, with env's
// variables and then extra. Its log lines are forwarded to stderr, and to
// onLine if set. The process is stopped when the suite ends.
func startProcess(e *env, bin, command string, onLine func(string), extra ...string) (*process, error) {
	cmd := exec.Command(bin, command)
	cmd.Env = append(os.Environ(), e.Environ()...)
	cmd.Env = append(cmd.Env, "SWAPMEET_LOG_LEVEL=info")
	cmd.Env = append(cmd.Env, extra...)
	// Should the bench die, the process goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start swapmeet %s: %w", command, err)
	}
	p := &process{command: command, cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{}), onLine: onLine}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		p.follow(out)
	}()
	go func() {
		<-logged
		p.err = cmd.Wait()
		close(p.exited)
	}()
	e.onClose(func() error {
		if err := p.stop(15 * time.Second); err != nil {
			progress("%s process: %v", command, err)
		}
		return nil
	})
	progress("%s process: started swapmeet %s, pid %d", command, command, p.pid)
	return p, nil
}

// startServeProcess runs `swapmeet serve` on a free port, with the env's
// variables and then extra, and returns it and its base URL once it says
// where it serves.
func startServeProcess(ctx context.Context, e *env, bin string, extra ...string) (*process, string, error) {
	addr := make(chan string, 1)
	p, err := startProcess(e, bin, "serve", func(line string) {
		if !strings.Contains(line, "msg=serving") {
			return
		}
		for f := range strings.FieldsSeq(line) {
			if a, ok := strings.CutPrefix(f, "addr="); ok {
				select {
				case addr <- a:
				default:
				}
			}
		}
	}, append([]string{
		"SWAPMEET_HTTP_ADDR=127.0.0.1:0", // any free port
		"SWAPMEET_API_METRICS_ADDR=127.0.0.1:0",
		"SWAPMEET_LOG_FORMAT=text",
	}, extra...)...)
	if err != nil {
		return nil, "", err
	}
	select {
	case a := <-addr:
		return p, "http://" + a, nil
	case <-p.exited:
		_, err := p.running()
		return nil, "", err
	case <-time.After(30 * time.Second):
		return nil, "", errors.New("swapmeet serve did not say where it serves within 30s")
	case <-ctx.Done():
		return nil, "", context.Cause(ctx)
	}
}

func (p *process) follow(out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		progress("  %s[%d]: %s", p.command, p.pid, line)
		if p.onLine != nil {
			p.onLine(line)
		}
		p.mu.Lock()
		p.tail = append(p.tail, line)
		if len(p.tail) > processTailLines {
			p.tail = p.tail[len(p.tail)-processTailLines:]
		}
		p.mu.Unlock()
	}
}

// running reports whether the process is still up, and if not, how it ended.
func (p *process) running() (bool, error) {
	select {
	case <-p.exited:
		err := p.err
		if err == nil {
			err = errors.New("exited with status 0")
		}
		p.mu.Lock()
		last := ""
		if len(p.tail) > 0 {
			last = "; last log line: " + p.tail[len(p.tail)-1]
		}
		p.mu.Unlock()
		return false, fmt.Errorf("swapmeet %s (pid %d) %w%s", p.command, p.pid, err, last)
	default:
		return true, nil
	}
}

// stop sends SIGTERM, and SIGKILL if the process has not ended within grace.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("swapmeet %s (pid %d) did not stop within %s of SIGTERM; killed", p.command, p.pid, grace)
}

// memory reads the process's resident set and its peak (VmRSS, VmHWM).
func (p *process) memory() (rss, peak int64, err error) { return memoryOf(p.pid) }

// memoryOf reads a process's resident set and its peak (VmRSS, VmHWM).
func memoryOf(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseProcMemory(string(b))
}

// parseProcMemory reads VmRSS and VmHWM, in bytes, from /proc/<pid>/status.
func parseProcMemory(status string) (rss, peak int64, err error) {
	found := 0
	for line := range strings.Lines(status) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("unexpected %s line %q", key, strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", key, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("no VmRSS and VmHWM in /proc status")
	}
	return rss, peak, nil
}

// appliedPositions reads the two signs that the CDC has applied a
// position: the applied position it publishes in Redis once the read side
// holds it, and the slot's confirmed_flush_lsn, which it acknowledges
// after that.
func appliedPositions(ctx context.Context, e *env) (published, confirmed pglogrepl.LSN, err error) {
	s, err := e.Redis.Get(ctx, cache.AppliedKeysFor(e.RedisPrefix).Applied).Result()
	if err == nil {
		v, perr := strconv.ParseUint(s, 16, 64)
		if perr != nil {
			return 0, 0, fmt.Errorf("applied position %q in redis: %w", s, perr)
		}
		published = pglogrepl.LSN(v)
	} else if !errors.Is(err, redis.Nil) {
		return 0, 0, fmt.Errorf("read the applied position: %w", err)
	}
	var c *string
	if err := e.PG.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, e.Slot).Scan(&c); err != nil {
		return 0, 0, fmt.Errorf("read the slot's confirmed position: %w", err)
	}
	if c != nil {
		if confirmed, err = pglogrepl.ParseLSN(*c); err != nil {
			return 0, 0, err
		}
	}
	return published, confirmed, nil
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
