package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chefd/chefd/daemon/api"
)

// needChromium returns the headless browser (Debian's chromium), failing
// under CI when it is missing.
func needChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required under CI (apt-get install chromium; scripts/test.sh installs it)")
	}
	t.Skip("no chromium (apt-get install chromium)")
	return ""
}

// startUI runs `chefd ui` for ws and returns the URL it printed.
func startUI(t *testing.T, ws string, env []string) string {
	t.Helper()
	cmd := exec.Command(chefdBinary(t), "-C", ws, "ui")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Errorf("chefd ui did not stop on SIGINT\n%s", stderr.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("chefd ui printed no URL: %v\n%s", err, stderr.String())
	}
	u := strings.TrimSpace(line)
	if !strings.HasPrefix(u, "http://127.0.0.1:") || !strings.Contains(u, "token=") {
		t.Fatalf("chefd ui printed %q", u)
	}
	return u
}

func browser(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1100))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	// the first run starts the browser: no timeout on it (it would stop the
	// browser); the actions' waits have timeouts of their own
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// daemonHistory is the daemon's records, newest first.
func daemonHistory(t *testing.T, ws string, env []string) []api.Record {
	t.Helper()
	return daemonStatus(t, ws, env, "--recent", "100").Recent
}

func plotted(recs []api.Record) int {
	n := 0
	for _, r := range recs {
		if r.Kind == api.KindBuild && (r.Result == api.ResultOK || r.Result == api.ResultFailed) {
			n++
		}
	}
	return n
}

// TestDashboardBrowser loads chefd ui's page in headless Chromium against
// a daemon building the example: the build appears with its phases drawn,
// the plot has one point per build, "Build now" makes the daemon build, and
// the page follows the new build live. Then the attacks, from a real
// browser: the page without its token shows nothing; a page of another
// origin (a cross-site form post, a no-cors fetch, a fetch that reads)
// changes nothing and reads nothing.
func TestDashboardBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	needEngine(t)
	chromium := needChromium(t)
	ws := exampleCopy(t)
	ownImage(t, ws, "chefd-e2e-ui")
	env := daemonEnv(t, ws)
	if r := chefd(t, ws, env, "start"); r.code != 0 {
		t.Fatalf("start: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := chefd(t, ws, env, "build", "--wait"); r.code != 0 {
		t.Fatalf("build: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	hist := daemonHistory(t, ws, env)
	first := hist[0]
	if first.Kind != api.KindBuild || first.Result != api.ResultOK {
		t.Fatalf("first record %v", first)
	}

	page := startUI(t, ws, env)
	ctx := browser(t, chromium)
	count := func(sel string) int {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return n
	}
	wait := func(what, cond string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(60*time.Second),
			chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 3000)`))
			t.Fatalf("the page never showed %s (%s): %v\n%s", what, cond, err, html)
		}
	}
	row := fmt.Sprintf(`#timeline g.row[data-id="%d"]`, first.ID)
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	wait("the first build and its phases", fmt.Sprintf(`!!document.querySelector('%s rect.phase[data-phase="build"]')`, row))
	if n := count(row + " rect.phase"); n < 2 {
		t.Errorf("build #%d drawn with %d phases", first.ID, n)
	}
	if got, want := count("#plot-builds circle.point"), plotted(hist); got != want {
		t.Errorf("the plot has %d points, the daemon %d finished builds", got, want)
	}
	shot(t, ctx, "dashboard-idle.png")

	// "Build now": the daemon builds; the page follows it to its end.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#build-now`))); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, ws, env, 5*time.Minute, "the build the page asked for", func(st api.FullStatus) bool {
		return st.LastOK != nil && st.LastOK.ID > first.ID
	})
	second := st.LastOK
	if second.Trigger != api.TriggerRequest {
		t.Errorf("the page's build: trigger %q", second.Trigger)
	}
	hist = daemonHistory(t, ws, env)
	want := plotted(hist)
	wait(fmt.Sprintf("build #%d done, with %d plot points", second.ID, want), fmt.Sprintf(
		`document.querySelectorAll('#plot-builds circle.point').length === %d && `+
			`!!document.querySelector('#timeline g.row.result-ok[data-id="%d"] rect.phase[data-phase="build"]')`, want, second.ID))
	wait("the build's details and log", fmt.Sprintf(
		`document.getElementById("detail-title").textContent.includes("#%d build") && document.getElementById("log").textContent.includes("step:")`,
		second.ID))
	shot(t, ctx, "dashboard-build.png")

	// Cancel from the page: a save whose build takes rustc a while (a large
	// generated constant); the page's Cancel stops it, the page shows it
	// cancelled, and the next build (Build now) ships the save.
	var big strings.Builder
	big.WriteString("pub const BIG: &[u64] = &[")
	for i := 0; i < 800000; i++ {
		fmt.Fprintf(&big, "%d,", i*7)
	}
	big.WriteString("];\n")
	if err := os.WriteFile(filepath.Join(ws, "crates/app/src/big.rs"), []byte(big.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	edit(t, filepath.Join(ws, "crates/app/src/main.rs"), `println!("app: {GREETING}");`, `println!("app: {GREETING} big {}", big::BIG.len());`)
	edit(t, filepath.Join(ws, "crates/app/src/main.rs"), `const GREETING`, "mod big;\nconst GREETING")
	wait("the save's build running", `Array.from(document.querySelectorAll("#running .job")).some(j => / build (?!queued)/.test(j.firstChild.textContent))`)
	running := daemonStatus(t, ws, env).Current
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#cancel`))); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, ws, env, 2*time.Minute, "the cancelled build to end", func(st api.FullStatus) bool {
		return st.Current == nil && st.Pending == nil
	})
	var cancelled *api.Record
	for _, r := range daemonHistory(t, ws, env) {
		if r.Result == api.ResultCancelled && r.Error == "cancelled by a request" {
			cancelled = &r
			break
		}
	}
	if cancelled == nil || running == nil {
		t.Fatalf("no build was cancelled by the page (running then: %v)", running)
	}
	if st.LastOK.ID != second.ID {
		t.Errorf("a build after the cancel: %v", st.LastOK)
	}
	wait("the cancelled build", fmt.Sprintf(`!!document.querySelector('#timeline g.row.result-cancelled[data-id="%d"]')`, cancelled.ID))
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#build-now`))); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, ws, env, 5*time.Minute, "the build after the cancel", func(st api.FullStatus) bool {
		return st.LastOK != nil && st.LastOK.ID > cancelled.ID
	})
	if out := dockerRun(t, st.LastOK.Image); !strings.Contains(out, "big 800000") {
		t.Fatalf("after a cancelled build, the next build's image prints %q", out)
	}
	t.Logf("cancelled build #%d after %s; the next build took %s", cancelled.ID, cancelled.Duration, st.LastOK.Duration)
	second = st.LastOK

	// Without the token: nothing of the daemon's.
	u, _ := url.Parse(page)
	base := u.Scheme + "://" + u.Host
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "missing or wrong token") || strings.Contains(body, first.Recipe[:8]) {
		t.Errorf("the page without its token shows %q", body)
	}

	// Another origin (another port): a no-cors fetch, a fetch that reads
	// the status with the token, a fetch with the token header (its
	// preflight is refused), and a form post.
	token := u.Query().Get("token")
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>evil</title>
<form id="f" method="POST" action="%[1]s/api/build" enctype="text/plain"><input name='{"x":"' value='"}'></form>
<script>
async function attack() {
  const out = [];
  try { await fetch("%[1]s/api/build", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: "{}"}); out.push("no-cors sent"); } catch (e) { out.push("no-cors failed"); }
  try { const r = await fetch("%[1]s/api/status?token=%[2]s"); out.push("READ " + (await r.text()).slice(0, 80)); } catch (e) { out.push("read blocked"); }
  try { await fetch("%[1]s/api/cancel", {method: "POST", headers: {"Content-Type": "application/json", "X-Chefd-Token": "%[2]s"}, body: "{}"}); out.push("cancel sent"); } catch (e) { out.push("cancel blocked"); }
  return out.join("; ");
}
</script>`, base, token)
	}))
	defer evil.Close()
	if err := chromedp.Do(ctx, chromedp.Navigate(evil.URL)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`attack()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "READ") || !strings.Contains(got, "read blocked") || !strings.Contains(got, "cancel blocked") {
		t.Errorf("another origin: %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("f").submit()`)); err != nil {
		t.Fatal(err)
	}
	// the form navigates the tab: poll until the answer's page is there (a
	// poll that the navigation interrupts is tried again)
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, err = chromedp.Run(ctx, chromedp.Poll[string](
			`location.href.includes("/api/build") && document.readyState === "complete" && document.body.innerText`,
			chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !strings.Contains(body, "cross-site request refused") {
		t.Errorf("the cross-site form post got %q (%v)", body, err)
	}
	after := daemonStatus(t, ws, env)
	if after.Current != nil || after.Pending != nil || after.LastOK == nil || after.LastOK.ID != second.ID {
		t.Errorf("a cross-site request acted: current %v pending %v last ok %v", after.Current, after.Pending, after.LastOK)
	}
	if h := daemonHistory(t, ws, env); len(h) == 0 || h[0].ID != second.ID {
		t.Errorf("a cross-site request made a build: newest record %v", h[0])
	}

	// The daemon's own dashboard (start --dashboard): chefd ui prints its
	// URL (from a 0600 file) and exits; the page shows the history the
	// daemon kept across its restart.
	if r := chefd(t, ws, env, "stop"); r.code != 0 {
		t.Fatalf("stop: %d %s", r.code, r.stderr)
	}
	if r := chefd(t, ws, env, "start", "--dashboard"); r.code != 0 {
		t.Fatalf("start --dashboard: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	paths, err := api.ResolvePaths(ws, envValue(env, "XDG_RUNTIME_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	// the daemon answers before its dashboard is up: wait for its file
	// (chefd ui would otherwise serve a dashboard of its own, and stay)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(dashboardFile(paths)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s 30 s after start --dashboard", dashboardFile(paths))
		}
	}
	r := chefd(t, ws, env, "ui")
	own := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.Contains(r.stderr, "the daemon serves its dashboard") {
		t.Fatalf("ui with the daemon's dashboard: exit %d %q %s", r.code, own, r.stderr)
	}
	if !strings.HasPrefix(own, "http://127.0.0.1:") || own == page {
		t.Fatalf("chefd ui printed %q for the daemon's dashboard", own)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(own)); err != nil {
		t.Fatal(err)
	}
	wait("the history on the daemon's dashboard", fmt.Sprintf(`!!document.querySelector('#timeline g.row[data-id="%d"]')`, second.ID))
	if fi, err := os.Stat(dashboardFile(paths)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the dashboard's URL file: %v %v", fi, err)
	}
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// shot saves a screenshot of the page in the test's temporary directory,
// or in the directory CHEFD_SCREENSHOTS names.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	dir := os.Getenv("CHEFD_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Error(err)
	}
}
