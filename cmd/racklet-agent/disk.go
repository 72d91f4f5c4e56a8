package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	abdisk "github.com/racklet/racklet-boot/ab/disk"
	"github.com/racklet/racklet-boot/internal/cli"
)

// diskCmd is disk mode: a Pi booting from its SD card or SSD takes a new
// image into its inactive slot, tries it once, and commits it (package
// ab/disk does each step).
func diskCmd(g *global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "disk inspect|write|tryboot|commit",
		Short: "A/B updates of a disk-booted Pi: write the inactive slot, try it once, commit it",
		Long: "The disk is racklet-image's A/B layout (autoboot.txt on partition 1, boot partitions 2 and 3,\n" +
			"roots 5 and 6). write puts a pulled image into the slot autoboot.txt's [tryboot] names and reads\n" +
			"it back; tryboot reboots into it once (a crash or power cut boots the committed slot again);\n" +
			"commit, after the healthy report, rewrites autoboot.txt's one sector so the new slot is committed.",
		Example: "  racklet-image pull registry.lan/racklet/os:v2 /run/racklet/v2\n" +
			"  racklet-agent disk write /dev/mmcblk0 --image /run/racklet/v2\n" +
			"  racklet-agent disk tryboot\n" +
			"  racklet-agent disk commit /dev/mmcblk0     # after the healthy report",
	}
	cmd.AddCommand(diskInspectCmd(g), diskWriteCmd(g), diskTrybootCmd(), diskCommitCmd(g))
	return cmd
}

// diskState is a disk's A/B state as the commands print it.
type diskState struct {
	Committed string `json:"committed"` // the slot [all] boots: A or B
	Trial     string `json:"trial"`     // the slot [tryboot] boots
	DiskID    string `json:"diskId"`
	Autoboot  string `json:"autoboot"`
}

func stateOf(st abdisk.State) diskState {
	return diskState{Committed: string(rune('A' + st.Committed)), Trial: string(rune('A' + st.Trial())),
		DiskID: fmt.Sprintf("%08x", st.Table.DiskID), Autoboot: string(st.Autoboot)}
}

func diskInspectCmd(g *global) *cobra.Command {
	var out cli.Output
	cmd := &cobra.Command{
		Use:     "inspect DEVICE",
		Short:   "Print the disk's committed and trial slots and its autoboot.txt",
		Example: "  racklet-agent disk inspect /dev/mmcblk0 -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			st, err := abdisk.Inspect(a[0], abdisk.Options{Logger: g.logger()})
			if err != nil {
				return err
			}
			v := stateOf(st)
			return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "disk %s: slot %s committed, slot %s for a trial\n%s", v.DiskID, v.Committed, v.Trial, v.Autoboot)
				return err
			})
		},
	}
	out.Register(cmd)
	return cmd
}

func diskWriteCmd(g *global) *cobra.Command {
	var dir string
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "write DEVICE --image DIR",
		Short: "Write a pulled image into the disk's inactive slot and verify it by reading it back",
		Long: "DIR is an image directory as racklet-image pull leaves it (check its signature first); the\n" +
			"image must carry a boot partition per slot (racklet-image build --disk-id with the disk's id).\n" +
			"Nothing the firmware reads on a normal boot is written: a power cut leaves the committed slot.",
		Example: "  racklet-agent disk write /dev/mmcblk0 --image /run/racklet/v2",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			if dir == "" {
				return cli.Usagef("--image is required")
			}
			img, err := abdisk.ReadImage(dir)
			if err != nil {
				return err
			}
			slot, err := abdisk.WriteSlot(cmd.Context(), a[0], img, abdisk.Options{Logger: g.logger()})
			if err != nil {
				return err
			}
			st, err := abdisk.Inspect(a[0], abdisk.Options{})
			if err != nil {
				return err
			}
			v := stateOf(st)
			return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "slot %c written and verified; racklet-agent disk tryboot boots it once\n", 'A'+slot)
				return err
			})
		},
	}
	out.Register(cmd)
	cmd.Flags().StringVar(&dir, "image", "", "the image directory (manifest.json, boot.vfat, boot-b.vfat, root.squashfs, root.verity)")
	return cmd
}

func diskTrybootCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "tryboot",
		Short:   "Reboot now into the trial slot, once (reboot '0 tryboot')",
		Example: "  racklet-agent disk tryboot",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return abdisk.RebootTryboot()
		},
	}
}

func diskCommitCmd(g *global) *cobra.Command {
	var booted int
	var root string
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "commit DEVICE",
		Short: "Make the slot this boot came from the committed one (after the healthy report)",
		Long: "The booted partition is what the firmware reports in /proc/device-tree/chosen/bootloader/partition\n" +
			"(--booted N to name it). Committing a slot that is already committed changes nothing.",
		Example: "  racklet-agent disk commit /dev/mmcblk0     # after the healthy report",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			if booted == 0 {
				bl, err := abdisk.ReadBootloader(root)
				if err != nil {
					return err
				}
				booted = bl.Partition
			}
			if err := abdisk.Commit(cmd.Context(), a[0], booted, abdisk.Options{Logger: g.logger()}); err != nil {
				return err
			}
			st, err := abdisk.Inspect(a[0], abdisk.Options{})
			if err != nil {
				return err
			}
			v := stateOf(st)
			return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "slot %s committed\n", v.Committed)
				return err
			})
		},
	}
	out.Register(cmd)
	cmd.Flags().IntVar(&booted, "booted", 0, "the partition this boot came from (default: the firmware's device-tree property)")
	cmd.Flags().StringVar(&root, "root", "/", "where /proc is (tests)")
	return cmd
}
