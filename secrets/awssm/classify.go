package awssm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tickgate/tickgate/secrets"
)

// credentialProblem describes the error codes AWS answers with when the
// request's credentials are unknown, expired or badly signed; "" for any
// other code.
func credentialProblem(code string) string {
	switch code {
	case "UnrecognizedClientException", "InvalidClientTokenId":
		return "AWS does not recognise the access key"
	case "InvalidSignatureException", "SignatureDoesNotMatch":
		return "AWS rejected the request signature (wrong secret access key?)"
	case "IncompleteSignature", "IncompleteSignatureException":
		return "AWS rejected the request signature as incomplete"
	case "MissingAuthenticationToken", "MissingAuthenticationTokenException":
		return "the request was not signed"
	case "ExpiredToken", "ExpiredTokenException":
		return "the AWS session token has expired"
	case "InvalidToken":
		return "the AWS session token is invalid"
	case "RequestExpired":
		return "the request expired (is the clock right?)"
	}
	return ""
}

// classify turns an SDK error from GetSecretValue into an *Error for the
// secret id. It relies on error types and AWS error codes only, never on
// message text, and copies no SDK text that could hold response content.
// waited is how long the call ran, for the timeout message; closed reports
// whether the provider was closed during the call.
func classify(err error, id, stage string, waited time.Duration, closed bool) *Error {
	e := &Error{SecretID: id}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.RequestID = re.ServiceRequestID()
	}

	var signErr *v4.SigningError
	var credErr *credentialsError
	var regionErr *aws.MissingRegionError
	var notFound *types.ResourceNotFoundException
	var decrypt *types.DecryptionFailure
	var internal *types.InternalServiceError
	var apiErr smithy.APIError
	var sendErr *smithyhttp.RequestSendError
	var netErr net.Error
	switch {
	case closed:
		e.Problem, e.Kind = "the provider was closed during the read", ErrClosed
	case errors.As(err, &regionErr):
		e.Problem, e.Kind = "no AWS region: set AWS_REGION, or region in the AWS config file", ErrNoRegion
	case errors.As(err, &credErr), errors.As(err, &signErr):
		// The provider chain's own text is left out: it can quote files.
		e.Problem, e.Kind = "no AWS credentials found (looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared files, SSO, web identity, the container and the EC2 instance role)", ErrNoCredentials
	case errors.As(err, &notFound):
		e.Problem, e.Kind = fmt.Sprintf("not found: no such secret, or it has no version labelled %s", stage), secrets.ErrNotFound
	case errors.As(err, &decrypt):
		e.Problem, e.Kind = "access denied: Secrets Manager cannot decrypt it; the role needs kms:Decrypt on the secret's KMS key", ErrAccessDenied
	case errors.As(err, &internal):
		e.Problem, e.Kind = "Secrets Manager failed with an internal error (InternalServiceError); try again", ErrService
	case errors.As(err, &apiErr):
		code := apiErr.ErrorCode()
		switch {
		case code == "AccessDeniedException" || code == "AccessDenied":
			e.Problem = fmt.Sprintf("access denied: the role needs secretsmanager:GetSecretValue on %s", quote(id))
			e.Kind = ErrAccessDenied
		case credentialProblem(code) != "":
			e.Problem, e.Kind = credentialProblem(code)+" ("+oneLine(code, 64)+")", ErrNoCredentials
		case code == "ThrottlingException" || code == "Throttling" || code == "TooManyRequestsException":
			e.Problem, e.Kind = "Secrets Manager is throttling requests ("+oneLine(code, 64)+"); try again", ErrService
		case code == "InvalidRequestException":
			// e.g. the secret is scheduled for deletion.
			e.Problem, e.Kind = "Secrets Manager refused the request (InvalidRequestException): the secret may be scheduled for deletion", ErrService
		default:
			e.Problem, e.Kind = "Secrets Manager answered "+oneLine(code, 64)+faultText(apiErr.ErrorFault()), ErrService
		}
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		e.Problem, e.Kind = fmt.Sprintf("Secrets Manager unreachable: no answer within %s", waited.Round(100*time.Millisecond)), ErrUnreachable
	case errors.Is(err, context.Canceled):
		e.Problem, e.Kind = "the read was cancelled", ErrUnreachable
	case errors.As(err, &sendErr):
		e.Problem, e.Kind = "Secrets Manager unreachable: "+netProblem(err), ErrUnreachable
	case re != nil:
		e.Problem, e.Kind = fmt.Sprintf("the answer from Secrets Manager (HTTP %d) could not be read", re.HTTPStatusCode()), ErrService
	default:
		var de *smithy.DeserializationError
		if errors.As(err, &de) {
			e.Problem, e.Kind = "the response from Secrets Manager could not be read", ErrService
		} else {
			e.Problem, e.Kind = fmt.Sprintf("request to Secrets Manager failed (%T)", errors.Unwrap(err)), ErrService
		}
	}
	return e
}

func faultText(f smithy.ErrorFault) string {
	switch f {
	case smithy.FaultServer:
		return " (server fault); try again"
	case smithy.FaultClient:
		return " (client fault)"
	}
	return ""
}

// netProblem describes a transport failure from typed errors. The
// *url.Error text is not used: it repeats the endpoint URL, which an
// override could fill with user:password.
func netProblem(err error) string {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recErr tls.RecordHeaderError
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("host %s not found (DNS)", quote(dnsErr.Name))
		}
		return fmt.Sprintf("DNS lookup of %s failed", quote(dnsErr.Name))
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return "TLS certificate not trusted (set AWS_CA_BUNDLE for a private CA)"
	case errors.As(err, &recErr):
		return "TLS handshake failed: the endpoint does not speak TLS (http:// vs https://?)"
	case errors.As(err, &opErr):
		addr := ""
		if opErr.Addr != nil {
			addr = " " + opErr.Addr.String()
		}
		cause := "failed"
		if opErr.Err != nil {
			cause = oneLine(opErr.Err.Error(), 200)
		}
		return fmt.Sprintf("%s%s: %s", opErr.Op, addr, cause)
	}
	return "the request could not be sent"
}
