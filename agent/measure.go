package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
)

// attestTimeout bounds measuring and attesting, HAT link included.
const attestTimeout = 2 * time.Minute

// attest checks that the kernel runs the image's command line (always),
// then measures the boot into the HAT and has racklet-boot check it; the
// secrets it releases are returned (nil without a HAT).
//
// What is measured, and why (see DESIGN.md, "Trust chain and the HAT"):
//   - the initramfs as the firmware or loader handed it to the kernel
//     (/sys/firmware/initrd, kept by retain_initrd): the bytes that run, not
//     a copy fetched again, so a node that booted another initramfs than the
//     one racklet-boot expects is refused;
//   - the kernel as racklet-boot serves it under racklet.kernel: Linux keeps
//     no readable copy of the image it was loaded from, so this only shows
//     the served kernel is the expected one, not that this one booted. A
//     tampered kernel controls everything after it, this agent included;
//     only a measuring firmware (Pi secure boot) closes that;
//   - the image's command line (cmdline.txt as served), after checking that
//     the kernel's command line ends with exactly those words and that no
//     racklet.* word sits in what a loader put before them;
//   - the root hash from the command line, which dm-verity enforces below.
func (b *booter) attest(ctx context.Context) (map[string][]byte, error) {
	var served strings.Builder
	if _, err := b.served(ctx, "cmdline.txt", &served); err != nil {
		return nil, fmt.Errorf("read the image's command line: %w", err)
	}
	img, err := imageCmdline(b.cmdline, served.String())
	if err != nil {
		return nil, err
	}
	if b.params.HAT == "none" {
		b.say("no HAT (racklet.hat=none): not attested, no secrets released")
		b.rep.send(ctx, bootparams.StageAttested, true, "skipped: racklet.hat=none, no secrets released")
		return nil, nil
	}
	if b.o.ServerKey == nil {
		return nil, fmt.Errorf("%w (the image has no %s)", ErrNoServerKey, b.o.ServerKeyFile)
	}
	ctx, cancel := context.WithTimeout(ctx, attestTimeout)
	defer cancel()
	m, err := b.measure(ctx, img)
	if err != nil {
		return nil, err
	}
	rw, err := b.m.OpenHAT(ctx, b.params.HAT)
	if err != nil {
		return nil, err
	}
	link := hatlink.NewLink(rw)
	c, err := hatlink.NewClient(ctx, link)
	if err != nil {
		link.Close()
		return nil, fmt.Errorf("talk to the HAT: %w", err)
	}
	// The HAT counts this boot's attempt (a trial) before anything is
	// proven: the count is the witness of the attempts a trial used.
	st, err := SlotAttempt(ctx, c, b.slot)
	if err == nil || errors.Is(err, ErrAttemptRefused) {
		b.rep.hat = &st
	}
	if err != nil {
		link.Close()
		return nil, err
	}
	if b.slot != nil && b.slot.Trial {
		b.say("trial of %s in slot %s: attempt %d of %d (the HAT counted %d of %d)", shortHash(strings.TrimPrefix(b.slot.Image, "sha256:")),
			b.slot.Slot, b.slot.Attempt, b.slot.Allowed, st.Attempts[slotIndex(b.slot.Slot)], st.Limit)
	}
	res, err := Attest(ctx, c, Options{Node: b.node, Server: b.server, Measurements: m, HTTPClient: b.o.HTTPClient, Logger: b.log, ServerKey: b.o.ServerKey})
	if err != nil {
		link.Close()
		var ref *Refused
		if errors.As(err, &ref) {
			return nil, fmt.Errorf("%w (nothing released)", err)
		}
		return nil, err
	}
	b.hat, b.hatLink = c, link // EndBoot at the hand-over
	b.say("attestation accepted: boot %d, %d secrets released", res.BootCounter, len(res.Secrets))
	b.rep.send(ctx, bootparams.StageAttested, true, fmt.Sprintf("boot %d, %d secrets released", res.BootCounter, len(res.Secrets)))
	if res.Secrets == nil {
		res.Secrets = map[string][]byte{}
	}
	return res.Secrets, nil
}

// endBoot ends the measured boot on the HAT right before the hand-over to
// the real init: the HAT extends a hand-over separator into the boot
// registers and refuses further extends of them until it power-cycles the
// node, so the booted OS can neither quote as this pristine boot nor open
// secrets sealed to it. Without a HAT (racklet.hat=none) there is nothing
// to end.
func (b *booter) endBoot(ctx context.Context) error {
	if b.hat == nil {
		return nil
	}
	defer b.hatLink.Close()
	ctx, cancel := context.WithTimeout(ctx, attestTimeout)
	defer cancel()
	if _, err := b.hat.EndBoot(ctx); err != nil {
		return fmt.Errorf("end the measured boot on the HAT: %w", err)
	}
	return nil
}

// measure computes the four measurements (see attest); cmdline is the
// image's, checked against the kernel's.
func (b *booter) measure(ctx context.Context, cmdline string) (attest.Measurements, error) {
	m := attest.Measurements{RootHash: b.params.RootHash, Cmdline: cmdline}
	if b.params.Kernel == "" {
		return m, errors.New("racklet.kernel= is not on the command line: the agent cannot name the kernel it measures")
	}
	name, err := bootFileName(b.params.Kernel)
	if err != nil {
		return m, err
	}
	if m.Kernel, err = b.served(ctx, name, nil); err != nil {
		return m, fmt.Errorf("measure the kernel: %w", err)
	}
	if m.Initramfs, err = b.m.InitramfsDigest(); err != nil {
		return m, fmt.Errorf("measure the initramfs: %w", err)
	}
	return m, nil
}

// imageCmdline checks that the kernel's command line is the image's
// (cmdline.txt) with at most loader words before it (the Pi firmware's
// settings, iPXE's initrd=, GRUB's BOOT_IMAGE=), none of them racklet.*,
// and returns the image's, as it is measured.
func imageCmdline(kernel, image string) (string, error) {
	img := attest.NormalizeCmdline(image)
	kw, iw := strings.Fields(kernel), strings.Fields(img)
	if len(iw) == 0 || len(kw) < len(iw) || !slices.Equal(kw[len(kw)-len(iw):], iw) {
		return "", fmt.Errorf("the kernel's command line %q does not end with the image's cmdline.txt %q: the node was not booted with its image's command line", strings.Join(kw, " "), img)
	}
	for _, w := range kw[:len(kw)-len(iw)] {
		if strings.HasPrefix(w, bootparams.Prefix) {
			return "", fmt.Errorf("%q precedes the image's command line: racklet.* words come only from the signed image", w)
		}
	}
	return img, nil
}

// served fetches one of the node's boot files and returns its sha256; copy,
// when set, also receives the bytes (at most 64 KiB: for cmdline.txt).
func (b *booter) served(ctx context.Context, name string, copyTo io.Writer) (string, error) {
	url := b.fileURL(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := b.o.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch %s: racklet-boot answered %s", url, resp.Status)
	}
	h := sha256.New()
	w := io.Writer(h)
	var body io.Reader = resp.Body
	if copyTo != nil {
		w = io.MultiWriter(h, copyTo)
		body = io.LimitReader(resp.Body, 64<<10)
	}
	if _, err := io.Copy(w, body); err != nil {
		return "", fmt.Errorf("fetch %s: %w", url, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
