package verity

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// TestMatchesVeritysetup builds trees of one, two and three levels and checks that
// veritysetup format writes the same bytes with the same salt and UUID, that veritysetup
// verify accepts ours, and that it rejects the data after one flipped byte.
func TestMatchesVeritysetup(t *testing.T) {
	vs := testutil.NeedTool(t, "veritysetup")
	salt, _ := hex.DecodeString("5eed5eed00112233445566778899aabbccddeeff00112233445566778899aabb")
	opts := Options{Salt: salt, UUID: [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef, 0x81, 0x23, 1, 2, 3, 4, 5, 6}}
	for name, blocks := range map[string]int{"one block": 1, "one level": 100, "two levels": 129, "three levels": 128*128 + 3} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			data := make([]byte, blocks*BlockSize)
			rand.New(rand.NewSource(int64(blocks))).Read(data)
			dataPath := filepath.Join(dir, "data")
			os.WriteFile(dataPath, data, 0o644)
			var ours bytes.Buffer
			res, err := Build(context.Background(), bytes.NewReader(data), int64(len(data)), &ours, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.HashSize != int64(ours.Len()) {
				t.Errorf("HashSize %d, wrote %d", res.HashSize, ours.Len())
			}
			oursPath := filepath.Join(dir, "ours.verity")
			os.WriteFile(oursPath, ours.Bytes(), 0o644)
			theirsPath := filepath.Join(dir, "theirs.verity")
			out, err := exec.Command(vs, "format", "--hash=sha256", "--data-block-size=4096", "--hash-block-size=4096",
				"--salt="+hex.EncodeToString(salt), "--uuid="+res.UUIDString(), dataPath, theirsPath).CombinedOutput()
			if err != nil {
				t.Fatalf("veritysetup format: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "Root hash:      \t"+res.RootHashHex()) && !strings.Contains(strings.Join(strings.Fields(string(out)), " "), "Root hash: "+res.RootHashHex()) {
				t.Errorf("veritysetup root hash differs from ours %s:\n%s", res.RootHashHex(), out)
			}
			theirs, _ := os.ReadFile(theirsPath)
			if !bytes.Equal(theirs, ours.Bytes()) {
				t.Errorf("hash device differs from veritysetup's (%d vs %d bytes)", ours.Len(), len(theirs))
			}
			if out, err := exec.Command(vs, "verify", dataPath, oursPath, res.RootHashHex()).CombinedOutput(); err != nil {
				t.Fatalf("veritysetup verify rejects our tree: %v\n%s", err, out)
			}
			data[len(data)/2] ^= 1
			os.WriteFile(dataPath, data, 0o644)
			if out, err := exec.Command(vs, "verify", dataPath, oursPath, res.RootHashHex()).CombinedOutput(); err == nil {
				t.Fatalf("veritysetup verify accepts data with a flipped byte:\n%s", out)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		size int64
		opts Options
	}{
		"size not a block multiple": {size: 5000},
		"empty":                     {size: 0},
		"salt too long":             {size: 4096, opts: Options{Salt: make([]byte, 257)}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Build(context.Background(), bytes.NewReader(make([]byte, tc.size)), tc.size, &bytes.Buffer{}, tc.opts)
			if !errors.Is(err, ErrInput) {
				t.Errorf("error %v, want ErrInput", err)
			}
		})
	}
}

func TestBuildShortData(t *testing.T) {
	_, err := Build(context.Background(), bytes.NewReader(make([]byte, 4096)), 8192, &bytes.Buffer{}, Options{})
	if err == nil {
		t.Fatal("short data accepted")
	}
}
