package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	swapmeetv1 "github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1"
	"github.com/swapmeet/swapmeet/internal/gen/swapmeet/v1/swapmeetv1connect"
	"github.com/swapmeet/swapmeet/internal/itest"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// protocols runs a test through a Connect client and a gRPC client.
var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
}

func authed[T any](msg *T, token string) *connect.Request[T] {
	req := connect.NewRequest(msg)
	if token != "" {
		req.Header().Set("Authorization", "Bearer "+token)
	}
	return req
}

func wantCode(t *testing.T, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != want {
		t.Fatalf("got error %v (code %v), want code %v", err, got, want)
	}
}

var ctx = context.Background()

func TestSignUpThenGetUserReadsTheProjection(t *testing.T) {
	e := itest.New(t)
	e.StartCDC(t)
	srv, _ := e.StartAPI(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			users := swapmeetv1connect.NewUserServiceClient(srv.Client(), srv.URL, p.opts...)
			email := fmt.Sprintf("ada-%s@example.com", p.name)
			up, err := users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{Email: email, Password: "correct horse", DisplayName: "Ada " + p.name}))
			if err != nil {
				t.Fatal(err)
			}
			if up.Msg.ConsistencyToken == "" || up.Msg.SessionToken == "" {
				t.Fatalf("sign up returned empty tokens: %v", up.Msg)
			}
			got, err := users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: up.Msg.UserId, ConsistencyToken: up.Msg.ConsistencyToken}))
			if err != nil {
				t.Fatalf("GetUser with the sign-up token: %v", err)
			}
			u := got.Msg.User
			if u.UserId != up.Msg.UserId || u.DisplayName != "Ada "+p.name || u.JoinedAt.AsTime().IsZero() || u.RatingCount != 0 {
				t.Fatalf("profile = %v", u)
			}
			// The profile came from the read store, put there by the CDC.
			doc, err := readstore.Find[readstore.User](ctx, e.Reads, readstore.Users, up.Msg.UserId)
			if err != nil || doc.DisplayName != u.DisplayName || doc.LSN == 0 {
				t.Fatalf("mongo document = %+v, %v", doc, err)
			}
			// SignUp and SignIn answer with the profile GetUser gives.
			if !proto.Equal(up.Msg.User, u) {
				t.Fatalf("SignUp's user %v, GetUser's %v", up.Msg.User, u)
			}
			in, err := users.SignIn(ctx, connect.NewRequest(&swapmeetv1.SignInRequest{Email: email, Password: "correct horse"}))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(in.Msg.User, u) {
				t.Fatalf("SignIn's user %v, GetUser's %v", in.Msg.User, u)
			}
		})
	}
}

func TestUpdateProfileReachesReadsAndEvictsTheCache(t *testing.T) {
	e := itest.New(t)
	e.StartCDC(t)
	srv, _ := e.StartAPI(t)
	users := swapmeetv1connect.NewUserServiceClient(srv.Client(), srv.URL)
	up, err := users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{Email: "grace@example.com", Password: "correct horse", DisplayName: "Grace"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: up.Msg.UserId, ConsistencyToken: up.Msg.ConsistencyToken})); err != nil {
		t.Fatal(err)
	}
	key := e.Cache().UserKey(up.Msg.UserId)
	cached, err := e.Redis.Get(ctx, key).Result()
	if err != nil || !strings.Contains(cached, "Grace") {
		t.Fatalf("after a read the cache should hold the profile; got %q, %v", cached, err)
	}

	bio := "Rear admiral."
	name := "Grace Hopper"
	upd, err := users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name, Bio: &bio}, up.Msg.SessionToken))
	if err != nil {
		t.Fatal(err)
	}
	// Once the CDC has applied the update, the old entry must be gone.
	got, err := users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: up.Msg.UserId, ConsistencyToken: upd.Msg.ConsistencyToken}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Msg.User.DisplayName != name || got.Msg.User.Bio != bio {
		t.Fatalf("profile after update = %v", got.Msg.User)
	}
	cached, err = e.Redis.Get(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cached, `Grace`) && !strings.Contains(cached, name) {
		t.Fatalf("stale cache entry survived the update: %q", cached)
	}

	// Only the bio: the name stays.
	bio2 := ""
	upd, err = users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{Bio: &bio2}, up.Msg.SessionToken))
	if err != nil {
		t.Fatal(err)
	}
	got, err = users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: up.Msg.UserId, ConsistencyToken: upd.Msg.ConsistencyToken}))
	if err != nil || got.Msg.User.DisplayName != name || got.Msg.User.Bio != "" {
		t.Fatalf("profile after clearing bio = %v, %v", got.Msg.GetUser(), err)
	}
}

func fieldViolations(err error) []string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	var fields []string
	for _, d := range ce.Details() {
		v, err := d.Value()
		if err != nil {
			continue
		}
		if br, ok := v.(*errdetails.BadRequest); ok {
			for _, fv := range br.FieldViolations {
				fields = append(fields, fv.Field)
			}
		}
	}
	return fields
}

func TestUserServiceErrors(t *testing.T) {
	e := itest.New(t)
	srv, _ := e.StartAPI(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			users := swapmeetv1connect.NewUserServiceClient(srv.Client(), srv.URL, p.opts...)
			email := "lin-" + p.name + "@example.com"
			up, err := users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{Email: email, Password: "correct horse", DisplayName: "Lin"}))
			if err != nil {
				t.Fatal(err)
			}

			_, err = users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{Email: strings.ToUpper(email), Password: "another one", DisplayName: "Lin 2"}))
			wantCode(t, err, connect.CodeAlreadyExists)

			_, err = users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{Email: "not-an-email", Password: "short", DisplayName: ""}))
			wantCode(t, err, connect.CodeInvalidArgument)
			if got := strings.Join(fieldViolations(err), ","); got != "email,password,display_name" {
				t.Errorf("field violations = %q, want email,password,display_name", got)
			}

			_, errWrong := users.SignIn(ctx, connect.NewRequest(&swapmeetv1.SignInRequest{Email: email, Password: "wrong password"}))
			_, errUnknown := users.SignIn(ctx, connect.NewRequest(&swapmeetv1.SignInRequest{Email: "nobody-" + email, Password: "wrong password"}))
			wantCode(t, errWrong, connect.CodeUnauthenticated)
			wantCode(t, errUnknown, connect.CodeUnauthenticated)
			if errWrong.(*connect.Error).Message() != errUnknown.(*connect.Error).Message() {
				t.Errorf("unknown email and wrong password must look alike: %q vs %q", errWrong, errUnknown)
			}

			in, err := users.SignIn(ctx, connect.NewRequest(&swapmeetv1.SignInRequest{Email: email, Password: "correct horse"}))
			if err != nil || in.Msg.UserId != up.Msg.UserId {
				t.Fatalf("sign in = %v, %v", in, err)
			}

			name := "Lin"
			_, err = users.UpdateProfile(ctx, connect.NewRequest(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}))
			wantCode(t, err, connect.CodeUnauthenticated)
			_, err = users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, "forged"))
			wantCode(t, err, connect.CodeUnauthenticated)
			bad := "bad\x00name"
			_, err = users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &bad}, in.Msg.SessionToken))
			wantCode(t, err, connect.CodeInvalidArgument)
			_, err = users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{}, in.Msg.SessionToken))
			wantCode(t, err, connect.CodeInvalidArgument)

			_, err = users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: "0190a0b0-0000-7000-8000-000000000000"}))
			wantCode(t, err, connect.CodeNotFound)
			_, err = users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: "nope"}))
			wantCode(t, err, connect.CodeInvalidArgument)
			_, err = users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: up.Msg.UserId, ConsistencyToken: "garbage"}))
			wantCode(t, err, connect.CodeInvalidArgument)

			// Signing out revokes that session only.
			if _, err := users.SignOut(ctx, authed(&swapmeetv1.SignOutRequest{}, in.Msg.SessionToken)); err != nil {
				t.Fatal(err)
			}
			_, err = users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, in.Msg.SessionToken))
			wantCode(t, err, connect.CodeUnauthenticated)
			if _, err := users.UpdateProfile(ctx, authed(&swapmeetv1.UpdateProfileRequest{DisplayName: &name}, up.Msg.SessionToken)); err != nil {
				t.Fatalf("the sign-up session should still work: %v", err)
			}
			_, err = users.SignOut(ctx, connect.NewRequest(&swapmeetv1.SignOutRequest{}))
			wantCode(t, err, connect.CodeUnauthenticated)
		})
	}
}

func TestConsistencyTokenTimesOutAsUnavailable(t *testing.T) {
	e := itest.New(t)
	srv, _ := e.StartAPI(t) // no CDC: the token can never be reached
	users := swapmeetv1connect.NewUserServiceClient(srv.Client(), srv.URL)
	up, err := users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{Email: "wait@example.com", Password: "correct horse", DisplayName: "Waiter"}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: up.Msg.UserId, ConsistencyToken: up.Msg.ConsistencyToken}))
	wantCode(t, err, connect.CodeUnavailable)
	if took := time.Since(start); took < time.Second {
		t.Errorf("gave up after %s; the default wait is 2s", took)
	}
	// Without a token the read answers at once: the user is not projected.
	_, err = users.GetUser(ctx, connect.NewRequest(&swapmeetv1.GetUserRequest{UserId: up.Msg.UserId}))
	wantCode(t, err, connect.CodeNotFound)
}

func TestSignInIsRateLimited(t *testing.T) {
	e := itest.New(t)
	srv, _ := e.StartAPI(t)
	users := swapmeetv1connect.NewUserServiceClient(srv.Client(), srv.URL)
	var err error
	for i := 0; i < 20 && connect.CodeOf(err) != connect.CodeResourceExhausted; i++ {
		_, err = users.SignIn(ctx, connect.NewRequest(&swapmeetv1.SignInRequest{Email: "target@example.com", Password: "guess number " + fmt.Sprint(i)}))
	}
	wantCode(t, err, connect.CodeResourceExhausted)
}

func TestOversizedRequestIsRejected(t *testing.T) {
	e := itest.New(t)
	srv, _ := e.StartAPI(t)
	users := swapmeetv1connect.NewUserServiceClient(srv.Client(), srv.URL)
	_, err := users.SignUp(ctx, connect.NewRequest(&swapmeetv1.SignUpRequest{Email: "big@example.com", Password: "correct horse", DisplayName: strings.Repeat("x", 2<<20)}))
	wantCode(t, err, connect.CodeResourceExhausted)
	var n int
	if err := e.PG.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("users after a rejected request = %d, %v", n, err)
	}
}

func TestHealthAndReflection(t *testing.T) {
	e := itest.New(t)
	srv, _ := e.StartAPI(t)
	// grpc.health.v1 over the Connect protocol's JSON encoding.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/grpc.health.v1.Health/Check", strings.NewReader(`{"service":"swapmeet.v1.UserService"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health check status %d", resp.StatusCode)
	}
}

// TestInvalidUTF8IsInvalidArgument sends a hand-encoded message whose
// string field is not UTF-8 (Go clients refuse to build one).
func TestInvalidUTF8IsInvalidArgument(t *testing.T) {
	e := itest.New(t)
	srv, _ := e.StartAPI(t)
	var body []byte
	body = protowire.AppendTag(body, 1, protowire.BytesType) // email
	body = protowire.AppendString(body, "bad\xff@example.com")
	body = protowire.AppendTag(body, 2, protowire.BytesType) // password
	body = protowire.AppendString(body, "correct horse")
	body = protowire.AppendTag(body, 3, protowire.BytesType) // display_name
	body = protowire.AppendString(body, "Bad \xc3")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+swapmeetv1connect.UserServiceSignUpProcedure, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/proto")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "invalid_argument") {
		t.Fatalf("status %d body %s; want 400 invalid_argument", resp.StatusCode, msg)
	}
	var n int
	if err := e.PG.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("users = %d, %v; want 0", n, err)
	}
}
