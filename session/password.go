package session

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters. The zero value is not valid; start
// from DefaultParams.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // iterations
	Threads uint8  // parallelism
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams returns OWASP's argon2id recommendation (19 MiB, 2
// iterations, 1 thread) with a 16-byte salt and a 32-byte hash.
// https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html
func DefaultParams() Params {
	return Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Bounds on accepted parameters: wide enough for any sane configuration,
// narrow enough that a typo cannot make every login allocate gigabytes.
const (
	maxMemory  = 1 << 20 // KiB (1 GiB)
	maxTime    = 100
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

func (p Params) validate() error {
	switch {
	case p.Threads < 1:
		return fmt.Errorf("%w: parallelism must be at least 1", ErrInvalidHash)
	case p.Memory < 8*uint32(p.Threads):
		return fmt.Errorf("%w: memory must be at least 8 KiB per thread", ErrInvalidHash)
	case p.Memory > maxMemory:
		return fmt.Errorf("%w: memory above %d KiB", ErrInvalidHash, maxMemory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: iterations must be 1..%d", ErrInvalidHash, maxTime)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("%w: salt must be %d..%d bytes", ErrInvalidHash, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("%w: hash must be %d..%d bytes", ErrInvalidHash, minKeyLen, maxKeyLen)
	}
	return nil
}

// HashPassword returns the argon2id hash of pw with DefaultParams, as a PHC
// string: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (unpadded standard
// base64), the format of the users setting.
func HashPassword(pw string) (string, error) { return HashPasswordWith(pw, DefaultParams()) }

// HashPasswordWith is HashPassword with explicit parameters (tests use
// cheap ones).
func HashPasswordWith(pw string, p Params) (string, error) {
	if pw == "" {
		return "", ErrEmptyPassword
	}
	if err := p.validate(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	h := phc{p: p, salt: salt, key: argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)}
	return h.String(), nil
}

// phc is a parsed argon2id hash.
type phc struct {
	p         Params
	salt, key []byte
}

func (h phc) String() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.p.Memory, h.p.Time, h.p.Threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// verify reports, in constant time for a given hash, whether pw matches.
func (h phc) verify(pw string) bool {
	got := argon2.IDKey([]byte(pw), h.salt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// parsePHC parses an argon2id PHC string. Its errors describe the problem
// without quoting the input.
func parsePHC(s string) (phc, error) {
	const format = "want $argon2id$v=19$m=<KiB>,t=<iterations>,p=<threads>$<salt>$<hash>"
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return phc{}, fmt.Errorf("%w: not a PHC string (%s)", ErrInvalidHash, format)
	}
	if parts[1] != "argon2id" {
		return phc{}, fmt.Errorf("%w: algorithm is not argon2id (%s)", ErrInvalidHash, format)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return phc{}, fmt.Errorf("%w: version must be v=%d", ErrInvalidHash, argon2.Version)
	}
	var h phc
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return phc{}, fmt.Errorf("%w: parameters must be m=..,t=..,p=.. each once", ErrInvalidHash)
		}
		seen[k] = true
		if k != "m" && k != "t" && k != "p" {
			return phc{}, fmt.Errorf("%w: unknown parameter %s (only m, t and p)", ErrInvalidHash, paramName(k))
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || (len(v) > 1 && v[0] == '0') {
			return phc{}, fmt.Errorf("%w: parameter %s is not a decimal number", ErrInvalidHash, paramName(k))
		}
		switch k {
		case "m":
			h.p.Memory = uint32(n)
		case "t":
			h.p.Time = uint32(n)
		case "p":
			if n > 255 {
				return phc{}, fmt.Errorf("%w: parallelism above 255", ErrInvalidHash)
			}
			h.p.Threads = uint8(n)
		}
	}
	if len(seen) != 3 {
		return phc{}, fmt.Errorf("%w: parameters must be m=..,t=..,p=.. each once", ErrInvalidHash)
	}
	var err error
	if h.salt, err = decodeB64(parts[4]); err != nil {
		return phc{}, fmt.Errorf("%w: salt is not base64", ErrInvalidHash)
	}
	if h.key, err = decodeB64(parts[5]); err != nil {
		return phc{}, fmt.Errorf("%w: hash is not base64", ErrInvalidHash)
	}
	h.p.SaltLen, h.p.KeyLen = uint32(len(h.salt)), uint32(len(h.key))
	if err := h.p.validate(); err != nil {
		return phc{}, err
	}
	return h, nil
}

// decodeB64 accepts the PHC encoding (standard alphabet, no padding) and,
// leniently, the padded form some tools print.
func decodeB64(s string) ([]byte, error) {
	return base64.RawStdEncoding.Strict().DecodeString(strings.TrimRight(s, "="))
}

// paramName quotes a parameter name only when it is short and plain, so an
// error never echoes a chunk of a mangled hash.
func paramName(k string) string {
	if len(k) > 0 && len(k) <= 8 {
		for _, c := range k {
			if c < 'a' || c > 'z' {
				return "(unnamed)"
			}
		}
		return strconv.Quote(k)
	}
	return "(unnamed)"
}
