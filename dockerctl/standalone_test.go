package dockerctl

import (
	"context"
	"testing"

	"github.com/docker/docker/api/types/build"

	"github.com/chefd/chefd/inputs"
	"github.com/chefd/chefd/recipe"
)

// TestStandaloneBuilds builds the exported Dockerfile of a small workspace
// with the engine, as `docker build .` would: the cook leaves no artifact
// of the local crates' dummies, the build stage compiles the real code and
// copies the binaries, the runtime stage gets them.
func TestStandaloneBuilds(t *testing.T) {
	e := engine(t)
	needBuilder(t, e)
	root := t.TempDir()
	write(t, root, map[string]string{
		"Cargo.toml":              "[workspace]\nmembers = [\"app\", \"app-lib\"]\nresolver = \"2\"\n",
		"app/Cargo.toml":          "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\napp-lib = { path = \"../app-lib\" }\n",
		"app/src/main.rs":         "fn main() { println!(\"{}\", app_lib::greeting()); }\n",
		"app/src/bin/tool.rs":     "fn main() {}\n",
		"app-lib/Cargo.toml":      "[package]\nname = \"app-lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		"app-lib/src/lib.rs":      "pub fn greeting() -> &'static str { \"hello from the real code\" }\n",
		"app-lib/build.rs":        "fn main() { println!(\"cargo:rerun-if-changed=build.rs\"); }\n",
		"target/release/stale.rs": "never shipped",
	})
	r, err := recipe.Compute(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Settings{BuilderImage: testBuilder, RuntimeImage: testBuilder}
	bins, entry := ShippedBins(cfg, r)
	df := Standalone(r, cfg, bins, entry)
	files, err := collect(root, root, inputs.Builtin(root))
	if err != nil {
		t.Fatal(err)
	}
	checks := df + `
FROM cook AS cook-check
RUN for n in app app_lib app-lib tool; do \
      if ls /chefd/target/release/.fingerprint /chefd/target/release/deps /chefd/target/release/build | grep -q "^$n-\|^lib$n[-.]"; then \
        echo "a dummy artifact of $n is left"; exit 1; fi; \
    done
FROM build AS build-check
RUN /chefd/out/app | grep -qx 'hello from the real code' && test -x /chefd/out/tool
`
	for _, target := range []string{"", "cook-check", "build-check"} {
		text := df
		if target != "" {
			text = checks
		}
		_, err := e.build(context.Background(), func(cw *contextWriter) error {
			for _, f := range files {
				if err := cw.add("", f); err != nil {
					return err
				}
			}
			return cw.add("", ctxFile{rel: "chefd.Dockerfile", data: []byte(text), mode: 0o644})
		}, build.ImageBuildOptions{Dockerfile: "chefd.Dockerfile", Target: target,
			Labels: map[string]string{"chefd": "1", "chefd.kind": "test"}}, nil)
		if err != nil {
			t.Fatalf("target %q: %v", target, err)
		}
	}
}
