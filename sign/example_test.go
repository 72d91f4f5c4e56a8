package sign_test

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/racklet/racklet-boot/sign"
)

func ExampleSignatureTag() {
	d, _ := v1.NewHash("sha256:3b5c2a7f0e4d9a6b1c8e7f2d5a4b3c6d9e8f7a1b2c3d4e5f6a7b8c9d0e1f2a3b")
	fmt.Println(sign.SignatureTag(d))
	// Output: sha256-3b5c2a7f0e4d9a6b1c8e7f2d5a4b3c6d9e8f7a1b2c3d4e5f6a7b8c9d0e1f2a3b.sig
}

func ExampleParsePayload() {
	p, err := sign.ParsePayload([]byte(`{"critical":{"identity":{"docker-reference":"registry.lan:5000/os/pi"},` +
		`"image":{"docker-manifest-digest":"sha256:3b5c2a7f0e4d9a6b1c8e7f2d5a4b3c6d9e8f7a1b2c3d4e5f6a7b8c9d0e1f2a3b"},` +
		`"type":"cosign container image signature"},"optional":null}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Identity)
	fmt.Println(p.Digest)
	// Output:
	// registry.lan:5000/os/pi
	// sha256:3b5c2a7f0e4d9a6b1c8e7f2d5a4b3c6d9e8f7a1b2c3d4e5f6a7b8c9d0e1f2a3b
}
