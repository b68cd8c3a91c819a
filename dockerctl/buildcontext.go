package dockerctl

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/chefd/chefd/inputs"
)

// stableTime is the mtime of every unchanged file in a build context: far
// in the past, so cargo never prefers a source over an artifact it built.
// Changed files are touched inside the build, with the engine's clock.
var stableTime = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// ctxFile is one file (or symlink) to put in a build context.
type ctxFile struct {
	rel  string // slash path relative to the context root
	abs  string // source on the host ("" for generated content)
	data []byte // generated content
	mode fs.FileMode
	link string // symlink target
	size int64
	mod  time.Time // host mtime
	// identity when listed (Inputs)
	ctime int64
	ino   uint64
}

// collect walks dir (absolute) and returns the files m (rooted at dir)
// counts as build inputs, with paths relative to ctxRoot. The same rules
// decide what the watcher watches (package inputs).
func collect(dir, ctxRoot string, m *inputs.Matcher) ([]ctxFile, error) {
	crel, err := filepath.Rel(ctxRoot, dir)
	if err != nil {
		return nil, err
	}
	return collectAs(dir, "", filepath.ToSlash(crel), m)
}

// collectAs walks dir (absolute; a symlink to a directory is followed) as
// if it were the directory mrel below m's root ("": the root) and crel
// below the context root: m decides on mrel/..., the files get
// crel/... (a symlinked member crate is shipped at the member's path).
func collectAs(dir, mrel, crel string, m *inputs.Matcher) ([]ctxFile, error) {
	var out []ctxFile
	parents := map[string]inputs.Parent{}
	if mrel != "" {
		skip, ctx := m.Dir(mrel)
		if skip {
			return nil, nil
		}
		parents[mrel] = ctx
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if p == dir {
			return nil
		}
		sub, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel := path.Join(mrel, filepath.ToSlash(sub))
		parent := parents[path.Dir(rel)]
		if d.IsDir() {
			skip, ctx := m.SkipDir(rel, parent, nil)
			if skip {
				return filepath.SkipDir
			}
			parents[rel] = ctx
			return nil
		}
		if m.SkipFile(rel, parent) {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // gone since the directory was read (an editor's temporary file)
		}
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		f := ctxFile{rel: path.Join(crel, filepath.ToSlash(sub)), abs: p, mode: info.Mode(), size: info.Size(), mod: info.ModTime()}
		f.ctime, f.ino = statIdentity(info)
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("read link %s: %w", p, err)
			}
			f.link = l
		case !info.Mode().IsRegular():
			return nil // sockets, fifos, devices
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

// contextWriter streams a tar build context.
type contextWriter struct {
	tw   *tar.Writer
	dirs map[string]bool
}

func newContextWriter(w io.Writer) *contextWriter {
	return &contextWriter{tw: tar.NewWriter(w), dirs: map[string]bool{}}
}

func (c *contextWriter) mkdirs(rel string) error {
	dir := path.Dir(rel)
	if dir == "." || dir == "/" || c.dirs[dir] {
		return nil
	}
	if err := c.mkdirs(dir); err != nil {
		return err
	}
	c.dirs[dir] = true
	return c.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: stableTime, Format: tar.FormatPAX})
}

// add writes one file under prefix.
func (c *contextWriter) add(prefix string, f ctxFile) error {
	_, err := c.write(prefix, f, nil)
	return err
}

// addHashed writes one file under prefix and returns the digest of exactly
// what went into the context: the bytes written (with the executable bit),
// or a symlink's target.
func (c *contextWriter) addHashed(prefix string, f ctxFile) (string, error) {
	h := sha256.New()
	return c.write(prefix, f, h)
}

// wholeReadLimit: files up to this size are read in one go before their
// header is written, so a file rewritten during the build still gives a
// consistent entry (whatever its content was at the read).
const wholeReadLimit = 1 << 20

func (c *contextWriter) write(prefix string, f ctxFile, h hash.Hash) (string, error) {
	name := path.Join(prefix, f.rel)
	if err := c.mkdirs(name); err != nil {
		return "", err
	}
	hdr := &tar.Header{Name: name, ModTime: stableTime, Mode: int64(f.mode.Perm()), Format: tar.FormatPAX}
	if hdr.Mode == 0 {
		hdr.Mode = 0o644
	}
	sum := func() string {
		if h == nil {
			return ""
		}
		return hex.EncodeToString(h.Sum(nil)[:16])
	}
	if f.link != "" {
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = f.link
		if h != nil {
			io.WriteString(h, "link\x00"+f.link)
		}
		return sum(), c.tw.WriteHeader(hdr)
	}
	if h != nil {
		if hdr.Mode&0o111 != 0 {
			io.WriteString(h, "file x\x00")
		} else {
			io.WriteString(h, "file -\x00")
		}
	}
	hdr.Typeflag = tar.TypeReg
	if f.abs == "" {
		hdr.Size = int64(len(f.data))
		if err := c.tw.WriteHeader(hdr); err != nil {
			return "", err
		}
		if h != nil {
			h.Write(f.data)
		}
		_, err := c.tw.Write(f.data)
		return sum(), err
	}
	// O_NONBLOCK: a file replaced by a FIFO since the walk must not hang
	// the build; it has no effect on regular files.
	src, err := os.OpenFile(f.abs, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", f.abs, err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", f.abs, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("read %s: no longer a regular file (it changed during the build)", f.abs)
	}
	var out io.Writer = c.tw
	if h != nil {
		out = io.MultiWriter(c.tw, h)
	}
	if st.Size() <= wholeReadLimit {
		data, err := io.ReadAll(io.LimitReader(src, wholeReadLimit+1))
		if err != nil {
			return "", fmt.Errorf("read %s: %w", f.abs, err)
		}
		if len(data) > wholeReadLimit {
			return "", fmt.Errorf("read %s: it grew during the build; build again", f.abs)
		}
		hdr.Size = int64(len(data))
		if err := c.tw.WriteHeader(hdr); err != nil {
			return "", err
		}
		_, err = out.Write(data)
		return sum(), err
	}
	hdr.Size = st.Size()
	if err := c.tw.WriteHeader(hdr); err != nil {
		return "", err
	}
	if _, err := io.CopyN(out, bufio.NewReader(src), hdr.Size); err != nil {
		return "", fmt.Errorf("read %s: %w (did it change during the build?)", f.abs, err)
	}
	return sum(), nil
}

func (c *contextWriter) Close() error { return c.tw.Close() }

func sortFiles(fs []ctxFile) {
	sort.Slice(fs, func(i, j int) bool { return fs[i].rel < fs[j].rel })
}
