package agent_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/agent"
	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
)

// files writes a kernel and initramfs and measures them.
func files(t *testing.T, kernel string) attest.Measurements {
	t.Helper()
	dir := t.TempDir()
	k, i := filepath.Join(dir, "kernel8.img"), filepath.Join(dir, "initramfs")
	os.WriteFile(k, []byte(kernel), 0o644)
	os.WriteFile(i, []byte("initramfs bytes"), 0o644)
	m, err := attest.MeasureFiles(k, i, "console=serial0 root=/dev/dm-0\n", strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAttestOverHTTP(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	dev, err := hatsim.Open(filepath.Join(dir, "hat.json"), hatsim.Options{Serial: "5b154510"})
	if err != nil {
		t.Fatal(err)
	}
	hat, err := hatlink.NewClient(ctx, hatlink.Direct(dev))
	if err != nil {
		t.Fatal(err)
	}
	enr, _ := verifier.OpenEnrollmentFile(filepath.Join(dir, "enrollments.json"))
	sec, _ := verifier.OpenSecretFile(filepath.Join(dir, "secrets.json"))
	good := files(t, "kernel v1")
	expected := good
	v := &verifier.Verifier{Enrollments: enr, Secrets: sec, TrustOnFirstUse: true,
		Expected: verifier.ExpectedFunc(func(ctx context.Context, node string) (attest.Measurements, error) { return expected, nil })}
	srv := httptest.NewServer(v.Handler())
	defer srv.Close()
	opts := agent.Options{Node: "pi-01", Server: srv.URL, Measurements: good}

	// First use: pending, refused with a reason.
	_, err = agent.Attest(ctx, hat, opts)
	var ref *agent.Refused
	if !errors.As(err, &ref) || ref.Code != "pending" || ref.Status != 403 {
		t.Fatalf("first attestation: err = %v, want 403 pending", err)
	}
	// The operator approves over the API.
	list, err := httpJSON[[]attest.Enrollment](srv.URL+"/api/v1/attest/enrollments", nil)
	if err != nil || len(list) != 1 || list[0].State != attest.Pending {
		t.Fatalf("enrollments = %+v, %v; want one pending", list, err)
	}
	if _, err := httpJSON[attest.Enrollment](srv.URL+"/api/v1/attest/enrollments", attest.EnrollmentAction{Node: "pi-01", Action: "approve", Key: list[0].Key}); err != nil {
		t.Fatal(err)
	}

	res, err := agent.Attest(ctx, hat, opts)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := sec.Secrets(ctx, "pi-01")
	if string(res.Secrets[attest.SecretJoinToken]) != want.JoinToken || string(res.Secrets[attest.SecretDiskKey]) != string(want.DiskKey) {
		t.Errorf("secrets = %q, want the node's", res.Secrets)
	}
	if res.Remeasured {
		t.Error("second run in one boot measured again")
	}

	// The image changes in the config; the node has not rebooted.
	expected = files(t, "kernel v2")
	_, err = agent.Attest(ctx, hat, opts)
	if !errors.As(err, &ref) || ref.Code != "measurement" || !strings.Contains(ref.Reason, "mismatch: kernel)") {
		t.Fatalf("after image change: err = %v, want a measurement refusal naming the kernel", err)
	}

	// Booting the new image after a power cycle fixes it.
	if _, err := hat.PowerCycle(ctx); err != nil {
		t.Fatal(err)
	}
	opts.Measurements = expected
	if _, err := agent.Attest(ctx, hat, opts); err != nil {
		t.Fatalf("after reboot into the new image: %v", err)
	}
	// Measuring something else in the same boot is refused by the agent.
	if _, err := agent.Measure(ctx, hat, good); !errors.Is(err, agent.ErrMeasuredOtherwise) {
		t.Errorf("second measurement in one boot: err = %v, want ErrMeasuredOtherwise", err)
	}
}

func TestBadServer(t *testing.T) {
	ctx := t.Context()
	dev, _ := hatsim.Open(filepath.Join(t.TempDir(), "hat.json"), hatsim.Options{})
	hat, _ := hatlink.NewClient(ctx, hatlink.Direct(dev))
	srv := httptest.NewServer(nil) // 404 everywhere
	defer srv.Close()
	_, err := agent.Attest(ctx, hat, agent.Options{Node: "pi-01", Server: srv.URL, Measurements: files(t, "k")})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("err = %v, want a readable 404", err)
	}
}
