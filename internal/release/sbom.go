package release

import (
	"crypto/sha256"
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// writeSBOM writes an SPDX 2.3 JSON document describing the release: the
// racklet module, every module and Go toolchain compiled into a binary
// (read from the binary itself, as `go version -m` does), each binary as
// a file with its SHA-256, and which modules each binary statically links.
func writeSBOM(o Options, bins []Binary) (string, error) {
	name := fmt.Sprintf("racklet-%s.spdx.json", o.Version)
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      "racklet-" + o.Version,
		CreationInfo:      &spdx.CreationInfo{Created: o.Created.UTC().Format("2006-01-02T15:04:05Z"), Creators: []common.Creator{{CreatorType: "Tool", Creator: "racklet-release"}}},
		DocumentNamespace: "",
	}
	main := &spdx.Package{
		PackageName: Module, PackageSPDXIdentifier: "Package-racklet", PackageVersion: o.Version,
		PackageDownloadLocation: "NOASSERTION", PackageLicenseConcluded: "NOASSERTION", PackageLicenseDeclared: "NOASSERTION",
		PackageCopyrightText: "NOASSERTION", PrimaryPackagePurpose: "APPLICATION",
		PackageExternalReferences: []*spdx.PackageExternalReference{purl(Module, o.Version)},
	}
	doc.Packages = append(doc.Packages, main)
	doc.Relationships = append(doc.Relationships, rel("DOCUMENT", "Package-racklet", common.TypeRelationshipDescribe))
	pkgs := map[string]string{} // module@version -> SPDX id
	ids := map[string]bool{}
	var digest strings.Builder
	for _, b := range bins {
		path := filepath.Join(o.Dir, b.File)
		info, err := buildinfo.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read build information of %s: %w", b.File, err)
		}
		fileID := common.ElementID("File-" + id(b.File))
		doc.Files = append(doc.Files, &spdx.File{
			FileName: "./" + b.File, FileSPDXIdentifier: fileID, FileTypes: []string{"BINARY"},
			Checksums:        []common.Checksum{{Algorithm: common.SHA256, Value: b.SHA256}},
			LicenseConcluded: "NOASSERTION", FileCopyrightText: "NOASSERTION",
			FileComment: fmt.Sprintf("%s for %s, built by %s", b.Command, b.Platform, info.GoVersion),
		})
		fmt.Fprintf(&digest, "%s %s\n", b.File, b.SHA256)
		doc.Relationships = append(doc.Relationships,
			rel("Package-racklet", string(fileID), common.TypeRelationshipContains),
			rel(string(fileID), "Package-racklet", common.TypeRelationshipGeneratedFrom))
		deps := append([]*debug.Module{{Path: "stdlib", Version: info.GoVersion}}, info.Deps...)
		for _, m := range deps {
			if m.Replace != nil {
				m = m.Replace
			}
			key := m.Path + "@" + m.Version
			pid, ok := pkgs[key]
			if !ok {
				pid = "Package-" + id(key)
				for ids[pid] {
					pid += "-x"
				}
				ids[pid], pkgs[key] = true, pid
				p := &spdx.Package{
					PackageName: m.Path, PackageSPDXIdentifier: common.ElementID(pid), PackageVersion: m.Version,
					PackageDownloadLocation: "NOASSERTION", PackageLicenseConcluded: "NOASSERTION",
					PackageLicenseDeclared: "NOASSERTION", PackageCopyrightText: "NOASSERTION", PrimaryPackagePurpose: "LIBRARY",
					PackageExternalReferences: []*spdx.PackageExternalReference{purl(m.Path, m.Version)},
				}
				if m.Sum != "" {
					p.PackageComment = "go.sum: " + m.Sum
				}
				doc.Packages = append(doc.Packages, p)
			}
			doc.Relationships = append(doc.Relationships, rel(string(fileID), pid, common.TypeRelationshipStaticLink))
		}
	}
	sort.Slice(doc.Packages[1:], func(i, j int) bool {
		a, b := doc.Packages[1+i], doc.Packages[1+j]
		return a.PackageName+"@"+a.PackageVersion < b.PackageName+"@"+b.PackageVersion
	})
	// A namespace unique to these binaries.
	doc.DocumentNamespace = fmt.Sprintf("https://racklet.io/spdx/racklet-%s-%x", o.Version, sha256.Sum256([]byte(digest.String())))
	f, err := os.Create(filepath.Join(o.Dir, name))
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := spdxjson.Write(doc, f, spdxjson.Indent("  ")); err != nil {
		return "", fmt.Errorf("write SBOM: %w", err)
	}
	return name, f.Close()
}

// purl is a package URL for a Go module (the Go toolchain as pkg:golang/stdlib).
func purl(path, version string) *spdx.PackageExternalReference {
	return &spdx.PackageExternalReference{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: "pkg:golang/" + path + "@" + version}
}

func rel(a, b, typ string) *spdx.Relationship {
	return &spdx.Relationship{RefA: common.MakeDocElementID("", a), RefB: common.MakeDocElementID("", b), Relationship: typ}
}

// id makes an SPDX identifier part ([A-Za-z0-9.-]) from s.
func id(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '-'
	}, s)
}
