package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// proc is a child process: a system under test or the stub upstream.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string // file with its stdout and stderr
	cancel context.CancelFunc
	done   chan struct{} // closed once it has exited
}

// startProc starts path with args, its output going to a log file in dir. Cancelling ctx
// or calling stop sends SIGTERM and, 10 s later, SIGKILL.
func startProc(ctx context.Context, dir, name, path string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("cannot create the log of %s: %w", name, err)
	}
	pctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(pctx, path, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = childEnv()
	setChildAttrs(cmd)
	if err := cmd.Start(); err != nil {
		cancel()
		out.Close()
		return nil, fmt.Errorf("cannot start %s (%s): %w", name, path, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, cancel: cancel, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // a process stopped by SIGTERM exits with an error; nothing to report
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// childEnv is the driver's environment without CTWA_ variables, which would otherwise
// configure the measured sidecar behind the flags' back.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CTWA_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *proc) stop() {
	p.cancel()
	<-p.done
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// logTail is the end of p's output, to explain a failure.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	const keep = 2000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return strings.TrimSpace(string(b))
}

// waitReady polls url until it answers 200, p exits, or 20 s pass.
func waitReady(ctx context.Context, p *proc, url string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, _, err := fasthttp.GetTimeout(nil, url, time.Second)
		if err == nil && status == fasthttp.StatusOK {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready:\n%s", p.name, p.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 on %s within 20s (last: status %d, %v):\n%s",
				p.name, url, status, err, p.logTail())
		}
	}
}

// freeAddr returns a loopback address with a port nobody listens on right now. Another
// process could take it before the child binds it; on a bench machine that is unlikely,
// and the child's start-up then fails loudly.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot find a free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// rssBytes is the resident memory of pid and all its descendants (nginx's workers are
// children of its master), read from /proc; 0 where /proc is not available.
func rssBytes(pid int) int64 {
	total := vmRSS(pid)
	for _, child := range childrenOf(pid) {
		total += rssBytes(child)
	}
	return total
}

func vmRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var kids []int
	parent := strconv.Itoa(pid)
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if fields := statFields(b); len(fields) > 1 && fields[1] == parent {
			kids = append(kids, id)
		}
	}
	return kids
}

// statFields are the fields of a /proc/PID/stat line from the third (state) on: the
// command name before them is in parentheses and may itself contain spaces and ") ",
// so they start after the last ") ". Field n of proc(5) is statFields(b)[n-3].
func statFields(b []byte) []string {
	i := bytes.LastIndex(b, []byte(") "))
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+2:]))
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100 on every Linux
// architecture Go supports (sysconf(_SC_CLK_TCK) reports it; Go has no portable call).
const clockTicks = 100

// cpuTicks is the CPU time, in clock ticks, that pid and all its descendants (nginx's
// workers are children of its master) have used, including children they have already
// reaped, so that the sum only grows; ok is false where /proc cannot tell.
func cpuTicks(pid int) (ticks int64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	if ticks, err = statCPU(b); err != nil {
		return 0, false
	}
	for _, child := range childrenOf(pid) {
		if t, ok := cpuTicks(child); ok { // a child that exited meanwhile is in cutime now
			ticks += t
		}
	}
	return ticks, true
}

// statCPU sums the CPU times of a /proc/PID/stat line: utime and stime (fields 14 and
// 15: user and system time of all the process's threads) and cutime and cstime (16 and
// 17: the same of children it has waited for), in clock ticks.
func statCPU(b []byte) (int64, error) {
	fields := statFields(b)
	if len(fields) < 15 {
		return 0, fmt.Errorf("/proc stat line %q has too few fields", bytes.TrimSpace(b))
	}
	var sum int64
	for n := 14; n <= 17; n++ {
		v, err := strconv.ParseInt(fields[n-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat field %d of %q: %w", n, bytes.TrimSpace(b), err)
		}
		sum += v
	}
	return sum, nil
}
