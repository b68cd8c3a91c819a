package inputs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMatcher(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"crates/x/target", "lone/target", "tagged/target", "src"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "crates/x/Cargo.toml"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "tagged/target/CACHEDIR.TAG"), nil, 0o644)
	os.WriteFile(filepath.Join(root, ".dockerignore"), []byte("docs\n**/*.log\n!keep.log\ngen/**/*.rs\n"), 0o644)
	os.WriteFile(filepath.Join(root, ".gitignore"), []byte("*.gen.rs\n"), 0o644)
	m, err := New(root, []string{"assets", "!assets/keep"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rel   string
		isDir bool
		want  bool
	}{
		{"src/x.gen.rs", false, false}, // .gitignore does not decide
		{"docs", true, true},
		{"docs/a.md", false, true},
		{"a.log", false, true},
		{"src/deep/b.log", false, true},
		{"keep.log", false, false}, // re-included
		{"gen/a/b.rs", false, true},
		{"gen/a/b.txt", false, false},
		{"assets", true, false}, // a "!" pattern may re-include below: keep walking
		{"assets/a.png", false, true},
		{"assets/keep", false, false},
		{"target", true, true},
		{"crates/x/target", true, true}, // next to a Cargo.toml
		{"lone/target", true, false},    // just a directory called target
		{"tagged/target", true, true},   // CACHEDIR.TAG
		{"crates/x/.git", true, true},
		{".hg", true, true},
		{".idea", true, true},
		{".chefd", true, true},
		{"src/.x.rs.swp", false, true},
		{".chefd-sync-1-2", false, true},
		{"src/x.rs", false, false},
		{".dockerignore", false, false},
	}
	for _, tt := range tests {
		var got bool
		if tt.isDir {
			got, _ = m.Dir(tt.rel)
		} else {
			got = m.Excluded(tt.rel)
		}
		if got != tt.want {
			t.Errorf("left out (%q, dir=%v) = %v, want %v", tt.rel, tt.isDir, got, tt.want)
		}
	}
}

func TestBadPatternsNameTheirFile(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, ".dockerignore"), []byte("[\n"), 0o644)
	if _, err := New(root, nil); err == nil || !strings.Contains(err.Error(), ".dockerignore") {
		t.Fatalf("error %v does not name .dockerignore", err)
	}
	if _, err := New(t.TempDir(), []string{"["}); err == nil || !strings.Contains(err.Error(), "chefd.toml") {
		t.Fatalf("error %v does not name chefd.toml", err)
	}
}

func TestEphemeral(t *testing.T) {
	yes := []string{
		"4913", "f.rs~", "~", ".f.rs.swp", ".f.rs.swx", ".f.rs.swo", ".f.rs.swn", "..swp",
		".#f.rs", "#f.rs#", "f.rs___jb_tmp___", "f.rs___jb_old___", ".f.rs.kate-swp",
		".DS_Store", "main-go-tmp-umask",
	}
	no := []string{
		"f.rs", "4914", ".swp", "f.swp", ".gitignore", "#", "#f.rs", "Cargo.toml",
		".f.rs.swift", "jb_tmp", ".kate-swp", "a.kate-swp", ".cargo", ".dockerignore",
	}
	for _, n := range yes {
		if !Ephemeral(n) {
			t.Errorf("Ephemeral(%q) = false, want true", n)
		}
	}
	for _, n := range no {
		if Ephemeral(n) {
			t.Errorf("Ephemeral(%q) = true, want false", n)
		}
	}
}
