//go:build unix && !linux

package safefile

import "syscall"

// openFlags: a FIFO swapped in after the stat must not block the open.
const openFlags = syscall.O_NONBLOCK | syscall.O_CLOEXEC
