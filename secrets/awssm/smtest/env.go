package smtest

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// LoadOptions returns config.LoadDefaultConfig options that point the SDK
// at s with the test credentials and region, ignore ~/.aws, disable the
// EC2 metadata service and turn off retries (so one Get is one call;
// append config.WithRetryMaxAttempts to test retries). They set no process
// environment, so tests using them can run in parallel. Pass them as
// awssm.Config.LoadOptions.
//
// Two variables of the real environment still matter, as for every SDK
// client: AWS_ENDPOINT_URL_SECRETS_MANAGER wins over the endpoint, and an
// AWS_PROFILE naming a profile fails the load since the shared files are
// ignored. A TestMain can unset both (see UnsetAWSEnv).
func (s *Server) LoadOptions() []func(*config.LoadOptions) error {
	missing := s.missing
	return []func(*config.LoadOptions) error{
		config.WithRegion(Region),
		config.WithBaseEndpoint(s.URL()),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey, Source: "smtest"}, nil
		})),
		config.WithSharedConfigFiles([]string{missing}),
		config.WithSharedCredentialsFiles([]string{missing}),
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
		config.WithRetryMaxAttempts(1),
	}
}

// Env returns the environment under which the SDK's default chain, with
// no LoadOptions, reaches s with the test credentials and nothing from the
// real machine: region, static keys, the service endpoint override, shared
// files that do not exist, no profile, no web identity or container
// credentials, no EC2 metadata service, one attempt per call.
func (s *Server) Env() map[string]string {
	missing := s.missing
	return map[string]string{
		"AWS_REGION":                             Region,
		"AWS_DEFAULT_REGION":                     "",
		"AWS_ACCESS_KEY_ID":                      AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":                  SecretAccessKey,
		"AWS_SESSION_TOKEN":                      "",
		"AWS_PROFILE":                            "",
		"AWS_CONFIG_FILE":                        missing,
		"AWS_SHARED_CREDENTIALS_FILE":            missing,
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_ROLE_ARN":                           "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_ENDPOINT_URL":                       "",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER":       s.URL(),
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS":    "",
		"AWS_CA_BUNDLE":                          "",
		"AWS_MAX_ATTEMPTS":                       "1",
		"AWS_RETRY_MODE":                         "",
	}
}

// Setenv applies Env with t.Setenv, so it is undone when the test ends.
// Like t.Setenv it cannot be used in parallel tests. The AWS SDK reads the
// process environment itself, not a getenv function, so an end-to-end
// test of cmd/tickgate with TICKGATE_SECRETS=aws needs this.
func (s *Server) Setenv(t testing.TB) {
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
}

// UnsetAWSEnv removes every AWS_* variable from the process environment,
// so that nothing from the machine running the tests (a profile, keys, an
// endpoint override) reaches the SDK. Call it from TestMain before m.Run.
func UnsetAWSEnv() {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			_ = os.Unsetenv(k)
		}
	}
}
