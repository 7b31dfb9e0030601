package session

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tickgate/tickgate/config"
)

// maxUsernameLen bounds user names (and so log lines and limiter keys).
const maxUsernameLen = 64

// Users are the local accounts: user name → argon2id hash and roles. It is
// safe for concurrent use.
type Users struct {
	mu     sync.RWMutex
	byName map[string]phc
	roles  map[string][]string // user name → sorted roles; absent: none
	// dummy is verified for unknown users so that they cost the same time
	// as a wrong password. It takes the parameters of the first user added.
	dummy phc
}

// NewUsers returns Users holding the given name → PHC hash pairs (nil or
// empty gives no users; Add can add some later, e.g. the demo user).
func NewUsers(m map[string]string) (*Users, error) {
	u := newUsers()
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic errors and dummy parameters
	var errs []error
	for _, name := range names {
		if err := u.Add(name, m[name]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return u, nil
}

func newUsers() *Users {
	p := DefaultParams()
	d := phc{p: p, salt: make([]byte, p.SaltLen), key: make([]byte, p.KeyLen)}
	_, _ = rand.Read(d.salt) // crypto/rand.Read never fails (Go 1.24+)
	_, _ = rand.Read(d.key)
	return &Users{byName: map[string]phc{}, roles: map[string][]string{}, dummy: d}
}

// Add adds a user with an argon2id PHC hash (from HashPassword). It fails
// for an invalid name, a malformed hash, or a name already present.
func (u *Users) Add(name, hash string) error { return u.AddWithRoles(name, hash, nil) }

// AddWithRoles is Add for a user holding roles (see [config.ValidRole]);
// the session of each login carries them. Duplicates are dropped. It fails
// for an invalid role as well.
func (u *Users) AddWithRoles(name, hash string, roles []string) error {
	if err := CheckUsername(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidUsers, err)
	}
	h, err := parsePHC(hash)
	if err != nil {
		return fmt.Errorf("%w: user %q: %w", ErrInvalidUsers, name, err)
	}
	roles, err = normalizeRoles(roles)
	if err != nil {
		return fmt.Errorf("%w: user %q: %w", ErrInvalidUsers, name, err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, dup := u.byName[name]; dup {
		return fmt.Errorf("%w: user %q is listed twice", ErrInvalidUsers, name)
	}
	if len(u.byName) == 0 {
		u.dummy.p = h.p
		u.dummy.salt = make([]byte, h.p.SaltLen)
		u.dummy.key = make([]byte, h.p.KeyLen)
		_, _ = rand.Read(u.dummy.salt)
		_, _ = rand.Read(u.dummy.key)
	}
	u.byName[name] = h
	if len(roles) > 0 {
		u.roles[name] = roles
	}
	return nil
}

// Roles returns name's roles, sorted (nil for none or an unknown user).
// The caller may keep but must not modify the slice.
func (u *Users) Roles(name string) []string {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.roles[name]
}

// normalizeRoles checks every role and returns them sorted without
// duplicates (nil for none).
func normalizeRoles(roles []string) ([]string, error) {
	if len(roles) == 0 {
		return nil, nil
	}
	if len(roles) > config.MaxRoles {
		return nil, fmt.Errorf("%w: more than %d roles", ErrInvalidRole, config.MaxRoles)
	}
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if !config.ValidRole(r) {
			return nil, fmt.Errorf("%w: %s (want 1 to 32 of [a-z0-9_-], starting with a letter or digit)", ErrInvalidRole, quoteRole(r))
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// quoteRole quotes a role for an error when it is short and printable;
// a mangled setting may put a piece of a hash there.
func quoteRole(r string) string {
	if len(r) > 40 || strings.ContainsAny(r, "$=") {
		return "(unreadable role)"
	}
	return strconv.Quote(r)
}

// Len returns the number of users.
func (u *Users) Len() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.byName)
}

// Names returns the user names, sorted.
func (u *Users) Names() []string {
	u.mu.RLock()
	defer u.mu.RUnlock()
	names := make([]string, 0, len(u.byName))
	for n := range u.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Verify reports whether pw is name's password. An unknown name costs one
// argon2id run against a dummy hash, like a wrong password, so the answer
// time does not tell whether a user exists; the hash comparison is constant
// time.
func (u *Users) Verify(name, pw string) bool {
	u.mu.RLock()
	h, ok := u.byName[name]
	dummy := u.dummy
	u.mu.RUnlock()
	if !ok {
		_ = dummy.verify(pw)
		return false
	}
	return h.verify(pw)
}

// has reports whether name is a user.
func (u *Users) has(name string) bool {
	u.mu.RLock()
	defer u.mu.RUnlock()
	_, ok := u.byName[name]
	return ok
}

// CheckUsername returns ErrInvalidUsername unless name is 1 to 64
// characters of [A-Za-z0-9._@-].
func CheckUsername(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidUsername)
	}
	if len(name) > maxUsernameLen {
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidUsername, maxUsernameLen)
	}
	for i := 0; i < len(name); i++ {
		if !usernameByte(name[i]) {
			// The character, not the name: a mangled setting may put a
			// piece of a hash where a name should be.
			return fmt.Errorf("%w: character %q at position %d is outside [A-Za-z0-9._@-]",
				ErrInvalidUsername, name[i:i+1], i+1)
		}
	}
	return nil
}

func usernameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '@' || c == '-'
}

// ParseUsers parses the TICKGATE_USERS setting: name:hash entries separated
// by commas, each optionally followed by ":role1|role2" (name:hash:roles).
// A PHC hash itself contains commas (m=..,t=..,p=..), so a piece after a
// comma that starts like a parameter ("t=", "p=": a user name never holds
// '=') continues the previous entry; anything else starts a new entry.
// Blank entries are skipped. Errors name the entry and the user but never
// quote a hash.
func ParseUsers(s string) (*Users, error) {
	var entries []string
	for _, piece := range strings.Split(s, ",") {
		piece = strings.TrimSpace(piece)
		switch {
		case piece == "":
		case len(entries) > 0 && isParamPiece(piece):
			entries[len(entries)-1] += "," + piece
		default:
			entries = append(entries, piece)
		}
	}
	u := newUsers()
	var errs []error
	for i, e := range entries {
		if err := u.addEntry(e); err != nil {
			errs = append(errs, fmt.Errorf("pair %d: %w", i+1, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return u, nil
}

// ParseUsersFile parses a TICKGATE_USERS_FILE: one name:hash or
// name:hash:role1|role2 entry per line; blank lines and text from '#' on are ignored (neither names nor PHC
// hashes contain '#').
func ParseUsersFile(r io.Reader) (*Users, error) {
	u := newUsers()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	var errs []error
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if err := u.addEntry(text); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", line, err))
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%w: line %d: %w", ErrInvalidUsers, line+1, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return u, nil
}

// isParamPiece reports whether s starts like a PHC parameter: [a-z]+=.
func isParamPiece(s string) bool {
	i := 0
	for i < len(s) && s[i] >= 'a' && s[i] <= 'z' {
		i++
	}
	return i > 0 && i < len(s) && s[i] == '='
}

// addEntry adds one "name:hash" or "name:hash:role1|role2" entry. Neither
// names nor PHC hashes contain ':', so a third field is the roles.
func (u *Users) addEntry(e string) error {
	name, hash, ok := strings.Cut(e, ":")
	if !ok {
		return fmt.Errorf("%w: missing ':' between user name and hash (want name:$argon2id$...)", ErrInvalidUsers)
	}
	hash, roleList, hasRoles := strings.Cut(hash, ":")
	name, hash = strings.TrimSpace(name), strings.TrimSpace(hash)
	if hash == "" {
		return fmt.Errorf("%w: user %s has no hash", ErrInvalidUsers, quoteName(name))
	}
	var roles []string
	if hasRoles {
		if strings.Contains(roleList, ":") {
			return fmt.Errorf("%w: user %s: too many ':' (want name:hash or name:hash:role1|role2)", ErrInvalidUsers, quoteName(name))
		}
		for _, r := range strings.Split(roleList, "|") {
			roles = append(roles, strings.TrimSpace(r))
		}
	}
	return u.AddWithRoles(name, hash, roles)
}

// quoteName quotes a user name for an error, or says it is invalid when it
// is not one (it may be a piece of a mangled hash).
func quoteName(name string) string {
	if CheckUsername(name) != nil {
		return "(invalid name)"
	}
	return strconv.Quote(name)
}
