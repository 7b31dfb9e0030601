package oidc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/tickgate/tickgate/secrets"
)

// stateTTL is how long a login may take between Start and Callback.
const stateTTL = 10 * time.Minute

const (
	stateVersion = 1
	randLen      = 32 // bytes of state, nonce and PKCE verifier (256 bits each)
	plainLen     = 1 + 8 + 3*randLen
	gcmNonceLen  = 12
	gcmTagLen    = 16
)

// sealedChars is the exact length of a state cookie's value: unpadded
// base64url of the GCM nonce, ciphertext and tag. Anything else is not ours.
const sealedChars = ((gcmNonceLen+plainLen+gcmTagLen)*8 + 5) / 6

// flow is one login attempt in flight: what Start sends to the provider
// and Callback must find again.
type flow struct {
	state    [randLen]byte // the OAuth state parameter (CSRF, RFC 6749 §10.12)
	nonce    [randLen]byte // the OIDC nonce, echoed in the ID token (replay)
	verifier [randLen]byte // the PKCE code verifier (RFC 7636)
	expires  time.Time     // whole seconds
}

func newFlow(now time.Time) flow {
	var f flow
	// crypto/rand.Read never fails (Go 1.24+).
	_, _ = rand.Read(f.state[:])
	_, _ = rand.Read(f.nonce[:])
	_, _ = rand.Read(f.verifier[:])
	f.expires = time.Unix(now.Add(stateTTL).Unix(), 0)
	return f
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// stateParam, nonceParam and verifierParam are the URL-safe forms sent to
// the provider (43 characters each; RFC 7636 §4.1 wants 43 to 128).
func (f *flow) stateParam() string    { return enc(f.state[:]) }
func (f *flow) nonceParam() string    { return enc(f.nonce[:]) }
func (f *flow) verifierParam() string { return enc(f.verifier[:]) }

var errBadState = errors.New("state cookie is not one we sealed")

// sealer seals flows into the state cookie with AES-256-GCM, so that any
// replica sharing the client secret can open them and nobody else can
// read or forge them.
type sealer struct {
	aead cipher.AEAD
	aad  []byte
}

// newSealer derives the sealing key from the client secret with argon2id:
// anyone can get a sealed cookie from Start, and a fast derivation would
// let them test guesses of a weak client secret offline against it. The
// client id salts it; the client id and redirect URL are bound in as
// associated data, so a cookie from another configuration does not open.
func newSealer(secret secrets.Value, clientID, redirectURL string) *sealer {
	salt := sha256.Sum256([]byte("tickgate oidc state key v1\x00" + clientID))
	// OWASP's argon2id minimum (19 MiB, t=2, p=1): tens of milliseconds
	// once at start-up.
	key := argon2.IDKey([]byte(secret.Reveal()), salt[:], 2, 19*1024, 1, 32)
	block, err := aes.NewCipher(key)
	if err != nil { // a 32-byte key is always valid
		panic("oidc: aes.NewCipher: " + err.Error())
	}
	aead, err := cipher.NewGCM(block)
	if err != nil { // AES always has a 16-byte block
		panic("oidc: cipher.NewGCM: " + err.Error())
	}
	return &sealer{aead: aead, aad: []byte("tickgate oidc state v1\x00" + clientID + "\x00" + redirectURL)}
}

// seal returns the cookie value for f.
func (s *sealer) seal(f flow) string {
	plain := make([]byte, 0, plainLen)
	plain = append(plain, stateVersion)
	plain = binary.BigEndian.AppendUint64(plain, uint64(f.expires.Unix()))
	plain = append(plain, f.state[:]...)
	plain = append(plain, f.nonce[:]...)
	plain = append(plain, f.verifier[:]...)
	out := make([]byte, gcmNonceLen, gcmNonceLen+plainLen+gcmTagLen)
	_, _ = rand.Read(out)
	out = s.aead.Seal(out, out[:gcmNonceLen], plain, s.aad)
	return enc(out)
}

// open returns the flow sealed in a cookie value, or errBadState for
// anything we did not seal (wrong length, alphabet, key, configuration, or
// a single flipped bit). It does not check the expiry.
func (s *sealer) open(v string) (flow, error) {
	if len(v) != sealedChars {
		return flow{}, errBadState
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil || len(raw) != gcmNonceLen+plainLen+gcmTagLen {
		return flow{}, errBadState
	}
	plain, err := s.aead.Open(nil, raw[:gcmNonceLen], raw[gcmNonceLen:], s.aad)
	if err != nil || len(plain) != plainLen || plain[0] != stateVersion {
		return flow{}, errBadState
	}
	var f flow
	sec := binary.BigEndian.Uint64(plain[1:9])
	if sec > 1<<62 {
		return flow{}, errBadState
	}
	f.expires = time.Unix(int64(sec), 0)
	p := plain[9:]
	copy(f.state[:], p[:randLen])
	copy(f.nonce[:], p[randLen:2*randLen])
	copy(f.verifier[:], p[2*randLen:])
	return f, nil
}

// maxUsed bounds the states remembered as used. Entries are kept only for
// callbacks whose code the provider accepted, so filling it takes that
// many real logins within stateTTL; past it, expired and then arbitrary
// entries are dropped and the provider's single-use codes remain the defence.
const maxUsed = 1 << 16

// usedStates remembers the states of callbacks in this process until their
// flow expires, so a callback URL and state cookie replayed to this
// replica are refused. (On another replica the provider refuses the
// already-used code: RFC 6749 §4.1.2.)
type usedStates struct {
	mu sync.Mutex
	m  map[[randLen]byte]time.Time // state → its flow's expiry
}

func newUsedStates() *usedStates { return &usedStates{m: map[[randLen]byte]time.Time{}} }

// claim marks state as used until expires; false if it already was. Claims
// are single use even while a callback is in flight, so two concurrent
// callbacks with one state cannot both proceed.
func (u *usedStates) claim(state [randLen]byte, expires, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if exp, ok := u.m[state]; ok && now.Before(exp) {
		return false
	}
	if len(u.m) >= maxUsed {
		for k, exp := range u.m {
			if !now.Before(exp) {
				delete(u.m, k)
			}
		}
		for k := range u.m { // still full: forget arbitrary ones
			if len(u.m) < maxUsed {
				break
			}
			delete(u.m, k)
		}
	}
	u.m[state] = expires
	return true
}

// release forgets a claim whose callback failed before the provider
// accepted its code: retrying it is harmless, and keeping it would let
// forged callbacks (which never get a code accepted) fill the map.
func (u *usedStates) release(state [randLen]byte) {
	u.mu.Lock()
	delete(u.m, state)
	u.mu.Unlock()
}
