package fault

import (
	"errors"
	"fmt"
	"testing"
)

func TestMarkKeepsTheErrorAndAddsTheKind(t *testing.T) {
	cause := errors.New("connection refused")
	err := fmt.Errorf("find user: %w", Unavailable(cause))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, cause) {
		t.Fatalf("%v: want both the kind and the cause", err)
	}
	if errors.Is(err, ErrTimeout) || errors.Is(err, ErrContention) {
		t.Fatalf("%v: has a kind it was not marked with", err)
	}
	if err.Error() != "find user: connection refused" {
		t.Fatalf("message %q changed", err.Error())
	}
	if Unavailable(nil) != nil || Timeout(nil) != nil || Contention(nil) != nil {
		t.Fatal("marking nil must give nil")
	}
	if again := Unavailable(err); again != err {
		t.Fatal("marking twice must not wrap again")
	}
}
