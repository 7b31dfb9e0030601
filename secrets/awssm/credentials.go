package awssm

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// markedCredentials wraps the SDK's credentials provider so that a failure
// to get credentials can be told apart by type: the SDK itself wraps it in
// plain fmt errors ("get identity: get credentials: …").
type markedCredentials struct {
	aws.CredentialsProvider
}

// credentialsError marks an error from the credentials provider.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "get credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// Retrieve returns the wrapped provider's credentials.
func (m markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &credentialsError{err: err}
	}
	return c, nil
}

// IsCredentialsProvider lets aws.IsCredentialsProvider see through the
// wrapper (the SDK uses it to detect anonymous credentials).
func (m markedCredentials) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(m.CredentialsProvider, target)
}

// ProviderSources passes the credential sources through for the SDK's
// user agent.
func (m markedCredentials) ProviderSources() []aws.CredentialSource {
	if s, ok := m.CredentialsProvider.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}

var (
	_ aws.CredentialsProvider      = markedCredentials{}
	_ aws.CredentialProviderSource = markedCredentials{}
)
