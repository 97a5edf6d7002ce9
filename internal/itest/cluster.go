package itest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Cluster is a Postgres cluster of the test's own, made by
// `scripts/services.sh cluster` (as people make one by hand) on a free
// loopback port, and removed when the test ends: the failover and restore
// tests promote and replace their primary, which the shared write cluster
// must never see.
type Cluster struct {
	Name string
	Port int
}

// URL is the application's (the swapmeet role's) URL of the cluster's
// swapmeet database.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://swapmeet:swapmeet@127.0.0.1:%d/swapmeet?sslmode=disable", c.Port)
}

// OwnerURL is the schema owner's URL of the cluster's swapmeet database:
// the migrations' and the DDL's.
func (c *Cluster) OwnerURL() string {
	return fmt.Sprintf("postgres://swapmeet_owner:swapmeet_owner@127.0.0.1:%d/swapmeet?sslmode=disable", c.Port)
}

// StartCluster starts a primary like the local write cluster: logical WAL,
// the schema owner's database and the application's roles (neither a
// superuser).
func StartCluster(t T) *Cluster {
	t.Helper()
	c := newCluster(t)
	services(t, "cluster", "up", c.Name, strconv.Itoa(c.Port))
	return c
}

// Restore starts a new cluster from a base backup of c, taken now and
// recovered to its end, then promoted: a new timeline of c's history, as a
// point-in-time restore makes. c keeps running.
func (c *Cluster) Restore(t T) *Cluster {
	t.Helper()
	r := newCluster(t)
	services(t, "cluster", "restore", r.Name, strconv.Itoa(r.Port), c.Name, strconv.Itoa(c.Port))
	return r
}

// Copy starts a new cluster from a base backup of c, taken now and started
// as is: crash recovery to the backup's end, on c's timeline, as a copy of
// the data directory (a filesystem snapshot) would be. c keeps running.
func (c *Cluster) Copy(t T) *Cluster {
	t.Helper()
	r := newCluster(t)
	services(t, "cluster", "copy", r.Name, strconv.Itoa(r.Port), c.Name, strconv.Itoa(c.Port))
	return r
}

// Standby starts a streaming physical standby of c.
func (c *Cluster) Standby(t T) *Cluster {
	t.Helper()
	s := newCluster(t)
	services(t, "cluster", "standby", s.Name, strconv.Itoa(s.Port), c.Name, strconv.Itoa(c.Port))
	return s
}

// Promote makes a standby a primary.
func (c *Cluster) Promote(t T) {
	t.Helper()
	services(t, "cluster", "promote", c.Name)
}

// PauseReceiving stops a standby's WAL receiver (SIGSTOP): what the
// primary writes meanwhile waits in the connection, unread. lose then kills
// the receiver, and what it never read is lost with the connection: a
// standby that lagged, as asynchronous replication allows. The standby's
// postmaster restarts its processes and recovery goes on.
func (c *Cluster) PauseReceiving(t T) (lose func()) {
	t.Helper()
	pid, err := c.walReceiver()
	if err != nil {
		t.Fatalf("cluster %s: %v", c.Name, err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("pause the WAL receiver of %s: %v", c.Name, err)
	}
	var once sync.Once
	lose = func() { once.Do(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) }
	t.Cleanup(lose)
	return lose
}

// walReceiver finds the pid of the cluster's WAL receiver: the child of
// its postmaster whose title names it.
func (c *Cluster) walReceiver() (int, error) {
	script, err := servicesScript()
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(script)), ".data", "clusters", c.Name, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	postmaster, _, _ := strings.Cut(string(b), "\n")
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		stat, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		_, rest, ok := strings.Cut(string(stat), ") ")
		f := strings.Fields(rest)
		if !ok || len(f) < 2 || f[1] != strings.TrimSpace(postmaster) {
			continue
		}
		dir := filepath.Dir(p)
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		if strings.Contains(string(cmdline), "walreceiver") {
			return strconv.Atoi(filepath.Base(dir))
		}
	}
	return 0, errors.New("no WAL receiver: is it a streaming standby?")
}

// Stop kills the cluster's server (an immediate shutdown: a crash).
func (c *Cluster) Stop(t T) {
	t.Helper()
	services(t, "cluster", "down", c.Name)
}

func newCluster(t T) *Cluster {
	t.Helper()
	c := &Cluster{Name: randomName("pg"), Port: freePort(t)}
	t.Cleanup(func() {
		if out, err := servicesCmd("cluster", "down", c.Name, "--wipe").CombinedOutput(); err != nil {
			t.Logf("remove cluster %s: %v\n%s", c.Name, err, out)
		}
	})
	return c
}

// services runs scripts/services.sh with args, failing the test if it fails.
func services(t T, args ...string) {
	t.Helper()
	if out, err := servicesCmd(args...).CombinedOutput(); err != nil {
		t.Fatalf("scripts/services.sh %v: %v\n%s", args, err, out)
	}
}

func servicesCmd(args ...string) *exec.Cmd {
	script, err := servicesScript()
	if err != nil {
		return exec.Command("false")
	}
	return exec.Command(script, args...)
}

// servicesScript finds scripts/services.sh above the working directory
// (a package's directory, under go test).
func servicesScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "services.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("scripts/services.sh not found above the working directory")
		}
		dir = up
	}
}

// freePort is a loopback port that was free a moment ago, for a server a
// test starts.
func freePort(t T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pick a port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
