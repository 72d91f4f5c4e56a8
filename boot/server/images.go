package server

import (
	"context"
	"fmt"

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
		Digest:   img.Digest.String(),
		RootHash: img.Manifest.Verity.RootHash,
		Cmdline:  img.Manifest.Cmdline,
	}, nil
}

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
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("not every assigned image is ready; nodes whose image failed get no boot files", "err", err)
			}
			continue
		}
		log.Info("assigned images verified and cached", "images", len(keep))
		if n, err := s.images.GC(ctx, keep); err != nil {
			log.Warn("image cache clean-up failed", "err", err)
		} else if n > 0 {
			log.Info("image cache cleaned", "removed", n)
		}
	}
}
