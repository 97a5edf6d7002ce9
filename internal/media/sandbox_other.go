//go:build !linux

package media

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
