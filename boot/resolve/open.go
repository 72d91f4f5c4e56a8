package resolve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// query is one request on its way through the route chain.
type query struct {
	snap   *snapshot
	req    Request
	client *client
	src    source // nil when the node has no source
	slot   string // the A/B slot served ("a" unless Slots says otherwise)
	srcErr error  // why the node's source cannot be used
	facts  *Facts // computed on first use
	miss   error  // the source's own not-found answer, the most precise one
}

func (q *query) name() string { return q.client.name }

func (q *query) getFacts(ctx context.Context) (*Facts, error) {
	if q.facts == nil {
		var img *ImageBoot
		if s, ok := q.src.(*imageSource); ok {
			img = s.img
		}
		f, err := factsFor(q.snap, q.client, q.req, img, q.slot)
		if err == nil {
			err = genericDefaults(ctx, q.client.node, q.src, f)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", nodeLabel(q.client), err)
		}
		q.facts = f
	}
	return q.facts, nil
}

// route is one step of the lookup chain. handled=false passes the request to
// the next route; handled=true ends the chain with (f, err).
type route struct {
	name string
	try  func(ctx context.Context, q *query) (f *File, handled bool, err error)
}

// routes is the lookup chain, most specific first. Nothing handled means
// not found.
var routes = []route{
	{"self-update", trySelfUpdate},
	{"hide-templates", tryHideTemplates},
	{"source-error", trySourceError},
	{"template", tryTemplate},
	{"node-cmdline", tryNodeCmdline},
	{"ipxe-script", tryIPXEScript},
	{"source", trySource},
	{"ipxe-no-kernel", tryIPXENoKernel},
}

// Open resolves a request to a file. Errors wrap os.ErrNotExist when there
// is no such file for the client (the normal answer to the Pi's probes) and
// ErrRefused for refused names and clients; other errors are server-side
// problems (ErrImageSource, ErrSourceUnavailable, template errors).
func (r *Resolver) Open(ctx context.Context, req Request) (*File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name, err := CleanName(req.Name)
	if err != nil {
		r.logOpen(ctx, req, nil, "clean-name", nil, err)
		return nil, err
	}
	s := r.snap.Load()
	c, err := r.identify(ctx, s, req, name)
	if err != nil {
		r.logOpen(ctx, req, nil, "identify", nil, err)
		return nil, err
	}
	q := &query{snap: s, req: req, client: c}
	boot := r.slotBoot(c, q)
	q.src, q.srcErr = r.sourceFor(ctx, boot)
	if q.src != nil {
		defer q.src.done()
	}
	if c.mayStrip {
		// Pi prefix mode 1 (TFTP_PREFIX_STR, e.g. "rack1/"): the first
		// element names nothing in the source, so it is the client's prefix.
		if first, rest := splitFirst(c.name); rest != "" && (q.src == nil || !q.src.exists(ctx, first)) {
			c.name = rest
		}
	}
	for _, rt := range routes {
		f, handled, err := rt.try(ctx, q)
		if !handled {
			continue
		}
		if f != nil {
			f.Node = c.node.Name
		}
		r.logOpen(ctx, req, c, rt.name, f, err)
		return f, err
	}
	err = q.miss
	if err == nil {
		err = notFound(c.name, fmt.Sprintf("is not served to %s (no boot source)", nodeLabel(c)))
	}
	r.logOpen(ctx, req, c, "none", nil, err)
	return nil, err
}

// logOpen logs one resolution: at debug level, or warn for server-side
// errors. Nothing is formatted unless the level is enabled.
func (r *Resolver) logOpen(ctx context.Context, req Request, c *client, route string, f *File, err error) {
	level := slog.LevelDebug
	if err != nil && (errors.Is(err, ErrUnsigned) || !errors.Is(err, os.ErrNotExist) && !errors.Is(err, ErrRefused)) {
		level = slog.LevelWarn
	}
	log := r.logger()
	if !log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("via", req.Via), slog.Any("ip", req.Client), slog.String("file", req.Name), slog.String("route", route)}
	if c != nil {
		attrs = append(attrs, slog.String("node", c.node.Name), slog.String("match", c.how), slog.String("path", c.name))
	}
	msg := "boot file"
	if err != nil {
		msg = "boot file not served"
		attrs = append(attrs, slog.Any("err", err))
	} else {
		attrs = append(attrs, slog.Int64("size", f.Size))
	}
	log.LogAttrs(ctx, level, msg, attrs...)
}

// eepromAllowed says whether a client may get bootloader self-update files:
// the node's allowEEPROMUpdate, else the server's boot.allowEEPROMUpdate.
func (q *query) eepromAllowed() bool {
	if n := q.client.node; n.AllowEEPROMUpdate != nil {
		return *n.AllowEEPROMUpdate
	}
	return q.snap.cfg.Boot.AllowEEPROMUpdate
}

func trySelfUpdate(_ context.Context, q *query) (*File, bool, error) {
	if !isSelfUpdate(q.name()) || q.eepromAllowed() {
		return nil, false, nil
	}
	return nil, true, notFound(q.name(), fmt.Sprintf("is a bootloader self-update file and allowEEPROMUpdate is off for %s", nodeLabel(q.client)))
}

func tryHideTemplates(_ context.Context, q *query) (*File, bool, error) {
	if !strings.HasSuffix(q.name(), ".tmpl") {
		return nil, false, nil
	}
	return nil, true, notFound(q.name(), "is a template; ask for the rendered name")
}

func trySourceError(_ context.Context, q *query) (*File, bool, error) {
	if q.srcErr == nil {
		return nil, false, nil
	}
	return nil, true, fmt.Errorf("%s: %w", nodeLabel(q.client), q.srcErr)
}

func tryTemplate(ctx context.Context, q *query) (*File, bool, error) {
	if q.src == nil {
		return nil, false, nil
	}
	tmpl, err := q.src.open(ctx, q.name()+".tmpl")
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	f, err := q.getFacts(ctx)
	if err != nil {
		tmpl.Close()
		return nil, true, err
	}
	b, err := renderSourceTemplate(tmpl, q.name(), f)
	if err != nil {
		return nil, true, fmt.Errorf("%s in %s: %w", nodeLabel(q.client), q.src, err)
	}
	return generated(q.name(), q.client.node.Name, b, q.snap.loaded), true, nil
}

func tryNodeCmdline(ctx context.Context, q *query) (*File, bool, error) {
	if q.name() != "cmdline.txt" || q.client.node.Boot.Cmdline == "" {
		return nil, false, nil
	}
	f, err := q.getFacts(ctx)
	if err != nil {
		return nil, true, err
	}
	return generated(q.name(), q.client.node.Name, []byte(f.Cmdline+"\n"), q.snap.loaded), true, nil
}

func tryIPXEScript(ctx context.Context, q *query) (*File, bool, error) {
	if q.name() != "boot.ipxe" {
		return nil, false, nil
	}
	f, err := q.getFacts(ctx)
	if err != nil {
		return nil, true, err
	}
	if f.Kernel == "" {
		return nil, false, nil
	}
	return generated(q.name(), q.client.node.Name, ipxeScript(q.client, f), q.snap.loaded), true, nil
}

func trySource(ctx context.Context, q *query) (*File, bool, error) {
	if q.src == nil {
		return nil, false, nil
	}
	f, err := q.src.open(ctx, q.name())
	if errors.Is(err, os.ErrNotExist) {
		q.miss = err
		return nil, false, nil
	}
	return f, true, err
}

func tryIPXENoKernel(ctx context.Context, q *query) (*File, bool, error) {
	if q.name() != "boot.ipxe" {
		return nil, false, nil
	}
	f, err := q.getFacts(ctx)
	if err != nil {
		return nil, true, err
	}
	return generated(q.name(), q.client.node.Name, ipxeScript(q.client, f), q.snap.loaded), true, nil
}
