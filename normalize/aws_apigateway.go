package normalize

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// AWSAPIGateway parses Amazon API Gateway access log records in JSON, REST
// and HTTP APIs alike. Users choose which $context variables to log and
// under which keys, so the parser recognises a variable by its $context
// name in any of the shapes people configure:
//
//	{"requestId":"…", "identity":{"sourceIp":"…"}}           nested
//	{"requestId":"…", "identity.sourceIp":"…"}               flattened
//	{"$context.requestId":"…", "context.identity.sourceIp":…} prefixed
//
// plus the short keys of AWS's console example ("ip", "caller", "user").
// Values may be JSON strings or bare numbers. Keys it does not know are
// kept as trailwatch.extra "aws.apigateway.<key>" (at most 32, the first
// in sorted order), so nothing a user chose to log is silently lost.
//
// identity.apiKeyId is public and becomes trailwatch.credential.id (type
// apikey); identity.apiKey, the secret, is expected to arrive as the
// collector's fingerprint token and is read with ApplyCredential. user.id
// is authorizer.principalId, else the sub claim of a Cognito or JWT
// authorizer, else identity.userArn, else identity.user.
//
// Elastic has no ingest pipeline for these records; the dataset name
// follows its aws package (aws.apigateway_logs). AWSAPIGateway is
// stateless and safe for concurrent use.
type AWSAPIGateway struct{}

// NewAWSAPIGateway returns the API Gateway access log normalizer.
func NewAWSAPIGateway() *AWSAPIGateway { return &AWSAPIGateway{} }

// NewAWSAPIGatewaySpec builds the aws_apigateway normalizer from a spec; it
// takes no options.
func NewAWSAPIGatewaySpec(s Spec) (Normalizer, error) {
	if s.Format != "" || s.Pattern != "" || len(s.Fields) > 0 || s.TimeLayout != "" {
		return nil, errNoOptions
	}
	return NewAWSAPIGateway(), nil
}

// apigwMaxUnknown bounds the unknown keys kept in trailwatch.extra.
const apigwMaxUnknown = 32

// apigw slots: values collected by canonical $context name, resolved in a
// fixed priority order afterwards so map iteration order never matters.
const (
	agRequestID = iota
	agSourceIP
	agUserAgent
	agAPIKeyID
	agAPIKey
	agPrincipalID
	agClaimsSub
	agJWTSub
	agUserArn
	agUser
	agUserName
	agEmail
	agRequestTime
	agRequestTimeEpoch
	agMethod
	agPath
	agRouteKey
	agStatus
	agProtocol
	agResponseLength
	agResponseLatency
	agAPIID
	agDomainName
	agErrorMessage
	agErrorType
	agAccountID
	agTraceID
	agSlots
)

// apigwKeys maps a canonical $context name (prefix stripped) to its slot
// or, for a string, to the trailwatch.extra key it is kept under.
var apigwKeys = map[string]any{
	"requestId":                          agRequestID,
	"requestID":                          agRequestID,
	"ip":                                 agSourceIP,
	"sourceIp":                           agSourceIP,
	"identity.sourceIp":                  agSourceIP,
	"userAgent":                          agUserAgent,
	"identity.userAgent":                 agUserAgent,
	"apiKeyId":                           agAPIKeyID,
	"identity.apiKeyId":                  agAPIKeyID,
	"apiKey":                             agAPIKey,
	"identity.apiKey":                    agAPIKey,
	"principalId":                        agPrincipalID,
	"authorizer.principalId":             agPrincipalID,
	"authorizer.claims.sub":              agClaimsSub,
	"authorizer.jwt.claims.sub":          agJWTSub,
	"userArn":                            agUserArn,
	"identity.userArn":                   agUserArn,
	"user":                               agUser,
	"identity.user":                      agUser,
	"authorizer.claims.cognito:username": agUserName,
	"authorizer.claims.username":         agUserName,
	"authorizer.jwt.claims.username":     agUserName,
	"authorizer.claims.email":            agEmail,
	"authorizer.jwt.claims.email":        agEmail,
	"requestTime":                        agRequestTime,
	"requestTimeEpoch":                   agRequestTimeEpoch,
	"httpMethod":                         agMethod,
	"path":                               agPath,
	"routeKey":                           agRouteKey,
	"status":                             agStatus,
	"protocol":                           agProtocol,
	"responseLength":                     agResponseLength,
	"responseLatency":                    agResponseLatency,
	"apiId":                              agAPIID,
	"domainName":                         agDomainName,
	"errorMessage":                       agErrorMessage,
	"error.message":                      agErrorMessage,
	"error.responseType":                 agErrorType,
	"accountId":                          agAccountID,
	"xrayTraceId":                        agTraceID,

	"caller":                           "aws.apigateway.caller",
	"identity.caller":                  "aws.apigateway.caller",
	"identity.accountId":               "aws.apigateway.identity.account_id",
	"identity.cognitoIdentityId":       "aws.apigateway.identity.cognito_identity_id",
	"identity.cognitoIdentityPoolId":   "aws.apigateway.identity.cognito_identity_pool_id",
	"identity.clientCert.subjectDN":    "aws.apigateway.identity.client_cert.subject_dn",
	"identity.clientCert.serialNumber": "aws.apigateway.identity.client_cert.serial_number",
	"identity.vpceId":                  "aws.apigateway.identity.vpce_id",
	"extendedRequestId":                "aws.apigateway.extended_request_id",
	"resourcePath":                     "aws.apigateway.resource_path",
	"resourceId":                       "aws.apigateway.resource_id",
	"stage":                            "aws.apigateway.stage",
	"domainPrefix":                     "aws.apigateway.domain_prefix",
	"integrationLatency":               "aws.apigateway.integration.latency_ms",
	"integration.latency":              "aws.apigateway.integration.latency_ms",
	"integrationStatus":                "aws.apigateway.integration.status",
	"integration.status":               "aws.apigateway.integration.status",
	"integration.integrationStatus":    "aws.apigateway.integration.status",
	"integrationErrorMessage":          "aws.apigateway.integration.error",
	"integration.error":                "aws.apigateway.integration.error",
	"authorizer.error":                 "aws.apigateway.authorizer.error",
	"authorizer.status":                "aws.apigateway.authorizer.status",
	"authorizer.latency":               "aws.apigateway.authorizer.latency_ms",
	"authorizer.integrationLatency":    "aws.apigateway.authorizer.latency_ms",
	"wafResponseCode":                  "aws.apigateway.waf.response_code",
	"waf.status":                       "aws.apigateway.waf.response_code",
	"awsEndpointRequestId":             "aws.apigateway.aws_endpoint_request_id",
	"responseType":                     "aws.apigateway.response_type",
}

// apigwKV is a value under a key the parser does not know.
type apigwKV struct{ k, v string }

// apigwState is what one record's walk collects.
type apigwState struct {
	slot    [agSlots]string
	unknown []apigwKV
	ev      *schema.Event
}

// Normalize appends the one event parsed from rec.Data to dst. On error dst
// is returned unchanged and the error names the key.
func (n *AWSAPIGateway) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	data := bytes.TrimSpace(rec.Data)
	if len(data) > MaxJSONRecordBytes {
		return dst, fmt.Errorf("aws_apigateway: record is %d bytes, over the %d-byte limit", len(data), MaxJSONRecordBytes)
	}
	if len(data) == 0 || data[0] != '{' {
		return dst, fmt.Errorf("aws_apigateway: record is not a JSON object")
	}
	k := len(dst)
	dst = append(dst, schema.Event{})
	ev := &dst[k]
	st := apigwState{ev: ev}
	var path [128]byte
	w := cjWalker{data: data, path: path[:0], leaf: st.leaf}
	err := w.walkAll()
	if err == nil {
		err = st.finish()
	}
	if err != nil {
		dst[k] = schema.Event{}
		return dst[:k], fmt.Errorf("aws_apigateway: %w", err)
	}
	ev.Event.ID = rec.ID()
	ev.Trailwatch.Source = "aws_apigateway"
	ev.Trailwatch.Raw = schema.RawRef{Origin: rec.Origin, Offset: rec.Offset, Collector: rec.Collector}
	ev.Trailwatch.Actor = ev.ActorKey()
	return dst, nil
}

// leaf files one value by its canonical $context name: the path with a
// leading "$" and "context." removed.
func (st *apigwState) leaf(path []byte, v cjVal) error {
	if v.kind == 'n' || len(v.raw) == 0 || v.kind == '"' && len(v.raw) == 1 && v.raw[0] == '-' {
		return nil
	}
	canon := bytes.TrimPrefix(path, []byte("$"))
	canon = bytes.TrimPrefix(canon, []byte("context."))
	switch to := apigwKeys[string(canon)].(type) {
	case int:
		st.slot[to] = v.str()
	case string:
		cloudExtra(st.ev, 8, to, v.str())
	default:
		if len(st.unknown) < 4*apigwMaxUnknown { // bound the work, not only the output
			st.unknown = append(st.unknown, apigwKV{string(canon), v.str()})
		}
	}
	return nil
}

// finish resolves the slots into the event.
func (st *apigwState) finish() error {
	ev, s := st.ev, &st.slot
	switch {
	case s[agRequestTime] != "":
		t, ok := parseTimeLocal(s[agRequestTime])
		if !ok {
			if t, ok = cloudTime(s[agRequestTime]); !ok {
				return fmt.Errorf("requestTime: invalid time %q", cloudClip(s[agRequestTime]))
			}
		}
		ev.Timestamp = t
	case s[agRequestTimeEpoch] != "":
		t, ok := cloudEpoch(s[agRequestTimeEpoch])
		if !ok {
			return fmt.Errorf("requestTimeEpoch: invalid epoch %q", cloudClip(s[agRequestTimeEpoch]))
		}
		ev.Timestamp = t
	default:
		return fmt.Errorf("requestTime: missing (log $context.requestTime or $context.requestTimeEpoch)")
	}
	if v := s[agStatus]; v != "" {
		sc, ok := digits(v)
		if !ok || len(v) > 3 {
			return fmt.Errorf("status: invalid status %q", cloudClip(v))
		}
		ev.HTTP.Response.StatusCode = sc
	}
	if v := s[agResponseLength]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("responseLength: invalid byte count %q", cloudClip(v))
		}
		ev.HTTP.Response.Body.Bytes = n
	}
	if v := s[agResponseLatency]; v != "" {
		ms, err := strconv.ParseFloat(v, 64)
		if err != nil || ms < 0 || ms > 1e9 {
			return fmt.Errorf("responseLatency: invalid milliseconds %q", cloudClip(v))
		}
		ev.Event.Duration = int64(ms * 1e6)
	}
	ev.HTTP.Request.ID = s[agRequestID]
	cloudSource(ev, s[agSourceIP])
	ev.UserAgent.Original = s[agUserAgent]
	ev.HTTP.Request.Method = s[agMethod]
	if rk := s[agRouteKey]; rk != "" {
		cloudExtra(ev, 8, "aws.apigateway.route_key", rk)
		if m, _, ok := strings.Cut(rk, " "); ok && ev.HTTP.Request.Method == "" && isWord(m) && m != "ANY" {
			ev.HTTP.Request.Method = m
		}
	}
	if p := s[agPath]; p != "" {
		ev.URL.Original = p
		splitTarget(&ev.URL, p)
		if ev.URL.Path == "" && ev.URL.Domain == "" {
			ev.URL.Path = p
		}
	}
	if v := s[agProtocol]; v != "" {
		ev.HTTP.Version = cloudHTTPVersion(v)
	}
	ev.URL.Domain = s[agDomainName]
	ev.Service.ID = s[agAPIID]
	ev.Error.Message = s[agErrorMessage]
	ev.Error.Type = s[agErrorType]
	ev.Cloud.Provider = "aws"
	ev.Cloud.Account.ID = s[agAccountID]
	ev.Trace.ID = s[agTraceID]
	for _, slot := range [...]int{agPrincipalID, agClaimsSub, agJWTSub, agUserArn, agUser} {
		if s[slot] != "" {
			ev.User.ID = s[slot]
			break
		}
	}
	ev.User.Name = s[agUserName]
	ev.User.Email = s[agEmail]
	cloudRelatedUser(ev, ev.User.Name)
	if s[agAPIKeyID] != "" {
		ev.Trailwatch.Credential.ID = s[agAPIKeyID]
		ev.Trailwatch.Credential.Type = "apikey"
	}
	ApplyCredential(ev, s[agAPIKey], ev.URL.Query)

	if len(st.unknown) > 0 {
		// Sorted by key, stable so an array's elements keep their order
		// when joined; the first apigwMaxUnknown keys are kept.
		slices.SortStableFunc(st.unknown, func(a, b apigwKV) int { return strings.Compare(a.k, b.k) })
		kept := 0
		for i := 0; i < len(st.unknown) && kept < apigwMaxUnknown; kept++ {
			k, v := st.unknown[i].k, st.unknown[i].v
			for i++; i < len(st.unknown) && st.unknown[i].k == k; i++ {
				v += "," + st.unknown[i].v
			}
			cloudExtra(ev, 8, "aws.apigateway."+k, v)
		}
	}

	arr := &[2]string{"web", "access"}
	ev.Event.Kind = "event"
	ev.Event.Category = arr[0:1:1]
	ev.Event.Type = arr[1:2:2]
	ev.Event.Dataset = "aws.apigateway_logs"
	ev.Event.Module = "aws"
	cloudOutcome(ev)
	return nil
}
