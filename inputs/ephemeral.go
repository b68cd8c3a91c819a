package inputs

import "strings"

// Editor and OS temporaries are never build inputs, whatever the ignore
// files say. The list follows Tilt's internal/ignore/ephemeral.go and the
// traces collected in shared/notes/dev-loop.md §4:
//
//	vim/neovim   4913 (writability probe), *~ (backup), .*.sw? (swap: .swp .swx .swo .swn ...)
//	emacs        .#* (lock symlink), #*# (autosave), *~ (backup)
//	JetBrains    *___jb_tmp___, *___jb_old___ (safe write), .idea/ (project state, directory)
//	kate         .*.kate-swp
//	macOS        .DS_Store
//	Go tooling   *-go-tmp-umask
//	chefd        .chefd-sync-* (Watcher.Sync's cookies)
//
// The checks are plain string tests on the base name: they run for every
// event, so no glob matching here.

// Ephemeral reports whether a file's base name is an editor or OS temporary.
func Ephemeral(base string) bool {
	n := len(base)
	if n == 0 {
		return false
	}
	switch base {
	case "4913", ".DS_Store":
		return true
	}
	switch {
	case base[n-1] == '~': // vim and emacs backups
		return true
	case strings.HasPrefix(base, ".#"): // emacs lock
		return true
	case n >= 2 && base[0] == '#' && base[n-1] == '#': // emacs autosave
		return true
	case strings.HasSuffix(base, "___jb_tmp___"), strings.HasSuffix(base, "___jb_old___"):
		return true
	case strings.HasSuffix(base, "-go-tmp-umask"):
		return true
	case strings.HasPrefix(base, CookiePrefix): // Sync's own cookies
		return true
	}
	if base[0] == '.' {
		if n > len(".kate-swp") && strings.HasSuffix(base, ".kate-swp") {
			return true
		}
		// .*.sw? : a dot, anything, ".sw", one more character.
		if n >= 5 && base[n-4:n-1] == ".sw" {
			return true
		}
	}
	return false
}
