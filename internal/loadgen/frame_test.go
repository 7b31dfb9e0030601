package loadgen

import (
	"errors"
	"testing"
)

type ev struct {
	sym string
	t   int64
}

func scan(t *testing.T, arr string) ([]ev, int, error) {
	t.Helper()
	var got []ev
	n, err := ScanEvents([]byte(arr), func(sym []byte, ts int64) { got = append(got, ev{string(sym), ts}) })
	return got, n, err
}

func TestScanEventsMarketsimArray(t *testing.T) {
	arr := `[{"ev":"T","sym":"AAPL","p":191.2,"s":100,"t":1733241600123},` +
		` {"ev":"Q","sym":"MSFT","bp":410.1,"ap":410.3,"t":1733241600125} ,` +
		`{"ev":"status","status":"subscribed","symbols":["AAPL"]}]`
	got, n, err := scan(t, arr)
	if err != nil {
		t.Fatal(err)
	}
	want := []ev{{"AAPL", 1733241600123}, {"MSFT", 1733241600125}}
	if n != 3 || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ScanEvents = %v (%d objects), want %v (3 objects)", got, n, want)
	}
}

func TestScanEventsBracesInStringsAndNesting(t *testing.T) {
	arr := `[{"note":"a } and a { and \" quote","sym":"BRK.B","x":{"t":5},"t":42},{"sym":"X:Y","t":7}]`
	got, n, err := scan(t, arr)
	if err != nil || n != 2 {
		t.Fatalf("ScanEvents: %d objects, %v", n, err)
	}
	// The first "t": of the object is the nested one; what counts is that
	// the object boundaries hold and both events are seen.
	if len(got) != 2 || got[0].sym != "BRK.B" || got[1] != (ev{"X:Y", 7}) {
		t.Errorf("ScanEvents = %v", got)
	}
}

func TestScanEventsEmptyAndMalformed(t *testing.T) {
	if got, n, err := scan(t, `[]`); err != nil || n != 0 || len(got) != 0 {
		t.Errorf("empty array: %v %d %v", got, n, err)
	}
	cases := map[string]error{
		``:                                       ErrNotArray,
		`{"sym":"A","t":1}`:                      ErrNotArray,
		`[1,2]`:                                  ErrNotArray,
		`[{"sym":"A","t":1}`:                     ErrTruncated,
		`[{"sym":"A","t":1`:                      ErrTruncated,
		`[{"sym":"A","t":"soon"}]`:               ErrBadEvent,
		`[{"sym":"A","t":12x}]`:                  ErrBadEvent,
		`[{"sym":"A","t":1]`:                     ErrNotArray,
		`[{"sym":"A","t":99999999999999999999}]`: ErrBadEvent,
	}
	for in, want := range cases {
		if _, _, err := scan(t, in); !errors.Is(err, want) {
			t.Errorf("ScanEvents(%q) error = %v, want %v", in, err, want)
		}
	}
}

func TestFrameTypeAndDataMessages(t *testing.T) {
	frame := []byte(`{"type":"data","feed":"demo","messages":[{"ev":"T","sym":"AAPL","t":5}]}`)
	if got := FrameType(frame); got != "data" {
		t.Errorf("FrameType = %q, want data", got)
	}
	arr, ok := DataMessages(frame)
	if !ok {
		t.Fatal("DataMessages found no array")
	}
	got, _, err := scan(t, string(arr))
	if err != nil || len(got) != 1 || got[0] != (ev{"AAPL", 5}) {
		t.Errorf("events of the data frame = %v, %v", got, err)
	}
	for _, f := range []string{`{"type":"ready","feed":"demo","limits":{"max_symbols":50}}`, `{"type": "pong"}`} {
		if FrameType([]byte(f)) == "" {
			t.Errorf("FrameType(%s) is empty", f)
		}
	}
	if got := FrameType([]byte(`[{"ev":"status"}]`)); got != "" {
		t.Errorf("FrameType of a vendor array = %q, want empty", got)
	}
	if _, ok := DataMessages([]byte(`{"type":"data","messages":"nope"}`)); ok {
		t.Error("DataMessages accepted a non-array")
	}
	if _, ok := DataMessages([]byte(`{"type":"ready"}`)); ok {
		t.Error("DataMessages found messages in a ready frame")
	}
}

func FuzzScanEvents(f *testing.F) {
	f.Add([]byte(`[{"sym":"A","t":1},{"x":"}"}]`))
	f.Add([]byte(`[{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		_, _ = ScanEvents(b, func(sym []byte, ts int64) {
			n++
			if ts < 0 {
				t.Fatalf("negative timestamp %d", ts)
			}
		})
	})
}
