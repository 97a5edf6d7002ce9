package itest

import (
	"context"
	"os/exec"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swapmeet/swapmeet/internal/cache"
)

// Redis is a private Redis server that a test may stop and start.
type Redis struct {
	t    T
	port int
	cmd  *exec.Cmd
}

// StartRedis starts a private redis-server on a free loopback port.
func StartRedis(t T) *Redis {
	t.Helper()
	r := &Redis{t: t, port: freePort(t)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// URL is the server's redis:// URL.
func (r *Redis) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }

// Start runs the server (again) and waits until it answers.
func (r *Redis) Start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v (%s)", err, hint)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(r.port)})
	defer c.Close()
	Eventually(r.t, 10*time.Second, "redis on port "+strconv.Itoa(r.port), func() (bool, error) {
		err := c.Ping(context.Background()).Err()
		return err == nil, err
	})
}

// Stop kills the server.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// UseRedis points the Env at another Redis server.
func (e *Env) UseRedis(t T, url string) {
	t.Helper()
	c, err := cache.Open(url)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	e.RedisURL = url
	e.Redis = c
}
