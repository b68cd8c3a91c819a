package dockerctl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/chefd/chefd/recipe"
)

// racyWindow: a file whose mtime or ctime is this close to the moment its
// build listed it may have changed again within the filesystem's timestamp
// granularity without its stat showing it (git's "racy clean" entries), so
// its content is compared instead.
const racyWindow = 2 * time.Second

// Inputs is what one code build shipped from the workspace: every file of
// its context, with its identity when listed and the digest of the bytes
// that went into the context.
type Inputs struct {
	recipe string
	taken  time.Time
	files  map[string]inputFile
	image  string // the image the build made from them, once it succeeded
	// tagged: for several images, each image's ref and the ID it named
	// after the build (all must still name them)
	tagged map[string]string
}

type inputFile struct {
	size, mtime, ctime int64
	ino                uint64
	mode               os.FileMode
	digest             string
}

func newInputs(r *recipe.Recipe, taken time.Time) *Inputs {
	return &Inputs{recipe: r.Hash, taken: taken, files: map[string]inputFile{}}
}

func (in *Inputs) add(f ctxFile, digest string) {
	in.files[f.rel] = inputFile{size: f.size, mtime: f.mod.UnixNano(), ctime: f.ctime, ino: f.ino, mode: f.mode, digest: digest}
}

// Len is the number of files.
func (in *Inputs) Len() int { return len(in.files) }

// Unchanged reports whether the workspace still holds exactly what in
// shipped, for recipe r: the same set of context files (the same walk a
// build makes), each with the same identity, or, when its identity moved
// or is too recent to be trusted, the same content. A true answer means a
// build now would ship the same bytes (and, for a finished build, that its
// image is still on the engine).
func (b *WorkspaceBuilder) Unchanged(ctx context.Context, r *recipe.Recipe, in *Inputs) (bool, error) {
	if in == nil || r == nil || in.recipe != r.Hash {
		return false, nil
	}
	if in.image != "" && b.e != nil {
		if id, err := b.e.imageID(ctx, in.image); err != nil || id == "" {
			return false, err
		}
	}
	for ref, want := range in.tagged {
		if id, err := b.e.imageID(ctx, ref); err != nil || id != want {
			return false, err
		}
	}
	files, err := b.contextFiles(r)
	if err != nil {
		return false, err
	}
	if len(files) != len(in.files) {
		return false, nil
	}
	racy := in.taken.Add(-racyWindow).UnixNano()
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		old, ok := in.files[f.rel]
		if !ok || old.mode != f.mode {
			return false, nil
		}
		if old.size == f.size && old.mtime == f.mod.UnixNano() && old.ctime == f.ctime && old.ino == f.ino &&
			f.ctime != 0 && f.ctime < racy && old.mtime < racy {
			continue
		}
		if f.link == "" && old.size != f.size {
			return false, nil
		}
		d, err := contentDigest(f)
		if err != nil {
			return false, err
		}
		if d != old.digest {
			return false, nil
		}
	}
	return true, nil
}

// contentDigest is the digest contextWriter.addHashed gives f's current
// content.
func contentDigest(f ctxFile) (string, error) {
	h := sha256.New()
	if f.link != "" {
		io.WriteString(h, "link\x00"+f.link)
		return sum16(h), nil
	}
	if f.mode.Perm()&0o111 != 0 {
		io.WriteString(h, "file x\x00")
	} else {
		io.WriteString(h, "file -\x00")
	}
	src, err := os.OpenFile(f.abs, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", f.abs, err)
	}
	defer src.Close()
	if st, err := src.Stat(); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("read %s: not a regular file", f.abs)
	}
	if _, err := io.Copy(h, src); err != nil {
		return "", fmt.Errorf("read %s: %w", f.abs, err)
	}
	return sum16(h), nil
}

func sum16(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)[:16]) }
