package sigma

import "strings"

// field is the trailwatch expr path a Sigma field maps to.
type field struct {
	path    string
	numeric bool // an integer field: compared as a number
}

// logsource is a Sigma log source trailwatch understands.
type logsource struct {
	name string
	// guard restricts the rule to events of this source, as the Sigma
	// logsource does: without it a webserver rule would also be evaluated
	// on CloudTrail events.
	guard  string
	fields map[string]field
}

var webserver = &logsource{
	name:  "webserver",
	guard: `"web" in event.category`,
	fields: map[string]field{
		"c-uri":           {path: "url.original"},
		"cs-uri":          {path: "url.original"},
		"cs-uri-stem":     {path: "url.path"},
		"cs-uri-query":    {path: "url.query"},
		"cs-method":       {path: "http.request.method"},
		"sc-status":       {path: "http.response.status_code", numeric: true},
		"c-ip":            {path: "source.ip"},
		"cs-user-agent":   {path: "user_agent.original"},
		"c-useragent":     {path: "user_agent.original"},
		"cs-referer":      {path: "http.request.referrer"},
		"cs-referrer":     {path: "http.request.referrer"},
		"cs-host":         {path: "url.domain"},
		"cs-username":     {path: "user.name"},
		"cs-version":      {path: "http.version"},
		"cs-bytes":        {path: "http.request.bytes", numeric: true},
		"sc-bytes":        {path: "http.response.body.bytes", numeric: true},
		"s-ip":            {path: "destination.ip"},
		"s-port":          {path: "destination.port", numeric: true},
		"cs-cookie":       {},
		"sc-substatus":    {},
		"sc-win32-status": {},
	},
}

// extra names a CloudTrail attribute the normalizer keeps in
// trailwatch.extra.
func extra(key string) field {
	return field{path: `trailwatch.extra["aws.cloudtrail.` + key + `"]`}
}

var cloudtrail = &logsource{
	name:  "aws/cloudtrail",
	guard: `event.dataset == "aws.cloudtrail"`,
	fields: map[string]field{
		"eventName":   {path: "event.action"},
		"eventSource": {path: "event.provider"},
		// source.address holds sourceIPAddress verbatim, also when it is
		// a service name rather than an address.
		"sourceIPAddress":    {path: "source.address"},
		"userAgent":          {path: "user_agent.original"},
		"awsRegion":          {path: "cloud.region"},
		"errorCode":          {path: "error.code"},
		"errorMessage":       {path: "error.message"},
		"eventID":            {path: "event.id"},
		"requestID":          {path: "http.request.id"},
		"recipientAccountId": {path: "cloud.account.id"},
		"eventType":          extra("event_type"),
		"eventCategory":      extra("event_category"),
		"readOnly":           extra("read_only"),
		"managementEvent":    extra("management_event"),
		"vpcEndpointId":      extra("vpc_endpoint_id"),
		// user.id is the ARN, or the principal id when there is no ARN.
		"userIdentity.arn": {path: "user.id"},
		// user.name is userName, else the session issuer's name, else
		// "root" for the root user.
		"userIdentity.userName":                                   {path: "user.name"},
		"userIdentity.accessKeyId":                                {path: "trailwatch.credential.id"},
		"userIdentity.type":                                       extra("user_identity.type"),
		"userIdentity.invokedBy":                                  extra("user_identity.invoked_by"),
		"userIdentity.sessionContext.sessionIssuer.arn":           extra("user_identity.session_context.session_issuer.arn"),
		"userIdentity.sessionContext.sessionIssuer.type":          extra("user_identity.session_context.session_issuer.type"),
		"userIdentity.sessionContext.attributes.mfaAuthenticated": extra("user_identity.session_context.mfa_authenticated"),
		"additionalEventData.MFAUsed":                             extra("console_login.additional_eventdata.mfa_used"),
		"tlsDetails.clientProvidedHostHeader":                     {path: "tls.client.server_name"},
	},
}

// lookup maps a Sigma field name; ok is false for a field with no
// trailwatch counterpart.
func (ls *logsource) lookup(name string) (field, bool) {
	f, ok := ls.fields[name]
	if !ok && ls == webserver {
		f, ok = ls.fields[strings.ToLower(name)]
	}
	return f, ok && f.path != ""
}

// logsourceFor picks the log source of a rule from its logsource mapping.
func logsourceFor(category, product, service string) *logsource {
	switch {
	case strings.EqualFold(category, "webserver"):
		return webserver
	case strings.EqualFold(product, "aws") && strings.EqualFold(service, "cloudtrail") && category == "":
		return cloudtrail
	}
	return nil
}
