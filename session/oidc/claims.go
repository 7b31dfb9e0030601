package oidc

import (
	"slices"
	"strings"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/session"
)

// roles returns the user's roles from the RolesClaim of verified claims:
// the valid role names among its values, sorted, without duplicates, at
// most config.MaxRoles; ignored counts the values that were dropped.
func (l *Login) roles(claims map[string]any) (roles []string, ignored int) {
	if l.rolesClaim == "" {
		return nil, 0
	}
	var v any = claims
	for _, part := range strings.Split(l.rolesClaim, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, 0
		}
		v = m[part]
	}
	var vals []string
	switch v := v.(type) {
	case string:
		vals = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				vals = append(vals, s)
			} else {
				ignored++
			}
		}
	case nil:
	default:
		return nil, 1
	}
	for _, s := range vals {
		if config.ValidRole(s) {
			roles = append(roles, s)
		} else {
			ignored++
		}
	}
	slices.Sort(roles)
	roles = slices.Compact(roles)
	if len(roles) > config.MaxRoles {
		ignored += len(roles) - config.MaxRoles
		roles = roles[:config.MaxRoles]
	}
	return roles, ignored
}

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
