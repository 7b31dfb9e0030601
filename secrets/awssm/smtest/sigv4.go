package smtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// authHeader matches a SigV4 Authorization header.
var authHeader = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$`)

// checkAuth verifies a request's SigV4 signature against the test
// credentials. It returns an AWS error code and message, or "" when the
// request is correctly signed. See
// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
func checkAuth(r *http.Request, body []byte) (code, msg string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "MissingAuthenticationTokenException", "Missing Authentication Token"
	}
	m := authHeader.FindStringSubmatch(h)
	if m == nil {
		return "IncompleteSignatureException", "Authorization header is not AWS4-HMAC-SHA256 Credential=AKID/date/region/secretsmanager/aws4_request, SignedHeaders=..., Signature=..."
	}
	akid, date, region, service, signedHeaders, signature := m[1], m[2], m[3], m[4], m[5], m[6]
	if service != "secretsmanager" {
		return "InvalidSignatureException", "Credential should be scoped to correct service: 'secretsmanager'."
	}
	if region != Region {
		return "InvalidSignatureException", "Credential should be scoped to a valid region."
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if len(amzDate) != len("20060102T150405Z") || !strings.HasPrefix(amzDate, date) {
		return "IncompleteSignatureException", "X-Amz-Date is missing or does not match the credential scope date"
	}
	headers := strings.Split(signedHeaders, ";")
	if !slices.IsSorted(headers) || !slices.Contains(headers, "host") || !slices.Contains(headers, "x-amz-date") {
		return "IncompleteSignatureException", "SignedHeaders must be sorted and include host and x-amz-date"
	}
	if akid != AccessKeyID {
		return "UnrecognizedClientException", "The security token included in the request is invalid."
	}

	canonical := strings.Join([]string{
		r.Method,
		r.URL.EscapedPath(),
		canonicalQuery(r.URL.Query()),
		canonicalHeaders(r, headers),
		signedHeaders,
		payloadHash(r, body),
	}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	scope := date + "/" + region + "/" + service + "/aws4_request"
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])

	key := hmacSHA256([]byte("AWS4"+SecretAccessKey), date)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return "InvalidSignatureException", "The request signature we calculated does not match the signature you provided."
	}
	return "", ""
}

func canonicalHeaders(r *http.Request, names []string) string {
	var b strings.Builder
	for _, n := range names {
		var v string
		switch n {
		case "host":
			v = r.Host
		case "content-length":
			// net/http moves Content-Length out of Header.
			v = strconv.FormatInt(r.ContentLength, 10)
		default:
			vals := r.Header.Values(n)
			for i := range vals {
				vals[i] = strings.Join(strings.Fields(vals[i]), " ")
			}
			v = strings.Join(vals, ",")
		}
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	return b.String()
}

func canonicalQuery(q url.Values) string {
	keys := slices.Sorted(maps.Keys(q))
	var parts []string
	for _, k := range keys {
		vals := slices.Clone(q[k])
		slices.Sort(vals)
		for _, v := range vals {
			parts = append(parts, awsEscape(k)+"="+awsEscape(v))
		}
	}
	return strings.Join(parts, "&")
}

func awsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func payloadHash(r *http.Request, body []byte) string {
	if h := r.Header.Get("X-Amz-Content-Sha256"); h == "UNSIGNED-PAYLOAD" {
		return h
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
