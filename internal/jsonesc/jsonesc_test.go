package jsonesc

import "testing"

func TestUnescape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want       string
		slash, unicode bool
	}{
		{`plain`, `plain`, false, false},
		{`a\/b`, `a/b`, true, false},
		{`\u0041\u00e9`, `Aé`, false, true},
		{`\ud83d\ude00`, "😀", false, true},
		{`\"\\\b\f\n\r\t`, "\"\\\b\f\n\r\t", false, false},
		{`\q \u00zz \`, `\q \u00zz \`, false, false}, // malformed: kept
	} {
		got, slash, unicode := Unescape([]byte(tc.in))
		if string(got) != tc.want || slash != tc.slash || unicode != tc.unicode {
			t.Errorf("Unescape(%s) = %q %v %v, want %q %v %v", tc.in, got, slash, unicode, tc.want, tc.slash, tc.unicode)
		}
	}
}
