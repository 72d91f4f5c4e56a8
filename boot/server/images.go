package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/imagestore"
)

// ImageSource hands the verified images of b to a resolver: a refused
// image (untrusted, tampered, covered by no trust rule) wraps
// resolve.ErrRefused, so TFTP and HTTP refuse its files with the reason.
func ImageSource(b *imagestore.Booter) resolve.Images { return imageSource{b} }

type imageSource struct{ b *imagestore.Booter }

func (s imageSource) Boot(ctx context.Context, ref string) (*resolve.ImageBoot, error) {
	img, err := s.b.Boot(ctx, ref)
	switch {
	case imagestore.IsRefusal(err):
		return nil, fmt.Errorf("%w: %w", resolve.ErrRefused, err)
	case err != nil:
		return nil, err
	}
	return &resolve.ImageBoot{
		FAT:      img.Boot,
		Root:     img.Root,
		Verity:   img.Verity,
		BootSig:  img.BootSig,
		Digest:   img.Digest.String(),
		RootHash: img.Manifest.Verity.RootHash,
		Cmdline:  img.Manifest.Cmdline,
	}, nil
}

// prefetchRetry is how soon a prefetch whose images could not all be
// resolved for A/B runs again (a registry down at start).
const prefetchRetry = time.Minute

// prefetchLoop verifies and fetches every image the config assigns, at
// start and after each reload, so a node's first TFTP read does not wait
// for a pull; then it removes blobs no assigned image uses. A failure
// (unreachable registry, a refused image) skips the clean-up: an image only
// unreachable for now keeps its blobs.
func (s *Server) prefetchLoop(ctx context.Context) {
	log := s.component("images")
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.prefetch:
		}
		keep, err := s.booter.Prefetch(ctx)
		if serr := s.ab.sync(ctx); serr != nil && ctx.Err() == nil {
			log.Warn("a/b: not every node's image could be resolved; those nodes keep what they boot, tried again in a minute", "err", serr)
			time.AfterFunc(prefetchRetry, func() {
				select {
				case s.prefetch <- struct{}{}:
				default:
				}
			})
		}
		// The images A/B holds (committed and trial, of nodes in and out
		// of the config) stay cached: a rollback never waits for a registry.
		for _, ref := range s.ab.images() {
			img, aerr := s.booter.Boot(ctx, ref)
			if aerr != nil {
				err = errors.Join(err, aerr)
				continue
			}
			keep = append(keep, img.Digest)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.metrics.prefetched(0, 0, err)
				log.Warn("not every assigned image is ready; nodes whose image failed get no boot files", "err", err)
			}
			continue
		}
		log.Info("assigned images verified and cached", "images", len(keep))
		n, err := s.images.GC(ctx, keep)
		if err != nil {
			log.Warn("image cache clean-up failed", "err", err)
		} else if n > 0 {
			log.Info("image cache cleaned", "removed", n)
		}
		s.metrics.prefetched(len(keep), n, nil)
	}
}
