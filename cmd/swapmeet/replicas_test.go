package main

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"connectrpc.com/connect"

	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/itest"
)

// replica is one `swapmeet serve` process.
type replica struct {
	name     string
	addr     string // host:port of its API
	cmd      *exec.Cmd
	users    swapmeetv1connect.UserServiceClient
	listings swapmeetv1connect.ListingServiceClient
	history  swapmeetv1connect.HistoryServiceClient
	metrics  string // its /metrics URL
}

var (
	servingAt = regexp.MustCompile(`msg=serving addr=(\S+)`)
	metricsAt = regexp.MustCompile(`msg=metrics addr=(\S+)`)
)

func startReplica(t *testing.T, e *itest.Env, name string, env ...string) replica {
	t.Helper()
	env = append([]string{"SWAPMEET_HTTP_ADDR=127.0.0.1:0", "SWAPMEET_API_METRICS_ADDR=127.0.0.1:0"}, env...)
	cmd, out := e.StartProcess(t, []string{"serve"}, env...)
	var addr, metrics string
	itest.Eventually(t, 60*time.Second, name+" to serve", func() (bool, error) {
		m, mm := servingAt.FindStringSubmatch(out.String()), metricsAt.FindStringSubmatch(out.String())
		if m == nil || mm == nil {
			return false, nil
		}
		addr, metrics = m[1], mm[1]
		return true, nil
	})
	return replica{
		name: name, addr: addr, cmd: cmd, metrics: metrics,
		users:    swapmeetv1connect.NewUserServiceClient(http.DefaultClient, "http://"+addr),
		listings: swapmeetv1connect.NewListingServiceClient(http.DefaultClient, "http://"+addr),
		history:  swapmeetv1connect.NewHistoryServiceClient(http.DefaultClient, "http://"+addr),
	}
}

func bearer[T any](msg *T, token string) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", "Bearer "+token)
	return req
}

// TestReplicasShareEverythingAClientReliesOn: two `swapmeet serve`
// processes on the same stores. A session made through one works on the
// other; a consistency token from one is honoured by the other; a sign-out
// through one reaches the other within the session cache's bound; and the
// per-email sign-in limit counts attempts made through both.
func TestReplicasShareEverythingAClientReliesOn(t *testing.T) {
	const sessionCache = 2 * time.Second
	e := itest.New(t)
	e.StartCDC(t)
	env := []string{
		"SWAPMEET_SESSION_CACHE_TTL=" + sessionCache.String(),
		"SWAPMEET_LIMIT_SIGNIN_PER_EMAIL=4",
		"SWAPMEET_LIMIT_SIGNIN_PER_CLIENT=0",
	}
	a, b := startReplica(t, e, "replica a", env...), startReplica(t, e, "replica b", env...)
	ctx := context.Background()

	up, err := a.users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{
		Email: "replicas@example.com", Password: "correct horse battery", DisplayName: "Ada",
	}))
	if err != nil {
		t.Fatal(err)
	}
	session, user := up.Msg.SessionToken, up.Msg.UserId

	// A's token, read through B.
	got, err := b.users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: user, ConsistencyToken: up.Msg.ConsistencyToken}))
	if err != nil || got.Msg.GetUser().GetDisplayName() != "Ada" {
		t.Fatalf("the sign-up through a, read through b with its token: %v %v", got, err)
	}
	// A's session, used on B; B's token, read through A.
	name := "Ada Lovelace"
	upd, err := b.users.UpdateProfile(ctx, bearer(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, session))
	if err != nil {
		t.Fatalf("the session made through a, used on b: %v", err)
	}
	got, err = a.users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: user, ConsistencyToken: upd.Msg.ConsistencyToken}))
	if err != nil || got.Msg.GetUser().GetDisplayName() != name {
		t.Fatalf("the update through b, read through a with its token: %v %v", got, err)
	}

	// Signed out through A, the session stops working on B (which has
	// it cached) within the cache's bound.
	if _, err := a.users.SignOut(ctx, bearer(&swapmeetv1.SignOutRequest{}, session)); err != nil {
		t.Fatal(err)
	}
	out := time.Now()
	bio := "still here?"
	itest.Eventually(t, sessionCache+5*time.Second, "b to refuse the signed-out session", func() (bool, error) {
		_, err := b.users.UpdateProfile(ctx, bearer(&swapmeetv1.UpdateProfileRequest{Bio: &bio}, session))
		if err == nil {
			return false, nil
		}
		return connect.CodeOf(err) == connect.CodeUnauthenticated, err
	})
	if took := time.Since(out); took > sessionCache+time.Second {
		t.Errorf("b accepted the signed-out session for %s, the bound is %s", took, sessionCache)
	}

	// Four wrong passwords, alternating replicas, use up the email's limit
	// on both.
	for i := range 5 {
		r := []replica{a, b}[i%2]
		_, err := r.users.SignIn(ctx, connect.NewRequest(&swapmeetv1.SignInRequest{Email: "replicas@example.com", Password: "wrong password"}))
		want := connect.CodeUnauthenticated
		if i == 4 {
			want = connect.CodeResourceExhausted
		}
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != want {
			t.Fatalf("sign-in %d through %s: %v, want %s", i+1, r.name, err, want)
		}
	}
}
