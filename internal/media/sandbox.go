package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrBudgetExceeded means a thumbnail was given up because its decode
// passed the CPU, memory or time budget of the sandbox.
var ErrBudgetExceeded = errors.New("thumbnail budget exceeded")

// Sandbox makes thumbnails in a child process under hard limits. Go's
// image decoders cannot be cancelled and take no budget, so neither a
// context nor a goroutine bounds what a decode spends; a process can be
// limited by the kernel and killed. The child is this same executable
// (swapmeet, or a test binary: both link this package), started with
// childEnv set, which runs childMain from this package's init and never
// reaches main. See docs/media.md, "Thumbnails".
type Sandbox struct {
	CPU    time.Duration // RLIMIT_CPU of the child: past it the kernel kills it
	Memory int64         // RLIMIT_DATA of the child, in bytes (not applied under the race detector)
	Wall   time.Duration // the child is killed after this long, whatever it spent
}

// DefaultSandbox is the budget of `serve`'s thumbnail worker. A baseline
// JPEG at MaxPixels decodes in about a second, a progressive one with
// MaxJPEGScans scans in a few; the memory covers MaxDecodeBytes, the
// scaler's buffers and the runtime.
var DefaultSandbox = Sandbox{CPU: 10 * time.Second, Memory: 1 << 30, Wall: 20 * time.Second}

const (
	childEnv       = "SWAPMEET_THUMBNAIL_CHILD"
	childCPUEnv    = "SWAPMEET_THUMBNAIL_CPU_SECONDS"
	childMemoryEnv = "SWAPMEET_THUMBNAIL_MEMORY_BYTES"
	// exitInvalid is the child's exit code for an image that is not valid:
	// its message, on stderr, is ErrInvalidImage's.
	exitInvalid = 3
	// maxThumbnailBytes bounds what is read of the child's output: a
	// 320×320 JPEG is far smaller.
	maxThumbnailBytes = 4 << 20
)

func init() {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childMain(os.Stdin, os.Stdout, os.Stderr))
	}
}

// Thumbnail runs Thumbnail(data, contentType) in a child process. An
// image that is not valid is ErrInvalidImage; one whose decode passes the
// budget is ErrBudgetExceeded; when ctx ends, the child is killed at once
// and ctx's error returned.
func (s Sandbox) Thumbnail(ctx context.Context, data []byte, contentType string) ([]byte, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("thumbnail: find the executable: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, s.Wall)
	defer cancel()
	cmd := exec.CommandContext(wctx, self)
	cmd.Env = []string{
		childEnv + "=1",
		childCPUEnv + "=" + strconv.Itoa(max(1, int(s.CPU.Round(time.Second)/time.Second))),
		childMemoryEnv + "=" + strconv.FormatInt(s.Memory, 10),
		"GOMAXPROCS=1",
		"GOTRACEBACK=none",
	}
	cmd.Args = []string{"swapmeet-thumbnail", contentType}
	cmd.Stdin = bytes.NewReader(data)
	var stdout, stderr limitedBuffer
	stdout.limit, stderr.limit = maxThumbnailBytes, 4<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = time.Second // output pipes of a killed child are not waited for
	start := time.Now()
	// Pdeathsig follows the thread that started the child: keep it.
	runtime.LockOSThread()
	err = cmd.Run()
	runtime.UnlockOSThread()
	switch {
	case err == nil && stdout.truncated:
		return nil, fmt.Errorf("thumbnail process: more than %d bytes of output", stdout.limit)
	case err == nil:
		return stdout.Bytes(), nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case wctx.Err() != nil:
		return nil, fmt.Errorf("%w: no thumbnail after %s", ErrBudgetExceeded, s.Wall)
	}
	msg := strings.TrimSpace(stderr.String())
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if exit.ExitCode() == exitInvalid {
			return nil, fmt.Errorf("%w: %s", ErrInvalidImage, strings.TrimPrefix(msg, ErrInvalidImage.Error()+": "))
		}
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && exit.UserTime()+exit.SystemTime() >= s.CPU-time.Second/2 {
			return nil, fmt.Errorf("%w: more than %s of CPU", ErrBudgetExceeded, s.CPU)
		}
		if strings.Contains(msg, "out of memory") {
			return nil, fmt.Errorf("%w: more than %d MiB of memory", ErrBudgetExceeded, s.Memory>>20)
		}
		// A signal, or the runtime's fatal exit: at its memory limit, the
		// runtime may crash where an allocation fails rather than report it.
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() || exit.ExitCode() == 2 {
			first, _, _ := strings.Cut(msg, "\n")
			return nil, fmt.Errorf("%w: the decoder died within %d MiB of memory and %s of CPU: %s",
				ErrBudgetExceeded, s.Memory>>20, s.CPU, first)
		}
	}
	return nil, fmt.Errorf("thumbnail process after %s: %w: %s", time.Since(start).Round(time.Millisecond), err, msg)
}

// childMain is the child's whole life: limit itself, read the image from
// stdin, write the thumbnail to stdout.
func childMain(stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(code int, err error) int {
		fmt.Fprintln(stderr, err)
		return code
	}
	cpu, err := strconv.ParseUint(os.Getenv(childCPUEnv), 10, 64)
	if err != nil {
		return fail(1, fmt.Errorf("thumbnail child: %s: %w", childCPUEnv, err))
	}
	// Soft and hard alike: the Go runtime ignores SIGXCPU, so the limit is
	// the kernel's SIGKILL at the hard one.
	if err := syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: cpu, Max: cpu}); err != nil {
		return fail(1, fmt.Errorf("thumbnail child: limit CPU: %w", err))
	}
	if !raceEnabled { // the race detector maps terabytes of shadow memory
		mem, err := strconv.ParseUint(os.Getenv(childMemoryEnv), 10, 64)
		if err != nil {
			return fail(1, fmt.Errorf("thumbnail child: %s: %w", childMemoryEnv, err))
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: mem, Max: mem}); err != nil {
			return fail(1, fmt.Errorf("thumbnail child: limit memory: %w", err))
		}
	}
	if len(os.Args) != 2 {
		return fail(1, errors.New("thumbnail child: want the content type as the only argument"))
	}
	data, err := io.ReadAll(io.LimitReader(stdin, 1<<30))
	if err != nil {
		return fail(1, fmt.Errorf("thumbnail child: read the image: %w", err))
	}
	thumb, err := Thumbnail(data, os.Args[1])
	if errors.Is(err, ErrInvalidImage) {
		return fail(exitInvalid, err)
	}
	if err != nil {
		return fail(1, err)
	}
	if _, err := stdout.Write(thumb); err != nil {
		return fail(1, fmt.Errorf("thumbnail child: write the thumbnail: %w", err))
	}
	return 0
}

// limitedBuffer keeps the first limit bytes written to it and discards the
// rest, so a child can neither make its parent hold more nor block on a
// pipe nobody reads.
type limitedBuffer struct {
	bytes.Buffer
	limit     int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); len(p) > room {
		b.truncated = true
		b.Buffer.Write(p[:max(0, room)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
