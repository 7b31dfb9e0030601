package proxy

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

const (
	testBase = "http://127.0.0.1:7070"
	testKey  = "S3cr3t-K3y_value"
)

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func scrubStream(t testing.TB, s *scrubber, in string, chunk int) string {
	t.Helper()
	var pool sync.Pool
	pool.New = func() any { b := make([]byte, 0, 64); return &b }
	r := newScrubReader(s, &chunkReader{r: strings.NewReader(in), n: chunk}, nil, &pool)
	defer r.Close()
	out, err := io.ReadAll(iotest.OneByteReader(r))
	if chunk > 7 {
		r2 := newScrubReader(s, &chunkReader{r: strings.NewReader(in), n: chunk}, nil, nil)
		out2, err2 := io.ReadAll(r2)
		if err2 != nil || !bytes.Equal(out, out2) {
			t.Fatalf("large reads differ: %q vs %q (%v)", out2, out, err2)
		}
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(out)
}

func TestScrubTransform(t *testing.T) {
	t.Parallel()
	s := newScrubber("/api/demo", testBase, "apikey", testKey)
	tests := []struct {
		name, in, want string
	}{
		{"plain", `{"symbol":"AAPL","bid":1.5}`, `{"symbol":"AAPL","bid":1.5}`},
		{"raw key", "invalid key " + testKey + "!", "invalid key [redacted]!"},
		{"repeated key", testKey + testKey + "x" + testKey, "[redacted][redacted]x[redacted]"},
		{"partial then key", "S3cr" + testKey, "S3cr[redacted]"},
		{"next_url", `{"next_url":"` + testBase + `/v1/symbols?cursor=abc&apikey=` + testKey + `"}`,
			`{"next_url":"/api/demo/v1/symbols?cursor=abc"}`},
		{"next_url key first", `{"next_url":"` + testBase + `/v1/symbols?apikey=` + testKey + `&cursor=abc"}`,
			`{"next_url":"/api/demo/v1/symbols?cursor=abc"}`},
		{"go json html escapes", `{"next_url":"` + testBase + `/v1/symbols?a=1\u0026apikey=` + testKey + `\u0026b=2"}`,
			`{"next_url":"/api/demo/v1/symbols?a=1\u0026b=2"}`},
		{"escaped slashes", `{"u":"http:\/\/127.0.0.1:7070\/v1\/x?apikey=` + testKey + `"}`,
			`{"u":"\/api\/demo\/v1\/x"}`},
		{"param any case", testBase + "/v1/x?APIKEY=" + testKey + "&ApiKey[]=" + testKey + " ok", "/api/demo/v1/x ok"},
		{"key elsewhere in url", testBase + "/v1/" + testKey + "/x?token=" + testKey, "/api/demo/v1/[redacted]/x?token=[redacted]"},
		{"bare base at end", "see " + testBase, "see /api/demo"},
		{"base then quote", `"` + testBase + `"`, `"/api/demo"`},
		{"fragment kept", testBase + "/v1/x?apikey=" + testKey + "#top\n", "/api/demo/v1/x#top\n"},
		{"html attribute", `<a href='` + testBase + `/v1/x?apikey=` + testKey + `'>`, `<a href='/api/demo/v1/x'>`},
		{"other port", "http://127.0.0.1:70701/x?apikey=" + testKey, "http://127.0.0.1:70701/x?apikey=[redacted]"},
		{"host suffix", "http://127.0.0.1:7070.evil.example/?apikey=" + testKey, "http://127.0.0.1:7070.evil.example/?apikey=[redacted]"},
		{"other host", "https://other.example/?apikey=" + testKey, "https://other.example/?apikey=[redacted]"},
		{"binary", "\x00\x01\xff\xfe", "\x00\x01\xff\xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := s.String(tt.in); got != tt.want {
				t.Errorf("one shot:\n got %q\nwant %q", got, tt.want)
			}
			for _, chunk := range []int{1, 2, 3, 5, 7, 16, 64, 1 << 20} {
				if got := scrubStream(t, s, tt.in, chunk); got != tt.want {
					t.Errorf("chunk %d:\n got %q\nwant %q", chunk, got, tt.want)
				}
			}
		})
	}
}

func TestScrubKeyForms(t *testing.T) {
	t.Parallel()
	key := `a+b/c=d<e>&f"g\h`
	s := newScrubber("/api/x", "https://api.vendor.example/v2", "token", key)
	forms := map[string]string{
		"raw":            key,
		"query escaped":  "a%2Bb%2Fc%3Dd%3Ce%3E%26f%22g%5Ch",
		"lower hex":      "a%2bb%2fc%3dd%3ce%3e%26f%22g%5ch",
		"path escaped":   "a+b%2Fc=d%3Ce%3E&f%22g%5Ch",
		"json html":      `a+b/c=d\u003ce\u003e\u0026f\"g\\h`,
		"json":           `a+b/c=d<e>&f\"g\\h`,
		"json slash esc": `a+b\/c=d<e>&f\"g\\h`,
	}
	for name, f := range forms {
		for _, chunk := range []int{1, 3, 100} {
			got := scrubStream(t, s, "[["+f+"]]", chunk)
			if got != "[[[redacted]]]" {
				t.Errorf("%s chunk %d: got %q", name, chunk, got)
			}
		}
	}
	// A base with a path maps only URLs under that path.
	if got, want := s.String(`"https://api.vendor.example/v2/q?token=x&a=b"`), `"/api/x/q?a=b"`; got != want {
		t.Errorf("base path: got %q, want %q", got, want)
	}
	if got, want := s.String(`"https://api.vendor.example/v3/q?token=x"`), `"https://api.vendor.example/v3/q?token=x"`; got != want {
		t.Errorf("outside base path: got %q, want %q", got, want)
	}
}

func TestScrubLongURLToken(t *testing.T) {
	t.Parallel()
	s := newScrubber("/api/demo", testBase, "apikey", testKey)
	long := testBase + "/v1/" + strings.Repeat("a", maxURLToken) + "?apikey=" + testKey + " tail"
	want := testBase + "/v1/" + strings.Repeat("a", maxURLToken) + "?apikey=[redacted] tail"
	for _, chunk := range []int{1, 1000, 1 << 20} {
		if got := scrubStream(t, s, long, chunk); got != want {
			t.Fatalf("chunk %d: long token not left alone and redacted", chunk)
		}
	}
}

func TestScrubTwoKeys(t *testing.T) {
	t.Parallel()
	s := newScrubber("/api/demo", testBase, "apikey", "old-key-1", "new-key-2")
	if got, want := s.String("old-key-1 new-key-2"), "[redacted] [redacted]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestScrubReaderErrors(t *testing.T) {
	t.Parallel()
	s := newScrubber("/api/demo", testBase, "apikey", testKey)
	boom := errors.New("boom")
	// Data before an error is delivered only if it is safe; a partial key
	// held back is discarded, never passed on.
	r := newScrubReader(s, io.MultiReader(strings.NewReader("hello "+testKey[:5]), iotest.ErrReader(boom)), nil, nil)
	out, err := io.ReadAll(r)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if strings.Contains(string(out), testKey[:5]) {
		t.Errorf("partial key passed on: %q", out)
	}
	// limitReader: exactly n passes, n+1 fails.
	for _, tc := range []struct {
		size int
		want error
	}{{10, nil}, {11, errTooLarge}} {
		lr := &limitReader{r: &chunkReader{r: strings.NewReader(strings.Repeat("x", tc.size)), n: 3}, n: 10}
		_, err := io.ReadAll(lr)
		if !errors.Is(err, tc.want) && err != tc.want {
			t.Errorf("size %d: err = %v, want %v", tc.size, err, tc.want)
		}
	}
	// Closing twice is safe and a read after Close fails.
	r = newScrubReader(s, strings.NewReader("x"), io.NopCloser(nil), nil)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); err == nil {
		t.Error("read after close succeeded")
	}
}

// FuzzScrub checks that streaming in any chunk size gives exactly the
// one-shot result, and that no key survives.
func FuzzScrub(f *testing.F) {
	f.Add([]byte(`{"next_url":"http://127.0.0.1:7070/v1/symbols?cursor=abc\u0026apikey=S3cr3t-K3y_value"}`), uint8(1))
	f.Add([]byte("S3cr3t-K3y_valueS3cr3t-K3y_value"), uint8(3))
	f.Add([]byte(`http:\/\/127.0.0.1:7070\/x?apikey=S3cr3t-K3y_value\u0026`), uint8(2))
	f.Add([]byte("http://127.0.0.1:7070\\"), uint8(5))
	s := newScrubber("/api/demo", testBase, "apikey", testKey)
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		if len(in) > 4096 {
			return
		}
		n := int(chunk%64) + 1
		oneShot := s.String(string(in))
		streamed := scrubStream(t, s, string(in), n)
		if oneShot != streamed {
			t.Fatalf("chunk %d: streamed %q, one shot %q", n, streamed, oneShot)
		}
		if strings.Contains(streamed, testKey) {
			t.Fatalf("key survived: %q", streamed)
		}
	})
}
