package eeprom

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// Conf is the bootloader config text: what goes in boot.conf for
// rpi-eeprom-config --config, with the commands that apply it as comments.
func (s *Settings) Conf() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Raspberry Pi bootloader settings for %s boot from racklet-boot at %s.\n", strings.ToUpper(string(s.Mode)), s.Server)
	b.WriteString("# Save as boot.conf; apply to an EEPROM image with:\n")
	for _, a := range s.Apply {
		fmt.Fprintf(&b, "#   %s\n", a)
	}
	if s.PubKey != nil {
		fmt.Fprintf(&b, "# The Pi then accepts only a boot.img signed by the key of %s (%s).\n", s.PubKey.File, s.PubKey.KeyID)
	}
	b.WriteString("[all]\n")
	for _, st := range s.Settings {
		if st.Why != "" {
			fmt.Fprintf(&b, "# %s\n", st.Why)
		}
		fmt.Fprintf(&b, "%s=%s\n", st.Name, st.Value)
	}
	return b.String()
}

// Write prints the settings as output names: table (the default, for
// people and for rpi-eeprom-config alike: the boot.conf text, each
// setting under a comment saying why; "conf" is the old spelling), json
// or yaml.
func (s *Settings) Write(w io.Writer, output string) error {
	switch output {
	case "table", "conf", "":
		_, err := io.WriteString(w, s.Conf())
		return err
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(s)
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(s); err != nil {
			return err
		}
		return enc.Close()
	}
	return fmt.Errorf("unknown output format %q: use conf, table, json or yaml", output)
}
