//go:build soak

package soak

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readServicePID reads the pid file a service script of scripts/ keeps
// under run: <name>/<name>.pid (opensearch-secure.sh writes
// opensearch.pid in its own directory).
func readServicePID(run, name string) (pidfile string, pid int, err error) {
	for _, f := range []string{name + ".pid", "opensearch.pid"} {
		pidfile = filepath.Join(run, name, f)
		b, rerr := os.ReadFile(pidfile)
		if rerr != nil {
			err = rerr
			continue
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return pidfile, pid, err
	}
	return "", 0, err
}

// restartService stops the JVM of a service started by scripts/kafka.sh or
// scripts/opensearch.sh (found by its pid file under run) and starts it
// again after down with the same command line, environment and working
// directory — keeping its data, unlike the scripts' stop/start, which
// start a fresh empty service. The new pid goes back into the pid file so
// `services.sh stop` still stops it.
func restartService(run, name string, down time.Duration, ready func() bool) func(context.Context) error {
	return func(ctx context.Context) error {
		pidfile, pid, err := readServicePID(run, name)
		if err != nil {
			return err
		}
		argv, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return err
		}
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		args := strings.Split(strings.TrimRight(string(argv), "\x00"), "\x00")
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return err
		}
		// Not our child: nothing to wait on but the pid itself.
		tick := time.NewTicker(100 * time.Millisecond)
		killAt := time.Now().Add(time.Minute) // a stuck JVM is killed
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(killAt) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			<-tick.C
		}
		tick.Stop()
		pause(ctx, down)
		logf, err := os.OpenFile(filepath.Join(run, name, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer logf.Close()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = strings.Split(strings.TrimRight(string(env), "\x00"), "\x00")
		cmd.Dir = cwd
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives the harness, like the script's nohup
		if err := cmd.Start(); err != nil {
			return err
		}
		go func() { _ = cmd.Wait() }()
		if err := os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
			return err
		}
		deadline := time.Now().Add(3 * time.Minute)
		for !ready() {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready 3m after restart", name)
			}
			pause(ctx, time.Second)
		}
		return nil
	}
}
