package resolve

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"text/template"
	"time"

	"github.com/racklet/racklet-boot/inventory"
)

// Facts are what templates (NAME.tmpl in a boot source, a node's
// boot.cmdline) are rendered from. Field names are the template's: write
// {{.Name}}, {{.ServerAddr}}, {{range .Initrd}}…{{end}}.
type Facts struct {
	Name        string   // node name; "" for an unknown machine
	Kind        string   // node kind (rpi4, rpi5, uefi-arm64, uefi-x86_64, bios)
	MAC         string   // colon form, lower case; "" when unknown
	Serial      string   // Pi serial, 8 lower-case hex digits; "" when unknown
	Addr        string   // the client's address as the request came
	ServerAddr  string   // server.address: what clients use for TFTP and HTTP
	HTTPPort    int      // server.httpPort (80 when unset)
	Kernel      string   // boot.kernel
	Initrd      []string // boot.initrd
	Cmdline     string   // boot.cmdline, itself template-expanded
	ImageDigest string   // manifest digest of the node's verified image; "" for other sources
	RootHash    string   // dm-verity root hash: the image's, else boot.rootHash
	Slot        string   // A/B slot being served; "a" until A/B serving exists
}

// maxTemplateSize bounds a template read from a boot source.
const maxTemplateSize = 1 << 20

// factsFor collects the facts of a node for a request. The command line is
// expanded last, with the other facts (and an empty Cmdline) in scope.
func factsFor(s *snapshot, c *client, req Request, img *ImageBoot) (*Facts, error) {
	n := c.node
	f := &Facts{
		Name:     n.Name,
		Kind:     string(n.Kind),
		Serial:   strings.ToLower(n.Serial),
		Kernel:   n.Boot.Kernel,
		Initrd:   n.Boot.Initrd,
		HTTPPort: s.cfg.Server.HTTPPort,
		Slot:     "a",
		RootHash: n.Boot.RootHash,
	}
	if img != nil {
		f.ImageDigest = img.Digest
		if img.RootHash != "" {
			f.RootHash = img.RootHash
		}
	}
	if len(n.MAC) > 0 {
		f.MAC = n.MAC.String()
	}
	if req.Client.IsValid() {
		f.Addr = req.Client.Unmap().String()
	}
	if s.cfg.Server.Address.IsValid() {
		f.ServerAddr = s.cfg.Server.Address.String()
	}
	if f.HTTPPort == 0 {
		f.HTTPPort = 80
	}
	if n.Boot.Cmdline != "" {
		cl, err := render("boot.cmdline of "+nodeLabel(c), n.Boot.Cmdline, f)
		if err != nil {
			return nil, err
		}
		f.Cmdline = strings.TrimSpace(string(cl))
	}
	return f, nil
}

// render executes one template; errors name the template and the line.
func render(name, text string, f *Facts) ([]byte, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, f); err != nil {
		return nil, fmt.Errorf("render template: %w", err)
	}
	return b.Bytes(), nil
}

// renderSourceTemplate renders NAME.tmpl from the source as NAME.
func renderSourceTemplate(tmpl *File, name string, f *Facts) ([]byte, error) {
	defer tmpl.Close()
	text, err := io.ReadAll(io.LimitReader(tmpl.Content, maxTemplateSize+1))
	if err != nil {
		return nil, fmt.Errorf("read template %s: %w", tmpl.Path, err)
	}
	if len(text) > maxTemplateSize {
		return nil, fmt.Errorf("template %s is larger than %d bytes", tmpl.Path, maxTemplateSize)
	}
	return render(name+".tmpl", string(text), f)
}

// generated wraps rendered bytes as a File with a content-hash ETag and the
// config's load time as ModTime.
func generated(name, node string, b []byte, modTime time.Time) *File {
	sum := sha256.Sum256(b)
	return &File{
		Content: bytes.NewReader(b),
		Closer:  io.NopCloser(nil),
		Size:    int64(len(b)),
		ModTime: modTime,
		ETag:    "\"sha256:" + hex.EncodeToString(sum[:]) + "\"",
		Node:    node,
		Path:    name,
	}
}

// ipxeScript renders the iPXE script of a generic client: the kernel and
// initrds over HTTP from this server, under /boot/<node prefix>/, so that
// the HTTP server hands "<prefix>/<name>" back to the resolver. A node
// without a kernel gets a script that says so and exits with an error.
func ipxeScript(c *client, f *Facts) []byte {
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	if f.Kernel == "" {
		fmt.Fprintf(&b, "echo racklet-boot: %s has no kernel to boot (set boot.kernel in the rack config)\n", nodeLabel(c))
		b.WriteString("exit 1\n")
		return []byte(b.String())
	}
	server := f.ServerAddr
	if server == "" {
		server = "${next-server}"
	}
	base := fmt.Sprintf("http://%s:%d/boot/", server, f.HTTPPort)
	if p := inventory.Prefix(c.node); p != "" {
		base += p + "/"
	}
	fmt.Fprintf(&b, "kernel %s%s", base, escapePath(f.Kernel))
	if len(f.Initrd) > 0 {
		fmt.Fprintf(&b, " initrd=%s", path.Base(f.Initrd[0]))
	}
	if f.Cmdline != "" {
		fmt.Fprintf(&b, " %s", f.Cmdline)
	}
	b.WriteString("\n")
	for _, i := range f.Initrd {
		fmt.Fprintf(&b, "initrd %s%s\n", base, escapePath(i))
	}
	b.WriteString("boot\n")
	return []byte(b.String())
}

// escapePath escapes each element of a slash-separated name for a URL path.
func escapePath(p string) string {
	elems := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, e := range elems {
		elems[i] = url.PathEscape(e)
	}
	return strings.Join(elems, "/")
}

// nodeLabel names the client's node in messages.
func nodeLabel(c *client) string {
	if c.node.Name != "" {
		return "node " + c.node.Name
	}
	if len(c.node.MAC) > 0 {
		return "unknown machine " + c.node.MAC.String()
	}
	if c.node.Serial != "" {
		return "unknown machine with serial " + c.node.Serial
	}
	return "unknown machine"
}
