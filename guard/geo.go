package guard

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// DefaultGeoReload is how often a GeoDB checks its file for a new
// version when GeoOptions.Reload is zero.
const DefaultGeoReload = time.Minute

// GeoOptions configure OpenGeoDB. Zero values are safe defaults.
type GeoOptions struct {
	// Reload is how often the file is checked for a change (a new
	// modification time, size or inode, as when a GeoIP updater renames
	// a fresh copy into place); default DefaultGeoReload, negative never.
	Reload time.Duration
	// Logger receives reloads and failed reloads (default: discarded).
	Logger *slog.Logger
}

// GeoDB answers the country of an address from a MaxMind-format database
// (GeoLite2-Country, GeoIP2-City, or any database whose records have
// country.iso_code). The file is read into memory, so a reload swaps
// readers without unmapping memory under a running lookup; a file that
// fails to load keeps the previous version in use.
type GeoDB struct {
	path   string
	reader atomic.Pointer[maxminddb.Reader]
	log    *slog.Logger

	stamp     os.FileInfo // of the loaded file; only the reload goroutine touches it after open
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// OpenGeoDB loads the database at path and, unless opts.Reload is
// negative, watches it for changes until Close.
func OpenGeoDB(path string, opts GeoOptions) (*GeoDB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	g := &GeoDB{path: path, log: opts.Logger, stop: make(chan struct{}), done: make(chan struct{})}
	r, fi, err := loadGeo(path)
	if err != nil {
		return nil, err
	}
	g.reader.Store(r)
	g.stamp = fi
	interval := opts.Reload
	if interval == 0 {
		interval = DefaultGeoReload
	}
	if interval < 0 {
		close(g.done)
		return g, nil
	}
	go g.watch(interval)
	return g, nil
}

func loadGeo(path string) (*maxminddb.Reader, os.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("guard: geo database: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("guard: geo database: %w", err)
	}
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, nil, fmt.Errorf("guard: geo database %s: %w", path, err)
	}
	return r, fi, nil
}

func (g *GeoDB) watch(interval time.Duration) {
	defer close(g.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			g.reloadIfChanged()
		}
	}
}

// reloadIfChanged re-reads the file when it differs from the loaded one.
// A failure (a half-written file, say) is logged and retried on the next
// tick.
func (g *GeoDB) reloadIfChanged() {
	fi, err := os.Stat(g.path)
	if err != nil {
		g.log.Warn("geo database not readable; keeping the loaded one", "path", g.path, "err", err)
		return
	}
	if os.SameFile(fi, g.stamp) && fi.ModTime().Equal(g.stamp.ModTime()) && fi.Size() == g.stamp.Size() {
		return
	}
	r, fi, err := loadGeo(g.path)
	if err != nil {
		g.log.Warn("geo database changed but did not load; keeping the loaded one", "path", g.path, "err", err)
		return
	}
	g.reader.Store(r)
	g.stamp = fi
	g.log.Info("geo database reloaded", "path", g.path, "built", r.Metadata.BuildTime().UTC().Format(time.RFC3339))
}

// Country returns the ISO 3166-1 alpha-2 code of the country addr is in
// (falling back to the registered country), and whether there is one.
func (g *GeoDB) Country(addr netip.Addr) (string, bool) {
	res := g.reader.Load().Lookup(canonical(addr))
	if !res.Found() {
		return "", false
	}
	var code string
	if err := res.DecodePath(&code, "country", "iso_code"); err != nil || code == "" {
		code = ""
		if err := res.DecodePath(&code, "registered_country", "iso_code"); err != nil {
			return "", false
		}
	}
	return code, code != ""
}

// Close stops watching the file. Safe twice.
func (g *GeoDB) Close() {
	g.closeOnce.Do(func() {
		close(g.stop)
		<-g.done
	})
}
