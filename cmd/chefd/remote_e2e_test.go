package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chefd/chefd/configs"
	"github.com/chefd/chefd/dockerctl"
)

// testEngine is a second dockerd on this machine, "the other machine":
// its own data root, exec root, bridge and pid file, listening on a
// loopback TCP port with TLS (certificates made by the test, client
// certificates required).
type testEngine struct {
	env  []string // DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH
	host string   // tcp://127.0.0.1:port
	cert string   // the client's certificate directory
}

// docker runs the docker CLI against the engine.
func (e *testEngine) docker(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), e.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s on %s: %v\n%s", strings.Join(args, " "), e.host, err, out)
	}
	return string(out)
}

// startEngine starts a second engine (root only: dockerd and a bridge).
func startEngine(t *testing.T) *testEngine {
	t.Helper()
	dockerd, err := exec.LookPath("dockerd")
	if err == nil && os.Geteuid() != 0 {
		err = fmt.Errorf("not root")
	}
	needTool(t, "a second engine (dockerd, as root)", err)
	// not t.TempDir: the engine's overlay mounts may outlive a failed stop
	dir, err := os.MkdirTemp("", "chefd-engine-b")
	if err != nil {
		t.Fatal(err)
	}
	certs := makeCerts(t, filepath.Join(dir, "tls"))
	addr := freeLoopbackAddr(t)
	// a bridge of its own: --bridge=none would delete the shared docker0
	bridge := fmt.Sprintf("chefdb%d", os.Getpid()%10000)
	subnet := fmt.Sprintf("10.231.%d.1/24", os.Getpid()%250)
	for _, args := range [][]string{
		{"link", "add", bridge, "type", "bridge"},
		{"addr", "add", subnet, "dev", bridge},
		{"link", "set", bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dockerd, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "--bridge", bridge, "--iptables=false",
		"-H", "tcp://"+addr, "--tlsverify", "--tlscacert", certs.ca, "--tlscert", certs.serverCert, "--tlskey", certs.serverKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e := &testEngine{host: "tcp://" + addr, cert: certs.client,
		env: []string{"DOCKER_HOST=tcp://" + addr, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + certs.client, "DOCKER_CONTEXT="}}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		exec.Command("ip", "link", "del", bridge).Run()
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("engine B's directory stays: %v", err)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c := exec.Command("docker", "version", "--format", "{{.Server.Version}}")
		c.Env = append(os.Environ(), e.env...)
		if out, err := c.CombinedOutput(); err == nil {
			t.Logf("engine B %s answers on %s", strings.TrimSpace(string(out)), e.host)
			return e
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("engine B did not answer on %s:\n%s", e.host, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type testCerts struct {
	ca, serverCert, serverKey string
	client                    string // DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem
}

// makeCerts makes a CA, a server certificate for 127.0.0.1 and a client
// certificate, as `docker` expects them.
func makeCerts(t *testing.T, dir string) testCerts {
	t.Helper()
	client := filepath.Join(dir, "client")
	if err := os.MkdirAll(client, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(p, typ string, der []byte) {
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chefd test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage, certPath, keyPath string) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		write(certPath, "CERTIFICATE", der)
		write(keyPath, "EC PRIVATE KEY", kder)
	}
	c := testCerts{ca: filepath.Join(dir, "ca.pem"), serverCert: filepath.Join(dir, "server-cert.pem"),
		serverKey: filepath.Join(dir, "server-key.pem"), client: client}
	write(c.ca, "CERTIFICATE", caDER)
	write(filepath.Join(client, "ca.pem"), "CERTIFICATE", caDER)
	leaf(2, "engine-b", x509.ExtKeyUsageServerAuth, c.serverCert, c.serverKey)
	leaf(3, "chefd-client", x509.ExtKeyUsageClientAuth, filepath.Join(client, "cert.pem"), filepath.Join(client, "key.pem"))
	return c
}

// TestE2ERemoteEngine: the builder image is in a real registry, and
// engine A (this machine's) cooks and pushes the cooked image there;
// engine B, another dockerd reached through DOCKER_HOST over TLS that
// holds no image, builds the same workspace: with pull = "never" it fails
// in one line naming the builder image and the policy; by default it
// pulls the builder image (as docker build does) and the cooked image,
// its code build compiles 0 third-party crates, the image runs on B, and
// the build names B. Then the same through a docker context.
func TestE2ERemoteEngine(t *testing.T) {
	needEngine(t)
	reg := startRegistry(t, "", "")
	dir := exampleCopy(t)
	image := ownImage(t, dir, "chefd-remote")
	repo := reg.host + "/team/" + image + "-cooked"
	t.Cleanup(func() { removeImages(repo) }) // the registry's tags: a port of this run's
	// the builder image comes from the registry, as rust:1-bookworm would
	builder := reg.host + "/" + builderImage(t)
	docker(t, "tag", builderImage(t), builder)
	t.Cleanup(func() { exec.Command("docker", "rmi", builder).Run() })
	t.Cleanup(func() { exec.Command("docker", "rmi", builder).Run() })
	t0 := time.Now()
	docker(t, "push", builder)
	t.Logf("builder image pushed to the registry in %s", time.Since(t0).Round(time.Millisecond))
	edit(t, filepath.Join(dir, "chefd.toml"), `builder-image = "`+builderImage(t)+`"`, `builder-image = "`+builder+`"`)
	hash := prepareHash(t, dir)
	ref := repo + ":" + hash[:16]

	cr := chefdJSON[dockerctl.CookResult](t, dir, "--cooked-repo", repo, "cook", "--push", "--json")
	if cr.Pushed != ref {
		t.Fatalf("cook --push pushed %q, want %q", cr.Pushed, ref)
	}
	b := startEngine(t)
	env := append([]string{"CHEFD_COOKED_REPO=" + repo}, b.env...)
	r := chefd(t, dir, env, "--pull", "never", "build")
	if r.code != 1 || !strings.Contains(r.stderr, `builder image "`+builder+`" is not on the engine and pull = "never"`) {
		t.Errorf("pull = never on an engine without the builder image: exit %d, want 1 and one line naming both\n%s", r.code, r.stderr)
	}
	t1 := time.Now()
	r = chefd(t, dir, env, "build")
	shared := time.Since(t1)
	// the builder image's pull is B's first-time setup, not the build's
	var builderPull time.Duration
	if m := regexp.MustCompile(`step: pull ` + regexp.QuoteMeta(builder) + ` done in ([0-9.]+)s`).FindStringSubmatch(r.stderr); m != nil {
		s, _ := strconv.ParseFloat(m[1], 64)
		builderPull = time.Duration(s * float64(time.Second))
	}
	shared -= builderPull
	t.Logf("first build on engine B with the shared cooked image: %s\n%s", shared.Round(time.Millisecond), r.stderr)
	if r.code != 0 {
		t.Fatalf("build on engine B: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "engine   "+b.host) {
		t.Errorf("the build does not name engine B (%s):\n%s", b.host, r.stderr)
	}
	if !strings.Contains(r.stderr, "pulled "+ref) || !strings.Contains(r.stderr, "(0 third-party") {
		t.Errorf("engine B did not pull the cooked image, or compiled third-party crates:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "step: pull "+builder) {
		t.Errorf("engine B did not pull the builder image with progress:\n%s", r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	if out := b.docker(t, "run", "--rm", id); !strings.Contains(out, "app: hello from chefd example") {
		t.Errorf("the image printed %q on engine B", out)
	}
	if out, _ := exec.Command("docker", "image", "inspect", id).CombinedOutput(); !strings.Contains(string(out), "No such image") {
		t.Errorf("the image built on engine B is on engine A too")
	}

	// the same engine through a docker context (`docker context create`,
	// then DOCKER_CONTEXT), without DOCKER_HOST
	cfgDir := t.TempDir()
	c := exec.Command("docker", "context", "create", "engine-b", "--docker",
		"host="+b.host+",ca="+filepath.Join(b.cert, "ca.pem")+",cert="+filepath.Join(b.cert, "cert.pem")+",key="+filepath.Join(b.cert, "key.pem"))
	c.Env = append(os.Environ(), "DOCKER_CONFIG="+cfgDir)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("docker context create: %v\n%s", err, out)
	}
	edit(t, filepath.Join(dir, "crates/app/src/main.rs"), `GREETING: &str = "hello from chefd example"`, `GREETING: &str = "hello through a context"`)
	r = chefd(t, dir, []string{"DOCKER_HOST=", "DOCKER_CONFIG=" + cfgDir, "DOCKER_CONTEXT=engine-b", "CHEFD_COOKED_REPO=" + repo}, "build")
	if r.code != 0 {
		t.Fatalf("build through the context: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "engine   context engine-b ("+b.host+")") || !strings.Contains(r.stderr, "(0 third-party") {
		t.Errorf("the build through the context does not name it, or compiled third-party crates:\n%s", r.stderr)
	}
	if out := b.docker(t, "run", "--rm", strings.TrimSpace(r.stdout)); !strings.Contains(out, "app: hello through a context") {
		t.Errorf("the image printed %q on engine B", out)
	}
	edit(t, filepath.Join(dir, "crates/app/src/main.rs"), `GREETING: &str = "hello through a context"`, `GREETING: &str = "hello from chefd example"`)

	// a recipe the repository does not hold, on engine B, whose cook cache
	// is empty (it only ever pulled cooked images): the cook starts from
	// the repository's seed of the cook key (the first recipe, pushed by
	// A) and compiles no third-party crate (ryu is already a dependency of
	// serde_json); its image holds what A's cook of the same recipe holds
	report := filepath.Join(dir, "crates/report/Cargo.toml")
	edit(t, report, "[dependencies]\n", "[dependencies]\nryu = \"1\"\n")
	relock(t, dir)
	r = chefd(t, dir, env, "build")
	if r.code != 0 {
		t.Fatalf("build of a new recipe on engine B: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("a new recipe on engine B:\n%s", r.stderr)
	seeded := "delta from " + hash[:8] + " (seed image " + dockerctl.RemoteSeedRef(repo, "")
	if !strings.Contains(r.stderr, seeded) || !strings.Contains(r.stderr, ": 0 third-party crates") || !strings.Contains(r.stderr, "(0 third-party") {
		t.Errorf("the cook on engine B did not start from the repository's seed (%q), or compiled third-party crates:\n%s", seeded, r.stderr)
	}
	if out := b.docker(t, "run", "--rm", "--entrypoint", "/usr/local/bin/report", strings.TrimSpace(r.stdout)); !strings.Contains(out, "report: ") {
		t.Errorf("the image printed %q on engine B", out)
	}
	hash2 := prepareHash(t, dir)
	onA := chefdJSON[dockerctl.CookResult](t, dir, "cook", "--json")
	sameFiles(t, "a seeded cook on engine B against A's", cookedFilesOn(t, b.env, image+"-cooked:"+hash2[:16], "/src"), cookedFiles(t, onA.Tag, "/src"))
	if out := b.docker(t, "image", "ls", "-q", dockerctl.RemoteSeedRef(repo, cookKeyOf(t, onA.Tag))); strings.TrimSpace(out) != "" {
		t.Errorf("the pulled seed stays on engine B: %s", out)
	}
	edit(t, report, "[dependencies]\nryu = \"1\"\n", "[dependencies]\n")
	relock(t, dir)
	if os.Getenv("CHEFD_BENCH_REMOTE") == "" {
		return
	}
	// BENCHMARKS.md: the same first build on B when it must cook (B's
	// build cache holds nothing of this recipe), and a code build on a
	// warm machine (A) after the same kind of edit
	b.docker(t, "rmi", image+"-cooked:"+hash[:16], ref)
	t2 := time.Now()
	r = chefd(t, dir, b.env, "build")
	cold := time.Since(t2)
	if r.code != 0 {
		t.Fatalf("cold build on engine B: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("first build on engine B cooking: %s\n%s", cold.Round(time.Millisecond), r.stderr)
	chefd(t, dir, nil, "build")
	edit(t, filepath.Join(dir, "crates/app/src/main.rs"), `GREETING: &str = "hello from chefd example"`, `GREETING: &str = "hello from a warm machine"`)
	t3 := time.Now()
	if r := chefd(t, dir, nil, "build"); r.code != 0 {
		t.Fatalf("warm build on engine A: %s", r.stderr)
	}
	warm := time.Since(t3)
	t.Logf("| example | %.1f s | %.1f s | %.1fx | %.1f s | builder pull %.1f s |", shared.Seconds(), cold.Seconds(), cold.Seconds()/shared.Seconds(),
		warm.Seconds(), builderPull.Seconds())
}

// builderImage is the example's builder image.
func builderImage(t *testing.T) string {
	t.Helper()
	cfg, err := configs.Load("../../examples/workspace")
	if err != nil {
		t.Fatal(err)
	}
	return cfg.BuilderImage
}
