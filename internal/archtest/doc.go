// Package archtest checks the import rules docs/architecture.md states, so
// the picture stays true of the code: its test fails when a package imports
// what its layer may not.
package archtest
