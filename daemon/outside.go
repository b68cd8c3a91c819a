package daemon

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/chefd/chefd/recipe"
)

// watchedOutside are the directories outside the workspace root that the
// context ships, so the watcher must watch them too: the path crates
// outside it (recipe.OutsideDirs), and the directories that members whose
// directory is a symbolic link (cargo follows it, and so does the
// context) point to outside it. inotify does not follow a link, so an
// edit there would otherwise start no automatic build.
func watchedOutside(r *recipe.Recipe) []string {
	var dirs []string
	for _, d := range r.OutsideDirs() {
		dirs = append(dirs, filepath.Join(r.ContextRoot, filepath.FromSlash(d)))
	}
	root, err := filepath.EvalSymlinks(r.Root)
	if err != nil {
		return dirs
	}
	seen := map[string]bool{}
	for _, m := range r.Manifests {
		d := filepath.Join(r.ContextRoot, filepath.FromSlash(m.Dir()))
		if !within(d, r.Root) {
			continue // an outside crate: above
		}
		real, err := filepath.EvalSymlinks(d)
		if err != nil || within(real, root) || seen[real] {
			continue
		}
		if st, err := os.Stat(real); err == nil && st.IsDir() {
			seen[real] = true
			dirs = append(dirs, real)
		}
	}
	return dirs
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
