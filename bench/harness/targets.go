package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Target names, in the interleaving order of a round.
const (
	TargetDirect        = "direct"
	TargetSidecarEmit   = "sidecar-emit"
	TargetSidecarNoEmit = "sidecar-noemit"
	TargetNginx         = "nginx"
	TargetHAProxy       = "haproxy"
)

// target is one way of reaching the upstream.
type target struct {
	name    string
	h1URL   string
	grpcURL string
	proc    *child // the proxy; nil for direct
	admin   string // the sidecar's admin address
	pprof   string // where the sidecar serves /debug/pprof, if anywhere
	skip    string // why the target is not measured
}

// measured reports whether the target runs.
func (t *target) measured() bool { return t.skip == "" }

// proxyEnv is the upstream, the broker and every target of a proxy run.
type proxyEnv struct {
	dir        string
	upstream   *child
	upAddr     string
	broker     *child
	brokerAddr string
	targets    []*target
	brokerErr  string
}

func (e *proxyEnv) close() {
	for _, t := range e.targets {
		if t.proc != nil {
			t.proc.stop()
		}
	}
	e.broker.stop()
	e.upstream.stop()
}

// startProxyEnv starts the upstream and each target. The upstream and the
// proxies run on cfg.ProxyCPU with GOMAXPROCS=1, the broker on cfg.LoadCPU.
func startProxyEnv(ctx context.Context, cfg Config, bins binaries, dir string) (*proxyEnv, error) {
	e := &proxyEnv{dir: dir}
	ports, err := freePorts(16)
	if err != nil {
		return nil, err
	}
	next := func() int { p := ports[0]; ports = ports[1:]; return p }
	gomax := []string{"GOMAXPROCS=1"}

	e.upAddr = "127.0.0.1:" + strconv.Itoa(next())
	if e.upstream, err = startChild(dir, "upstream", cfg.ProxyCPU, gomax, bins.upstream, "--listen", e.upAddr); err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, e.upstream, e.upAddr, 10*time.Second); err != nil {
		e.close()
		return nil, err
	}
	e.targets = append(e.targets, &target{name: TargetDirect, h1URL: "http://" + e.upAddr + "/echo", grpcURL: "http://" + e.upAddr + "/bench.Echo/Echo"})

	// Sidecars, with a real broker for emission.
	sideSkip := bins.sidecarErr
	if sideSkip == "" {
		e.brokerAddr = "127.0.0.1:" + strconv.Itoa(next())
		e.broker, err = startChild(dir, "broker", cfg.LoadCPU, nil, bins.omnibridge, "broker", "--listen", e.brokerAddr)
		if err == nil {
			err = waitTCP(ctx, e.broker, e.brokerAddr, 15*time.Second)
		}
		if err != nil {
			e.brokerErr = err.Error()
			sideSkip = "broker did not start: " + firstLines(err.Error(), 3)
		}
	}
	for _, emit := range []bool{true, false} {
		name := TargetSidecarNoEmit
		if emit {
			name = TargetSidecarEmit
		}
		t := &target{name: name, skip: sideSkip}
		e.targets = append(e.targets, t)
		if t.skip != "" {
			continue
		}
		listen := "127.0.0.1:" + strconv.Itoa(next())
		t.admin = "127.0.0.1:" + strconv.Itoa(next())
		hooks := "127.0.0.1:" + strconv.Itoa(next())
		spool := filepath.Join(dir, name+"-spool")
		_ = os.MkdirAll(spool, 0o755)
		args := []string{bins.omnibridge, "sidecar", "--service", "bench", "--listen", listen,
			"--upstream", "http://" + e.upAddr, "--brokers", e.brokerAddr, "--admin", t.admin,
			"--hooks", hooks, "--spool-dir", spool, "--emit=" + strconv.FormatBool(emit)}
		t.pprof = t.admin
		env := gomax
		switch bins.flagKind("pprof") {
		case "bool":
			if cfg.Profile {
				args = append(args, "--pprof")
			}
		case "string":
			if cfg.Profile {
				t.pprof = "127.0.0.1:" + strconv.Itoa(next())
				args = append(args, "--pprof="+t.pprof)
			}
		case "":
			if cfg.Profile && bins.pprofOmni != "" {
				t.pprof = "127.0.0.1:" + strconv.Itoa(next())
				args[0] = bins.pprofOmni
				env = append(slices.Clone(gomax), "OMNIBRIDGE_BENCH_PPROF="+t.pprof)
			}
		}
		if t.proc, err = startChild(dir, name, cfg.ProxyCPU, env, args...); err == nil {
			err = waitTCP(ctx, t.proc, listen, 15*time.Second)
		}
		if err != nil {
			t.skip = "sidecar did not start: " + firstLines(err.Error(), 4)
			t.proc.stop()
			t.proc = nil
			continue
		}
		t.h1URL, t.grpcURL = "http://"+listen+"/echo", "http://"+listen+"/bench.Echo/Echo"
	}

	e.targets = append(e.targets, startNginx(ctx, cfg, dir, e.upAddr, next(), next()))
	e.targets = append(e.targets, startHAProxy(ctx, cfg, dir, e.upAddr, next(), next()))
	return e, nil
}

// findProgram looks for a program on PATH and in /usr/sbin.
func findProgram(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/" + name); err == nil {
		return "/usr/sbin/" + name
	}
	return ""
}

func startNginx(ctx context.Context, cfg Config, dir, up string, h1Port, grpcPort int) *target {
	t := &target{name: TargetNginx}
	bin := findProgram("nginx")
	if bin == "" {
		t.skip = "nginx not installed (Debian package: nginx); not installing it"
		return t
	}
	nd := filepath.Join(dir, "nginx")
	for _, d := range []string{"tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"} {
		_ = os.MkdirAll(filepath.Join(nd, d), 0o777)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n"
	}
	conf := fmt.Sprintf(`%sdaemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_body_temp_path %[2]s/tmp/body;
  proxy_temp_path %[2]s/tmp/proxy;
  fastcgi_temp_path %[2]s/tmp/fastcgi;
  uwsgi_temp_path %[2]s/tmp/uwsgi;
  scgi_temp_path %[2]s/tmp/scgi;
  client_max_body_size 1m;
  client_body_buffer_size 128k;
  proxy_buffer_size 16k;
  proxy_buffers 8 16k;
  upstream up_h1 { server %[3]s; keepalive 64; keepalive_requests 1000000; }
  upstream up_grpc { server %[3]s; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:%[4]d;
    location / {
      proxy_pass http://up_h1;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  server {
    listen 127.0.0.1:%[5]d http2;
    http2_max_requests 1000000;
    location / { grpc_pass grpc://up_grpc; }
  }
}
`, user, nd, up, h1Port, grpcPort)
	confPath := filepath.Join(nd, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.skip = "write nginx.conf: " + err.Error()
		return t
	}
	p, err := startChild(dir, "nginx", cfg.ProxyCPU, nil, bin, "-p", nd, "-c", confPath, "-e", filepath.Join(nd, "error.log"))
	addr := "127.0.0.1:" + strconv.Itoa(h1Port)
	if err == nil {
		err = waitTCP(ctx, p, addr, 10*time.Second)
	}
	if err != nil {
		t.skip = "nginx did not start: " + firstLines(err.Error(), 4)
		p.stop()
		return t
	}
	t.proc = p
	t.h1URL = "http://" + addr + "/echo"
	t.grpcURL = "http://127.0.0.1:" + strconv.Itoa(grpcPort) + "/bench.Echo/Echo"
	return t
}

func startHAProxy(ctx context.Context, cfg Config, dir, up string, h1Port, grpcPort int) *target {
	t := &target{name: TargetHAProxy}
	bin := findProgram("haproxy")
	if bin == "" {
		t.skip = "haproxy not installed (Debian package: haproxy); not installing it"
		return t
	}
	hd := filepath.Join(dir, "haproxy")
	_ = os.MkdirAll(hd, 0o755)
	conf := fmt.Sprintf(`global
  nbthread 1
  maxconn 4000
  pidfile %[1]s/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  option http-keep-alive
  http-reuse always
frontend fe_h1
  bind 127.0.0.1:%[3]d
  default_backend be_h1
backend be_h1
  server up %[2]s
frontend fe_grpc
  bind 127.0.0.1:%[4]d proto h2
  default_backend be_grpc
backend be_grpc
  server up %[2]s proto h2
`, hd, up, h1Port, grpcPort)
	confPath := filepath.Join(hd, "haproxy.cfg")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.skip = "write haproxy.cfg: " + err.Error()
		return t
	}
	p, err := startChild(dir, "haproxy", cfg.ProxyCPU, nil, bin, "-db", "-f", confPath)
	addr := "127.0.0.1:" + strconv.Itoa(h1Port)
	if err == nil {
		err = waitTCP(ctx, p, addr, 10*time.Second)
	}
	if err != nil {
		t.skip = "haproxy did not start: " + firstLines(err.Error(), 4)
		p.stop()
		return t
	}
	t.proc = p
	t.h1URL = "http://" + addr + "/echo"
	t.grpcURL = "http://127.0.0.1:" + strconv.Itoa(grpcPort) + "/bench.Echo/Echo"
	return t
}
