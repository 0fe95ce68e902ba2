package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
const clockTicks = 100

// child is a process started by the harness, in its own process group.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startChild starts argv (prefixed by taskset -c cpu when cpu >= 0) with env
// added, logging to dir/name.log.
func startChild(dir, name string, cpu int, env []string, argv ...string) (*child, error) {
	if cpu >= 0 {
		if ts, err := exec.LookPath("taskset"); err == nil {
			argv = append([]string{ts, "-c", strconv.Itoa(cpu)}, argv...)
		}
	}
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create log %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

// pid returns the process id (taskset execs in place, so it is the program's).
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after a grace period.
func (c *child) stop() {
	if c == nil || c.exited() {
		return
	}
	_ = syscall.Kill(-c.pid(), syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.done
	}
}

// tail returns the last n bytes of the child's log, for error messages.
func (c *child) tail(n int64) string {
	f, err := os.Open(c.log)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}

// waitTCP waits until addr accepts a connection or the child exits.
func waitTCP(ctx context.Context, c *child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if c != nil && c.exited() {
			return fmt.Errorf("%s exited before listening on %s: %v\n%s", c.name, addr, c.err, c.tail(2000))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: nothing listening on %s after %s", c.name, addr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// procTree returns pid and all its descendants.
func procTree(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := ppidOf(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// statFields returns the fields of /proc/PID/stat after the command name.
func statFields(pid int) ([]string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, false
	}
	return strings.Fields(string(b[i+1:])), true
}

func ppidOf(pid int) (int, bool) {
	f, ok := statFields(pid)
	if !ok || len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}

// cpuSeconds returns utime+stime of pid's whole process tree, in seconds.
// Children that have exited and been reaped count through cutime/cstime.
func cpuSeconds(pid int) float64 {
	var ticks int64
	for _, p := range procTree(pid) {
		f, ok := statFields(p)
		if !ok || len(f) < 15 {
			continue
		}
		for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime (fields 14-17)
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
	}
	return float64(ticks) / clockTicks
}

// memKB returns the summed VmHWM and VmRSS (KiB) of pid's process tree.
func memKB(pid int) (hwm, rss int64) {
	for _, p := range procTree(pid) {
		f, err := os.Open("/proc/" + strconv.Itoa(p) + "/status")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			for _, k := range []struct {
				prefix string
				dst    *int64
			}{{"VmHWM:", &hwm}, {"VmRSS:", &rss}} {
				if strings.HasPrefix(line, k.prefix) {
					fs := strings.Fields(line[len(k.prefix):])
					if len(fs) > 0 {
						v, _ := strconv.ParseInt(fs[0], 10, 64)
						*k.dst += v
					}
				}
			}
		}
		f.Close()
	}
	return hwm, rss
}

// pinSelf pins every thread of this process to cpu (taskset -a), so the
// load generator stays off the proxy's core; -1 unpins (all CPUs). Threads
// created later inherit it.
func pinSelf(cpu int) error {
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return errors.New("pin load generator: taskset not found (util-linux)")
	}
	out, err := exec.Command(ts, "-a", "-p", "-c", cpuList(cpu), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pin load generator: %w: %s", err, out)
	}
	return nil
}
