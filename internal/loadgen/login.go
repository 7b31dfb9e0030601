package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Login signs in at baseURL's /auth/login as a browser on origin would
// (JSON body, X-CSRF: 1, Origin) and returns the Cookie header value that
// carries the new session. Errors name the status code, never the
// password or the cookie.
func Login(ctx context.Context, client *http.Client, baseURL, origin, user, password string) (string, error) {
	if err := CheckLoopbackURL(baseURL); err != nil {
		return "", err
	}
	body, err := json.Marshal(map[string]string{"username": user, "password": password})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(baseURL, "/")+"/auth/login", bytes.NewReader(body))
	if err != nil {
		return "", errors.New("loadgen: building the login request failed")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Origin", origin)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("loadgen: login: %s", describeError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("loadgen: login answered %d", resp.StatusCode)
	}
	var parts []string
	for _, c := range resp.Cookies() {
		if c.Value != "" {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if len(parts) == 0 {
		return "", errors.New("loadgen: login answered 200 without a session cookie")
	}
	return strings.Join(parts, "; "), nil
}
