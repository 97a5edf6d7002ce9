package media

import "syscall"

// childAttr makes the kernel kill the child if the thread that started it
// ends, so a parent that dies leaves no decode running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
