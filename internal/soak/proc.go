//go:build soak

package soak

import (
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one child process the harness owns: a gateway or a pipeline
// stage. It can be killed and started again with the same arguments; its
// stderr is appended to one file across restarts, so the canary check
// reads every line it ever logged.
type proc struct {
	name   string
	path   string
	args   []string
	env    []string
	stderr string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	restarts int
}

func newProc(t testing.TB, name, stderr, path string, args ...string) *proc {
	p := &proc{name: name, path: path, args: args, stderr: stderr}
	t.Cleanup(func() { p.stop(10 * time.Second) })
	return p
}

// start runs the process; it fails the test if it cannot be started.
func (p *proc) start(t testing.TB) {
	t.Helper()
	if err := p.startErr(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
}

func (p *proc) startErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.stderr, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	return nil
}

// running reports whether the process is started and has not exited.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return errors.New(p.name + ": not started")
	}
	return p.cmd.Process.Signal(sig)
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	<-done
	return nil
}

// restart starts a killed process again with the same arguments.
func (p *proc) restart() error {
	p.mu.Lock()
	p.restarts++
	p.mu.Unlock()
	return p.startErr()
}

// stop asks the process to end (SIGTERM), and kills it after grace.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}
