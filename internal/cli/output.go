package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// Output is the -o/--output flag every command that prints data takes:
// table (for people), json or yaml (for scripts; the same field names).
type Output struct {
	Format string
}

// Register adds -o/--output to cmd.
func (o *Output) Register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.Format, "output", "o", "table", "output format: table, json or yaml")
}

// Check fails on an unknown format, before any work is done.
func (o *Output) Check() error {
	switch o.Format {
	case "table", "json", "yaml", "text", "":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use table, json or yaml", o.Format)
}

// Write prints v as the flag says: table runs table (nil prints nothing),
// json and yaml encode v. ("text" is table, for scripts written before.)
func (o *Output) Write(w io.Writer, v any, table func(io.Writer) error) error {
	switch o.Format {
	case "table", "text", "":
		if table == nil {
			return nil
		}
		return table(w)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		return writeYAML(w, v)
	}
	return o.Check()
}

// writeYAML writes v as YAML with the field names and order of its JSON
// encoding: JSON is YAML, so the JSON is decoded as a YAML node tree and
// re-encoded in block style.
func writeYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("encode yaml: %w", err)
	}
	blockStyle(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// blockStyle drops the flow style and quoting the JSON input had, so the
// encoder picks YAML's own (quoting only what needs it).
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}
