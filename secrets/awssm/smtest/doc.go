// Package smtest is a fake AWS Secrets Manager for tests: an httptest
// server on 127.0.0.1 speaking the AWS JSON 1.1 protocol of
// GetSecretValue, so that the real aws-sdk-go-v2 client can be tested
// without AWS.
//
// # Protocol
//
// The server answers POST / with X-Amz-Target secretsmanager.GetSecretValue
// and Content-Type application/x-amz-json-1.1. Requests must carry a SigV4
// Authorization header; the signature is verified against the test
// credentials ([AccessKeyID] / [SecretAccessKey], region [Region]), so a
// request the SDK did not sign, or signed with other keys, is refused as
// AWS would refuse it. Errors are AWS-shaped: a JSON body with __type and
// message, the X-Amzn-ErrorType header and x-amzn-RequestId.
//
// # Controlling it
//
// [Server.Put] stores a new current version (a rotation), [Server.Delete]
// removes a secret, [Server.Fail] injects AccessDeniedException,
// InternalServiceError and other failures, [Server.Pause] holds requests
// so a test can pile callers onto one call, and [Server.Calls] counts
// requests.
//
// # Pointing the SDK at it
//
// [Server.LoadOptions] gives config.LoadDefaultConfig options that need no
// environment (parallel-safe); [Server.Setenv] sets the AWS_* variables
// instead, for a test of the whole program. Either way nothing is read
// from ~/.aws and the EC2 metadata service is off.
//
//	sm := smtest.New(t)
//	sm.Put("tickgate/prod", `{"VENDOR_KEY":"k1"}`)
//	p, err := awssm.New(ctx, awssm.Config{SecretID: "tickgate/prod", LoadOptions: sm.LoadOptions()})
package smtest
