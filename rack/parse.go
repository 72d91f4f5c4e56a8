package rack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults applied by Parse to fields the file leaves out.
const (
	DefaultHTTPPort  = 80                  // server.httpPort
	DefaultTFTPPort  = 69                  // server.tftpPort
	DefaultDataDir   = "/var/lib/racklet"  // server.dataDir
	DefaultLeaseTime = time.Hour           // dhcp.leaseTime
	DefaultPiMenu    = "Raspberry Pi Boot" // dhcp.piMenu, the text the Pi bootloader matches in option 43
	DefaultUnknown   = UnknownIgnore       // unknownMachines
	// dhcp.subnet defaults to the /24 around server.address.
)

// MaxConfigSize bounds what Load reads: a rack config is a few kilobytes.
const MaxConfigSize = 4 << 20

// Load reads and parses the config file at path. Relative boot sources in it
// are resolved against the file's directory.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read rack config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read rack config %s: %w", path, err)
	}
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("read rack config %s: larger than %d bytes, is this the right file?", path, MaxConfigSize)
	}
	return Parse(data, path)
}

// Parse decodes, defaults and validates a rack config. filename is used in
// error messages and as the base for relative paths (dir, fat, dataDir); ""
// means the current directory. On any problem it returns a *ValidationError
// listing all of them, each with its line and column, in line order.
func Parse(data []byte, filename string) (*Config, error) {
	errs := &collector{file: filename}
	root := parseDocument(data, errs)
	if root == nil {
		return nil, errs.err()
	}
	d := &decoder{errs: errs, where: make(map[string]*yaml.Node)}
	c := &Config{}
	d.decodeConfig(root, c)

	base := "."
	if filename != "" {
		base = filepath.Dir(filename)
	}
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	applyDefaults(c, base)
	v := &validator{d: d, c: c, base: base}
	v.validate()
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseDocument returns the root node of the single YAML document in data,
// or nil after recording why there is none.
func parseDocument(data []byte, errs *collector) (root *yaml.Node) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; never take the server down for it.
		if r := recover(); r != nil {
			errs.at(nil, "", "yaml parser failed: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			errs.at(nil, "", "the file is empty: a rack config starts with \"apiVersion: %s\"", APIVersion)
		} else {
			errs.syntaxError(err)
		}
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		errs.at(&doc, "", "the file is empty: a rack config starts with \"apiVersion: %s\"", APIVersion)
		return nil
	}
	root = resolve(doc.Content[0])
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		errs.at(&extra, "", "a rack config is a single YAML document: remove the second one, which starts here")
	} else if !errors.Is(err, io.EOF) {
		errs.syntaxError(err)
	}
	if root.Kind != yaml.MappingNode {
		errs.at(root, "", "a rack config is a mapping of fields (apiVersion, kind, server, ...), not %s", kindName(root))
		return nil
	}
	return root
}

// applyDefaults fills the fields the file left out, and makes dataDir absolute.
func applyDefaults(c *Config, base string) {
	s := &c.Server
	if s.HTTPPort == 0 {
		s.HTTPPort = DefaultHTTPPort
	}
	if s.TFTPPort == 0 {
		s.TFTPPort = DefaultTFTPPort
	}
	if s.DataDir == "" {
		s.DataDir = DefaultDataDir
	}
	s.DataDir = absUnder(base, s.DataDir)
	h := &c.DHCP
	if h.LeaseTime == 0 {
		h.LeaseTime = DefaultLeaseTime
	}
	if h.PiMenu == "" {
		h.PiMenu = DefaultPiMenu
	}
	if !h.Subnet.IsValid() && s.Address.Is4() {
		h.Subnet = netip.PrefixFrom(s.Address, 24).Masked()
	}
	if c.UnknownMachines == "" {
		c.UnknownMachines = DefaultUnknown
	}
}

// absUnder makes p absolute, relative to base when it is not already.
func absUnder(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}
