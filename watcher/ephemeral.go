package watcher

import "strings"

// Editor and OS temporaries that never reach a batch, whatever the ignore
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

// ephemeralPatterns returns the built-in editor patterns in .dockerignore
// syntax, for documentation and diagnostics (e.g. "chefd explain-ignore").
func ephemeralPatterns() []string {
	return []string{
		"**/4913", "**/*~", "**/.*.sw?",
		"**/.#*", "**/#*#",
		"**/*___jb_tmp___", "**/*___jb_old___", "**/.idea",
		"**/.*.kate-swp",
		"**/.DS_Store",
		"**/*-go-tmp-umask",
		"**/" + cookiePrefix + "*",
	}
}

// isEphemeral reports whether a file's base name is an editor or OS temporary.
func isEphemeral(base string) bool {
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
	case strings.HasPrefix(base, cookiePrefix): // Sync's own cookies
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

// isEphemeralDir reports whether a directory's base name holds only editor
// state (never part of a build).
func isEphemeralDir(base string) bool {
	return base == ".idea"
}
