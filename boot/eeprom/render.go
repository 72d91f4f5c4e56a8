package eeprom

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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
		fmt.Fprintf(&b, "%s=%s\n", st.Name, st.Value)
	}
	return b.String()
}

// Write prints the settings as output names: conf (the boot.conf text),
// table, json or yaml.
func (s *Settings) Write(w io.Writer, output string) error {
	switch output {
	case "conf", "":
		_, err := io.WriteString(w, s.Conf())
		return err
	case "table":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SETTING\tVALUE\tWHY")
		for _, st := range s.Settings {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", st.Name, st.Value, st.Why)
		}
		if s.PubKey != nil {
			fmt.Fprintf(tw, "(public key)\t%s\t%s, added with rpi-eeprom-config --pubkey\n", s.PubKey.File, s.PubKey.KeyID)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, "\napply (boot.conf = the SETTING=VALUE lines under [all]; -o conf prints it):")
		for _, a := range s.Apply {
			fmt.Fprintf(w, "  %s\n", a)
		}
		return nil
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
