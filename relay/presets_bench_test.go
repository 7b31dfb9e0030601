package relay

import (
	"testing"
)

// BenchmarkSymbolExtraction is the per-frame work of each preset's
// adapter: validate the vendor frame, split it into messages, find each
// message's symbol and recognise control messages. The frames are the
// preset's documented data frames (replays in presets_test.go), heartbeats
// and noise included, one frame per op in turn. One sub-benchmark per
// preset: benchstat compares them by name.
func BenchmarkSymbolExtraction(b *testing.B) {
	for _, r := range replays {
		b.Run("preset="+r.preset, func(b *testing.B) {
			ad, err := newAdapter(replayFeed(r, "http://127.0.0.1:1"))
			if err != nil {
				b.Fatal(err)
			}
			frames := make([][]byte, len(r.data))
			size := 0
			for i, d := range r.data {
				frames[i] = []byte(d)
				size += len(d)
			}
			// Every preset's data must yield at least one symbol, or the
			// benchmark would measure a scanner that finds nothing.
			var msgs []vendorMsg
			found := 0
			for _, f := range frames {
				var ok bool
				msgs, ok = ad.scan.split(msgs[:0], f)
				if !ok {
					b.Fatalf("frame %q is not valid JSON to the scanner", f)
				}
				for _, m := range msgs {
					if m.sym != nil && !m.control {
						found++
					}
				}
			}
			if found == 0 {
				b.Fatalf("no symbol found in the %s frames", r.preset)
			}
			b.SetBytes(int64(size / len(frames)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				msgs, _ = ad.scan.split(msgs[:0], frames[i])
				if i++; i == len(frames) {
					i = 0
				}
			}
			b.ReportMetric(float64(found)/float64(len(frames)), "symbols/frame")
		})
	}
}
