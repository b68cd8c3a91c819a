package watcher

import "testing"

func TestGitignoreMatch(t *testing.T) {
	rules := parseGitignore([]byte(`
# comment
\#literal
/target
node_modules/
*.log
!keep.log
docs/*.md
!docs/README.md
**/gen/**
a/**/z
build/
trailing   
escaped\ 
*.[!o]bj
/anchored/dir/
`))
	tests := []struct {
		rel   string
		isDir bool
		want  bool
	}{
		{"#literal", false, true},
		{"target", true, true},
		{"crates/x/target", true, false}, // leading slash anchors
		{"node_modules", true, true},
		{"web/node_modules", true, true}, // no slash: any depth
		{"node_modules", false, false},   // trailing slash: dirs only
		{"x.log", false, true},
		{"deep/down/x.log", false, true},
		{"keep.log", false, false}, // negation
		{"deep/keep.log", false, false},
		{"docs/a.md", false, true},
		{"docs/README.md", false, false},
		{"docs/sub/a.md", false, false}, // * does not cross /
		{"x/docs/a.md", false, false},   // middle slash anchors
		{"gen/x.rs", false, true},
		{"src/gen/x.rs", false, true},
		{"src/gen", true, false}, // trailing /** needs something inside
		{"a/z", false, true},
		{"a/b/c/z", false, true},
		{"b/a/z", false, false},
		{"build", true, true},
		{"build", false, false},
		{"trailing", false, true},
		{"escaped ", false, true},
		{"escaped", false, false},
		{"x.abj", false, true},
		{"x.obj", false, false},
		{"anchored/dir", true, true},
		{"x/anchored/dir", true, false},
		{"src/main.rs", false, false},
	}
	for _, tt := range tests {
		_, got := rules.match(tt.rel, tt.isDir)
		if got != tt.want {
			t.Errorf("match(%q, dir=%v) = %v, want %v", tt.rel, tt.isDir, got, tt.want)
		}
	}
	if parseGitignore([]byte("# nothing\n\n   \n")) != nil {
		t.Error("empty .gitignore should give nil rules")
	}
}

func TestIgnorerLevels(t *testing.T) {
	ig, err := newIgnorer(t.TempDir(), []string{"assets", "!assets/keep"})
	if err != nil {
		t.Fatal(err)
	}
	ig.git[""] = parseGitignore([]byte("*.tmp\ngen/\nCargo.lock\n.cargo/\n"))
	ig.git["sub"] = parseGitignore([]byte("!x.tmp\n/local.rs\n"))
	tests := []struct {
		rel   string
		isDir bool
		want  bool
	}{
		{"a.tmp", false, true},
		{"sub/a.tmp", false, true},
		{"sub/x.tmp", false, false}, // deeper negation wins
		{"x.tmp", false, true},      // the nested rule applies to its subtree only
		{"sub/local.rs", false, true},
		{"sub/deeper/local.rs", false, false},
		{"local.rs", false, false},
		{"sub/gen", true, true},
		{"Cargo.lock", false, false}, // recipe inputs are exempt from .gitignore
		{"crates/a/Cargo.lock", false, false},
		{".cargo", true, false}, // still watched for its config
		{".cargo/config.toml", false, false},
		{".cargo/registry", true, true},
		{".cargo/credentials.toml", false, true},
		{"assets", true, false}, // a "!" pattern may re-include below: keep walking
		{"assets/a.png", false, true},
		{"assets/keep", false, false},
		{"target", true, true},
		{"crates/x/.git", true, true},
		{".idea", true, true},
		{"src/.x.rs.swp", false, true},
		{"src/x.rs", false, false},
	}
	for _, tt := range tests {
		var got bool
		if tt.isDir {
			got, _ = ig.skipDir(tt.rel, baseName(tt.rel), matchCtx{}, new(bool))
		} else {
			got = ig.skipFile(tt.rel, baseName(tt.rel), matchCtx{})
		}
		if got != tt.want {
			t.Errorf("ignored(%q, dir=%v) = %v, want %v", tt.rel, tt.isDir, got, tt.want)
		}
	}
}

func baseName(rel string) string {
	for i := len(rel) - 1; i >= 0; i-- {
		if rel[i] == '/' {
			return rel[i+1:]
		}
	}
	return rel
}
