//go:build !linux

package main

// defaultEngine is the only engine outside Linux (no epoll_pwait2).
const defaultEngine = "threads"
