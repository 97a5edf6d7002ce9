package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/swapmeet/swapmeet/internal/app"
	"github.com/swapmeet/swapmeet/internal/cache"
	"github.com/swapmeet/swapmeet/internal/password"
	"github.com/swapmeet/swapmeet/internal/system"
	"github.com/swapmeet/swapmeet/internal/wait"
)

// The harness: how a failed step ends its figure; each suite's own share
// of the services (a system.Scratch); the API and the CDC run in this
// process or as `swapmeet` processes on it, stopped when the suite ends.

// failure carries a step's error to the figure's recovered.
type failure struct{ err error }

// check ends the figure with err, if not nil; only in the figure's own goroutine.
func check(err error) {
	if err != nil {
		panic(failure{err})
	}
}

func must[T any](v T, err error) T {
	check(err)
	return v
}

// recovered, deferred by a figure, turns check's failure into its error; its rows stand.
func recovered(err *error) {
	if r := recover(); r != nil {
		f, ok := r.(failure)
		if !ok {
			panic(r)
		}
		*err = errors.Join(*err, f.err)
	}
}

// env is a suite's scratch share; what starts on it stops (OnClose) before it is dropped.
type env struct {
	*system.Scratch
	log *slog.Logger
}

// withEnv runs fn on a fresh scratch share and drops it however fn ended.
func withEnv(ctx context.Context, fn func(e *env) ([]row, error)) ([]row, error) {
	cfg, err := system.LoadConfig()
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	s, err := system.NewScratch(ctx, cfg, "swapmeet_bench_", nil)
	if err != nil {
		return nil, err
	}
	rows, err := fn(&env{Scratch: s, log: slog.New(slog.DiscardHandler)})
	return rows, errors.Join(err, s.Close())
}

func (e *env) cache() *cache.Cache { return cache.New(e.Redis, e.Config.RedisPrefix) }

// asOwner runs sql as the schema's owner: the fixtures' DDL and ANALYZE,
// which the application's role may not run.
func (e *env) asOwner(ctx context.Context, sql string) {
	check(system.AdminExec(ctx, e.Config.MigrationURL(), sql))
}

// api is an API served in this process (app set) or by `swapmeet serve` (proc set).
type api struct {
	url  string
	app  *app.App
	proc *process
}

// startAPI serves the API in process as serve does, without per-client or per-seller limits.
func (e *env) startAPI(adjust func(*system.Config)) *api { return e.startAPIOn(e.Clients(), adjust) }

// startAPIOn is startAPI on clients of the caller's (the env's, with one swapped).
func (e *env) startAPIOn(clients *system.Clients, adjust func(*system.Config)) *api {
	cfg := e.Config
	// A count of 0 is no limit: only the hash gate and its window stay.
	cfg.Limits = app.Limits{Window: app.DefaultLimits.Window, HashWait: app.DefaultLimits.HashWait, HashConcurrency: 32}
	cfg.RequestTimeout = 0
	if adjust != nil {
		adjust(&cfg)
	}
	a := must(system.NewAPI(cfg, clients, e.log, system.APIOptions{Password: password.Params{MemoryKiB: 1024, Time: 1, Threads: 1}, Media: e.Media}))
	ln := must(net.Listen("tcp", "127.0.0.1:0"))
	ctx, cancel := context.WithCancel(context.Background())
	stop := a.Start(ctx)
	srv := a.HTTPServer()
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	e.OnClose(func() error { cancel(); stop(); return srv.Close() })
	return &api{url: "http://" + ln.Addr().String(), app: a.App}
}

// startCDC runs `swapmeet cdc`'s loop in this process until the suite ends.
func (e *env) startCDC(ctx context.Context) {
	e.startCDCOn(ctx, e.Clients())
	e.waitForSlot(ctx)
}

// startCDCOn runs the CDC's loop on clients until stop is called or the suite ends.
func (e *env) startCDCOn(ctx context.Context, clients *system.Clients) (stop func() error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- system.NewCDC(e.Config, clients, e.log, nil).Run(rctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
				if errors.Is(err, context.Canceled) {
					err = nil
				}
			case <-time.After(10 * time.Second):
				err = errors.New("cdc did not stop within 10s")
			}
		})
		return err
	}
	e.OnClose(stop)
	return stop
}

// waitForSlot returns once a CDC has initialised the read side: every commit reaches it.
func (e *env) waitForSlot(ctx context.Context) {
	check(poll(ctx, 30*time.Second, "the read side to be initialised", func() bool { _, err := e.Reads.LoadPointer(ctx); return err == nil }))
}

// poll calls cond every 20 ms until it holds, for up to within.
func poll(ctx context.Context, within time.Duration, what string, cond func() bool) error {
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", within, what)
		}
		if !wait.Sleep(ctx, 20*time.Millisecond) {
			return context.Cause(ctx)
		}
	}
	return nil
}

// h2c is a client of its own connection, cleartext HTTP/2 with prior knowledge, as h2load.
func h2c() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p, MaxIdleConnsPerHost: 64}}
}

// swapmeetBinary returns -cdc-bin, or builds ./cmd/swapmeet for the suite.
func swapmeetBinary(ctx context.Context, e *env) string {
	if swapmeetBin != "" {
		return swapmeetBin
	}
	dir := must(os.MkdirTemp("", "swapmeet-bench-"))
	e.OnClose(func() error { return os.RemoveAll(dir) })
	bin := filepath.Join(dir, "swapmeet")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/swapmeet/swapmeet/cmd/swapmeet").CombinedOutput(); err != nil {
		check(fmt.Errorf("go build ./cmd/swapmeet (run the bench from the repository): %w\n%s", err, out))
	}
	return bin
}

// process is a running `swapmeet <command>`.
type process struct {
	command string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once it has ended; err says how
	err     error
	metrics *atomic.Pointer[string] // the URL of its metrics, once it has said it; nil: none
}

// startProcess runs `swapmeet command` on the env until the suite ends, logging to stderr.
func startProcess(e *env, bin, command string, onLine func(string), extra ...string) *process {
	cmd := exec.Command(bin, command)
	cmd.Env = append(append(os.Environ(), e.Environ()...), append([]string{"SWAPMEET_LOG_LEVEL=info", "SWAPMEET_LOG_FORMAT=text"}, extra...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} // dies with the bench
	out := must(cmd.StderrPipe())
	cmd.Stdout = cmd.Stderr
	check(cmd.Start())
	p := &process{command: command, cmd: cmd, exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Buffer(make([]byte, 64<<10), 1<<20); sc.Scan(); {
			progress("  %s[%d]: %s", command, cmd.Process.Pid, sc.Text())
			if onLine != nil {
				onLine(sc.Text())
			}
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	e.OnClose(func() error { _ = p.stop(15 * time.Second); return nil })
	return p
}

func startCDCProcess(e *env, bin string) *process {
	metrics := new(atomic.Pointer[string])
	p := startProcess(e, bin, "cdc", func(line string) {
		if a, ok := logAddr(line, "metrics"); ok {
			metrics.Store(&a)
		}
	}, "SWAPMEET_CDC_METRICS_ADDR=127.0.0.1:0")
	p.metrics = metrics
	return p
}

// logAddr is the addr= field of a log line whose message is msg.
func logAddr(line, msg string) (string, bool) {
	if !strings.Contains(line, "msg="+msg) {
		return "", false
	}
	for f := range strings.FieldsSeq(line) {
		if a, ok := strings.CutPrefix(f, "addr="); ok {
			return a, true
		}
	}
	return "", false
}

// startServeProcess runs `swapmeet serve` on a free port and returns once it serves.
func startServeProcess(ctx context.Context, e *env, bin string, extra ...string) *api {
	addr := make(chan string, 1)
	p := startProcess(e, bin, "serve", func(line string) {
		if a, ok := logAddr(line, "serving"); ok {
			select {
			case addr <- a:
			default:
			}
		}
	}, append([]string{"SWAPMEET_HTTP_ADDR=127.0.0.1:0", "SWAPMEET_API_METRICS_ADDR=127.0.0.1:0",
		// The load comes from one address: the per-client query limits
		// would measure themselves.
		"SWAPMEET_LIMIT_QUERIES_PER_CLIENT=0", "SWAPMEET_LIMIT_STREAM_OPENS_PER_CLIENT=0"}, extra...)...)
	select {
	case a := <-addr:
		return &api{url: "http://" + a, proc: p}
	case <-p.exited:
		check(p.running())
	case <-time.After(30 * time.Second):
		check(errors.New("swapmeet serve did not say where it serves within 30s"))
	case <-ctx.Done():
		check(context.Cause(ctx))
	}
	return nil
}

// running is nil while the process is up, and says how it ended after.
func (p *process) running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("swapmeet %s (pid %d) ended: %v (its log is above)", p.command, p.cmd.Process.Pid, p.err)
	default:
		return nil
	}
}

// stop sends SIGTERM, and SIGKILL if the process has not ended within grace.
func (p *process) stop(grace time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("swapmeet %s (pid %d) did not stop within %s of SIGTERM; killed", p.command, p.cmd.Process.Pid, grace)
}

// memory reads the process's resident set and its peak.
func (p *process) memory() (rss, peak int64, err error) { return memoryOf(p.cmd.Process.Pid) }

func memoryOf(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseProcMemory(string(b))
}

// parseProcMemory reads VmRSS and VmHWM, in bytes, from /proc/<pid>/status.
func parseProcMemory(status string) (rss, peak int64, err error) {
	for line := range strings.Lines(status) {
		var kb int64
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			rss = kb << 10
		} else if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		return 0, 0, errors.New("no VmRSS and VmHWM in /proc status")
	}
	return rss, peak, nil
}

var started = time.Now()

// progress writes a timestamped line to stderr; stdout is kept for the table.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

// rateResult is what a closed-loop run of a Go client observed.
type rateResult struct {
	calls     int
	elapsed   time.Duration
	lat       latencies
	exhausted bool // the items ran out before the time was up
}

func (r rateResult) rate() float64 { return perSecond(int64(r.calls), r.elapsed) }

func (r rateResult) String() string {
	return fmt.Sprintf("%.0f/s, p50 %s, p99 %s", r.rate(), ms(r.lat.p50), ms(r.lat.p99))
}

// warmupFor is how long a load runs unmeasured first.
func warmupFor(d time.Duration) time.Duration { return min(time.Second, d/5) }

// pool hands out each item once, to whichever client asks next.
type pool[T any] struct {
	items []T
	next  atomic.Int64
}

// hammer runs clients goroutines that call f back to back for d, each
// on the next item of p until it runs out. The first error fails the
// figure: failing calls measure nothing.
func hammer[T any](parent context.Context, clients int, d time.Duration, p *pool[T], f func(ctx context.Context, worker int, item T) error) rateResult {
	ctx, stop := context.WithCancel(parent)
	defer stop()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		firstErr error
	)
	start := time.Now()
	for worker := range clients {
		wg.Go(func() {
			var lat []time.Duration
			var err error
			for i := p.next.Add(1) - 1; i < int64(len(p.items)) && time.Since(start) < d && ctx.Err() == nil; i = p.next.Add(1) - 1 {
				t0 := time.Now()
				if err = f(ctx, worker, p.items[i]); err != nil {
					break
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, lat...)
			if err != nil && ctx.Err() == nil { // failing because the run stopped is no news
				firstErr = cmp.Or(firstErr, err)
				stop()
			}
		})
	}
	wg.Wait()
	check(cmp.Or(firstErr, context.Cause(parent)))
	return rateResult{calls: len(all), elapsed: time.Since(start), lat: summarize(all), exhausted: p.next.Load() >= int64(len(p.items))}
}

// stageSeconds reads the CDC process's swapmeet_cdc_stage_seconds_total
// by stage; nil when p is nil or its metrics cannot be read.
func (p *process) stageSeconds() map[string]float64 {
	if p == nil || p.metrics == nil || p.metrics.Load() == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *p.metrics.Load(), nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Buffer(make([]byte, 64<<10), 1<<20); sc.Scan(); {
		rest, ok := strings.CutPrefix(sc.Text(), `swapmeet_cdc_stage_seconds_total{stage="`)
		if !ok {
			continue
		}
		stage, value, ok := strings.Cut(rest, `"} `)
		if v, err := strconv.ParseFloat(value, 64); ok && err == nil {
			out[stage] = v
		}
	}
	return out
}

// stageShares reads like "written 61%, received 22%, ..." (largest first)
// of what each stage added between two readings of stageSeconds, or
// "not read".
func stageShares(before, after map[string]float64) string {
	type share struct {
		stage string
		secs  float64
	}
	var shares []share
	total := 0.0
	for stage, v := range after {
		if d := v - before[stage]; d > 0 {
			shares, total = append(shares, share{stage, d}), total+d
		}
	}
	if before == nil || total == 0 {
		return "not read"
	}
	slices.SortFunc(shares, func(a, b share) int { return cmp.Compare(b.secs, a.secs) })
	parts := make([]string, len(shares))
	for i, s := range shares {
		parts[i] = fmt.Sprintf("%s %.0f%%", s.stage, 100*s.secs/total)
	}
	return strings.Join(parts, ", ")
}
