package dockerctl

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/chefd/chefd/inputs"
	"github.com/chefd/chefd/recipe"
)

// maxLinkDepth bounds symlinked directories met inside symlinked
// directories on the way to a member.
const maxLinkDepth = 8

// followMemberLinks replaces each symlink of files that is the directory
// of a crate of the recipe, or a directory above one, by the files of the
// directory it points to, shipped at the symlink's path. cargo reads such
// a member through its symlink, and the cooked image holds the member as a
// directory, which a symlink in the context could not replace. Any other
// symlink stays a symlink: the context never follows one to what it points
// at (a link to a secret ships as a link). Below the workspace root the
// member's files pass the workspace's rules (.dockerignore, ignore); a
// member reached outside it gets the built-in rules, like any path crate
// outside the workspace.
func followMemberLinks(r *recipe.Recipe, files []ctxFile, root string, m *inputs.Matcher) ([]ctxFile, error) {
	var dirs []string
	for _, mf := range r.Manifests {
		if d := mf.Dir(); d != "." {
			dirs = append(dirs, d)
		}
	}
	leadsToCrate := func(rel string) bool {
		for _, d := range dirs {
			if d == rel || strings.HasPrefix(d, rel+"/") {
				return true
			}
		}
		return false
	}
	for depth := 0; ; depth++ {
		var out []ctxFile
		followed := false
		for _, f := range files {
			if f.link == "" || !leadsToCrate(f.rel) {
				out = append(out, f)
				continue
			}
			if depth == maxLinkDepth {
				return nil, fmt.Errorf("%s: symbolic links to directories nest more than %d deep on the way to a crate; "+
					"point the link at the real directory", f.abs, maxLinkDepth)
			}
			st, err := os.Stat(f.abs)
			if err != nil {
				return nil, fmt.Errorf("%s: a crate's directory is a symbolic link chefd cannot follow (%v); "+
					"replace it with the directory or a link to it", f.abs, err)
			}
			if !st.IsDir() {
				out = append(out, f)
				continue
			}
			more, err := collectLinked(f, r.ContextRoot, root, m)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
			followed = true
		}
		files = out
		if !followed {
			return files, nil
		}
	}
}

// collectLinked lists the files of the directory the symlink f points to,
// at f's path, with the workspace's rules when f is in the workspace.
func collectLinked(f ctxFile, ctxRoot, root string, m *inputs.Matcher) ([]ctxFile, error) {
	if wrel := workspaceRel(f.rel, ctxRoot, root); wrel != ".." && !strings.HasPrefix(wrel, "../") {
		return collectAs(f.abs, path.Clean(wrel), f.rel, m)
	}
	return collectAs(f.abs, "", f.rel, inputs.Builtin(f.abs))
}
