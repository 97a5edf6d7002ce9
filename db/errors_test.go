package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/swapmeet/swapmeet/internal/fault"
)

func TestClassify(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("update: %w", &pgconn.PgError{Code: code}) }
	for _, tc := range []struct {
		name string
		err  error
		want error // the kind, or nil for none
	}{
		{"statement timeout", pg("57014"), fault.ErrTimeout},
		{"connection exception", pg("08006"), fault.ErrUnavailable},
		{"admin shutdown", pg("57P01"), fault.ErrUnavailable},
		{"cannot connect now", pg("57P03"), fault.ErrUnavailable},
		{"connect error", &pgconn.ConnectError{}, fault.ErrUnavailable},
		{"connection closed mid-statement", fmt.Errorf("sign up: %w", io.ErrUnexpectedEOF), fault.ErrUnavailable},
		{"unique violation", pg("23505"), nil},
		{"serialization failure", pg("40001"), nil},
		{"no rows", fmt.Errorf("find: %w", pgx.ErrNoRows), ErrNotFound},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), nil},
		{"canceled", context.Canceled, nil},
		{"retries exhausted", fmt.Errorf("%w after 8 attempts: %w", ErrRetriesExhausted, pg("40001")), fault.ErrContention},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if !errors.Is(got, tc.err) {
				t.Fatalf("classify lost the error: %v", got)
			}
			for _, kind := range []error{fault.ErrTimeout, fault.ErrUnavailable, fault.ErrContention, ErrNotFound} {
				if errors.Is(got, kind) != (kind == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", got, kind, !(kind == tc.want))
				}
			}
			if tc.want == nil && got != tc.err {
				t.Errorf("an unclassified error was wrapped: %v", got)
			}
		})
	}
}
