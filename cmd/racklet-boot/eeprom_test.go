package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestEEPROMCommand runs the command on the example config: flags reach
// the library and every output format prints.
func TestEEPROMCommand(t *testing.T) {
	run := func(args ...string) (string, error) {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.Execute()
		return out.String(), err
	}
	out, err := run("eeprom", "--config", "../../examples/rack.yaml")
	if err != nil || !strings.Contains(out, "[all]\n") || !strings.Contains(out, "\nBOOT_ORDER=0xf2\n") || !strings.Contains(out, "\nTFTP_PREFIX=0\n") {
		t.Fatalf("eeprom: %v\n%s", err, out)
	}
	out, err = run("eeprom", "--config", "../../examples/rack.yaml", "--mode", "http", "--http-path", "rack1",
		"--pubkey", "../../boot/eeprom/testdata/eeprom.pub", "-o", "json")
	if err != nil {
		t.Fatalf("eeprom --mode http: %v\n%s", err, out)
	}
	var s struct {
		Settings []struct{ Name, Value string }
		Pubkey   struct{ KeyID string }
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || len(s.Settings) != 4 || s.Settings[3].Value != "rack1" || s.Pubkey.KeyID == "" {
		t.Errorf("eeprom --mode http -o json: %v\n%s", err, out)
	}
	if _, err := run("eeprom", "--config", "../../examples/rack.yaml", "--mode", "http"); err == nil || !strings.Contains(err.Error(), "--pubkey") {
		t.Errorf("http without --pubkey: %v", err)
	}
}
