package cdc_test

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/cdc/wal"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// cdcProc is one `swapmeet cdc` process of a failover test.
type cdcProc struct {
	name string
	cmd  *exec.Cmd
	logs *itest.Output
}

func startCDC(t *testing.T, e *itest.Env, name string, env ...string) *cdcProc {
	t.Helper()
	cmd, logs := startCDCProcessLogged(t, e, env...)
	return &cdcProc{name: name, cmd: cmd, logs: logs}
}

func (p *cdcProc) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatalf("signal %s to %s: %v", s, p.name, err)
	}
}

// standbyCount is how often the process has reported becoming a standby.
func (p *cdcProc) standbyCount() int {
	return strings.Count(p.logs.String(), "standby: another process streams the slot")
}

// leaderPID is the pid of the process streaming e's slot, as Postgres
// names it (see wal.Config.Name); 0 when none does.
func leaderPID(ctx context.Context, e *itest.Env) (int, error) {
	s, err := wal.ReadSlotStatus(ctx, e.PG, e.Slot)
	if err != nil || !s.Active {
		return 0, err
	}
	_, after, ok := strings.Cut(s.Leader, " pid ")
	if !ok {
		return 0, nil // the walsender is starting; its application name comes with it
	}
	pid, _ := strconv.Atoi(strings.Fields(after)[0])
	return pid, nil
}

func waitLeader(t *testing.T, e *itest.Env, p *cdcProc, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	itest.Eventually(t, within, p.name+" to lead", func() (bool, error) {
		pid, err := leaderPID(context.Background(), e)
		return pid == p.cmd.Process.Pid, err
	})
	return time.Since(start)
}

// withPGOption adds a server setting to a Postgres URL's options.
func withPGOption(t *testing.T, pgURL, setting string) string {
	t.Helper()
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("options", strings.TrimSpace(q.Get("options")+" -c "+setting))
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20") // libpq reads + literally
	return u.String()
}

// TestFailoverUnderLoad: two `swapmeet cdc` processes run under a mixed
// write load; exactly one streams. The leader is SIGKILLed, once after
// 30 s of load and once soon after the first takeover; each
// time the standby takes over and writes become visible through tokens
// again within 10 s of the kill. The read side ends equal to Postgres.
func TestFailoverUnderLoad(t *testing.T) {
	e := itest.New(t)
	_, a := e.StartAPI(t)
	ctx := context.Background()

	procs := []*cdcProc{startCDC(t, e, "first")}
	waitLeader(t, e, procs[0], 60*time.Second)
	procs = append(procs, startCDC(t, e, "second"))
	itest.Eventually(t, 30*time.Second, "the second process to stand by", func() (bool, error) {
		return procs[1].standbyCount() > 0, nil
	})

	loadCtx, stopLoad := context.WithCancel(ctx)
	w := itest.NewWorkload(a, 7)
	var wg sync.WaitGroup
	var loadErr error
	wg.Add(2)
	go func() { // a steady 50 writes a second, which one CDC keeps up with
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
			if err := w.Step(loadCtx); err != nil && loadCtx.Err() == nil {
				loadErr = err
				return
			}
		}
	}()
	go func() { // readers fill the cache meanwhile
		defer wg.Done()
		for loadCtx.Err() == nil {
			for _, id := range w.UserIDs() {
				_, _ = a.Queries.GetUser(loadCtx, id.String(), "")
			}
		}
	}()
	defer func() { stopLoad(); wg.Wait() }()

	standingBy := time.Now()
	for kill := range 2 {
		leader, standby := procs[kill%2], procs[(kill+1)%2]
		before := w.Ops.Load()
		// A standby usually waits a long time before it is needed: the
		// first kill comes after 30 s of load, the second soon after.
		wait := time.Duration(0)
		if kill == 0 {
			wait = 30 * time.Second
		}
		itest.Eventually(t, 90*time.Second, "the load to go on", func() (bool, error) {
			return w.Ops.Load() >= before+20 && time.Since(standingBy) >= wait, nil
		})
		leader.signal(t, syscall.SIGKILL)
		killed := time.Now()
		_ = leader.cmd.Wait()
		// A write made after the kill, and everything the load wrote
		// before it, must become readable through a token within 10 s.
		execSQL(t, e, `UPDATE users SET bio = 'written after kill ' || $1 WHERE id = (SELECT id FROM users ORDER BY id LIMIT 1)`, fmt.Sprint(kill+1))
		token := e.CurrentLSN(t)
		itest.Eventually(t, 10*time.Second, fmt.Sprintf("the standby to apply the writes made before kill %d", kill+1), func() (bool, error) {
			return appliedLSN(t, e) >= token, nil
		})
		took := time.Since(killed)
		waitLeader(t, e, standby, 10*time.Second)
		t.Logf("kill %d: tokens served again %s after the kill", kill+1, took.Round(10*time.Millisecond))
		// The killed process comes back as the next standby.
		procs[kill%2] = startCDC(t, e, leader.name+" again")
		itest.Eventually(t, 30*time.Second, "the restarted process to stand by", func() (bool, error) {
			return procs[kill%2].standbyCount() > 0, nil
		})
	}
	stopLoad()
	wg.Wait()
	if loadErr != nil {
		t.Fatalf("writes failed: %v", loadErr)
	}
	e.WaitConverged(t, 120*time.Second)
	stale, err := e.StaleCacheEntries(ctx)
	if err != nil || len(stale) > 0 {
		t.Fatalf("stale cache entries: %v %v", stale, err)
	}
	t.Logf("%d writes across 2 failovers", w.Ops.Load())
}

// TestZombieLeaderIsFenced: the leader is partitioned from the read store
// in the middle of a 5,000-listing import, with writes on the wire, and
// then paused (SIGSTOP). The standby takes over once the walsender gives
// up on the paused process, applies the import, then an update of every
// listing. The old leader's held writes then arrive, and it is woken and
// finishes its batch. Its writes are older than the stored documents, so
// they change nothing: the read side equals Postgres and no cache entry
// is stale.
func TestZombieLeaderIsFenced(t *testing.T) { zombieLeaderIsFenced(t) }

// TestZombieLeaderIsFencedInsideABulk is TestZombieLeaderIsFenced with
// both processes writing bulks of 4 documents (one worker: inside
// FerretDB's pool): the held bulks land on newer documents, each refused
// document in the middle of a bulk changes nothing, and the documents
// after it are still written.
func TestZombieLeaderIsFencedInsideABulk(t *testing.T) {
	zombieLeaderIsFenced(t, "SWAPMEET_MONGO_BULK_SIZE=4", "SWAPMEET_CDC_WORKERS=1")
}

// zombieLeaderIsFenced runs the zombie scenario with both processes
// configured by env.
func zombieLeaderIsFenced(t *testing.T, env ...string) {
	const listings = 5_000
	const walSenderTimeout = 5 * time.Second
	e := itest.New(t)
	_, a := e.StartAPI(t)
	ctx := context.Background()

	mongo, err := url.Parse(e.MongoURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := itest.StartProxy(t, mongo.Host)
	partitioned := *mongo
	partitioned.Host = proxy.Addr()
	pgURL := withPGOption(t, e.PGURL, fmt.Sprintf("wal_sender_timeout=%dms", walSenderTimeout.Milliseconds()))

	old := startCDC(t, e, "old leader", append([]string{"SWAPMEET_PG_URL=" + pgURL, "SWAPMEET_MONGO_URL=" + partitioned.String()}, env...)...)
	waitLeader(t, e, old, 60*time.Second)
	standby := startCDC(t, e, "standby", append([]string{"SWAPMEET_PG_URL=" + pgURL}, env...)...)
	itest.Eventually(t, 30*time.Second, "the standby to stand by", func() (bool, error) {
		return standby.standbyCount() > 0, nil
	})

	e.SeedOneSeller(t, listings)
	imported := e.CurrentLSN(t)
	itest.Eventually(t, 120*time.Second, "the old leader to start writing the import", func() (bool, error) {
		n, err := e.Reads.DB().Collection(e.Reads.Physical(readstore.Listings)).EstimatedDocumentCount(ctx)
		return n > 0, err
	})
	// Partition it with writes on the wire, then pause it.
	proxy.Hold()
	// Writes of the import (Mongo "update" commands) are on the wire.
	itest.Eventually(t, 30*time.Second, "writes to be held on the wire", func() (bool, error) {
		return proxy.HeldWith("update") >= 1, nil
	})
	old.signal(t, syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			_ = old.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()

	took := waitLeader(t, e, standby, walSenderTimeout+10*time.Second)
	t.Logf("the standby took over %s after the pause (wal_sender_timeout %s)", took.Round(10*time.Millisecond), walSenderTimeout)
	waitApplied(t, e, imported)
	execSQL(t, e, `UPDATE listings SET price_minor = 2000, version = version + 1`)
	updated := e.CurrentLSN(t)
	itest.Eventually(t, 120*time.Second, "the standby to apply the update", func() (bool, error) {
		return appliedLSN(t, e) >= updated, nil
	})
	// Readers cache the new state.
	rows, err := e.PG.Query(ctx, `SELECT id::text FROM listings ORDER BY id LIMIT 200`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if _, err := a.Queries.GetListing(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
	}

	// The partition heals: what the old leader had on the wire lands, and
	// the read store answers it.
	held := proxy.Held()
	proxy.Release()
	itest.Eventually(t, 30*time.Second, "the held writes to be answered", func() (bool, error) {
		return proxy.Answered(), nil
	})
	t.Logf("%d bytes of the old leader's traffic were held on the wire, with %d writes", held, proxy.HeldWith("update"))
	regressed := func(when string) {
		n, err := e.Reads.DB().Collection(e.Reads.Physical(readstore.Listings)).CountDocuments(ctx,
			map[string]any{"version": map[string]any{"$lt": 2}})
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			t.Errorf("%s: %d listings went back to version 1", when, n)
		}
	}
	regressed("after the held writes landed")

	// The old leader wakes and finishes its batch against newer documents.
	old.signal(t, syscall.SIGCONT)
	stopped = false
	itest.Eventually(t, 5*time.Minute, "the old leader to finish its batch and stand by", func() (bool, error) {
		return old.standbyCount() > 0, nil
	})
	regressed("after the old leader finished")
	if d, err := e.Drift(ctx); err != nil || d != "" {
		t.Fatalf("drift after the old leader woke (%v):\n%s", err, d)
	}
	stale, err := e.StaleCacheEntries(ctx)
	if err != nil || len(stale) > 0 {
		t.Fatalf("stale cache entries: %v %v", stale, err)
	}
	if pid, err := leaderPID(ctx, e); err != nil || pid != standby.cmd.Process.Pid {
		t.Fatalf("the slot is led by pid %d (%v), want the standby %d", pid, err, standby.cmd.Process.Pid)
	}
}

// TestZombieLeaderCannotRegressSearch: the same partition as
// TestZombieLeaderIsFenced, between the leader and the search store this
// time. The leader is cut off in the middle of an import with a batch of
// search rows on the wire, and paused. The standby takes over, applies the
// import and then an update of every listing. The held rows then reach the
// search store, carrying the import's version and positions: the fence
// turns them away, and no search row goes back to version 1, nor after the
// old leader wakes and finishes.
func TestZombieLeaderCannotRegressSearch(t *testing.T) {
	const listings = 5_000
	const walSenderTimeout = 5 * time.Second
	e := itest.New(t)
	ctx := context.Background()

	searchURL, err := url.Parse(e.Config().SearchURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := itest.StartProxy(t, searchURL.Host)
	partitioned := *searchURL
	partitioned.Host = proxy.Addr()
	pgURL := withPGOption(t, e.PGURL, fmt.Sprintf("wal_sender_timeout=%dms", walSenderTimeout.Milliseconds()))

	old := startCDC(t, e, "old leader", "SWAPMEET_PG_URL="+pgURL, "SWAPMEET_SEARCH_URL="+partitioned.String())
	waitLeader(t, e, old, 60*time.Second)
	standby := startCDC(t, e, "standby", "SWAPMEET_PG_URL="+pgURL)
	itest.Eventually(t, 30*time.Second, "the standby to stand by", func() (bool, error) {
		return standby.standbyCount() > 0, nil
	})
	count := func(where string) int64 {
		t.Helper()
		var n int64
		if err := e.Search.Pool().QueryRow(ctx, `SELECT count(*) FROM search_listings WHERE `+where).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	e.SeedOneSeller(t, listings)
	imported := e.CurrentLSN(t)
	itest.Eventually(t, 120*time.Second, "the old leader to start writing the import's search rows", func() (bool, error) {
		return count("true") > 0, nil
	})
	proxy.Hold()
	// A batch of the import's rows (titles "Item n") is on the wire.
	itest.Eventually(t, 30*time.Second, "search rows to be held on the wire", func() (bool, error) {
		return proxy.HeldWith("Item ") >= 1, nil
	})
	old.signal(t, syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			_ = old.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()

	waitLeader(t, e, standby, walSenderTimeout+10*time.Second)
	waitApplied(t, e, imported)
	execSQL(t, e, `UPDATE listings SET price_minor = 2000, version = version + 1`)
	updated := e.CurrentLSN(t)
	itest.Eventually(t, 120*time.Second, "the standby to apply the update", func() (bool, error) {
		return appliedLSN(t, e) >= updated, nil
	})
	if n := count("version < 2"); n > 0 {
		t.Fatalf("%d search rows at version 1 before the partition healed", n)
	}

	held := proxy.Held()
	proxy.Release()
	itest.Eventually(t, 30*time.Second, "the held writes to be answered", func() (bool, error) {
		return proxy.Answered(), nil
	})
	t.Logf("%d bytes of the old leader's search traffic were held on the wire", held)
	regressed := func(when string) {
		if n := count("version < 2"); n > 0 {
			t.Errorf("%s: %d search rows went back to version 1", when, n)
		}
		if n := count("status = 'AVAILABLE'"); n != listings {
			t.Errorf("%s: %d available search rows, want %d", when, n, listings)
		}
	}
	regressed("after the held writes landed")

	old.signal(t, syscall.SIGCONT)
	stopped = false
	itest.Eventually(t, 5*time.Minute, "the old leader to finish its batch and stand by", func() (bool, error) {
		return old.standbyCount() > 0, nil
	})
	regressed("after the old leader finished")
	if d, err := e.Drift(ctx); err != nil || d != "" {
		t.Fatalf("drift after the old leader woke (%v):\n%s", err, d)
	}
	// The held writes carried history entries too: written again by the
	// old leader after the standby's, they changed nothing, and the
	// history still ends at every row and chains.
	wantHistoryClean(t, e, listings)
}
