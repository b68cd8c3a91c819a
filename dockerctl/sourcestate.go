package dockerctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// sourceState remembers, for one target-dir cache, the content of every
// source file as of the last code build that really ran cargo. A file whose
// content differs from it is "changed" and gets touched inside the build;
// every other file carries an old fixed mtime. So cargo recompiles exactly
// the crates whose files changed, whatever the host mtimes say, and never
// keeps an artifact built from other content.
type sourceState struct {
	path  string
	Files map[string]stateEntry `json:"files"`
}

type stateEntry struct {
	Digest string `json:"d"`
	Size   int64  `json:"s"`
	Mod    int64  `json:"m"`
	Ctime  int64  `json:"c"`
	Ino    uint64 `json:"i"`
}

func loadState(path string) *sourceState {
	s := &sourceState{path: path, Files: map[string]stateEntry{}}
	data, err := os.ReadFile(path)
	if err != nil {
		return s
	}
	if json.Unmarshal(data, s) != nil || s.Files == nil {
		s.Files = map[string]stateEntry{} // unreadable state: everything counts as changed
	}
	return s
}

// diff returns the files whose content differs from the state and the
// state to save once the build has run.
func (s *sourceState) diff(files []ctxFile) ([]string, map[string]stateEntry, error) {
	next := make(map[string]stateEntry, len(files))
	var changed []string
	for _, f := range files {
		e := stateEntry{Size: f.size, Mod: f.mod.UnixNano()}
		if f.abs != "" {
			if st, err := os.Lstat(f.abs); err == nil {
				if sys, ok := st.Sys().(*syscall.Stat_t); ok {
					e.Ctime = sys.Ctim.Nano()
					e.Ino = sys.Ino
				}
			}
		}
		old, ok := s.Files[f.rel]
		if ok && old.Size == e.Size && old.Mod == e.Mod && old.Ctime == e.Ctime && old.Ino == e.Ino && e.Ctime != 0 {
			e.Digest = old.Digest // unchanged inode metadata: same content
		} else {
			d, err := fileDigest(f)
			if err != nil {
				return nil, nil, err
			}
			e.Digest = d
		}
		if !ok || old.Digest != e.Digest {
			changed = append(changed, f.rel)
		}
		next[f.rel] = e
	}
	return changed, next, nil
}

// save writes the state atomically (callers hold the workspace's build
// lock).
func (s *sourceState) save(next map[string]stateEntry) error {
	s.Files = next
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("save source state: %w", err)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("save source state: %w", err)
	}
	return os.Rename(tmp, s.path)
}

// forget removes the state (the next build treats every file as changed).
func (s *sourceState) forget() error {
	err := os.Remove(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
