package itest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/swapmeet/swapmeet/internal/readstore"
)

// FerretDB is a private MongoDB-wire server that a test may stop and
// start, so that outages hurt no other test. It shares the read-side
// Postgres cluster that `make up` started.
type FerretDB struct {
	t    T
	addr string
	cmd  *exec.Cmd
	log  string
}

// StartFerretDB starts a private FerretDB on a free loopback port.
func StartFerretDB(t T) *FerretDB {
	t.Helper()
	bin, pgURL := os.Getenv("SWAPMEET_FERRETDB_BIN"), os.Getenv("SWAPMEET_READ_PG_URL")
	if bin == "" || pgURL == "" {
		t.Fatalf("SWAPMEET_FERRETDB_BIN and SWAPMEET_READ_PG_URL are unset; %s", hint)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pick a port: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	f := &FerretDB{t: t, addr: addr, log: filepath.Join(os.TempDir(), "swapmeet-test-ferretdb-"+randomName("")+".log")}
	f.Start()
	t.Cleanup(func() { f.Stop(); _ = os.Remove(f.log) })
	return f
}

// URL is the server's MongoDB URL.
func (f *FerretDB) URL() string { return "mongodb://" + f.addr + "/" }

// Start runs the server (again) and waits until it answers.
func (f *FerretDB) Start() {
	f.t.Helper()
	out, err := os.OpenFile(f.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		f.t.Fatalf("%v", err)
	}
	defer out.Close()
	f.cmd = exec.Command(os.Getenv("SWAPMEET_FERRETDB_BIN"), "-listen-addr", f.addr,
		"-postgresql-url", os.Getenv("SWAPMEET_READ_PG_URL"), "-log-level", "warn")
	f.cmd.Stdout, f.cmd.Stderr = out, out
	if err := f.cmd.Start(); err != nil {
		f.t.Fatalf("start ferretdb: %v", err)
	}
	c, err := readstore.Connect(context.Background(), f.URL(), readstore.DefaultWriteConcern)
	if err != nil {
		f.t.Fatalf("%v", err)
	}
	defer c.Disconnect(context.Background())
	Eventually(f.t, 30*time.Second, "ferretdb at "+f.addr, func() (bool, error) {
		err := readstore.New(c.Database("admin")).Ping(context.Background())
		return err == nil, err
	})
}

// Stop kills the server, as a crash would.
func (f *FerretDB) Stop() {
	if f.cmd == nil || f.cmd.ProcessState != nil {
		return
	}
	_ = f.cmd.Process.Kill()
	_ = f.cmd.Wait()
}

// UseMongo points the Env's read store at another server.
func (e *Env) UseMongo(t T, url string) {
	t.Helper()
	c, err := readstore.Connect(context.Background(), url, readstore.DefaultWriteConcern)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	e.MongoURL = url
	e.Mongo = c
	e.Reads = readstore.New(c.Database(e.MongoDB))
	if err := e.Reads.Ping(context.Background()); err != nil {
		t.Fatalf("mongo at %s: %v", url, err)
	}
}
