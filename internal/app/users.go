package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/swapmeet/swapmeet/db"
	"github.com/swapmeet/swapmeet/db/sqlc"
	"github.com/swapmeet/swapmeet/internal/consistency"
	"github.com/swapmeet/swapmeet/internal/password"
	"github.com/swapmeet/swapmeet/internal/readstore"
)

// Session is what signing up or in hands out.
type Session struct {
	UserID uuid.UUID
	Token  string
}

// SignUpResult also carries the token of the new user's commit, and the
// new user's profile.
type SignUpResult struct {
	Session
	ConsistencyToken string
	Profile          UserView
}

// SignUp creates a user with a password and opens a session for them.
func (c *Commands) SignUp(ctx context.Context, email, pw, displayName string) (SignUpResult, error) {
	email, displayName, err := validateSignUp(email, pw, displayName)
	if err != nil {
		return SignUpResult{}, err
	}
	if err := c.allow(ctx, "signup-client", ClientOf(ctx), c.deps.Limits.SignUpPerClient, "sign-ups from this address"); err != nil {
		return SignUpResult{}, err
	}
	var hash string
	if err := c.hash(ctx, func() { hash, err = password.Hash(pw, c.deps.Password) }); err != nil {
		return SignUpResult{}, err
	}
	if err != nil {
		return SignUpResult{}, fmt.Errorf("hash password: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return SignUpResult{}, err
	}
	token, tokenHash := newSessionToken()
	var joined time.Time
	commit, err := c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: id.String()}, func(q *sqlc.Queries) error {
		var err error
		if joined, err = q.CreateUser(ctx, sqlc.CreateUserParams{ID: id, DisplayName: displayName}); err != nil {
			return err
		}
		if err := q.CreateCredentials(ctx, sqlc.CreateCredentialsParams{UserID: id, Email: email, PasswordHash: hash}); err != nil {
			if db.IsUniqueViolation(err, "user_credentials_email_key") {
				return refusef(CodeAlreadyExists, ReasonEmailTaken, "an account with this email already exists")
			}
			return err
		}
		return q.CreateSession(ctx, sqlc.CreateSessionParams{TokenHash: tokenHash, UserID: id, ExpiresAt: time.Now().Add(c.deps.SessionTTL)})
	})
	if err != nil {
		return SignUpResult{}, fmt.Errorf("sign up: %w", err)
	}
	return SignUpResult{
		Session: Session{UserID: id, Token: token}, ConsistencyToken: consistency.WriteToken(commit.Position()),
		Profile: UserView{ID: id.String(), DisplayName: displayName, JoinedAt: joined.UTC().Truncate(time.Millisecond)},
	}, nil
}

// validateSignUp checks a sign-up and returns the canonical email and name.
func validateSignUp(email, pw, displayName string) (string, string, error) {
	var v violations
	email = v.email("email", email)
	v.password("password", pw)
	displayName = trimmed(displayName)
	v.text("display_name", displayName, displayNameRule)
	return email, displayName, v.err()
}

var errBadCredentials = errorf(CodeUnauthenticated, "invalid email or password")

// SignIn checks a password and opens a session. An unknown email and a
// wrong password fail alike, in message and in time.
func (c *Commands) SignIn(ctx context.Context, email, pw string) (Session, error) {
	var v violations
	email = v.email("email", email)
	v.password("password", pw)
	if err := v.err(); err != nil {
		// A malformed password cannot match; say no more than for a wrong one.
		if email != "" && ErrorCode(err) == CodeInvalid && len(v.list) == 1 && v.list[0].Field == "password" {
			return Session{}, errBadCredentials
		}
		return Session{}, err
	}
	// Both limits are checked before any hashing: a request over either
	// never costs a hash.
	client := ClientOf(ctx)
	if err := c.allow(ctx, "signin-client", client, c.deps.Limits.SignInPerClient, "sign-in attempts from this address"); err != nil {
		return Session{}, err
	}
	if err := c.signInLocked(ctx, email, client); err != nil {
		return Session{}, err
	}
	cred, err := c.deps.Store.FindCredentialsByEmail(ctx, email)
	if errors.Is(err, db.ErrNotFound) {
		if err := c.hash(ctx, func() { _, _ = password.Verify(pw, c.dummy) }); err != nil {
			return Session{}, err
		}
		c.signInFailed(ctx, email, client)
		return Session{}, errBadCredentials
	}
	if err != nil {
		return Session{}, fmt.Errorf("sign in: %w", err)
	}
	var ok bool
	if herr := c.hash(ctx, func() { ok, err = password.Verify(pw, cred.PasswordHash) }); herr != nil {
		return Session{}, herr
	}
	if err != nil {
		return Session{}, fmt.Errorf("sign in: %w", err)
	}
	if !ok {
		c.signInFailed(ctx, email, client)
		return Session{}, errBadCredentials
	}
	token, tokenHash := newSessionToken()
	err = c.deps.Store.CreateSession(ctx, sqlc.CreateSessionParams{TokenHash: tokenHash, UserID: cred.UserID, ExpiresAt: time.Now().Add(c.deps.SessionTTL)})
	if err != nil {
		return Session{}, fmt.Errorf("sign in: %w", err)
	}
	return Session{UserID: cred.UserID, Token: token}, nil
}

// The per-account limit counts failed sign-ins, not attempts, and holds
// only against the clients that failed: once an account has had
// SignInPerEmail failures in a window, a client that failed on it in that
// window is refused until the window ends, while a client that has not
// (the owner, from anywhere) may still try, once; a wrong password then
// makes it one that failed. A stranger can therefore not lock the owner
// out, and guessing from many addresses costs one guess per address and
// window on top of the limit (and each address stays under its own
// SignInPerClient).

// signInLocked refuses a sign-in for email from client when the account
// is over its failures and client is one of them.
func (c *Commands) signInLocked(ctx context.Context, email, client string) error {
	limit, window := c.deps.Limits.SignInPerEmail, c.deps.Limits.Window
	if d := c.limiter.Over(ctx, "signin-fail-email", email, limit, window); d.Allowed {
		return nil
	}
	d := c.limiter.Over(ctx, "signin-fail-email-client", email+"\x00"+client, 1, window)
	if d.Allowed {
		return nil
	}
	return &Error{Code: CodeRateLimited, Reason: ReasonRateLimited, RetryAfter: d.RetryAfter,
		Message: fmt.Sprintf("too many failed sign-ins for this account from this address; try again in %s", d.RetryAfter)}
}

// signInFailed counts a failed sign-in for email, overall and from client.
func (c *Commands) signInFailed(ctx context.Context, email, client string) {
	limit, window := c.deps.Limits.SignInPerEmail, c.deps.Limits.Window
	c.limiter.Allow(ctx, "signin-fail-email", email, limit, window)
	c.limiter.Allow(ctx, "signin-fail-email-client", email+"\x00"+client, 1, window)
}

// SignOut revokes the session whose token the caller presented.
func (c *Commands) SignOut(ctx context.Context, token string) error {
	h := hashToken(token)
	c.sessions.drop(string(h))
	if err := c.deps.Store.DeleteSession(ctx, h); err != nil {
		return fmt.Errorf("sign out: %w", err)
	}
	return nil
}

// Authenticate returns the user a session token belongs to.
func (c *Commands) Authenticate(ctx context.Context, token string) (uuid.UUID, error) {
	if token == "" || len(token) > 128 {
		return uuid.Nil, errorf(CodeUnauthenticated, "invalid or expired session")
	}
	h := hashToken(token)
	now := time.Now()
	if id, ok := c.sessions.get(string(h), now); ok {
		return id, nil
	}
	s, err := c.deps.Store.FindSession(ctx, h)
	if errors.Is(err, db.ErrNotFound) {
		return uuid.Nil, errorf(CodeUnauthenticated, "invalid or expired session")
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("authenticate: %w", err)
	}
	c.sessions.put(string(h), s.UserID, s.ExpiresAt, now)
	return s.UserID, nil
}

// UpdateProfile changes the caller's display name and/or bio.
func (c *Commands) UpdateProfile(ctx context.Context, userID uuid.UUID, displayName, bio *string) (string, error) {
	var v violations
	if displayName == nil && bio == nil {
		v.add("display_name", "give display_name, bio or both")
	}
	if displayName != nil {
		s := trimmed(*displayName)
		displayName = &s
		v.text("display_name", s, displayNameRule)
	}
	if bio != nil {
		v.text("bio", *bio, bioRule)
	}
	if err := v.err(); err != nil {
		return "", err
	}
	if displayName != nil {
		d := c.limiter.Allow(ctx, "rename", userID.String(), c.deps.Limits.RenamesPerUser, RenameWindow)
		if !d.Allowed {
			return "", &Error{Code: CodeRateLimited, Reason: ReasonRateLimited, RetryAfter: d.RetryAfter,
				Message: fmt.Sprintf("you have changed your display name %d times in the last hour, the most allowed; try again in %s", c.deps.Limits.RenamesPerUser, d.RetryAfter)}
		}
	}
	commit, err := c.deps.Store.ExecTx(ctx, db.TxOptions{Actor: userID.String()}, func(q *sqlc.Queries) error {
		_, err := q.UpdateProfile(ctx, sqlc.UpdateProfileParams{ID: userID, DisplayName: displayName, Bio: bio})
		if errors.Is(err, db.ErrNotFound) {
			return errorf(CodeNotFound, "user not found")
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("update profile %s: %w", userID, err)
	}
	return consistency.WriteToken(commit.Position()), nil
}

// GetUser returns a public profile from the read side.
func (q *Queries) GetUser(ctx context.Context, id, token string) (UserView, error) {
	var v violations
	uid := v.id("user_id", id)
	if err := v.err(); err != nil {
		return UserView{}, err
	}
	ctx, err := q.awaitToken(ctx, token)
	if err != nil {
		return UserView{}, err
	}
	u, err := getDoc[readstore.User](ctx, q, readstore.Users, uid.String(), "user")
	if err != nil {
		return UserView{}, err
	}
	return userView(u), nil
}

func newSessionToken() (token string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// SignedIn is the profile a sign-in answers with: the read side's, as
// GetUser gives it; or, should the read side not have it (the user signed
// up a moment ago) or not answer, the write side's name, bio and joining
// date with zero counts. A sign-in never fails for the read side.
func (q *Queries) SignedIn(ctx context.Context, id uuid.UUID) (UserView, error) {
	u, err := q.GetUser(ctx, id.String(), "")
	if err == nil {
		return u, nil
	}
	if ErrorCode(err) != CodeNotFound {
		q.deps.Log.Warn("sign-in profile from the write side: the read side did not answer", "user_id", id, "err", err)
	}
	row, werr := q.deps.Store.FindUserProfile(ctx, id)
	if werr != nil {
		return UserView{}, fmt.Errorf("the signed-in user's profile: %w", werr)
	}
	return UserView{ID: row.ID.String(), DisplayName: row.DisplayName, Bio: row.Bio, JoinedAt: row.CreatedAt.UTC().Truncate(time.Millisecond)}, nil
}
