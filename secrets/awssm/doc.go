// Package awssm is the AWS Secrets Manager secrets.Provider: vendor keys
// kept in Secrets Manager, read with aws-sdk-go-v2's GetSecretValue. It is
// the only package of tickgate that imports the AWS SDK.
//
// # Layout of the secrets
//
// One secret (TICKGATE_AWS_SECRET_ID, [Config.SecretID]) holds a JSON object
// of secret name → value:
//
//	{"VENDOR_KEY": "…", "TICKGATE_DEMO_KEY": "…"}
//
// A name can instead live in a secret of its own ([Config.PerKey]): "id"
// when the whole secret string is the value, "id#field" when that secret is
// a JSON object and the value is one field. Values are trimmed of
// surrounding white space; an empty value is an error (secrets.ErrEmpty).
//
// # AWS configuration
//
// [New] uses config.LoadDefaultConfig, so region, credentials (environment,
// shared files and profiles, SSO, web identity, ECS/EKS container roles,
// the EC2 instance role) and the endpoint override
// AWS_ENDPOINT_URL_SECRETS_MANAGER work as for every AWS tool. The version
// read is AWSCURRENT unless [Config.VersionStage] says otherwise. The IAM
// permission needed is secretsmanager:GetSecretValue on the secret(s) read
// (plus kms:Decrypt on the key if the secret uses a customer-managed KMS
// key).
//
// # Calls
//
// Caching, periodic refresh and Invalidate live in secrets.Cache, in front
// of the provider. The provider only makes sure that the many names held
// by one JSON secret cost one AWS call per refresh round: a read answers
// for every other name for [Config.ShareFor], while a second request for
// the same name (a refresh, or an Invalidate after a vendor rejected the
// key) always reads again. Concurrent reads of one secret share one call.
// [Provider.Version] reports the VersionId and CreatedDate a value came
// from.
//
// # Errors
//
// Every failure is an [*Error] (New joins several with errors.Join, one per
// line): one line naming the tickgate secret, the
// Secrets Manager secret id and field, and the problem, never the value nor
// SDK text that could contain it. It matches secrets.ErrNotFound (no such
// secret, version stage or JSON field), secrets.ErrEmpty, or one of this
// package's sentinels ([ErrAccessDenied], [ErrNoCredentials],
// [ErrNoRegion], [ErrUnreachable], [ErrFormat], [ErrService]) with
// errors.Is. AWS errors are recognised by type and error code, never by
// message text.
//
// # Example
//
//	p, err := awssm.New(ctx, awssm.Config{SecretID: getenv("TICKGATE_AWS_SECRET_ID"), Logger: log})
//	if err != nil {
//		return err
//	}
//	defer p.Close()
//	cache := secrets.NewCache(p, secrets.CacheConfig{Refresh: refresh, Logger: log})
//	if err := cache.Load(ctx, names...); err != nil {
//		return err // e.g. secret VENDOR_KEY: AWS secret "tickgate/prod": access denied: …
//	}
//
// Tests use package smtest, a local fake Secrets Manager endpoint.
package awssm
