package configs

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// ImageConfig is one [[image]] table of chefd.toml: one service image of
// the workspace. All images come from one cook and one code build.
type ImageConfig struct {
	// Name is the image repository ("shop-api",
	// "registry.example.com/shop/api"); the image is Name:Tag. Its last
	// path element is the service name (chefd build --image).
	Name string `toml:"name"`
	// Tag of the image. Default: the top-level tag.
	Tag string `toml:"tag"`
	// Bins are the binaries shipped in this image (required).
	Bins []string `toml:"bins"`
	// Entrypoint is the binary the image runs. Default: the first of Bins.
	Entrypoint string `toml:"entrypoint"`
	// RuntimeImage is the image's base. Default: the top-level
	// runtime-image.
	RuntimeImage string `toml:"runtime-image"`

	line int // where the table starts in chefd.toml (0: unknown)
}

// Service is the image's short name: the last path element of Name.
func (i ImageConfig) Service() string { return path.Base(i.Name) }

// Ref is Name:Tag.
func (i ImageConfig) Ref() string { return i.Name + ":" + i.Tag }

// EntrypointBin is Entrypoint, else the first of Bins.
func (i ImageConfig) EntrypointBin() string {
	if i.Entrypoint != "" || len(i.Bins) == 0 {
		return i.Entrypoint
	}
	return i.Bins[0]
}

// imageKeys are the keys an [[image]] table accepts.
func imageKeys() []string { return []string{"bins", "entrypoint", "name", "runtime-image", "tag"} }

// decodeImage reads the "image" key: a string (the one image's repository,
// the shorthand) or an array of tables (several images).
func (c *Config) decodeImage(md toml.MetaData, data []byte) error {
	if !md.IsDefined("image") {
		return nil
	}
	switch md.Type("image") {
	case "String":
		return md.PrimitiveDecode(c.ImageKey, &c.Image)
	case "ArrayHash":
		var imgs []ImageConfig
		if err := md.PrimitiveDecode(c.ImageKey, &imgs); err != nil {
			return decodeError(c.Path, err)
		}
		starts := tableLines(data)
		for i := range imgs {
			if i < len(starts) {
				imgs[i].line = starts[i]
			}
		}
		c.Images = imgs
		for _, k := range []string{"bins", "entrypoint"} {
			if md.IsDefined(k) {
				return &Error{File: c.Path, Line: lineOfKey(data, toml.Key{k}), Key: k,
					Msg: "is set for each [[image]] when there are [[image]] tables; move it into them"}
			}
		}
		return nil
	}
	return &Error{File: c.Path, Line: lineOfKey(data, toml.Key{"image"}), Key: "image",
		Msg: fmt.Sprintf("incompatible types: %s; write image = \"repository\" for one image, or [[image]] tables for several", strings.ToLower(md.Type("image")))}
}

// tableLines are the lines of the [[image]] headers, in order.
func tableLines(data []byte) []int {
	var lines []int
	for i, l := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[[") && strings.TrimSpace(strings.Trim(strings.SplitN(t, "#", 2)[0], " []")) == "image" {
			lines = append(lines, i+1)
		}
	}
	return lines
}

// validateImages applies the defaults of the [[image]] tables and checks
// them: names valid and distinct (services too), bins present and valid,
// the entrypoint one of them.
func (c *Config) validateImages() error {
	seen, services := map[string]int{}, map[string]int{}
	for i := range c.Images {
		im := &c.Images[i]
		bad := func(key, msg string) error {
			return &Error{File: c.Path, Line: im.line, Key: "image." + key,
				Msg: fmt.Sprintf("[[image]] %s: %s", orIndex(im.Name, i), msg)}
		}
		if im.Tag == "" {
			im.Tag = c.Tag
		}
		if im.RuntimeImage == "" {
			im.RuntimeImage = c.RuntimeImage
		}
		if im.Name == "" {
			return bad("name", "every [[image]] needs a name (its repository, e.g. name = \"shop-api\")")
		}
		if !validImage(im.Name) {
			return bad("name", fmt.Sprintf("%q is not a valid image repository name (lower-case letters, digits, '.', '-', '_', '/')", im.Name))
		}
		if j, ok := seen[im.Name]; ok {
			return bad("name", fmt.Sprintf("%q is also the name of [[image]] number %d", im.Name, j+1))
		}
		if j, ok := services[im.Service()]; ok {
			return bad("name", fmt.Sprintf("%q ends like %q (image number %d): chefd build --image %s could not tell them apart",
				im.Name, c.Images[j].Name, j+1, im.Service()))
		}
		seen[im.Name], services[im.Service()] = i, i
		if svc := im.Service(); !isLower(svc[0]) || slices.Contains([]string{"skeleton", "cook", "cooked", "build", "bins"}, svc) {
			return bad("name", fmt.Sprintf("the service name %q (the name's last element) must start with a letter and not be "+
				"skeleton, cook, cooked, build or bins: it names a stage of chefd dockerfile's output", svc))
		}
		if !validTag(im.Tag) {
			return bad("tag", fmt.Sprintf("%q is not a valid image tag", im.Tag))
		}
		if len(im.Bins) == 0 {
			return bad("bins", "list the binaries this image ships (e.g. bins = [\"api\"])")
		}
		for _, b := range im.Bins {
			if !validName(b) {
				return bad("bins", fmt.Sprintf("%q is not a binary target name", b))
			}
		}
		if im.Entrypoint != "" && !slices.Contains(im.Bins, im.Entrypoint) {
			return bad("entrypoint", fmt.Sprintf("%q is not one of bins %v; add it to bins", im.Entrypoint, im.Bins))
		}
	}
	return nil
}

func orIndex(name string, i int) string {
	if name != "" {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("number %d", i+1)
}

// AllBins is the union of the binaries the configuration ships, sorted:
// those of every [[image]], else bins (empty: every binary).
func (c Config) AllBins() []string {
	if len(c.Images) == 0 {
		return c.Bins
	}
	var all []string
	for _, im := range c.Images {
		for _, b := range im.Bins {
			if !slices.Contains(all, b) {
				all = append(all, b)
			}
		}
	}
	slices.Sort(all)
	return all
}

// SelectImages returns the images named by names (a repository or a
// service name each; none: all of them), in the configuration's order.
func (c Config) SelectImages(names []string) ([]ImageConfig, error) {
	if len(names) == 0 {
		return c.Images, nil
	}
	if len(c.Images) == 0 {
		return nil, fmt.Errorf("--image: %s describes one image (no [[image]] tables)", c.fileName())
	}
	want := map[int]bool{}
	for _, n := range names {
		found := false
		for i, im := range c.Images {
			if n == im.Name || n == im.Service() || n == im.Ref() {
				want[i], found = true, true
			}
		}
		if !found {
			var list []string
			for _, im := range c.Images {
				list = append(list, im.Service())
			}
			return nil, fmt.Errorf("--image %s: no such image in %s (its images: %s)", n, c.fileName(), strings.Join(list, ", "))
		}
	}
	var out []ImageConfig
	for i, im := range c.Images {
		if want[i] {
			out = append(out, im)
		}
	}
	return out, nil
}

func (c Config) fileName() string {
	if c.Path != "" {
		return c.Path
	}
	return FileName
}
