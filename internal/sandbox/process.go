package sandbox

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
)

// BuildSwapmeet builds the swapmeet command of the module that holds the
// working directory into dir, for running real processes against a
// sandbox (with its Environ), and returns the binary's path.
func BuildSwapmeet(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "swapmeet")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/swapmeet/swapmeet/cmd/swapmeet").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/swapmeet: %w\n%s", err, out)
	}
	return bin, nil
}
