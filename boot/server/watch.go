package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/racklet/racklet-boot/rack"

	"github.com/fsnotify/fsnotify"
)

// WatchDebounce is how long Watch waits after the last change to the file
// before reloading it: editors write a file in several steps.
const WatchDebounce = 200 * time.Millisecond

// Watch reloads the config at path whenever the file changes and whenever
// the process gets SIGHUP, until ctx ends (then it returns nil). Each valid
// config is passed to apply; a broken one is logged as one ERROR line
// ("config rejected, keeping the previous one") and apply is not called, so
// the previous config keeps serving. Watch does not load the file when it
// starts: the caller has done that with rack.Load.
//
// It watches the file's directory, not the file: editors and "mv" replace
// the file with a new one, which a watch on the old file would miss.
func Watch(ctx context.Context, path string, log *slog.Logger, apply func(*rack.Config)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch rack config %s: %w", path, err)
	}
	defer w.Close()
	dir, base := filepath.Dir(path), filepath.Base(path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch rack config directory %s: %w", dir, err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log.Info("watching rack config", "file", path)

	reload := func(reason string) {
		cfg, err := rack.Load(path)
		if err != nil {
			log.Error("config rejected, keeping the previous one", "file", path, "reason", reason, "err", err)
			return
		}
		log.Info("config loaded", "file", path, "reason", reason, "nodes", len(cfg.Nodes))
		apply(cfg)
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			reload("SIGHUP")
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watch rack config: the file watcher stopped")
			}
			if filepath.Base(ev.Name) != base || ev.Op == fsnotify.Chmod {
				continue
			}
			debounce.Reset(WatchDebounce)
		case <-debounce.C:
			reload("file changed")
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watch rack config: the file watcher stopped")
			}
			log.Warn("watching rack config", "file", path, "err", err)
		}
	}
}
