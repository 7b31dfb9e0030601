package oidc

import (
	"strings"

	"github.com/tickgate/tickgate/session"
)

// identify returns the tickgate user name for verified ID token claims, or
// the reason (for the audit line) why the user may not log in; user is
// also set with a reason when it is a valid name, so the log can say who
// was refused.
func (l *Login) identify(claims map[string]any) (user, reason string) {
	verified := l.allowUnverif || emailVerified(claims["email_verified"])
	name, _ := claims[l.usernameClaim].(string)
	switch {
	case name == "":
		return "", "no_username_claim"
	case l.usernameClaim == "email" && !verified:
		return "", "email_unverified"
	case session.CheckUsername(name) != nil:
		return "", "invalid_username"
	}
	if l.allowAny || l.allowUsers[strings.ToLower(name)] {
		return name, ""
	}
	if email, _ := claims["email"].(string); verified && len(l.allowDomains) > 0 {
		if at := strings.IndexByte(email, '@'); at > 0 && strings.Count(email, "@") == 1 && l.allowDomains[strings.ToLower(email[at+1:])] {
			return name, ""
		}
	}
	return name, "not_allowed"
}

// emailVerified reads the email_verified claim: a JSON boolean, or the
// string "true" that some providers (Amazon Cognito) send.
func emailVerified(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}
