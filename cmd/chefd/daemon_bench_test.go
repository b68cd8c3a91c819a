package main

// Daemon benchmarks (issue 4), real engine and real binary:
//
//	go test ./cmd/chefd -run '^$' -bench 'Daemon|CargoFloor' -benchtime 3x
//
// They report custom metrics (seconds, milliseconds, MB) next to ns/op.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/daemon/api"
)

// benchWorkspace copies the example with an image name of its own.
func benchWorkspace(b *testing.B) (string, []string) {
	ws := exampleCopy(b)
	ownImage(b, ws, "chefd-bench-daemon")
	env := []string{"XDG_RUNTIME_DIR=" + b.TempDir()}
	b.Cleanup(func() { benchChefd(b, ws, env, "stop") })
	return ws, env
}

func benchChefd(b *testing.B, ws string, env []string, args ...string) string {
	cmd := exec.Command(chefdBinary(b), append([]string{"-C", ws}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("chefd %v: %v", args, err)
	}
	return string(out)
}

func benchStatus(b *testing.B, ws string, env []string) api.FullStatus {
	var st api.FullStatus
	if err := json.Unmarshal([]byte(benchChefd(b, ws, env, "status", "--json")), &st); err != nil {
		b.Fatal(err)
	}
	return st
}

// events streams `chefd events` into a channel.
func events(b *testing.B, ws string, env []string) <-chan api.Event {
	cmd := exec.Command(chefdBinary(b), "-C", ws, "events")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ch := make(chan api.Event, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var e api.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				ch <- e
			}
		}
	}()
	return ch
}

func startWarm(b *testing.B, ws string, env []string) {
	benchChefd(b, ws, env, "start")
	deadline := time.Now().Add(10 * time.Minute)
	for {
		st := benchStatus(b, ws, env)
		if st.Cooked && st.State == "idle" {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("daemon never warm: %+v", st.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func setGreeting(b *testing.B, ws, text string) {
	p := filepath.Join(ws, "crates/app/src/main.rs")
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, `const GREETING: &str = "`)
	j := strings.Index(s[i:], "\";\n")
	s = s[:i] + `const GREETING: &str = "` + text + s[i+j:]
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDaemonSaveToImage: a one-line save in the binary crate to a
// tagged image, on the warm path (cooked image present, target cache warm).
// Also reports save -> build start (goal: debounce + 20 ms).
func BenchmarkDaemonSaveToImage(b *testing.B) {
	needEngineB(b)
	ws, env := benchWorkspace(b)
	startWarm(b, ws, env)
	ev := events(b, ws, env)
	// warm the target cache with one build
	setGreeting(b, ws, "warm-up")
	waitBuild(b, ev, time.Now())
	var total, toStart time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		setGreeting(b, ws, fmt.Sprintf("save %d", i))
		started, done := waitBuild(b, ev, t0)
		total += done.Sub(t0)
		toStart += started.Sub(t0)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "save-to-image-s")
	b.ReportMetric(float64(toStart.Milliseconds())/float64(b.N), "save-to-build-start-ms")
	cfg, _ := configs.Load(ws)
	b.ReportMetric(float64(cfg.Debounce.Milliseconds()), "debounce-ms")
}

// waitBuild waits for a successful build that started after t0; it returns
// when it started and when its image was tagged.
func waitBuild(b *testing.B, ev <-chan api.Event, t0 time.Time) (time.Time, time.Time) {
	var started time.Time
	timeout := time.After(5 * time.Minute)
	for {
		select {
		case e, ok := <-ev:
			if !ok {
				b.Fatal("event stream ended")
			}
			switch e.Type {
			case api.EventBuildStart:
				if e.Record != nil && e.Record.Started.After(t0) {
					started = e.Record.Started
				}
			case api.EventBuildDone:
				if e.Record != nil && !started.IsZero() && e.Record.Result == "ok" {
					return started, e.Time
				}
			}
		case <-timeout:
			b.Fatal("no build within 5 minutes")
		}
	}
}

// BenchmarkCargoFloor: the same one-line edit built by cargo on a warm
// target dir with the same toolchain, in a plain container (no image).
func BenchmarkCargoFloor(b *testing.B) {
	needEngineB(b)
	ws, _ := benchWorkspace(b)
	cfg, _ := configs.Load(ws)
	vol := fmt.Sprintf("chefd-bench-floor-%d", time.Now().UnixNano())
	b.Cleanup(func() { exec.Command("docker", "volume", "rm", "-f", vol).Run() })
	run := func() {
		cmd := exec.Command("docker", "run", "--rm", "-v", ws+":/src", "-v", vol+":/src/target", "-w", "/src",
			"-e", "RUSTFLAGS="+cfg.RustFlags, cfg.BuilderImage,
			"cargo", "build", "--release", "--locked", "--target", cfg.Target, "--bin", "app", "--bin", "report")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
	}
	setGreeting(b, ws, "warm-up")
	run()
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		setGreeting(b, ws, fmt.Sprintf("floor %d", i))
		t0 := time.Now()
		run()
		total += time.Since(t0)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "edit-to-binary-s")
}

// BenchmarkDaemonIdle50k: the daemon watching the example plus 50,000
// files, idle: CPU time used over 20 s and resident memory.
func BenchmarkDaemonIdle50k(b *testing.B) {
	needEngineB(b)
	ws, env := benchWorkspace(b)
	for d := 0; d < 1000; d++ {
		dir := filepath.Join(ws, "assets", fmt.Sprintf("d%03d", d/50), fmt.Sprintf("e%02d", d%50))
		os.MkdirAll(dir, 0o755)
		for f := 0; f < 50; f++ {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.txt", f)), []byte(fmt.Sprintf("file %d %d\n", d, f)), 0o644)
		}
	}
	startWarm(b, ws, env)
	pid := benchStatus(b, ws, env).Daemon.PID
	time.Sleep(3 * time.Second) // let start-up work settle
	b.ResetTimer()
	var cpu time.Duration
	var rss int64
	for i := 0; i < b.N; i++ {
		c0 := procCPU(b, pid)
		time.Sleep(20 * time.Second)
		cpu += procCPU(b, pid) - c0
		if r := procRSS(b, pid); r > rss {
			rss = r
		}
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms-per-20s")
	b.ReportMetric(float64(rss)/1024, "rss-MB")
}

func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data)[strings.LastIndex(string(data), ")")+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

func procRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return kb
		}
	}
	return 0
}

func needEngineB(b *testing.B) {
	if err := exec.Command("docker", "version").Run(); err != nil {
		b.Skip("no Docker engine")
	}
}
